//! `WebhookRepository`: endpoints (stored, paged, changed, deleted with
//! their deliveries), the deliveries every event write records for the
//! endpoints active and subscribed at that moment (none for a refused or
//! undone write), the delivery log, claims (due, earliest first, within
//! their limits, never one delivery to two claims that hold), attempts
//! recorded only under the claim that holds, retries, retention of events
//! with pending deliveries, and the figures for monitoring.
//!
//! A store may number events, and so list and claim their deliveries, a
//! moment after the write returned: the checks publish the events
//! (`publish_events`) before they list or claim, and wait for the
//! deliveries they expect.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use crm_domain::auth::{digest, Client, ScopeSet};
use crm_domain::customer::CustomerChanges;
use crm_domain::event::{Event, EventData, EventFeed, EventKind, EventQuery};
use crm_domain::idempotency::{
    Claim, ClaimToken, Fingerprint, IdempotencyKey, StoredResponse, UnitOutcome,
};
use crm_domain::page::PageRequest;
use crm_domain::segment::SegmentTitle;
use crm_domain::webhook::{
    AttemptRecord, ClaimRequest, ClaimedDelivery, Delivery, DeliveryId, DeliveryStats,
    DeliveryStatus, Endpoint, EndpointId, EndpointPatch, EndpointUrl, NewEndpoint, Subscription,
    WebhookSecret,
};
use time::OffsetDateTime;
use tokio::task::JoinSet;

use crate::support::{
    at, create, create_at, create_named, expect_not_found, missing_customer, mobile, named, now,
};
use crate::Ports;

/// How long a check waits for events and deliveries it expects to be
/// listed.
const PATIENCE: Duration = Duration::from_secs(20);

fn title(raw: &str) -> SegmentTitle {
    SegmentTitle::parse(raw).expect("valid title")
}

fn url(label: &str) -> EndpointUrl {
    EndpointUrl::parse(&format!("https://hooks.example.com/{label}")).expect("valid URL")
}

fn only(kinds: &[EventKind]) -> Subscription {
    Subscription::Kinds(kinds.iter().copied().collect())
}

/// An id no endpoint has.
fn missing_endpoint() -> EndpointId {
    EndpointId::new(i64::MAX - 7).expect("positive id")
}

/// An id no delivery has.
fn missing_delivery() -> DeliveryId {
    DeliveryId::new(i64::MAX - 7).expect("positive id")
}

fn all_of_one_page() -> PageRequest {
    PageRequest::new(1, Some(PageRequest::MAX_SIZE)).expect("valid page")
}

/// Creates an endpoint at `https://hooks.example.com/<label>`; returns it
/// with its secret.
async fn create_endpoint<S: Ports>(
    store: &S,
    label: &str,
    subscription: Subscription,
    is_active: bool,
) -> (Endpoint, WebhookSecret) {
    let secret = WebhookSecret::generate().expect("a secret");
    let new = NewEndpoint {
        url: url(label),
        subscription,
        description: String::new(),
        is_active,
        secret: secret.clone(),
        created_at: now(),
    };
    let created = store
        .create_endpoint(&new)
        .await
        .unwrap_or_else(|e| panic!("create endpoint {label} failed: {e}"));
    (created, secret)
}

async fn endpoint<S: Ports>(
    store: &S,
    label: &str,
    subscription: Subscription,
    is_active: bool,
) -> Endpoint {
    create_endpoint(store, label, subscription, is_active)
        .await
        .0
}

async fn set_active<S: Ports>(store: &S, id: EndpointId, is_active: bool) {
    let patch = EndpointPatch {
        is_active: Some(is_active),
        ..Default::default()
    };
    store
        .update_endpoint(id, &patch)
        .await
        .expect("update endpoint");
}

async fn publish<S: Ports>(store: &S) {
    store.publish_events().await.expect("publish events");
}

/// Every delivery of `endpoint` listed now, newest first, checking that
/// the count agrees with the items.
async fn deliveries_of<S: Ports>(store: &S, endpoint: EndpointId) -> Vec<Delivery> {
    publish(store).await;
    let page = store
        .deliveries(endpoint, all_of_one_page())
        .await
        .unwrap_or_else(|e| panic!("deliveries of {endpoint} failed: {e}"));
    assert_eq!(
        page.count,
        page.items.len() as u64,
        "count disagrees with the items"
    );
    page.items
}

/// The deliveries of `endpoint` once `n` are listed; panics when they do
/// not appear in time, or when more appear.
async fn wait_deliveries<S: Ports>(store: &S, endpoint: EndpointId, n: usize) -> Vec<Delivery> {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let deliveries = deliveries_of(store, endpoint).await;
        if deliveries.len() >= n {
            assert_eq!(deliveries.len(), n, "endpoint {endpoint}: {deliveries:#?}");
            return deliveries;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "endpoint {endpoint}: expected {n} deliveries, {} listed: {deliveries:#?}",
            deliveries.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Every event of the feed once `n` are listed; panics when they do not
/// appear in time, or when more appear.
async fn wait_events<S: Ports>(store: &S, n: usize) -> Vec<Event> {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        publish(store).await;
        let query = EventQuery {
            limit: 1000,
            ..Default::default()
        };
        let events = match store.events(&query).await.expect("read the feed") {
            EventFeed::Events(events) => events,
            EventFeed::Expired { first_kept } => panic!("unexpected expiry before {first_kept}"),
        };
        if events.len() >= n {
            assert_eq!(events.len(), n, "{events:#?}");
            return events;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "expected {n} events, {} listed: {events:#?}",
            events.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn event_ids(deliveries: &[Delivery]) -> Vec<i64> {
    deliveries.iter().map(|d| d.event_id).collect()
}

/// A claim at `now` of at most `limit` deliveries, `per_endpoint` of each
/// endpoint, held for a day.
fn request(now: OffsetDateTime, limit: usize, per_endpoint: usize) -> ClaimRequest {
    ClaimRequest {
        now,
        lease_until: at(now, 86_400),
        limit,
        per_endpoint,
        busy: Vec::new(),
    }
}

async fn claim<S: Ports>(store: &S, request: &ClaimRequest) -> Vec<ClaimedDelivery> {
    publish(store).await;
    store
        .claim_deliveries(request)
        .await
        .unwrap_or_else(|e| panic!("claim {request:?} failed: {e}"))
}

/// What the claims hold: (endpoint, event id) pairs, sorted.
fn claimed_pairs(claims: &[ClaimedDelivery]) -> Vec<(EndpointId, i64)> {
    let mut pairs: Vec<_> = claims.iter().map(|c| (c.endpoint, c.event.id)).collect();
    pairs.sort();
    pairs
}

fn the_one(mut claims: Vec<ClaimedDelivery>) -> ClaimedDelivery {
    assert_eq!(claims.len(), 1, "one delivery expected: {claims:#?}");
    claims.pop().expect("one")
}

async fn delivery<S: Ports>(store: &S, endpoint: EndpointId, id: DeliveryId) -> Delivery {
    store
        .delivery(endpoint, id)
        .await
        .unwrap_or_else(|e| panic!("delivery {id} of {endpoint} failed: {e}"))
}

async fn record<S: Ports>(store: &S, claim: &ClaimedDelivery, record: &AttemptRecord) -> bool {
    store
        .record_attempt(claim, record)
        .await
        .unwrap_or_else(|e| panic!("record attempt of {} failed: {e}", claim.id))
}

fn delivered(status_code: u16) -> AttemptRecord {
    AttemptRecord {
        status: DeliveryStatus::Delivered,
        last_status_code: Some(status_code),
        last_error: String::new(),
        next_attempt_at: None,
    }
}

fn failed_for_good(error: &str) -> AttemptRecord {
    AttemptRecord {
        status: DeliveryStatus::Failed,
        last_status_code: None,
        last_error: error.to_owned(),
        next_attempt_at: None,
    }
}

fn to_retry(status_code: u16, next: OffsetDateTime) -> AttemptRecord {
    AttemptRecord {
        status: DeliveryStatus::Pending,
        last_status_code: Some(status_code),
        last_error: format!("HTTP {status_code}"),
        next_attempt_at: Some(next),
    }
}

async fn stats<S: Ports>(store: &S) -> DeliveryStats {
    publish(store).await;
    store.delivery_stats().await.expect("delivery stats")
}

pub async fn endpoints_round_trip_and_page_by_id<S: Ports>(store: Arc<S>) {
    let t = now();
    let new = NewEndpoint {
        url: EndpointUrl::parse("https://hooks.example.com/crm?x=1").unwrap(),
        subscription: only(&[EventKind::CustomerUpdated, EventKind::CustomerCreated]),
        description: "Main".into(),
        is_active: true,
        secret: WebhookSecret::generate().unwrap(),
        created_at: t,
    };
    let a = store.create_endpoint(&new).await.unwrap();
    assert_eq!(a.url, "https://hooks.example.com/crm?x=1");
    assert_eq!(a.subscription, new.subscription);
    assert_eq!(a.description, "Main");
    assert!(a.is_active);
    assert_eq!(a.created_at, t);
    assert_eq!(store.endpoint(a.id).await.unwrap(), a);
    let b = endpoint(&*store, "b", Subscription::All, false).await;
    assert_eq!(b.subscription, Subscription::All);
    assert!(!b.is_active);
    assert_eq!(store.endpoint(b.id).await.unwrap(), b);
    let c = endpoint(&*store, "c", Subscription::All, true).await;
    assert!(a.id < b.id && b.id < c.id, "ids increase");

    let page = |n| PageRequest::new(n, Some(2)).unwrap();
    let first = store.endpoints(page(1)).await.unwrap();
    assert_eq!((first.count, first.items), (3, vec![a.clone(), b.clone()]));
    let second = store.endpoints(page(2)).await.unwrap();
    assert_eq!((second.count, second.items), (3, vec![c.clone()]));
    let past = store.endpoints(page(3)).await.unwrap();
    assert_eq!((past.count, past.items), (3, vec![]));

    // A patch writes only what it gives.
    let unchanged = store
        .update_endpoint(a.id, &EndpointPatch::default())
        .await
        .unwrap();
    assert_eq!(unchanged, a);
    let patch = EndpointPatch {
        is_active: Some(true),
        description: Some("Back".into()),
        ..Default::default()
    };
    let resumed = store.update_endpoint(b.id, &patch).await.unwrap();
    assert_eq!(
        resumed,
        Endpoint {
            is_active: true,
            description: "Back".into(),
            ..b.clone()
        }
    );
    let patch = EndpointPatch {
        url: Some(url("moved")),
        subscription: Some(only(&[EventKind::SegmentDeleted])),
        ..Default::default()
    };
    let moved = store.update_endpoint(b.id, &patch).await.unwrap();
    assert_eq!(
        moved,
        Endpoint {
            url: "https://hooks.example.com/moved".into(),
            subscription: only(&[EventKind::SegmentDeleted]),
            ..resumed
        }
    );
    assert_eq!(store.endpoint(b.id).await.unwrap(), moved);

    let missing = missing_endpoint();
    expect_not_found(store.endpoint(missing).await, "get a missing endpoint");
    expect_not_found(
        store
            .update_endpoint(missing, &EndpointPatch::default())
            .await,
        "update a missing endpoint",
    );
    expect_not_found(
        store.delete_endpoint(missing).await,
        "delete a missing endpoint",
    );
    expect_not_found(
        store.deliveries(missing, PageRequest::default()).await,
        "deliveries of a missing endpoint",
    );

    store.delete_endpoint(b.id).await.unwrap();
    expect_not_found(store.endpoint(b.id).await, "get a deleted endpoint");
    expect_not_found(store.delete_endpoint(b.id).await, "delete it again");
    let left = store.endpoints(PageRequest::default()).await.unwrap();
    assert_eq!((left.count, left.items), (2, vec![a, c]));
}

pub async fn events_fan_out_to_active_subscribed_endpoints<S: Ports>(store: Arc<S>) {
    let all = endpoint(&*store, "all", Subscription::All, true).await;
    let customers = endpoint(
        &*store,
        "customers",
        only(&[EventKind::CustomerCreated, EventKind::CustomerUpdated]),
        true,
    )
    .await;
    let segments = endpoint(
        &*store,
        "segments",
        only(&[EventKind::SegmentCreated]),
        true,
    )
    .await;
    let paused = endpoint(&*store, "paused", Subscription::All, false).await;
    let t0 = now();
    let ann = create_at(&*store, named("Ann"), t0).await;
    let s = store.create_segment(&title("S"), at(t0, 1)).await.unwrap();
    store
        .update(ann.id, &named("Ann Lee"), at(t0, 2))
        .await
        .unwrap();
    let late = endpoint(&*store, "late", Subscription::All, true).await;

    let events = wait_events(&*store, 3).await;
    let got = wait_deliveries(&*store, all.id, 3).await;
    let newest_first: Vec<&Event> = events.iter().rev().collect();
    assert_eq!(
        event_ids(&got),
        newest_first.iter().map(|e| e.id).collect::<Vec<_>>(),
        "every event, newest first"
    );
    assert!(
        got.windows(2).all(|w| w[0].id > w[1].id),
        "by id, descending"
    );
    for (d, e) in got.iter().zip(&newest_first) {
        assert_eq!(d.endpoint, all.id);
        assert_eq!(d.event_kind, e.kind);
        assert_eq!(d.status, DeliveryStatus::Pending);
        assert_eq!(d.attempts, 0);
        assert_eq!(d.last_status_code, None);
        assert_eq!(d.last_error, "");
        assert_eq!(d.next_attempt_at, Some(e.created_at), "due at once");
        assert_eq!(d.created_at, e.created_at);
    }
    assert_eq!(
        event_ids(&deliveries_of(&*store, customers.id).await),
        [events[2].id, events[0].id],
        "only the subscribed kinds"
    );
    assert_eq!(
        event_ids(&deliveries_of(&*store, segments.id).await),
        [events[1].id]
    );
    assert_eq!(deliveries_of(&*store, paused.id).await, [], "inactive");
    assert_eq!(
        deliveries_of(&*store, late.id).await,
        [],
        "nothing from before its creation"
    );

    // Changes to endpoints apply to the events written after them.
    set_active(&*store, paused.id, true).await;
    set_active(&*store, customers.id, false).await;
    let patch = EndpointPatch {
        subscription: Some(only(&[EventKind::CustomerDeleted])),
        ..Default::default()
    };
    store.update_endpoint(segments.id, &patch).await.unwrap();
    store.delete(ann.id, at(t0, 3)).await.unwrap();
    store.delete_segment(s.id, at(t0, 4)).await.unwrap();

    let events = wait_events(&*store, 5).await;
    wait_deliveries(&*store, all.id, 5).await;
    assert_eq!(
        event_ids(&deliveries_of(&*store, paused.id).await),
        [events[4].id, events[3].id],
        "only what came after its activation"
    );
    assert_eq!(
        event_ids(&deliveries_of(&*store, customers.id).await),
        [events[2].id, events[0].id],
        "nothing while inactive"
    );
    assert_eq!(
        event_ids(&deliveries_of(&*store, segments.id).await),
        [events[3].id, events[1].id],
        "the new subscription from now on"
    );
    assert_eq!(
        event_ids(&deliveries_of(&*store, late.id).await),
        [events[4].id, events[3].id]
    );
}

pub async fn deliveries_page_newest_first_with_exact_count<S: Ports>(store: Arc<S>) {
    let ep = endpoint(&*store, "ep", Subscription::All, true).await;
    for i in 0..5 {
        create_named(&*store, &format!("C{i}")).await;
    }
    let all = wait_deliveries(&*store, ep.id, 5).await;
    let page = |n| PageRequest::new(n, Some(2)).unwrap();
    let mut walked = Vec::new();
    for n in 1..=3 {
        let got = store.deliveries(ep.id, page(n)).await.unwrap();
        assert_eq!(got.count, 5);
        assert_eq!(got.items.len(), if n < 3 { 2 } else { 1 });
        walked.extend(got.items);
    }
    assert_eq!(walked, all, "pages give every delivery once, newest first");
    let past = store.deliveries(ep.id, page(4)).await.unwrap();
    assert_eq!((past.count, past.items), (5, vec![]));
}

pub async fn refused_writes_record_no_delivery<S: Ports>(store: Arc<S>) {
    let ep = endpoint(&*store, "ep", Subscription::All, true).await;
    let ann = create(
        &*store,
        CustomerChanges {
            mobile: mobile("13800000001"),
            ..named("Ann")
        },
    )
    .await;
    let s = store.create_segment(&title("S"), now()).await.unwrap();
    let clash = CustomerChanges {
        mobile: mobile("13800000001"),
        ..named("Bob")
    };
    assert!(store.create(&clash, now()).await.is_err());
    let other = create_named(&*store, "Other").await;
    assert!(store.update(other.id, &clash, now()).await.is_err());
    assert!(store
        .add_members(s.id, &[ann.id, missing_customer()], now())
        .await
        .is_err());
    assert!(store.delete(missing_customer(), now()).await.is_err());
    let marker = create_named(&*store, "Marker").await;

    let events = wait_events(&*store, 4).await;
    let kinds: Vec<EventKind> = events.iter().map(|e| e.kind).collect();
    use EventKind::*;
    assert_eq!(
        kinds,
        [
            CustomerCreated,
            SegmentCreated,
            CustomerCreated,
            CustomerCreated
        ]
    );
    assert_eq!(events[3].data.customer_id(), Some(marker.id));
    let got = wait_deliveries(&*store, ep.id, 4).await;
    let mut ids: Vec<i64> = events.iter().map(|e| e.id).collect();
    ids.reverse();
    assert_eq!(event_ids(&got), ids, "one delivery per committed event");
}

pub async fn an_undone_unit_of_work_records_no_delivery<S: Ports>(store: Arc<S>) {
    store
        .insert_client(&Client {
            id: "app".into(),
            name: "app".into(),
            secret_hash: digest("secret of app"),
            scopes: ScopeSet::parse("crm:write").expect("valid scopes"),
            created_at: now(),
        })
        .await
        .expect("insert client");
    let ep = endpoint(&*store, "ep", Subscription::All, true).await;
    let acquire = |k: &'static str| {
        let store = store.clone();
        async move {
            let key = IdempotencyKey::parse(k.as_bytes()).expect("valid key");
            let print = Fingerprint::of("POST", "/api/crm/customer", b"{}");
            let ttl = Duration::from_secs(86_400);
            let stale = Duration::from_secs(60);
            match store
                .claim_key("app", &key, &print, now(), ttl, stale)
                .await
                .expect("claim key")
            {
                Claim::Acquired(token) => token,
                other => panic!("the key should have been acquired: {other:?}"),
            }
        }
    };
    let token: ClaimToken = acquire("undone").await;
    let writer = store.clone();
    let outcome = store
        .run_claimed(
            &token,
            Box::pin(async move {
                create_named(&*writer, "Ghost").await;
                writer.create_segment(&title("Ghost"), now()).await.unwrap();
                None
            }),
        )
        .await
        .unwrap();
    assert_eq!(outcome, UnitOutcome::RolledBack);

    let token = acquire("kept").await;
    let writer = store.clone();
    let kept = store
        .run_claimed(
            &token,
            Box::pin(async move {
                create_named(&*writer, "Kept").await;
                Some(StoredResponse {
                    status: 201,
                    content_type: None,
                    body: Vec::new(),
                })
            }),
        )
        .await
        .unwrap();
    assert_eq!(kept, UnitOutcome::Committed);
    let events = wait_events(&*store, 1).await;
    match &events[0].data {
        EventData::Customer(customer) => assert_eq!(customer.full_name, "Kept"),
        other => panic!("the kept customer's event expected, got {other:?}"),
    }
    let got = wait_deliveries(&*store, ep.id, 1).await;
    assert_eq!(event_ids(&got), [events[0].id]);
}

pub async fn delivery_of_another_endpoint_is_not_found<S: Ports>(store: Arc<S>) {
    let a = endpoint(&*store, "a", Subscription::All, true).await;
    let b = endpoint(&*store, "b", Subscription::All, true).await;
    create_named(&*store, "Ann").await;
    let da = wait_deliveries(&*store, a.id, 1).await.remove(0);
    let db = wait_deliveries(&*store, b.id, 1).await.remove(0);
    assert_ne!(da.id, db.id, "one delivery per endpoint");
    assert_eq!(da.event_id, db.event_id);
    assert_eq!(delivery(&*store, a.id, da.id).await, da);
    assert_eq!(delivery(&*store, b.id, db.id).await, db);
    expect_not_found(
        store.delivery(a.id, db.id).await,
        "delivery of another endpoint",
    );
    expect_not_found(
        store.retry_delivery(a.id, db.id, now()).await,
        "retry of another endpoint's delivery",
    );
    expect_not_found(
        store.delivery(missing_endpoint(), da.id).await,
        "delivery of a missing endpoint",
    );
    expect_not_found(
        store.retry_delivery(missing_endpoint(), da.id, now()).await,
        "retry with a missing endpoint",
    );
    expect_not_found(
        store.delivery(a.id, missing_delivery()).await,
        "missing delivery",
    );
    expect_not_found(
        store.retry_delivery(a.id, missing_delivery(), now()).await,
        "retry of a missing delivery",
    );
    assert_eq!(delivery(&*store, b.id, db.id).await, db, "left as it was");
}

pub async fn claims_take_due_deliveries_earliest_first_within_limits<S: Ports>(store: Arc<S>) {
    let (a, a_secret) = create_endpoint(&*store, "a", Subscription::All, true).await;
    let (b, b_secret) = create_endpoint(&*store, "b", Subscription::All, true).await;
    let t = now();
    let t0 = at(t, -100);
    // Due in another order than written: e1, e0, e2, then e3 much later.
    create_at(&*store, named("C0"), at(t0, 10)).await;
    create_at(&*store, named("C1"), t0).await;
    create_at(&*store, named("C2"), at(t0, 20)).await;
    create_at(&*store, named("Later"), at(t, 3600)).await;
    let events = wait_events(&*store, 4).await;
    let e: Vec<i64> = events.iter().map(|e| e.id).collect();
    wait_deliveries(&*store, a.id, 4).await;
    wait_deliveries(&*store, b.id, 4).await;

    // Two of each endpoint, less what runs already; earliest due first.
    let first = claim(
        &*store,
        &ClaimRequest {
            busy: vec![(a.id, 1)],
            ..request(t, 10, 2)
        },
    )
    .await;
    let mut expected = vec![(a.id, e[1]), (b.id, e[1]), (b.id, e[0])];
    expected.sort();
    assert_eq!(claimed_pairs(&first), expected);
    for c in &first {
        let (label, secret) = if c.endpoint == a.id {
            ("a", &a_secret)
        } else {
            ("b", &b_secret)
        };
        assert_eq!(c.url, format!("https://hooks.example.com/{label}"));
        assert_eq!(&c.secret, secret);
        let listed = events.iter().find(|e| e.id == c.event.id).unwrap();
        assert_eq!(&c.event, listed, "the event as the feed lists it");
        assert_eq!(c.attempts, 0);
        let d = delivery(&*store, c.endpoint, c.id).await;
        assert_eq!(d.event_id, c.event.id);
        assert_eq!(d.status, DeliveryStatus::Pending);
    }
    // The limit in all: the earliest due of every endpoint.
    let second = claim(&*store, &request(t, 1, 5)).await;
    assert_eq!(claimed_pairs(&second), [(a.id, e[0])]);
    // Only what is due.
    let third = claim(&*store, &request(t, 10, 5)).await;
    assert_eq!(claimed_pairs(&third), [(a.id, e[2]), (b.id, e[2])]);
    assert_eq!(claim(&*store, &request(t, 10, 5)).await, []);
    let fourth = claim(&*store, &request(at(t, 3600), 10, 5)).await;
    assert_eq!(claimed_pairs(&fourth), [(a.id, e[3]), (b.id, e[3])]);
    assert_eq!(claim(&*store, &request(at(t, 7200), 10, 5)).await, []);

    let claims: Vec<&ClaimedDelivery> = first
        .iter()
        .chain(&second)
        .chain(&third)
        .chain(&fourth)
        .collect();
    let ids: BTreeSet<DeliveryId> = claims.iter().map(|c| c.id).collect();
    assert_eq!(ids.len(), 8, "every delivery once");
}

pub async fn a_paused_endpoint_keeps_its_deliveries_waiting<S: Ports>(store: Arc<S>) {
    let ep = endpoint(&*store, "ep", Subscription::All, true).await;
    create_named(&*store, "Ann").await;
    let waiting = wait_deliveries(&*store, ep.id, 1).await.remove(0);
    set_active(&*store, ep.id, false).await;
    let t = now();
    assert_eq!(claim(&*store, &request(t, 10, 10)).await, [], "paused");
    assert_eq!(delivery(&*store, ep.id, waiting.id).await, waiting);
    set_active(&*store, ep.id, true).await;
    let resumed = the_one(claim(&*store, &request(t, 10, 10)).await);
    assert_eq!(resumed.id, waiting.id);
}

/// What `calls` concurrent claims of `request` got.
async fn many_claims<S: Ports>(
    store: Arc<S>,
    request: ClaimRequest,
    calls: usize,
) -> Vec<ClaimedDelivery> {
    let mut running = JoinSet::new();
    for _ in 0..calls {
        let store = store.clone();
        let request = request.clone();
        running.spawn(async move {
            store
                .claim_deliveries(&request)
                .await
                .expect("claim deliveries")
        });
    }
    let mut claimed = Vec::new();
    while let Some(claims) = running.join_next().await {
        let claims = claims.expect("a claim task");
        assert!(claims.len() <= request.limit, "within the limit");
        claimed.extend(claims);
    }
    claimed
}

pub async fn concurrent_claims_never_hand_out_a_delivery_twice<S: Ports>(store: Arc<S>) {
    const CUSTOMERS: usize = 20;
    let mut endpoints = Vec::new();
    for label in ["a", "b", "c"] {
        endpoints.push(endpoint(&*store, label, Subscription::All, true).await);
    }
    for i in 0..CUSTOMERS {
        create_named(&*store, &format!("C{i}")).await;
    }
    let mut listed = BTreeSet::new();
    for ep in &endpoints {
        listed.extend(
            wait_deliveries(&*store, ep.id, CUSTOMERS)
                .await
                .iter()
                .map(|d| d.id),
        );
    }
    publish(&*store).await;
    let t = now();
    let request = request(t, 4, 100);
    let (one, two) = tokio::join!(
        many_claims(store.clone(), request.clone(), 8),
        many_claims(store.clone(), request.clone(), 8)
    );
    let mut held: BTreeMap<DeliveryId, i64> = BTreeMap::new();
    for c in one.iter().chain(&two) {
        assert!(
            held.insert(c.id, c.lease).is_none(),
            "delivery {} handed to two claims",
            c.id
        );
    }
    // What the racing claims left is claimed now, each delivery once.
    loop {
        let more = claim(&*store, &request).await;
        if more.is_empty() {
            break;
        }
        for c in more {
            assert!(
                held.insert(c.id, c.lease).is_none(),
                "delivery {} handed to two claims",
                c.id
            );
        }
    }
    let claimed: BTreeSet<DeliveryId> = held.keys().copied().collect();
    assert_eq!(claimed, listed, "every delivery claimed once");
}

pub async fn a_lapsed_claim_is_claimed_again_and_cannot_record<S: Ports>(store: Arc<S>) {
    let ep = endpoint(&*store, "ep", Subscription::All, true).await;
    create_named(&*store, "Ann").await;
    let before = wait_deliveries(&*store, ep.id, 1).await.remove(0);
    let t = now();
    let held_for_a_minute = |now| ClaimRequest {
        lease_until: at(now, 60),
        ..request(now, 10, 10)
    };
    let first = the_one(claim(&*store, &held_for_a_minute(t)).await);
    assert_eq!(first.id, before.id);
    assert_eq!(
        claim(&*store, &held_for_a_minute(at(t, 30))).await,
        [],
        "held"
    );
    // The claim lapses at its lease_until.
    let second = the_one(claim(&*store, &held_for_a_minute(at(t, 60))).await);
    assert_eq!(second.id, before.id, "lapsed: claimed again");
    assert_ne!(second.lease, first.lease);
    assert_eq!(second.attempts, 0);

    assert!(
        !record(&*store, &first, &to_retry(500, at(t, 300))).await,
        "the lapsed claim no longer holds"
    );
    assert_eq!(
        delivery(&*store, ep.id, before.id).await,
        before,
        "nothing written"
    );
    assert!(record(&*store, &second, &delivered(200)).await);
    let after = delivery(&*store, ep.id, before.id).await;
    assert_eq!(after.status, DeliveryStatus::Delivered);
    assert_eq!(after.attempts, 1);
}

pub async fn record_attempt_writes_the_outcome_and_releases_the_claim<S: Ports>(store: Arc<S>) {
    let ep = endpoint(&*store, "ep", Subscription::All, true).await;
    create_named(&*store, "Ann").await;
    let before = wait_deliveries(&*store, ep.id, 1).await.remove(0);
    let t = now();
    let first = the_one(claim(&*store, &request(t, 10, 10)).await);
    let retry_at = at(t, 5);
    assert!(record(&*store, &first, &to_retry(503, retry_at)).await);
    let after = delivery(&*store, ep.id, before.id).await;
    assert_eq!(
        after,
        Delivery {
            status: DeliveryStatus::Pending,
            attempts: 1,
            last_status_code: Some(503),
            last_error: "HTTP 503".into(),
            next_attempt_at: Some(retry_at),
            ..before.clone()
        }
    );
    assert!(
        !record(&*store, &first, &delivered(200)).await,
        "a released claim records nothing more"
    );
    assert_eq!(delivery(&*store, ep.id, before.id).await, after);
    assert_eq!(
        claim(&*store, &request(at(t, 4), 10, 10)).await,
        [],
        "not due yet"
    );
    // Released: claimed again once due, long before the first lease ends.
    let second = the_one(claim(&*store, &request(retry_at, 10, 10)).await);
    assert_eq!(second.id, before.id);
    assert_eq!(second.attempts, 1);
    assert!(record(&*store, &second, &failed_for_good("timeout")).await);
    assert_eq!(
        delivery(&*store, ep.id, before.id).await,
        Delivery {
            status: DeliveryStatus::Failed,
            attempts: 2,
            last_status_code: None,
            last_error: "timeout".into(),
            next_attempt_at: None,
            ..before.clone()
        }
    );
    assert_eq!(
        claim(&*store, &request(at(t, 1_000_000), 10, 10)).await,
        [],
        "a failed delivery is not claimed"
    );

    // A success.
    create_named(&*store, "Bob").await;
    let other = wait_deliveries(&*store, ep.id, 2).await.remove(0);
    let third = the_one(claim(&*store, &request(now(), 10, 10)).await);
    assert_eq!(third.id, other.id);
    assert!(record(&*store, &third, &delivered(204)).await);
    assert_eq!(
        delivery(&*store, ep.id, other.id).await,
        Delivery {
            status: DeliveryStatus::Delivered,
            attempts: 1,
            last_status_code: Some(204),
            last_error: String::new(),
            next_attempt_at: None,
            ..other
        }
    );
    assert_eq!(
        claim(&*store, &request(at(t, 1_000_000), 10, 10)).await,
        [],
        "a delivered delivery is not claimed"
    );
}

pub async fn retry_makes_a_delivery_pending_and_due_now<S: Ports>(store: Arc<S>) {
    let ep = endpoint(&*store, "ep", Subscription::All, true).await;
    for name in ["A", "B", "C"] {
        create_named(&*store, name).await;
    }
    wait_deliveries(&*store, ep.id, 3).await;
    let t = now();
    let claims = claim(&*store, &request(t, 10, 10)).await;
    assert_eq!(claims.len(), 3);
    let outcomes = [
        delivered(204),
        failed_for_good("connection refused"),
        to_retry(503, at(t, 1000)),
    ];
    for (c, outcome) in claims.iter().zip(&outcomes) {
        assert!(record(&*store, c, outcome).await);
    }
    let retry_at = at(t, 10);
    for c in &claims {
        let retried = store
            .retry_delivery(ep.id, c.id, retry_at)
            .await
            .unwrap_or_else(|e| panic!("retry {} failed: {e}", c.id));
        assert_eq!(retried.status, DeliveryStatus::Pending);
        assert_eq!(retried.next_attempt_at, Some(retry_at), "due now");
        assert_eq!(retried.attempts, 1, "attempts are kept");
        assert_eq!(retried.event_id, c.event.id);
        assert_eq!(delivery(&*store, ep.id, c.id).await, retried);
    }
    assert_eq!(claim(&*store, &request(at(t, 9), 10, 10)).await, []);
    let again = claim(&*store, &request(retry_at, 10, 10)).await;
    let mut ids: Vec<DeliveryId> = again.iter().map(|c| c.id).collect();
    ids.sort();
    let mut expected: Vec<DeliveryId> = claims.iter().map(|c| c.id).collect();
    expected.sort();
    assert_eq!(ids, expected, "every retried delivery is due");
    assert!(again.iter().all(|c| c.attempts == 1));
}

pub async fn deleting_an_endpoint_deletes_its_deliveries<S: Ports>(store: Arc<S>) {
    let a = endpoint(&*store, "a", Subscription::All, true).await;
    let b = endpoint(&*store, "b", Subscription::All, true).await;
    create_named(&*store, "Ann").await;
    create_named(&*store, "Bob").await;
    let of_a = wait_deliveries(&*store, a.id, 2).await;
    let of_b = wait_deliveries(&*store, b.id, 2).await;
    let claims = claim(&*store, &request(now(), 10, 10)).await;
    assert_eq!(claims.len(), 4);

    store.delete_endpoint(a.id).await.unwrap();
    expect_not_found(store.endpoint(a.id).await, "the deleted endpoint");
    expect_not_found(
        store.deliveries(a.id, PageRequest::default()).await,
        "deliveries of the deleted endpoint",
    );
    expect_not_found(
        store.delivery(a.id, of_a[0].id).await,
        "a delivery of the deleted endpoint",
    );
    for c in claims.iter().filter(|c| c.endpoint == a.id) {
        assert!(
            !record(&*store, c, &delivered(200)).await,
            "the delivery is gone"
        );
    }
    assert_eq!(deliveries_of(&*store, b.id).await, of_b, "the others stay");
    assert_eq!(
        stats(&*store).await.pending,
        2,
        "only the other endpoint's deliveries are pending"
    );
    for c in claims.iter().filter(|c| c.endpoint == b.id) {
        assert!(record(&*store, c, &delivered(200)).await);
    }
    assert_eq!(stats(&*store).await.pending, 0);
}

pub async fn purge_keeps_events_with_pending_deliveries<S: Ports>(store: Arc<S>) {
    let ep = endpoint(&*store, "ep", only(&[EventKind::SegmentCreated]), true).await;
    let t0 = now() - time::Duration::days(40);
    create_at(&*store, named("C0"), t0).await;
    store.create_segment(&title("S"), at(t0, 10)).await.unwrap();
    create_at(&*store, named("C2"), at(t0, 20)).await;
    create_at(&*store, named("C3"), at(t0, 30)).await;
    let events = wait_events(&*store, 4).await;
    wait_deliveries(&*store, ep.id, 1).await;
    let before = at(t0, 100);

    // The segment's delivery is pending: it and every later event stay, so
    // the purge still deletes the oldest events only.
    assert_eq!(store.purge_events(before, 100).await.unwrap(), 1);
    assert_eq!(store.purge_events(before, 100).await.unwrap(), 0);
    assert_eq!(wait_events(&*store, 3).await, events[1..]);

    // A delivery that is no longer pending keeps nothing.
    store.create_segment(&title("T"), at(t0, 40)).await.unwrap();
    wait_deliveries(&*store, ep.id, 2).await;
    let claims = claim(&*store, &request(now(), 10, 10)).await;
    assert_eq!(claims.len(), 2);
    for c in &claims {
        let outcome = if c.event.id == events[1].id {
            delivered(204)
        } else {
            failed_for_good("HTTP 410")
        };
        assert!(record(&*store, c, &outcome).await);
    }
    assert_eq!(store.purge_events(before, 100).await.unwrap(), 4);
    assert_eq!(wait_events(&*store, 0).await, []);
    assert_eq!(
        deliveries_of(&*store, ep.id).await,
        [],
        "a delivery goes with its event"
    );
    assert_eq!(stats(&*store).await, DeliveryStats::default());
}

pub async fn delivery_stats_count_pending_and_failed<S: Ports>(store: Arc<S>) {
    assert_eq!(stats(&*store).await, DeliveryStats::default());
    let ep = endpoint(&*store, "ep", Subscription::All, true).await;
    let t0 = at(now(), -100);
    for i in 0..3 {
        create_at(&*store, named(&format!("C{i}")), at(t0, i * 10)).await;
    }
    wait_deliveries(&*store, ep.id, 3).await;
    assert_eq!(
        stats(&*store).await,
        DeliveryStats {
            pending: 3,
            failed: 0,
            oldest_pending: Some(t0)
        }
    );
    let oldest = the_one(claim(&*store, &request(now(), 1, 10)).await);
    assert!(record(&*store, &oldest, &failed_for_good("HTTP 500")).await);
    assert_eq!(
        stats(&*store).await,
        DeliveryStats {
            pending: 2,
            failed: 1,
            oldest_pending: Some(at(t0, 10))
        }
    );
    let next = the_one(claim(&*store, &request(now(), 1, 10)).await);
    assert!(record(&*store, &next, &delivered(200)).await);
    assert_eq!(
        stats(&*store).await,
        DeliveryStats {
            pending: 1,
            failed: 1,
            oldest_pending: Some(at(t0, 20))
        }
    );
}
