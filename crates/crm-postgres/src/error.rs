//! Turns Diesel and pool errors into the domain's `RepoError`: constraint
//! violations become `Duplicate` / `Rejected` / `NotFound` by constraint name;
//! connection trouble becomes `Unavailable`; the rest is opaque `Internal`.

use crm_domain::customer::model::NO_IDENTITY;
use crm_domain::{FieldErrors, RepoError};
use diesel::result::{DatabaseErrorKind, Error as DieselError};

/// A `RepoError` that Diesel errors convert into, so `?` works inside
/// transactions.
#[derive(Debug)]
pub struct StoreError(pub RepoError);

impl From<RepoError> for StoreError {
    fn from(error: RepoError) -> Self {
        Self(error)
    }
}

impl From<DieselError> for StoreError {
    fn from(error: DieselError) -> Self {
        Self(map_diesel_error(error))
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Shorthand for returning a domain error from inside a transaction.
pub fn fail<T>(error: RepoError) -> StoreResult<T> {
    Err(StoreError(error))
}

pub fn map_diesel_error(error: DieselError) -> RepoError {
    match error {
        DieselError::NotFound => RepoError::NotFound,
        DieselError::DatabaseError(kind, info) => {
            let constraint = info.constraint_name().unwrap_or("");
            match kind {
                DatabaseErrorKind::UniqueViolation => match duplicate_field(constraint) {
                    Some(field) => RepoError::Duplicate { field },
                    None => RepoError::Internal(format!(
                        "unexpected unique violation on {constraint}: {}",
                        info.message()
                    )),
                },
                DatabaseErrorKind::ForeignKeyViolation => foreign_key(constraint, info.message()),
                DatabaseErrorKind::CheckViolation if constraint == "customers_identity_check" => {
                    RepoError::Rejected(FieldErrors::single(FieldErrors::NON_FIELD, NO_IDENTITY))
                }
                DatabaseErrorKind::ClosedConnection => RepoError::Unavailable(format!(
                    "database connection closed: {}",
                    info.message()
                )),
                DatabaseErrorKind::SerializationFailure => {
                    RepoError::Unavailable(format!("transaction conflict: {}", info.message()))
                }
                _ => classify_unknown(info.message()),
            }
        }
        other => RepoError::Internal(format!("database error: {other}")),
    }
}

fn classify_unknown(message: &str) -> RepoError {
    // Connection loss and server shutdown surface as unknown errors from libpq.
    let lower = message.to_ascii_lowercase();
    let unavailable = [
        "server closed the connection",
        "terminating connection",
        "connection refused",
        "could not connect",
        "no connection to the server",
        "the database system is",
        "canceling statement due to statement timeout",
        "ssl connection has been closed",
    ];
    if unavailable.iter().any(|needle| lower.contains(needle)) {
        RepoError::Unavailable(format!("database unavailable: {message}"))
    } else {
        RepoError::Internal(format!("database error: {message}"))
    }
}

fn duplicate_field(constraint: &str) -> Option<&'static str> {
    Some(match constraint {
        "customers_mobile_key" => "mobile",
        "customers_email_key" => "email",
        "customers_referral_code_key" => "referral_code",
        "customers_multipass_identifier_key" => "multipass_identifier",
        _ => return None,
    })
}

fn foreign_key(constraint: &str, message: &str) -> RepoError {
    match constraint {
        "customers_referrer_id_fkey" => RepoError::Rejected(FieldErrors::single(
            "referrer",
            "Invalid pk - object does not exist.",
        )),
        "segment_memberships_customer_id_fkey" => RepoError::Rejected(FieldErrors::single(
            "customer_id",
            "A customer in the list does not exist.",
        )),
        // The parent of a sub-resource vanished while it was being written.
        "addresses_customer_id_fkey"
        | "customer_coupons_customer_id_fkey"
        | "customer_tags_customer_id_fkey"
        | "customer_metafields_customer_id_fkey"
        | "segment_memberships_segment_id_fkey" => RepoError::NotFound,
        _ => RepoError::Internal(format!(
            "unexpected foreign key violation on {constraint}: {message}"
        )),
    }
}
