//! PostgreSQL storage adapter: implements every port of `crm-domain` with
//! Diesel over an r2d2 pool. The queries are shared with the SQLite adapter
//! (`crm-diesel`); this crate holds what is PostgreSQL's own: the
//! `Postgres` dialect (row locks, transaction flavours, counters, error
//! mapping) and the migrations.

mod dialect;
mod documents;
mod events;
pub mod replica;
pub mod revocations;
#[cfg(feature = "testing")]
pub mod testing;

use std::sync::Arc;
use std::time::Duration;

use crm_diesel::replica::ReplicaState;
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
    /// A streaming replica that may answer reads (see
    /// [`crm_diesel::replica`]), with a pool of `pool_size` of its own.
    pub replica_url: Option<String>,
    /// How far behind the primary the replica may be and still answer.
    pub replica_max_lag: Duration,
    /// Where the replica's monitor asks the primary for its WAL position,
    /// on a connection of its own (default: `url`). Give the primary's
    /// direct address when `url` is a pooler, so that the replica keeps
    /// answering reads while the pooler is down or restarting.
    pub direct_url: Option<String>,
}

impl PgConfig {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            pool_size: 10,
            connect_timeout: Duration::from_secs(5),
            prepared_statements: true,
            replica_url: None,
            replica_max_lag: Duration::from_secs(1),
            direct_url: None,
        }
    }
}

impl PgStore {
    /// Builds the pool. It does not wait for the database: connections are
    /// made on demand, so a server can start while PostgreSQL is still down.
    pub fn new(config: &PgConfig) -> Result<Self, RepoError> {
        let pool = |url: &str, size: u32| {
            let mut builder = Pool::builder()
                .max_size(size.max(1))
                .min_idle(Some(0))
                .test_on_check_out(false);
            if !config.prepared_statements {
                builder = builder.connection_customizer(Box::new(Unprepared));
            }
            crm_diesel::Store::build(
                builder,
                crm_diesel::Manager::new(url),
                config.connect_timeout,
            )
        };
        let mut store = pool(&config.url, config.pool_size);
        if let Some(replica) = &config.replica_url {
            let state = Arc::new(ReplicaState::new(config.replica_max_lag));
            let probe = pool(config.direct_url.as_deref().unwrap_or(&config.url), 1);
            store = store.with_replica(pool(replica, config.pool_size), probe, state);
        }
        Ok(Self::from(store))
    }

    /// The task that keeps the replica's routing state current; `None`
    /// without a replica. Run it on the runtime the store is used on (it
    /// ends once every clone of the store is dropped); until it runs,
    /// every read goes to the primary.
    pub fn replica_monitor(
        &self,
    ) -> Option<impl std::future::Future<Output = ()> + Send + 'static> {
        let (replica, probe, state) = self.replica()?;
        Some(replica::monitor(
            probe.clone(),
            replica.clone(),
            state.clone(),
        ))
    }

    /// The replica's routing state and counters, if there is a replica.
    pub fn replica_status(&self) -> Option<crm_diesel::replica::ReplicaStatus> {
        self.replica().map(|(_, _, state)| state.status())
    }

    /// Applies every pending migration, holding an advisory lock so that
    /// several servers starting at once migrate one after another.
    ///
    /// When it applied any, it then analyzes every table that holds rows,
    /// so that the planner starts from statistics that describe them as
    /// they are now rather than as they were before: autovacuum would
    /// analyze them only minutes later, after its thresholds are crossed.
    ///
    /// Empty tables are left unanalyzed on purpose. Analyzed empty, a table
    /// is *known* empty, and the first plans made for it while it holds a
    /// page or two are sequential scans; the foreign-key checks keep
    /// theirs for the life of each connection, so on a new database every
    /// insert of a tag or an address scanned the whole `customers` table
    /// until autovacuum's first ANALYZE, a minute or more into the load.
    /// Never analyzed, the planner assumes at least ten pages and plans
    /// key lookups through the index.
    pub fn migrate(url: &str) -> Result<Vec<String>, RepoError> {
        let mut conn = PgConnection::establish(url)
            .map_err(|e| RepoError::Unavailable(format!("cannot connect to PostgreSQL: {e}")))?;
        let applied = run_migrations(&mut conn)?;
        if !applied.is_empty() {
            diesel::sql_query(ANALYZE_TABLES_WITH_ROWS)
                .execute(&mut conn)
                .map_err(|e| RepoError::Internal(format!("ANALYZE after migrating failed: {e}")))?;
        }
        Ok(applied)
    }
}

/// Analyzes the tables of the current schema that hold at least one row.
const ANALYZE_TABLES_WITH_ROWS: &str = "DO $$ \
     DECLARE t text; has_rows boolean; \
     BEGIN \
         FOR t IN SELECT tablename FROM pg_tables WHERE schemaname = current_schema() LOOP \
             EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I)', t) INTO has_rows; \
             IF has_rows THEN EXECUTE format('ANALYZE %I', t); END IF; \
         END LOOP; \
     END $$";

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
