//! `ClientStore` and `TokenStore`.

use std::num::NonZeroUsize;
use std::sync::Arc;

use crm_domain::auth::{digest, Client, ScopeSet, TokenRecord};
use crm_domain::RepoError;
use time::{Duration, OffsetDateTime};

use crate::support::{at, expect_not_found, now};
use crate::Ports;

fn client(id: &str, scopes: &str, created_at: OffsetDateTime) -> Client {
    Client {
        id: id.to_owned(),
        name: format!("{id} app"),
        secret_hash: digest(&format!("secret of {id}")),
        scopes: ScopeSet::parse(scopes).expect("valid scopes"),
        created_at,
    }
}

fn token(value: &str, client_id: &str, issued_at: OffsetDateTime, ttl: Duration) -> TokenRecord {
    TokenRecord {
        token_hash: digest(value),
        client_id: client_id.to_owned(),
        scopes: ScopeSet::parse("crm:read").expect("valid scopes"),
        issued_at,
        expires_at: issued_at + ttl,
    }
}

async fn insert_client<S: Ports>(store: &S, client: &Client) {
    store
        .insert_client(client)
        .await
        .unwrap_or_else(|e| panic!("insert client {client:?} failed: {e}"));
}

/// A cap no check reaches unless it means to.
const NO_CAP: NonZeroUsize = match NonZeroUsize::new(1000) {
    Some(n) => n,
    None => unreachable!(),
};

async fn insert_token<S: Ports>(store: &S, token: &TokenRecord) {
    store
        .insert_token(token, NO_CAP)
        .await
        .unwrap_or_else(|e| panic!("insert token {token:?} failed: {e}"));
}

async fn find_token<S: Ports>(store: &S, value: &str) -> Option<TokenRecord> {
    store.find_token(&digest(value)).await.expect("find token")
}

pub async fn client_round_trips<S: Ports>(store: Arc<S>) {
    let t = now();
    for (id, scopes) in [
        ("all-scopes", "read write crm:read crm:write"),
        ("crm-only", "crm:write crm:read"),
        ("read-only", "read"),
    ] {
        let c = client(id, scopes, t);
        insert_client(&*store, &c).await;
        assert_eq!(store.find_client(id).await.unwrap(), Some(c));
    }
}

pub async fn find_missing_client_is_none<S: Ports>(store: Arc<S>) {
    insert_client(&*store, &client("present", "read", now())).await;
    assert_eq!(store.find_client("absent").await.unwrap(), None);
    assert_eq!(
        store.find_client("PRESENT").await.unwrap(),
        None,
        "ids are exact"
    );
    assert_eq!(store.find_client("").await.unwrap(), None);
}

pub async fn clients_listed_oldest_first<S: Ports>(store: Arc<S>) {
    assert!(store.list_clients().await.unwrap().is_empty());
    let t = now();
    let newest = client("aaa-newest", "read", at(t, 20));
    let oldest = client("zzz-oldest", "write", at(t, 0));
    let middle = client("mmm-middle", "crm:read", at(t, 10));
    for c in [&newest, &oldest, &middle] {
        insert_client(&*store, c).await;
    }
    assert_eq!(
        store.list_clients().await.unwrap(),
        [oldest, middle, newest]
    );
}

pub async fn duplicate_client_id_is_refused<S: Ports>(store: Arc<S>) {
    let original = client("shop", "read", now());
    insert_client(&*store, &original).await;
    let impostor = Client {
        name: "impostor".into(),
        secret_hash: digest("other secret"),
        scopes: ScopeSet::all(),
        ..original.clone()
    };
    match store.insert_client(&impostor).await {
        Err(RepoError::Duplicate { field: "client_id" }) => {}
        other => panic!("expected Duplicate {{ client_id }}, got {other:?}"),
    }
    assert_eq!(
        store.find_client("shop").await.unwrap(),
        Some(original.clone())
    );
    assert_eq!(store.list_clients().await.unwrap(), [original]);
}

pub async fn delete_client_removes_it<S: Ports>(store: Arc<S>) {
    let t = now();
    let doomed = client("doomed", "read", t);
    let kept = client("kept", "read", at(t, 1));
    insert_client(&*store, &doomed).await;
    insert_client(&*store, &kept).await;
    store.delete_client("doomed").await.expect("delete");
    assert_eq!(store.find_client("doomed").await.unwrap(), None);
    assert_eq!(store.list_clients().await.unwrap(), [kept]);
    // The id is free again.
    insert_client(&*store, &doomed).await;
}

pub async fn delete_missing_client_is_not_found<S: Ports>(store: Arc<S>) {
    expect_not_found(store.delete_client("never").await, "never registered");
    insert_client(&*store, &client("once", "read", now())).await;
    store.delete_client("once").await.unwrap();
    expect_not_found(store.delete_client("once").await, "deleted twice");
}

pub async fn delete_client_deletes_its_tokens<S: Ports>(store: Arc<S>) {
    let t = now();
    insert_client(&*store, &client("doomed", "read", t)).await;
    insert_client(&*store, &client("kept", "read", t)).await;
    let ttl = Duration::hours(10);
    for value in ["doomed-1", "doomed-2"] {
        insert_token(&*store, &token(value, "doomed", t, ttl)).await;
    }
    insert_token(&*store, &token("kept-1", "kept", t, ttl)).await;
    store.delete_client("doomed").await.expect("delete");
    assert_eq!(find_token(&*store, "doomed-1").await, None);
    assert_eq!(find_token(&*store, "doomed-2").await, None);
    assert!(
        find_token(&*store, "kept-1").await.is_some(),
        "other clients' tokens stay"
    );
    assert!(
        !store
            .revoke_token(&digest("doomed-1"), "doomed")
            .await
            .unwrap(),
        "nothing left to revoke"
    );
}

pub async fn token_round_trips_expired_included<S: Ports>(store: Arc<S>) {
    let t = now();
    insert_client(&*store, &client("app", "read write crm:read crm:write", t)).await;
    let live = TokenRecord {
        scopes: ScopeSet::parse("crm:read crm:write read").unwrap(),
        ..token("live", "app", t, Duration::hours(10))
    };
    let expired = TokenRecord {
        scopes: ScopeSet::parse("write").unwrap(),
        ..token("expired", "app", at(t, -7200), Duration::hours(1))
    };
    insert_token(&*store, &live).await;
    insert_token(&*store, &expired).await;
    assert_eq!(find_token(&*store, "live").await, Some(live));
    assert_eq!(
        find_token(&*store, "expired").await,
        Some(expired),
        "expired tokens are found too; the caller decides"
    );
}

pub async fn find_missing_token_is_none<S: Ports>(store: Arc<S>) {
    insert_client(&*store, &client("app", "read", now())).await;
    insert_token(&*store, &token("present", "app", now(), Duration::hours(1))).await;
    assert_eq!(find_token(&*store, "absent").await, None);
    assert_eq!(store.find_token("").await.unwrap(), None);
    assert_eq!(
        store
            .find_token(&digest("present").to_uppercase())
            .await
            .unwrap(),
        None,
        "digests are exact"
    );
}

pub async fn revoke_only_by_the_owning_client<S: Ports>(store: Arc<S>) {
    let t = now();
    insert_client(&*store, &client("owner", "read", t)).await;
    insert_client(&*store, &client("other", "read", t)).await;
    let record = token("tok", "owner", t, Duration::hours(1));
    insert_token(&*store, &record).await;
    assert!(
        !store
            .revoke_token(&record.token_hash, "other")
            .await
            .unwrap(),
        "another client cannot revoke it"
    );
    assert_eq!(find_token(&*store, "tok").await, Some(record.clone()));
    assert!(
        !store
            .revoke_token(&digest("unknown"), "owner")
            .await
            .unwrap(),
        "an unknown token revokes nothing"
    );
    assert!(
        store
            .revoke_token(&record.token_hash, "owner")
            .await
            .unwrap(),
        "the owner revokes it"
    );
    assert_eq!(find_token(&*store, "tok").await, None);
    assert!(
        !store
            .revoke_token(&record.token_hash, "owner")
            .await
            .unwrap(),
        "revoking twice deletes nothing"
    );
}

pub async fn delete_expired_tokens_deletes_only_expired<S: Ports>(store: Arc<S>) {
    let t = now();
    insert_client(&*store, &client("a", "read", t)).await;
    insert_client(&*store, &client("b", "read", t)).await;
    let expiring = |value: &str, client_id: &str, offset: Duration| TokenRecord {
        expires_at: t + offset,
        ..token(value, client_id, at(t, -3600), Duration::ZERO)
    };
    let micro = Duration::microseconds(1);
    for record in [
        expiring("long-gone", "a", Duration::hours(-1)),
        expiring("just-gone", "b", -micro),
        expiring("at-now", "a", Duration::ZERO),
        expiring("just-alive", "b", micro),
        expiring("alive", "a", Duration::hours(1)),
    ] {
        insert_token(&*store, &record).await;
    }
    assert_eq!(
        store.delete_expired_tokens(t).await.expect("purge"),
        3,
        "expired at or before now"
    );
    for gone in ["long-gone", "just-gone", "at-now"] {
        assert_eq!(find_token(&*store, gone).await, None, "{gone}");
    }
    for alive in ["just-alive", "alive"] {
        assert!(find_token(&*store, alive).await.is_some(), "{alive}");
    }
    assert_eq!(
        store.delete_expired_tokens(t).await.unwrap(),
        0,
        "nothing left"
    );
    assert_eq!(
        store.delete_expired_tokens(at(t, 7200)).await.unwrap(),
        2,
        "later, the rest"
    );
}

pub async fn insert_token_keeps_only_the_newest_per_client<S: Ports>(store: Arc<S>) {
    let t = now();
    insert_client(&*store, &client("busy", "read", t)).await;
    insert_client(&*store, &client("quiet", "read", t)).await;
    insert_token(&*store, &token("quiet-1", "quiet", t, Duration::hours(1))).await;
    let cap = NonZeroUsize::new(3).unwrap();
    let mut deleted = Vec::new();
    for i in 0..5 {
        let record = token(&format!("busy-{i}"), "busy", at(t, i), Duration::hours(1));
        deleted.push(store.insert_token(&record, cap).await.expect("insert"));
    }
    assert_eq!(
        deleted,
        [0, 0, 0, 1, 1],
        "one revoked per issue past the cap"
    );
    for gone in ["busy-0", "busy-1"] {
        assert_eq!(
            find_token(&*store, gone).await,
            None,
            "{gone} is the oldest"
        );
    }
    for kept in ["busy-2", "busy-3", "busy-4", "quiet-1"] {
        assert!(find_token(&*store, kept).await.is_some(), "{kept}");
    }
    // A smaller cap applies at once; another client's tokens are not counted.
    let one = NonZeroUsize::new(1).unwrap();
    let record = token("busy-5", "busy", at(t, 5), Duration::hours(1));
    assert_eq!(store.insert_token(&record, one).await.unwrap(), 3);
    assert!(find_token(&*store, "busy-5").await.is_some());
    assert!(find_token(&*store, "quiet-1").await.is_some());
}

pub async fn concurrent_token_issues_respect_the_cap<S: Ports>(store: Arc<S>) {
    let t = now();
    insert_client(&*store, &client("racer", "read", t)).await;
    let cap = NonZeroUsize::new(2).unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let record = token(&format!("race-{i}"), "racer", at(t, i), Duration::hours(1));
                store.insert_token(&record, cap).await
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task").expect("insert");
    }
    let mut live = 0;
    for i in 0..8 {
        if find_token(&*store, &format!("race-{i}")).await.is_some() {
            live += 1;
        }
    }
    assert_eq!(live, 2, "exactly the cap survives the race");
}

pub async fn insert_token_for_missing_client_is_not_found<S: Ports>(store: Arc<S>) {
    let record = token("orphan", "nobody", now(), Duration::hours(1));
    expect_not_found(store.insert_token(&record, NO_CAP).await, "no such client");
    assert_eq!(find_token(&*store, "orphan").await, None);
}

pub async fn text_the_store_cannot_hold_is_not_a_fault<S: Ports>(store: Arc<S>) {
    insert_client(&*store, &client("present", "read", now())).await;
    for id in ["a\0b", "\0"] {
        match store.find_client(id).await {
            Ok(None) | Err(RepoError::Rejected(_)) => {}
            other => panic!("find_client({id:?}) gave {other:?}"),
        }
    }
    assert!(
        store.find_client("present").await.unwrap().is_some(),
        "the store still answers"
    );
}
