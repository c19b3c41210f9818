//! The store: a connection pool, and the way every port call runs — on the
//! blocking thread pool, taking its connection there, inside the backend's
//! read or write transaction.
//!
//! When the database goes away, requests fail fast instead of queueing for
//! the whole connection timeout: a failed connection attempt opens a short
//! window in which only already-open connections are used, and a connection
//! that failed with an availability error is discarded, not pooled again.
//! The pool reconnects on its own when the database is back.
//!
//! Diesel blocks, so each call runs on the blocking thread pool; a semaphore
//! with one permit per pooled connection admits calls there, so the blocking
//! threads in use never outnumber the connections (the two are configured
//! together), and a call that cannot get a permit within the acquire timeout
//! fails with `Unavailable` (a 503) instead of queueing without bound.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crm_domain::customer::{HealthCheck, PoolState};
use crm_domain::RepoError;
use diesel::r2d2::{self, ConnectionManager, ManageConnection, Pool};
use diesel::RunQueryDsl;

use super::error::{StoreError, StoreResult};
use crate::backend::Conn;

/// After a failed connection attempt, requests arriving within this window
/// use open connections only and otherwise fail at once.
const FAIL_FAST_WINDOW: Duration = Duration::from_secs(1);
/// After that, while failures are recent, a request waits this long at most
/// for a connection before failing.
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);
const RECENT_FAILURE: Duration = Duration::from_secs(30);
/// Failed connection attempts are logged at most once per this interval.
const LOG_INTERVAL: Duration = Duration::from_secs(5);

thread_local! {
    /// Set by `Store::run` when the connection it used should not be reused.
    static DISCARD: Cell<bool> = const { Cell::new(false) };
}

fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// When the last connection attempt failed (milliseconds since the epoch).
#[derive(Debug, Default)]
struct Outage {
    last_failure: AtomicU64,
    /// When a failed attempt was last logged, and how many failed since.
    last_logged: AtomicU64,
    unlogged: AtomicU64,
}

impl Outage {
    fn within(&self, window: Duration) -> bool {
        let last = self.last_failure.load(Ordering::Relaxed);
        last != 0 && now_millis().saturating_sub(last) < window.as_millis() as u64
    }
}

#[derive(Debug)]
struct OutageRecorder(Arc<Outage>);

impl r2d2::HandleError<r2d2::Error> for OutageRecorder {
    fn handle_error(&self, error: r2d2::Error) {
        // At most one line per LOG_INTERVAL, not one per failed attempt:
        // the failures in between are only counted.
        let now = now_millis();
        self.0.last_failure.store(now, Ordering::Relaxed);
        let logged = self.0.last_logged.load(Ordering::Relaxed);
        if logged != 0 && now.saturating_sub(logged) < LOG_INTERVAL.as_millis() as u64 {
            self.0.unlogged.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.0.last_logged.store(now, Ordering::Relaxed);
        let suppressed = self.0.unlogged.swap(0, Ordering::Relaxed);
        let error = error.to_string().replace(|c: char| c.is_control(), " ");
        tracing::warn!(%error, suppressed, "database connection failed");
    }
}

/// Diesel's connection manager, plus discarding connections that `run`
/// marked as failed.
#[derive(Debug)]
pub struct Manager(ConnectionManager<Conn>);

impl Manager {
    pub fn new(url: &str) -> Self {
        Self(ConnectionManager::new(url))
    }
}

impl ManageConnection for Manager {
    type Connection = Conn;
    type Error = r2d2::Error;

    fn connect(&self) -> Result<Conn, r2d2::Error> {
        self.0.connect()
    }

    fn is_valid(&self, conn: &mut Conn) -> Result<(), r2d2::Error> {
        self.0.is_valid(conn)
    }

    fn has_broken(&self, conn: &mut Conn) -> bool {
        DISCARD.with(|d| d.replace(false)) || self.0.has_broken(conn)
    }
}

/// A Diesel store over a pool; cheap to clone (it shares the pool).
#[derive(Clone)]
pub struct Store {
    pool: Pool<Manager>,
    outage: Arc<Outage>,
    permits: Arc<tokio::sync::Semaphore>,
    acquire_timeout: Duration,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("state", &self.pool.state())
            .finish()
    }
}

impl Store {
    /// Builds the pool from `builder` (sizes, customizer) over `manager`,
    /// recording failed connection attempts. A call waits at most
    /// `acquire_timeout` for a connection. No connection is made yet.
    pub fn build(
        builder: r2d2::Builder<Manager>,
        manager: Manager,
        acquire_timeout: Duration,
    ) -> Self {
        let outage = Arc::new(Outage::default());
        let pool = builder
            .connection_timeout(acquire_timeout)
            .error_handler(Box::new(OutageRecorder(outage.clone())))
            .build_unchecked(manager);
        let permits = Arc::new(tokio::sync::Semaphore::new(pool.max_size() as usize));
        Self {
            pool,
            outage,
            permits,
            acquire_timeout,
        }
    }

    /// Runs `f` with a pooled connection on the blocking thread pool.
    pub(crate) async fn run<T, F>(&self, f: F) -> Result<T, RepoError>
    where
        F: FnOnce(&mut Conn) -> StoreResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let permit =
            tokio::time::timeout(self.acquire_timeout, self.permits.clone().acquire_owned())
                .await
                .ok()
                .and_then(Result::ok)
                .ok_or_else(|| {
                    RepoError::Unavailable("every database connection is busy".to_owned())
                })?;
        let pool = self.pool.clone();
        let outage = self.outage.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let unavailable = |e: &dyn std::fmt::Display| {
                RepoError::Unavailable(format!("no database connection: {e}"))
            };
            let mut conn = if outage.within(FAIL_FAST_WINDOW) {
                pool.try_get()
                    .ok_or_else(|| unavailable(&"the database is unreachable"))?
            } else if outage.within(RECENT_FAILURE) {
                pool.get_timeout(PROBE_TIMEOUT)
                    .map_err(|e| unavailable(&e))?
            } else {
                pool.get().map_err(|e| unavailable(&e))?
            };
            let result = f(&mut conn).map_err(|StoreError(e)| e);
            if matches!(
                result,
                Err(RepoError::Unavailable(_) | RepoError::Internal(_))
            ) {
                // The connection may be dead: do not hand it out again.
                DISCARD.with(|d| d.set(true));
            }
            drop(conn);
            DISCARD.with(|d| d.set(false));
            result
        })
        .await
        .map_err(|e| RepoError::Internal(format!("database task failed: {e}")))?
    }

    /// Runs `f` in a read-only transaction: one consistent snapshot.
    pub(crate) async fn read<T, F>(&self, f: F) -> Result<T, RepoError>
    where
        F: FnOnce(&mut Conn) -> StoreResult<T> + Send + 'static,
        T: Send + 'static,
    {
        self.run(move |conn| crate::backend::read_transaction(conn, f))
            .await
    }

    /// Runs `f` in one write transaction.
    pub(crate) async fn write<T, F>(&self, f: F) -> Result<T, RepoError>
    where
        F: FnOnce(&mut Conn) -> StoreResult<T> + Send + 'static,
        T: Send + 'static,
    {
        self.run(move |conn| crate::backend::write_transaction(conn, f))
            .await
    }
}

#[async_trait::async_trait]
impl HealthCheck for Store {
    async fn ping(&self) -> Result<(), RepoError> {
        self.run(|conn| {
            diesel::sql_query("SELECT 1").execute(conn)?;
            Ok(())
        })
        .await
    }

    fn pool_state(&self) -> PoolState {
        let state = self.pool.state();
        PoolState {
            idle: state.idle_connections,
            open: state.connections,
            max: self.pool.max_size(),
        }
    }
}
