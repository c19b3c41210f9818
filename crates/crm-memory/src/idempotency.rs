//! `IdempotencyStore`: claims under the store's lock, and units of work.
//!
//! A unit runs alone among the data writes: the store's unit gate (an async
//! mutex) is held by the unit from its start to its end and taken briefly by
//! every customer, address, coupon, segment, event, webhook endpoint and
//! delivery write (claims and attempts included) of any other task, so
//! those wait until the unit has ended. The writes the unit's own
//! task makes pass the gate (a task-local marks the task). A unit that ends
//! without committing restores the data as it was when the unit began,
//! which undoes exactly the unit's writes. Reads are not held back: another
//! task may read what a unit has written before it commits (this store does
//! not isolate readers). Key claims, OAuth state and the counter of delivery
//! leases are never rolled back.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Duration;

use async_trait::async_trait;
use crm_domain::event::Event;
use crm_domain::idempotency::{
    claim_token, Claim, ClaimToken, Fingerprint, IdempotencyKey, IdempotencyStore, StoredResponse,
    UnitOutcome, UnitRun, UnitWork,
};
use crm_domain::time_util::span;
use crm_domain::RepoError;
use time::OffsetDateTime;

use crate::webhooks::{DeliveryRecord, EndpointRecord};
use crate::{stored, CustomerRecord, MemoryStore, SegmentRecord, State};

/// A key of a client.
#[derive(Clone)]
pub(crate) struct KeyRecord {
    fingerprint: Fingerprint,
    claim: i64,
    started_at: OffsetDateTime,
    expires_at: OffsetDateTime,
    answer: Option<StoredResponse>,
}

tokio::task_local! {
    /// The store (by address) whose unit the current task runs.
    static UNIT_OF: usize;
}

impl MemoryStore {
    /// Whether the current task runs a unit of this store.
    pub(crate) fn in_unit(&self) -> bool {
        UNIT_OF
            .try_with(|owner| *owner == self as *const Self as usize)
            .unwrap_or(false)
    }
}

/// What a unit that does not commit puts back.
struct DataSnapshot {
    last_customer_id: i64,
    last_address_id: i64,
    last_segment_id: i64,
    customers: BTreeMap<i64, CustomerRecord>,
    unique: HashMap<(&'static str, String), i64>,
    segments: BTreeMap<i64, SegmentRecord>,
    events: VecDeque<Event>,
    last_event_id: i64,
    purged_through: i64,
    last_endpoint_id: i64,
    endpoints: BTreeMap<i64, EndpointRecord>,
    last_delivery_id: i64,
    deliveries: BTreeMap<i64, DeliveryRecord>,
}

impl DataSnapshot {
    fn of(state: &State) -> Self {
        Self {
            last_customer_id: state.last_customer_id,
            last_address_id: state.last_address_id,
            last_segment_id: state.last_segment_id,
            customers: state.customers.clone(),
            unique: state.unique.clone(),
            segments: state.segments.clone(),
            events: state.events.clone(),
            last_event_id: state.last_event_id,
            purged_through: state.purged_through,
            last_endpoint_id: state.last_endpoint_id,
            endpoints: state.endpoints.clone(),
            last_delivery_id: state.last_delivery_id,
            deliveries: state.deliveries.clone(),
        }
    }

    fn restore(self, state: &mut State) {
        state.last_customer_id = self.last_customer_id;
        state.last_address_id = self.last_address_id;
        state.last_segment_id = self.last_segment_id;
        state.customers = self.customers;
        state.unique = self.unique;
        state.segments = self.segments;
        state.events = self.events;
        state.last_event_id = self.last_event_id;
        state.purged_through = self.purged_through;
        state.last_endpoint_id = self.last_endpoint_id;
        state.endpoints = self.endpoints;
        state.last_delivery_id = self.last_delivery_id;
        state.deliveries = self.deliveries;
    }
}

/// Restores the data when a unit is abandoned halfway (its future dropped).
struct Undo<'a> {
    store: &'a MemoryStore,
    snapshot: Option<DataSnapshot>,
}

impl Drop for Undo<'_> {
    fn drop(&mut self) {
        if let Some(snapshot) = self.snapshot.take() {
            snapshot.restore(&mut self.store.write());
        }
    }
}

#[async_trait]
impl IdempotencyStore for MemoryStore {
    async fn claim_key(
        &self,
        client_id: &str,
        key: &IdempotencyKey,
        fingerprint: &Fingerprint,
        now: OffsetDateTime,
        ttl: Duration,
        stale_after: Duration,
    ) -> Result<Claim, RepoError> {
        let now = stored(now);
        let mut state = self.write();
        let id = (client_id.to_owned(), key.as_str().to_owned());
        let token = claim_token();
        let acquired = Claim::Acquired(ClaimToken {
            client_id: client_id.to_owned(),
            key: key.clone(),
            token,
        });
        match state.idempotency.get_mut(&id) {
            Some(record) if record.expires_at > now => {
                if record.fingerprint != *fingerprint {
                    return Ok(Claim::Mismatch);
                }
                if let Some(answer) = &record.answer {
                    return Ok(Claim::Replay(answer.clone()));
                }
                if record.started_at <= now - span(stale_after) {
                    record.claim = token;
                    record.started_at = now;
                    return Ok(acquired);
                }
                Ok(Claim::InFlight)
            }
            _ => {
                if !state.clients.contains_key(client_id) {
                    return Err(RepoError::NotFound);
                }
                let record = KeyRecord {
                    fingerprint: *fingerprint,
                    claim: token,
                    started_at: now,
                    expires_at: stored(now + span(ttl)),
                    answer: None,
                };
                state.idempotency.insert(id, record);
                Ok(acquired)
            }
        }
    }

    fn run_claimed<'a>(&'a self, claim: &'a ClaimToken, work: UnitWork<'a>) -> UnitRun<'a> {
        Box::pin(self.run_unit(claim, work))
    }

    async fn purge_idempotency_keys(&self, now: OffsetDateTime) -> Result<u64, RepoError> {
        let now = stored(now);
        let mut state = self.write();
        let before = state.idempotency.len();
        state
            .idempotency
            .retain(|_, record| record.expires_at >= now);
        Ok((before - state.idempotency.len()) as u64)
    }
}

impl MemoryStore {
    /// `run_claimed`, serialised with the data writes of other tasks.
    async fn run_unit(
        &self,
        claim: &ClaimToken,
        work: UnitWork<'_>,
    ) -> Result<UnitOutcome, RepoError> {
        let _gate = self.unit_gate.lock().await;
        let mut undo = Undo {
            store: self,
            snapshot: Some(DataSnapshot::of(&self.read())),
        };
        let id = (claim.client_id.clone(), claim.key.as_str().to_owned());
        let answer = UNIT_OF.scope(self as *const Self as usize, work).await;
        let snapshot = undo.snapshot.take().expect("taken once");
        let mut state = self.write();
        let held = state
            .idempotency
            .get(&id)
            .is_some_and(|r| r.claim == claim.token && r.answer.is_none());
        match answer {
            Some(answer) if held => {
                if let Some(record) = state.idempotency.get_mut(&id) {
                    record.answer = Some(answer);
                }
                Ok(UnitOutcome::Committed)
            }
            Some(_) => {
                snapshot.restore(&mut state);
                Ok(UnitOutcome::ClaimLost)
            }
            None => {
                snapshot.restore(&mut state);
                if held {
                    state.idempotency.remove(&id);
                }
                Ok(UnitOutcome::RolledBack)
            }
        }
    }
}
