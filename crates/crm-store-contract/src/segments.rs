//! `SegmentRepository`: segments, memberships and their effect on customers.

use std::sync::Arc;

use crm_domain::customer::{CustomerFilter, CustomerId};
use crm_domain::page::PageRequest;
use crm_domain::segment::{Segment, SegmentId, SegmentRef, SegmentTitle};
use tokio::task::JoinSet;

use crate::support::{
    at, create_at, create_named, customer_count, expect_not_found, expect_rejected, get, id_set,
    missing_customer, named, now,
};
use crate::Ports;

fn title(raw: &str) -> SegmentTitle {
    SegmentTitle::parse(raw).expect("valid title")
}

fn missing_segment() -> SegmentId {
    SegmentId::new(i64::MAX - 7).expect("positive id")
}

async fn new_segment<S: Ports>(store: &S, name: &str) -> Segment {
    store
        .create_segment(&title(name), now())
        .await
        .unwrap_or_else(|e| panic!("create segment failed: {e}"))
}

async fn member_ids<S: Ports>(store: &S, segment: SegmentId) -> Vec<CustomerId> {
    store
        .get_segment(segment)
        .await
        .unwrap_or_else(|e| panic!("get segment failed: {e}"))
        .customers
        .iter()
        .map(|c| c.id)
        .collect()
}

/// `n` customers, created by a few concurrent writers; sorted by id.
async fn create_customers<S: Ports>(store: &Arc<S>, n: usize) -> Vec<CustomerId> {
    const WRITERS: usize = 4;
    let mut tasks = JoinSet::new();
    for writer in 0..WRITERS {
        let store = Arc::clone(store);
        tasks.spawn(async move {
            let mut ids = Vec::new();
            for i in (writer..n).step_by(WRITERS) {
                let c = store
                    .create(&named(&format!("Member {i}")), now())
                    .await
                    .unwrap_or_else(|e| panic!("create customer {i} failed: {e}"));
                ids.push(c.id);
            }
            ids
        });
    }
    let mut ids = Vec::with_capacity(n);
    while let Some(result) = tasks.join_next().await {
        ids.extend(result.expect("task"));
    }
    ids.sort();
    ids
}

pub async fn create_segment_is_empty_and_readable<S: Ports>(store: Arc<S>) {
    let created = store
        .create_segment(&title("  VIP 客户 "), now())
        .await
        .expect("create");
    assert_eq!(created.title, "VIP 客户");
    assert!(created.customers.is_empty());
    assert_eq!(store.get_segment(created.id).await.unwrap(), created);
    let other = new_segment(&*store, "VIP 客户").await;
    assert_ne!(other.id, created.id, "titles need not be unique");
}

pub async fn get_missing_segment_is_not_found<S: Ports>(store: Arc<S>) {
    expect_not_found(store.get_segment(missing_segment()).await, "missing");
    let s = new_segment(&*store, "Gone").await;
    store.delete_segment(s.id).await.unwrap();
    expect_not_found(store.get_segment(s.id).await, "deleted");
}

pub async fn rename_segment_keeps_members<S: Ports>(store: Arc<S>) {
    let s = new_segment(&*store, "Old").await;
    let a = create_named(&*store, "A").await;
    let b = create_named(&*store, "B").await;
    store.add_members(s.id, &[a.id, b.id]).await.unwrap();
    let renamed = store
        .rename_segment(s.id, &title("New"), at(now(), 5))
        .await
        .expect("rename");
    assert_eq!(renamed.id, s.id);
    assert_eq!(renamed.title, "New");
    assert_eq!(
        renamed.customers.iter().map(|c| c.id).collect::<Vec<_>>(),
        [a.id, b.id]
    );
    assert_eq!(store.get_segment(s.id).await.unwrap(), renamed);
    assert_eq!(
        get(&*store, a.id).await.segments,
        [SegmentRef {
            id: s.id,
            title: "New".into()
        }],
        "customers see the new title"
    );
}

pub async fn rename_missing_segment_is_not_found<S: Ports>(store: Arc<S>) {
    expect_not_found(
        store
            .rename_segment(missing_segment(), &title("X"), now())
            .await,
        "rename missing",
    );
}

pub async fn delete_segment_keeps_customers<S: Ports>(store: Arc<S>) {
    let doomed = new_segment(&*store, "Doomed").await;
    let kept = new_segment(&*store, "Kept").await;
    let a = create_named(&*store, "A").await;
    let b = create_named(&*store, "B").await;
    store.add_members(doomed.id, &[a.id, b.id]).await.unwrap();
    store.add_members(kept.id, &[a.id]).await.unwrap();
    store.delete_segment(doomed.id).await.expect("delete");
    expect_not_found(store.get_segment(doomed.id).await, "deleted segment");
    assert_eq!(customer_count(&*store).await, 2, "customers stay");
    assert_eq!(
        get(&*store, a.id).await.segments,
        [SegmentRef {
            id: kept.id,
            title: "Kept".into()
        }]
    );
    assert!(get(&*store, b.id).await.segments.is_empty());
    assert_eq!(member_ids(&*store, kept.id).await, [a.id]);
    let in_doomed = CustomerFilter {
        segment: Some(doomed.id.get()),
        ..Default::default()
    };
    assert!(id_set(&*store, &in_doomed).await.is_empty());
}

pub async fn delete_missing_segment_is_not_found<S: Ports>(store: Arc<S>) {
    expect_not_found(store.delete_segment(missing_segment()).await, "missing");
    let s = new_segment(&*store, "Once").await;
    store.delete_segment(s.id).await.unwrap();
    expect_not_found(store.delete_segment(s.id).await, "deleted twice");
}

pub async fn list_segments_pages_by_id_with_count<S: Ports>(store: Arc<S>) {
    let empty = store.list_segments(PageRequest::default()).await.unwrap();
    assert_eq!((empty.count, empty.items.len()), (0, 0));
    let s1 = new_segment(&*store, "Zeta").await;
    let s2 = new_segment(&*store, "Alpha").await;
    let s3 = new_segment(&*store, "Mid").await;
    let a = create_named(&*store, "A").await;
    let b = create_named(&*store, "B").await;
    store.add_members(s2.id, &[b.id, a.id]).await.unwrap();
    store.add_members(s3.id, &[b.id]).await.unwrap();
    let page = |n: u64| PageRequest::new(n, Some(2)).unwrap();
    let first = store.list_segments(page(1)).await.unwrap();
    assert_eq!(first.count, 3);
    assert_eq!(first.request, page(1));
    assert_eq!(
        first.items.iter().map(|s| s.id).collect::<Vec<_>>(),
        [s1.id, s2.id]
    );
    assert!(first.items[0].customers.is_empty());
    for (listed, expected) in first.items.iter().zip([s1.id, s2.id]) {
        assert_eq!(*listed, store.get_segment(expected).await.unwrap());
    }
    assert_eq!(
        first.items[1]
            .customers
            .iter()
            .map(|c| c.id)
            .collect::<Vec<_>>(),
        [a.id, b.id]
    );
    let second = store.list_segments(page(2)).await.unwrap();
    assert_eq!(second.count, 3);
    assert_eq!(second.items, [store.get_segment(s3.id).await.unwrap()]);
    let past = store.list_segments(page(3)).await.unwrap();
    assert_eq!((past.count, past.items.len()), (3, 0));
}

pub async fn add_members_is_idempotent<S: Ports>(store: Arc<S>) {
    let s = new_segment(&*store, "Seg").await;
    let [a, b, c] = [
        create_named(&*store, "A").await.id,
        create_named(&*store, "B").await.id,
        create_named(&*store, "C").await.id,
    ];
    store.add_members(s.id, &[a, b]).await.expect("add");
    store
        .add_members(s.id, &[b, c])
        .await
        .expect("overlapping add");
    store
        .add_members(s.id, &[a, b, c])
        .await
        .expect("repeat add");
    store.add_members(s.id, &[]).await.expect("empty add");
    assert_eq!(member_ids(&*store, s.id).await, [a, b, c]);
    let in_segment = CustomerFilter {
        segment: Some(s.id.get()),
        ..Default::default()
    };
    assert_eq!(id_set(&*store, &in_segment).await, [a, b, c]);
}

pub async fn add_members_rejects_missing_customers_all_or_nothing<S: Ports>(store: Arc<S>) {
    let s = new_segment(&*store, "Seg").await;
    let a = create_named(&*store, "A").await.id;
    let b = create_named(&*store, "B").await.id;
    store.add_members(s.id, &[a]).await.unwrap();
    let gone = create_named(&*store, "Gone").await.id;
    store.delete(gone).await.unwrap();
    let missing = CustomerId::new(900_000_001).unwrap();
    let result = store.add_members(s.id, &[b, missing, gone]).await;
    let messages = expect_rejected(result, "customer_id", "add with missing customers");
    let text = messages.join(" ");
    for id in [missing, gone] {
        assert!(text.contains(&id.to_string()), "{text:?} names {id}");
    }
    assert_eq!(member_ids(&*store, s.id).await, [a], "nothing added");
    let only_missing = store.add_members(s.id, &[missing_customer()]).await;
    expect_rejected(only_missing, "customer_id", "add only a missing customer");
    assert_eq!(member_ids(&*store, s.id).await, [a]);
}

pub async fn add_members_to_missing_segment_is_not_found<S: Ports>(store: Arc<S>) {
    let a = create_named(&*store, "A").await.id;
    expect_not_found(
        store.add_members(missing_segment(), &[a]).await,
        "add to missing",
    );
    assert!(get(&*store, a).await.segments.is_empty());
}

pub async fn remove_members_ignores_non_members<S: Ports>(store: Arc<S>) {
    let s = new_segment(&*store, "Seg").await;
    let other = new_segment(&*store, "Other").await;
    let [a, b, c] = [
        create_named(&*store, "A").await.id,
        create_named(&*store, "B").await.id,
        create_named(&*store, "C").await.id,
    ];
    store.add_members(s.id, &[a, b]).await.unwrap();
    store.add_members(other.id, &[a, c]).await.unwrap();
    store
        .remove_members(s.id, &[a, c, missing_customer()])
        .await
        .expect("remove with non-members and unknown ids");
    assert_eq!(member_ids(&*store, s.id).await, [b]);
    assert_eq!(
        member_ids(&*store, other.id).await,
        [a, c],
        "other segment kept"
    );
    store
        .remove_members(s.id, &[a])
        .await
        .expect("remove again");
    store
        .remove_members(s.id, &[])
        .await
        .expect("remove nobody");
    assert_eq!(member_ids(&*store, s.id).await, [b]);
    assert_eq!(customer_count(&*store).await, 3, "customers stay");
}

pub async fn remove_members_from_missing_segment_is_not_found<S: Ports>(store: Arc<S>) {
    let a = create_named(&*store, "A").await.id;
    expect_not_found(
        store.remove_members(missing_segment(), &[a]).await,
        "remove from missing",
    );
}

pub async fn members_ordered_by_id_with_empty_segments<S: Ports>(store: Arc<S>) {
    let s = new_segment(&*store, "Seg").await;
    let other = new_segment(&*store, "Other").await;
    let ids: Vec<CustomerId> = {
        let mut ids = Vec::new();
        for i in 0..5 {
            ids.push(create_named(&*store, &format!("C{i}")).await.id);
        }
        ids
    };
    let shuffled = [ids[3], ids[0], ids[4], ids[1]];
    store.add_members(s.id, &shuffled).await.unwrap();
    store.add_members(other.id, &ids).await.unwrap();
    let segment = store.get_segment(s.id).await.unwrap();
    assert_eq!(
        segment.customers.iter().map(|c| c.id).collect::<Vec<_>>(),
        [ids[0], ids[1], ids[3], ids[4]],
        "ordered by customer id"
    );
    for member in &segment.customers {
        assert!(member.segments.is_empty(), "a member's segments stay empty");
        let mut expected = get(&*store, member.id).await.summary();
        assert_eq!(
            expected.segments.len(),
            2,
            "the customer is in two segments"
        );
        expected.segments.clear();
        assert_eq!(*member, expected, "otherwise the customer's summary");
    }
}

pub async fn customer_segments_field_lists_memberships<S: Ports>(store: Arc<S>) {
    let zeta = new_segment(&*store, "Zeta").await;
    let alpha = new_segment(&*store, "Alpha").await;
    let unused = new_segment(&*store, "Unused").await;
    let a = create_named(&*store, "A").await.id;
    let b = create_named(&*store, "B").await.id;
    store.add_members(alpha.id, &[a]).await.unwrap();
    store.add_members(zeta.id, &[a, b]).await.unwrap();
    let r = |s: &Segment| SegmentRef {
        id: s.id,
        title: s.title.clone(),
    };
    assert_eq!(
        get(&*store, a).await.segments,
        [r(&zeta), r(&alpha)],
        "by segment id"
    );
    assert_eq!(get(&*store, b).await.segments, [r(&zeta)]);
    let listed = store
        .list(&CustomerFilter::default(), PageRequest::default())
        .await
        .unwrap();
    for item in &listed.items {
        assert_eq!(item.segments, get(&*store, item.id).await.segments);
    }
    store.remove_members(zeta.id, &[a]).await.unwrap();
    assert_eq!(get(&*store, a).await.segments, [r(&alpha)]);
    assert!(!get(&*store, a)
        .await
        .segments
        .iter()
        .any(|s| s.id == unused.id));
}

pub async fn concurrent_overlapping_adds_leave_each_member_once<S: Ports>(store: Arc<S>) {
    // Lists long enough for the writes to overlap in time, given in different
    // orders: the store must not let them deadlock.
    const N: usize = 1_000;
    let ids = create_customers(&store, N).await;
    for round in 0..4 {
        let s = new_segment(&*store, &format!("Race {round}")).await;
        let lists: [Vec<CustomerId>; 4] = [
            ids.clone(),
            ids.iter().rev().copied().collect(),
            ids[..N * 3 / 5].iter().rev().copied().collect(),
            ids[N * 2 / 5..].to_vec(),
        ];
        let mut tasks = JoinSet::new();
        for list in lists {
            let store = Arc::clone(&store);
            tasks.spawn(async move { store.add_members(s.id, &list).await });
        }
        while let Some(result) = tasks.join_next().await {
            result.expect("task").expect("concurrent add");
        }
        assert_eq!(member_ids(&*store, s.id).await, ids, "each customer once");
    }
}

pub async fn add_more_than_ten_thousand_members_at_once<S: Ports>(store: Arc<S>) {
    const N: usize = 10_001;
    let ids = create_customers(&store, N).await;
    let s = new_segment(&*store, "Everyone").await;
    store
        .add_members(s.id, &ids)
        .await
        .expect("add more than 10 000 members at once");
    let segment = store.get_segment(s.id).await.unwrap();
    assert_eq!(segment.customers.len(), N);
    assert!(segment.customers.windows(2).all(|w| w[0].id < w[1].id));
    let in_segment = CustomerFilter {
        segment: Some(s.id.get()),
        ..Default::default()
    };
    let page = store
        .list(&in_segment, PageRequest::default())
        .await
        .unwrap();
    assert_eq!(page.count, N as u64);
    // All or nothing holds for a large list too.
    let mut with_missing = ids.clone();
    with_missing.push(missing_customer());
    let other = new_segment(&*store, "Other").await;
    expect_rejected(
        store.add_members(other.id, &with_missing).await,
        "customer_id",
        "large add with a missing id",
    );
    assert!(member_ids(&*store, other.id).await.is_empty());
    store
        .remove_members(s.id, &ids)
        .await
        .expect("remove more than 10 000 members at once");
    assert!(member_ids(&*store, s.id).await.is_empty());
}

pub async fn membership_changes_leave_customer_updated_at<S: Ports>(store: Arc<S>) {
    let t0 = now();
    let c = create_at(&*store, named("Ann"), t0).await;
    let s = new_segment(&*store, "Seg").await;
    store.add_members(s.id, &[c.id]).await.unwrap();
    assert_eq!(get(&*store, c.id).await.updated_at, t0, "after add");
    store.remove_members(s.id, &[c.id]).await.unwrap();
    assert_eq!(get(&*store, c.id).await.updated_at, t0, "after remove");
}
