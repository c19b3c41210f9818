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

use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crm_domain::customer::{HealthCheck, PoolState};
use crm_domain::RepoError;
use diesel::connection::SimpleConnection;
use diesel::r2d2::{self, ConnectionManager, ManageConnection, Pool};
use diesel::Connection;

use crate::error::StoreResult;
use crate::replica::ReplicaState;
use crate::Dialect;

/// After a failed connection attempt, requests arriving within this window
/// use open connections only and otherwise fail at once.
const FAIL_FAST_WINDOW: Duration = Duration::from_secs(1);
/// After that, while failures are recent, a request waits this long at most
/// for a connection before failing.
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);
const RECENT_FAILURE: Duration = Duration::from_secs(30);
/// Failed connection attempts are logged at most once per this interval.
const LOG_INTERVAL: Duration = Duration::from_secs(5);

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

/// A pooled connection, and whether the call that last used it failed in a
/// way that leaves it suspect (then the pool discards it).
#[derive(Debug)]
pub struct PooledConn<C> {
    pub conn: C,
    broken: bool,
}

impl<C> PooledConn<C> {
    fn new(conn: C) -> Self {
        Self {
            conn,
            broken: false,
        }
    }

    /// Whether the pool will discard this connection when it comes back.
    pub fn is_marked_broken(&self) -> bool {
        self.broken
    }
}

/// Diesel's connection manager, plus discarding connections that `run`
/// marked as failed.
pub struct Manager<D: Dialect> {
    inner: ConnectionManager<D::Connection>,
    dialect: PhantomData<fn() -> D>,
}

impl<D: Dialect> std::fmt::Debug for Manager<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manager").finish_non_exhaustive()
    }
}

impl<D: Dialect> Manager<D> {
    pub fn new(url: &str) -> Self {
        Self {
            inner: ConnectionManager::new(url),
            dialect: PhantomData,
        }
    }
}

impl<D: Dialect> ManageConnection for Manager<D> {
    type Connection = PooledConn<D::Connection>;
    type Error = r2d2::Error;

    fn connect(&self) -> Result<Self::Connection, r2d2::Error> {
        self.inner.connect().map(PooledConn::new)
    }

    fn is_valid(&self, conn: &mut Self::Connection) -> Result<(), r2d2::Error> {
        self.inner.is_valid(&mut conn.conn)
    }

    fn has_broken(&self, conn: &mut Self::Connection) -> bool {
        conn.broken || self.inner.has_broken(&mut conn.conn)
    }
}

/// A connection from `pool`, failing fast while the database is known to
/// be unreachable (see the module docs). Blocks: call it on the blocking
/// thread pool.
fn checkout<D: Dialect>(
    pool: &Pool<Manager<D>>,
    outage: &Outage,
) -> Result<r2d2::PooledConnection<Manager<D>>, RepoError> {
    let unavailable =
        |e: &dyn std::fmt::Display| RepoError::Unavailable(format!("no database connection: {e}"));
    if outage.within(FAIL_FAST_WINDOW) {
        pool.try_get()
            .ok_or_else(|| unavailable(&"the database is unreachable"))
    } else if outage.within(RECENT_FAILURE) {
        pool.get_timeout(PROBE_TIMEOUT).map_err(|e| unavailable(&e))
    } else {
        pool.get().map_err(|e| unavailable(&e))
    }
}

/// A Diesel store over a pool; cheap to clone (it shares the pool).
///
/// It may also have a read replica ([`with_replica`](Self::with_replica)):
/// reads made in a session that allows stale reads
/// (`crm_domain::consistency`) then go to the replica's pool when the
/// replica holds every write of that session and lags no more than allowed
/// (see [`replica`](crate::replica)); everything else goes to the primary.
pub struct Store<D: Dialect> {
    pool: Pool<Manager<D>>,
    outage: Arc<Outage>,
    permits: Arc<tokio::sync::Semaphore>,
    acquire_timeout: Duration,
    replica: Option<Arc<Replica<D>>>,
}

/// A read replica: its own pool, a connection to the primary for its
/// monitor, and whether it may serve a read now.
struct Replica<D: Dialect> {
    store: Store<D>,
    probe: Store<D>,
    state: Arc<ReplicaState>,
}

impl<D: Dialect> Clone for Store<D> {
    fn clone(&self) -> Self {
        Self {
            pool: self.pool.clone(),
            outage: self.outage.clone(),
            permits: self.permits.clone(),
            acquire_timeout: self.acquire_timeout,
            replica: self.replica.clone(),
        }
    }
}

impl<D: Dialect> std::fmt::Debug for Store<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("state", &self.pool.state())
            .finish()
    }
}

impl<D: Dialect> Store<D> {
    /// Builds the pool from `builder` (sizes, customizer) over `manager`,
    /// recording failed connection attempts. A call waits at most
    /// `acquire_timeout` for a connection. No connection is made yet.
    pub fn build(
        builder: r2d2::Builder<Manager<D>>,
        manager: Manager<D>,
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
            replica: None,
        }
    }

    /// This store, with reads routed to `replica` (a store of its own,
    /// without a replica) as `state` allows. Keep `state` current with a
    /// monitor (the dialect's), which asks the primary through `probe` (a
    /// store of its own, so that it does not wait behind requests for a
    /// connection, and may bypass a pooler).
    pub fn with_replica(
        mut self,
        replica: Store<D>,
        probe: Store<D>,
        state: Arc<ReplicaState>,
    ) -> Self {
        self.replica = Some(Arc::new(Replica {
            store: replica,
            probe,
            state,
        }));
        self
    }

    /// The replica's store, the monitor's store on the primary, and the
    /// routing state, if this store has a replica.
    pub fn replica(&self) -> Option<(&Store<D>, &Store<D>, &Arc<ReplicaState>)> {
        self.replica
            .as_ref()
            .map(|r| (&r.store, &r.probe, &r.state))
    }

    /// The replica a read of the current session may go to now, if any.
    fn replica_for_read(&self) -> Option<&Replica<D>> {
        let replica = self.replica.as_ref()?;
        let session = crm_domain::consistency::current()?;
        if !session.stale_reads_ok() {
            return None;
        }
        let serves = replica.state.serves(session.id());
        replica.state.count_read(serves);
        serves.then_some(&**replica)
    }

    /// Remembers that the current session (if any) committed a write, for
    /// the replica's read-your-writes.
    fn note_write(&self) {
        if let Some(replica) = &self.replica {
            if let Some(session) = crm_domain::consistency::current() {
                replica.state.wrote(session.shared_id());
            }
        }
    }

    /// Runs `f` with a pooled connection on the blocking thread pool. A
    /// connection whose call failed with `Unavailable` or `Internal` is
    /// marked broken, so the pool discards it instead of handing it out again.
    /// Inside a unit of work ([`unit`](Self::unit)) `f` gets the unit's
    /// connection, in its open transaction.
    pub async fn run<T, F>(&self, f: F) -> Result<T, RepoError>
    where
        F: FnOnce(&mut D::Connection) -> StoreResult<T> + Send + 'static,
        T: Send + 'static,
    {
        if let Some(unit) = self.current_unit() {
            return unit.run::<D, T, F>(f).await;
        }
        self.run_pooled(f).await
    }

    /// A permit to take a pooled connection, within the acquire timeout.
    async fn permit(&self) -> Result<tokio::sync::OwnedSemaphorePermit, RepoError> {
        tokio::time::timeout(self.acquire_timeout, self.permits.clone().acquire_owned())
            .await
            .ok()
            .and_then(Result::ok)
            .ok_or_else(|| RepoError::Unavailable("every database connection is busy".to_owned()))
    }

    /// `run` on a connection of the pool, never the unit's.
    async fn run_pooled<T, F>(&self, f: F) -> Result<T, RepoError>
    where
        F: FnOnce(&mut D::Connection) -> StoreResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let permit = self.permit().await?;
        let pool = self.pool.clone();
        let outage = self.outage.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let mut conn = checkout(&pool, &outage)?;
            let result = f(&mut conn.conn).map_err(|e| e.into_repo::<D>());
            if matches!(
                result,
                Err(RepoError::Unavailable(_) | RepoError::Internal(_))
            ) {
                // The connection may be dead: do not hand it out again.
                conn.broken = true;
            }
            result
        })
        .await
        .map_err(|e| RepoError::Internal(format!("database task failed: {e}")))?
    }

    /// Runs `f` in a read-only transaction: one consistent snapshot (inside
    /// a unit of work, the unit's transaction). `f` is cloned when it may
    /// run on a replica, to run again on the primary if the replica fails.
    pub async fn read<T, F>(&self, f: F) -> Result<T, RepoError>
    where
        F: FnOnce(&mut D::Connection) -> StoreResult<T> + Clone + Send + 'static,
        T: Send + 'static,
    {
        if let Some(unit) = self.current_unit() {
            return unit.run::<D, T, F>(f).await;
        }
        self.read_routed(move |conn| D::read_transaction(conn, f))
            .await
    }

    /// `run_pooled` on the replica when the current session may read
    /// there, else on the primary. A read the replica cannot answer (no
    /// connection, or the connection or server failing: it was stopped,
    /// say) is made again on the primary, and the replica serves no more
    /// reads until the monitor sees it answer.
    async fn read_routed<T, F>(&self, f: F) -> Result<T, RepoError>
    where
        F: FnOnce(&mut D::Connection) -> StoreResult<T> + Clone + Send + 'static,
        T: Send + 'static,
    {
        let Some(replica) = self.replica_for_read() else {
            return self.run_pooled(f).await;
        };
        let again = f.clone();
        match replica.store.try_run_pooled(f).await {
            Ok(Err(RepoError::Unavailable(_) | RepoError::Internal(_))) | Err(_) => {
                replica.state.fell_back();
                self.run_pooled(again).await
            }
            Ok(answer) => answer,
        }
    }

    /// `run_pooled`, except that when no connection can be had, `f` is
    /// given back (it has not run) instead of an error.
    async fn try_run_pooled<T, F>(&self, f: F) -> Result<Result<T, RepoError>, F>
    where
        F: FnOnce(&mut D::Connection) -> StoreResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let Ok(permit) = self.permit().await else {
            return Err(f);
        };
        let pool = self.pool.clone();
        let outage = self.outage.clone();
        let ran = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let mut conn = match checkout(&pool, &outage) {
                Ok(conn) => conn,
                Err(_) => return Err(f),
            };
            let result = f(&mut conn.conn).map_err(|e| e.into_repo::<D>());
            if matches!(
                result,
                Err(RepoError::Unavailable(_) | RepoError::Internal(_))
            ) {
                conn.broken = true;
            }
            Ok(result)
        })
        .await;
        match ran {
            Ok(ran) => ran,
            Err(e) => Ok(Err(RepoError::Internal(format!(
                "database task failed: {e}"
            )))),
        }
    }

    /// Runs `f`, a read that the dialect answers with one statement where it
    /// has document reads ([`Dialect::DOCUMENT_READS`]): that statement is
    /// its own snapshot, so no transaction is opened around it. Elsewhere `f`
    /// runs in a read transaction like [`read`](Self::read).
    pub async fn read_document<T, F>(&self, f: F) -> Result<T, RepoError>
    where
        F: FnOnce(&mut D::Connection) -> StoreResult<T> + Clone + Send + 'static,
        T: Send + 'static,
    {
        if self.current_unit().is_some() {
            self.run(f).await
        } else if D::DOCUMENT_READS {
            self.read_routed(f).await
        } else {
            self.read(f).await
        }
    }

    /// Runs `f` in one write transaction (inside a unit of work, in a
    /// savepoint of the unit's transaction: a refused write leaves the unit
    /// as it was).
    pub async fn write<T, F>(&self, f: F) -> Result<T, RepoError>
    where
        F: FnOnce(&mut D::Connection) -> StoreResult<T> + Send + 'static,
        T: Send + 'static,
    {
        if let Some(unit) = self.current_unit() {
            return unit.run::<D, T, _>(move |conn| conn.transaction(f)).await;
        }
        let written = self
            .run_pooled(move |conn| D::write_transaction(conn, f))
            .await;
        if written.is_ok() {
            self.note_write();
        }
        written
    }

    /// Who this store is, to the units of work: stores sharing a pool are
    /// one store.
    fn identity(&self) -> usize {
        Arc::as_ptr(&self.permits) as usize
    }

    /// The unit of work of this store the current task runs in, if any.
    fn current_unit(&self) -> Option<Unit> {
        UNIT.try_with(|unit| unit.clone())
            .ok()
            .filter(|unit| unit.owner == self.identity())
    }

    /// Runs `work` as a unit of work: one transaction of one pooled
    /// connection (`begin` then runs first in it), which every call the
    /// current task makes to this store while `work` runs joins (reads in
    /// it, writes in savepoints). `end` then gets the connection and what
    /// `work` returned, and decides: it may write, and returns whether to
    /// commit and what to answer. A unit abandoned halfway (its future
    /// dropped) commits nothing: its connection is discarded, which rolls
    /// the transaction back.
    pub async fn unit<W, T, E>(
        &self,
        begin: impl FnOnce(&mut D::Connection) -> StoreResult<()> + Send + 'static,
        work: impl std::future::Future<Output = W>,
        end: E,
    ) -> Result<T, RepoError>
    where
        W: Send + 'static,
        T: Send + 'static,
        E: FnOnce(&mut D::Connection, W) -> StoreResult<(bool, T)> + Send + 'static,
    {
        let permit = self.permit().await?;
        let pool = self.pool.clone();
        let outage = self.outage.clone();
        let conn = tokio::task::spawn_blocking(move || {
            let mut conn = checkout(&pool, &outage)?;
            // Discarded unless the unit ends cleanly: a connection that
            // goes back to the pool must hold no open transaction.
            conn.broken = true;
            D::begin_unit(&mut conn.conn)
                .and_then(|()| begin(&mut conn.conn))
                .map_err(|e| e.into_repo::<D>())?;
            Ok::<_, RepoError>(conn)
        })
        .await
        .map_err(|e| RepoError::Internal(format!("database task failed: {e}")))??;
        let unit = Unit {
            owner: self.identity(),
            conn: Arc::new(std::sync::Mutex::new(Some(Box::new(conn)))),
            _permit: Arc::new(permit),
        };
        let outcome = UNIT.scope(unit.clone(), work).await;
        let mut conn = unit.take::<D>()?;
        let ended = tokio::task::spawn_blocking(move || {
            use diesel::connection::TransactionManager;
            type Tm<C> = <C as diesel::Connection>::TransactionManager;
            let ended = end(&mut conn.conn, outcome);
            let closed = match &ended {
                Ok((true, _)) => Tm::<D::Connection>::commit_transaction(&mut conn.conn),
                _ => Tm::<D::Connection>::rollback_transaction(&mut conn.conn),
            };
            if closed.is_ok() {
                conn.broken = false;
            }
            let (_, answer) = ended.map_err(|e| e.into_repo::<D>())?;
            closed.map_err(|e| crate::StoreError::from(e).into_repo::<D>())?;
            Ok(answer)
        })
        .await
        .map_err(|e| RepoError::Internal(format!("database task failed: {e}")))?;
        if ended.is_ok() {
            // Counted as a write of the session whether it committed or
            // not: a unit that wrote nothing only sends the session's
            // next reads to the primary a little longer.
            self.note_write();
        }
        ended
    }
}

tokio::task_local! {
    /// The unit of work the current task runs in.
    static UNIT: Unit;
}

/// A unit of work in progress: its store, its connection (lent to one call
/// at a time), and the permit it holds for that connection.
#[derive(Clone)]
struct Unit {
    owner: usize,
    conn: Arc<std::sync::Mutex<Option<Box<dyn std::any::Any + Send>>>>,
    _permit: Arc<tokio::sync::OwnedSemaphorePermit>,
}

impl Unit {
    /// The unit's connection, taken from its slot.
    fn take<D: Dialect>(&self) -> Result<r2d2::PooledConnection<Manager<D>>, RepoError> {
        let taken = self
            .conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        let taken = taken.ok_or_else(|| {
            RepoError::Internal("the unit's connection is in use by another call".to_owned())
        })?;
        taken
            .downcast::<r2d2::PooledConnection<Manager<D>>>()
            .map(|conn| *conn)
            .map_err(|_| RepoError::Internal("a unit of work of another store".to_owned()))
    }

    fn put_back<D: Dialect>(&self, conn: r2d2::PooledConnection<Manager<D>>) {
        *self
            .conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Box::new(conn));
    }

    /// Runs `f` on the unit's connection, on the blocking thread pool.
    async fn run<D: Dialect, T, F>(&self, f: F) -> Result<T, RepoError>
    where
        F: FnOnce(&mut D::Connection) -> StoreResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let mut conn = self.take::<D>()?;
        let (conn, result) = tokio::task::spawn_blocking(move || {
            let result = f(&mut conn.conn).map_err(|e| e.into_repo::<D>());
            (conn, result)
        })
        .await
        .map_err(|e| RepoError::Internal(format!("database task failed: {e}")))?;
        self.put_back::<D>(conn);
        result
    }
}

#[async_trait::async_trait]
impl<D: Dialect> HealthCheck for Store<D> {
    async fn ping(&self) -> Result<(), RepoError> {
        self.run(|conn| {
            // `sql_query(..).execute` would need the backend-private
            // `DieselReserveSpecialization` bound on `D::Backend`.
            conn.batch_execute("SELECT 1")?;
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

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use diesel::sqlite::SqliteConnection;
    use diesel::Connection;

    use super::*;
    use crate::error::fail;
    use crate::Locked;

    /// A dialect over in-memory SQLite, enough to drive the pool.
    struct TestDialect;

    impl Dialect for TestDialect {
        type Backend = diesel::sqlite::Sqlite;
        type Connection = SqliteConnection;
        type Instant = diesel::sql_types::TimestamptzSqlite;
        const MAX_BIND_IDS: usize = 10;
        const INSERT_CHUNK: usize = 10;

        fn read_transaction<T>(
            conn: &mut SqliteConnection,
            f: impl FnOnce(&mut SqliteConnection) -> StoreResult<T>,
        ) -> StoreResult<T> {
            conn.transaction(f)
        }

        fn write_transaction<T>(
            conn: &mut SqliteConnection,
            f: impl FnOnce(&mut SqliteConnection) -> StoreResult<T>,
        ) -> StoreResult<T> {
            conn.transaction(f)
        }

        fn begin_unit(conn: &mut SqliteConnection) -> StoreResult<()> {
            use diesel::connection::TransactionManager;
            Ok(diesel::connection::AnsiTransactionManager::begin_transaction(conn)?)
        }

        fn count_all_customers(_: &mut SqliteConnection) -> StoreResult<i64> {
            Ok(0)
        }

        fn count_segment_members(_: &mut SqliteConnection, _: i64) -> StoreResult<i64> {
            Ok(0)
        }

        fn lock_customer(_: &mut SqliteConnection, _: i64) -> StoreResult<Locked<bool>> {
            Ok(Locked::Unneeded)
        }

        fn lock_client(_: &mut SqliteConnection, _: &str) -> StoreResult<Locked<bool>> {
            Ok(Locked::Unneeded)
        }

        fn share_segment(_: &mut SqliteConnection, _: i64) -> StoreResult<Locked<bool>> {
            Ok(Locked::Unneeded)
        }

        fn share_customers(_: &mut SqliteConnection, _: &[i64]) -> StoreResult<Locked<Vec<i64>>> {
            Ok(Locked::Unneeded)
        }

        fn map_error(error: diesel::result::Error) -> RepoError {
            RepoError::Internal(error.to_string())
        }
    }

    fn store(url: &str, timeout: Duration) -> Store<TestDialect> {
        let builder = Pool::builder().max_size(2).min_idle(Some(0));
        Store::build(builder, Manager::new(url), timeout)
    }

    #[test]
    fn the_outage_window_opens_with_a_failure_and_closes_after_it() {
        let outage = Outage::default();
        assert!(!outage.within(FAIL_FAST_WINDOW), "no failure yet");
        outage.last_failure.store(now_millis(), Ordering::Relaxed);
        assert!(outage.within(FAIL_FAST_WINDOW));
        outage.last_failure.store(
            now_millis() - 2 * FAIL_FAST_WINDOW.as_millis() as u64,
            Ordering::Relaxed,
        );
        assert!(!outage.within(FAIL_FAST_WINDOW));
        assert!(outage.within(RECENT_FAILURE));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_connection_whose_call_failed_is_discarded_and_others_are_kept() {
        let store = store(":memory:", Duration::from_secs(5));
        store.run(|_| Ok(())).await.unwrap();
        assert_eq!(store.pool_state().open, 1, "a good connection stays pooled");
        // Not a suspect failure: the connection stays.
        let rejected: Result<(), _> = store.run(|_| fail(RepoError::NotFound)).await;
        assert!(matches!(rejected, Err(RepoError::NotFound)));
        assert_eq!(store.pool_state().open, 1);
        // A driver error mapped to Internal: the connection goes.
        let broken: Result<(), _> = store
            .run(|conn| {
                conn.batch_execute("NOT SQL")?;
                Ok(())
            })
            .await;
        assert!(matches!(broken, Err(RepoError::Internal(_))), "{broken:?}");
        assert_eq!(store.pool_state().open, 0, "the suspect connection is gone");
        // The pool reconnects on demand.
        store.ping().await.unwrap();
        assert_eq!(store.pool_state().open, 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn during_an_outage_calls_fail_fast() {
        let store = store("/nonexistent/dir/db.sqlite3", Duration::from_secs(3));
        let first = store.ping().await;
        assert!(matches!(first, Err(RepoError::Unavailable(_))), "{first:?}");
        // Within the window: no new attempt, an immediate answer.
        let started = Instant::now();
        let second = store.ping().await;
        assert!(
            matches!(second, Err(RepoError::Unavailable(_))),
            "{second:?}"
        );
        assert!(started.elapsed() < Duration::from_millis(500));
    }
}
