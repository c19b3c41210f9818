/// The `rows` module of a Diesel adapter, instantiated by
/// [`diesel_adapter!`](crate::diesel_adapter) in the adapter's crate.
#[doc(hidden)]
#[macro_export]
macro_rules! __crm_diesel_rows {
    () => {
        // Database rows and their conversion into domain read models.

        use crm_domain::customer::{
            Address, AddressId, Cents, CouponHolding, CouponId, CustomerId, Gender, Profile,
            Statistics,
        };
        use diesel::prelude::*;
        use time::{Date, OffsetDateTime};

        use crate::schema::{addresses, customer_coupons, customers};

        /// Ids read back from the store are positive by construction (identity
        /// columns); anything else is a broken invariant worth a loud failure.
        pub fn customer_id(raw: i64) -> CustomerId {
            CustomerId::new(raw).expect("stored customer ids are positive")
        }

        #[derive(Queryable, Selectable, $crate::document::__private::serde::Deserialize)]
        #[serde(crate = "crm_diesel::document::__private::serde")]
        #[diesel(table_name = customers, check_for_backend(crate::backend::Db))]
        pub struct CustomerRow {
            pub id: i64,
            pub mobile: String,
            pub full_name: String,
            pub gender: String,
            pub email: String,
            #[serde(deserialize_with = "crm_diesel::document::__private::date_opt::deserialize")]
            pub birthday: Option<Date>,
            pub avatar: String,
            pub note: String,
            pub accepts_marketing: bool,
            pub referral_code: String,
            pub referrer_id: Option<i64>,
            pub multipass_identifier: Option<String>,
            pub wechat_nickname: Option<String>,
            pub source_name: String,
            pub campaign_name: String,
            pub campaign_source: String,
            pub campaign_medium: String,
            pub campaign_content: String,
            pub campaign_term: String,
            pub last_order_id: Option<i64>,
            #[serde(with = "crm_diesel::document::__private::rfc3339::option")]
            pub last_order_paid_at: Option<OffsetDateTime>,
            pub abandoned_checkouts: i64,
            pub orders_count: i64,
            pub paid_orders_count: i64,
            pub total_spent_cents: i64,
            pub average_order_cents: i64,
            pub visits: i64,
            pub visits_per_day_cents: i64,
            pub preferred_device: String,
            pub location: String,
            #[serde(with = "crm_diesel::document::__private::rfc3339")]
            pub created_at: OffsetDateTime,
            #[serde(with = "crm_diesel::document::__private::rfc3339")]
            pub updated_at: OffsetDateTime,
        }

        impl CustomerRow {
            pub fn gender(&self) -> Gender {
                // The column's CHECK constraint admits only the three choices.
                Gender::parse(&self.gender).unwrap_or_default()
            }

            pub fn profile(&self) -> Profile {
                Profile {
                    source_name: self.source_name.clone(),
                    campaign_name: self.campaign_name.clone(),
                    campaign_source: self.campaign_source.clone(),
                    campaign_medium: self.campaign_medium.clone(),
                    campaign_content: self.campaign_content.clone(),
                    campaign_term: self.campaign_term.clone(),
                }
            }

            pub fn statistics(&self, referred: i64, spent_of_referred: i64) -> Statistics {
                Statistics {
                    last_order_id: self.last_order_id,
                    last_order_paid_at: self.last_order_paid_at,
                    abandoned_checkouts: self.abandoned_checkouts,
                    orders: self.orders_count,
                    paid_orders: self.paid_orders_count,
                    total_spent: Cents(self.total_spent_cents),
                    average_order_price: Cents(self.average_order_cents),
                    visits: self.visits,
                    visits_per_day: Cents(self.visits_per_day_cents),
                    customers_referred: referred,
                    total_spent_of_referred: Cents(spent_of_referred),
                    preferred_device: self.preferred_device.clone(),
                    location: self.location.clone(),
                }
            }
        }

        /// The columns a list item needs, and no more.
        #[derive(Queryable, Selectable, $crate::document::__private::serde::Deserialize)]
        #[serde(crate = "crm_diesel::document::__private::serde")]
        #[diesel(table_name = customers, check_for_backend(crate::backend::Db))]
        pub struct SummaryRow {
            pub id: i64,
            pub mobile: String,
            pub full_name: String,
            pub gender: String,
            pub email: String,
            #[serde(deserialize_with = "crm_diesel::document::__private::date_opt::deserialize")]
            pub birthday: Option<Date>,
            pub note: String,
            pub accepts_marketing: bool,
            #[serde(with = "crm_diesel::document::__private::rfc3339")]
            pub created_at: OffsetDateTime,
        }

        #[derive(Queryable, Selectable, $crate::document::__private::serde::Deserialize)]
        #[serde(crate = "crm_diesel::document::__private::serde")]
        #[diesel(table_name = addresses, check_for_backend(crate::backend::Db))]
        pub struct AddressRow {
            pub id: i64,
            pub customer_id: i64,
            pub full_name: String,
            pub mobile: String,
            pub place_code: String,
            pub province: String,
            pub city: String,
            pub district: String,
            pub address1: String,
            pub address2: String,
            pub zip: String,
            pub is_default: bool,
            #[serde(with = "crm_diesel::document::__private::rfc3339")]
            pub created_at: OffsetDateTime,
            #[serde(with = "crm_diesel::document::__private::rfc3339")]
            pub updated_at: OffsetDateTime,
        }

        impl From<AddressRow> for Address {
            fn from(row: AddressRow) -> Self {
                Address {
                    id: AddressId::new(row.id).expect("stored address ids are positive"),
                    customer_id: customer_id(row.customer_id),
                    full_name: row.full_name,
                    mobile: row.mobile,
                    place_code: row.place_code,
                    province: row.province,
                    city: row.city,
                    district: row.district,
                    address1: row.address1,
                    address2: row.address2,
                    zip: row.zip,
                    is_default: row.is_default,
                    created_at: row.created_at,
                    updated_at: row.updated_at,
                }
            }
        }

        #[derive(Queryable, Selectable)]
        #[diesel(table_name = customer_coupons, check_for_backend(crate::backend::Db))]
        pub struct CouponRow {
            pub coupon_id: i64,
            pub granted_at: OffsetDateTime,
        }

        impl From<CouponRow> for CouponHolding {
            fn from(row: CouponRow) -> Self {
                CouponHolding {
                    coupon_id: CouponId::new(row.coupon_id)
                        .expect("stored coupon ids are positive"),
                    granted_at: row.granted_at,
                }
            }
        }
    };
}
