//! `AddressRepository`: the one-default rule, ownership and touching the
//! customer.

use std::sync::Arc;

use crm_domain::customer::{Address, AddressChanges, AddressId, CustomerId};
use tokio::task::JoinSet;

use crate::support::{
    address, at, create_at, create_named, expect_not_found, get, missing_address, missing_customer,
    named, now, the_default,
};
use crate::Ports;

fn with_default(mut changes: AddressChanges, is_default: Option<bool>) -> AddressChanges {
    changes.is_default = is_default;
    changes
}

async fn add<S: Ports>(store: &S, customer: CustomerId, changes: AddressChanges) -> Address {
    store
        .create_address(customer, &changes, now())
        .await
        .unwrap_or_else(|e| panic!("create address failed: {e}"))
}

async fn list<S: Ports>(store: &S, customer: CustomerId) -> Vec<Address> {
    store
        .list_addresses(customer)
        .await
        .unwrap_or_else(|e| panic!("list addresses failed: {e}"))
}

fn ids(addresses: &[Address]) -> Vec<AddressId> {
    addresses.iter().map(|a| a.id).collect()
}

pub async fn first_address_becomes_default<S: Ports>(store: Arc<S>) {
    for (name, flag) in [("None", None), ("False", Some(false)), ("True", Some(true))] {
        let c = create_named(&*store, name).await;
        let first = add(&*store, c.id, with_default(address("Home"), flag)).await;
        assert!(first.is_default, "first address with is_default {flag:?}");
        assert_eq!(the_default(&list(&*store, c.id).await), first.id);
    }
}

pub async fn later_address_is_not_default_unless_asked<S: Ports>(store: Arc<S>) {
    let c = create_named(&*store, "Ann").await;
    let first = add(&*store, c.id, address("Home")).await;
    let second = add(&*store, c.id, address("Work")).await;
    let third = add(&*store, c.id, with_default(address("Other"), Some(false))).await;
    assert!(!second.is_default && !third.is_default);
    let all = list(&*store, c.id).await;
    assert_eq!(all.len(), 3);
    assert_eq!(the_default(&all), first.id);
}

pub async fn create_with_is_default_moves_the_default<S: Ports>(store: Arc<S>) {
    let c = create_named(&*store, "Ann").await;
    add(&*store, c.id, address("Home")).await;
    add(&*store, c.id, address("Work")).await;
    let newest = add(&*store, c.id, with_default(address("New"), Some(true))).await;
    assert!(newest.is_default);
    let all = list(&*store, c.id).await;
    assert_eq!(all.len(), 3);
    assert_eq!(the_default(&all), newest.id);
}

pub async fn update_with_is_default_true_moves_the_default<S: Ports>(store: Arc<S>) {
    let c = create_named(&*store, "Ann").await;
    let home = add(&*store, c.id, address("Home")).await;
    let work = add(&*store, c.id, address("Work")).await;
    let updated = store
        .update_address(
            c.id,
            work.id,
            &with_default(AddressChanges::default(), Some(true)),
            now(),
        )
        .await
        .expect("make default");
    assert!(updated.is_default);
    assert_eq!(the_default(&list(&*store, c.id).await), work.id);
    // And back, with other values in the same write.
    let mut changes = with_default(AddressChanges::default(), Some(true));
    changes.set_text("city", "Ningbo").unwrap();
    let back = store
        .update_address(c.id, home.id, &changes, now())
        .await
        .unwrap();
    assert!(back.is_default);
    assert_eq!(back.city, "Ningbo");
    assert_eq!(the_default(&list(&*store, c.id).await), home.id);
    // Making the default the default again changes nothing.
    store
        .update_address(
            c.id,
            home.id,
            &with_default(AddressChanges::default(), Some(true)),
            now(),
        )
        .await
        .unwrap();
    assert_eq!(the_default(&list(&*store, c.id).await), home.id);
}

pub async fn update_with_is_default_false_keeps_the_default<S: Ports>(store: Arc<S>) {
    let c = create_named(&*store, "Ann").await;
    let home = add(&*store, c.id, address("Home")).await;
    let work = add(&*store, c.id, address("Work")).await;
    let mut changes = with_default(AddressChanges::default(), Some(false));
    changes.set_text("zip", "999999").unwrap();
    let updated = store
        .update_address(c.id, home.id, &changes, now())
        .await
        .expect("update the default with is_default false");
    assert!(updated.is_default, "the default stays the default");
    assert_eq!(updated.zip, "999999", "the other values are written");
    assert_eq!(the_default(&list(&*store, c.id).await), home.id);
    // On a non-default address, false is simply kept.
    let other = store
        .update_address(
            c.id,
            work.id,
            &with_default(AddressChanges::default(), Some(false)),
            now(),
        )
        .await
        .unwrap();
    assert!(!other.is_default);
    assert_eq!(the_default(&list(&*store, c.id).await), home.id);
}

pub async fn deleting_the_default_promotes_the_oldest_remaining<S: Ports>(store: Arc<S>) {
    let c = create_named(&*store, "Ann").await;
    let a1 = add(&*store, c.id, address("One")).await;
    let a2 = add(&*store, c.id, address("Two")).await;
    let a3 = add(&*store, c.id, address("Three")).await;
    let a4 = add(&*store, c.id, with_default(address("Four"), Some(true))).await;
    store
        .delete_address(c.id, a4.id, now())
        .await
        .expect("delete the newest, default address");
    let all = list(&*store, c.id).await;
    assert_eq!(ids(&all), [a1.id, a2.id, a3.id]);
    assert_eq!(the_default(&all), a1.id, "the oldest remaining");
    store.delete_address(c.id, a1.id, now()).await.unwrap();
    let all = list(&*store, c.id).await;
    assert_eq!(the_default(&all), a2.id, "the oldest remaining");
    assert!(store.get_address(c.id, a2.id).await.unwrap().is_default);
    store.delete_address(c.id, a3.id, now()).await.unwrap();
    store.delete_address(c.id, a2.id, now()).await.unwrap();
    assert!(list(&*store, c.id).await.is_empty());
}

pub async fn deleting_another_address_keeps_the_default<S: Ports>(store: Arc<S>) {
    let c = create_named(&*store, "Ann").await;
    let a1 = add(&*store, c.id, address("One")).await;
    let a2 = add(&*store, c.id, with_default(address("Two"), Some(true))).await;
    let a3 = add(&*store, c.id, address("Three")).await;
    store.delete_address(c.id, a1.id, now()).await.unwrap();
    let all = list(&*store, c.id).await;
    assert_eq!(ids(&all), [a2.id, a3.id]);
    assert_eq!(the_default(&all), a2.id);
    expect_not_found(store.get_address(c.id, a1.id).await, "deleted address");
}

pub async fn address_round_trips_every_field<S: Ports>(store: Arc<S>) {
    let c = create_named(&*store, "Ann").await;
    let t = at(now(), 10);
    let mut changes = address("Home");
    changes.set_text("address2", "").unwrap();
    changes.set_text("full_name", "王小明").unwrap();
    let created = store
        .create_address(c.id, &changes, t)
        .await
        .expect("create");
    let expected = Address {
        id: created.id,
        customer_id: c.id,
        full_name: "王小明".into(),
        mobile: "+8613800000000".into(),
        place_code: "330106".into(),
        province: "Zhejiang".into(),
        city: "Hangzhou".into(),
        district: "Xihu".into(),
        address1: "Home Wensan Road 1".into(),
        address2: "".into(),
        zip: "310012".into(),
        is_default: true,
        created_at: t,
        updated_at: t,
    };
    assert_eq!(created, expected);
    assert_eq!(store.get_address(c.id, created.id).await.unwrap(), expected);
    assert_eq!(list(&*store, c.id).await, std::slice::from_ref(&expected));
    assert_eq!(get(&*store, c.id).await.addresses, [expected]);
}

pub async fn update_address_writes_only_given_values<S: Ports>(store: Arc<S>) {
    let c = create_named(&*store, "Ann").await;
    let t0 = now();
    let created = store
        .create_address(c.id, &address("Home"), t0)
        .await
        .unwrap();
    let t1 = at(t0, 30);
    let mut changes = AddressChanges::default();
    changes.set_text("city", "Ningbo").unwrap();
    changes.set_text("district", "").unwrap();
    let updated = store
        .update_address(c.id, created.id, &changes, t1)
        .await
        .expect("update");
    let expected = Address {
        city: "Ningbo".into(),
        district: "".into(),
        updated_at: t1,
        ..created.clone()
    };
    assert_eq!(updated, expected);
    assert_eq!(updated.created_at, t0);
    assert_eq!(store.get_address(c.id, created.id).await.unwrap(), expected);
}

pub async fn addresses_listed_default_first_then_by_id<S: Ports>(store: Arc<S>) {
    let c = create_named(&*store, "Ann").await;
    let a1 = add(&*store, c.id, address("One")).await;
    let a2 = add(&*store, c.id, address("Two")).await;
    let a3 = add(&*store, c.id, with_default(address("Three"), Some(true))).await;
    let a4 = add(&*store, c.id, address("Four")).await;
    let all = list(&*store, c.id).await;
    assert_eq!(ids(&all), [a3.id, a1.id, a2.id, a4.id]);
    assert_eq!(
        get(&*store, c.id).await.addresses,
        all,
        "customer's addresses"
    );
    store
        .update_address(
            c.id,
            a2.id,
            &with_default(AddressChanges::default(), Some(true)),
            now(),
        )
        .await
        .unwrap();
    let all = list(&*store, c.id).await;
    assert_eq!(ids(&all), [a2.id, a1.id, a3.id, a4.id]);
    assert_eq!(get(&*store, c.id).await.addresses, all);
}

pub async fn address_of_another_customer_is_not_found<S: Ports>(store: Arc<S>) {
    let ann = create_named(&*store, "Ann").await;
    let bob = create_named(&*store, "Bob").await;
    add(&*store, ann.id, address("Ann's")).await;
    let bobs = add(&*store, bob.id, address("Bob's")).await;
    let mut changes = with_default(AddressChanges::default(), Some(true));
    changes.set_text("city", "Stolen").unwrap();
    expect_not_found(store.get_address(ann.id, bobs.id).await, "get");
    expect_not_found(
        store.update_address(ann.id, bobs.id, &changes, now()).await,
        "update",
    );
    expect_not_found(store.delete_address(ann.id, bobs.id, now()).await, "delete");
    assert_eq!(
        store.get_address(bob.id, bobs.id).await.unwrap(),
        bobs,
        "untouched"
    );
    assert_eq!(ids(&list(&*store, ann.id).await).len(), 1);
    assert!(!list(&*store, ann.id).await.iter().any(|a| a.id == bobs.id));
}

pub async fn missing_address_is_not_found<S: Ports>(store: Arc<S>) {
    let c = create_named(&*store, "Ann").await;
    let kept = add(&*store, c.id, address("Home")).await;
    let gone = add(&*store, c.id, address("Gone")).await;
    store.delete_address(c.id, gone.id, now()).await.unwrap();
    for missing in [missing_address(), gone.id] {
        expect_not_found(store.get_address(c.id, missing).await, "get");
        expect_not_found(
            store
                .update_address(c.id, missing, &address("X"), now())
                .await,
            "update",
        );
        expect_not_found(store.delete_address(c.id, missing, now()).await, "delete");
    }
    assert_eq!(list(&*store, c.id).await, [kept]);
}

pub async fn missing_customer_is_not_found<S: Ports>(store: Arc<S>) {
    let gone = create_named(&*store, "Gone").await;
    let gone_address = add(&*store, gone.id, address("Home")).await;
    store.delete(gone.id, now()).await.unwrap();
    for (customer, address_id) in [
        (missing_customer(), missing_address()),
        (gone.id, gone_address.id),
    ] {
        expect_not_found(store.list_addresses(customer).await, "list");
        expect_not_found(store.get_address(customer, address_id).await, "get");
        expect_not_found(
            store
                .create_address(customer, &address("Home"), now())
                .await,
            "create",
        );
        expect_not_found(
            store
                .update_address(customer, address_id, &address("X"), now())
                .await,
            "update",
        );
        expect_not_found(
            store.delete_address(customer, address_id, now()).await,
            "delete",
        );
    }
}

pub async fn address_writes_touch_customer_updated_at<S: Ports>(store: Arc<S>) {
    let t0 = now();
    let c = create_at(&*store, named("Ann"), t0).await;
    let stamps = |c: &crm_domain::customer::Customer| (c.created_at, c.updated_at);
    let t1 = at(t0, 10);
    let home = store
        .create_address(c.id, &address("Home"), t1)
        .await
        .unwrap();
    assert_eq!(stamps(&get(&*store, c.id).await), (t0, t1), "after create");
    let t2 = at(t0, 20);
    let mut changes = AddressChanges::default();
    changes.set_text("zip", "000000").unwrap();
    store
        .update_address(c.id, home.id, &changes, t2)
        .await
        .unwrap();
    assert_eq!(stamps(&get(&*store, c.id).await), (t0, t2), "after update");
    let t3 = at(t0, 30);
    store.delete_address(c.id, home.id, t3).await.unwrap();
    assert_eq!(stamps(&get(&*store, c.id).await), (t0, t3), "after delete");
}

pub async fn concurrent_address_writes_leave_one_default<S: Ports>(store: Arc<S>) {
    for round in 0..3 {
        let c = create_named(&*store, &format!("Customer {round}")).await;
        // Racing first addresses: one of them becomes the default.
        let mut tasks = JoinSet::new();
        for i in 0..4 {
            let store = Arc::clone(&store);
            tasks.spawn(async move {
                store
                    .create_address(c.id, &address(&format!("First {i}")), now())
                    .await
            });
        }
        while let Some(result) = tasks.join_next().await {
            result.expect("task").expect("create address");
        }
        let all = list(&*store, c.id).await;
        assert_eq!(all.len(), 4);
        the_default(&all);
        // Racing moves of the default: exactly one default remains.
        let mut tasks = JoinSet::new();
        for (i, a) in all.iter().enumerate() {
            let (store, id) = (Arc::clone(&store), a.id);
            tasks.spawn(async move {
                if i % 2 == 0 {
                    store
                        .update_address(
                            c.id,
                            id,
                            &with_default(AddressChanges::default(), Some(true)),
                            now(),
                        )
                        .await
                        .map(|_| ())
                } else {
                    store
                        .create_address(
                            c.id,
                            &with_default(address(&format!("New {i}")), Some(true)),
                            now(),
                        )
                        .await
                        .map(|_| ())
                }
            });
        }
        while let Some(result) = tasks.join_next().await {
            result.expect("task").expect("address write");
        }
        let all = list(&*store, c.id).await;
        assert_eq!(all.len(), 6);
        the_default(&all);
    }
}
