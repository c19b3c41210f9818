//! `SegmentRepository`: segments, memberships and their effect on customers.

use std::sync::Arc;

use crm_domain::customer::{CustomerFilter, CustomerId};
use crm_domain::page::PageRequest;
use crm_domain::segment::{SegmentId, SegmentMember, SegmentRef, SegmentTitle};
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

async fn new_segment<S: Ports>(store: &S, name: &str) -> SegmentRef {
    store
        .create_segment(&title(name), now())
        .await
        .unwrap_or_else(|e| panic!("create segment failed: {e}"))
}

/// Every member of `segments`, read in pages of `limit` by keyset; asserts
/// each page holds at most `limit`, and that only the last is short.
async fn read_all<S: Ports>(store: &S, segments: &[SegmentId], limit: usize) -> Vec<SegmentMember> {
    let mut all: Vec<SegmentMember> = Vec::new();
    loop {
        let after = all.last().map(|m| (m.segment, m.customer.id));
        let page = store
            .segment_members(segments, after, limit)
            .await
            .unwrap_or_else(|e| panic!("segment members failed: {e}"));
        assert!(
            page.len() <= limit,
            "{} members for a limit of {limit}",
            page.len()
        );
        let last = page.len() < limit;
        all.extend(page);
        if last {
            return all;
        }
    }
}

/// Pairs (segment, customer) of `members`.
fn pairs(members: &[SegmentMember]) -> Vec<(SegmentId, CustomerId)> {
    members.iter().map(|m| (m.segment, m.customer.id)).collect()
}

/// The segment's member ids, read in pages of 2.
async fn member_ids<S: Ports>(store: &S, segment: SegmentId) -> Vec<CustomerId> {
    read_all(store, &[segment], 2)
        .await
        .iter()
        .map(|m| {
            assert_eq!(m.segment, segment);
            m.customer.id
        })
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
    assert!(member_ids(&*store, created.id).await.is_empty());
    assert_eq!(store.segment_head(created.id).await.unwrap(), created);
    let other = new_segment(&*store, "VIP 客户").await;
    assert_ne!(other.id, created.id, "titles need not be unique");
}

pub async fn get_missing_segment_is_not_found<S: Ports>(store: Arc<S>) {
    expect_not_found(store.segment_head(missing_segment()).await, "missing");
    let s = new_segment(&*store, "Gone").await;
    store.delete_segment(s.id, now()).await.unwrap();
    expect_not_found(store.segment_head(s.id).await, "deleted");
}

pub async fn rename_segment_keeps_members<S: Ports>(store: Arc<S>) {
    let s = new_segment(&*store, "Old").await;
    let a = create_named(&*store, "A").await;
    let b = create_named(&*store, "B").await;
    store.add_members(s.id, &[a.id, b.id], now()).await.unwrap();
    let renamed = store
        .rename_segment(s.id, &title("New"), at(now(), 5))
        .await
        .expect("rename");
    assert_eq!(renamed.id, s.id);
    assert_eq!(renamed.title, "New");
    assert_eq!(member_ids(&*store, s.id).await, [a.id, b.id]);
    assert_eq!(store.segment_head(s.id).await.unwrap(), renamed);
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
    store
        .add_members(doomed.id, &[a.id, b.id], now())
        .await
        .unwrap();
    store.add_members(kept.id, &[a.id], now()).await.unwrap();
    store
        .delete_segment(doomed.id, now())
        .await
        .expect("delete");
    expect_not_found(store.segment_head(doomed.id).await, "deleted segment");
    assert!(
        member_ids(&*store, doomed.id).await.is_empty(),
        "memberships go"
    );
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
    expect_not_found(
        store.delete_segment(missing_segment(), now()).await,
        "missing",
    );
    let s = new_segment(&*store, "Once").await;
    store.delete_segment(s.id, now()).await.unwrap();
    expect_not_found(store.delete_segment(s.id, now()).await, "deleted twice");
}

pub async fn segment_heads_page_by_id_with_count<S: Ports>(store: Arc<S>) {
    let empty = store.segment_heads(PageRequest::default()).await.unwrap();
    assert_eq!((empty.count, empty.items.len()), (0, 0));
    let s1 = new_segment(&*store, "Zeta").await;
    let s2 = new_segment(&*store, "Alpha").await;
    let s3 = new_segment(&*store, "Mid").await;
    let a = create_named(&*store, "A").await;
    let b = create_named(&*store, "B").await;
    store
        .add_members(s2.id, &[b.id, a.id], now())
        .await
        .unwrap();
    store.add_members(s3.id, &[b.id], now()).await.unwrap();
    let page = |n: u64| PageRequest::new(n, Some(2)).unwrap();
    let first = store.segment_heads(page(1)).await.unwrap();
    assert_eq!(first.count, 3);
    assert_eq!(first.request, page(1));
    assert_eq!(first.items, [s1.clone(), s2.clone()]);
    for head in &first.items {
        assert_eq!(*head, store.segment_head(head.id).await.unwrap());
    }
    let second = store.segment_heads(page(2)).await.unwrap();
    assert_eq!(second.count, 3);
    assert_eq!(second.items, [s3]);
    let past = store.segment_heads(page(3)).await.unwrap();
    assert_eq!((past.count, past.items.len()), (3, 0));
}

pub async fn segment_members_page_by_keyset_without_skips_or_repeats<S: Ports>(store: Arc<S>) {
    let s1 = new_segment(&*store, "One").await.id;
    let empty = new_segment(&*store, "Empty").await.id;
    let s3 = new_segment(&*store, "Three").await.id;
    let unasked = new_segment(&*store, "Not asked for").await.id;
    let ids = create_customers(&store, 9).await;
    store.add_members(s1, &ids[..7], now()).await.unwrap();
    store.add_members(s3, &ids[4..], now()).await.unwrap();
    store.add_members(unasked, &ids, now()).await.unwrap();
    let mut expected: Vec<(SegmentId, CustomerId)> = ids[..7].iter().map(|c| (s1, *c)).collect();
    expected.extend(ids[4..].iter().map(|c| (s3, *c)));
    for limit in [1, 2, 3, 7, 8, 12, 13, 100] {
        let all = read_all(&*store, &[s3, empty, s1], limit).await;
        assert_eq!(
            pairs(&all),
            expected,
            "limit {limit}: by segment then customer id, each member once"
        );
    }
    // A full page says nothing about what follows; a short one is the end.
    let full = store.segment_members(&[s1, s3], None, 12).await.unwrap();
    assert_eq!(pairs(&full), expected[..12]);
    let rest = store
        .segment_members(&[s1, s3], Some((s3, ids[7])), 12)
        .await
        .unwrap();
    assert_eq!(pairs(&rest), expected[11..]);
    assert!(store
        .segment_members(&[s1, s3], Some((s3, ids[8])), 12)
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .segment_members(&[s1, s3], None, 0)
        .await
        .unwrap()
        .is_empty());
    // Each member is the customer's list item without its segments.
    for member in &full {
        let mut summary = get(&*store, member.customer.id).await.summary();
        assert!(!summary.segments.is_empty());
        summary.segments.clear();
        assert_eq!(member.customer, summary);
    }
}

pub async fn segment_members_continue_past_changes_between_pages<S: Ports>(store: Arc<S>) {
    let s = new_segment(&*store, "Seg").await.id;
    let ids = create_customers(&store, 8).await;
    store.add_members(s, &ids[..6], now()).await.unwrap();
    let first = store.segment_members(&[s], None, 3).await.unwrap();
    assert_eq!(
        first.iter().map(|m| m.customer.id).collect::<Vec<_>>(),
        ids[..3]
    );
    // The last member read leaves, one behind the cursor leaves, one ahead
    // leaves and one ahead joins: the next page starts after the cursor all
    // the same and shows the members as they now are.
    store
        .remove_members(s, &[ids[2], ids[0], ids[4]], now())
        .await
        .unwrap();
    store.add_members(s, &[ids[7]], now()).await.unwrap();
    let after = Some((s, ids[2]));
    let next = store.segment_members(&[s], after, 3).await.unwrap();
    assert_eq!(
        next.iter().map(|m| m.customer.id).collect::<Vec<_>>(),
        [ids[3], ids[5], ids[7]]
    );
}

pub async fn segment_members_of_an_unknown_segment_are_none<S: Ports>(store: Arc<S>) {
    let s = new_segment(&*store, "Seg").await.id;
    let a = create_named(&*store, "A").await.id;
    store.add_members(s, &[a], now()).await.unwrap();
    assert!(store
        .segment_members(&[missing_segment()], None, 10)
        .await
        .expect("an unknown segment is not an error")
        .is_empty());
    let mixed = store
        .segment_members(&[missing_segment(), s], None, 10)
        .await
        .unwrap();
    assert_eq!(pairs(&mixed), [(s, a)]);
    assert!(store
        .segment_members(&[missing_segment()], Some((missing_segment(), a)), 10)
        .await
        .unwrap()
        .is_empty());
    store.delete_segment(s, now()).await.unwrap();
    assert!(store
        .segment_members(&[s], Some((s, a)), 10)
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .segment_members(&[s], None, 10)
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .segment_members(&[], None, 10)
        .await
        .unwrap()
        .is_empty());
}

pub async fn add_members_is_idempotent<S: Ports>(store: Arc<S>) {
    let s = new_segment(&*store, "Seg").await;
    let [a, b, c] = [
        create_named(&*store, "A").await.id,
        create_named(&*store, "B").await.id,
        create_named(&*store, "C").await.id,
    ];
    store.add_members(s.id, &[a, b], now()).await.expect("add");
    store
        .add_members(s.id, &[b, c], now())
        .await
        .expect("overlapping add");
    store
        .add_members(s.id, &[a, b, c], now())
        .await
        .expect("repeat add");
    store
        .add_members(s.id, &[], now())
        .await
        .expect("empty add");
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
    store.add_members(s.id, &[a], now()).await.unwrap();
    let gone = create_named(&*store, "Gone").await.id;
    store.delete(gone, now()).await.unwrap();
    let missing = CustomerId::new(900_000_001).unwrap();
    let result = store.add_members(s.id, &[b, missing, gone], now()).await;
    let messages = expect_rejected(result, "customer_id", "add with missing customers");
    let text = messages.join(" ");
    for id in [missing, gone] {
        assert!(text.contains(&id.to_string()), "{text:?} names {id}");
    }
    assert_eq!(member_ids(&*store, s.id).await, [a], "nothing added");
    let only_missing = store.add_members(s.id, &[missing_customer()], now()).await;
    expect_rejected(only_missing, "customer_id", "add only a missing customer");
    assert_eq!(member_ids(&*store, s.id).await, [a]);
}

pub async fn add_members_to_missing_segment_is_not_found<S: Ports>(store: Arc<S>) {
    let a = create_named(&*store, "A").await.id;
    expect_not_found(
        store.add_members(missing_segment(), &[a], now()).await,
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
    store.add_members(s.id, &[a, b], now()).await.unwrap();
    store.add_members(other.id, &[a, c], now()).await.unwrap();
    store
        .remove_members(s.id, &[a, c, missing_customer()], now())
        .await
        .expect("remove with non-members and unknown ids");
    assert_eq!(member_ids(&*store, s.id).await, [b]);
    assert_eq!(
        member_ids(&*store, other.id).await,
        [a, c],
        "other segment kept"
    );
    store
        .remove_members(s.id, &[a], now())
        .await
        .expect("remove again");
    store
        .remove_members(s.id, &[], now())
        .await
        .expect("remove nobody");
    assert_eq!(member_ids(&*store, s.id).await, [b]);
    assert_eq!(customer_count(&*store).await, 3, "customers stay");
}

pub async fn remove_members_from_missing_segment_is_not_found<S: Ports>(store: Arc<S>) {
    let a = create_named(&*store, "A").await.id;
    expect_not_found(
        store.remove_members(missing_segment(), &[a], now()).await,
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
    store.add_members(s.id, &shuffled, now()).await.unwrap();
    store.add_members(other.id, &ids, now()).await.unwrap();
    let members = store.segment_members(&[s.id], None, 100).await.unwrap();
    assert_eq!(
        members.iter().map(|m| m.customer.id).collect::<Vec<_>>(),
        [ids[0], ids[1], ids[3], ids[4]],
        "ordered by customer id"
    );
    for member in &members {
        assert_eq!(member.segment, s.id);
        let member = &member.customer;
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
    store.add_members(alpha.id, &[a], now()).await.unwrap();
    store.add_members(zeta.id, &[a, b], now()).await.unwrap();
    let r = |s: &SegmentRef| s.clone();
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
    store.remove_members(zeta.id, &[a], now()).await.unwrap();
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
            tasks.spawn(async move { store.add_members(s.id, &list, now()).await });
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
        .add_members(s.id, &ids, now())
        .await
        .expect("add more than 10 000 members at once");
    let members = read_all(&*store, &[s.id], 500).await;
    assert_eq!(members.len(), N);
    assert!(members
        .windows(2)
        .all(|w| w[0].customer.id < w[1].customer.id));
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
        store.add_members(other.id, &with_missing, now()).await,
        "customer_id",
        "large add with a missing id",
    );
    assert!(member_ids(&*store, other.id).await.is_empty());
    store
        .remove_members(s.id, &ids, now())
        .await
        .expect("remove more than 10 000 members at once");
    assert!(member_ids(&*store, s.id).await.is_empty());
}

pub async fn membership_changes_leave_customer_updated_at<S: Ports>(store: Arc<S>) {
    let t0 = now();
    let c = create_at(&*store, named("Ann"), t0).await;
    let s = new_segment(&*store, "Seg").await;
    store.add_members(s.id, &[c.id], now()).await.unwrap();
    assert_eq!(get(&*store, c.id).await.updated_at, t0, "after add");
    store.remove_members(s.id, &[c.id], now()).await.unwrap();
    assert_eq!(get(&*store, c.id).await.updated_at, t0, "after remove");
}
