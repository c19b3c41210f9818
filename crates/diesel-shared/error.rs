//! The error type of the shared storage code: a domain `RepoError` that
//! Diesel errors convert into (through the backend's mapping), so `?` works
//! inside transactions.

use crm_domain::RepoError;
use diesel::result::Error as DieselError;

#[derive(Debug)]
pub struct StoreError(pub RepoError);

impl From<RepoError> for StoreError {
    fn from(error: RepoError) -> Self {
        Self(error)
    }
}

impl From<DieselError> for StoreError {
    fn from(error: DieselError) -> Self {
        Self(crate::backend::map_error(error))
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Shorthand for returning a domain error from inside a transaction.
pub fn fail<T>(error: RepoError) -> StoreResult<T> {
    Err(StoreError(error))
}
