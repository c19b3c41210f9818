//! An in-memory storage adapter for the CRM ports: every port the SQL
//! adapters implement (`CustomerRepository`, `AddressRepository`,
//! `CouponRepository`, `SegmentRepository`, `EventRepository`,
//! `IdempotencyStore`, `WebhookRepository`, `ClientStore`, `TokenStore` and
//! `HealthCheck`: the domain's `Storage`), with the same observable rules,
//! and no I/O at all.
//!
//! It is meant for fast tests of code built on `crm-domain`: add it as a
//! dev-dependency (`crm-memory.workspace = true` inside this workspace),
//! build a [`MemoryStore`], wrap it in an `Arc` and hand it to the services
//! as every port they need. Where the domain's `mock` feature gives stores
//! that check which calls are made, this one behaves like a database: what a
//! test writes, it reads back, under the same rules. The store depends on no
//! async runtime; any executor drives it.
//!
//! ```
//! use std::sync::Arc;
//!
//! use crm_domain::customer::{CustomerChanges, CustomerService, FullName, Mobile};
//! use crm_domain::segment::{SegmentService, SegmentTitle};
//! use crm_memory::MemoryStore;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), crm_domain::Error> {
//! let store = Arc::new(MemoryStore::new());
//! let customers = CustomerService::new(store.clone(), store.clone(), store.clone());
//! let segments = SegmentService::new(store.clone());
//!
//! let created = customers
//!     .create(CustomerChanges {
//!         full_name: Some(FullName::parse("Ann Lee").unwrap()),
//!         mobile: Some(Mobile::parse("13800000001").unwrap()),
//!         ..Default::default()
//!     })
//!     .await?;
//! let vip = segments.create(SegmentTitle::parse("VIP").unwrap()).await?;
//! segments.add_members(vip.id, vec![created.id]).await?;
//!
//! let read = customers.get(created.id).await?;
//! assert_eq!(read.full_name, "Ann Lee");
//! assert_eq!(read.mobile, "13800000001");
//! assert_eq!(read.segments[0].title, "VIP");
//!
//! // The store keeps the uniqueness rules of the SQL adapters.
//! let again = customers
//!     .create(CustomerChanges {
//!         mobile: Some(Mobile::parse("13800000001").unwrap()),
//!         ..Default::default()
//!     })
//!     .await;
//! assert!(matches!(again, Err(crm_domain::Error::Invalid(_))));
//! # Ok(())
//! # }
//! ```
//!
//! # Invariants
//!
//! - **No I/O.** Nothing is read from or written to a file, a socket or the
//!   clock: every instant comes from the caller, as the ports define.
//! - **Units of work** (`IdempotencyStore::run_claimed`) run alone among the
//!   data writes and are undone from a snapshot when they do not commit; see
//!   the `idempotency` module.
//! - **One lock.** All state sits behind one `std::sync::RwLock`; every port
//!   call takes it once (shared for reads, exclusive for writes) and never
//!   holds it across an `.await`. Calls are therefore serialisable, which
//!   decides every race the contract describes (two creates with the same
//!   mobile, overlapping segment adds, concurrent token issues) the way the
//!   SQL adapters' constraints and row locks do. A lock poisoned by a
//!   panicking thread is recovered: writes never leave half-done state
//!   behind (next point), so the state is still consistent.
//! - **Atomic writes.** Each write first checks everything that can make it
//!   fail (existence, referrer, identity, uniqueness, missing segment
//!   members, ...) and only then mutates, with steps that cannot fail: a
//!   refused write leaves nothing behind.
//! - **Same values as the SQL stores.** Instants are stored in UTC truncated
//!   to whole microseconds; ids come from sequences and are never reused;
//!   tags and metafields are ordered by bytes; e-mails are unique under
//!   Unicode lower-casing.
//!
//! It passes the whole storage contract suite (`crm-store-contract`), like
//! the PostgreSQL and SQLite adapters.
//!
//! # Where the contract leaves a choice
//!
//! - When one write clashes on several unique values at once, the store
//!   reports `Duplicate` for the first of `mobile`, `email`, `referral_code`,
//!   `multipass_identifier` (a SQL store reports whichever index it checked
//!   first). A missing referrer is reported before any clash, and on update
//!   before a missing customer, as the SQL adapters check it first.
//! - Order and visit statistics are kept at their defaults: no port writes
//!   them. The referral figures are computed live, as the contract requires.
//! - A token whose digest is already stored is refused with `Internal` (the
//!   SQL adapters report an unexpected unique violation the same way).
//! - The store enforces the identity rule the SQL stores hold as a CHECK
//!   constraint (a customer keeps a mobile, an e-mail or a name): a write
//!   breaking it is `Rejected` under `non_field_errors`, though the services
//!   refuse it before it reaches a store.
//! - E-mails (uniqueness and the `email` filter) and the `search` filter
//!   compare under Rust's `str::to_lowercase`, which is full Unicode
//!   lower-casing; a database's `lower()` may differ in rare
//!   context-dependent cases (a final sigma).
//! - Instants given as filter bounds or as the token purge's `now` are
//!   truncated to the microsecond before comparing, as the SQL stores bind
//!   them; so are the instants of delivery claims and retries.
//! - Lease tokens of claimed deliveries count up from 1. A claim of
//!   deliveries, or the record of an attempt, made while a unit of work of
//!   another task runs waits for it to end, like every data write.
//! - Retrying a delivery whose attempt is running (claimed, the claim not
//!   lapsed) keeps the claim: that attempt's outcome is still recorded, and
//!   the delivery is claimed again only once the claim is released or lapses.
//! - Retention stops at the oldest event with a pending delivery, even when
//!   later events have none: what it deletes is always the oldest events.

#![warn(missing_docs)]
#![forbid(unsafe_code)]

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::fmt;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use crm_domain::auth::{Client, TokenRecord};
use crm_domain::customer::{Address, Gender, Metafield, Profile, Statistics};
use crm_domain::event::Event;
use crm_domain::time_util::truncate_micros;
use time::{Date, OffsetDateTime, UtcOffset};

mod addresses;
mod coupons;
mod customers;
mod events;
mod health;
mod idempotency;
mod oauth;
mod segments;
mod webhooks;

/// A complete storage adapter holding everything in memory.
///
/// Cheap to build (one per test is the intended use) and safe to share
/// between threads and tasks; see the crate documentation for its rules.
#[derive(Default)]
pub struct MemoryStore {
    state: RwLock<State>,
    /// Held by a unit of work for its whole run, and briefly by every data
    /// write of another task (see `idempotency`).
    unit_gate: tokio::sync::Mutex<()>,
}

impl MemoryStore {
    /// An empty store: no customers, segments, webhook endpoints, clients or
    /// tokens, and every id sequence at 1.
    pub fn new() -> Self {
        Self::default()
    }

    /// The state for reading. A poisoned lock is recovered: no write leaves
    /// partial changes behind, so the state is consistent.
    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|poisoned| {
            self.state.clear_poison();
            poisoned.into_inner()
        })
    }

    /// The state for a write to customers, segments, events, webhook
    /// endpoints or deliveries: waits while a unit of work of another task
    /// runs (see `idempotency`).
    async fn write_data(&self) -> DataWrite<'_> {
        let gate = if self.in_unit() {
            None
        } else {
            Some(self.unit_gate.lock().await)
        };
        DataWrite {
            state: self.write(),
            _gate: gate,
        }
    }

    /// The state for writing; a poisoned lock is recovered as in `read`.
    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|poisoned| {
            self.state.clear_poison();
            poisoned.into_inner()
        })
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.read();
        f.debug_struct("MemoryStore")
            .field("customers", &state.customers.len())
            .field("segments", &state.segments.len())
            .field("clients", &state.clients.len())
            .field("tokens", &state.tokens.len())
            .field("endpoints", &state.endpoints.len())
            .field("deliveries", &state.deliveries.len())
            .finish()
    }
}

/// The state, held for a data write, with the unit gate when it was taken.
struct DataWrite<'a> {
    state: RwLockWriteGuard<'a, State>,
    _gate: Option<tokio::sync::MutexGuard<'a, ()>>,
}

impl std::ops::Deref for DataWrite<'_> {
    type Target = State;
    fn deref(&self) -> &State {
        &self.state
    }
}

impl std::ops::DerefMut for DataWrite<'_> {
    fn deref_mut(&mut self) -> &mut State {
        &mut self.state
    }
}

/// Everything the store holds.
#[derive(Default)]
struct State {
    /// The last ids handed out; never reused.
    last_customer_id: i64,
    last_address_id: i64,
    last_segment_id: i64,
    customers: BTreeMap<i64, CustomerRecord>,
    /// The unique values of customers: (field, key) to the owning customer.
    /// E-mails are keyed lower-cased; blank values are not indexed.
    unique: HashMap<(&'static str, String), i64>,
    segments: BTreeMap<i64, SegmentRecord>,
    clients: HashMap<String, Client>,
    /// Tokens by digest.
    tokens: HashMap<String, TokenRecord>,
    /// The change feed, by id; `last_event_id` is never reused.
    events: VecDeque<Event>,
    last_event_id: i64,
    /// The highest event id the purge deleted.
    purged_through: i64,
    /// Idempotency keys by (client, key).
    idempotency: HashMap<(String, String), idempotency::KeyRecord>,
    /// Webhook endpoints by id; `last_endpoint_id` is never reused.
    last_endpoint_id: i64,
    endpoints: BTreeMap<i64, webhooks::EndpointRecord>,
    /// Webhook deliveries by id (so by age); `last_delivery_id` is never
    /// reused.
    last_delivery_id: i64,
    deliveries: BTreeMap<i64, webhooks::DeliveryRecord>,
    /// The last lease token a claim of deliveries got. Never restored by an
    /// undone unit of work, so no token is handed out twice.
    last_lease: i64,
}

/// A customer with everything it owns.
#[derive(Clone)]
struct CustomerRecord {
    fields: CustomerFields,
    /// Sorted by bytes.
    tags: Vec<String>,
    /// Sorted by (namespace, key), by bytes.
    metafields: Vec<Metafield>,
    /// By address id.
    addresses: BTreeMap<i64, Address>,
    /// Coupon id to when it was granted.
    coupons: BTreeMap<i64, OffsetDateTime>,
    /// The segments it is a member of (mirrors `SegmentRecord::members`).
    segments: BTreeSet<i64>,
    /// The customers naming this one as their referrer (mirrors
    /// `CustomerFields::referrer`).
    referred: BTreeSet<i64>,
}

/// The customer's own values (its row, in SQL terms).
#[derive(Clone)]
struct CustomerFields {
    mobile: String,
    full_name: String,
    gender: Gender,
    email: String,
    birthday: Option<Date>,
    avatar: String,
    note: String,
    accepts_marketing: bool,
    referral_code: String,
    referrer: Option<i64>,
    multipass_identifier: Option<String>,
    wechat_nickname: Option<String>,
    profile: Profile,
    /// The stored figures; the referral ones are computed when read.
    statistics: Statistics,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

impl CustomerFields {
    /// The values a uniqueness rule covers, with the key they are indexed by.
    fn unique_keys(&self) -> Vec<(&'static str, String)> {
        let mut keys = Vec::with_capacity(4);
        if !self.mobile.is_empty() {
            keys.push(("mobile", self.mobile.clone()));
        }
        if !self.email.is_empty() {
            keys.push(("email", email_key(&self.email)));
        }
        if !self.referral_code.is_empty() {
            keys.push(("referral_code", self.referral_code.clone()));
        }
        if let Some(identifier) = &self.multipass_identifier {
            keys.push(("multipass_identifier", identifier.clone()));
        }
        keys
    }
}

/// A segment with its members.
#[derive(Clone)]
struct SegmentRecord {
    title: String,
    /// Kept as the SQL stores keep them, though no port reads them yet.
    #[allow(dead_code)]
    created_at: OffsetDateTime,
    #[allow(dead_code)]
    updated_at: OffsetDateTime,
    /// Customer ids (mirrors `CustomerRecord::segments`).
    members: BTreeSet<i64>,
}

/// How e-mails are compared: Unicode lower-casing, as `lower()` does in
/// PostgreSQL.
fn email_key(email: &str) -> String {
    email.to_lowercase()
}

/// An instant as the SQL stores keep it: in UTC, to the microsecond.
fn stored(t: OffsetDateTime) -> OffsetDateTime {
    truncate_micros(t.to_offset(UtcOffset::UTC))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crm_domain::customer::{
        CustomerChanges, CustomerRepository, FullName, HealthCheck, PoolState,
    };
    use crm_domain::time_util::now_micros;
    use time::macros::datetime;

    use super::*;

    fn named(name: &str) -> CustomerChanges {
        CustomerChanges {
            full_name: Some(FullName::parse(name).unwrap()),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn a_poisoned_lock_is_recovered() {
        let store = Arc::new(MemoryStore::new());
        let kept = store.create(&named("Kept"), now_micros()).await.unwrap();
        let poisoner = Arc::clone(&store);
        let panicked = std::thread::spawn(move || {
            let _guard = poisoner.write();
            panic!("a panic while holding the lock");
        })
        .join();
        assert!(panicked.is_err());
        assert!(store.state.is_poisoned());
        store.ping().await.expect("ping after a panic");
        assert_eq!(store.get(kept.id).await.unwrap(), kept);
        store.create(&named("Later"), now_micros()).await.unwrap();
        assert!(!store.state.is_poisoned(), "the poison is cleared");
    }

    #[tokio::test]
    async fn ids_are_never_reused() {
        let store = MemoryStore::new();
        let first = store.create(&named("First"), now_micros()).await.unwrap();
        store.delete(first.id, now_micros()).await.unwrap();
        let second = store.create(&named("Second"), now_micros()).await.unwrap();
        assert!(second.id > first.id);
    }

    #[tokio::test]
    async fn instants_are_kept_in_utc_to_the_microsecond() {
        let store = MemoryStore::new();
        let given = datetime!(2026-01-02 03:04:05.123456789 +08:00);
        let c = store.create(&named("Ann"), given).await.unwrap();
        let expected = datetime!(2026-01-01 19:04:05.123456 UTC);
        assert_eq!(c.created_at, expected);
        assert_eq!(c.created_at.offset(), UtcOffset::UTC);
        assert_eq!(store.get(c.id).await.unwrap().updated_at, expected);
    }

    #[test]
    fn the_pool_is_one_idle_connection() {
        let state = MemoryStore::new().pool_state();
        assert_eq!(
            state,
            PoolState {
                idle: 1,
                open: 1,
                max: 1
            }
        );
    }
}
