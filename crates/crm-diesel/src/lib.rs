//! The Diesel storage code shared by the PostgreSQL and SQLite adapters.
//!
//! What differs between the backends is one trait, [`Dialect`], that the
//! compiler checks: the backend and connection types, the SQL type of
//! timestamps, bind limits, the transaction flavours, row locks, the counters
//! and the mapping of driver errors onto the domain's `RepoError`.
//!
//! What does not differ is written and compiled once here:
//!
//! - [`Store<D>`]: the r2d2 pool, the permits that bound blocking threads, and
//!   the fail-fast handling of database outages (with its unit tests);
//! - [`StoreError`]: the error the queries return, mapped by the dialect;
//! - the query code, one body per port. It is not generic over the dialect:
//!   Diesel's `table!` types are concrete per backend (the timestamp columns
//!   are `Timestamptz` on PostgreSQL and `TimestamptzSqlite` on SQLite), and
//!   while a generic read or delete needs one readable bound, an upsert
//!   needs Diesel's sealed backend traits. Instead each adapter crate
//!   instantiates the query bodies once over its own schema with
//!   [`diesel_adapter!`]; see docs/ARCHITECTURE.md.

pub mod document;
mod error;
mod queries;
pub mod replica;
pub mod snapshot;
pub mod store;

pub use document::{CountOver, PageCount};
pub use error::{fail, StoreError, StoreResult};
pub use store::{Manager, PooledConn, Store};

use crm_domain::RepoError;

/// What a dialect's row lock gives back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Locked<T> {
    /// The locking query ran and found this (whether the row exists, or
    /// which of the rows do).
    Found(T),
    /// This backend takes no row locks (its write transaction already holds
    /// the whole database): the shared code runs the plain query instead.
    Unneeded,
}

/// What a Diesel backend supplies to the shared storage code.
///
/// The transaction functions and the locks get a connection of the dialect,
/// with the schema of its crate; the locks answer whether the row exists.
pub trait Dialect: 'static + Send + Sync + Sized {
    /// The Diesel backend (`diesel::pg::Pg`, `diesel::sqlite::Sqlite`).
    type Backend: diesel::backend::Backend;
    /// The connection the pool holds.
    type Connection: diesel::Connection<Backend = Self::Backend>
        + diesel::r2d2::R2D2Connection
        + Send
        + 'static;
    /// The SQL type of the timestamp columns.
    type Instant: diesel::sql_types::SqlType;

    /// How many ids one `eq_any` may bind.
    const MAX_BIND_IDS: usize;
    /// Rows per multi-row INSERT.
    const INSERT_CHUNK: usize;

    /// Runs `f` in a read-only transaction: one consistent snapshot.
    fn read_transaction<T>(
        conn: &mut Self::Connection,
        f: impl FnOnce(&mut Self::Connection) -> StoreResult<T>,
    ) -> StoreResult<T>;

    /// Whether this dialect answers reads with one statement each (the
    /// document reads below), so that a read needs no transaction to see
    /// one snapshot. Where it is false, reads run in
    /// [`read_transaction`](Self::read_transaction).
    const DOCUMENT_READS: bool = false;

    /// Customer `id` with everything related, as the customer document of
    /// [`document`], read with one statement (`Ok(None)`: no such
    /// customer). `None` where the dialect has no such statement: the shared
    /// code then reads the row and each kind of related row with a query of
    /// its own.
    fn customer_document(
        _conn: &mut Self::Connection,
        _id: i64,
    ) -> Option<StoreResult<Option<String>>> {
        None
    }

    /// The list items of the customers `ids`, in that order, as a JSON array
    /// of summary documents; `segments` says whether their segments are
    /// read. `None` where the dialect has no such statement.
    fn summaries_document(
        _conn: &mut Self::Connection,
        _ids: &[i64],
        _segments: bool,
    ) -> Option<StoreResult<String>> {
        None
    }

    /// A page document: `limit` customers from `offset` on of those whose
    /// ids the query `ids` selects, in its order (it ends with its `ORDER
    /// BY`; the dialect adds the limit and offset), with `count`, in one
    /// statement. Unless the count comes with the page
    /// ([`PageCount::WithPage`]: `ids` then selects `(id, CountOver)`), the
    /// page query is not run when `offset` is not below the count. `None`
    /// where the dialect has no such statement.
    fn page_document(
        _conn: &mut Self::Connection,
        _ids: &dyn diesel::query_builder::QueryFragment<Self::Backend>,
        _offset: i64,
        _limit: i64,
        _count: PageCount<'_, Self::Backend>,
    ) -> Option<StoreResult<String>> {
        None
    }

    /// Begins the transaction of a unit of work (an idempotent request:
    /// see `Store::unit`), left open for the unit's calls, which run in
    /// savepoints inside it; the store commits or rolls it back.
    fn begin_unit(conn: &mut Self::Connection) -> StoreResult<()>;

    /// Runs `f` in one write transaction.
    fn write_transaction<T>(
        conn: &mut Self::Connection,
        f: impl FnOnce(&mut Self::Connection) -> StoreResult<T>,
    ) -> StoreResult<T>;

    /// The number of customers, exact in the transaction's snapshot.
    fn count_all_customers(conn: &mut Self::Connection) -> StoreResult<i64>;

    /// The number of members of segment `id` (0 for no such segment).
    fn count_segment_members(conn: &mut Self::Connection, id: i64) -> StoreResult<i64>;

    /// Locks the customer for update until commit; whether it exists.
    fn lock_customer(conn: &mut Self::Connection, id: i64) -> StoreResult<Locked<bool>>;

    /// Locks the OAuth client, so token issues for one client run one at a
    /// time; whether it exists.
    fn lock_client(conn: &mut Self::Connection, id: &str) -> StoreResult<Locked<bool>>;

    /// Keeps the segment from being deleted until commit; whether it exists.
    fn share_segment(conn: &mut Self::Connection, id: i64) -> StoreResult<Locked<bool>>;

    /// The ids among `ids` that name customers, each kept from being
    /// deleted until commit.
    fn share_customers(conn: &mut Self::Connection, ids: &[i64]) -> StoreResult<Locked<Vec<i64>>>;

    /// The domain meaning of a driver error (constraint names, lost
    /// connections, conflicts).
    fn map_error(error: diesel::result::Error) -> RepoError;

    /// Waits until no write to `customers` is in progress and keeps new
    /// ones waiting until the caller's transaction ends, so that what it
    /// reads next is final: a cursor page in `id` or `updated_at` order must
    /// not pass a position behind which a write in progress could commit.
    /// Runs first in a write transaction. Nothing to do where writers are
    /// serialised and the write transaction already waits for them.
    fn settle_customer_writes(_conn: &mut Self::Connection) -> StoreResult<()> {
        Ok(())
    }

    /// Whether events get their public id in a separate step,
    /// [`publish_events`](Self::publish_events), because writers commit
    /// concurrently and out of the order of their insertions. Where false,
    /// the migrations number each event as it is inserted (writers are
    /// serialised, so insertion order is commit order).
    const PUBLISHES_EVENTS: bool = false;

    /// Numbers at most `limit` events whose transactions have all ended,
    /// after the last published id, in the order they may no longer change,
    /// and returns how many; 0 without waiting when another connection is
    /// publishing. Runs inside a write transaction. Called only where
    /// [`PUBLISHES_EVENTS`](Self::PUBLISHES_EVENTS).
    fn publish_events(_conn: &mut Self::Connection, _limit: i64) -> StoreResult<u64> {
        Ok(0)
    }

    /// What ends the subquery that picks the deliveries a claim takes, so
    /// that processes claiming at once pass over each other's picks instead
    /// of waiting for them (` FOR UPDATE SKIP LOCKED`); empty where writers
    /// are serialised.
    const CLAIM_LOCK: &'static str = "";
}

/// Instantiates the shared storage code for one dialect, at the root of the
/// adapter crate:
///
/// ```ignore
/// pub struct Postgres;
/// impl crm_diesel::Dialect for Postgres { /* ... */ }
/// crm_diesel::diesel_adapter!(Postgres, PgStore, instant = diesel::sql_types::Timestamptz);
/// ```
///
/// It defines `pub mod schema` (the tables, with the dialect's timestamp
/// type, given again as `instant` and checked against the dialect's), the
/// public newtype `$store` over [`Store<$dialect>`] (it derefs to
/// it), and implements every storage port of `crm-domain` on it. The query
/// bodies are the same tokens for every dialect; each adapter type-checks
/// them against its own schema and backend.
#[macro_export]
macro_rules! diesel_adapter {
    ($dialect:ty, $store:ident, instant = $instant:ty) => {
        /// The dialect, named where the generated modules can reach it.
        type __CrmDialect = $dialect;

        /// Diesel's description of the tables (the migrations create the
        /// same tables and columns on every backend).
        pub mod schema {
            $crate::__crm_diesel_schema! {}
        }

        /// The store over this crate's dialect; cheap to clone (it shares
        /// one pool). Derefs to [`crm_diesel::Store`].
        #[derive(Clone, Debug)]
        pub struct $store($crate::Store<$dialect>);

        impl ::std::ops::Deref for $store {
            type Target = $crate::Store<$dialect>;
            fn deref(&self) -> &Self::Target {
                &self.0
            }
        }

        impl ::std::convert::From<$crate::Store<$dialect>> for $store {
            fn from(store: $crate::Store<$dialect>) -> Self {
                Self(store)
            }
        }

        #[::async_trait::async_trait]
        impl ::crm_domain::customer::HealthCheck for $store {
            async fn ping(&self) -> ::std::result::Result<(), ::crm_domain::RepoError> {
                ::crm_domain::customer::HealthCheck::ping(&self.0).await
            }

            fn pool_state(&self) -> ::crm_domain::customer::PoolState {
                ::crm_domain::customer::HealthCheck::pool_state(&self.0)
            }
        }

        /// The dialect's side of the shared code, named as the query bodies
        /// use it; every item forwards to the `Dialect` implementation.
        mod backend {
            #![allow(dead_code)]
            use super::schema;
            use diesel::prelude::*;
            use $crate::Dialect as _;
            type D = super::__CrmDialect;
            pub type Db = <D as $crate::Dialect>::Backend;
            pub type Conn = <D as $crate::Dialect>::Connection;
            // Named directly: the `table!` impls do not accept the projection
            // `<D as Dialect>::Instant` in their where-clauses.
            pub type Instant = $instant;
            /// `$instant` is the dialect's `Instant`.
            const _: fn(<D as $crate::Dialect>::Instant) -> Instant = |instant| instant;
            pub const MAX_BIND_IDS: usize = <D as $crate::Dialect>::MAX_BIND_IDS;
            pub const INSERT_CHUNK: usize = <D as $crate::Dialect>::INSERT_CHUNK;

            pub fn customer_document(
                conn: &mut Conn,
                id: i64,
            ) -> Option<$crate::StoreResult<Option<String>>> {
                D::customer_document(conn, id)
            }
            pub fn summaries_document(
                conn: &mut Conn,
                ids: &[i64],
                segments: bool,
            ) -> Option<$crate::StoreResult<String>> {
                D::summaries_document(conn, ids, segments)
            }
            pub fn page_document(
                conn: &mut Conn,
                ids: &dyn diesel::query_builder::QueryFragment<Db>,
                offset: i64,
                limit: i64,
                count: $crate::PageCount<'_, Db>,
            ) -> Option<$crate::StoreResult<String>> {
                D::page_document(conn, ids, offset, limit, count)
            }
            pub const PUBLISHES_EVENTS: bool = <D as $crate::Dialect>::PUBLISHES_EVENTS;
            pub const CLAIM_LOCK: &str = <D as $crate::Dialect>::CLAIM_LOCK;
            pub fn settle_customer_writes(conn: &mut Conn) -> $crate::StoreResult<()> {
                D::settle_customer_writes(conn)
            }
            pub fn publish_events(conn: &mut Conn, limit: i64) -> $crate::StoreResult<u64> {
                D::publish_events(conn, limit)
            }
            pub fn count_all_customers(conn: &mut Conn) -> $crate::StoreResult<i64> {
                D::count_all_customers(conn)
            }
            pub fn count_segment_members(conn: &mut Conn, id: i64) -> $crate::StoreResult<i64> {
                D::count_segment_members(conn, id)
            }
            // Where the dialect takes no row lock, whether the rows exist
            // is asked here, once for every such dialect.
            pub fn lock_customer(conn: &mut Conn, id: i64) -> $crate::StoreResult<bool> {
                match D::lock_customer(conn, id)? {
                    $crate::Locked::Found(found) => Ok(found),
                    $crate::Locked::Unneeded => customer_exists(conn, id),
                }
            }
            pub fn lock_client(conn: &mut Conn, id: &str) -> $crate::StoreResult<bool> {
                match D::lock_client(conn, id)? {
                    $crate::Locked::Found(found) => Ok(found),
                    $crate::Locked::Unneeded => Ok(schema::oauth_clients::table
                        .find(id)
                        .select(schema::oauth_clients::id)
                        .first::<String>(conn)
                        .optional()?
                        .is_some()),
                }
            }
            pub fn share_segment(conn: &mut Conn, id: i64) -> $crate::StoreResult<bool> {
                match D::share_segment(conn, id)? {
                    $crate::Locked::Found(found) => Ok(found),
                    $crate::Locked::Unneeded => Ok(schema::segments::table
                        .find(id)
                        .select(schema::segments::id)
                        .first::<i64>(conn)
                        .optional()?
                        .is_some()),
                }
            }
            pub fn share_customers(conn: &mut Conn, ids: &[i64]) -> $crate::StoreResult<Vec<i64>> {
                match D::share_customers(conn, ids)? {
                    $crate::Locked::Found(found) => Ok(found),
                    $crate::Locked::Unneeded => Ok(schema::customers::table
                        .filter(schema::customers::id.eq_any(ids))
                        .select(schema::customers::id)
                        .load(conn)?),
                }
            }
            fn customer_exists(conn: &mut Conn, id: i64) -> $crate::StoreResult<bool> {
                Ok(schema::customers::table
                    .find(id)
                    .select(schema::customers::id)
                    .first::<i64>(conn)
                    .optional()?
                    .is_some())
            }
        }

        /// The query code of every port, shared by the Diesel adapters.
        mod common {
            pub mod error {
                pub use $crate::{fail, StoreError, StoreResult};
            }
            pub mod store {
                pub use super::super::$store as Store;
            }
            pub mod rows {
                $crate::__crm_diesel_rows! {}
            }
            pub mod load {
                $crate::__crm_diesel_load! {}
            }
            pub mod customers {
                $crate::__crm_diesel_customers! {}
            }
            pub mod addresses {
                $crate::__crm_diesel_addresses! {}
            }
            pub mod coupons {
                $crate::__crm_diesel_coupons! {}
            }
            pub mod segments {
                $crate::__crm_diesel_segments! {}
            }
            pub mod oauth {
                $crate::__crm_diesel_oauth! {}
            }
            pub mod events {
                $crate::__crm_diesel_events! {}
            }
            pub mod idempotency {
                $crate::__crm_diesel_idempotency! {}
            }
            pub mod webhooks {
                $crate::__crm_diesel_webhooks! {}
            }
        }
    };
}
