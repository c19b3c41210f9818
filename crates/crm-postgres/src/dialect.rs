//! What is particular to PostgreSQL: the connection type, transaction
//! flavours, row locks, bind limits, and the names of the constraints that
//! turn driver errors into domain errors.

use crm_domain::customer::model::NO_IDENTITY;
use crm_domain::{FieldErrors, RepoError};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};

use crm_diesel::{Dialect, Locked, PageCount, StoreResult};

use crate::schema::{customers, oauth_clients, segments};

type Conn = diesel::pg::PgConnection;

/// The PostgreSQL dialect of the shared Diesel storage code.
#[derive(Debug, Clone, Copy, Default)]
pub struct Postgres;

impl Dialect for Postgres {
    type Backend = diesel::pg::Pg;
    type Connection = Conn;
    type Instant = diesel::sql_types::Timestamptz;

    /// `eq_any` binds one array parameter here, so any number of ids fits.
    const MAX_BIND_IDS: usize = usize::MAX;
    /// Rows per multi-row INSERT: well under the 65 535 bind parameters limit.
    const INSERT_CHUNK: usize = 10_000;

    /// A read-only REPEATABLE READ transaction: a page's count and rows come
    /// from one snapshot.
    fn read_transaction<T>(
        conn: &mut Conn,
        f: impl FnOnce(&mut Conn) -> StoreResult<T>,
    ) -> StoreResult<T> {
        conn.build_transaction()
            .read_only()
            .repeatable_read()
            .run(f)
    }

    /// Every read is one statement (`crate::documents`).
    const DOCUMENT_READS: bool = true;

    fn customer_document(conn: &mut Conn, id: i64) -> Option<StoreResult<Option<String>>> {
        Some(crate::documents::customer(conn, id))
    }

    fn summaries_document(
        conn: &mut Conn,
        ids: &[i64],
        segments: bool,
    ) -> Option<StoreResult<String>> {
        Some(crate::documents::summaries(conn, ids, segments))
    }

    fn page_document(
        conn: &mut Conn,
        ids: &dyn diesel::query_builder::QueryFragment<diesel::pg::Pg>,
        offset: i64,
        limit: i64,
        count: PageCount<'_, diesel::pg::Pg>,
    ) -> Option<StoreResult<String>> {
        Some(crate::documents::page(conn, ids, offset, limit, count))
    }

    /// READ COMMITTED, like every write transaction here.
    fn begin_unit(conn: &mut Conn) -> StoreResult<()> {
        use diesel::connection::TransactionManager;
        Ok(diesel::connection::AnsiTransactionManager::begin_transaction(conn)?)
    }

    fn write_transaction<T>(
        conn: &mut Conn,
        f: impl FnOnce(&mut Conn) -> StoreResult<T>,
    ) -> StoreResult<T> {
        conn.transaction(f)
    }

    fn count_all_customers(conn: &mut Conn) -> StoreResult<i64> {
        count_all_customers(conn)
    }

    fn count_segment_members(conn: &mut Conn, id: i64) -> StoreResult<i64> {
        count_segment_members(conn, id)
    }

    /// `SELECT ... FOR UPDATE` on the customer.
    fn lock_customer(conn: &mut Conn, id: i64) -> StoreResult<Locked<bool>> {
        Ok(Locked::Found(
            customers::table
                .find(id)
                .select(customers::id)
                .for_update()
                .first::<i64>(conn)
                .optional()?
                .is_some(),
        ))
    }

    /// `SELECT ... FOR UPDATE` on the OAuth client.
    fn lock_client(conn: &mut Conn, id: &str) -> StoreResult<Locked<bool>> {
        Ok(Locked::Found(
            oauth_clients::table
                .find(id)
                .select(oauth_clients::id)
                .for_update()
                .first::<String>(conn)
                .optional()?
                .is_some(),
        ))
    }

    /// `FOR KEY SHARE` on the segment (it cannot be deleted meanwhile, but
    /// others may still read and rename it).
    fn share_segment(conn: &mut Conn, id: i64) -> StoreResult<Locked<bool>> {
        Ok(Locked::Found(
            segments::table
                .find(id)
                .select(segments::id)
                .for_key_share()
                .first::<i64>(conn)
                .optional()?
                .is_some(),
        ))
    }

    /// `FOR KEY SHARE` on each customer found.
    fn share_customers(conn: &mut Conn, ids: &[i64]) -> StoreResult<Locked<Vec<i64>>> {
        Ok(Locked::Found(
            customers::table
                .filter(customers::id.eq_any(ids))
                .select(customers::id)
                .for_key_share()
                .load(conn)?,
        ))
    }

    fn map_error(error: DieselError) -> RepoError {
        map_error(error)
    }

    /// `SHARE` conflicts with the `ROW EXCLUSIVE` lock every insert, update
    /// and delete takes: it waits for the writes in progress to end and
    /// holds new ones until the cursor page has been read (a few
    /// milliseconds); READ COMMITTED then gives the page's statements a
    /// snapshot in which every write is final.
    fn settle_customer_writes(conn: &mut Conn) -> StoreResult<()> {
        use diesel::connection::SimpleConnection;
        conn.batch_execute("LOCK TABLE customers IN SHARE MODE")?;
        Ok(())
    }

    /// Writers commit concurrently: an event gets its id when published.
    const PUBLISHES_EVENTS: bool = true;

    const CLAIM_LOCK: &'static str = " FOR UPDATE SKIP LOCKED";

    fn publish_events(conn: &mut Conn, limit: i64) -> StoreResult<u64> {
        crate::events::publish(conn, limit)
    }
}

diesel::table! {
    /// The number of customers, as the sum of its rows; kept by triggers
    /// (migration `2026-11-30-000004_performance`).
    customer_count_shards (shard) {
        shard -> SmallInt,
        n -> BigInt,
    }
}

diesel::table! {
    /// The number of members of each segment, as the sum of its rows with
    /// that `segment_id`; kept by triggers like `customer_count_shards`.
    segment_member_counts (segment_id, shard) {
        segment_id -> BigInt,
        shard -> SmallInt,
        n -> BigInt,
    }
}

/// The number of customers, exact in the transaction's snapshot, without
/// counting a million rows: triggers keep it in `customer_count_shards`,
/// spread over a few rows so concurrent inserts do not queue on one row
/// lock. (The rows are summed here: a plain typed query is a prepared
/// statement Diesel caches, an SQL aggregate literal would not be.)
fn count_all_customers(conn: &mut Conn) -> StoreResult<i64> {
    let shards: Vec<i64> = customer_count_shards::table
        .select(customer_count_shards::n)
        .load(conn)?;
    Ok(shards.iter().sum())
}

/// The number of members of segment `id` (0 for no such segment), kept by
/// triggers in `segment_member_counts` like the customers' count.
fn count_segment_members(conn: &mut Conn, id: i64) -> StoreResult<i64> {
    let shards: Vec<i64> = segment_member_counts::table
        .filter(segment_member_counts::segment_id.eq(id))
        .select(segment_member_counts::n)
        .load(conn)?;
    Ok(shards.iter().sum())
}

fn map_error(error: DieselError) -> RepoError {
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
    let lower = message.to_ascii_lowercase();
    // Text PostgreSQL cannot store (a NUL, bytes that are not UTF-8) is bad
    // input, not a fault: the connection is healthy and stays pooled. The
    // edges refuse such text before it gets here; this is the backstop.
    let unstorable = [
        "invalid byte sequence for encoding",
        "has no equivalent in encoding",
        "unsupported unicode escape sequence",
    ];
    if unstorable.iter().any(|needle| lower.contains(needle)) {
        return RepoError::Rejected(FieldErrors::single(
            FieldErrors::NON_FIELD,
            crm_domain::text::NULL_CHARACTER,
        ));
    }
    // Connection loss and server shutdown surface as unknown errors from libpq.
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
        "oauth_clients_pkey" => "client_id",
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
        | "segment_memberships_segment_id_fkey"
        | "oauth_tokens_client_id_fkey" => RepoError::NotFound,
        _ => RepoError::Internal(format!(
            "unexpected foreign key violation on {constraint}: {message}"
        )),
    }
}
