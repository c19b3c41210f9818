//! The store: a connection pool, and the way every port call runs — on the
//! blocking thread pool, taking its connection there, inside the backend's
//! read or write transaction.

use crm_domain::customer::{HealthCheck, PoolState};
use crm_domain::RepoError;
use diesel::r2d2::{ConnectionManager, Pool};
use diesel::RunQueryDsl;

use super::error::{StoreError, StoreResult};
use crate::backend::Conn;

/// A Diesel store over a pool; cheap to clone (it shares the pool).
#[derive(Clone)]
pub struct Store {
    pool: Pool<ConnectionManager<Conn>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("state", &self.pool.state())
            .finish()
    }
}

impl Store {
    pub fn from_pool(pool: Pool<ConnectionManager<Conn>>) -> Self {
        Self { pool }
    }

    /// Runs `f` with a pooled connection on the blocking thread pool.
    pub(crate) async fn run<T, F>(&self, f: F) -> Result<T, RepoError>
    where
        F: FnOnce(&mut Conn) -> StoreResult<T> + Send + 'static,
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
