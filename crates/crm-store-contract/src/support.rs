//! Builders and assertions the checks share. Inputs are built only through the
//! domain's parsers, as the services build them.

use std::fmt::Debug;

use crm_domain::customer::{
    Address, AddressChanges, AddressId, Customer, CustomerChanges, CustomerFilter, CustomerId,
    CustomerOrdering, Email, FullName, Metafield, Metafields, Mobile, TagSet,
};
use crm_domain::page::PageRequest;
use crm_domain::time_util::now_micros;
use crm_domain::RepoError;
use time::{Duration, OffsetDateTime};

use crate::Ports;

/// The current instant, with the microsecond precision the stores keep.
pub fn now() -> OffsetDateTime {
    now_micros()
}

/// `base` moved by `seconds`.
pub fn at(base: OffsetDateTime, seconds: i64) -> OffsetDateTime {
    base + Duration::seconds(seconds)
}

pub fn cid(raw: i64) -> CustomerId {
    CustomerId::new(raw).expect("positive id")
}

/// An id no customer has (ids are never that large in a test database).
pub fn missing_customer() -> CustomerId {
    cid(i64::MAX - 7)
}

pub fn missing_address() -> AddressId {
    AddressId::new(i64::MAX - 7).expect("positive id")
}

pub fn mobile(raw: &str) -> Option<Option<Mobile>> {
    Some(Mobile::parse(raw).expect("valid mobile"))
}

pub fn email(raw: &str) -> Option<Option<Email>> {
    Some(Email::parse(raw).expect("valid e-mail"))
}

pub fn full_name(raw: &str) -> Option<FullName> {
    Some(FullName::parse(raw).expect("valid name"))
}

pub fn tags(raw: &[&str]) -> TagSet {
    TagSet::parse(raw).expect("valid tags")
}

/// The tags of `set`, in its order.
pub fn tag_names(set: &TagSet) -> Vec<String> {
    set.iter().map(|t| t.as_str().to_owned()).collect()
}

pub fn metafield(namespace: &str, key: &str, value: &str) -> Metafield {
    Metafield::parse(namespace, key, value).expect("valid metafield")
}

pub fn metafields(items: Vec<Metafield>) -> Metafields {
    Metafields::new(items).expect("distinct metafields")
}

/// Changes that create a customer known only by `name`.
pub fn named(name: &str) -> CustomerChanges {
    CustomerChanges {
        full_name: full_name(name),
        ..Default::default()
    }
}

/// Creates a customer from `changes` at `now`, which must succeed.
pub async fn create_at<S: Ports>(
    store: &S,
    changes: CustomerChanges,
    now: OffsetDateTime,
) -> Customer {
    store
        .create(&changes, now)
        .await
        .unwrap_or_else(|e| panic!("create {changes:?} failed: {e}"))
}

pub async fn create<S: Ports>(store: &S, changes: CustomerChanges) -> Customer {
    create_at(store, changes, now()).await
}

pub async fn create_named<S: Ports>(store: &S, name: &str) -> Customer {
    create(store, named(name)).await
}

pub async fn get<S: Ports>(store: &S, id: CustomerId) -> Customer {
    store
        .get(id)
        .await
        .unwrap_or_else(|e| panic!("get {id} failed: {e}"))
}

/// An address with every text field given, told apart by `label`.
pub fn address(label: &str) -> AddressChanges {
    let mut changes = AddressChanges::default();
    let values = [
        ("full_name", format!("{label} Receiver")),
        ("mobile", "+8613800000000".to_owned()),
        ("place_code", "330106".to_owned()),
        ("province", "Zhejiang".to_owned()),
        ("city", "Hangzhou".to_owned()),
        ("district", "Xihu".to_owned()),
        ("address1", format!("{label} Wensan Road 1")),
        ("address2", "Room 202".to_owned()),
        ("zip", "310012".to_owned()),
    ];
    for (field, value) in values {
        changes
            .set_text(field, &value)
            .expect("valid address field");
    }
    changes
}

/// The one default among `addresses`; panics unless there is exactly one.
pub fn the_default(addresses: &[Address]) -> AddressId {
    let defaults: Vec<AddressId> = addresses
        .iter()
        .filter(|a| a.is_default)
        .map(|a| a.id)
        .collect();
    assert_eq!(
        defaults.len(),
        1,
        "exactly one default address expected: {addresses:#?}"
    );
    defaults[0]
}

/// Every customer matching `filter`, in its ordering, checking that the count
/// agrees with the items.
pub async fn ids<S: Ports>(store: &S, filter: &CustomerFilter) -> Vec<CustomerId> {
    let page = store
        .list(
            filter,
            PageRequest::new(1, Some(PageRequest::MAX_SIZE)).unwrap(),
        )
        .await
        .unwrap_or_else(|e| panic!("list {filter:?} failed: {e}"));
    assert!(page.count <= PageRequest::MAX_SIZE, "test data fits a page");
    assert_eq!(
        page.count,
        page.items.len() as u64,
        "count disagrees with the items for {filter:?}"
    );
    page.items.iter().map(|c| c.id).collect()
}

/// Like [`ids`], in ascending id order whatever the filter's ordering.
pub async fn id_set<S: Ports>(store: &S, filter: &CustomerFilter) -> Vec<CustomerId> {
    let filter = CustomerFilter {
        ordering: CustomerOrdering::IdAsc,
        ..filter.clone()
    };
    ids(store, &filter).await
}

/// How many customers the store holds.
pub async fn customer_count<S: Ports>(store: &S) -> u64 {
    store
        .list(&CustomerFilter::default(), PageRequest::default())
        .await
        .expect("list")
        .count
}

/// Sorted ids of `customers`.
pub fn sorted(customers: &[&Customer]) -> Vec<CustomerId> {
    let mut ids: Vec<CustomerId> = customers.iter().map(|c| c.id).collect();
    ids.sort();
    ids
}

#[track_caller]
pub fn expect_not_found<T: Debug>(result: Result<T, RepoError>, what: &str) {
    match result {
        Err(RepoError::NotFound) => {}
        other => panic!("{what}: expected NotFound, got {other:?}"),
    }
}

#[track_caller]
pub fn expect_duplicate<T: Debug>(result: Result<T, RepoError>, field: &str, what: &str) {
    match result {
        Err(RepoError::Duplicate { field: got }) if got == field => {}
        other => panic!("{what}: expected Duplicate {{ field: {field:?} }}, got {other:?}"),
    }
}

/// Checks for `Rejected` with an error on `field`; returns its messages.
#[track_caller]
pub fn expect_rejected<T: Debug>(
    result: Result<T, RepoError>,
    field: &str,
    what: &str,
) -> Vec<String> {
    match result {
        Err(RepoError::Rejected(errors)) if errors.contains(field) => errors
            .iter()
            .filter(|(f, _)| *f == field)
            .flat_map(|(_, messages)| messages.iter().cloned())
            .collect(),
        other => panic!("{what}: expected Rejected with a {field:?} error, got {other:?}"),
    }
}
