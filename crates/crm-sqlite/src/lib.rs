//! Embedded SQLite storage adapter: implements every port of `crm-domain`
//! with Diesel over an r2d2 pool, on a database file that needs no server.
//! libsqlite3 is compiled in. The queries are shared with the PostgreSQL
//! adapter (`crm-diesel`); this crate holds what is SQLite's own: the
//! `Sqlite` dialect (transaction flavours, counters, error mapping), the
//! migrations and the connection pragmas.
//!
//! Every connection runs in WAL mode with foreign keys on and a busy timeout,
//! so concurrent requests wait for each other instead of failing with
//! `database is locked`, and with a `lower()` that folds all of Unicode, as
//! PostgreSQL's does (SQLite's own folds ASCII only), so e-mail uniqueness
//! and search ignore case for every alphabet.

mod dialect;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

use std::time::Duration;

use crm_diesel::PooledConn;
use crm_domain::RepoError;
use diesel::connection::SimpleConnection;
use diesel::r2d2::{CustomizeConnection, Pool};
use diesel::sqlite::SqliteConnection;
use diesel::Connection;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

pub use dialect::Sqlite;

crm_diesel::diesel_adapter!(
    Sqlite,
    SqliteStore,
    instant = diesel::sql_types::TimestamptzSqlite
);

/// The schema migrations, compiled into the binary.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/sqlite");

/// How the pool is set up.
#[derive(Clone, Debug)]
pub struct SqliteConfig {
    /// A file path (created if missing).
    pub path: String,
    pub pool_size: u32,
    /// How long a request waits for a free connection before failing fast.
    pub connect_timeout: Duration,
    /// How long a statement waits for another writer before giving up.
    pub busy_timeout: Duration,
}

impl SqliteConfig {
    pub fn new(path: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            pool_size: 10,
            connect_timeout: Duration::from_secs(5),
            busy_timeout: Duration::from_secs(5),
        }
    }
}

diesel::define_sql_function! {
    /// Replaces SQLite's ASCII-only `lower()` on each connection.
    fn lower(text: diesel::sql_types::Text) -> diesel::sql_types::Text;
}

/// Sets the pragmas and functions every connection needs.
#[derive(Debug, Clone, Copy)]
struct Pragmas {
    busy_timeout: Duration,
}

impl Pragmas {
    fn apply(&self, conn: &mut SqliteConnection) -> diesel::QueryResult<()> {
        lower_utils::register_impl(conn, |text: String| text.to_lowercase())?;
        conn.batch_execute(&format!(
            "PRAGMA busy_timeout = {};
             PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             PRAGMA foreign_keys = ON;",
            self.busy_timeout.as_millis()
        ))
    }
}

impl CustomizeConnection<PooledConn<SqliteConnection>, diesel::r2d2::Error> for Pragmas {
    fn on_acquire(
        &self,
        conn: &mut PooledConn<SqliteConnection>,
    ) -> Result<(), diesel::r2d2::Error> {
        self.apply(&mut conn.conn)
            .map_err(diesel::r2d2::Error::QueryError)
    }
}

fn open(path: &str, pragmas: Pragmas) -> Result<SqliteConnection, RepoError> {
    let mut conn = SqliteConnection::establish(path)
        .map_err(|e| RepoError::Unavailable(format!("cannot open SQLite database {path}: {e}")))?;
    pragmas
        .apply(&mut conn)
        .map_err(|e| RepoError::Internal(format!("cannot configure SQLite: {e}")))?;
    Ok(conn)
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and builds the pool.
    pub fn new(config: &SqliteConfig) -> Result<Self, RepoError> {
        let pragmas = Pragmas {
            busy_timeout: config.busy_timeout,
        };
        // Fails early on a path that cannot be opened.
        open(&config.path, pragmas)?;
        let builder = Pool::builder()
            .max_size(config.pool_size.max(1))
            .min_idle(Some(0))
            .connection_customizer(Box::new(pragmas));
        Ok(Self::from(crm_diesel::Store::build(
            builder,
            crm_diesel::Manager::new(&config.path),
            config.connect_timeout,
        )))
    }

    /// Applies every pending migration to the database file.
    pub fn migrate(path: &str) -> Result<Vec<String>, RepoError> {
        let mut conn = open(
            path,
            Pragmas {
                busy_timeout: Duration::from_secs(30),
            },
        )?;
        run_migrations(&mut conn)
    }
}

/// Applies pending migrations on `conn`.
pub fn run_migrations(conn: &mut SqliteConnection) -> Result<Vec<String>, RepoError> {
    conn.run_pending_migrations(MIGRATIONS)
        .map(|versions| versions.iter().map(|v| v.to_string()).collect())
        .map_err(|e| RepoError::Internal(format!("migration failed: {e}")))
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::testing::TestDatabase;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_exhausted_pool_answers_unavailable_within_the_acquire_timeout() {
        let db = TestDatabase::create();
        let mut config = SqliteConfig::new(db.url());
        config.pool_size = 1;
        config.connect_timeout = Duration::from_millis(300);
        let store = SqliteStore::new(&config).unwrap();
        let busy = store.clone();
        let holder = tokio::spawn(async move {
            busy.run(|_conn| {
                std::thread::sleep(Duration::from_millis(1500));
                Ok(())
            })
            .await
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        let started = Instant::now();
        let refused = store.run(|_conn| Ok(())).await;
        let waited = started.elapsed();
        assert!(
            matches!(refused, Err(RepoError::Unavailable(_))),
            "{refused:?}"
        );
        assert!(waited < Duration::from_millis(1000), "waited {waited:?}");
        holder.await.unwrap().unwrap();
        // Free again: the next call goes through.
        store.run(|_conn| Ok(())).await.unwrap();
    }
}
