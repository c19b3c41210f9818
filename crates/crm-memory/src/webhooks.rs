//! `WebhookRepository`: endpoints and their deliveries.
//!
//! Deliveries are recorded by [`record_deliveries`], which the one place
//! that records events calls in the same write, so an event and its
//! deliveries appear (and, in an undone unit of work, disappear) together.
//! Every write here is a data write (it waits while another task's unit of
//! work runs), and endpoints and deliveries are part of the snapshot a unit
//! that does not commit restores. Lease tokens come from a counter that is
//! never restored, so no token is handed out twice.

use std::collections::{HashMap, VecDeque};

use async_trait::async_trait;
use crm_domain::event::{Event, EventKind};
use crm_domain::page::{Page, PageRequest};
use crm_domain::webhook::{
    AttemptRecord, ClaimRequest, ClaimedDelivery, Delivery, DeliveryId, DeliveryStats,
    DeliveryStatus, Endpoint, EndpointId, EndpointPatch, NewEndpoint, Subscription,
    WebhookRepository, WebhookSecret,
};
use crm_domain::RepoError;
use time::OffsetDateTime;

use crate::{stored, MemoryStore, State};

/// An endpoint with its secret.
#[derive(Clone)]
pub(crate) struct EndpointRecord {
    url: String,
    subscription: Subscription,
    description: String,
    is_active: bool,
    secret: WebhookSecret,
    created_at: OffsetDateTime,
}

/// One event on its way to one endpoint.
#[derive(Clone)]
pub(crate) struct DeliveryRecord {
    endpoint: i64,
    /// The event delivered; its deliveries go when it goes.
    pub(crate) event_id: i64,
    event_kind: EventKind,
    pub(crate) status: DeliveryStatus,
    attempts: u32,
    last_status_code: Option<u16>,
    last_error: String,
    next_attempt_at: Option<OffsetDateTime>,
    created_at: OffsetDateTime,
    /// The claim holding the delivery: its token and when it lapses.
    lease: Option<(i64, OffsetDateTime)>,
}

fn endpoint_id(raw: i64) -> EndpointId {
    EndpointId::new(raw).expect("ids come from a sequence starting at 1")
}

fn delivery_id(raw: i64) -> DeliveryId {
    DeliveryId::new(raw).expect("ids come from a sequence starting at 1")
}

fn endpoint(id: i64, record: &EndpointRecord) -> Endpoint {
    Endpoint {
        id: endpoint_id(id),
        url: record.url.clone(),
        subscription: record.subscription.clone(),
        description: record.description.clone(),
        is_active: record.is_active,
        created_at: record.created_at,
    }
}

fn delivery(id: i64, record: &DeliveryRecord) -> Delivery {
    Delivery {
        id: delivery_id(id),
        endpoint: endpoint_id(record.endpoint),
        event_id: record.event_id,
        event_kind: record.event_kind,
        status: record.status,
        attempts: record.attempts,
        last_status_code: record.last_status_code,
        last_error: record.last_error.clone(),
        next_attempt_at: record.next_attempt_at,
        created_at: record.created_at,
    }
}

/// Records a pending delivery of event `event_id`, due at once, for every
/// endpoint active and subscribed to `kind` now. Part of recording an
/// event; cannot fail.
pub(crate) fn record_deliveries(
    state: &mut State,
    event_id: i64,
    kind: EventKind,
    created_at: OffsetDateTime,
) {
    let targets: Vec<i64> = state
        .endpoints
        .iter()
        .filter(|(_, e)| e.is_active && e.subscription.includes(kind))
        .map(|(id, _)| *id)
        .collect();
    for endpoint in targets {
        state.last_delivery_id += 1;
        let id = state.last_delivery_id;
        state.deliveries.insert(
            id,
            DeliveryRecord {
                endpoint,
                event_id,
                event_kind: kind,
                status: DeliveryStatus::Pending,
                attempts: 0,
                last_status_code: None,
                last_error: String::new(),
                next_attempt_at: Some(created_at),
                created_at,
                lease: None,
            },
        );
    }
}

/// The smallest id of an event with a pending delivery, if any: retention
/// keeps it and every later event.
pub(crate) fn oldest_pending_event(state: &State) -> Option<i64> {
    state
        .deliveries
        .values()
        .filter(|d| d.status == DeliveryStatus::Pending)
        .map(|d| d.event_id)
        .min()
}

/// Deletes the deliveries of the events up to `last_event` (deleted by
/// retention).
pub(crate) fn forget_deliveries_through(state: &mut State, last_event: i64) {
    state.deliveries.retain(|_, d| d.event_id > last_event);
}

/// Delivery `id` of endpoint `endpoint`, or `NotFound`.
fn delivery_of(state: &State, endpoint: EndpointId, id: DeliveryId) -> Result<i64, RepoError> {
    if !state.endpoints.contains_key(&endpoint.get()) {
        return Err(RepoError::NotFound);
    }
    match state.deliveries.get(&id.get()) {
        Some(record) if record.endpoint == endpoint.get() => Ok(id.get()),
        _ => Err(RepoError::NotFound),
    }
}

/// The event `id` as the feed lists it, if it is still kept.
fn event(events: &VecDeque<Event>, id: i64) -> Option<&Event> {
    let at = events.partition_point(|e| e.id < id);
    events.get(at).filter(|e| e.id == id)
}

#[async_trait]
impl WebhookRepository for MemoryStore {
    async fn create_endpoint(&self, new: &NewEndpoint) -> Result<Endpoint, RepoError> {
        let mut state = self.write_data().await;
        state.last_endpoint_id += 1;
        let id = state.last_endpoint_id;
        let record = EndpointRecord {
            url: new.url.as_str().to_owned(),
            subscription: new.subscription.clone(),
            description: new.description.clone(),
            is_active: new.is_active,
            secret: new.secret.clone(),
            created_at: stored(new.created_at),
        };
        let created = endpoint(id, &record);
        state.endpoints.insert(id, record);
        Ok(created)
    }

    async fn endpoints(&self, page: PageRequest) -> Result<Page<Endpoint>, RepoError> {
        let state = self.read();
        let offset = usize::try_from(page.offset()).unwrap_or(usize::MAX);
        let size = usize::try_from(page.size()).unwrap_or(usize::MAX);
        let items = state
            .endpoints
            .iter()
            .skip(offset)
            .take(size)
            .map(|(id, record)| endpoint(*id, record))
            .collect();
        Ok(Page {
            count: state.endpoints.len() as u64,
            items,
            request: page,
        })
    }

    async fn endpoint(&self, id: EndpointId) -> Result<Endpoint, RepoError> {
        let state = self.read();
        let record = state.endpoints.get(&id.get()).ok_or(RepoError::NotFound)?;
        Ok(endpoint(id.get(), record))
    }

    async fn update_endpoint(
        &self,
        id: EndpointId,
        patch: &EndpointPatch,
    ) -> Result<Endpoint, RepoError> {
        let mut state = self.write_data().await;
        let record = state
            .endpoints
            .get_mut(&id.get())
            .ok_or(RepoError::NotFound)?;
        if let Some(url) = &patch.url {
            record.url = url.as_str().to_owned();
        }
        if let Some(subscription) = &patch.subscription {
            record.subscription = subscription.clone();
        }
        if let Some(description) = &patch.description {
            record.description = description.clone();
        }
        if let Some(is_active) = patch.is_active {
            record.is_active = is_active;
        }
        Ok(endpoint(id.get(), record))
    }

    async fn delete_endpoint(&self, id: EndpointId) -> Result<(), RepoError> {
        let mut state = self.write_data().await;
        if state.endpoints.remove(&id.get()).is_none() {
            return Err(RepoError::NotFound);
        }
        state.deliveries.retain(|_, d| d.endpoint != id.get());
        Ok(())
    }

    async fn deliveries(
        &self,
        endpoint: EndpointId,
        page: PageRequest,
    ) -> Result<Page<Delivery>, RepoError> {
        let state = self.read();
        if !state.endpoints.contains_key(&endpoint.get()) {
            return Err(RepoError::NotFound);
        }
        let offset = usize::try_from(page.offset()).unwrap_or(usize::MAX);
        let size = usize::try_from(page.size()).unwrap_or(usize::MAX);
        let mut count = 0u64;
        let mut items = Vec::new();
        for (id, record) in state.deliveries.iter().rev() {
            if record.endpoint != endpoint.get() {
                continue;
            }
            if count >= offset as u64 && items.len() < size {
                items.push(delivery(*id, record));
            }
            count += 1;
        }
        Ok(Page {
            count,
            items,
            request: page,
        })
    }

    async fn delivery(&self, endpoint: EndpointId, id: DeliveryId) -> Result<Delivery, RepoError> {
        let state = self.read();
        let id = delivery_of(&state, endpoint, id)?;
        Ok(delivery(id, &state.deliveries[&id]))
    }

    async fn retry_delivery(
        &self,
        endpoint: EndpointId,
        id: DeliveryId,
        now: OffsetDateTime,
    ) -> Result<Delivery, RepoError> {
        let now = stored(now);
        let mut state = self.write_data().await;
        let id = delivery_of(&state, endpoint, id)?;
        let record = state.deliveries.get_mut(&id).expect("checked above");
        // A running attempt keeps its claim: its outcome is still recorded.
        record.status = DeliveryStatus::Pending;
        record.next_attempt_at = Some(now);
        Ok(delivery(id, record))
    }

    async fn claim_deliveries(
        &self,
        request: &ClaimRequest,
    ) -> Result<Vec<ClaimedDelivery>, RepoError> {
        let now = stored(request.now);
        let lease_until = stored(request.lease_until);
        let mut state = self.write_data().await;
        let mut due: Vec<(OffsetDateTime, i64)> = state
            .deliveries
            .iter()
            .filter(|(_, d)| d.status == DeliveryStatus::Pending)
            .filter(|(_, d)| d.lease.is_none_or(|(_, until)| until <= now))
            .filter(|(_, d)| {
                state
                    .endpoints
                    .get(&d.endpoint)
                    .is_some_and(|e| e.is_active)
            })
            .filter_map(|(id, d)| {
                d.next_attempt_at
                    .filter(|at| *at <= now)
                    .map(|at| (at, *id))
            })
            .collect();
        due.sort_unstable();
        let mut taken: HashMap<i64, usize> = HashMap::new();
        let mut chosen = Vec::new();
        for (_, id) in due {
            if chosen.len() >= request.limit {
                break;
            }
            let endpoint = state.deliveries[&id].endpoint;
            let count = taken.entry(endpoint).or_default();
            if *count >= request.free_for(endpoint_id(endpoint)) {
                continue;
            }
            *count += 1;
            chosen.push(id);
        }
        let mut claimed = Vec::with_capacity(chosen.len());
        for id in chosen {
            let record = &state.deliveries[&id];
            // A delivery goes with its event, so the event is there.
            let Some(event) = event(&state.events, record.event_id).cloned() else {
                continue;
            };
            let target = &state.endpoints[&record.endpoint];
            let (url, secret) = (target.url.clone(), target.secret.clone());
            state.last_lease += 1;
            let lease = state.last_lease;
            let record = state.deliveries.get_mut(&id).expect("chosen above");
            record.lease = Some((lease, lease_until));
            claimed.push(ClaimedDelivery {
                id: delivery_id(id),
                endpoint: endpoint_id(record.endpoint),
                url,
                secret,
                event,
                attempts: record.attempts,
                lease,
            });
        }
        Ok(claimed)
    }

    async fn record_attempt(
        &self,
        claim: &ClaimedDelivery,
        record: &AttemptRecord,
    ) -> Result<bool, RepoError> {
        let mut state = self.write_data().await;
        let Some(delivery) = state.deliveries.get_mut(&claim.id.get()) else {
            return Ok(false);
        };
        if delivery.lease.map(|(token, _)| token) != Some(claim.lease) {
            return Ok(false);
        }
        delivery.attempts = delivery.attempts.saturating_add(1);
        delivery.status = record.status;
        delivery.last_status_code = record.last_status_code;
        delivery.last_error = record.last_error.clone();
        delivery.next_attempt_at = record.next_attempt_at.map(stored);
        delivery.lease = None;
        Ok(true)
    }

    async fn delivery_stats(&self) -> Result<DeliveryStats, RepoError> {
        let state = self.read();
        let mut stats = DeliveryStats::default();
        for record in state.deliveries.values() {
            match record.status {
                DeliveryStatus::Pending => {
                    stats.pending += 1;
                    if stats.oldest_pending.is_none_or(|t| record.created_at < t) {
                        stats.oldest_pending = Some(record.created_at);
                    }
                }
                DeliveryStatus::Failed => stats.failed += 1,
                DeliveryStatus::Delivered => {}
            }
        }
        Ok(stats)
    }
}
