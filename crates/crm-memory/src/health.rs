//! `HealthCheck`: an in-memory store is always reachable.

use async_trait::async_trait;
use crm_domain::customer::{HealthCheck, PoolState};
use crm_domain::RepoError;

use crate::MemoryStore;

#[async_trait]
impl HealthCheck for MemoryStore {
    /// Answers once the lock can be taken (a poisoned one is recovered).
    async fn ping(&self) -> Result<(), RepoError> {
        drop(self.read());
        Ok(())
    }

    /// One connection, always open and idle: there is no pool to wait for.
    fn pool_state(&self) -> PoolState {
        PoolState {
            idle: 1,
            open: 1,
            max: 1,
        }
    }
}
