//! Turning request bodies and query strings into domain requests
//! (`try_into_domain`): every field parsed by the domain's own value types,
//! every problem reported under its field name.

use crm_domain::customer::{
    AddressChanges, Avatar, Birthday, CouponId, CustomerChanges, CustomerFilter, CustomerId,
    CustomerOrdering, Email, FullName, Gender, Metafield, Metafields, Mobile, MultipassIdentifier,
    Note, ProfilePatch, ReferralCode, TagSet,
};
use crm_domain::event::{EventKind, EventQuery, MAX_EVENT_PAGE};
use crm_domain::segment::SegmentTitle;
use crm_domain::webhook::{
    parse_description, EndpointInput, EndpointPatch, EndpointUrl, Subscription,
};
use crm_domain::{text, FieldErrors};
use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::{Date, OffsetDateTime, UtcOffset};

use crate::fields::{self, as_date, as_integer, as_text, type_name, Fields};

fn expect_list(value: &Value) -> Result<&Vec<Value>, String> {
    match value {
        Value::Array(items) => Ok(items),
        Value::Null => Err(fields::NOT_NULL.into()),
        other => Err(format!(
            "Expected a list of items but got type \"{}\".",
            type_name(other)
        )),
    }
}

fn tags(value: &Value) -> Result<TagSet, String> {
    let items = expect_list(value)?;
    let texts: Vec<String> = items
        .iter()
        .enumerate()
        .map(|(i, v)| as_text(v).map_err(|m| format!("Item {i}: {m}")))
        .collect::<Result<_, _>>()?;
    TagSet::parse(&texts).map_err(|errors| errors.join(" "))
}

fn metafields(value: &Value) -> Result<Metafields, String> {
    let items = expect_list(value)?;
    let mut parsed = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let Value::Object(map) = item else {
            return Err(format!(
                "Item {i}: Invalid data. Expected a dictionary, but got {}.",
                type_name(item)
            ));
        };
        let text = |key: &str| -> Result<String, String> {
            match map.get(key) {
                None => Err(format!("Item {i}: {key}: {}", fields::REQUIRED)),
                Some(v) => as_text(v).map_err(|m| format!("Item {i}: {key}: {m}")),
            }
        };
        let (namespace, key, value) = (text("namespace")?, text("key")?, text("value")?);
        parsed.push(
            Metafield::parse(&namespace, &key, &value).map_err(|m| format!("Item {i}: {m}"))?,
        );
    }
    Metafields::new(parsed)
}

fn referrer(value: &Value) -> Result<CustomerId, String> {
    let raw = as_integer(value).map_err(|_| {
        format!(
            "Incorrect type. Expected pk value, received {}.",
            type_name(value)
        )
    })?;
    CustomerId::new(raw).ok_or_else(|| format!("Invalid pk \"{raw}\" - object does not exist."))
}

/// An avatar: the domain's rule, and a URL that parses with a host (as DRF's
/// URLField checks), so `http://[` is refused.
fn avatar(raw: &str) -> Result<Avatar, String> {
    let avatar = Avatar::parse(raw)?;
    let text = avatar.as_str();
    let has_host = |url: url::Url| url.host_str().is_some_and(|h| !h.is_empty());
    if !text.is_empty() && !url::Url::parse(text).is_ok_and(has_host) {
        return Err("Enter a valid URL.".into());
    }
    Ok(avatar)
}

/// A customer create or update body. `today` bounds the birthday.
pub fn customer_changes(body: &Value, today: Date) -> Result<CustomerChanges, FieldErrors> {
    let map = fields::object(body)?;
    let mut f = Fields::new(map);
    let mut changes = CustomerChanges {
        mobile: f.text("mobile", Mobile::parse),
        full_name: f.text("full_name", FullName::parse),
        gender: f.text("gender", Gender::parse),
        email: f.text("email", Email::parse),
        birthday: f.get_nullable("birthday", as_date, |d| Birthday::parse(d, today)),
        avatar: f.text("avatar", avatar),
        note: f.text("note", Note::parse),
        accepts_marketing: f.boolean("accepts_marketing"),
        referral_code: f.text("referral_code", ReferralCode::parse),
        referrer: f.get_nullable("referrer", Ok, referrer),
        multipass_identifier: f.get_nullable("multipass_identifier", as_text, |s| {
            MultipassIdentifier::parse(&s)
        }),
        tags: f.get("tags", Ok, tags),
        metafields: f.get("metafields", Ok, metafields),
        ..Default::default()
    };
    match f.raw("profile") {
        None => {}
        Some(Value::Object(profile)) => {
            // Unknown keys are ignored whatever their value, as unknown
            // fields are everywhere.
            let known = profile
                .iter()
                .filter(|(key, _)| ProfilePatch::KEYS.contains(&key.as_str()));
            for (key, value) in known {
                let result = as_text(value).and_then(|s| changes.profile.set(key, &s));
                if let Err(message) = result {
                    f.fail("profile", format!("{key}: {message}"));
                }
            }
        }
        Some(other) => f.fail(
            "profile",
            format!(
                "Invalid data. Expected a dictionary, but got {}.",
                type_name(other)
            ),
        ),
    }
    f.finish(changes)
}

/// An address body.
pub fn address_changes(body: &Value) -> Result<AddressChanges, FieldErrors> {
    let map = fields::object(body)?;
    let mut f = Fields::new(map);
    let mut changes = AddressChanges::default();
    for field in AddressChanges::TEXT_FIELDS {
        if let Some(value) = f.get(field, as_text, Ok) {
            if let Err(message) = changes.set_text(field, &value) {
                f.fail(field, message);
            }
        }
    }
    changes.is_default = f.boolean("is_default");
    f.finish(changes)
}

/// `{"coupon_id": 222}`.
pub fn coupon_id(body: &Value) -> Result<CouponId, FieldErrors> {
    let map = fields::object(body)?;
    let mut f = Fields::new(map);
    if f.raw("coupon_id").is_none() {
        f.fail("coupon_id", fields::REQUIRED);
    }
    let id = f.get("coupon_id", as_integer, |n| {
        CouponId::new(n).ok_or_else(|| "Ensure this value is greater than or equal to 1.".into())
    });
    f.finish(id)
        .map(|id| id.expect("present when there is no error"))
}

/// `{"title": "..."}`; with `required`, a missing title is an error.
pub fn segment_title(body: &Value, required: bool) -> Result<Option<SegmentTitle>, FieldErrors> {
    let map = fields::object(body)?;
    let mut f = Fields::new(map);
    if required && f.raw("title").is_none() {
        f.fail("title", fields::REQUIRED);
    }
    let title = f.text("title", SegmentTitle::parse);
    f.finish(title)
}

/// `[{"customer_id": 2}, ...]`.
pub fn segment_customer_ids(body: &Value) -> Result<Vec<CustomerId>, FieldErrors> {
    let Value::Array(items) = body else {
        return Err(FieldErrors::single(
            FieldErrors::NON_FIELD,
            format!(
                "Expected a list of items but got type \"{}\".",
                type_name(body)
            ),
        ));
    };
    let mut errors = FieldErrors::new();
    let mut ids = Vec::with_capacity(items.len());
    let mut missing = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let Value::Object(map) = item else {
            errors.add(
                FieldErrors::NON_FIELD,
                format!(
                    "Item {i}: Invalid data. Expected a dictionary, but got {}.",
                    type_name(item)
                ),
            );
            continue;
        };
        match map.get("customer_id") {
            None => errors.add("customer_id", format!("Item {i}: {}", fields::REQUIRED)),
            Some(value) => match as_integer(value) {
                Ok(n) => match CustomerId::new(n) {
                    Some(id) => ids.push(id),
                    None => missing.push(n.to_string()),
                },
                Err(message) => errors.add("customer_id", format!("Item {i}: {message}")),
            },
        }
    }
    if !missing.is_empty() {
        errors.add(
            "customer_id",
            format!(
                "Invalid pk \"{}\" - object does not exist.",
                missing.join(", ")
            ),
        );
    }
    errors.into_result().map(|()| ids)
}

/// An endpoint's `events`: a list of event type names, or `["*"]`.
fn subscription(value: &Value) -> Result<Subscription, String> {
    let items = expect_list(value)?;
    let names: Vec<String> = items
        .iter()
        .enumerate()
        .map(|(i, v)| as_text(v).map_err(|m| format!("Item {i}: {m}")))
        .collect::<Result<_, _>>()?;
    Subscription::parse(&names)
}

/// A webhook endpoint's writable fields (`url`, `events`, `description`,
/// `is_active`); with `required`, a missing `url` or `events` is an error.
/// Fields left out are `None`.
fn endpoint_fields(body: &Value, required: bool) -> Result<EndpointPatch, FieldErrors> {
    let map = fields::object(body)?;
    let mut f = Fields::new(map);
    if required {
        for name in ["url", "events"] {
            if f.raw(name).is_none() {
                f.fail(name, fields::REQUIRED);
            }
        }
    }
    let patch = EndpointPatch {
        url: f.text("url", EndpointUrl::parse),
        subscription: f.get("events", Ok, subscription),
        description: f.text("description", parse_description),
        is_active: f.boolean("is_active"),
    };
    f.finish(patch)
}

/// A webhook endpoint create body: `url` and `events` required,
/// `description` `""` and `is_active` true when left out.
pub fn endpoint_input(body: &Value) -> Result<EndpointInput, FieldErrors> {
    let patch = endpoint_fields(body, true)?;
    Ok(EndpointInput {
        url: patch.url.expect("a required url is present"),
        subscription: patch.subscription.expect("required events are present"),
        description: patch.description.unwrap_or_default(),
        is_active: patch.is_active.unwrap_or(true),
    })
}

/// A webhook endpoint PUT or PATCH body: fields left out keep their values.
pub fn endpoint_patch(body: &Value) -> Result<EndpointPatch, FieldErrors> {
    endpoint_fields(body, false)
}

/// The query parameters that take comma-separated lists: given more than
/// once, their values are combined as if joined by commas (`?id__in=1&id__in=2`
/// is `?id__in=1,2`), because OpenAPI client generators send arrays that way.
pub const LIST_PARAMETERS: &[&str] = &["id__in", "customer__in"];

/// The message for any other parameter given more than once.
pub const GIVEN_ONCE: &str = "This parameter may be given only once.";

/// A request's query parameters. Every parameter has one value: the values of
/// a repeated [`LIST_PARAMETERS`] entry are combined, and any other repeated
/// parameter is refused (nothing is silently dropped).
#[derive(Debug)]
pub struct Query {
    /// As given, in order (the pagination links keep them).
    pairs: Vec<(String, String)>,
    /// One value per name.
    values: Vec<(String, String)>,
}

impl Query {
    /// Parses a query string; a parameter other than the list filters given
    /// more than once is a 400 under its name.
    pub fn parse(query_string: &str) -> Result<Self, FieldErrors> {
        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query_string.as_bytes())
            .into_owned()
            .collect();
        let mut values: Vec<(String, String)> = Vec::with_capacity(pairs.len());
        // Where each name is in `values`: one lookup per pair, however many
        // parameters a query string holds.
        let mut positions: std::collections::HashMap<&str, usize> =
            std::collections::HashMap::with_capacity(pairs.len());
        let mut errors = FieldErrors::new();
        for (name, value) in &pairs {
            let seen = positions.get(name.as_str()).copied();
            match seen.map(|i| &mut values[i]) {
                None => {
                    positions.insert(name, values.len());
                    values.push((name.clone(), value.clone()));
                }
                Some((_, combined)) if LIST_PARAMETERS.contains(&name.as_str()) => {
                    if !value.trim().is_empty() {
                        if !combined.trim().is_empty() {
                            combined.push(',');
                        }
                        combined.push_str(value);
                    }
                }
                Some(_) => {
                    if !errors.contains(name) {
                        errors.add(name.clone(), GIVEN_ONCE);
                    }
                }
            }
        }
        errors.into_result().map(|()| Self { pairs, values })
    }

    /// The value of `name` (for a list filter, every value given, joined by
    /// commas).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Like `get`, but an empty value counts as absent (django-filter).
    pub fn non_empty(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|v| !v.trim().is_empty())
    }

    /// The parameters as given, in order.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }
}

const ENTER_A_NUMBER: &str = "Enter a number.";

fn number(raw: &str) -> Result<i64, String> {
    raw.trim()
        .parse::<i64>()
        .map_err(|_| ENTER_A_NUMBER.to_owned())
}

fn numbers(raw: &str) -> Result<Vec<i64>, String> {
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<i64>()
                .map_err(|_| "Enter a comma-separated list of numbers.".to_owned())
        })
        .collect()
}

fn instant(raw: &str) -> Result<OffsetDateTime, String> {
    // A '+' in a query string arrives as a space; put it back.
    let fixed = raw.trim().replace(' ', "+");
    OffsetDateTime::parse(&fixed, &Rfc3339)
        .ok()
        // The store compares in UTC; an instant with no UTC equivalent in
        // range (9999-12-31T23:59:59-23:59) is as malformed as any other.
        .filter(|t| t.checked_to_offset(UtcOffset::UTC).is_some())
        .ok_or_else(|| "Enter a valid date/time (RFC 3339, e.g. 2024-01-31T12:00:00Z).".to_owned())
}

/// A text filter value; PostgreSQL cannot compare text holding NUL.
fn text_value(raw: &str) -> Result<String, String> {
    text::no_null_characters(raw)?;
    Ok(raw.trim().to_owned())
}

/// The customer list filters. A malformed value is an error, never ignored.
pub fn customer_filter(query: &Query) -> Result<CustomerFilter, FieldErrors> {
    let mut errors = FieldErrors::new();
    let read = |name: &str| query.non_empty(name).map(str::to_owned);
    let mut filter = CustomerFilter::default();
    {
        let num = |name: &str, errors: &mut FieldErrors| {
            read(name).and_then(|raw| errors.check(name, number(&raw)))
        };
        filter.id = num("id", &mut errors);
        filter.coupon = num("coupon", &mut errors);
        filter.coupon_exclude = num("coupon__exclude", &mut errors);
        filter.segment = num("segment", &mut errors);
        filter.segment_exclude = num("segment__exclude", &mut errors);
    }
    filter.id_in = query
        .non_empty("id__in")
        .and_then(|raw| errors.check("id__in", numbers(raw)));
    for (name, slot) in [
        ("mobile", &mut filter.mobile),
        ("email", &mut filter.email),
        ("tag", &mut filter.tag),
        ("search", &mut filter.search),
    ] {
        *slot = query
            .non_empty(name)
            .and_then(|raw| errors.check(name, text_value(raw)));
    }
    for (name, slot) in [
        ("created_at__gte", &mut filter.created_at_gte),
        ("created_at__lte", &mut filter.created_at_lte),
        ("updated_at__gte", &mut filter.updated_at_gte),
        ("updated_at__lte", &mut filter.updated_at_lte),
    ] {
        *slot = query
            .non_empty(name)
            .and_then(|raw| errors.check(name, instant(raw)));
    }
    if let Some(raw) = query.non_empty("ordering") {
        if let Some(ordering) = errors.check("ordering", CustomerOrdering::parse(raw.trim())) {
            filter.ordering = ordering;
        }
    }
    errors.into_result().map(|()| filter)
}

/// What a read of the change feed asks for (`after`, `limit`, `type`,
/// `customer`; API.md section 8), and whether it can match nothing at all
/// (a customer id below 1, which is not an error).
pub fn event_query(query: &Query) -> Result<(EventQuery, bool), FieldErrors> {
    let mut errors = FieldErrors::new();
    let mut events = EventQuery::default();
    let mut matches_nothing = false;
    if let Some(raw) = query.non_empty("after") {
        match number(raw) {
            Ok(after) if after < 0 => {
                errors.add("after", "Ensure this value is greater than or equal to 0.")
            }
            Ok(after) => events.after = after,
            Err(message) => errors.add("after", message),
        }
    }
    if let Some(raw) = query.non_empty("limit") {
        match number(raw) {
            Ok(limit) if limit < 1 => {
                errors.add("limit", "Ensure this value is greater than or equal to 1.")
            }
            Ok(limit) => {
                events.limit = usize::try_from(limit)
                    .unwrap_or(usize::MAX)
                    .min(MAX_EVENT_PAGE)
            }
            Err(message) => errors.add("limit", message),
        }
    }
    if let Some(raw) = query.non_empty("type") {
        for name in raw.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            match EventKind::from_name(name) {
                Some(kind) => events.kinds.push(kind),
                None => errors.add("type", format!("\"{name}\" is not a valid choice.")),
            }
        }
    }
    if let Some(raw) = query.non_empty("customer") {
        match number(raw) {
            Ok(id) => match CustomerId::new(id) {
                Some(id) => events.customer = Some(id),
                None => matches_nothing = true,
            },
            Err(message) => errors.add("customer", message),
        }
    }
    errors.into_result().map(|()| (events, matches_nothing))
}

/// `customer__in=1,2,3` for removing segment members; required.
pub fn customer_in(query: &Query) -> Result<Vec<CustomerId>, FieldErrors> {
    let name = "customer__in";
    let Some(raw) = query.non_empty(name) else {
        return Err(FieldErrors::single(name, fields::REQUIRED));
    };
    let ids = numbers(raw).map_err(|m| FieldErrors::single(name, m))?;
    // Non-positive ids name no customer, so there is nothing to remove.
    Ok(ids.into_iter().filter_map(CustomerId::new).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use time::macros::date;

    const TODAY: Date = date!(2024 - 01 - 01);

    fn query(text: &str) -> Query {
        Query::parse(text).expect("no repeated parameter")
    }

    #[test]
    fn event_queries_read_every_parameter_and_report_every_problem() {
        let (read, nothing) = event_query(&query(
            "after=12&limit=5000&type=customer.created,%20segment.deleted,&customer=7",
        ))
        .unwrap();
        assert!(!nothing);
        assert_eq!(read.after, 12);
        assert_eq!(read.limit, MAX_EVENT_PAGE);
        assert_eq!(
            read.kinds,
            [EventKind::CustomerCreated, EventKind::SegmentDeleted]
        );
        assert_eq!(read.customer, CustomerId::new(7));
        assert_eq!(
            event_query(&query("after=&limit=&type=&customer=")).unwrap(),
            (EventQuery::default(), false)
        );
        let (read, nothing) = event_query(&query("after=3&customer=0")).unwrap();
        assert!(nothing);
        assert_eq!(read.after, 3);
        let errors =
            event_query(&query("after=-1&limit=0&type=customer,x&customer=a")).unwrap_err();
        for field in ["after", "limit", "type", "customer"] {
            assert!(errors.contains(field), "{field}: {errors:?}");
        }
        let errors = event_query(&query("after=1.5&limit=x&type=customer")).unwrap_err();
        assert_eq!(
            errors.iter().find(|(f, _)| *f == "type").unwrap().1,
            ["\"customer\" is not a valid choice."]
        );
        assert!(errors.contains("after") && errors.contains("limit"));
    }

    #[test]
    fn mobile_as_number_is_stored_as_text() {
        let changes = customer_changes(&json!({"mobile": 13000000000u64}), TODAY).unwrap();
        assert_eq!(changes.mobile.unwrap().unwrap().as_str(), "13000000000");
    }

    #[test]
    fn every_bad_field_is_reported() {
        let errors = customer_changes(
            &json!({"gender": "x", "email": "nope", "accepts_marketing": "maybe", "birthday": "2030-01-01", "tags": "a"}),
            TODAY,
        )
        .unwrap_err();
        for field in ["gender", "email", "accepts_marketing", "birthday", "tags"] {
            assert!(errors.contains(field), "{field}: {errors:?}");
        }
    }

    #[test]
    fn nulls() {
        let changes = customer_changes(
            &json!({"birthday": null, "referrer": null, "multipass_identifier": null}),
            TODAY,
        )
        .unwrap();
        assert_eq!(changes.birthday, Some(None));
        assert_eq!(changes.referrer, Some(None));
        assert_eq!(changes.multipass_identifier, Some(None));
        let errors = customer_changes(&json!({"mobile": null}), TODAY).unwrap_err();
        assert!(errors.contains("mobile"));
    }

    /// Found by schemathesis: an unknown profile key holding a non-string
    /// (`{"profile": {"x": {}}}`) was a 400 instead of being ignored.
    #[test]
    fn unknown_profile_keys_are_ignored_whatever_their_value() {
        let changes = customer_changes(
            &json!({"profile": {"x": {"y": false}, "z": null, "source_name": "web"}}),
            TODAY,
        )
        .unwrap();
        assert_eq!(changes.profile.source_name.as_deref(), Some("web"));
        assert_eq!(changes.profile.campaign_name, None);
        let errors = customer_changes(&json!({"profile": {"source_name": {}}}), TODAY).unwrap_err();
        assert!(errors.contains("profile"));
    }

    /// Found by schemathesis: `http://[` (an unclosed IPv6 host) was stored
    /// as an avatar, and clients that parse it fail.
    #[test]
    fn avatar_must_parse_as_a_url() {
        for bad in [
            "http://[",
            "http://[::1",
            "https://a b",
            "ftp://x",
            "http://",
        ] {
            let errors = customer_changes(&json!({ "avatar": bad }), TODAY).unwrap_err();
            assert!(errors.contains("avatar"), "{bad}");
        }
        for good in [
            "",
            "https://example.com/a.png",
            "http://[::1]:8080/x",
            "http://a",
        ] {
            assert!(
                customer_changes(&json!({ "avatar": good }), TODAY).is_ok(),
                "{good}"
            );
        }
    }

    #[test]
    fn body_must_be_an_object() {
        let errors = customer_changes(&json!([1]), TODAY).unwrap_err();
        assert!(errors.contains(FieldErrors::NON_FIELD));
    }

    #[test]
    fn filters_refuse_malformed_values() {
        let errors = customer_filter(&query(
            "id=abc&id__in=1,x&ordering=name&created_at__gte=yesterday",
        ))
        .unwrap_err();
        for field in ["id", "id__in", "ordering", "created_at__gte"] {
            assert!(errors.contains(field), "{field}");
        }
        let errors = customer_filter(&query(
            "search=a%00&tag=%00&created_at__lte=9999-12-31T23:59:59-23:59",
        ))
        .unwrap_err();
        for field in ["search", "tag", "created_at__lte"] {
            assert!(errors.contains(field), "{field}");
        }
        let filter = customer_filter(&query(
            "id=&unknown=1&id__in=1,2&created_at__gte=2024-01-01T00:00:00+08:00",
        ))
        .unwrap();
        assert_eq!(filter.id, None);
        assert_eq!(filter.id_in, Some(vec![1, 2]));
        assert!(filter.created_at_gte.is_some());
    }

    #[test]
    fn repeated_list_filters_are_combined() {
        let filter = customer_filter(&query("id__in=1&id__in=2,3&id__in=")).unwrap();
        assert_eq!(filter.id_in, Some(vec![1, 2, 3]));
        let filter = customer_filter(&query("id__in=&id__in=4")).unwrap();
        assert_eq!(filter.id_in, Some(vec![4]));
        assert_eq!(query("id__in=&id__in=").non_empty("id__in"), None);
        let ids = customer_in(&query("customer__in=4&customer__in=5")).unwrap();
        assert_eq!(ids.iter().map(|i| i.get()).collect::<Vec<_>>(), [4, 5]);
        // The links keep the parameters as given.
        assert_eq!(query("id__in=1&id__in=2").pairs().len(), 2);
    }

    #[test]
    fn other_repeated_parameters_are_refused() {
        let errors = Query::parse("id=abc&id=3&page=1&page=1&page=2&ordering=id").unwrap_err();
        assert!(
            errors.contains("id") && errors.contains("page"),
            "{errors:?}"
        );
        assert!(!errors.contains("ordering"));
        assert_eq!(errors.iter().count(), 2);
        for field in ["id", "page"] {
            let messages: Vec<_> = errors
                .iter()
                .find(|(f, _)| *f == field)
                .map(|(_, m)| m.to_vec())
                .unwrap();
            assert_eq!(messages, [GIVEN_ONCE]);
        }
        assert!(Query::parse("unknown=1&unknown=2").is_err());
    }

    #[test]
    fn segment_customer_body() {
        let ids = segment_customer_ids(&json!([{"customer_id": 2}, {"customer_id": "3"}])).unwrap();
        assert_eq!(ids.iter().map(|i| i.get()).collect::<Vec<_>>(), [2, 3]);
        assert!(segment_customer_ids(&json!({"customer_id": 2})).is_err());
        assert!(segment_customer_ids(&json!([{"id": 2}]))
            .unwrap_err()
            .contains("customer_id"));
        assert!(segment_customer_ids(&json!([2])).is_err());
    }

    /// The messages of `field` in `errors`.
    fn messages(errors: &FieldErrors, field: &str) -> Vec<String> {
        errors
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, m)| m.to_vec())
            .unwrap_or_default()
    }

    #[test]
    fn endpoint_create_reads_every_field_with_defaults() {
        let input = endpoint_input(&json!({
            "url": " https://hooks.example.com/crm ",
            "events": ["customer.updated", "customer.created", "customer.updated"],
            "id": 7, "secret": "whsec_x", "created_at": "2020-01-01", "unknown": [1],
        }))
        .unwrap();
        assert_eq!(input.url.as_str(), "https://hooks.example.com/crm");
        assert_eq!(
            input.subscription.names(),
            ["customer.created", "customer.updated"]
        );
        assert_eq!(input.description, "");
        assert!(input.is_active);
        let input = endpoint_input(&json!({
            "url": "http://203.0.113.10:8080/hook", "events": ["*"],
            "description": "  CRM sync ", "is_active": "false",
        }))
        .unwrap();
        assert_eq!(input.subscription, Subscription::All);
        assert_eq!(input.description, "CRM sync");
        assert!(!input.is_active);
    }

    #[test]
    fn endpoint_create_requires_url_and_events() {
        let errors = endpoint_input(&json!({})).unwrap_err();
        assert_eq!(messages(&errors, "url"), [fields::REQUIRED]);
        assert_eq!(messages(&errors, "events"), [fields::REQUIRED]);
        assert_eq!(errors.iter().count(), 2);
        let errors = endpoint_input(&json!({"url": null, "events": null})).unwrap_err();
        assert_eq!(messages(&errors, "url"), [fields::NOT_NULL]);
        assert_eq!(messages(&errors, "events"), [fields::NOT_NULL]);
        let errors = endpoint_input(&json!([])).unwrap_err();
        assert_eq!(
            messages(&errors, FieldErrors::NON_FIELD),
            ["Invalid data. Expected a dictionary, but got list."]
        );
    }

    #[test]
    fn endpoint_url_rules_and_messages() {
        let events = json!(["customer.created"]);
        let url_error = |url: Value| {
            messages(
                &endpoint_input(&json!({"url": url, "events": events})).unwrap_err(),
                "url",
            )
        };
        assert_eq!(url_error(json!("")), ["This field may not be blank."]);
        assert_eq!(
            url_error(json!("hooks.example.com")),
            ["Enter a valid URL."]
        );
        assert_eq!(url_error(json!("http://")), ["Enter a valid URL."]);
        assert_eq!(
            url_error(json!("ftp://203.0.113.10/hook")),
            ["Enter a valid URL with the scheme http or https."]
        );
        assert_eq!(
            url_error(json!(format!("https://a.example/{}", "a".repeat(2000)))),
            ["Ensure this field has no more than 2000 characters."]
        );
        assert_eq!(url_error(json!(true)), ["Not a valid string."]);
        assert_eq!(
            url_error(json!(["http://a.example/"])),
            ["Not a valid string."]
        );
        // The address is the service's question (its AddressGuard), not the
        // parser's.
        assert!(
            endpoint_input(&json!({"url": "http://127.0.0.1:9/hook", "events": events})).is_ok()
        );
    }

    #[test]
    fn endpoint_events_rules_and_messages() {
        let events_error = |events: Value| {
            messages(
                &endpoint_input(&json!({"url": "https://a.example/", "events": events}))
                    .unwrap_err(),
                "events",
            )
        };
        assert_eq!(
            events_error(json!("customer.created")),
            ["Expected a list of items but got type \"str\"."]
        );
        assert_eq!(
            events_error(json!({"customer.created": true})),
            ["Expected a list of items but got type \"dict\"."]
        );
        assert_eq!(events_error(json!([])), ["This list may not be empty."]);
        assert_eq!(
            events_error(json!(["*", "customer.created"])),
            ["\"*\" must be the only event type."]
        );
        assert_eq!(
            events_error(json!(["customer.created", "customer"])),
            ["\"customer\" is not a valid choice."]
        );
        assert_eq!(
            events_error(json!(["customer.created", null])),
            ["Item 1: This field may not be null."]
        );
        assert_eq!(
            events_error(json!([["customer.created"]])),
            ["Item 0: Not a valid string."]
        );
        let input =
            endpoint_input(&json!({"url": "https://a.example/", "events": ["*", "*"]})).unwrap();
        assert_eq!(input.subscription, Subscription::All);
    }

    #[test]
    fn endpoint_description_and_is_active_rules_and_messages() {
        let body = |extra: Value| {
            let mut body = json!({"url": "https://a.example/", "events": ["*"]});
            body.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            endpoint_input(&body)
        };
        let errors =
            body(json!({"description": "d".repeat(256), "is_active": "maybe"})).unwrap_err();
        assert_eq!(
            messages(&errors, "description"),
            ["Ensure this field has no more than 255 characters."]
        );
        assert_eq!(messages(&errors, "is_active"), [fields::INVALID_BOOLEAN]);
        let errors = body(json!({"description": null, "is_active": null})).unwrap_err();
        assert_eq!(messages(&errors, "description"), [fields::NOT_NULL]);
        assert_eq!(messages(&errors, "is_active"), [fields::NOT_NULL]);
        let errors = body(json!({"description": {}})).unwrap_err();
        assert_eq!(messages(&errors, "description"), ["Not a valid string."]);
        let input = body(json!({"description": 42, "is_active": 0})).unwrap();
        assert_eq!((input.description.as_str(), input.is_active), ("42", false));
        assert_eq!(
            body(json!({"description": "d".repeat(255)}))
                .unwrap()
                .description
                .len(),
            255
        );
    }

    #[test]
    fn endpoint_patch_leaves_out_what_is_not_given() {
        assert_eq!(
            endpoint_patch(&json!({})).unwrap(),
            EndpointPatch::default()
        );
        let patch =
            endpoint_patch(&json!({"is_active": false, "secret": "whsec_x", "id": 1})).unwrap();
        assert_eq!(
            patch,
            EndpointPatch {
                is_active: Some(false),
                ..Default::default()
            }
        );
        let patch =
            endpoint_patch(&json!({"events": ["segment.deleted"], "description": ""})).unwrap();
        assert_eq!(patch.url, None);
        assert_eq!(patch.subscription.unwrap().names(), ["segment.deleted"]);
        assert_eq!(patch.description.as_deref(), Some(""));
        let errors =
            endpoint_patch(&json!({"url": "", "events": [], "is_active": "x"})).unwrap_err();
        for field in ["url", "events", "is_active"] {
            assert!(errors.contains(field), "{field}: {errors:?}");
        }
    }
}
