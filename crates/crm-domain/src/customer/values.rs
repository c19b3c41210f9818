//! Validated value types of a customer: each can only exist when valid
//! ("parse, don't validate"). Parsers return the DRF-style message on failure.

use std::fmt;

use time::Date;

use crate::text;

macro_rules! string_newtype {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_inner(self) -> String {
                self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

/// Positive 64-bit integer identifying a customer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CustomerId(i64);

impl CustomerId {
    /// Accepts positive integers only.
    pub fn new(raw: i64) -> Option<Self> {
        (raw > 0).then_some(Self(raw))
    }

    /// Parses the decimal text of a positive id (a path segment, a query value).
    pub fn parse(raw: &str) -> Option<Self> {
        if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        raw.parse::<i64>().ok().and_then(Self::new)
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

impl fmt::Display for CustomerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

string_newtype!(
    /// A mobile number: an optional `+` then 5 to 20 digits.
    Mobile
);

impl Mobile {
    /// Trims `raw`; a blank value means "no mobile" (`Ok(None)`).
    pub fn parse(raw: &str) -> Result<Option<Self>, String> {
        let value = raw.trim();
        if value.is_empty() {
            return Ok(None);
        }
        let digits = value.strip_prefix('+').unwrap_or(value);
        let valid = (5..=20).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit());
        if !valid {
            return Err("Enter a valid mobile number: an optional + then 5 to 20 digits.".into());
        }
        Ok(Some(Self(value.to_owned())))
    }

    /// Whether `text` can occur within a valid mobile (in any case): only
    /// if every character is a digit or `+`. A search for other text need
    /// not look at mobiles at all.
    pub fn could_contain(text: &str) -> bool {
        text.chars().all(|c| c == '+' || c.is_ascii_digit())
    }
}

string_newtype!(
    /// An e-mail address, kept as written; compared case-insensitively.
    Email
);

impl Email {
    pub const MAX_CHARS: usize = 254;

    /// Trims `raw`; a blank value means "no e-mail" (`Ok(None)`).
    pub fn parse(raw: &str) -> Result<Option<Self>, String> {
        let value = raw.trim();
        if value.is_empty() {
            return Ok(None);
        }
        if value.chars().count() > Self::MAX_CHARS {
            return Err(text::too_long(Self::MAX_CHARS));
        }
        if !is_valid_email(value) {
            return Err("Enter a valid email address.".into());
        }
        Ok(Some(Self(value.to_owned())))
    }
}

impl Email {
    /// Whether `text` can occur within a valid e-mail address, in any case:
    /// not if it holds whitespace or a character no part of an address may
    /// hold (`"(),:;<>[\]`). A search for such text (a full name with a
    /// space) need not look at e-mails at all. Deliberately loose: letters
    /// are not checked, since lower-casing may turn one into several.
    pub fn could_contain(text: &str) -> bool {
        !text
            .chars()
            .any(|c| c.is_whitespace() || "\"(),:;<>[\\]".contains(c))
    }
}

/// The characters besides letters and digits an e-mail's local part may hold.
const EMAIL_LOCAL_SYMBOLS: &str = "!#$%&'*+/=?^_`{|}~.-";

fn is_valid_email(value: &str) -> bool {
    let Some((local, domain)) = value.rsplit_once('@') else {
        return false;
    };
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local
            .chars()
            .all(|c| c.is_alphanumeric() || EMAIL_LOCAL_SYMBOLS.contains(c));
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels.iter().all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_alphanumeric() || c == '-')
        })
        && labels
            .last()
            .is_some_and(|tld| tld.chars().all(|c| c.is_alphabetic()) && tld.len() >= 2);
    local_ok && domain_ok
}

/// A customer's gender, as the original API names it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Gender {
    #[default]
    Unknown,
    Male,
    Female,
}

impl Gender {
    pub const ALL: [Gender; 3] = [Gender::Unknown, Gender::Male, Gender::Female];

    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw {
            "unknown" => Ok(Self::Unknown),
            "male" => Ok(Self::Male),
            "female" => Ok(Self::Female),
            other => Err(format!("\"{other}\" is not a valid choice.")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::Male => "male",
            Self::Female => "female",
        }
    }
}

/// A birthday: a calendar date that is not in the future.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Birthday(Date);

impl Birthday {
    /// Refuses a date after `today`.
    pub fn parse(date: Date, today: Date) -> Result<Self, String> {
        if date > today {
            return Err("Birthday cannot be in the future.".into());
        }
        Ok(Self(date))
    }

    pub fn date(self) -> Date {
        self.0
    }
}

string_newtype!(
    /// A full name, possibly blank, at most 255 characters.
    FullName
);

impl FullName {
    pub fn parse(raw: &str) -> Result<Self, String> {
        text::bounded(raw, 255).map(Self)
    }

    pub fn is_blank(&self) -> bool {
        self.0.is_empty()
    }
}

string_newtype!(
    /// A free-text note about the customer, at most 10 000 characters.
    Note
);

impl Note {
    pub fn parse(raw: &str) -> Result<Self, String> {
        text::bounded(raw, 10_000).map(Self)
    }
}

string_newtype!(
    /// An avatar URL (http or https) or blank, at most 1024 characters.
    Avatar
);

impl Avatar {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let value = text::bounded(raw, 1024)?;
        if value.is_empty() {
            return Ok(Self(value));
        }
        let rest = value
            .strip_prefix("https://")
            .or_else(|| value.strip_prefix("http://"));
        let host = rest.map(|r| r.split(['/', '?', '#']).next().unwrap_or(""));
        match host {
            Some(h) if !h.is_empty() && !value.contains(char::is_whitespace) => Ok(Self(value)),
            _ => Err("Enter a valid URL.".into()),
        }
    }
}

string_newtype!(
    /// The customer's own referral code, at most 32 characters.
    ReferralCode
);

impl ReferralCode {
    /// Trims `raw`; a blank value means "no code" (`Ok(None)`).
    pub fn parse(raw: &str) -> Result<Option<Self>, String> {
        let value = text::bounded(raw, 32)?;
        Ok((!value.is_empty()).then_some(Self(value)))
    }
}

string_newtype!(
    /// An identifier for multipass sign-in, at most 255 characters.
    MultipassIdentifier
);

impl MultipassIdentifier {
    pub fn parse(raw: &str) -> Result<Self, String> {
        text::required(raw, 255).map(Self)
    }
}

string_newtype!(
    /// A tag: trimmed, 1 to 64 characters.
    Tag
);

impl Tag {
    pub const MAX_CHARS: usize = 64;

    pub fn parse(raw: &str) -> Result<Self, String> {
        text::required(raw, Self::MAX_CHARS).map(Self)
    }
}

/// A customer's tags: duplicates dropped, sorted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TagSet(Vec<Tag>);

impl TagSet {
    /// Parses every tag; all problems are reported, one message each.
    pub fn parse<S: AsRef<str>>(raw: &[S]) -> Result<Self, Vec<String>> {
        let mut tags = Vec::with_capacity(raw.len());
        let mut errors = Vec::new();
        for (index, item) in raw.iter().enumerate() {
            match Tag::parse(item.as_ref()) {
                Ok(tag) => tags.push(tag),
                Err(message) => errors.push(format!("Item {index}: {message}")),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        tags.sort();
        tags.dedup();
        Ok(Self(tags))
    }

    pub fn as_slice(&self) -> &[Tag] {
        &self.0
    }

    pub fn iter(&self) -> impl Iterator<Item = &Tag> {
        self.0.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// One metafield: a namespaced key with a text value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Metafield {
    namespace: String,
    key: String,
    value: String,
}

impl Metafield {
    pub fn parse(namespace: &str, key: &str, value: &str) -> Result<Self, String> {
        let namespace = text::required(namespace, 64).map_err(|m| format!("namespace: {m}"))?;
        let key = text::required(key, 64).map_err(|m| format!("key: {m}"))?;
        let value = text::bounded_untrimmed(value, 4096).map_err(|m| format!("value: {m}"))?;
        Ok(Self {
            namespace,
            key,
            value,
        })
    }

    /// Rebuilds a metafield the store returns; it was validated when written.
    pub fn from_stored(namespace: String, key: String, value: String) -> Self {
        Self {
            namespace,
            key,
            value,
        }
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn value(&self) -> &str {
        &self.value
    }
}

/// A customer's metafields, each (namespace, key) at most once, sorted by it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Metafields(Vec<Metafield>);

impl Metafields {
    /// Refuses a list that names one (namespace, key) twice.
    pub fn new(mut items: Vec<Metafield>) -> Result<Self, String> {
        items.sort_by(|a, b| (&a.namespace, &a.key).cmp(&(&b.namespace, &b.key)));
        if let Some(pair) = items
            .windows(2)
            .find(|w| w[0].namespace == w[1].namespace && w[0].key == w[1].key)
        {
            return Err(format!(
                "Duplicate metafield namespace \"{}\" and key \"{}\".",
                pair[0].namespace, pair[0].key
            ));
        }
        Ok(Self(items))
    }

    pub fn as_slice(&self) -> &[Metafield] {
        &self.0
    }
}

/// Where a customer came from (campaign attribution). Every value ≤ 255 chars.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Profile {
    pub source_name: String,
    pub campaign_name: String,
    pub campaign_source: String,
    pub campaign_medium: String,
    pub campaign_content: String,
    pub campaign_term: String,
}

impl Default for Profile {
    fn default() -> Self {
        Self {
            source_name: "unknown".into(),
            campaign_name: String::new(),
            campaign_source: String::new(),
            campaign_medium: String::new(),
            campaign_content: String::new(),
            campaign_term: String::new(),
        }
    }
}

/// A change to some of a profile's values; `None` keeps the stored one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProfilePatch {
    pub source_name: Option<String>,
    pub campaign_name: Option<String>,
    pub campaign_source: Option<String>,
    pub campaign_medium: Option<String>,
    pub campaign_content: Option<String>,
    pub campaign_term: Option<String>,
}

impl ProfilePatch {
    /// The profile keys, in wire order.
    pub const KEYS: [&'static str; 6] = [
        "source_name",
        "campaign_name",
        "campaign_source",
        "campaign_medium",
        "campaign_content",
        "campaign_term",
    ];

    /// Sets `key` to `raw` after checking it (≤ 255 characters, trimmed).
    /// Unknown keys are ignored, as unknown fields are everywhere.
    pub fn set(&mut self, key: &str, raw: &str) -> Result<(), String> {
        let value = text::bounded(raw, 255)?;
        let slot = match key {
            "source_name" => &mut self.source_name,
            "campaign_name" => &mut self.campaign_name,
            "campaign_source" => &mut self.campaign_source,
            "campaign_medium" => &mut self.campaign_medium,
            "campaign_content" => &mut self.campaign_content,
            "campaign_term" => &mut self.campaign_term,
            _ => return Ok(()),
        };
        *slot = Some(value);
        Ok(())
    }

    pub fn apply_to(&self, profile: &mut Profile) {
        let pairs = [
            (&self.source_name, &mut profile.source_name),
            (&self.campaign_name, &mut profile.campaign_name),
            (&self.campaign_source, &mut profile.campaign_source),
            (&self.campaign_medium, &mut profile.campaign_medium),
            (&self.campaign_content, &mut profile.campaign_content),
            (&self.campaign_term, &mut profile.campaign_term),
        ];
        for (patch, target) in pairs {
            if let Some(value) = patch {
                target.clone_from(value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn search_text_that_no_mobile_or_email_can_hold() {
        use super::{Email, Mobile};
        assert!(Mobile::could_contain("+8613"));
        assert!(Mobile::could_contain(""));
        assert!(!Mobile::could_contain("wang"));
        assert!(!Mobile::could_contain("138 0013"));
        assert!(Email::could_contain("wang.wei@example"));
        assert!(Email::could_contain("o'brien+x"));
        assert!(!Email::could_contain("wang wei"));
        assert!(!Email::could_contain("a,b"));
        // Every valid value can hold its own text.
        let mobile = Mobile::parse("+8613800138000").unwrap().unwrap();
        assert!(Mobile::could_contain(mobile.as_str()));
        let email = Email::parse("Ada.O'Brien+crm@Example.com")
            .unwrap()
            .unwrap();
        assert!(Email::could_contain(&email.as_str().to_lowercase()));
    }

    use super::*;
    use time::macros::date;

    #[test]
    fn customer_id_accepts_positive_decimal_only() {
        assert_eq!(CustomerId::parse("42").map(CustomerId::get), Some(42));
        assert_eq!(CustomerId::parse("0"), None);
        assert_eq!(CustomerId::parse("-1"), None);
        assert_eq!(CustomerId::parse("abc"), None);
        assert_eq!(CustomerId::parse("+1"), None);
        assert_eq!(CustomerId::parse(""), None);
        assert_eq!(CustomerId::parse("99999999999999999999"), None);
        assert_eq!(CustomerId::new(0), None);
    }

    #[test]
    fn mobile_accepts_optional_plus_and_5_to_20_digits() {
        assert_eq!(
            Mobile::parse("13000000000").unwrap().unwrap().as_str(),
            "13000000000"
        );
        assert_eq!(
            Mobile::parse("+8613000000000").unwrap().unwrap().as_str(),
            "+8613000000000"
        );
        assert_eq!(Mobile::parse(" 12345 ").unwrap().unwrap().as_str(), "12345");
        assert!(Mobile::parse("1234").is_err());
        assert!(Mobile::parse(&"1".repeat(21)).is_err());
        assert!(Mobile::parse("130-0000-0000").is_err());
        assert!(Mobile::parse("++12345").is_err());
    }

    #[test]
    fn blank_mobile_means_none() {
        assert_eq!(Mobile::parse("").unwrap(), None);
        assert_eq!(Mobile::parse("  ").unwrap(), None);
    }

    #[test]
    fn email_validation() {
        assert!(Email::parse("dxd.spirits@gmail.com").unwrap().is_some());
        assert!(Email::parse("A.B+c@Example.co.uk").unwrap().is_some());
        assert_eq!(Email::parse("").unwrap(), None);
        for bad in [
            "plain",
            "a@b",
            "@x.com",
            "a@.com",
            "a b@x.com",
            "a@x..com",
            "a@-x.com",
            "a@x.c0m",
        ] {
            assert_eq!(
                Email::parse(bad).unwrap_err(),
                "Enter a valid email address.",
                "{bad}"
            );
        }
    }

    #[test]
    fn email_is_at_most_254_characters() {
        let long = format!("{}@{}.com", "a".repeat(60), "b".repeat(200));
        assert!(long.len() > 254);
        assert!(Email::parse(&long).unwrap_err().contains("254"));
    }

    #[test]
    fn gender_choices() {
        for g in Gender::ALL {
            assert_eq!(Gender::parse(g.as_str()).unwrap(), g);
        }
        assert_eq!(Gender::default(), Gender::Unknown);
        assert_eq!(
            Gender::parse("other").unwrap_err(),
            "\"other\" is not a valid choice."
        );
        assert!(Gender::parse("Male").is_err());
    }

    #[test]
    fn birthday_not_in_future() {
        let today = date!(2024 - 06 - 01);
        assert!(Birthday::parse(date!(2024 - 06 - 01), today).is_ok());
        assert!(Birthday::parse(date!(1986 - 05 - 24), today).is_ok());
        assert!(Birthday::parse(date!(2024 - 06 - 02), today).is_err());
    }

    #[test]
    fn full_name_is_trimmed_and_bounded() {
        assert_eq!(FullName::parse(" Ding ").unwrap().as_str(), "Ding");
        assert!(FullName::parse("").unwrap().is_blank());
        assert!(FullName::parse(&"x".repeat(255)).is_ok());
        assert!(FullName::parse(&"x".repeat(256)).is_err());
    }

    #[test]
    fn note_is_at_most_10000_characters() {
        assert!(Note::parse(&"n".repeat(10_000)).is_ok());
        assert!(Note::parse(&"n".repeat(10_001)).is_err());
    }

    #[test]
    fn avatar_is_a_url_or_blank() {
        assert!(Avatar::parse("").is_ok());
        assert!(Avatar::parse("https://cdn.example.com/a.png").is_ok());
        assert!(Avatar::parse("http://x/a").is_ok());
        assert!(Avatar::parse("ftp://x/a").is_err());
        assert!(Avatar::parse("not a url").is_err());
        assert!(Avatar::parse("https://").is_err());
        assert!(Avatar::parse(&format!("https://x/{}", "a".repeat(1020))).is_err());
    }

    #[test]
    fn referral_code_blank_is_none_and_bounded() {
        assert_eq!(ReferralCode::parse("").unwrap(), None);
        assert_eq!(ReferralCode::parse("ABC").unwrap().unwrap().as_str(), "ABC");
        assert!(ReferralCode::parse(&"c".repeat(33)).is_err());
    }

    #[test]
    fn multipass_identifier_not_blank() {
        assert!(MultipassIdentifier::parse("").is_err());
        assert!(MultipassIdentifier::parse("mp-1").is_ok());
    }

    #[test]
    fn tag_is_trimmed_1_to_64_chars() {
        assert_eq!(Tag::parse(" vip ").unwrap().as_str(), "vip");
        assert!(Tag::parse("  ").is_err());
        assert!(Tag::parse(&"t".repeat(64)).is_ok());
        assert!(Tag::parse(&"t".repeat(65)).is_err());
    }

    #[test]
    fn tag_set_drops_duplicates_and_sorts() {
        let set = TagSet::parse(&["b", "a", " b", "c", "a"]).unwrap();
        let names: Vec<&str> = set.iter().map(Tag::as_str).collect();
        assert_eq!(names, ["a", "b", "c"]);
    }

    #[test]
    fn tag_set_reports_every_bad_item() {
        let errors = TagSet::parse(&["ok", "", &"x".repeat(65)]).unwrap_err();
        assert_eq!(errors.len(), 2);
        assert!(errors[0].starts_with("Item 1"));
        assert!(errors[1].starts_with("Item 2"));
    }

    #[test]
    fn metafield_limits() {
        assert!(Metafield::parse("ns", "k", "v").is_ok());
        assert!(Metafield::parse("", "k", "v").is_err());
        assert!(Metafield::parse("ns", "", "v").is_err());
        assert!(Metafield::parse(&"n".repeat(65), "k", "v").is_err());
        assert!(Metafield::parse("ns", &"k".repeat(65), "v").is_err());
        assert!(Metafield::parse("ns", "k", &"v".repeat(4096)).is_ok());
        assert!(Metafield::parse("ns", "k", &"v".repeat(4097)).is_err());
        assert!(Metafield::parse("ns", "k", "").is_ok());
    }

    #[test]
    fn metafields_unique_per_namespace_and_key() {
        let a = Metafield::parse("ns", "k", "1").unwrap();
        let b = Metafield::parse("ns", "k", "2").unwrap();
        let c = Metafield::parse("other", "k", "3").unwrap();
        assert!(Metafields::new(vec![a.clone(), c.clone()]).is_ok());
        assert!(Metafields::new(vec![a, c, b]).is_err());
    }

    #[test]
    fn profile_defaults_and_patch() {
        let mut profile = Profile::default();
        assert_eq!(profile.source_name, "unknown");
        let mut patch = ProfilePatch::default();
        patch.set("campaign_name", " spring ").unwrap();
        patch.set("unknown_key", "ignored").unwrap();
        assert!(patch.set("campaign_term", &"x".repeat(256)).is_err());
        patch.apply_to(&mut profile);
        assert_eq!(profile.campaign_name, "spring");
        assert_eq!(profile.source_name, "unknown");
    }
}
