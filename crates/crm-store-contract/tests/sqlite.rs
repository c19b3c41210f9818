//! The contract suite against SQLite, each test on a fresh database file.

use std::sync::Arc;
use std::time::Duration;

use crm_domain::customer::HealthCheck;
use crm_domain::RepoError;
use crm_sqlite::{SqliteConfig, SqliteStore};

crm_store_contract::contract_tests!({
    let db = crm_sqlite::testing::TestDatabase::create();
    let store = SqliteStore::new(&SqliteConfig::new(db.url())).expect("store");
    (Arc::new(store), db)
});

/// The other half of the health contract: no `Ok` without an answer. The
/// database's directory vanishes after the store is built, so no connection
/// can be opened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_fails_when_the_database_cannot_be_opened() {
    let dir = std::env::temp_dir().join(format!("crm_contract_gone_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("db.sqlite3");
    let config = SqliteConfig {
        connect_timeout: Duration::from_millis(500),
        ..SqliteConfig::new(path.to_str().unwrap())
    };
    let store = SqliteStore::new(&config).expect("store");
    std::fs::remove_dir_all(&dir).unwrap();
    match store.ping().await {
        Err(RepoError::Unavailable(_)) => {}
        other => panic!("expected Unavailable, got {other:?}"),
    }
}
