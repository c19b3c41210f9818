//! PostgreSQL storage adapter: implements every port of `crm-domain` with
//! Diesel over an r2d2 pool. Diesel is synchronous, so each call runs on the
//! blocking thread pool, taking its connection there too.

mod addresses;
mod coupons;
mod customers;
mod error;
mod load;
mod oauth;
mod rows;
pub mod schema;
mod segments;
#[cfg(feature = "testing")]
pub mod testing;

use std::time::Duration;

use crm_domain::customer::HealthCheck;
use crm_domain::RepoError;
use diesel::pg::PgConnection;
use diesel::r2d2::{ConnectionManager, Pool};
use diesel::{Connection, RunQueryDsl};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use error::{StoreError, StoreResult};

/// The schema migrations, compiled into the binary.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/postgres");

/// Arbitrary key of the advisory lock that serialises concurrent migrators.
const MIGRATION_LOCK_KEY: i64 = 0x6372_6d5f_6d69_6772;

/// How the pool is set up.
#[derive(Clone, Debug)]
pub struct PgConfig {
    pub url: String,
    pub pool_size: u32,
    /// How long a request waits for a free connection before failing fast.
    pub connect_timeout: Duration,
}

impl PgConfig {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            pool_size: 10,
            connect_timeout: Duration::from_secs(5),
        }
    }
}

/// The PostgreSQL store; cheap to clone (it shares one pool).
#[derive(Clone)]
pub struct PgStore {
    pool: Pool<ConnectionManager<PgConnection>>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("state", &self.pool.state())
            .finish()
    }
}

impl PgStore {
    /// Builds the pool. It does not wait for the database: connections are
    /// made on demand, so a server can start while PostgreSQL is still down.
    pub fn new(config: &PgConfig) -> Result<Self, RepoError> {
        let manager = ConnectionManager::<PgConnection>::new(&config.url);
        let pool = Pool::builder()
            .max_size(config.pool_size.max(1))
            .min_idle(Some(0))
            .connection_timeout(config.connect_timeout)
            .test_on_check_out(false)
            .build_unchecked(manager);
        Ok(Self { pool })
    }

    /// Applies every pending migration, holding an advisory lock so that
    /// several servers starting at once migrate one after another.
    pub fn migrate(url: &str) -> Result<Vec<String>, RepoError> {
        let mut conn = PgConnection::establish(url)
            .map_err(|e| RepoError::Unavailable(format!("cannot connect to PostgreSQL: {e}")))?;
        run_migrations(&mut conn)
    }

    /// Number of idle and total connections in the pool.
    pub fn pool_state(&self) -> (u32, u32) {
        let state = self.pool.state();
        (state.idle_connections, state.connections)
    }

    /// Runs `f` with a pooled connection on the blocking thread pool.
    pub(crate) async fn run<T, F>(&self, f: F) -> Result<T, RepoError>
    where
        F: FnOnce(&mut PgConnection) -> StoreResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = pool.get().map_err(|e| {
                RepoError::Unavailable(format!("no database connection available: {e}"))
            })?;
            f(&mut conn).map_err(|StoreError(e)| e)
        })
        .await
        .map_err(|e| RepoError::Internal(format!("database task failed: {e}")))?
    }

    /// Runs `f` inside one transaction.
    pub(crate) async fn transaction<T, F>(&self, f: F) -> Result<T, RepoError>
    where
        F: FnOnce(&mut PgConnection) -> StoreResult<T> + Send + 'static,
        T: Send + 'static,
    {
        self.run(move |conn| conn.transaction(f)).await
    }
}

/// Applies pending migrations on `conn` under the migration advisory lock.
pub fn run_migrations(conn: &mut PgConnection) -> Result<Vec<String>, RepoError> {
    let internal =
        |e: &dyn std::fmt::Display| RepoError::Internal(format!("migration failed: {e}"));
    diesel::sql_query(format!("SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})"))
        .execute(conn)
        .map_err(|e| internal(&e))?;
    let applied = conn
        .run_pending_migrations(MIGRATIONS)
        .map(|versions| versions.iter().map(|v| v.to_string()).collect())
        .map_err(|e| internal(&e));
    diesel::sql_query(format!("SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})"))
        .execute(conn)
        .map_err(|e| internal(&e))?;
    applied
}

#[async_trait::async_trait]
impl HealthCheck for PgStore {
    async fn ping(&self) -> Result<(), RepoError> {
        self.run(|conn| {
            diesel::sql_query("SELECT 1").execute(conn)?;
            Ok(())
        })
        .await
    }
}
