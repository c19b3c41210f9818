//! What is particular to SQLite: the connection type, transaction flavours
//! (writers start with `BEGIN IMMEDIATE`, so they queue on the busy timeout
//! instead of failing on a lock upgrade), bind limits, and the reading of
//! constraint errors from SQLite's messages.

use crm_domain::customer::model::NO_IDENTITY;
use crm_domain::{FieldErrors, RepoError};
use diesel::connection::Connection;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};

use crm_diesel::{Dialect, Locked, StoreResult};

use crate::schema::{customers, segment_memberships};

type Conn = diesel::sqlite::SqliteConnection;

/// The SQLite dialect of the shared Diesel storage code.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sqlite;

impl Dialect for Sqlite {
    type Backend = diesel::sqlite::Sqlite;
    type Connection = Conn;
    type Instant = diesel::sql_types::TimestamptzSqlite;

    /// SQLite binds each id of `IN (...)` separately, up to 32 766 per
    /// statement.
    const MAX_BIND_IDS: usize = 10_000;
    /// Rows per multi-row INSERT (two parameters each).
    const INSERT_CHUNK: usize = 5_000;

    /// A deferred transaction: SQLite reads from one snapshot inside it.
    fn read_transaction<T>(
        conn: &mut Conn,
        f: impl FnOnce(&mut Conn) -> StoreResult<T>,
    ) -> StoreResult<T> {
        conn.transaction(f)
    }

    /// `BEGIN IMMEDIATE`: takes the write lock up front, so concurrent
    /// writers wait their turn (busy timeout) rather than deadlock on an
    /// upgrade.
    /// `BEGIN IMMEDIATE`, as every write transaction here.
    fn begin_unit(conn: &mut Conn) -> StoreResult<()> {
        Ok(
            diesel::connection::AnsiTransactionManager::begin_transaction_sql(
                conn,
                "BEGIN IMMEDIATE",
            )?,
        )
    }

    fn write_transaction<T>(
        conn: &mut Conn,
        f: impl FnOnce(&mut Conn) -> StoreResult<T>,
    ) -> StoreResult<T> {
        conn.immediate_transaction(f)
    }

    /// SQLite counts the rows (it keeps no counter).
    fn count_all_customers(conn: &mut Conn) -> StoreResult<i64> {
        Ok(customers::table.count().get_result(conn)?)
    }

    /// SQLite counts the segment's memberships.
    fn count_segment_members(conn: &mut Conn, id: i64) -> StoreResult<i64> {
        Ok(segment_memberships::table
            .filter(segment_memberships::segment_id.eq(id))
            .count()
            .get_result(conn)?)
    }

    /// No row locks: the write transaction already holds the database's
    /// single write lock, which serialises writers and keeps rows until
    /// commit. The shared code checks that the rows exist.
    fn lock_customer(_: &mut Conn, _: i64) -> StoreResult<Locked<bool>> {
        Ok(Locked::Unneeded)
    }

    fn lock_client(_: &mut Conn, _: &str) -> StoreResult<Locked<bool>> {
        Ok(Locked::Unneeded)
    }

    fn share_segment(_: &mut Conn, _: i64) -> StoreResult<Locked<bool>> {
        Ok(Locked::Unneeded)
    }

    fn share_customers(_: &mut Conn, _: &[i64]) -> StoreResult<Locked<Vec<i64>>> {
        Ok(Locked::Unneeded)
    }

    fn map_error(error: DieselError) -> RepoError {
        map_error(error)
    }
}

fn map_error(error: DieselError) -> RepoError {
    match error {
        DieselError::NotFound => RepoError::NotFound,
        DieselError::DatabaseError(kind, info) => {
            let message = info.message();
            match kind {
                DatabaseErrorKind::UniqueViolation => match duplicate_field(message) {
                    Some(field) => RepoError::Duplicate { field },
                    None => RepoError::Internal(format!("unexpected unique violation: {message}")),
                },
                // SQLite does not say which foreign key failed. Referrers
                // and segment members are checked before writing, so what
                // remains is a parent removed while a child was written.
                DatabaseErrorKind::ForeignKeyViolation => RepoError::NotFound,
                DatabaseErrorKind::CheckViolation
                    if message.contains("customers_identity_check") =>
                {
                    RepoError::Rejected(FieldErrors::single(FieldErrors::NON_FIELD, NO_IDENTITY))
                }
                _ if is_busy(message) => {
                    RepoError::Unavailable(format!("database busy: {message}"))
                }
                _ => RepoError::Internal(format!("database error: {message}")),
            }
        }
        other => RepoError::Internal(format!("database error: {other}")),
    }
}

fn is_busy(message: &str) -> bool {
    message.contains("database is locked") || message.contains("database is busy")
}

/// SQLite names the clashing column (`customers.mobile`) or, for an
/// expression index, the index (`index 'customers_email_key'`).
fn duplicate_field(message: &str) -> Option<&'static str> {
    let known = [
        ("customers.mobile", "mobile"),
        ("customers_mobile_key", "mobile"),
        ("customers_email_key", "email"),
        ("customers.email", "email"),
        ("customers.referral_code", "referral_code"),
        ("customers_referral_code_key", "referral_code"),
        ("customers.multipass_identifier", "multipass_identifier"),
        ("customers_multipass_identifier_key", "multipass_identifier"),
        ("oauth_clients.id", "client_id"),
    ];
    known
        .iter()
        .find(|(needle, _)| message.contains(needle))
        .map(|(_, field)| *field)
}

#[cfg(test)]
mod tests {
    use super::duplicate_field;

    #[test]
    fn unique_messages_name_the_field() {
        assert_eq!(
            duplicate_field("UNIQUE constraint failed: customers.mobile"),
            Some("mobile")
        );
        assert_eq!(
            duplicate_field("UNIQUE constraint failed: index 'customers_email_key'"),
            Some("email")
        );
        assert_eq!(duplicate_field("UNIQUE constraint failed: other.x"), None);
    }
}
