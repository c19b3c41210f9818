//! The contract suite against PostgreSQL (`CRM_TEST_DATABASE_URL`), each test
//! on a fresh database. Always compiled; without that variable at run time
//! each test says it was skipped and returns.

use std::sync::Arc;
use std::time::Duration;

use crm_domain::customer::HealthCheck;
use crm_domain::RepoError;
use crm_postgres::{PgConfig, PgStore};

crm_store_contract::contract_tests!({
    if !crm_postgres::testing::server_configured() {
        return;
    }
    let db = crm_postgres::testing::TestDatabase::create();
    let store = PgStore::new(&PgConfig::new(db.url())).expect("store");
    (Arc::new(store), db)
});

/// The other half of the health contract: no `Ok` without an answer. Needs
/// no server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_fails_when_the_server_is_unreachable() {
    let config = PgConfig {
        connect_timeout: Duration::from_millis(500),
        ..PgConfig::new("postgres://postgres@127.0.0.1:1/none")
    };
    let store = PgStore::new(&config).expect("the pool is built lazily");
    match store.ping().await {
        Err(RepoError::Unavailable(_)) => {}
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

/// On PostgreSQL a customer, a list page (count and items) and the items of
/// a list of ids are each read with one statement, without a transaction
/// around it, and each statement is prepared once per connection: Diesel's
/// instrumentation on the only pooled connection sees one query per read and
/// one statement cached per kind of read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_are_one_prepared_statement_each() {
    use std::sync::Mutex;

    use crm_domain::customer::{CustomerChanges, CustomerFilter, CustomerRepository, FullName};
    use crm_domain::page::PageRequest;
    use diesel::connection::{Connection, InstrumentationEvent};

    if !crm_postgres::testing::server_configured() {
        return;
    }
    let db = crm_postgres::testing::TestDatabase::create();
    let store = PgStore::new(&PgConfig {
        pool_size: 1,
        ..PgConfig::new(db.url())
    })
    .expect("store");
    let now = time::OffsetDateTime::now_utc();
    let mut ids = Vec::new();
    for name in ["Ada", "Grace", "Edsger"] {
        let changes = CustomerChanges {
            full_name: Some(FullName::parse(name).expect("name")),
            ..Default::default()
        };
        ids.push(store.create(&changes, now).await.expect("create").id);
    }

    #[derive(Default)]
    struct Seen {
        queries: usize,
        cached: Vec<String>,
    }
    let seen = Arc::new(Mutex::new(Seen::default()));
    let sink = seen.clone();
    store
        .run(move |conn| {
            conn.set_instrumentation(move |event: InstrumentationEvent<'_>| {
                let mut seen = sink.lock().unwrap();
                match event {
                    InstrumentationEvent::StartQuery { .. } => seen.queries += 1,
                    InstrumentationEvent::CacheQuery { sql, .. } => {
                        seen.cached.push(sql.to_owned())
                    }
                    _ => {}
                }
            });
            Ok(())
        })
        .await
        .expect("instrument the pooled connection");
    let take = || std::mem::take(&mut *seen.lock().unwrap());

    for id in &ids {
        let customer = store.get(*id).await.expect("get");
        assert_eq!(customer.id, *id);
    }
    let reads = take();
    assert_eq!(reads.queries, ids.len(), "one statement per customer read");
    assert_eq!(reads.cached.len(), 1, "prepared once: {:?}", reads.cached);

    let page = PageRequest::new(1, None).expect("page");
    let filters = [
        CustomerFilter::default(),
        CustomerFilter {
            search: Some("a".to_owned()),
            ..Default::default()
        },
    ];
    for (filter, expected) in filters.iter().zip([3, 2]) {
        for _ in 0..3 {
            let listed = store.list(filter, page).await.expect("list");
            assert_eq!(listed.items.len(), expected, "Ada and Grace hold an a");
        }
        let reads = take();
        assert_eq!(reads.queries, 3, "one statement per page of {filter:?}");
        assert_eq!(reads.cached.len(), 1, "prepared once: {:?}", reads.cached);
    }

    // The hot statements are planned once: after a few executions
    // PostgreSQL runs their generic plan instead of planning each time
    // (with LIMIT and OFFSET as parameters it would not, see documents.rs).
    for _ in 0..8 {
        store.get(ids[0]).await.expect("get");
        store.list(&filters[0], page).await.expect("list");
    }
    #[derive(diesel::QueryableByName, Debug)]
    struct Plans {
        #[diesel(sql_type = diesel::sql_types::Text)]
        statement: String,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        generic_plans: i64,
    }
    let plans: Vec<Plans> = store
        .run(|conn| {
            use diesel::RunQueryDsl;
            Ok(diesel::sql_query(
                "SELECT statement, generic_plans FROM pg_prepared_statements \
                 WHERE statement LIKE '%json_build_object%'",
            )
            .load(conn)?)
        })
        .await
        .expect("the connection's prepared statements");
    // A table this small gets a generic plan either way; at a million
    // customers a first page with `LIMIT $n OFFSET $m` never does (the
    // planner assumes both are a tenth of the table), so the first page's
    // statement must carry its limit (a common page size) as text and no
    // offset.
    let first_page = plans
        .iter()
        .find(|p| p.statement.contains("customer_count_shards"))
        .expect("the unfiltered page's statement");
    assert!(
        first_page.statement.contains("LIMIT 10") && !first_page.statement.contains("OFFSET"),
        "a first page with a parameterised limit or offset: {}",
        first_page.statement
    );
    for needle in ["'c', c,", "customer_count_shards"] {
        let plan = plans
            .iter()
            .find(|p| p.statement.contains(needle))
            .unwrap_or_else(|| panic!("no prepared statement holds {needle}: {plans:?}"));
        assert!(
            plan.generic_plans > 0,
            "planned on every execution: {}",
            plan.statement
        );
    }

    // A page past the end still answers its count, whichever way it is
    // counted (counters; the page query's window, which has no row then).
    let past = PageRequest::new(9, Some(2)).expect("page");
    let last = store.list(&filters[0], past).await.expect("list");
    assert_eq!((last.count, last.items.len()), (3, 0));
    let last = store.list(&filters[1], past).await.expect("list");
    assert_eq!(
        (last.count, last.items.len()),
        (2, 0),
        "Ada and Grace hold an a"
    );
}

/// `migrate` analyzes the tables that hold rows and leaves empty ones
/// unanalyzed, so that on a new database the plans for key lookups use the
/// index: 300 creates with tags (each tag's foreign-key check looks its
/// customer up) do not scan `customers` once per lookup, as they did when
/// `migrate` analyzed the empty tables (every lookup was then a scan).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_database_looks_customers_up_by_index_from_the_first_write() {
    use crm_domain::customer::{CustomerChanges, CustomerRepository, FullName, TagSet};
    use diesel::prelude::*;
    use diesel::sql_types::{BigInt, Bool};

    #[derive(QueryableByName)]
    struct Scans {
        #[diesel(sql_type = BigInt)]
        seq: i64,
        #[diesel(sql_type = BigInt)]
        idx: i64,
        #[diesel(sql_type = Bool)]
        analyzed: bool,
    }

    if !crm_postgres::testing::server_configured() {
        return;
    }
    let db = crm_postgres::testing::TestDatabase::empty();
    let url = db.url().to_owned();
    assert!(!PgStore::migrate(&url).expect("migrate").is_empty());
    let mut config = PgConfig::new(url.clone());
    config.pool_size = 2;
    let store = PgStore::new(&config).expect("store");
    for n in 0..300 {
        let changes = CustomerChanges {
            full_name: Some(FullName::parse(&format!("Customer {n}")).unwrap()),
            tags: Some(TagSet::parse(&["a", "b"]).unwrap()),
            ..Default::default()
        };
        store
            .create(&changes, crm_domain::time_util::now_micros())
            .await
            .expect("create");
    }
    drop(store);
    // Sessions report their counters as they end or every second: wait for
    // the lookups to show.
    let mut conn = diesel::PgConnection::establish(&url).expect("connection");
    let mut scans = Scans {
        seq: -1,
        idx: 0,
        analyzed: true,
    };
    for _ in 0..100 {
        diesel::sql_query("SELECT pg_stat_clear_snapshot()")
            .execute(&mut conn)
            .expect("fresh statistics");
        scans = diesel::sql_query(
            "SELECT seq_scan AS seq, coalesce(idx_scan, 0) AS idx, \
                    last_analyze IS NOT NULL AS analyzed \
             FROM pg_stat_user_tables WHERE relname = 'customers'",
        )
        .get_result(&mut conn)
        .expect("statistics");
        if scans.idx >= 600 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(scans.idx >= 600, "the lookups were counted: {}", scans.idx);
    assert!(!scans.analyzed, "an empty table is not analyzed by migrate");
    // The first few plans of each connection, made while the table is a
    // page or two, may scan it; none that lasts.
    assert!(
        scans.seq <= 30,
        "{} sequential scans of customers for {} index lookups",
        scans.seq,
        scans.idx
    );
}

/// The change feed's hard case: writers commit out of the order in which
/// their events were inserted. Slow transactions insert an event, then hold
/// it uncommitted while eight writers commit many events of their own (some
/// slow ones roll back instead), and a follower reads the feed after the
/// last id it saw, as a consumer following `next` does. It must see every
/// committed event exactly once, in id order, and nothing rolled back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_follower_never_skips_the_events_of_slow_transactions() {
    use std::collections::BTreeSet;

    use crm_domain::customer::{CustomerChanges, CustomerRepository, FullName};
    use crm_domain::event::{EventData, EventFeed, EventQuery, EventRepository};
    use diesel::connection::SimpleConnection;
    use diesel::Connection;

    const WRITERS: usize = 8;
    const WRITES: usize = 30;
    const SLOW: usize = 3;
    const SLOW_ROUNDS: i64 = 6;

    if !crm_postgres::testing::server_configured() {
        return;
    }
    let db = crm_postgres::testing::TestDatabase::create();
    let store = Arc::new(
        PgStore::new(&PgConfig {
            pool_size: 12,
            ..PgConfig::new(db.url())
        })
        .expect("store"),
    );

    // Slow writers: each round inserts an event (a customer.deleted of a
    // made-up id, so it can be told apart), sleeps with it uncommitted,
    // then commits it (even rounds) or rolls it back (odd rounds).
    let mut slow = Vec::new();
    for s in 0..SLOW {
        let url = db.url().to_owned();
        slow.push(tokio::task::spawn_blocking(move || {
            let mut conn = diesel::pg::PgConnection::establish(&url).expect("connect");
            let mut committed = Vec::new();
            for round in 0..SLOW_ROUNDS {
                let fake = 1_000_000 + (s as i64) * 100 + round;
                let end = if round % 2 == 0 { "COMMIT" } else { "ROLLBACK" };
                conn.batch_execute(&format!(
                    "BEGIN; INSERT INTO crm_events (kind, created_at, customer_id, data) \
                     VALUES (3, now(), {fake}, '{{}}'); SELECT pg_sleep(0.15); {end};"
                ))
                .expect("slow transaction");
                if round % 2 == 0 {
                    committed.push(fake);
                }
            }
            committed
        }));
    }
    let mut writers = tokio::task::JoinSet::new();
    for w in 0..WRITERS {
        let store = store.clone();
        writers.spawn(async move {
            let mut ids = Vec::new();
            for i in 0..WRITES {
                let changes = CustomerChanges {
                    full_name: Some(FullName::parse(&format!("W{w} {i}")).unwrap()),
                    ..Default::default()
                };
                let now = time::OffsetDateTime::now_utc();
                ids.push(store.create(&changes, now).await.expect("create").id.get());
            }
            ids
        });
    }
    let expected = WRITERS * WRITES + SLOW * (SLOW_ROUNDS as usize).div_ceil(2);
    let follower = {
        let store = store.clone();
        tokio::spawn(async move {
            let mut seen = Vec::new();
            let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
            while seen.len() < expected {
                let after = seen.last().map_or(0, |(id, _)| *id);
                let query = EventQuery {
                    after,
                    limit: 7,
                    ..Default::default()
                };
                let EventFeed::Events(page) = store.events(&query).await.expect("read") else {
                    panic!("nothing was purged");
                };
                if page.is_empty() {
                    assert!(tokio::time::Instant::now() < deadline, "the feed stalled");
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                for event in page {
                    let object = match event.data {
                        EventData::Customer(c) => c.id.get(),
                        EventData::CustomerDeleted(id) => id.get(),
                        other => panic!("unexpected event {other:?}"),
                    };
                    seen.push((event.id, object));
                }
            }
            seen
        })
    };
    let mut committed = BTreeSet::new();
    while let Some(ids) = writers.join_next().await {
        committed.extend(ids.unwrap());
    }
    for task in slow {
        committed.extend(task.await.unwrap());
    }
    let seen = follower.await.unwrap();
    assert!(
        seen.windows(2).all(|w| w[0].0 < w[1].0),
        "ids strictly increase along the walk"
    );
    let objects: BTreeSet<i64> = seen.iter().map(|(_, object)| *object).collect();
    assert_eq!(objects.len(), seen.len(), "no event is listed twice");
    assert_eq!(
        objects, committed,
        "every committed event, nothing rolled back"
    );
    // Nothing else turns up later.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rest = store
        .events(&EventQuery {
            after: seen.last().unwrap().0,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(rest, EventFeed::Events(Vec::new()));
}

/// A forward cursor page in id order is read only once the customer writes
/// in progress have ended: a create held uncommitted (inside a unit of
/// work that sleeps) while later creates commit with larger ids is not
/// skipped by a walk that reads meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_id_walk_waits_for_the_creates_in_progress() {
    use crm_domain::auth::{digest, Client, ClientStore, ScopeSet};
    use crm_domain::customer::{
        CursorRequest, CustomerChanges, CustomerFilter, CustomerOrdering, CustomerRepository,
        FullName,
    };
    use crm_domain::idempotency::{
        Claim, Fingerprint, IdempotencyKey, IdempotencyStore, StoredResponse,
    };

    if !crm_postgres::testing::server_configured() {
        return;
    }
    let db = crm_postgres::testing::TestDatabase::create();
    let store = Arc::new(PgStore::new(&PgConfig::new(db.url())).expect("store"));
    let named = |name: &str| CustomerChanges {
        full_name: Some(FullName::parse(name).unwrap()),
        ..Default::default()
    };
    let now = time::OffsetDateTime::now_utc;
    store
        .insert_client(&Client {
            id: "app".into(),
            name: "app".into(),
            secret_hash: digest("secret"),
            scopes: ScopeSet::parse("crm:write").unwrap(),
            created_at: now(),
        })
        .await
        .unwrap();
    let key = IdempotencyKey::parse(b"slow").unwrap();
    let Claim::Acquired(token) = store
        .claim_key(
            "app",
            &key,
            &Fingerprint::of("POST", "/", b""),
            now(),
            Duration::from_secs(60),
            Duration::from_secs(60),
        )
        .await
        .unwrap()
    else {
        panic!("a new key is acquired");
    };
    let (created_tx, created_rx) = tokio::sync::oneshot::channel();
    let writer = store.clone();
    let slow_name = named("Slow");
    // The unit's future is not Send: it runs beside the walk, in this task.
    let slow = store.run_claimed(
        &token,
        Box::pin(async move {
            let slow = writer.create(&slow_name, now()).await.unwrap();
            created_tx.send(slow.id).unwrap();
            tokio::time::sleep(Duration::from_millis(500)).await;
            Some(StoredResponse {
                status: 201,
                content_type: None,
                body: Vec::new(),
            })
        }),
    );
    let walk = async {
        let slow_id = created_rx.await.unwrap();
        let mut fast = Vec::new();
        for name in ["A", "B", "C"] {
            fast.push(store.create(&named(name), now()).await.unwrap().id);
        }
        assert!(fast.iter().all(|id| *id > slow_id));
        let filter = CustomerFilter {
            ordering: CustomerOrdering::IdAsc,
            ..Default::default()
        };
        let page = store
            .cursor_page(
                &filter,
                &CursorRequest {
                    position: None,
                    backward: false,
                    size: 100,
                    settled_before: None,
                },
            )
            .await
            .unwrap();
        let seen: Vec<_> = page.items.iter().map(|(_, c)| c.id).collect();
        let mut expected = vec![slow_id];
        expected.extend(fast);
        assert_eq!(seen, expected, "the page waited for the create in progress");
    };
    let (outcome, ()) = tokio::join!(slow, walk);
    assert_eq!(
        outcome.unwrap(),
        crm_domain::idempotency::UnitOutcome::Committed
    );
}
