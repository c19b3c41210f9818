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
