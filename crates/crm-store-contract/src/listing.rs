//! `CustomerRepository::list`: counting, paging, ordering and every filter.

use std::collections::BTreeSet;
use std::sync::Arc;

use crm_domain::customer::{
    CouponId, Customer, CustomerChanges, CustomerFilter, CustomerId, CustomerOrdering,
};
use crm_domain::page::PageRequest;
use crm_domain::segment::SegmentTitle;
use time::{Duration, UtcOffset};

use crate::support::{
    address, at, create, create_at, create_named, email, get, id_set, ids, missing_customer,
    mobile, named, now, sorted, tags,
};
use crate::Ports;

fn page(number: u64, size: u64) -> PageRequest {
    PageRequest::new(number, Some(size)).expect("valid page")
}

/// Creates `n` customers named "Customer 0".. in id order.
async fn create_many<S: Ports>(store: &S, n: usize) -> Vec<Customer> {
    let mut created = Vec::with_capacity(n);
    for i in 0..n {
        created.push(create_named(store, &format!("Customer {i}")).await);
    }
    created
}

fn ordered(ordering: CustomerOrdering) -> CustomerFilter {
    CustomerFilter {
        ordering,
        ..Default::default()
    }
}

pub async fn list_of_empty_store_is_empty<S: Ports>(store: Arc<S>) {
    let first = store
        .list(&CustomerFilter::default(), PageRequest::default())
        .await
        .unwrap();
    assert_eq!((first.count, first.items.len()), (0, 0));
    assert_eq!(first.request, PageRequest::default());
    let second = store
        .list(&CustomerFilter::default(), page(2, 10))
        .await
        .unwrap();
    assert_eq!((second.count, second.items.len()), (0, 0));
}

pub async fn list_counts_exactly_and_pages_without_overlap<S: Ports>(store: Arc<S>) {
    let created = create_many(&*store, 23).await;
    let filter = ordered(CustomerOrdering::IdAsc);
    let mut seen = Vec::new();
    for (number, expected_len) in [(1, 10), (2, 10), (3, 3)] {
        let result = store.list(&filter, page(number, 10)).await.unwrap();
        assert_eq!(result.count, 23, "exact count on page {number}");
        assert_eq!(result.items.len(), expected_len, "items on page {number}");
        assert_eq!(result.request, page(number, 10));
        seen.extend(result.items.iter().map(|c| c.id));
    }
    let all: Vec<CustomerId> = created.iter().map(|c| c.id).collect();
    assert_eq!(seen, all, "pages cover every customer once, in order");
    let one = store.list(&filter, page(7, 3)).await.unwrap();
    assert_eq!(one.count, 23);
    assert_eq!(
        one.items.iter().map(|c| c.id).collect::<Vec<_>>(),
        all[18..21].to_vec()
    );
}

pub async fn page_past_the_end_has_count_and_no_items<S: Ports>(store: Arc<S>) {
    create_many(&*store, 5).await;
    for request in [
        page(2, 5),
        page(3, 4),
        page(1_000, 10),
        page(u64::MAX, 1000),
    ] {
        let result = store
            .list(&CustomerFilter::default(), request)
            .await
            .unwrap_or_else(|e| panic!("{request:?}: {e}"));
        assert_eq!(result.count, 5, "{request:?}");
        assert!(result.items.is_empty(), "{request:?}");
    }
    let filtered = CustomerFilter {
        search: Some("Customer 1".into()),
        ..Default::default()
    };
    let result = store.list(&filtered, page(2, 1)).await.unwrap();
    assert_eq!((result.count, result.items.len()), (1, 0));
}

pub async fn default_ordering_is_newest_id_first<S: Ports>(store: Arc<S>) {
    let created = create_many(&*store, 4).await;
    let mut expected: Vec<CustomerId> = created.iter().map(|c| c.id).collect();
    expected.reverse();
    assert_eq!(CustomerFilter::default().ordering, CustomerOrdering::IdDesc);
    assert_eq!(ids(&*store, &CustomerFilter::default()).await, expected);
}

pub async fn ordering_by_id<S: Ports>(store: Arc<S>) {
    let created = create_many(&*store, 5).await;
    let asc: Vec<CustomerId> = created.iter().map(|c| c.id).collect();
    let desc: Vec<CustomerId> = asc.iter().rev().copied().collect();
    assert_eq!(ids(&*store, &ordered(CustomerOrdering::IdAsc)).await, asc);
    assert_eq!(ids(&*store, &ordered(CustomerOrdering::IdDesc)).await, desc);
    let second_page = store
        .list(&ordered(CustomerOrdering::IdDesc), page(2, 2))
        .await
        .unwrap();
    assert_eq!(
        second_page.items.iter().map(|c| c.id).collect::<Vec<_>>(),
        desc[2..4].to_vec()
    );
}

pub async fn ordering_by_created_at_breaks_ties_by_id<S: Ports>(store: Arc<S>) {
    let t = now();
    // Created in id order c0..c4 with these creation instants (c1 and c2 tie).
    let offsets = [2, 1, 1, 3, 0];
    let mut c = Vec::new();
    for (i, offset) in offsets.iter().enumerate() {
        c.push(
            create_at(&*store, named(&format!("C{i}")), at(t, *offset))
                .await
                .id,
        );
    }
    assert_eq!(
        ids(&*store, &ordered(CustomerOrdering::CreatedAtAsc)).await,
        [c[4], c[1], c[2], c[0], c[3]]
    );
    assert_eq!(
        ids(&*store, &ordered(CustomerOrdering::CreatedAtDesc)).await,
        [c[3], c[0], c[2], c[1], c[4]]
    );
}

pub async fn ordering_by_updated_at_breaks_ties_by_id<S: Ports>(store: Arc<S>) {
    let t = now();
    let mut c = Vec::new();
    for i in 0..5 {
        c.push(
            create_at(&*store, named(&format!("C{i}")), at(t, i))
                .await
                .id,
        );
    }
    // Updated: c0 at +10, c4 at +10 (a tie), c2 at +5; c1 (+1) and c3 (+3)
    // keep their creation instant. Creation order is not update order.
    for (index, offset) in [(4, 10), (2, 5), (0, 10)] {
        store
            .update(c[index], &CustomerChanges::default(), at(t, offset))
            .await
            .unwrap();
    }
    assert_eq!(
        ids(&*store, &ordered(CustomerOrdering::UpdatedAtAsc)).await,
        [c[1], c[3], c[2], c[0], c[4]]
    );
    assert_eq!(
        ids(&*store, &ordered(CustomerOrdering::UpdatedAtDesc)).await,
        [c[4], c[0], c[2], c[3], c[1]]
    );
}

pub async fn filter_by_id<S: Ports>(store: Arc<S>) {
    let created = create_many(&*store, 3).await;
    let by_id = |id: i64| CustomerFilter {
        id: Some(id),
        ..Default::default()
    };
    assert_eq!(
        id_set(&*store, &by_id(created[1].id.get())).await,
        [created[1].id]
    );
    assert!(id_set(&*store, &by_id(missing_customer().get()))
        .await
        .is_empty());
    assert!(id_set(&*store, &by_id(0)).await.is_empty());
}

pub async fn filter_by_id_in<S: Ports>(store: Arc<S>) {
    let created = create_many(&*store, 4).await;
    let id_in = |list: Vec<i64>| CustomerFilter {
        id_in: Some(list),
        ..Default::default()
    };
    let some = id_in(vec![
        created[3].id.get(),
        created[0].id.get(),
        missing_customer().get(),
        created[3].id.get(),
    ]);
    assert_eq!(id_set(&*store, &some).await, [created[0].id, created[3].id]);
    assert!(
        id_set(&*store, &id_in(vec![])).await.is_empty(),
        "an empty id list matches nobody"
    );
}

pub async fn filter_by_coupon_and_coupon_exclude<S: Ports>(store: Arc<S>) {
    let [a, b, c] = [
        create_named(&*store, "A").await,
        create_named(&*store, "B").await,
        create_named(&*store, "C").await,
    ];
    let coupon = |n: i64| CouponId::new(n).unwrap();
    store.grant_coupon(a.id, coupon(100), now()).await.unwrap();
    store.grant_coupon(b.id, coupon(100), now()).await.unwrap();
    store.grant_coupon(b.id, coupon(200), now()).await.unwrap();
    let filter = |holds: Option<i64>, lacks: Option<i64>| CustomerFilter {
        coupon: holds,
        coupon_exclude: lacks,
        ..Default::default()
    };
    assert_eq!(
        id_set(&*store, &filter(Some(100), None)).await,
        sorted(&[&a, &b])
    );
    assert_eq!(id_set(&*store, &filter(Some(200), None)).await, [b.id]);
    assert!(id_set(&*store, &filter(Some(999), None)).await.is_empty());
    assert_eq!(id_set(&*store, &filter(None, Some(100))).await, [c.id]);
    assert_eq!(
        id_set(&*store, &filter(None, Some(200))).await,
        sorted(&[&a, &c])
    );
    assert_eq!(
        id_set(&*store, &filter(None, Some(999))).await,
        sorted(&[&a, &b, &c])
    );
    assert_eq!(id_set(&*store, &filter(Some(100), Some(200))).await, [a.id]);
    store.revoke_coupon(a.id, coupon(100), now()).await.unwrap();
    assert_eq!(id_set(&*store, &filter(Some(100), None)).await, [b.id]);
}

pub async fn filter_by_segment_and_segment_exclude<S: Ports>(store: Arc<S>) {
    let [a, b, c] = [
        create_named(&*store, "A").await,
        create_named(&*store, "B").await,
        create_named(&*store, "C").await,
    ];
    let title = |t: &str| SegmentTitle::parse(t).unwrap();
    let one = store.create_segment(&title("One"), now()).await.unwrap();
    let two = store.create_segment(&title("Two"), now()).await.unwrap();
    let empty = store.create_segment(&title("Empty"), now()).await.unwrap();
    store
        .add_members(one.id, &[a.id, b.id], now())
        .await
        .unwrap();
    store.add_members(two.id, &[b.id], now()).await.unwrap();
    let filter = |within: Option<i64>, outside: Option<i64>| CustomerFilter {
        segment: within,
        segment_exclude: outside,
        ..Default::default()
    };
    let (one, two, empty) = (one.id.get(), two.id.get(), empty.id.get());
    assert_eq!(
        id_set(&*store, &filter(Some(one), None)).await,
        sorted(&[&a, &b])
    );
    assert_eq!(id_set(&*store, &filter(Some(two), None)).await, [b.id]);
    assert!(id_set(&*store, &filter(Some(empty), None)).await.is_empty());
    assert_eq!(id_set(&*store, &filter(None, Some(one))).await, [c.id]);
    assert_eq!(
        id_set(&*store, &filter(None, Some(two))).await,
        sorted(&[&a, &c])
    );
    assert_eq!(
        id_set(&*store, &filter(None, Some(empty))).await,
        sorted(&[&a, &b, &c])
    );
    assert_eq!(id_set(&*store, &filter(Some(one), Some(two))).await, [a.id]);
}

pub async fn filter_by_mobile_is_exact<S: Ports>(store: Arc<S>) {
    let a = create(
        &*store,
        CustomerChanges {
            mobile: mobile("13800000001"),
            ..Default::default()
        },
    )
    .await;
    let b = create(
        &*store,
        CustomerChanges {
            mobile: mobile("+8613800000001"),
            ..Default::default()
        },
    )
    .await;
    create_named(&*store, "No mobile").await;
    let by = |m: &str| CustomerFilter {
        mobile: Some(m.into()),
        ..Default::default()
    };
    assert_eq!(id_set(&*store, &by("13800000001")).await, [a.id]);
    assert_eq!(id_set(&*store, &by("+8613800000001")).await, [b.id]);
    assert!(
        id_set(&*store, &by("1380000000")).await.is_empty(),
        "no prefix match"
    );
    assert!(
        id_set(&*store, &by("3800000001")).await.is_empty(),
        "no suffix match"
    );
}

pub async fn filter_by_email_is_case_insensitive<S: Ports>(store: Arc<S>) {
    let a = create(
        &*store,
        CustomerChanges {
            email: email("Ann.Lee@Example.com"),
            ..Default::default()
        },
    )
    .await;
    create(
        &*store,
        CustomerChanges {
            email: email("ann.lee@example.org"),
            ..Default::default()
        },
    )
    .await;
    create_named(&*store, "No e-mail").await;
    let by = |e: &str| CustomerFilter {
        email: Some(e.into()),
        ..Default::default()
    };
    for variant in [
        "Ann.Lee@Example.com",
        "ann.lee@example.com",
        "ANN.LEE@EXAMPLE.COM",
    ] {
        assert_eq!(id_set(&*store, &by(variant)).await, [a.id], "{variant}");
    }
    assert!(
        id_set(&*store, &by("ann.lee@example")).await.is_empty(),
        "not a substring match"
    );
}

pub async fn filter_by_tag_is_exact<S: Ports>(store: Arc<S>) {
    let with_tags = |name: &str, t: &[&str]| CustomerChanges {
        tags: Some(tags(t)),
        ..named(name)
    };
    let a = create(&*store, with_tags("A", &["vip", "east"])).await;
    let b = create(&*store, with_tags("B", &["vip"])).await;
    let c = create(&*store, with_tags("C", &["VIP", "vip-gold"])).await;
    let by = |t: &str| CustomerFilter {
        tag: Some(t.into()),
        ..Default::default()
    };
    assert_eq!(id_set(&*store, &by("vip")).await, sorted(&[&a, &b]));
    assert_eq!(id_set(&*store, &by("east")).await, [a.id]);
    assert_eq!(id_set(&*store, &by("VIP")).await, [c.id]);
    assert!(id_set(&*store, &by("vi")).await.is_empty());
    assert!(id_set(&*store, &by("west")).await.is_empty());
}

pub async fn search_folds_non_ascii_case<S: Ports>(store: Arc<S>) {
    let c = create(&*store, named("Björn Ölund")).await;
    let search = |text: &str| CustomerFilter {
        search: Some(text.into()),
        ..Default::default()
    };
    for text in ["ÖLUND", "björn", "BJÖRN ö"] {
        assert_eq!(id_set(&*store, &search(text)).await, [c.id], "{text}");
    }
}

pub async fn search_is_case_insensitive_substring_of_name_mobile_email<S: Ports>(store: Arc<S>) {
    let alice = create(
        &*store,
        CustomerChanges {
            mobile: mobile("13811110000"),
            email: email("AW@Example.com"),
            ..named("Alice Wonder")
        },
    )
    .await;
    let bob = create(
        &*store,
        CustomerChanges {
            mobile: mobile("13922220000"),
            email: email("bob@shop.example"),
            ..named("Bob")
        },
    )
    .await;
    let carol = create(
        &*store,
        CustomerChanges {
            email: email("carol@other.example"),
            ..named("Carol")
        },
    )
    .await;
    let search = |text: &str| CustomerFilter {
        search: Some(text.into()),
        ..Default::default()
    };
    let cases: [(&str, Vec<CustomerId>); 9] = [
        ("WONDER", vec![alice.id]),
        ("lic", vec![alice.id]),
        ("alice wonder", vec![alice.id]),
        ("2222", vec![bob.id]),
        ("1381111", vec![alice.id]),
        ("SHOP.EX", vec![bob.id]),
        ("aw@", vec![alice.id]),
        ("example", sorted(&[&alice, &bob, &carol])),
        ("nobody", vec![]),
    ];
    for (text, expected) in cases {
        assert_eq!(
            id_set(&*store, &search(text)).await,
            expected,
            "search {text:?}"
        );
    }
}

pub async fn search_matches_percent_underscore_and_backslash_literally<S: Ports>(store: Arc<S>) {
    let names = [
        "100% Pure",
        "1000 Pure",
        "a_b",
        "axb",
        "back\\slash",
        "backslash",
    ];
    let mut by_name = Vec::new();
    for name in names {
        by_name.push(create_named(&*store, name).await.id);
    }
    let search = |text: &str| CustomerFilter {
        search: Some(text.into()),
        ..Default::default()
    };
    let cases: [(&str, Vec<CustomerId>); 6] = [
        ("0%", vec![by_name[0]]),
        ("%", vec![by_name[0]]),
        ("a_b", vec![by_name[2]]),
        ("_", vec![by_name[2]]),
        ("\\", vec![by_name[4]]),
        ("k\\s", vec![by_name[4]]),
    ];
    for (text, expected) in cases {
        assert_eq!(
            id_set(&*store, &search(text)).await,
            expected,
            "search {text:?}"
        );
    }
}

pub async fn filter_by_created_at_range_is_inclusive<S: Ports>(store: Arc<S>) {
    let t = now();
    let mut c = Vec::new();
    for i in 0..4 {
        c.push(
            create_at(&*store, named(&format!("C{i}")), at(t, i))
                .await
                .id,
        );
    }
    let range = |gte, lte| CustomerFilter {
        created_at_gte: gte,
        created_at_lte: lte,
        ..Default::default()
    };
    let micro = Duration::microseconds(1);
    let east = UtcOffset::from_hms(8, 0, 0).unwrap();
    let cases = [
        (range(Some(at(t, 1)), None), vec![c[1], c[2], c[3]]),
        (range(None, Some(at(t, 2))), vec![c[0], c[1], c[2]]),
        (range(Some(at(t, 1)), Some(at(t, 2))), vec![c[1], c[2]]),
        (range(Some(at(t, 1) + micro), None), vec![c[2], c[3]]),
        (range(None, Some(at(t, 2) - micro)), vec![c[0], c[1]]),
        (range(Some(at(t, 2)), Some(at(t, 2))), vec![c[2]]),
        (range(Some(at(t, 3)), Some(at(t, 1))), vec![]),
        // The same instants written in another offset select the same rows.
        (
            range(
                Some(at(t, 1).to_offset(east)),
                Some(at(t, 2).to_offset(east)),
            ),
            vec![c[1], c[2]],
        ),
    ];
    for (filter, expected) in cases {
        assert_eq!(id_set(&*store, &filter).await, expected, "{filter:?}");
    }
}

pub async fn filter_by_updated_at_range_is_inclusive<S: Ports>(store: Arc<S>) {
    let t = now();
    let mut c = Vec::new();
    for i in 0..4 {
        c.push(
            create_at(&*store, named(&format!("C{i}")), at(t, 0))
                .await
                .id,
        );
    }
    // Updated at +3, +1, +2 and never (c3 stays at +0).
    for (index, offset) in [(0, 3), (1, 1), (2, 2)] {
        store
            .update(c[index], &CustomerChanges::default(), at(t, offset))
            .await
            .unwrap();
    }
    let range = |gte, lte| CustomerFilter {
        updated_at_gte: gte,
        updated_at_lte: lte,
        ..Default::default()
    };
    let micro = Duration::microseconds(1);
    let west = UtcOffset::from_hms(-5, 0, 0).unwrap();
    let cases = [
        (range(Some(at(t, 2)), None), vec![c[0], c[2]]),
        (range(None, Some(at(t, 1))), vec![c[1], c[3]]),
        (range(Some(at(t, 1)), Some(at(t, 2))), vec![c[1], c[2]]),
        (
            range(Some(at(t, 0) + micro), Some(at(t, 3) - micro)),
            vec![c[1], c[2]],
        ),
        (range(Some(at(t, 3).to_offset(west)), None), vec![c[0]]),
    ];
    for (filter, expected) in cases {
        assert_eq!(id_set(&*store, &filter).await, expected, "{filter:?}");
    }
    // Creation instants play no part in an updated_at range.
    let created = CustomerFilter {
        created_at_gte: Some(at(t, 1)),
        ..Default::default()
    };
    assert!(id_set(&*store, &created).await.is_empty());
}

pub async fn filters_combine_with_and<S: Ports>(store: Arc<S>) {
    let t = now();
    let make = |name: &str, m: &str, tag_list: &[&str]| CustomerChanges {
        mobile: mobile(m),
        tags: Some(tags(tag_list)),
        ..named(name)
    };
    let a = create_at(
        &*store,
        make("Ann Smith", "13800000001", &["vip"]),
        at(t, 0),
    )
    .await;
    let b = create_at(
        &*store,
        make("Ann Jones", "13800000002", &["vip"]),
        at(t, 1),
    )
    .await;
    let c = create_at(
        &*store,
        make("Ann Brown", "13800000003", &["new"]),
        at(t, 2),
    )
    .await;
    create_at(
        &*store,
        make("Bob Smith", "13800000004", &["vip"]),
        at(t, 3),
    )
    .await;
    store
        .grant_coupon(b.id, CouponId::new(5).unwrap(), now())
        .await
        .unwrap();
    let base = CustomerFilter {
        search: Some("ann".into()),
        tag: Some("vip".into()),
        ..Default::default()
    };
    assert_eq!(id_set(&*store, &base).await, sorted(&[&a, &b]));
    let narrower = CustomerFilter {
        coupon_exclude: Some(5),
        ..base.clone()
    };
    assert_eq!(id_set(&*store, &narrower).await, [a.id]);
    let in_time = CustomerFilter {
        created_at_gte: Some(at(t, 1)),
        ..base.clone()
    };
    assert_eq!(id_set(&*store, &in_time).await, [b.id]);
    let contradiction = CustomerFilter {
        id: Some(c.id.get()),
        ..base
    };
    assert!(id_set(&*store, &contradiction).await.is_empty());
}

pub async fn list_items_match_the_customer_summary<S: Ports>(store: Arc<S>) {
    let title = |t: &str| SegmentTitle::parse(t).unwrap();
    let s1 = store.create_segment(&title("Zeta"), now()).await.unwrap();
    let s2 = store.create_segment(&title("Alpha"), now()).await.unwrap();
    let mut created = Vec::new();
    for i in 0..4 {
        let c = create(
            &*store,
            CustomerChanges {
                tags: Some(tags(&["b", &format!("t{i}"), "a"])),
                email: email(&format!("c{i}@example.com")),
                ..named(&format!("Customer {i}"))
            },
        )
        .await;
        created.push(c.id);
    }
    // Addresses on two of them, the default not the first created.
    for &id in &created[..2] {
        store
            .create_address(id, &address("Home"), now())
            .await
            .unwrap();
        let mut work = address("Work");
        work.is_default = Some(true);
        store.create_address(id, &work, now()).await.unwrap();
        store
            .create_address(id, &address("Other"), now())
            .await
            .unwrap();
    }
    store
        .add_members(s1.id, &created[1..], now())
        .await
        .unwrap();
    store
        .add_members(s2.id, &created[..3], now())
        .await
        .unwrap();
    let result = store
        .list(&ordered(CustomerOrdering::IdAsc), page(1, 10))
        .await
        .unwrap();
    assert_eq!(result.items.len(), 4);
    let mut segment_counts = BTreeSet::new();
    for item in &result.items {
        let full = get(&*store, item.id).await;
        assert_eq!(*item, full.summary(), "list item of customer {}", item.id);
        segment_counts.insert(item.segments.len());
    }
    assert_eq!(
        segment_counts,
        BTreeSet::from([1, 2]),
        "test data has memberships"
    );
}
