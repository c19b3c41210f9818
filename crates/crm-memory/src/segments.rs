//! `SegmentRepository`: segments and their memberships, kept on both sides
//! (`SegmentRecord::members` and `CustomerRecord::segments`) in one write.

use std::collections::BTreeSet;

use async_trait::async_trait;
use crm_domain::customer::CustomerId;
use crm_domain::page::{Page, PageRequest};
use crm_domain::segment::{Segment, SegmentId, SegmentRepository, SegmentTitle};
use crm_domain::{FieldErrors, RepoError};
use time::OffsetDateTime;

use crate::customers::summary;
use crate::{stored, MemoryStore, SegmentRecord, State};

fn segment_id(raw: i64) -> SegmentId {
    SegmentId::new(raw).expect("ids come from a sequence starting at 1")
}

/// Segment `id` with its members by customer id, their `segments` left empty.
fn segment(state: &State, id: i64) -> Result<Segment, RepoError> {
    let record = state.segments.get(&id).ok_or(RepoError::NotFound)?;
    Ok(with_members(state, id, record))
}

fn with_members(state: &State, id: i64, record: &SegmentRecord) -> Segment {
    Segment {
        id: segment_id(id),
        title: record.title.clone(),
        customers: record
            .members
            .iter()
            .filter_map(|c| Some(summary(state, *c, state.customers.get(c)?, false)))
            .collect(),
    }
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
    ) -> Result<Segment, RepoError> {
        let now = stored(now);
        let mut state = self.write();
        state.last_segment_id += 1;
        let id = state.last_segment_id;
        state.segments.insert(
            id,
            SegmentRecord {
                title: title.as_str().to_owned(),
                created_at: now,
                updated_at: now,
                members: BTreeSet::new(),
            },
        );
        Ok(Segment {
            id: segment_id(id),
            title: title.as_str().to_owned(),
            customers: Vec::new(),
        })
    }

    async fn list_segments(&self, page: PageRequest) -> Result<Page<Segment>, RepoError> {
        let state = self.read();
        let count = state.segments.len() as u64;
        let offset = usize::try_from(page.offset()).unwrap_or(usize::MAX);
        let size = usize::try_from(page.size()).unwrap_or(usize::MAX);
        let items = state
            .segments
            .iter()
            .skip(offset)
            .take(size)
            .map(|(id, record)| with_members(&state, *id, record))
            .collect();
        Ok(Page {
            count,
            items,
            request: page,
        })
    }

    async fn get_segment(&self, id: SegmentId) -> Result<Segment, RepoError> {
        segment(&self.read(), id.get())
    }

    async fn rename_segment(
        &self,
        id: SegmentId,
        title: &SegmentTitle,
        now: OffsetDateTime,
    ) -> Result<Segment, RepoError> {
        let mut state = self.write();
        let record = state
            .segments
            .get_mut(&id.get())
            .ok_or(RepoError::NotFound)?;
        record.title = title.as_str().to_owned();
        record.updated_at = stored(now);
        segment(&state, id.get())
    }

    async fn delete_segment(&self, id: SegmentId) -> Result<(), RepoError> {
        let mut state = self.write();
        let record = state
            .segments
            .remove(&id.get())
            .ok_or(RepoError::NotFound)?;
        for customer in &record.members {
            if let Some(customer) = state.customers.get_mut(customer) {
                customer.segments.remove(&id.get());
            }
        }
        Ok(())
    }

    async fn add_members(&self, id: SegmentId, customers: &[CustomerId]) -> Result<(), RepoError> {
        let wanted: BTreeSet<i64> = customers.iter().map(|c| c.get()).collect();
        let mut state = self.write();
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
        record.members.extend(wanted);
        Ok(())
    }

    async fn remove_members(
        &self,
        id: SegmentId,
        customers: &[CustomerId],
    ) -> Result<(), RepoError> {
        let mut state = self.write();
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
        for customer in removed {
            if let Some(record) = state.customers.get_mut(&customer) {
                record.segments.remove(&id.get());
            }
        }
        Ok(())
    }
}
