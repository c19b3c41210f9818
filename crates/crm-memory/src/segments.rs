//! `SegmentRepository`: segments and their memberships, kept on both sides
//! (`SegmentRecord::members` and `CustomerRecord::segments`) in one write.

use std::collections::BTreeSet;
use std::ops::Bound;

use async_trait::async_trait;
use crm_domain::customer::CustomerId;
use crm_domain::page::{Page, PageRequest};
use crm_domain::segment::{SegmentId, SegmentMember, SegmentRef, SegmentRepository, SegmentTitle};
use crm_domain::{FieldErrors, RepoError};
use time::OffsetDateTime;

use crate::customers::summary;
use crate::{events, stored, MemoryStore, SegmentRecord, State};
use crm_domain::event::{EventData, EventKind};

/// Records a membership event naming `customers`, none when empty.
fn members_event(
    state: &mut State,
    kind: EventKind,
    now: OffsetDateTime,
    segment: SegmentId,
    mut customers: Vec<i64>,
) {
    if customers.is_empty() {
        return;
    }
    customers.sort_unstable();
    customers.dedup();
    let data = EventData::Members {
        segment,
        customers: customers.into_iter().map(customer_id).collect(),
    };
    events::record(state, kind, now, data);
}

fn customer_id(raw: i64) -> CustomerId {
    CustomerId::new(raw).expect("ids come from a sequence starting at 1")
}

fn segment_id(raw: i64) -> SegmentId {
    SegmentId::new(raw).expect("ids come from a sequence starting at 1")
}

fn head(id: i64, record: &SegmentRecord) -> SegmentRef {
    SegmentRef {
        id: segment_id(id),
        title: record.title.clone(),
    }
}

/// The head of segment `id`, or `NotFound`.
fn segment_head(state: &State, id: i64) -> Result<SegmentRef, RepoError> {
    let record = state.segments.get(&id).ok_or(RepoError::NotFound)?;
    Ok(head(id, record))
}

/// Up to `limit` members of the segments `wanted` (sorted, distinct) after
/// `after`, by segment id then customer id. Each segment's members are a
/// range of an ordered set, so a page costs the same however deep into the
/// segments it starts.
fn members_after(
    state: &State,
    wanted: &[i64],
    after: Option<(i64, i64)>,
    limit: usize,
) -> Vec<SegmentMember> {
    let first = match after {
        Some((segment, _)) => wanted.partition_point(|s| *s < segment),
        None => 0,
    };
    let mut members = Vec::new();
    for &segment in &wanted[first..] {
        let Some(record) = state.segments.get(&segment) else {
            continue;
        };
        let start = match after {
            Some((last_segment, customer)) if last_segment == segment => Bound::Excluded(customer),
            _ => Bound::Unbounded,
        };
        for customer in record.members.range((start, Bound::Unbounded)) {
            if members.len() >= limit {
                return members;
            }
            if let Some(record) = state.customers.get(customer) {
                members.push(SegmentMember {
                    segment: segment_id(segment),
                    customer: summary(state, *customer, record, false),
                });
            }
        }
        if members.len() >= limit {
            break;
        }
    }
    members
}

/// The message naming customers that do not exist, as the SQL stores word it.
fn missing_customers_message(missing: &[i64]) -> String {
    let ids: Vec<String> = missing.iter().map(i64::to_string).collect();
    format!("Invalid pk \"{}\" - object does not exist.", ids.join(", "))
}

#[async_trait]
impl SegmentRepository for MemoryStore {
    async fn create_segment(
        &self,
        title: &SegmentTitle,
        now: OffsetDateTime,
    ) -> Result<SegmentRef, RepoError> {
        let now = stored(now);
        let mut state = self.write_data().await;
        state.last_segment_id += 1;
        let id = state.last_segment_id;
        let record = SegmentRecord {
            title: title.as_str().to_owned(),
            created_at: now,
            updated_at: now,
            members: BTreeSet::new(),
        };
        let created = head(id, &record);
        state.segments.insert(id, record);
        let data = EventData::Segment(created.clone());
        events::record(&mut state, EventKind::SegmentCreated, now, data);
        Ok(created)
    }

    async fn segment_heads(&self, page: PageRequest) -> Result<Page<SegmentRef>, RepoError> {
        let state = self.read();
        let count = state.segments.len() as u64;
        let offset = usize::try_from(page.offset()).unwrap_or(usize::MAX);
        let size = usize::try_from(page.size()).unwrap_or(usize::MAX);
        let items = state
            .segments
            .iter()
            .skip(offset)
            .take(size)
            .map(|(id, record)| head(*id, record))
            .collect();
        Ok(Page {
            count,
            items,
            request: page,
        })
    }

    async fn segment_head(&self, id: SegmentId) -> Result<SegmentRef, RepoError> {
        segment_head(&self.read(), id.get())
    }

    async fn segment_members(
        &self,
        segments: &[SegmentId],
        after: Option<(SegmentId, CustomerId)>,
        limit: usize,
    ) -> Result<Vec<SegmentMember>, RepoError> {
        let mut wanted: Vec<i64> = segments.iter().map(|s| s.get()).collect();
        wanted.sort_unstable();
        wanted.dedup();
        if limit == 0 || wanted.is_empty() {
            return Ok(Vec::new());
        }
        let after = after.map(|(s, c)| (s.get(), c.get()));
        Ok(members_after(&self.read(), &wanted, after, limit))
    }

    async fn rename_segment(
        &self,
        id: SegmentId,
        title: &SegmentTitle,
        now: OffsetDateTime,
    ) -> Result<SegmentRef, RepoError> {
        let mut state = self.write_data().await;
        let record = state
            .segments
            .get_mut(&id.get())
            .ok_or(RepoError::NotFound)?;
        let now = stored(now);
        record.title = title.as_str().to_owned();
        record.updated_at = now;
        let renamed = head(id.get(), record);
        let data = EventData::Segment(renamed.clone());
        events::record(&mut state, EventKind::SegmentUpdated, now, data);
        Ok(renamed)
    }

    async fn delete_segment(&self, id: SegmentId, now: OffsetDateTime) -> Result<(), RepoError> {
        let now = stored(now);
        let mut state = self.write_data().await;
        let record = state
            .segments
            .remove(&id.get())
            .ok_or(RepoError::NotFound)?;
        for customer in &record.members {
            if let Some(customer) = state.customers.get_mut(customer) {
                customer.segments.remove(&id.get());
            }
        }
        events::record(
            &mut state,
            EventKind::SegmentDeleted,
            now,
            EventData::SegmentDeleted(id),
        );
        Ok(())
    }

    async fn add_members(
        &self,
        id: SegmentId,
        customers: &[CustomerId],
        now: OffsetDateTime,
    ) -> Result<(), RepoError> {
        let now = stored(now);
        let wanted: BTreeSet<i64> = customers.iter().map(|c| c.get()).collect();
        let mut state = self.write_data().await;
        if !state.segments.contains_key(&id.get()) {
            return Err(RepoError::NotFound);
        }
        let missing: Vec<i64> = wanted
            .iter()
            .copied()
            .filter(|c| !state.customers.contains_key(c))
            .collect();
        if !missing.is_empty() {
            return Err(RepoError::Rejected(FieldErrors::single(
                "customer_id",
                missing_customers_message(&missing),
            )));
        }
        // Checked: from here on nothing fails. Memberships leave the
        // customers' `updated_at` as it is.
        for customer in &wanted {
            if let Some(record) = state.customers.get_mut(customer) {
                record.segments.insert(id.get());
            }
        }
        let record = state.segments.get_mut(&id.get()).expect("checked above");
        let added: Vec<i64> = wanted
            .into_iter()
            .filter(|c| record.members.insert(*c))
            .collect();
        members_event(&mut state, EventKind::SegmentCustomersAdded, now, id, added);
        Ok(())
    }

    async fn remove_members(
        &self,
        id: SegmentId,
        customers: &[CustomerId],
        now: OffsetDateTime,
    ) -> Result<(), RepoError> {
        let now = stored(now);
        let mut state = self.write_data().await;
        let record = state
            .segments
            .get_mut(&id.get())
            .ok_or(RepoError::NotFound)?;
        let mut removed = Vec::new();
        for customer in customers {
            if record.members.remove(&customer.get()) {
                removed.push(customer.get());
            }
        }
        for customer in &removed {
            if let Some(record) = state.customers.get_mut(customer) {
                record.segments.remove(&id.get());
            }
        }
        members_event(
            &mut state,
            EventKind::SegmentCustomersRemoved,
            now,
            id,
            removed,
        );
        Ok(())
    }
}
