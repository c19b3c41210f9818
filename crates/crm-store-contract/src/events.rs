//! `EventRepository` and the events every write records: one event per
//! changed object, in the write's transaction, none for a write that changes
//! nothing or is refused; the feed read after an id, filtered, purged.
//!
//! A store may list an event a moment after its write returned (it lists
//! an event only once every event with a smaller id is final), so the
//! checks wait for the events they expect, and show that nothing else was
//! recorded by writing a marker last: once the marker is listed, everything
//! written before it is too.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use crm_domain::customer::{CouponId, Customer, CustomerChanges, CustomerId};
use crm_domain::event::{Event, EventData, EventFeed, EventKind, EventQuery};
use crm_domain::segment::{SegmentId, SegmentRef, SegmentTitle};
use tokio::task::JoinSet;

use crate::support::{
    address, at, create, create_at, create_named, get, missing_customer, mobile, named, now, tags,
};
use crate::Ports;

/// How long a check waits for events it expects to be listed.
const PATIENCE: Duration = Duration::from_secs(20);

fn title(raw: &str) -> SegmentTitle {
    SegmentTitle::parse(raw).expect("valid title")
}

async fn read<S: Ports>(store: &S, query: &EventQuery) -> Vec<Event> {
    match store.events(query).await.expect("read the feed") {
        EventFeed::Events(events) => events,
        EventFeed::Expired { first_kept } => panic!("unexpected expiry before {first_kept}"),
    }
}

/// The events after `after` matching `query`, once at least `n` are listed;
/// panics when they do not appear in time.
async fn wait_for<S: Ports>(store: &S, query: EventQuery, n: usize) -> Vec<Event> {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let events = read(
            store,
            &EventQuery {
                limit: 1000,
                ..query.clone()
            },
        )
        .await;
        if events.len() >= n {
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

/// Every event after `after`, once `n` are listed.
async fn events_after<S: Ports>(store: &S, after: i64, n: usize) -> Vec<Event> {
    wait_for(
        store,
        EventQuery {
            after,
            ..Default::default()
        },
        n,
    )
    .await
}

/// The id of the last event listed so far (0 when none), once `n` are.
async fn position<S: Ports>(store: &S, n: usize) -> i64 {
    events_after(store, 0, n).await.last().map_or(0, |e| e.id)
}

fn kinds(events: &[Event]) -> Vec<EventKind> {
    events.iter().map(|e| e.kind).collect()
}

fn customer_of(event: &Event) -> &Customer {
    match &event.data {
        EventData::Customer(customer) => customer,
        other => panic!("a customer event expected, got {other:?}"),
    }
}

fn members_of(event: &Event) -> Vec<i64> {
    match &event.data {
        EventData::Members { customers, .. } => customers.iter().map(|c| c.get()).collect(),
        other => panic!("a membership event expected, got {other:?}"),
    }
}

fn coupon(raw: i64) -> CouponId {
    CouponId::new(raw).expect("positive coupon id")
}

/// Writes a marker customer and returns the events after `after` up to and
/// including its `customer.created`, which must be the last.
async fn events_until_marker<S: Ports>(store: &S, after: i64) -> Vec<Event> {
    let marker = create_named(store, "Marker").await;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let events = read(
            store,
            &EventQuery {
                after,
                limit: 1000,
                ..Default::default()
            },
        )
        .await;
        if let Some(last) = events.last() {
            if last.kind == EventKind::CustomerCreated && customer_of(last).id == marker.id {
                return events[..events.len() - 1].to_vec();
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the marker was not listed last: {events:#?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub async fn every_write_records_its_event<S: Ports>(store: Arc<S>) {
    let t0 = now();
    let ann = create_at(&*store, named("Ann"), t0).await;
    let changes = CustomerChanges {
        tags: Some(tags(&["vip"])),
        ..Default::default()
    };
    store.update(ann.id, &changes, at(t0, 1)).await.unwrap();
    let home = store
        .create_address(ann.id, &address("Home"), at(t0, 2))
        .await
        .unwrap();
    store
        .update_address(ann.id, home.id, &address("Work"), at(t0, 3))
        .await
        .unwrap();
    store
        .delete_address(ann.id, home.id, at(t0, 4))
        .await
        .unwrap();
    store
        .grant_coupon(ann.id, coupon(5), at(t0, 5))
        .await
        .unwrap();
    store
        .revoke_coupon(ann.id, coupon(5), at(t0, 6))
        .await
        .unwrap();
    let s = store
        .create_segment(&title("VIP"), at(t0, 7))
        .await
        .unwrap();
    store
        .rename_segment(s.id, &title("Gold"), at(t0, 8))
        .await
        .unwrap();
    store.add_members(s.id, &[ann.id], at(t0, 9)).await.unwrap();
    store
        .remove_members(s.id, &[ann.id], at(t0, 10))
        .await
        .unwrap();
    store.delete_segment(s.id, at(t0, 11)).await.unwrap();
    store.delete(ann.id, at(t0, 12)).await.unwrap();

    use EventKind::*;
    let expected = [
        CustomerCreated,
        CustomerUpdated,
        CustomerUpdated,
        CustomerUpdated,
        CustomerUpdated,
        CustomerUpdated,
        CustomerUpdated,
        SegmentCreated,
        SegmentUpdated,
        SegmentCustomersAdded,
        SegmentCustomersRemoved,
        SegmentDeleted,
        CustomerDeleted,
    ];
    let events = events_after(&*store, 0, expected.len()).await;
    assert_eq!(kinds(&events), expected);
    for (i, event) in events.iter().enumerate() {
        assert_eq!(
            event.created_at,
            at(t0, i as i64),
            "created_at of {event:?}"
        );
        if i > 0 {
            assert!(event.id > events[i - 1].id, "ids increase");
        }
        assert!(event.id > 0);
    }
    assert_eq!(
        events[7].data,
        EventData::Segment(SegmentRef {
            id: s.id,
            title: "VIP".into()
        })
    );
    assert_eq!(
        events[8].data,
        EventData::Segment(SegmentRef {
            id: s.id,
            title: "Gold".into()
        })
    );
    assert_eq!(
        events[9].data,
        EventData::Members {
            segment: s.id,
            customers: vec![ann.id]
        }
    );
    assert_eq!(events[11].data, EventData::SegmentDeleted(s.id));
    assert_eq!(events[12].data, EventData::CustomerDeleted(ann.id));
    assert_eq!(events_until_marker(&*store, events[12].id).await, []);
}

pub async fn customer_events_carry_the_customer_as_written<S: Ports>(store: Arc<S>) {
    let t0 = now();
    let created = create_at(
        &*store,
        CustomerChanges {
            mobile: mobile("13800000001"),
            tags: Some(tags(&["b", "a"])),
            ..named("Ann")
        },
        t0,
    )
    .await;
    let home = store
        .create_address(created.id, &address("Home"), at(t0, 1))
        .await
        .unwrap();
    let after_address = get(&*store, created.id).await;
    store
        .grant_coupon(created.id, coupon(3), at(t0, 2))
        .await
        .unwrap();
    let after_grant = get(&*store, created.id).await;
    let changes = CustomerChanges {
        tags: Some(tags(&["c"])),
        ..named("Ann Lee")
    };
    let updated = store.update(created.id, &changes, at(t0, 3)).await.unwrap();

    let events = events_after(&*store, 0, 4).await;
    assert_eq!(customer_of(&events[0]), &created, "created as returned");
    assert_eq!(customer_of(&events[1]), &after_address, "after the address");
    assert_eq!(customer_of(&events[1]).addresses[0].id, home.id);
    assert_eq!(customer_of(&events[2]), &after_grant, "after the grant");
    assert_eq!(after_grant.updated_at, at(t0, 2));
    assert_eq!(customer_of(&events[3]), &updated, "updated as returned");
    assert_eq!(customer_of(&events[3]).full_name, "Ann Lee");
}

pub async fn deleting_a_referrer_records_its_released_referrals<S: Ports>(store: Arc<S>) {
    let referrer = create_named(&*store, "Referrer").await;
    let referred = |name: &str| CustomerChanges {
        referrer: Some(Some(referrer.id)),
        ..named(name)
    };
    let b = create(&*store, referred("B")).await;
    let a = create(&*store, referred("A")).await;
    let other = create_named(&*store, "Other").await;
    let seen = position(&*store, 4).await;
    let t = at(now(), 30);
    store.delete(referrer.id, t).await.unwrap();

    let events = events_after(&*store, seen, 3).await;
    assert_eq!(
        kinds(&events),
        [
            EventKind::CustomerDeleted,
            EventKind::CustomerUpdated,
            EventKind::CustomerUpdated
        ]
    );
    assert_eq!(events[0].data, EventData::CustomerDeleted(referrer.id));
    let released: Vec<CustomerId> = events[1..].iter().map(|e| customer_of(e).id).collect();
    let mut by_id = vec![b.id, a.id];
    by_id.sort();
    assert_eq!(released, by_id, "one update per released customer, by id");
    for event in &events[1..] {
        assert_eq!(customer_of(event).referrer, None);
        assert_eq!(customer_of(event).updated_at, t);
    }
    let last = events.last().unwrap().id;
    assert_eq!(events_until_marker(&*store, last).await, []);
    assert_eq!(get(&*store, other.id).await.updated_at, other.updated_at);
}

pub async fn membership_events_name_only_the_changed_customers<S: Ports>(store: Arc<S>) {
    let c: Vec<Customer> = create_several(&*store, 4).await;
    let s = store.create_segment(&title("S"), now()).await.unwrap();
    store
        .add_members(s.id, &[c[2].id, c[0].id], now())
        .await
        .unwrap();
    let seen = position(&*store, 6).await;
    store
        .add_members(s.id, &[c[3].id, c[0].id, c[1].id, c[3].id], now())
        .await
        .unwrap();
    store
        .remove_members(s.id, &[c[3].id, missing_customer(), c[2].id], now())
        .await
        .unwrap();
    let events = events_after(&*store, seen, 2).await;
    assert_eq!(
        kinds(&events),
        [
            EventKind::SegmentCustomersAdded,
            EventKind::SegmentCustomersRemoved
        ]
    );
    let mut added = vec![c[1].id.get(), c[3].id.get()];
    added.sort_unstable();
    assert_eq!(
        members_of(&events[0]),
        added,
        "only the new members, ascending"
    );
    let mut removed = vec![c[2].id.get(), c[3].id.get()];
    removed.sort_unstable();
    assert_eq!(members_of(&events[1]), removed, "only the members removed");
    // Memberships are reported by segment events only.
    assert_eq!(events_until_marker(&*store, events[1].id).await, []);
    // Deleting a member customer and then the segment: no membership event.
    let seen = position(&*store, 1).await;
    store.delete(c[0].id, now()).await.unwrap();
    store.delete_segment(s.id, now()).await.unwrap();
    let events = events_until_marker(&*store, seen).await;
    assert_eq!(
        kinds(&events),
        [EventKind::CustomerDeleted, EventKind::SegmentDeleted]
    );
}

/// Creates `n` customers, one after the other.
async fn create_several<S: Ports>(store: &S, n: usize) -> Vec<Customer> {
    let mut created = Vec::with_capacity(n);
    for i in 0..n {
        created.push(create_named(store, &format!("Customer {i}")).await);
    }
    created
}

pub async fn writes_that_change_nothing_record_nothing<S: Ports>(store: Arc<S>) {
    let ann = create_named(&*store, "Ann").await;
    let s = store.create_segment(&title("S"), now()).await.unwrap();
    store.grant_coupon(ann.id, coupon(1), now()).await.unwrap();
    store.add_members(s.id, &[ann.id], now()).await.unwrap();
    let seen = position(&*store, 4).await;
    let (_, new) = store.grant_coupon(ann.id, coupon(1), now()).await.unwrap();
    assert!(!new);
    store.add_members(s.id, &[ann.id], now()).await.unwrap();
    store.add_members(s.id, &[], now()).await.unwrap();
    let other = store.create_segment(&title("T"), now()).await.unwrap();
    let seen_other = position(&*store, 5).await;
    store
        .remove_members(other.id, &[ann.id], now())
        .await
        .unwrap();
    let events = events_until_marker(&*store, seen).await;
    assert_eq!(kinds(&events), [EventKind::SegmentCreated]);
    assert_eq!(events[0].id, seen_other);
}

pub async fn refused_writes_record_nothing<S: Ports>(store: Arc<S>) {
    let ann = create(
        &*store,
        CustomerChanges {
            mobile: mobile("13800000001"),
            ..named("Ann")
        },
    )
    .await;
    let s = store.create_segment(&title("S"), now()).await.unwrap();
    let seen = position(&*store, 2).await;
    let clash = CustomerChanges {
        mobile: mobile("13800000001"),
        ..named("Bob")
    };
    assert!(store.create(&clash, now()).await.is_err());
    let bad_referrer = CustomerChanges {
        referrer: Some(Some(missing_customer())),
        ..Default::default()
    };
    assert!(store.update(ann.id, &bad_referrer, now()).await.is_err());
    assert!(store
        .update(missing_customer(), &named("X"), now())
        .await
        .is_err());
    assert!(store.delete(missing_customer(), now()).await.is_err());
    assert!(store
        .create_address(missing_customer(), &address("Home"), now())
        .await
        .is_err());
    assert!(store.revoke_coupon(ann.id, coupon(9), now()).await.is_err());
    assert!(store
        .add_members(s.id, &[ann.id, missing_customer()], now())
        .await
        .is_err());
    assert!(store
        .delete_segment(SegmentId::new(i64::MAX - 7).unwrap(), now())
        .await
        .is_err());
    assert_eq!(events_until_marker(&*store, seen).await, []);
    assert!(get(&*store, ann.id).await.segments.is_empty());
}

pub async fn feed_pages_after_an_id<S: Ports>(store: Arc<S>) {
    for i in 0..7 {
        create_named(&*store, &format!("C{i}")).await;
    }
    let all = events_after(&*store, 0, 7).await;
    assert_eq!(all.len(), 7);
    let mut seen = Vec::new();
    let mut after = 0;
    loop {
        let page = read(
            &*store,
            &EventQuery {
                after,
                limit: 3,
                ..Default::default()
            },
        )
        .await;
        assert!(page.len() <= 3);
        let Some(last) = page.last() else { break };
        after = last.id;
        seen.extend(page);
    }
    assert_eq!(seen, all, "pages give every event once, in order");
    let beyond = read(
        &*store,
        &EventQuery {
            after: all.last().unwrap().id + 1000,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(beyond, [], "after the newest: nothing, not an error");
}

pub async fn feed_filters_by_kind_and_customer<S: Ports>(store: Arc<S>) {
    let ann = create_named(&*store, "Ann").await;
    let bob = create_named(&*store, "Bob").await;
    let s = store.create_segment(&title("S"), now()).await.unwrap();
    store
        .add_members(s.id, &[ann.id, bob.id], now())
        .await
        .unwrap();
    store.add_members(s.id, &[], now()).await.unwrap();
    store.remove_members(s.id, &[bob.id], now()).await.unwrap();
    store
        .update(ann.id, &named("Ann Lee"), now())
        .await
        .unwrap();
    store.delete(bob.id, now()).await.unwrap();
    let all = events_after(&*store, 0, 7).await;
    assert_eq!(all.len(), 7);

    let only = |kinds: Vec<EventKind>, customer: Option<CustomerId>| EventQuery {
        kinds,
        customer,
        limit: 1000,
        ..Default::default()
    };
    let created = read(&*store, &only(vec![EventKind::CustomerCreated], None)).await;
    assert_eq!(kinds(&created), [EventKind::CustomerCreated; 2]);
    let two = read(
        &*store,
        &only(
            vec![EventKind::CustomerDeleted, EventKind::SegmentCreated],
            None,
        )
        .clone(),
    )
    .await;
    assert_eq!(
        kinds(&two),
        [EventKind::SegmentCreated, EventKind::CustomerDeleted]
    );
    let bobs = read(&*store, &only(vec![], Some(bob.id))).await;
    assert_eq!(
        kinds(&bobs),
        [
            EventKind::CustomerCreated,
            EventKind::SegmentCustomersAdded,
            EventKind::SegmentCustomersRemoved,
            EventKind::CustomerDeleted
        ],
        "its own events and the membership events naming it"
    );
    assert_eq!(
        members_of(&bobs[1]),
        {
            let mut both = vec![ann.id.get(), bob.id.get()];
            both.sort_unstable();
            both
        },
        "a membership event is listed whole"
    );
    let anns_updates = read(
        &*store,
        &only(vec![EventKind::CustomerUpdated], Some(ann.id)),
    )
    .await;
    assert_eq!(anns_updates.len(), 1);
    assert_eq!(customer_of(&anns_updates[0]).full_name, "Ann Lee");
    assert_eq!(
        read(&*store, &only(vec![], Some(missing_customer()))).await,
        []
    );
}

pub async fn purge_deletes_the_oldest_and_expires_older_positions<S: Ports>(store: Arc<S>) {
    let t0 = now() - time::Duration::days(40);
    for i in 0..4 {
        create_at(&*store, named(&format!("C{i}")), at(t0, i * 10)).await;
    }
    let all = events_after(&*store, 0, 4).await;
    // Nothing is older than t0: nothing goes.
    assert_eq!(store.purge_events(t0, 100).await.unwrap(), 0);
    assert_eq!(read(&*store, &EventQuery::default()).await, all);
    // The limit bounds one call; the next one goes on.
    assert_eq!(store.purge_events(at(t0, 15), 1).await.unwrap(), 1);
    assert_eq!(store.purge_events(at(t0, 15), 100).await.unwrap(), 1);
    let expired = store
        .events(&EventQuery {
            after: all[0].id,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        expired,
        EventFeed::Expired {
            first_kept: all[1].id + 1
        }
    );
    let from_oldest = read(&*store, &EventQuery::default()).await;
    assert_eq!(from_oldest, all[2..], "after=0 reads from the oldest kept");
    let from_last_purged = read(
        &*store,
        &EventQuery {
            after: all[1].id,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(from_last_purged, all[2..]);
    // Purging everything keeps ids growing.
    assert_eq!(store.purge_events(now(), 100).await.unwrap(), 2);
    let next = create_named(&*store, "Next").await;
    let after = events_after(&*store, 0, 1).await;
    assert_eq!(customer_of(&after[0]).id, next.id);
    assert!(after[0].id > all[3].id, "ids are never reused");
}

pub async fn concurrent_writers_never_make_a_follower_skip<S: Ports>(store: Arc<S>) {
    const WRITERS: usize = 8;
    const WRITES: usize = 25;
    let mut writers = JoinSet::new();
    for w in 0..WRITERS {
        let store = store.clone();
        writers.spawn(async move {
            let mut ids = Vec::new();
            for i in 0..WRITES {
                let c = create_named(&*store, &format!("W{w} {i}")).await;
                ids.push(c.id);
            }
            ids
        });
    }
    // Follows the feed while the writers write, as a consumer would.
    let follower = {
        let store = store.clone();
        tokio::spawn(async move {
            let mut seen: Vec<Event> = Vec::new();
            let deadline = tokio::time::Instant::now() + PATIENCE * 3;
            while seen.len() < WRITERS * WRITES {
                let after = seen.last().map_or(0, |e| e.id);
                let page = read(
                    &*store,
                    &EventQuery {
                        after,
                        limit: 7,
                        ..Default::default()
                    },
                )
                .await;
                if page.is_empty() {
                    assert!(tokio::time::Instant::now() < deadline, "the feed stalled");
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                seen.extend(page);
            }
            seen
        })
    };
    let mut written = BTreeSet::new();
    while let Some(ids) = writers.join_next().await {
        written.extend(ids.unwrap());
    }
    let seen = follower.await.unwrap();
    let ids: Vec<i64> = seen.iter().map(|e| e.id).collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "in id order, once each"
    );
    let customers: BTreeSet<CustomerId> = seen.iter().map(|e| customer_of(e).id).collect();
    assert_eq!(customers, written, "every write's event was seen");
    assert_eq!(seen.len(), written.len());
}
