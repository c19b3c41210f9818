//! Test support: a fresh, migrated SQLite database file per test, removed
//! when dropped.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::SqliteStore;

/// A migrated database file in the system's temp directory.
pub struct TestDatabase {
    path: PathBuf,
}

impl TestDatabase {
    pub fn create() -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path = std::env::temp_dir().join(format!(
            "crm_test_{}_{}_{nanos}.sqlite3",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        SqliteStore::migrate(path.to_str().expect("utf-8 temp path"))
            .expect("migrate test database");
        Self { path }
    }

    pub fn url(&self) -> &str {
        self.path.to_str().expect("utf-8 temp path")
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let mut name = self.path.clone().into_os_string();
            name.push(suffix);
            let _ = std::fs::remove_file(PathBuf::from(name));
        }
    }
}
