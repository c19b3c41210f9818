/// The `schema` module of a Diesel adapter, instantiated by
/// [`diesel_adapter!`](crate::diesel_adapter) in the adapter's crate.
#[doc(hidden)]
#[macro_export]
macro_rules! __crm_diesel_schema {
    () => {
// Diesel's description of the tables, shared by both adapters: the
// migrations in `migrations/postgres` and `migrations/sqlite` create the same
// tables and columns. Only the timestamp type differs, and each adapter names
// it as `crate::backend::Instant`.

diesel::table! {
    use diesel::sql_types::*;
    use crate::backend::Instant;

    customers (id) {
        id -> BigInt,
        mobile -> Text,
        full_name -> Text,
        gender -> Text,
        email -> Text,
        birthday -> Nullable<Date>,
        avatar -> Text,
        note -> Text,
        accepts_marketing -> Bool,
        referral_code -> Text,
        referrer_id -> Nullable<BigInt>,
        multipass_identifier -> Nullable<Text>,
        wechat_nickname -> Nullable<Text>,
        source_name -> Text,
        campaign_name -> Text,
        campaign_source -> Text,
        campaign_medium -> Text,
        campaign_content -> Text,
        campaign_term -> Text,
        last_order_id -> Nullable<BigInt>,
        last_order_paid_at -> Nullable<Instant>,
        abandoned_checkouts -> BigInt,
        orders_count -> BigInt,
        paid_orders_count -> BigInt,
        total_spent_cents -> BigInt,
        average_order_cents -> BigInt,
        visits -> BigInt,
        visits_per_day_cents -> BigInt,
        preferred_device -> Text,
        location -> Text,
        created_at -> Instant,
        updated_at -> Instant,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::backend::Instant;

    customer_tags (customer_id, tag) {
        customer_id -> BigInt,
        tag -> Text,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::backend::Instant;

    customer_metafields (customer_id, namespace, key) {
        customer_id -> BigInt,
        namespace -> Text,
        key -> Text,
        value -> Text,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::backend::Instant;

    addresses (id) {
        id -> BigInt,
        customer_id -> BigInt,
        full_name -> Text,
        mobile -> Text,
        place_code -> Text,
        province -> Text,
        city -> Text,
        district -> Text,
        address1 -> Text,
        address2 -> Text,
        zip -> Text,
        is_default -> Bool,
        created_at -> Instant,
        updated_at -> Instant,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::backend::Instant;

    customer_coupons (customer_id, coupon_id) {
        customer_id -> BigInt,
        coupon_id -> BigInt,
        granted_at -> Instant,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::backend::Instant;

    segments (id) {
        id -> BigInt,
        title -> Text,
        created_at -> Instant,
        updated_at -> Instant,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::backend::Instant;

    segment_memberships (segment_id, customer_id) {
        segment_id -> BigInt,
        customer_id -> BigInt,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::backend::Instant;

    crm_events (seq) {
        seq -> BigInt,
        id -> Nullable<BigInt>,
        kind -> SmallInt,
        created_at -> Instant,
        customer_id -> Nullable<BigInt>,
        segment_id -> Nullable<BigInt>,
        data -> Text,
    }
}

diesel::table! {
    crm_event_members (customer_id, event_seq) {
        customer_id -> BigInt,
        event_seq -> BigInt,
    }
}

diesel::table! {
    crm_event_log (singleton) {
        singleton -> Bool,
        last_published -> BigInt,
        purged_through -> BigInt,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::backend::Instant;

    idempotency_keys (client_id, key) {
        client_id -> Text,
        key -> Text,
        fingerprint -> Text,
        claim -> BigInt,
        started_at -> Instant,
        expires_at -> Instant,
        status -> Nullable<SmallInt>,
        content_type -> Nullable<Text>,
        body -> Nullable<Binary>,
    }
}

diesel::joinable!(customer_tags -> customers (customer_id));
diesel::joinable!(customer_metafields -> customers (customer_id));
diesel::joinable!(addresses -> customers (customer_id));
diesel::joinable!(customer_coupons -> customers (customer_id));
diesel::joinable!(segment_memberships -> customers (customer_id));
diesel::joinable!(segment_memberships -> segments (segment_id));

diesel::allow_tables_to_appear_in_same_query!(
    customers,
    customer_tags,
    customer_metafields,
    addresses,
    customer_coupons,
    segments,
    segment_memberships,
);

diesel::allow_tables_to_appear_in_same_query!(crm_events, crm_event_members);

diesel::table! {
    use diesel::sql_types::*;
    use crate::backend::Instant;

    crm_webhook_endpoints (id) {
        id -> BigInt,
        url -> Text,
        event_mask -> BigInt,
        description -> Text,
        is_active -> Bool,
        secret -> Text,
        created_at -> Instant,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::backend::Instant;

    crm_webhook_deliveries (id) {
        id -> BigInt,
        endpoint_id -> BigInt,
        event_seq -> BigInt,
        status -> SmallInt,
        attempts -> Integer,
        last_status_code -> Nullable<Integer>,
        last_error -> Text,
        next_attempt_at -> Nullable<Instant>,
        created_at -> Instant,
        lease_until -> Nullable<Instant>,
        lease_token -> Nullable<BigInt>,
    }
}

diesel::joinable!(crm_webhook_deliveries -> crm_webhook_endpoints (endpoint_id));
diesel::joinable!(crm_webhook_deliveries -> crm_events (event_seq));
diesel::allow_tables_to_appear_in_same_query!(crm_webhook_deliveries, crm_webhook_endpoints);
diesel::allow_tables_to_appear_in_same_query!(crm_webhook_deliveries, crm_events);
diesel::allow_tables_to_appear_in_same_query!(crm_webhook_endpoints, crm_events);

diesel::table! {
    use diesel::sql_types::*;
    use crate::backend::Instant;

    oauth_clients (id) {
        id -> Text,
        name -> Text,
        secret_hash -> Text,
        scopes -> Text,
        created_at -> Instant,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::backend::Instant;

    oauth_tokens (token_hash) {
        token_hash -> Text,
        client_id -> Text,
        scopes -> Text,
        issued_at -> Instant,
        expires_at -> Instant,
    }
}

diesel::joinable!(oauth_tokens -> oauth_clients (client_id));
diesel::allow_tables_to_appear_in_same_query!(oauth_clients, oauth_tokens);
    };
}
