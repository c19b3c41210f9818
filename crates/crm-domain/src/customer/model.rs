//! What a customer is: the read model returned by the store, the changes a
//! write applies, and the filters a list accepts.

use std::fmt;

use time::{Date, OffsetDateTime};

use super::values::{
    Avatar, Birthday, CustomerId, Email, FullName, Gender, Metafield, Metafields, Mobile,
    MultipassIdentifier, Note, ProfilePatch, ReferralCode, TagSet,
};
use super::Profile;
use crate::segment::SegmentRef;
use crate::FieldErrors;

/// An amount of money in hundredths (cents), rendered with two decimals.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cents(pub i64);

impl fmt::Display for Cents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        write!(f, "{sign}{}.{:02}", abs / 100, abs % 100)
    }
}

/// Order and visit figures kept per customer, plus the live referral figures.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Statistics {
    pub last_order_id: Option<i64>,
    pub last_order_paid_at: Option<OffsetDateTime>,
    pub abandoned_checkouts: i64,
    pub orders: i64,
    pub paid_orders: i64,
    pub total_spent: Cents,
    pub average_order_price: Cents,
    pub visits: i64,
    /// Visits per day, in hundredths.
    pub visits_per_day: Cents,
    /// How many customers name this one as their referrer (live).
    pub customers_referred: i64,
    /// What the referred customers spent in total (live).
    pub total_spent_of_referred: Cents,
    pub preferred_device: String,
    pub location: String,
}

/// Positive 64-bit integer identifying an address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AddressId(i64);

impl AddressId {
    pub fn new(raw: i64) -> Option<Self> {
        (raw > 0).then_some(Self(raw))
    }

    pub fn parse(raw: &str) -> Option<Self> {
        CustomerId::parse(raw).and_then(|id| Self::new(id.get()))
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

/// A postal address of a customer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Address {
    pub id: AddressId,
    pub customer_id: CustomerId,
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
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// The customer as a list shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CustomerSummary {
    pub id: CustomerId,
    pub mobile: String,
    pub full_name: String,
    pub gender: Gender,
    pub email: String,
    pub birthday: Option<Date>,
    pub note: String,
    pub accepts_marketing: bool,
    pub tags: Vec<String>,
    pub addresses: Vec<Address>,
    pub segments: Vec<SegmentRef>,
    pub created_at: OffsetDateTime,
}

/// The whole customer, as a single-customer read shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Customer {
    pub id: CustomerId,
    pub mobile: String,
    pub full_name: String,
    pub gender: Gender,
    pub email: String,
    pub birthday: Option<Date>,
    pub avatar: String,
    pub note: String,
    pub accepts_marketing: bool,
    pub referral_code: String,
    pub referrer: Option<CustomerId>,
    pub multipass_identifier: Option<String>,
    pub wechat_nickname: Option<String>,
    pub profile: Profile,
    pub statistics: Statistics,
    pub tags: Vec<String>,
    pub addresses: Vec<Address>,
    pub segments: Vec<SegmentRef>,
    pub metafields: Vec<Metafield>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

impl Customer {
    /// The list view of this customer.
    pub fn summary(&self) -> CustomerSummary {
        CustomerSummary {
            id: self.id,
            mobile: self.mobile.clone(),
            full_name: self.full_name.clone(),
            gender: self.gender,
            email: self.email.clone(),
            birthday: self.birthday,
            note: self.note.clone(),
            accepts_marketing: self.accepts_marketing,
            tags: self.tags.clone(),
            addresses: self.addresses.clone(),
            segments: self.segments.clone(),
            created_at: self.created_at,
        }
    }
}

/// The changes one write makes to a customer. `None` leaves a value as it is
/// (on create: at its default); for clearable values `Some(None)` clears it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CustomerChanges {
    pub mobile: Option<Option<Mobile>>,
    pub full_name: Option<FullName>,
    pub gender: Option<Gender>,
    pub email: Option<Option<Email>>,
    pub birthday: Option<Option<Birthday>>,
    pub avatar: Option<Avatar>,
    pub note: Option<Note>,
    pub accepts_marketing: Option<bool>,
    pub referral_code: Option<Option<ReferralCode>>,
    pub referrer: Option<Option<CustomerId>>,
    pub multipass_identifier: Option<Option<MultipassIdentifier>>,
    pub profile: ProfilePatch,
    /// A given set replaces all of the customer's tags.
    pub tags: Option<TagSet>,
    /// A given list replaces all of the customer's metafields.
    pub metafields: Option<Metafields>,
}

/// The message when a customer would have no mobile, e-mail or name.
pub const NO_IDENTITY: &str = "A customer needs at least one of mobile, email or full_name.";

impl CustomerChanges {
    /// Checks the rules that span fields, for a customer whose stored
    /// identity (mobile, email, full name) is `current` — blank for a new one —
    /// and whose id is `id` (none for a new one).
    pub fn check(
        &self,
        id: Option<CustomerId>,
        current: (&str, &str, &str),
    ) -> Result<(), FieldErrors> {
        let mut errors = FieldErrors::new();
        let has_mobile = match &self.mobile {
            Some(m) => m.is_some(),
            None => !current.0.is_empty(),
        };
        let has_email = match &self.email {
            Some(e) => e.is_some(),
            None => !current.1.is_empty(),
        };
        let has_name = match &self.full_name {
            Some(n) => !n.is_blank(),
            None => !current.2.is_empty(),
        };
        if !(has_mobile || has_email || has_name) {
            errors.add(FieldErrors::NON_FIELD, NO_IDENTITY);
        }
        if let (Some(id), Some(Some(referrer))) = (id, self.referrer) {
            if id == referrer {
                errors.add("referrer", "A customer cannot be its own referrer.");
            }
        }
        errors.into_result()
    }
}

/// The sort orders a customer list offers; ties are broken by id.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CustomerOrdering {
    IdAsc,
    #[default]
    IdDesc,
    CreatedAtAsc,
    CreatedAtDesc,
    UpdatedAtAsc,
    UpdatedAtDesc,
}

impl CustomerOrdering {
    pub const CHOICES: [&'static str; 6] = [
        "id",
        "-id",
        "created_at",
        "-created_at",
        "updated_at",
        "-updated_at",
    ];

    /// The ordering's name, as `parse` reads it.
    pub fn name(self) -> &'static str {
        match self {
            Self::IdAsc => "id",
            Self::IdDesc => "-id",
            Self::CreatedAtAsc => "created_at",
            Self::CreatedAtDesc => "-created_at",
            Self::UpdatedAtAsc => "updated_at",
            Self::UpdatedAtDesc => "-updated_at",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, String> {
        Ok(match raw {
            "id" => Self::IdAsc,
            "-id" => Self::IdDesc,
            "created_at" => Self::CreatedAtAsc,
            "-created_at" => Self::CreatedAtDesc,
            "updated_at" => Self::UpdatedAtAsc,
            "-updated_at" => Self::UpdatedAtDesc,
            other => {
                return Err(format!(
                    "Select a valid choice. {other} is not one of the available choices."
                ))
            }
        })
    }
}

/// Which customers a list returns; every given criterion must hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CustomerFilter {
    pub id: Option<i64>,
    pub id_in: Option<Vec<i64>>,
    pub coupon: Option<i64>,
    pub coupon_exclude: Option<i64>,
    pub segment: Option<i64>,
    pub segment_exclude: Option<i64>,
    pub mobile: Option<String>,
    /// Matched case-insensitively.
    pub email: Option<String>,
    pub tag: Option<String>,
    /// Case-insensitive substring of full name, mobile or e-mail.
    pub search: Option<String>,
    pub created_at_gte: Option<OffsetDateTime>,
    pub created_at_lte: Option<OffsetDateTime>,
    pub updated_at_gte: Option<OffsetDateTime>,
    pub updated_at_lte: Option<OffsetDateTime>,
    pub ordering: CustomerOrdering,
}

/// A coupon, known here only by the id another system gave it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CouponId(i64);

impl CouponId {
    pub fn new(raw: i64) -> Option<Self> {
        (raw > 0).then_some(Self(raw))
    }

    pub fn parse(raw: &str) -> Option<Self> {
        CustomerId::parse(raw).and_then(|id| Self::new(id.get()))
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

/// A customer's holding of a coupon.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CouponHolding {
    pub coupon_id: CouponId,
    pub granted_at: OffsetDateTime,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: i64) -> CustomerId {
        CustomerId::new(n).unwrap()
    }

    #[test]
    fn cents_render_with_two_decimals() {
        assert_eq!(Cents(0).to_string(), "0.00");
        assert_eq!(Cents(5).to_string(), "0.05");
        assert_eq!(Cents(123_456).to_string(), "1234.56");
        assert_eq!(Cents(-150).to_string(), "-1.50");
    }

    #[test]
    fn new_customer_needs_an_identity() {
        let errors = CustomerChanges::default()
            .check(None, ("", "", ""))
            .unwrap_err();
        assert!(errors.contains(FieldErrors::NON_FIELD));
        let named = CustomerChanges {
            full_name: Some(FullName::parse("x").unwrap()),
            ..Default::default()
        };
        assert!(named.check(None, ("", "", "")).is_ok());
        let mobile = CustomerChanges {
            mobile: Some(Mobile::parse("12345").unwrap()),
            ..Default::default()
        };
        assert!(mobile.check(None, ("", "", "")).is_ok());
        let email = CustomerChanges {
            email: Some(Email::parse("a@b.co").unwrap()),
            ..Default::default()
        };
        assert!(email.check(None, ("", "", "")).is_ok());
    }

    #[test]
    fn update_cannot_blank_the_last_identity() {
        let blank_mobile = CustomerChanges {
            mobile: Some(None),
            ..Default::default()
        };
        assert!(blank_mobile.check(Some(id(1)), ("12345", "", "")).is_err());
        assert!(blank_mobile
            .check(Some(id(1)), ("12345", "", "Ann"))
            .is_ok());
        assert!(CustomerChanges::default()
            .check(Some(id(1)), ("", "a@b.co", ""))
            .is_ok());
    }

    #[test]
    fn customer_cannot_refer_itself() {
        let changes = CustomerChanges {
            referrer: Some(Some(id(7))),
            ..Default::default()
        };
        let errors = changes.check(Some(id(7)), ("", "", "Ann")).unwrap_err();
        assert!(errors.contains("referrer"));
        assert!(changes.check(Some(id(8)), ("", "", "Ann")).is_ok());
        assert!(changes.check(None, ("", "", "Ann")).is_ok());
    }

    #[test]
    fn ordering_choices() {
        for choice in CustomerOrdering::CHOICES {
            assert_eq!(CustomerOrdering::parse(choice).unwrap().name(), choice);
        }
        assert_eq!(CustomerOrdering::default(), CustomerOrdering::IdDesc);
        assert!(CustomerOrdering::parse("full_name").is_err());
    }

    #[test]
    fn coupon_and_address_ids_are_positive() {
        assert!(CouponId::new(0).is_none());
        assert_eq!(CouponId::parse("222").map(CouponId::get), Some(222));
        assert!(AddressId::parse("x").is_none());
    }
}
