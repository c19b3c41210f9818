//! The change feed: every change to customers and segments is an event,
//! written by the store in the same transaction as the change.
//!
//! Stores record events as part of their writes (each write port's contract
//! says which); this module holds what an event is, how the feed is read
//! ([`EventRepository`]) and its rules ([`EventService`]).
//!
//! # Ordering
//!
//! An event's id is handed out in the order events become *listable*, which
//! is not the order their transactions started: a store lists an event only
//! once every event with a smaller id has committed or rolled back, so a
//! reader that asks for the events after the last id it saw never skips one
//! that commits late. Stores whose writers commit concurrently (PostgreSQL)
//! number committed events in a separate, serialised step,
//! [`EventRepository::publish_events`], so that ids become visible in
//! increasing order; stores whose writers are serialised number them as they
//! write.

use std::sync::Arc;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::customer::{Customer, CustomerId};
use crate::segment::{SegmentId, SegmentRef};
use crate::{Error, RepoError};

/// What changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventKind {
    /// A customer was created.
    CustomerCreated,
    /// A customer's fields, tags, metafields, profile, addresses or coupon
    /// holdings changed, or its referrer was deleted.
    CustomerUpdated,
    /// A customer was deleted.
    CustomerDeleted,
    /// A segment was created.
    SegmentCreated,
    /// A segment was renamed.
    SegmentUpdated,
    /// A segment was deleted.
    SegmentDeleted,
    /// Customers not yet in a segment were added to it.
    SegmentCustomersAdded,
    /// Members of a segment were removed from it.
    SegmentCustomersRemoved,
}

impl EventKind {
    /// Every kind, in the order of their names.
    pub const ALL: [EventKind; 8] = [
        EventKind::CustomerCreated,
        EventKind::CustomerDeleted,
        EventKind::CustomerUpdated,
        EventKind::SegmentCreated,
        EventKind::SegmentCustomersAdded,
        EventKind::SegmentCustomersRemoved,
        EventKind::SegmentDeleted,
        EventKind::SegmentUpdated,
    ];

    /// The kind's stable name, as consumers filter by it
    /// (`customer.created`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Self::CustomerCreated => "customer.created",
            Self::CustomerUpdated => "customer.updated",
            Self::CustomerDeleted => "customer.deleted",
            Self::SegmentCreated => "segment.created",
            Self::SegmentUpdated => "segment.updated",
            Self::SegmentDeleted => "segment.deleted",
            Self::SegmentCustomersAdded => "segment.customers_added",
            Self::SegmentCustomersRemoved => "segment.customers_removed",
        }
    }

    /// The kind named `name`, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.name() == name)
    }

    /// Whether the kind is about one customer (`customer.*`).
    pub fn is_customer(self) -> bool {
        matches!(
            self,
            Self::CustomerCreated | Self::CustomerUpdated | Self::CustomerDeleted
        )
    }
}

/// What an event carries, by kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventData {
    /// `customer.created` / `customer.updated`: the whole customer as it was
    /// right after the change.
    Customer(Box<Customer>),
    /// `customer.deleted`: the deleted customer's id.
    CustomerDeleted(CustomerId),
    /// `segment.created` / `segment.updated`: the segment's head after the
    /// change.
    Segment(SegmentRef),
    /// `segment.deleted`: the deleted segment's id.
    SegmentDeleted(SegmentId),
    /// `segment.customers_added` / `segment.customers_removed`: the customers
    /// actually added or removed, ascending, never empty.
    Members {
        /// The segment.
        segment: SegmentId,
        /// The customers added or removed.
        customers: Vec<CustomerId>,
    },
}

impl EventData {
    /// The customer the event is about, for `customer.*` events.
    pub fn customer_id(&self) -> Option<CustomerId> {
        match self {
            Self::Customer(customer) => Some(customer.id),
            Self::CustomerDeleted(id) => Some(*id),
            _ => None,
        }
    }

    /// Whether a filter by `customer` selects the event: a `customer.*`
    /// event about it, or a membership event that names it.
    pub fn concerns(&self, customer: CustomerId) -> bool {
        match self {
            Self::Members { customers, .. } => customers.contains(&customer),
            other => other.customer_id() == Some(customer),
        }
    }
}

/// A change, as the feed lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// Positive, increasing in the order events become listable; ids may
    /// have gaps.
    pub id: i64,
    /// What changed.
    pub kind: EventKind,
    /// When the change was made; need not increase with `id`.
    pub created_at: OffsetDateTime,
    /// What the event carries.
    pub data: EventData,
}

/// The largest page of events one read returns.
pub const MAX_EVENT_PAGE: usize = 1000;

/// The page of events a read returns when no size is asked for.
pub const DEFAULT_EVENT_PAGE: usize = 100;

/// Which events to read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventQuery {
    /// Events with a greater id; 0 reads from the oldest retained.
    pub after: i64,
    /// At most this many (1..=[`MAX_EVENT_PAGE`]).
    pub limit: usize,
    /// Only these kinds; empty means every kind.
    pub kinds: Vec<EventKind>,
    /// Only the events that concern this customer (see
    /// [`EventData::concerns`]).
    pub customer: Option<CustomerId>,
}

impl Default for EventQuery {
    fn default() -> Self {
        Self {
            after: 0,
            limit: DEFAULT_EVENT_PAGE,
            kinds: Vec::new(),
            customer: None,
        }
    }
}

/// The answer to a read of the feed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventFeed {
    /// The matching events by id ascending, at most the query's limit.
    Events(Vec<Event>),
    /// The query asked for events after an id whose successors were already
    /// deleted by retention: events before `first_kept` are gone.
    Expired {
        /// The smallest id that may still be listed (the highest deleted
        /// id plus one).
        first_kept: i64,
    },
}

/// Reads and maintains the change feed. The events themselves are written
/// by the stores' write methods, in the writes' own transactions.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait EventRepository: Send + Sync + 'static {
    /// The events matching `query`, by id ascending. MUST answer
    /// `Expired` when `0 < query.after < H`, `H` being the highest id
    /// [`purge_events`](Self::purge_events) has deleted. MUST list an event
    /// only once every event with a smaller id has committed or rolled back,
    /// so that a reader following the ids sees every event once, in order;
    /// an event may be listed a moment after its write returned.
    async fn events(&self, query: &EventQuery) -> Result<EventFeed, RepoError>;

    /// Makes committed events listable now and returns how many it
    /// assigned ids to (0 where the store assigns them as it writes). Safe to
    /// call concurrently from any number of processes; `events` publishes
    /// by itself too, this only keeps ids close to commit time.
    async fn publish_events(&self) -> Result<u64, RepoError>;

    /// Deletes at most `limit` listable events created before `before`,
    /// oldest first, and returns how many it deleted; afterwards reads with
    /// an `after` below the highest deleted id answer `Expired`.
    async fn purge_events(&self, before: OffsetDateTime, limit: usize) -> Result<u64, RepoError>;
}

/// Reading the change feed.
#[derive(Clone)]
pub struct EventService {
    events: Arc<dyn EventRepository>,
}

impl std::fmt::Debug for EventService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventService").finish_non_exhaustive()
    }
}

impl EventService {
    /// A service reading from `events`.
    pub fn new(events: Arc<dyn EventRepository>) -> Self {
        Self { events }
    }

    /// One page of the feed. The limit is clamped to 1..=[`MAX_EVENT_PAGE`]
    /// and a negative `after` read as 0.
    pub async fn read(&self, mut query: EventQuery) -> Result<EventFeed, Error> {
        query.limit = query.limit.clamp(1, MAX_EVENT_PAGE);
        query.after = query.after.max(0);
        query.kinds.sort_unstable();
        query.kinds.dedup();
        Ok(self.events.events(&query).await?)
    }

    /// Makes committed events listable (see
    /// [`EventRepository::publish_events`]); how many were numbered.
    pub async fn publish(&self) -> Result<u64, Error> {
        Ok(self.events.publish_events().await?)
    }

    /// Deletes the events created more than `retention` before `now`, in
    /// batches of [`PURGE_BATCH`], and returns how many went.
    pub async fn purge(
        &self,
        retention: time::Duration,
        now: OffsetDateTime,
    ) -> Result<u64, Error> {
        let before = now - retention;
        let mut purged = 0;
        loop {
            let batch = self.events.purge_events(before, PURGE_BATCH).await?;
            purged += batch;
            if batch < PURGE_BATCH as u64 {
                return Ok(purged);
            }
        }
    }
}

/// Events one purge statement deletes at most, so that no transaction of
/// the purge holds many locks or runs long.
pub const PURGE_BATCH: usize = 10_000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips_through_its_name() {
        for kind in EventKind::ALL {
            assert_eq!(EventKind::from_name(kind.name()), Some(kind));
        }
        assert_eq!(EventKind::from_name("customer"), None);
        let names: Vec<_> = EventKind::ALL.iter().map(|k| k.name()).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        assert_eq!(names, sorted);
    }

    #[tokio::test]
    async fn purge_goes_on_while_batches_are_full() {
        let mut store = MockEventRepository::new();
        let now = OffsetDateTime::UNIX_EPOCH + time::Duration::days(100);
        let mut answers = vec![7, PURGE_BATCH as u64, PURGE_BATCH as u64];
        store
            .expect_purge_events()
            .withf(move |before, limit| {
                *before == now - time::Duration::days(30) && *limit == PURGE_BATCH
            })
            .times(3)
            .returning(move |_, _| Ok(answers.pop().unwrap()));
        let service = EventService::new(Arc::new(store));
        let purged = service.purge(time::Duration::days(30), now).await.unwrap();
        assert_eq!(purged, 2 * PURGE_BATCH as u64 + 7);
    }

    #[tokio::test]
    async fn reads_clamp_the_limit_and_deduplicate_kinds() {
        let mut store = MockEventRepository::new();
        store
            .expect_events()
            .withf(|q| {
                q.limit == MAX_EVENT_PAGE
                    && q.after == 0
                    && q.kinds == vec![EventKind::CustomerCreated]
            })
            .returning(|_| Ok(EventFeed::Events(Vec::new())));
        let service = EventService::new(Arc::new(store));
        let query = EventQuery {
            after: -5,
            limit: 5000,
            kinds: vec![EventKind::CustomerCreated, EventKind::CustomerCreated],
            customer: None,
        };
        assert_eq!(
            service.read(query).await.unwrap(),
            EventFeed::Events(Vec::new())
        );
    }
}
