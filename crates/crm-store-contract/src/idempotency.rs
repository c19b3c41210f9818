//! `IdempotencyStore`: claims (new, in flight, replayed, mismatched, taken
//! over, expired, per client, raced) and units of work (committed with
//! their answer, rolled back without one, lost to a takeover, abandoned).

use std::sync::Arc;
use std::time::Duration;

use crm_domain::auth::{digest, Client, ScopeSet};
use crm_domain::idempotency::{
    Claim, ClaimToken, Fingerprint, IdempotencyKey, StoredResponse, UnitOutcome,
};
use tokio::task::JoinSet;

use crate::support::{at, create_named, customer_count, named, now};
use crate::Ports;

const TTL: Duration = Duration::from_secs(86_400);
const STALE: Duration = Duration::from_secs(60);

async fn new_client<S: Ports>(store: &S, id: &str) {
    store
        .insert_client(&Client {
            id: id.to_owned(),
            name: format!("{id} app"),
            secret_hash: digest(&format!("secret of {id}")),
            scopes: ScopeSet::parse("crm:write").expect("valid scopes"),
            created_at: now(),
        })
        .await
        .expect("insert client");
}

fn key(raw: &str) -> IdempotencyKey {
    IdempotencyKey::parse(raw.as_bytes()).expect("valid key")
}

fn print(body: &str) -> Fingerprint {
    Fingerprint::of("POST", "/api/crm/customer", body.as_bytes())
}

fn answer(status: u16, body: &str) -> StoredResponse {
    StoredResponse {
        status,
        content_type: Some("application/json".to_owned()),
        body: body.as_bytes().to_vec(),
    }
}

async fn claim_at<S: Ports>(
    store: &S,
    client: &str,
    k: &str,
    body: &str,
    at: time::OffsetDateTime,
) -> Claim {
    store
        .claim_key(client, &key(k), &print(body), at, TTL, STALE)
        .await
        .expect("claim")
}

fn acquired(claim: Claim) -> ClaimToken {
    match claim {
        Claim::Acquired(token) => token,
        other => panic!("the key should have been acquired: {other:?}"),
    }
}

pub async fn a_key_is_acquired_then_in_flight_then_replayed<S: Ports>(store: Arc<S>) {
    new_client(&*store, "app").await;
    let t0 = now();
    let token = acquired(claim_at(&*store, "app", "k1", "{}", t0).await);
    assert_eq!(token.client_id, "app");
    assert_eq!(token.key.as_str(), "k1");
    assert_eq!(
        claim_at(&*store, "app", "k1", "{}", at(t0, 1)).await,
        Claim::InFlight
    );
    let writer = store.clone();
    let outcome = store
        .run_claimed(
            &token,
            Box::pin(async move {
                create_named(&*writer, "Ann").await;
                Some(answer(201, "{\"id\":1}"))
            }),
        )
        .await
        .unwrap();
    assert_eq!(outcome, UnitOutcome::Committed);
    assert_eq!(customer_count(&*store).await, 1);
    assert_eq!(
        claim_at(&*store, "app", "k1", "{}", at(t0, 2)).await,
        Claim::Replay(answer(201, "{\"id\":1}"))
    );
    // A body-less answer replays as such.
    let token = acquired(claim_at(&*store, "app", "k2", "{}", t0).await);
    let empty = StoredResponse {
        status: 204,
        content_type: None,
        body: Vec::new(),
    };
    let kept = empty.clone();
    store
        .run_claimed(&token, Box::pin(async move { Some(kept) }))
        .await
        .unwrap();
    assert_eq!(
        claim_at(&*store, "app", "k2", "{}", t0).await,
        Claim::Replay(empty)
    );
}

pub async fn another_request_with_the_key_is_a_mismatch<S: Ports>(store: Arc<S>) {
    new_client(&*store, "app").await;
    let t0 = now();
    let token = acquired(claim_at(&*store, "app", "k", "{\"a\":1}", t0).await);
    assert_eq!(
        claim_at(&*store, "app", "k", "{\"a\": 1}", t0).await,
        Claim::Mismatch,
        "in flight"
    );
    store
        .run_claimed(&token, Box::pin(async { Some(answer(400, "{}")) }))
        .await
        .unwrap();
    assert_eq!(
        claim_at(&*store, "app", "k", "{\"a\": 1}", t0).await,
        Claim::Mismatch,
        "stored"
    );
}

pub async fn keys_belong_to_their_client<S: Ports>(store: Arc<S>) {
    new_client(&*store, "one").await;
    new_client(&*store, "two").await;
    let t0 = now();
    acquired(claim_at(&*store, "one", "shared", "{}", t0).await);
    acquired(claim_at(&*store, "two", "shared", "{\"other\":1}", t0).await);
    assert_eq!(
        claim_at(&*store, "one", "shared", "{}", t0).await,
        Claim::InFlight
    );
}

pub async fn a_unit_without_an_answer_writes_nothing_and_frees_the_key<S: Ports>(store: Arc<S>) {
    new_client(&*store, "app").await;
    let t0 = now();
    let before = create_named(&*store, "Before").await;
    let token = acquired(claim_at(&*store, "app", "k", "{}", t0).await);
    let writer = store.clone();
    let outcome = store
        .run_claimed(
            &token,
            Box::pin(async move {
                let ann = create_named(&*writer, "Ann").await;
                writer
                    .update(before.id, &named("Renamed"), now())
                    .await
                    .unwrap();
                assert_eq!(
                    writer.get(ann.id).await.unwrap().full_name,
                    "Ann",
                    "the unit reads its own writes"
                );
                None
            }),
        )
        .await
        .unwrap();
    assert_eq!(outcome, UnitOutcome::RolledBack);
    assert_eq!(customer_count(&*store).await, 1, "the create was undone");
    assert_eq!(store.get(before.id).await.unwrap().full_name, "Before");
    // The key is free again.
    acquired(claim_at(&*store, "app", "k", "{\"new\":1}", at(t0, 1)).await);
    // And the store works as before.
    create_named(&*store, "After").await;
    assert_eq!(customer_count(&*store).await, 2);
}

pub async fn a_refused_write_inside_a_unit_leaves_the_others<S: Ports>(store: Arc<S>) {
    use crm_domain::customer::{CustomerChanges, Mobile};
    new_client(&*store, "app").await;
    let token = acquired(claim_at(&*store, "app", "k", "{}", now()).await);
    let writer = store.clone();
    let outcome = store
        .run_claimed(
            &token,
            Box::pin(async move {
                let with_mobile = CustomerChanges {
                    mobile: Some(Mobile::parse("13800000001").unwrap()),
                    ..named("Ann")
                };
                writer.create(&with_mobile, now()).await.unwrap();
                assert!(writer.create(&with_mobile, now()).await.is_err());
                create_named(&*writer, "Bob").await;
                Some(answer(201, "{}"))
            }),
        )
        .await
        .unwrap();
    assert_eq!(outcome, UnitOutcome::Committed);
    assert_eq!(customer_count(&*store).await, 2);
}

pub async fn a_stale_claim_is_taken_over_and_its_unit_cannot_commit<S: Ports>(store: Arc<S>) {
    new_client(&*store, "app").await;
    let t0 = now();
    let first = acquired(claim_at(&*store, "app", "k", "{}", t0).await);
    assert_eq!(
        claim_at(&*store, "app", "k", "{}", at(t0, 59)).await,
        Claim::InFlight
    );
    let second = acquired(claim_at(&*store, "app", "k", "{}", at(t0, 61)).await);
    assert_ne!(first.token, second.token);
    let writer = store.clone();
    let outcome = store
        .run_claimed(
            &first,
            Box::pin(async move {
                create_named(&*writer, "Late").await;
                Some(answer(201, "{}"))
            }),
        )
        .await
        .unwrap();
    assert_eq!(outcome, UnitOutcome::ClaimLost);
    assert_eq!(
        customer_count(&*store).await,
        0,
        "the late unit wrote nothing"
    );
    assert_eq!(
        store
            .run_claimed(&second, Box::pin(async { Some(answer(201, "{}")) }))
            .await
            .unwrap(),
        UnitOutcome::Committed
    );
}

pub async fn an_expired_key_starts_over<S: Ports>(store: Arc<S>) {
    new_client(&*store, "app").await;
    let t0 = now();
    let token = acquired(claim_at(&*store, "app", "k", "{}", t0).await);
    store
        .run_claimed(&token, Box::pin(async { Some(answer(201, "{}")) }))
        .await
        .unwrap();
    let later = t0 + time::Duration::seconds(86_401);
    acquired(claim_at(&*store, "app", "k", "{\"other\":1}", later).await);
    // Purging forgets keys whose lifetime is over.
    let token = acquired(claim_at(&*store, "app", "old", "{}", t0).await);
    store
        .run_claimed(&token, Box::pin(async { Some(answer(200, "{}")) }))
        .await
        .unwrap();
    assert_eq!(store.purge_idempotency_keys(later).await.unwrap(), 1);
    acquired(claim_at(&*store, "app", "old", "{\"other\":1}", t0).await);
}

pub async fn racing_claims_of_a_new_key_acquire_it_once<S: Ports>(store: Arc<S>) {
    new_client(&*store, "app").await;
    let t0 = now();
    let mut claims = JoinSet::new();
    for _ in 0..8 {
        let store = store.clone();
        claims.spawn(async move { claim_at(&*store, "app", "raced", "{}", t0).await });
    }
    let mut acquired = 0;
    while let Some(claim) = claims.join_next().await {
        match claim.unwrap() {
            Claim::Acquired(_) => acquired += 1,
            Claim::InFlight => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(acquired, 1);
}

pub async fn an_abandoned_unit_commits_nothing<S: Ports>(store: Arc<S>) {
    new_client(&*store, "app").await;
    let token = acquired(claim_at(&*store, "app", "k", "{}", now()).await);
    let writer = store.clone();
    let unit = store.run_claimed(
        &token,
        Box::pin(async move {
            create_named(&*writer, "Abandoned").await;
            std::future::pending::<()>().await;
            Some(answer(201, "{}"))
        }),
    );
    assert!(
        tokio::time::timeout(Duration::from_millis(500), unit)
            .await
            .is_err(),
        "the unit never ends by itself"
    );
    assert_eq!(customer_count(&*store).await, 0);
    create_named(&*store, "After").await;
    assert_eq!(customer_count(&*store).await, 1);
    assert_eq!(
        claim_at(&*store, "app", "k", "{}", now()).await,
        Claim::InFlight,
        "the claim stays until it is stale"
    );
}
