//! The stored form of a change-feed event's data.
//!
//! A `customer.created` / `customer.updated` event keeps the whole customer
//! as it was right after the change. It is stored as JSON text in the
//! event's row, in the shape below: the domain's `Customer`, field for
//! field, with timestamps in RFC 3339 and dates as `YYYY-MM-DD`. It is a
//! storage format of this crate, read back only by it; the wire shape is
//! rendered from the decoded `Customer` by the HTTP adapter, like any other
//! read.

use crm_domain::customer::{
    Address, AddressId, Cents, Customer, CustomerId, Gender, Metafield, Profile, Statistics,
};
use crm_domain::segment::{SegmentId, SegmentRef};
use crm_domain::RepoError;
use serde::{Deserialize, Serialize};
use time::serde::rfc3339;
use time::{Date, OffsetDateTime};

time::serde::format_description!(day, Date, "[year]-[month]-[day]");

#[derive(Serialize, Deserialize)]
struct AddressSnapshot {
    id: i64,
    full_name: String,
    mobile: String,
    place_code: String,
    province: String,
    city: String,
    district: String,
    address1: String,
    address2: String,
    zip: String,
    is_default: bool,
    #[serde(with = "rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "rfc3339")]
    updated_at: OffsetDateTime,
}

#[derive(Serialize, Deserialize)]
struct StatisticsSnapshot {
    last_order_id: Option<i64>,
    #[serde(with = "rfc3339::option")]
    last_order_paid_at: Option<OffsetDateTime>,
    abandoned_checkouts: i64,
    orders: i64,
    paid_orders: i64,
    total_spent: i64,
    average_order_price: i64,
    visits: i64,
    visits_per_day: i64,
    customers_referred: i64,
    total_spent_of_referred: i64,
    preferred_device: String,
    location: String,
}

/// A customer as an event stores it.
#[derive(Serialize, Deserialize)]
pub struct CustomerSnapshot {
    id: i64,
    mobile: String,
    full_name: String,
    gender: String,
    email: String,
    #[serde(with = "day::option")]
    birthday: Option<Date>,
    avatar: String,
    note: String,
    accepts_marketing: bool,
    referral_code: String,
    referrer: Option<i64>,
    multipass_identifier: Option<String>,
    wechat_nickname: Option<String>,
    /// source, campaign name, source, medium, content, term.
    profile: [String; 6],
    statistics: StatisticsSnapshot,
    tags: Vec<String>,
    addresses: Vec<AddressSnapshot>,
    segments: Vec<(i64, String)>,
    metafields: Vec<(String, String, String)>,
    #[serde(with = "rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "rfc3339")]
    updated_at: OffsetDateTime,
}

impl CustomerSnapshot {
    /// The snapshot of `customer`.
    pub fn of(customer: &Customer) -> Self {
        let s = &customer.statistics;
        let p = &customer.profile;
        Self {
            id: customer.id.get(),
            mobile: customer.mobile.clone(),
            full_name: customer.full_name.clone(),
            gender: customer.gender.as_str().to_owned(),
            email: customer.email.clone(),
            birthday: customer.birthday,
            avatar: customer.avatar.clone(),
            note: customer.note.clone(),
            accepts_marketing: customer.accepts_marketing,
            referral_code: customer.referral_code.clone(),
            referrer: customer.referrer.map(CustomerId::get),
            multipass_identifier: customer.multipass_identifier.clone(),
            wechat_nickname: customer.wechat_nickname.clone(),
            profile: [
                p.source_name.clone(),
                p.campaign_name.clone(),
                p.campaign_source.clone(),
                p.campaign_medium.clone(),
                p.campaign_content.clone(),
                p.campaign_term.clone(),
            ],
            statistics: StatisticsSnapshot {
                last_order_id: s.last_order_id,
                last_order_paid_at: s.last_order_paid_at,
                abandoned_checkouts: s.abandoned_checkouts,
                orders: s.orders,
                paid_orders: s.paid_orders,
                total_spent: s.total_spent.0,
                average_order_price: s.average_order_price.0,
                visits: s.visits,
                visits_per_day: s.visits_per_day.0,
                customers_referred: s.customers_referred,
                total_spent_of_referred: s.total_spent_of_referred.0,
                preferred_device: s.preferred_device.clone(),
                location: s.location.clone(),
            },
            tags: customer.tags.clone(),
            addresses: customer
                .addresses
                .iter()
                .map(|a| AddressSnapshot {
                    id: a.id.get(),
                    full_name: a.full_name.clone(),
                    mobile: a.mobile.clone(),
                    place_code: a.place_code.clone(),
                    province: a.province.clone(),
                    city: a.city.clone(),
                    district: a.district.clone(),
                    address1: a.address1.clone(),
                    address2: a.address2.clone(),
                    zip: a.zip.clone(),
                    is_default: a.is_default,
                    created_at: a.created_at,
                    updated_at: a.updated_at,
                })
                .collect(),
            segments: customer
                .segments
                .iter()
                .map(|s| (s.id.get(), s.title.clone()))
                .collect(),
            metafields: customer
                .metafields
                .iter()
                .map(|m| {
                    (
                        m.namespace().to_owned(),
                        m.key().to_owned(),
                        m.value().to_owned(),
                    )
                })
                .collect(),
            created_at: customer.created_at,
            updated_at: customer.updated_at,
        }
    }

    /// `customer` as JSON text.
    pub fn encode(customer: &Customer) -> String {
        serde_json::to_string(&Self::of(customer)).expect("a snapshot always serializes")
    }

    /// The customer stored as `text`. Only this crate writes snapshots: one
    /// that does not decode is a fault, not bad input.
    pub fn decode(text: &str) -> Result<Customer, RepoError> {
        let snapshot: Self = serde_json::from_str(text)
            .map_err(|e| RepoError::Internal(format!("undecodable event data: {e}")))?;
        snapshot.into_customer()
    }

    fn into_customer(self) -> Result<Customer, RepoError> {
        let bad = |what: &str| RepoError::Internal(format!("event data holds a bad {what}"));
        let id = CustomerId::new(self.id).ok_or_else(|| bad("customer id"))?;
        let s = self.statistics;
        let [source_name, campaign_name, campaign_source, campaign_medium, campaign_content, campaign_term] =
            self.profile;
        let addresses = self
            .addresses
            .into_iter()
            .map(|a| {
                Ok(Address {
                    id: AddressId::new(a.id).ok_or_else(|| bad("address id"))?,
                    customer_id: id,
                    full_name: a.full_name,
                    mobile: a.mobile,
                    place_code: a.place_code,
                    province: a.province,
                    city: a.city,
                    district: a.district,
                    address1: a.address1,
                    address2: a.address2,
                    zip: a.zip,
                    is_default: a.is_default,
                    created_at: a.created_at,
                    updated_at: a.updated_at,
                })
            })
            .collect::<Result<Vec<_>, RepoError>>()?;
        let segments = self
            .segments
            .into_iter()
            .map(|(sid, title)| {
                Ok(SegmentRef {
                    id: SegmentId::new(sid).ok_or_else(|| bad("segment id"))?,
                    title,
                })
            })
            .collect::<Result<Vec<_>, RepoError>>()?;
        Ok(Customer {
            id,
            mobile: self.mobile,
            full_name: self.full_name,
            gender: Gender::parse(&self.gender).map_err(|_| bad("gender"))?,
            email: self.email,
            birthday: self.birthday,
            avatar: self.avatar,
            note: self.note,
            accepts_marketing: self.accepts_marketing,
            referral_code: self.referral_code,
            referrer: match self.referrer {
                Some(raw) => Some(CustomerId::new(raw).ok_or_else(|| bad("referrer"))?),
                None => None,
            },
            multipass_identifier: self.multipass_identifier,
            wechat_nickname: self.wechat_nickname,
            profile: Profile {
                source_name,
                campaign_name,
                campaign_source,
                campaign_medium,
                campaign_content,
                campaign_term,
            },
            statistics: Statistics {
                last_order_id: s.last_order_id,
                last_order_paid_at: s.last_order_paid_at,
                abandoned_checkouts: s.abandoned_checkouts,
                orders: s.orders,
                paid_orders: s.paid_orders,
                total_spent: Cents(s.total_spent),
                average_order_price: Cents(s.average_order_price),
                visits: s.visits,
                visits_per_day: Cents(s.visits_per_day),
                customers_referred: s.customers_referred,
                total_spent_of_referred: Cents(s.total_spent_of_referred),
                preferred_device: s.preferred_device,
                location: s.location,
            },
            tags: self.tags,
            addresses,
            segments,
            metafields: self
                .metafields
                .into_iter()
                .map(|(ns, key, value)| Metafield::from_stored(ns, key, value))
                .collect(),
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}
