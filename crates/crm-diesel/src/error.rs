//! The error type of the storage code: a domain `RepoError`, or a Diesel
//! error not yet mapped (the dialect maps it when the call returns, see
//! [`Dialect::map_error`](crate::Dialect::map_error)), so `?` works on both
//! inside transactions.

use crm_domain::RepoError;
use diesel::result::Error as DieselError;

use crate::Dialect;

#[derive(Debug)]
pub enum StoreError {
    /// A domain outcome decided by the storage code.
    Repo(RepoError),
    /// A driver error, mapped by the dialect once the call is over.
    Diesel(DieselError),
}

impl StoreError {
    /// The domain error, driver errors mapped by dialect `D`.
    pub fn into_repo<D: Dialect>(self) -> RepoError {
        match self {
            Self::Repo(error) => error,
            Self::Diesel(error) => D::map_error(error),
        }
    }
}

impl From<RepoError> for StoreError {
    fn from(error: RepoError) -> Self {
        Self::Repo(error)
    }
}

impl From<DieselError> for StoreError {
    fn from(error: DieselError) -> Self {
        Self::Diesel(error)
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Shorthand for returning a domain error from inside a transaction.
pub fn fail<T>(error: RepoError) -> StoreResult<T> {
    Err(StoreError::Repo(error))
}
