//! The wire representations, key for key as the contract shows them, and
//! their explicit conversion from domain read models.

use crm_domain::customer::{
    Address, CouponHolding, Customer, CustomerSummary, Metafield, Statistics,
};
use crm_domain::event::{Event, EventData};
use crm_domain::segment::SegmentRef;
use crm_domain::webhook::{Delivery, Endpoint, WebhookSecret};
use serde::Serialize;
use time::{Date, OffsetDateTime, UtcOffset};
use utoipa::ToSchema;

use crate::openapi::schema as doc;

/// The text shown for `wechat_nickname` when none is stored.
pub const NO_WECHAT_NICKNAME: &str = "用户没有通过微信授权登录";

/// Renders instants and dates in the configured UTC offset.
#[derive(Clone, Copy, Debug)]
pub struct Render {
    pub offset: UtcOffset,
}

impl Render {
    /// RFC 3339 with microseconds; UTC renders as `Z`.
    pub fn timestamp(&self, t: OffsetDateTime) -> String {
        let t = t.to_offset(self.offset);
        let base = format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
            t.microsecond()
        );
        if self.offset == UtcOffset::UTC {
            return format!("{base}Z");
        }
        let (h, m, _) = self.offset.as_hms();
        let sign = if self.offset.is_negative() { '-' } else { '+' };
        format!(
            "{base}{sign}{:02}:{:02}",
            h.unsigned_abs(),
            m.unsigned_abs()
        )
    }
}

pub fn date(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

#[derive(Serialize, Debug, ToSchema)]
#[schema(as = SegmentRef)]
pub struct SegmentRefDto {
    pub id: i64,
    pub title: String,
}

impl From<&SegmentRef> for SegmentRefDto {
    fn from(s: &SegmentRef) -> Self {
        Self {
            id: s.id.get(),
            title: s.title.clone(),
        }
    }
}

#[derive(Serialize, Debug, ToSchema)]
#[schema(as = Address)]
pub struct AddressDto {
    pub id: i64,
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
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

impl AddressDto {
    pub fn new(a: &Address, r: Render) -> Self {
        Self {
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
            created_at: r.timestamp(a.created_at),
            updated_at: r.timestamp(a.updated_at),
        }
    }
}

/// A customer in a list. Inside a segment, `segments` is left out.
#[derive(Serialize, Debug, ToSchema)]
#[schema(as = CustomerListItem)]
pub struct CustomerListItemDto {
    pub id: i64,
    pub mobile: String,
    pub full_name: String,
    #[schema(value_type = doc::GenderSchema)]
    pub gender: &'static str,
    pub email: String,
    #[schema(format = Date, required = true)]
    pub birthday: Option<String>,
    pub note: String,
    pub accepts_marketing: bool,
    pub tags: Vec<String>,
    pub addresses: Vec<AddressDto>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub segments: Option<Vec<SegmentRefDto>>,
    #[schema(format = DateTime)]
    pub created_at: String,
}

impl CustomerListItemDto {
    pub fn new(c: &CustomerSummary, r: Render, with_segments: bool) -> Self {
        Self {
            id: c.id.get(),
            mobile: c.mobile.clone(),
            full_name: c.full_name.clone(),
            gender: c.gender.as_str(),
            email: c.email.clone(),
            birthday: c.birthday.map(date),
            note: c.note.clone(),
            accepts_marketing: c.accepts_marketing,
            tags: c.tags.clone(),
            addresses: c.addresses.iter().map(|a| AddressDto::new(a, r)).collect(),
            segments: with_segments.then(|| c.segments.iter().map(SegmentRefDto::from).collect()),
            created_at: r.timestamp(c.created_at),
        }
    }
}

#[derive(Serialize, Debug, ToSchema)]
#[schema(as = Statistics)]
pub struct StatisticsDto {
    #[schema(required = true)]
    pub last_order_id: Option<i64>,
    #[schema(format = DateTime, required = true)]
    pub last_order_paid_at: Option<String>,
    pub abandoned_checkouts: i64,
    pub orders: i64,
    pub paid_orders: i64,
    pub total_spent: String,
    pub average_order_price: String,
    pub visits: i64,
    pub visits_per_day: String,
    pub customers_referred: i64,
    pub total_spent_of_referred: String,
    pub preferred_device: String,
    pub location: String,
}

impl StatisticsDto {
    fn new(s: &Statistics, r: Render) -> Self {
        Self {
            last_order_id: s.last_order_id,
            last_order_paid_at: s.last_order_paid_at.map(|t| r.timestamp(t)),
            abandoned_checkouts: s.abandoned_checkouts,
            orders: s.orders,
            paid_orders: s.paid_orders,
            total_spent: s.total_spent.to_string(),
            average_order_price: s.average_order_price.to_string(),
            visits: s.visits,
            visits_per_day: s.visits_per_day.to_string(),
            customers_referred: s.customers_referred,
            total_spent_of_referred: s.total_spent_of_referred.to_string(),
            preferred_device: s.preferred_device.clone(),
            location: s.location.clone(),
        }
    }
}

#[derive(Serialize, Debug, ToSchema)]
#[schema(as = Profile)]
pub struct ProfileDto {
    pub source_name: String,
    pub campaign_name: String,
    pub campaign_source: String,
    pub campaign_medium: String,
    pub campaign_content: String,
    pub campaign_term: String,
}

#[derive(Serialize, Debug, ToSchema)]
#[schema(as = Metafield)]
pub struct MetafieldDto {
    pub namespace: String,
    pub key: String,
    pub value: String,
}

impl From<&Metafield> for MetafieldDto {
    fn from(m: &Metafield) -> Self {
        Self {
            namespace: m.namespace().to_owned(),
            key: m.key().to_owned(),
            value: m.value().to_owned(),
        }
    }
}

/// The full customer, key for key as the original create response.
#[derive(Serialize, Debug, ToSchema)]
#[schema(as = Customer)]
pub struct CustomerDto {
    pub id: i64,
    #[schema(required = true)]
    pub multipass_identifier: Option<String>,
    pub mobile: String,
    pub full_name: String,
    #[schema(value_type = doc::GenderSchema)]
    pub gender: &'static str,
    pub email: String,
    #[schema(format = Date, required = true)]
    pub birthday: Option<String>,
    pub avatar: String,
    pub note: String,
    pub accepts_marketing: bool,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
    pub referral_code: String,
    #[schema(required = true)]
    pub referrer: Option<i64>,
    pub tags: Vec<String>,
    pub addresses: Vec<AddressDto>,
    pub segments: Vec<SegmentRefDto>,
    pub segment_ids: Vec<i64>,
    pub statistics: StatisticsDto,
    pub profile: ProfileDto,
    pub wechat_nickname: String,
    #[schema(schema_with = doc::always_null, required = true)]
    pub level: Option<()>,
    pub total_points: i64,
    pub points: i64,
    pub metafields: Vec<MetafieldDto>,
}

impl CustomerDto {
    pub fn new(c: &Customer, r: Render) -> Self {
        let p = &c.profile;
        Self {
            id: c.id.get(),
            multipass_identifier: c.multipass_identifier.clone(),
            mobile: c.mobile.clone(),
            full_name: c.full_name.clone(),
            gender: c.gender.as_str(),
            email: c.email.clone(),
            birthday: c.birthday.map(date),
            avatar: c.avatar.clone(),
            note: c.note.clone(),
            accepts_marketing: c.accepts_marketing,
            created_at: r.timestamp(c.created_at),
            updated_at: r.timestamp(c.updated_at),
            referral_code: c.referral_code.clone(),
            referrer: c.referrer.map(|id| id.get()),
            tags: c.tags.clone(),
            addresses: c.addresses.iter().map(|a| AddressDto::new(a, r)).collect(),
            segments: c.segments.iter().map(SegmentRefDto::from).collect(),
            segment_ids: c.segments.iter().map(|s| s.id.get()).collect(),
            statistics: StatisticsDto::new(&c.statistics, r),
            profile: ProfileDto {
                source_name: p.source_name.clone(),
                campaign_name: p.campaign_name.clone(),
                campaign_source: p.campaign_source.clone(),
                campaign_medium: p.campaign_medium.clone(),
                campaign_content: p.campaign_content.clone(),
                campaign_term: p.campaign_term.clone(),
            },
            wechat_nickname: c
                .wechat_nickname
                .clone()
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| NO_WECHAT_NICKNAME.to_owned()),
            level: None,
            total_points: 0,
            points: 0,
            metafields: c.metafields.iter().map(MetafieldDto::from).collect(),
        }
    }
}

#[derive(Serialize, Debug, ToSchema)]
#[schema(as = CouponHolding)]
pub struct CouponHoldingDto {
    pub coupon_id: i64,
    #[schema(format = DateTime)]
    pub granted_at: String,
}

impl CouponHoldingDto {
    pub fn new(h: &CouponHolding, r: Render) -> Self {
        Self {
            coupon_id: h.coupon_id.get(),
            granted_at: r.timestamp(h.granted_at),
        }
    }
}

#[derive(Serialize, Debug, ToSchema)]
#[schema(as = Segment)]
pub struct SegmentDto {
    pub id: i64,
    pub title: String,
    pub customers: Vec<CustomerListItemDto>,
}

impl SegmentDto {
    /// The segment with no members: a new segment's answer, and the head
    /// the streamed answers (`segment_stream`) write their members into.
    pub fn head(s: &SegmentRef) -> Self {
        Self {
            id: s.id.get(),
            title: s.title.clone(),
            customers: Vec::new(),
        }
    }
}

/// What an event is about (`data.object`): the whole customer, a segment's
/// head, or just the id of what was deleted.
#[derive(Serialize, Debug, ToSchema)]
#[serde(untagged)]
#[schema(as = EventObject)]
pub enum EventObjectDto {
    Customer(Box<CustomerDto>),
    Segment(SegmentRefDto),
    Deleted { id: i64 },
}

/// An event's `data`: `{"object": ...}`, or the customers a membership
/// event names.
#[derive(Serialize, Debug, ToSchema)]
#[serde(untagged)]
#[schema(as = EventData)]
pub enum EventDataDto {
    Object {
        object: EventObjectDto,
    },
    Members {
        segment_id: i64,
        customer_ids: Vec<i64>,
    },
}

/// One change of the change feed.
#[derive(Serialize, Debug, ToSchema)]
#[schema(as = Event)]
pub struct EventDto {
    pub id: i64,
    /// `customer.created`, `customer.updated`, `customer.deleted`,
    /// `segment.created`, `segment.updated`, `segment.deleted`,
    /// `segment.customers_added` or `segment.customers_removed`.
    #[serde(rename = "type")]
    #[schema(rename = "type")]
    pub kind: &'static str,
    #[schema(format = DateTime)]
    pub created_at: String,
    pub data: EventDataDto,
}

impl EventDto {
    pub fn new(e: &Event, r: Render) -> Self {
        let object = |object| EventDataDto::Object { object };
        let data = match &e.data {
            EventData::Customer(c) => {
                object(EventObjectDto::Customer(Box::new(CustomerDto::new(c, r))))
            }
            EventData::CustomerDeleted(id) => object(EventObjectDto::Deleted { id: id.get() }),
            EventData::Segment(head) => object(EventObjectDto::Segment(head.into())),
            EventData::SegmentDeleted(id) => object(EventObjectDto::Deleted { id: id.get() }),
            EventData::Members { segment, customers } => EventDataDto::Members {
                segment_id: segment.get(),
                customer_ids: customers.iter().map(|c| c.get()).collect(),
            },
        };
        Self {
            id: e.id,
            kind: e.kind.name(),
            created_at: r.timestamp(e.created_at),
            data,
        }
    }
}

/// A page of the change feed: `next` is always there.
#[derive(Serialize, Debug, ToSchema)]
#[schema(as = EventPage)]
pub struct EventPageDto {
    #[schema(format = "uri")]
    pub next: String,
    pub results: Vec<EventDto>,
}

/// A webhook endpoint, without its secret (every answer but the create).
#[derive(Serialize, Debug, ToSchema)]
#[schema(as = WebhookEndpoint)]
pub struct WebhookEndpointDto {
    pub id: i64,
    #[schema(format = "uri")]
    pub url: String,
    /// The event types delivered, sorted, or `["*"]` for every type.
    pub events: Vec<&'static str>,
    pub description: String,
    /// Whether events are delivered to it; a paused endpoint gets no new
    /// deliveries and its pending ones wait.
    pub is_active: bool,
    #[schema(format = DateTime)]
    pub created_at: String,
}

impl WebhookEndpointDto {
    pub fn new(e: &Endpoint, r: Render) -> Self {
        Self {
            id: e.id.get(),
            url: e.url.clone(),
            events: e.subscription.names(),
            description: e.description.clone(),
            is_active: e.is_active,
            created_at: r.timestamp(e.created_at),
        }
    }
}

/// A webhook endpoint as its create answers it: with its signing secret,
/// shown this once.
#[derive(Serialize, Debug, ToSchema)]
#[schema(as = WebhookEndpointCreated)]
pub struct WebhookEndpointCreatedDto {
    pub id: i64,
    #[schema(format = "uri")]
    pub url: String,
    /// The event types delivered, sorted, or `["*"]` for every type.
    pub events: Vec<&'static str>,
    pub description: String,
    pub is_active: bool,
    #[schema(format = DateTime)]
    pub created_at: String,
    /// `whsec_` and the base64 of the 32-byte signing key. Shown only in
    /// this answer: store it now.
    pub secret: String,
}

impl WebhookEndpointCreatedDto {
    pub fn new(e: &Endpoint, secret: &WebhookSecret, r: Render) -> Self {
        let WebhookEndpointDto {
            id,
            url,
            events,
            description,
            is_active,
            created_at,
        } = WebhookEndpointDto::new(e, r);
        Self {
            id,
            url,
            events,
            description,
            is_active,
            created_at,
            secret: secret.expose().to_owned(),
        }
    }
}

/// One event on its way to one endpoint, as the delivery log shows it.
#[derive(Serialize, Debug, ToSchema)]
#[schema(as = WebhookDelivery)]
pub struct WebhookDeliveryDto {
    pub id: i64,
    pub event_id: i64,
    /// The event's `type`.
    pub event_type: &'static str,
    #[schema(value_type = doc::DeliveryStatusSchema)]
    pub status: &'static str,
    /// Attempts finished so far.
    pub attempts: u32,
    /// The last attempt's HTTP status; null before the first attempt or
    /// when the last one got no response.
    #[schema(required = true)]
    pub last_status_code: Option<u16>,
    /// `""` before the first attempt and after a success; otherwise one
    /// line (`HTTP 503`, `timeout`, `connection refused`, ...).
    pub last_error: String,
    /// When the next attempt is due (a past time while it runs); null once
    /// `delivered` or `failed`.
    #[schema(format = DateTime, required = true)]
    pub next_attempt_at: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
}

impl WebhookDeliveryDto {
    pub fn new(d: &Delivery, r: Render) -> Self {
        Self {
            id: d.id.get(),
            event_id: d.event_id,
            event_type: d.event_kind.name(),
            status: d.status.name(),
            attempts: d.attempts,
            last_status_code: d.last_status_code,
            last_error: d.last_error.clone(),
            next_attempt_at: d.next_attempt_at.map(|t| r.timestamp(t)),
            created_at: r.timestamp(d.created_at),
        }
    }
}

/// DRF's cursor envelope: no count, links carrying the position.
#[derive(Serialize, Debug, ToSchema)]
#[schema(as = CustomerCursorPage)]
pub struct CursorPageDto {
    #[schema(format = "uri", required = true)]
    pub next: Option<String>,
    #[schema(format = "uri", required = true)]
    pub previous: Option<String>,
    pub results: Vec<CustomerListItemDto>,
}

/// DRF's paginated envelope.
#[derive(Serialize, Debug, ToSchema)]
pub struct PageDto<T> {
    pub count: u64,
    #[schema(format = "uri", required = true)]
    pub next: Option<String>,
    #[schema(format = "uri", required = true)]
    pub previous: Option<String>,
    pub results: Vec<T>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{datetime, offset};

    #[test]
    fn utc_renders_as_z_with_microseconds() {
        let r = Render {
            offset: UtcOffset::UTC,
        };
        assert_eq!(
            r.timestamp(datetime!(2016-08-07 14:54:28 UTC)),
            "2016-08-07T14:54:28.000000Z"
        );
    }

    #[test]
    fn configured_offset_is_applied() {
        let r = Render {
            offset: offset!(+08:00),
        };
        assert_eq!(
            r.timestamp(datetime!(2019-07-05 09:17:28.533279 UTC)),
            "2019-07-05T17:17:28.533279+08:00"
        );
        let r = Render {
            offset: offset!(-05:30),
        };
        assert_eq!(
            r.timestamp(datetime!(2019-07-05 09:17:28 UTC)),
            "2019-07-05T03:47:28.000000-05:30"
        );
    }
}
