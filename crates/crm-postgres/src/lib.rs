//! PostgreSQL storage adapter: implements every port of `crm-domain` with
//! Diesel over an r2d2 pool. The queries are shared with the SQLite adapter
//! (`crm-diesel`); this crate holds what is PostgreSQL's own: the
//! `Postgres` dialect (row locks, transaction flavours, counters, error
//! mapping) and the migrations.

mod dialect;
mod documents;
mod events;
pub mod revocations;
#[cfg(feature = "testing")]
pub mod testing;

use std::time::Duration;

use crm_diesel::PooledConn;
use crm_domain::RepoError;
use diesel::connection::CacheSize;
use diesel::pg::PgConnection;
use diesel::r2d2::{CustomizeConnection, Pool};
use diesel::{Connection, RunQueryDsl};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

pub use dialect::Postgres;

crm_diesel::diesel_adapter!(Postgres, PgStore, instant = diesel::sql_types::Timestamptz);

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
    /// Whether pooled connections keep Diesel's cache of named prepared
    /// statements. Turn it off behind a pooler in transaction mode (PgBouncer
    /// before 1.21), where the next transaction may run on another server
    /// connection that never saw the statement; queries are then sent with
    /// their parameters in one round trip (`PQsendQueryParams`).
    pub prepared_statements: bool,
}

impl PgConfig {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            pool_size: 10,
            connect_timeout: Duration::from_secs(5),
            prepared_statements: true,
        }
    }
}

impl PgStore {
    /// Builds the pool. It does not wait for the database: connections are
    /// made on demand, so a server can start while PostgreSQL is still down.
    pub fn new(config: &PgConfig) -> Result<Self, RepoError> {
        let mut builder = Pool::builder()
            .max_size(config.pool_size.max(1))
            .min_idle(Some(0))
            .test_on_check_out(false);
        if !config.prepared_statements {
            builder = builder.connection_customizer(Box::new(Unprepared));
        }
        Ok(Self::from(crm_diesel::Store::build(
            builder,
            crm_diesel::Manager::new(&config.url),
            config.connect_timeout,
        )))
    }

    /// Applies every pending migration, holding an advisory lock so that
    /// several servers starting at once migrate one after another.
    ///
    /// When it applied any, it then runs `ANALYZE`, so that the planner
    /// starts from statistics that describe the tables as they are now
    /// rather than as they were before (or never): autovacuum would analyze
    /// them only minutes later, after its thresholds are crossed.
    pub fn migrate(url: &str) -> Result<Vec<String>, RepoError> {
        let mut conn = PgConnection::establish(url)
            .map_err(|e| RepoError::Unavailable(format!("cannot connect to PostgreSQL: {e}")))?;
        let applied = run_migrations(&mut conn)?;
        if !applied.is_empty() {
            diesel::sql_query("ANALYZE")
                .execute(&mut conn)
                .map_err(|e| RepoError::Internal(format!("ANALYZE after migrating failed: {e}")))?;
        }
        Ok(applied)
    }
}

/// Disables the statement cache of each new pooled connection.
#[derive(Clone, Copy, Debug)]
struct Unprepared;

impl CustomizeConnection<PooledConn<PgConnection>, diesel::r2d2::Error> for Unprepared {
    fn on_acquire(&self, conn: &mut PooledConn<PgConnection>) -> Result<(), diesel::r2d2::Error> {
        conn.conn
            .set_prepared_statement_cache_size(CacheSize::Disabled);
        Ok(())
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
