//! Diesel's description of the tables in `migrations/postgres`.

diesel::table! {
    customers (id) {
        id -> Int8,
        mobile -> Varchar,
        full_name -> Varchar,
        gender -> Varchar,
        email -> Varchar,
        birthday -> Nullable<Date>,
        avatar -> Varchar,
        note -> Text,
        accepts_marketing -> Bool,
        referral_code -> Varchar,
        referrer_id -> Nullable<Int8>,
        multipass_identifier -> Nullable<Varchar>,
        wechat_nickname -> Nullable<Varchar>,
        source_name -> Varchar,
        campaign_name -> Varchar,
        campaign_source -> Varchar,
        campaign_medium -> Varchar,
        campaign_content -> Varchar,
        campaign_term -> Varchar,
        last_order_id -> Nullable<Int8>,
        last_order_paid_at -> Nullable<Timestamptz>,
        abandoned_checkouts -> Int8,
        orders_count -> Int8,
        paid_orders_count -> Int8,
        total_spent_cents -> Int8,
        average_order_cents -> Int8,
        visits -> Int8,
        visits_per_day_cents -> Int8,
        preferred_device -> Varchar,
        location -> Varchar,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    customer_tags (customer_id, tag) {
        customer_id -> Int8,
        tag -> Varchar,
    }
}

diesel::table! {
    customer_metafields (customer_id, namespace, key) {
        customer_id -> Int8,
        namespace -> Varchar,
        key -> Varchar,
        value -> Text,
    }
}

diesel::table! {
    addresses (id) {
        id -> Int8,
        customer_id -> Int8,
        full_name -> Varchar,
        mobile -> Varchar,
        place_code -> Varchar,
        province -> Varchar,
        city -> Varchar,
        district -> Varchar,
        address1 -> Varchar,
        address2 -> Varchar,
        zip -> Varchar,
        is_default -> Bool,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    customer_coupons (customer_id, coupon_id) {
        customer_id -> Int8,
        coupon_id -> Int8,
        granted_at -> Timestamptz,
    }
}

diesel::table! {
    segments (id) {
        id -> Int8,
        title -> Varchar,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    segment_memberships (segment_id, customer_id) {
        segment_id -> Int8,
        customer_id -> Int8,
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

diesel::table! {
    oauth_clients (id) {
        id -> Varchar,
        name -> Varchar,
        secret_hash -> Bpchar,
        scopes -> Varchar,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    oauth_tokens (token_hash) {
        token_hash -> Bpchar,
        client_id -> Varchar,
        scopes -> Varchar,
        issued_at -> Timestamptz,
        expires_at -> Timestamptz,
    }
}

diesel::joinable!(oauth_tokens -> oauth_clients (client_id));
diesel::allow_tables_to_appear_in_same_query!(oauth_clients, oauth_tokens);
