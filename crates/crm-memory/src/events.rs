//! `EventRepository`: the change feed. Calls are serialised by the store's
//! one lock, so an event is numbered as it is recorded and listable at once.

use async_trait::async_trait;
use crm_domain::event::{Event, EventData, EventFeed, EventKind, EventQuery, EventRepository};
use crm_domain::RepoError;
use time::OffsetDateTime;

use crate::{customers, stored, webhooks, MemoryStore, State};

/// Records an event (the write's last, infallible step) with its webhook
/// deliveries. Every event of the store is recorded here.
pub(crate) fn record(state: &mut State, kind: EventKind, now: OffsetDateTime, data: EventData) {
    state.last_event_id += 1;
    let id = state.last_event_id;
    webhooks::record_deliveries(state, id, kind, now);
    state.events.push_back(Event {
        id,
        kind,
        created_at: now,
        data,
    });
}

/// Records `customer.updated` with customer `id` as it now is.
pub(crate) fn customer_updated(state: &mut State, now: OffsetDateTime, id: i64) {
    if let Ok(customer) = customers::customer(state, id) {
        record(
            state,
            EventKind::CustomerUpdated,
            now,
            EventData::Customer(Box::new(customer)),
        );
    }
}

#[async_trait]
impl EventRepository for MemoryStore {
    async fn events(&self, query: &EventQuery) -> Result<EventFeed, RepoError> {
        let state = self.read();
        if query.after > 0 && query.after < state.purged_through {
            return Ok(EventFeed::Expired {
                first_kept: state.purged_through + 1,
            });
        }
        let start = state.events.partition_point(|e| e.id <= query.after);
        Ok(EventFeed::Events(
            state
                .events
                .range(start..)
                .filter(|e| query.kinds.is_empty() || query.kinds.contains(&e.kind))
                .filter(|e| query.customer.is_none_or(|c| e.data.concerns(c)))
                .take(query.limit)
                .cloned()
                .collect(),
        ))
    }

    async fn publish_events(&self) -> Result<u64, RepoError> {
        Ok(0)
    }

    async fn purge_events(&self, before: OffsetDateTime, limit: usize) -> Result<u64, RepoError> {
        let before = stored(before);
        let mut state = self.write_data().await;
        // An event with a pending delivery is kept, and so is every later
        // one: the purge deletes the oldest events only.
        let kept_from = webhooks::oldest_pending_event(&state).unwrap_or(i64::MAX);
        let purge = state
            .events
            .iter()
            .take(limit)
            .take_while(|e| e.created_at < before && e.id < kept_from)
            .count();
        let last = state.events.drain(..purge).next_back();
        if let Some(last) = last {
            state.purged_through = state.purged_through.max(last.id);
            webhooks::forget_deliveries_through(&mut state, last.id);
        }
        Ok(u64::try_from(purge).unwrap_or(u64::MAX))
    }
}
