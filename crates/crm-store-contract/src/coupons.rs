//! `CouponRepository`: idempotent grants, ordering and revocation.

use std::sync::Arc;

use crm_domain::customer::{CouponHolding, CouponId};
use tokio::task::JoinSet;

use crate::support::{
    at, create_at, create_named, expect_not_found, get, missing_customer, named, now,
};
use crate::Ports;

fn coupon(raw: i64) -> CouponId {
    CouponId::new(raw).expect("positive coupon id")
}

fn coupon_ids(holdings: &[CouponHolding]) -> Vec<i64> {
    holdings.iter().map(|h| h.coupon_id.get()).collect()
}

pub async fn grant_is_idempotent<S: Ports>(store: Arc<S>) {
    let c = create_named(&*store, "Ann").await;
    let t1 = now();
    let (first, new) = store
        .grant_coupon(c.id, coupon(42), t1)
        .await
        .expect("first grant");
    assert!(new, "a first grant is new");
    assert_eq!(
        first,
        CouponHolding {
            coupon_id: coupon(42),
            granted_at: t1,
        }
    );
    let (again, new) = store
        .grant_coupon(c.id, coupon(42), at(t1, 60))
        .await
        .expect("second grant");
    assert!(!new, "a second grant is not new");
    assert_eq!(again, first, "the existing holding, granted_at kept");
    assert_eq!(store.list_coupons(c.id).await.unwrap(), [first]);
}

pub async fn coupons_listed_by_coupon_id<S: Ports>(store: Arc<S>) {
    let ann = create_named(&*store, "Ann").await;
    let bob = create_named(&*store, "Bob").await;
    assert!(store.list_coupons(ann.id).await.unwrap().is_empty());
    let t = now();
    for (i, id) in [30, 1000, 10, 20, 9].into_iter().enumerate() {
        store
            .grant_coupon(ann.id, coupon(id), at(t, i as i64))
            .await
            .unwrap();
    }
    store.grant_coupon(bob.id, coupon(15), t).await.unwrap();
    let holdings = store.list_coupons(ann.id).await.unwrap();
    assert_eq!(coupon_ids(&holdings), [9, 10, 20, 30, 1000]);
    assert_eq!(
        holdings[1].granted_at,
        at(t, 2),
        "each with its grant instant"
    );
    assert_eq!(coupon_ids(&store.list_coupons(bob.id).await.unwrap()), [15]);
}

pub async fn revoke_removes_the_holding<S: Ports>(store: Arc<S>) {
    let ann = create_named(&*store, "Ann").await;
    let bob = create_named(&*store, "Bob").await;
    for id in [1, 2] {
        store.grant_coupon(ann.id, coupon(id), now()).await.unwrap();
        store.grant_coupon(bob.id, coupon(id), now()).await.unwrap();
    }
    store
        .revoke_coupon(ann.id, coupon(1), now())
        .await
        .expect("revoke");
    assert_eq!(coupon_ids(&store.list_coupons(ann.id).await.unwrap()), [2]);
    assert_eq!(
        coupon_ids(&store.list_coupons(bob.id).await.unwrap()),
        [1, 2],
        "other holders keep it"
    );
    let (_, new) = store.grant_coupon(ann.id, coupon(1), now()).await.unwrap();
    assert!(new, "a revoked coupon can be granted anew");
}

pub async fn revoke_of_unheld_coupon_is_not_found<S: Ports>(store: Arc<S>) {
    let ann = create_named(&*store, "Ann").await;
    let bob = create_named(&*store, "Bob").await;
    store.grant_coupon(bob.id, coupon(7), now()).await.unwrap();
    expect_not_found(
        store.revoke_coupon(ann.id, coupon(7), now()).await,
        "never held",
    );
    store.grant_coupon(ann.id, coupon(8), now()).await.unwrap();
    store.revoke_coupon(ann.id, coupon(8), now()).await.unwrap();
    expect_not_found(
        store.revoke_coupon(ann.id, coupon(8), now()).await,
        "revoked twice",
    );
    assert_eq!(coupon_ids(&store.list_coupons(bob.id).await.unwrap()), [7]);
}

pub async fn missing_customer_is_not_found<S: Ports>(store: Arc<S>) {
    let gone = create_named(&*store, "Gone").await;
    store.grant_coupon(gone.id, coupon(3), now()).await.unwrap();
    store.delete(gone.id, now()).await.unwrap();
    for customer in [missing_customer(), gone.id] {
        expect_not_found(store.list_coupons(customer).await, "list");
        expect_not_found(
            store.grant_coupon(customer, coupon(3), now()).await,
            "grant",
        );
        expect_not_found(
            store.revoke_coupon(customer, coupon(3), now()).await,
            "revoke",
        );
    }
}

pub async fn concurrent_grants_store_one<S: Ports>(store: Arc<S>) {
    let c = create_named(&*store, "Ann").await;
    for round in 1..=5 {
        let mut tasks = JoinSet::new();
        for i in 0..4 {
            let store = Arc::clone(&store);
            tasks.spawn(async move { store.grant_coupon(c.id, coupon(round), at(now(), i)).await });
        }
        let mut results = Vec::new();
        while let Some(result) = tasks.join_next().await {
            results.push(result.expect("task").expect("grant"));
        }
        let new: Vec<&CouponHolding> = results.iter().filter(|(_, n)| *n).map(|(h, _)| h).collect();
        assert_eq!(new.len(), 1, "exactly one racing grant is new: {results:?}");
        assert!(
            results.iter().all(|(h, _)| h == new[0]),
            "every grant returns the stored holding: {results:?}"
        );
    }
    let holdings = store.list_coupons(c.id).await.unwrap();
    assert_eq!(coupon_ids(&holdings), [1, 2, 3, 4, 5]);
}

pub async fn coupon_changes_touch_customer_updated_at<S: Ports>(store: Arc<S>) {
    let t0 = now();
    let c = create_at(&*store, named("Ann"), t0).await;
    store
        .grant_coupon(c.id, coupon(1), at(t0, 10))
        .await
        .unwrap();
    assert_eq!(
        get(&*store, c.id).await.updated_at,
        at(t0, 10),
        "after grant"
    );
    store
        .grant_coupon(c.id, coupon(1), at(t0, 20))
        .await
        .unwrap();
    assert_eq!(
        get(&*store, c.id).await.updated_at,
        at(t0, 10),
        "a grant of a held coupon changes nothing"
    );
    store
        .revoke_coupon(c.id, coupon(1), at(t0, 30))
        .await
        .unwrap();
    assert_eq!(
        get(&*store, c.id).await.updated_at,
        at(t0, 30),
        "after revoke"
    );
}
