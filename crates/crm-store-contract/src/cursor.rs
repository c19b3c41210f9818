//! `CustomerRepository::cursor_page`: keyset pages in every cursor
//! ordering, with filters, backwards, across deletions, and walks that
//! writers run alongside.

use std::collections::BTreeSet;
use std::sync::Arc;

use crm_domain::customer::{
    CursorPage, CursorPosition, CursorRequest, CustomerFilter, CustomerId, CustomerOrdering,
};

use crate::support::{at, create_at, create_named, named, now, tags};
use crate::Ports;

fn request(position: Option<CursorPosition>, backward: bool, size: u64) -> CursorRequest {
    CursorRequest {
        position,
        backward,
        size,
        settled_before: None,
    }
}

fn ordered(ordering: CustomerOrdering) -> CustomerFilter {
    CustomerFilter {
        ordering,
        ..Default::default()
    }
}

async fn page<S: Ports>(store: &S, filter: &CustomerFilter, request: CursorRequest) -> CursorPage {
    store
        .cursor_page(filter, &request)
        .await
        .expect("cursor page")
}

fn ids(page: &CursorPage) -> Vec<CustomerId> {
    page.items.iter().map(|(_, c)| c.id).collect()
}

/// Every customer `filter` selects, by following pages of `size` forward.
async fn walk<S: Ports>(store: &S, filter: &CustomerFilter, size: u64) -> Vec<CustomerId> {
    let mut seen = Vec::new();
    let mut position = None;
    loop {
        let page = page(store, filter, request(position, false, size)).await;
        assert!(page.items.len() as u64 <= size);
        seen.extend(ids(&page));
        if !page.more {
            return seen;
        }
        position = page.items.last().map(|(p, _)| *p);
    }
}

pub async fn pages_walk_every_ordering_once_in_order<S: Ports>(store: Arc<S>) {
    let t0 = now();
    let mut created = Vec::new();
    for i in 0..7 {
        // Updated out of id order, two at the same instant.
        let updated = at(t0, [5, 1, 3, 3, 9, 0, 7][i]);
        created.push(
            create_at(&*store, named(&format!("C{i}")), updated)
                .await
                .id,
        );
    }
    let by_id: Vec<CustomerId> = created.clone();
    let mut by_time: Vec<(i64, CustomerId)> = created
        .iter()
        .zip([5, 1, 3, 3, 9, 0, 7])
        .map(|(id, t)| (t, *id))
        .collect();
    by_time.sort();
    let by_time: Vec<CustomerId> = by_time.into_iter().map(|(_, id)| id).collect();
    for (ordering, expected) in [
        (CustomerOrdering::IdAsc, by_id.clone()),
        (
            CustomerOrdering::IdDesc,
            by_id.iter().rev().copied().collect(),
        ),
        (CustomerOrdering::UpdatedAtAsc, by_time.clone()),
        (
            CustomerOrdering::UpdatedAtDesc,
            by_time.iter().rev().copied().collect(),
        ),
    ] {
        for size in [1, 2, 3, 7, 100] {
            assert_eq!(
                walk(&*store, &ordered(ordering), size).await,
                expected,
                "{ordering:?} in pages of {size}"
            );
        }
    }
}

pub async fn positions_page_back_and_outlive_their_customers<S: Ports>(store: Arc<S>) {
    let mut created = Vec::new();
    for i in 0..6 {
        created.push(create_named(&*store, &format!("C{i}")).await.id);
    }
    let filter = ordered(CustomerOrdering::IdAsc);
    let first = page(&*store, &filter, request(None, false, 2)).await;
    assert_eq!(ids(&first), created[..2]);
    assert!(first.more);
    let second_start = first.items.last().unwrap().0;
    let second = page(&*store, &filter, request(Some(second_start), false, 2)).await;
    assert_eq!(ids(&second), created[2..4]);
    // Back from the second page's first position: the first page again.
    let back = page(&*store, &filter, request(Some(second.items[0].0), true, 2)).await;
    assert_eq!(ids(&back), created[..2], "in the ordering, not reversed");
    assert!(!back.more, "nothing before the first page");
    // A deleted customer's position still orders the others.
    store.delete(created[3], now()).await.unwrap();
    let after_deleted = page(
        &*store,
        &filter,
        request(Some(second.items[1].0), false, 10),
    )
    .await;
    assert_eq!(ids(&after_deleted), created[4..]);
    assert!(!after_deleted.more);
    let last = page(
        &*store,
        &filter,
        request(Some(CursorPosition::Id(i64::MAX - 1)), false, 10),
    )
    .await;
    assert!(last.items.is_empty() && !last.more);
}

pub async fn filters_apply_to_cursor_pages<S: Ports>(store: Arc<S>) {
    use crm_domain::customer::CustomerChanges;
    let mut tagged = Vec::new();
    for i in 0..9 {
        let changes = CustomerChanges {
            tags: Some(tags(if i % 3 == 0 { &["vip"] } else { &["other"] })),
            ..named(&format!("C{i}"))
        };
        let c = create_at(&*store, changes, now()).await;
        if i % 3 == 0 {
            tagged.push(c.id);
        }
    }
    let filter = CustomerFilter {
        tag: Some("vip".to_owned()),
        ordering: CustomerOrdering::IdDesc,
        ..Default::default()
    };
    let mut expected = tagged.clone();
    expected.reverse();
    assert_eq!(walk(&*store, &filter, 2).await, expected);
    let search = CustomerFilter {
        search: Some("c8".to_owned()),
        ordering: CustomerOrdering::UpdatedAtAsc,
        ..Default::default()
    };
    assert_eq!(walk(&*store, &search, 5).await.len(), 1);
}

pub async fn settled_before_holds_back_recent_updates<S: Ports>(store: Arc<S>) {
    let t0 = now();
    let old = create_at(&*store, named("Old"), at(t0, -60)).await;
    let recent = create_at(&*store, named("Recent"), t0).await;
    let filter = ordered(CustomerOrdering::UpdatedAtAsc);
    let held = page(
        &*store,
        &filter,
        CursorRequest {
            settled_before: Some(at(t0, -5)),
            ..request(None, false, 10)
        },
    )
    .await;
    assert_eq!(ids(&held), [old.id]);
    let all = page(&*store, &filter, request(None, false, 10)).await;
    assert_eq!(ids(&all), [old.id, recent.id]);
}

pub async fn a_walk_by_update_time_sees_updated_customers_again_and_skips_none<S: Ports>(
    store: Arc<S>,
) {
    let t0 = now();
    let mut created = Vec::new();
    for i in 0..10 {
        created.push(
            create_at(&*store, named(&format!("C{i}")), at(t0, i))
                .await
                .id,
        );
    }
    let filter = ordered(CustomerOrdering::UpdatedAtAsc);
    let mut seen = Vec::new();
    let mut position = None;
    let mut step = 0;
    loop {
        let page = page(&*store, &filter, request(position, false, 3)).await;
        seen.extend(ids(&page));
        // Between pages, a writer updates the first customer of the page
        // just read and one not reached yet.
        if step < 3 {
            let touched = [page.items[0].1.id, created[9 - step]];
            for (n, id) in touched.into_iter().enumerate() {
                store
                    .update(
                        id,
                        &named(&format!("T{step}{n}")),
                        at(t0, 100 + step as i64 * 2 + n as i64),
                    )
                    .await
                    .unwrap();
            }
        }
        step += 1;
        if !page.more {
            break;
        }
        position = page.items.last().map(|(p, _)| *p);
    }
    let distinct: BTreeSet<CustomerId> = seen.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        created.len(),
        "every customer at least once"
    );
    for (n, id) in created.iter().enumerate().take(7).step_by(3) {
        assert!(
            seen.iter().filter(|s| *s == id).count() >= 2,
            "customer {n} was updated behind the walk and came again"
        );
    }
}
