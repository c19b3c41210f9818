//! `CustomerRepository`, and reading customers with what they own.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;
use crm_domain::customer::cursor::by_update_time;
use crm_domain::customer::model::NO_IDENTITY;
use crm_domain::customer::{
    Address, Cents, CursorPage, CursorPosition, CursorRequest, Customer, CustomerChanges,
    CustomerFilter, CustomerId, CustomerOrdering, CustomerRepository, CustomerSummary, Gender,
    Metafield, Profile, Statistics,
};
use crm_domain::page::{Page, PageRequest};
use crm_domain::segment::{SegmentId, SegmentRef};
use crm_domain::{FieldErrors, RepoError};
use time::OffsetDateTime;

use crate::{email_key, events, stored, CustomerFields, CustomerRecord, MemoryStore, State};
use crm_domain::event::{EventData, EventKind};

fn customer_id(raw: i64) -> CustomerId {
    CustomerId::new(raw).expect("ids come from a sequence starting at 1")
}

/// The customer's addresses, default first, then by id.
pub(crate) fn addresses_of(record: &CustomerRecord) -> Vec<Address> {
    let mut addresses: Vec<Address> = record.addresses.values().cloned().collect();
    addresses.sort_by_key(|a| (!a.is_default, a.id));
    addresses
}

/// The segments the customer is in, by segment id.
fn segments_of(state: &State, record: &CustomerRecord) -> Vec<SegmentRef> {
    record
        .segments
        .iter()
        .filter_map(|id| {
            let segment = state.segments.get(id)?;
            Some(SegmentRef {
                id: SegmentId::new(*id).expect("ids come from a sequence starting at 1"),
                title: segment.title.clone(),
            })
        })
        .collect()
}

/// The list item of customer `id`; with `with_segments` false, `segments` is
/// left empty (as a segment's members show it).
pub(crate) fn summary(
    state: &State,
    id: i64,
    record: &CustomerRecord,
    with_segments: bool,
) -> CustomerSummary {
    let f = &record.fields;
    CustomerSummary {
        id: customer_id(id),
        mobile: f.mobile.clone(),
        full_name: f.full_name.clone(),
        gender: f.gender,
        email: f.email.clone(),
        birthday: f.birthday,
        note: f.note.clone(),
        accepts_marketing: f.accepts_marketing,
        tags: record.tags.clone(),
        addresses: addresses_of(record),
        segments: if with_segments {
            segments_of(state, record)
        } else {
            Vec::new()
        },
        created_at: f.created_at,
    }
}

/// The whole customer `id`, with live referral figures; `NotFound` when
/// there is no such customer.
pub(crate) fn customer(state: &State, id: i64) -> Result<Customer, RepoError> {
    let record = state.customers.get(&id).ok_or(RepoError::NotFound)?;
    let spent_of_referred: i64 = record
        .referred
        .iter()
        .filter_map(|c| state.customers.get(c))
        .map(|c| c.fields.statistics.total_spent.0)
        .sum();
    let referred = i64::try_from(record.referred.len()).unwrap_or(i64::MAX);
    let f = &record.fields;
    Ok(Customer {
        id: customer_id(id),
        mobile: f.mobile.clone(),
        full_name: f.full_name.clone(),
        gender: f.gender,
        email: f.email.clone(),
        birthday: f.birthday,
        avatar: f.avatar.clone(),
        note: f.note.clone(),
        accepts_marketing: f.accepts_marketing,
        referral_code: f.referral_code.clone(),
        referrer: f.referrer.map(customer_id),
        multipass_identifier: f.multipass_identifier.clone(),
        wechat_nickname: f.wechat_nickname.clone(),
        profile: f.profile.clone(),
        statistics: Statistics {
            customers_referred: referred,
            total_spent_of_referred: Cents(spent_of_referred),
            ..f.statistics.clone()
        },
        tags: record.tags.clone(),
        addresses: addresses_of(record),
        segments: segments_of(state, record),
        metafields: record.metafields.clone(),
        created_at: f.created_at,
        updated_at: f.updated_at,
    })
}

/// The values of a new customer: `changes` over the defaults.
fn new_fields(changes: &CustomerChanges, now: OffsetDateTime) -> CustomerFields {
    let mut fields = CustomerFields {
        mobile: String::new(),
        full_name: String::new(),
        gender: Gender::default(),
        email: String::new(),
        birthday: None,
        avatar: String::new(),
        note: String::new(),
        accepts_marketing: false,
        referral_code: String::new(),
        referrer: None,
        multipass_identifier: None,
        wechat_nickname: None,
        profile: Profile::default(),
        statistics: Statistics::default(),
        created_at: now,
        updated_at: now,
    };
    apply(&mut fields, changes, now);
    fields
}

/// Writes the given values of `changes` into `fields` and sets `updated_at`.
fn apply(fields: &mut CustomerFields, changes: &CustomerChanges, now: OffsetDateTime) {
    fn text<T: AsRef<str>>(value: &Option<T>) -> String {
        value
            .as_ref()
            .map_or_else(String::new, |v| v.as_ref().to_owned())
    }
    if let Some(mobile) = &changes.mobile {
        fields.mobile = text(mobile);
    }
    if let Some(name) = &changes.full_name {
        fields.full_name = name.as_str().to_owned();
    }
    if let Some(gender) = changes.gender {
        fields.gender = gender;
    }
    if let Some(email) = &changes.email {
        fields.email = text(email);
    }
    if let Some(birthday) = changes.birthday {
        fields.birthday = birthday.map(|b| b.date());
    }
    if let Some(avatar) = &changes.avatar {
        fields.avatar = avatar.as_str().to_owned();
    }
    if let Some(note) = &changes.note {
        fields.note = note.as_str().to_owned();
    }
    if let Some(accepts) = changes.accepts_marketing {
        fields.accepts_marketing = accepts;
    }
    if let Some(code) = &changes.referral_code {
        fields.referral_code = text(code);
    }
    if let Some(referrer) = changes.referrer {
        fields.referrer = referrer.map(CustomerId::get);
    }
    if let Some(identifier) = &changes.multipass_identifier {
        fields.multipass_identifier = identifier.as_ref().map(|v| v.as_str().to_owned());
    }
    changes.profile.apply_to(&mut fields.profile);
    fields.updated_at = now;
}

/// Refuses a referrer that names no customer (the foreign key of the SQL
/// stores).
fn check_referrer(state: &State, changes: &CustomerChanges) -> Result<(), RepoError> {
    if let Some(Some(referrer)) = changes.referrer {
        if !state.customers.contains_key(&referrer.get()) {
            return Err(RepoError::Rejected(FieldErrors::single(
                "referrer",
                format!("Invalid pk \"{}\" - object does not exist.", referrer.get()),
            )));
        }
    }
    Ok(())
}

/// The checks the SQL stores' constraints make on a customer's values:
/// the identity check, then uniqueness against every other customer.
fn check_fields(state: &State, id: Option<i64>, fields: &CustomerFields) -> Result<(), RepoError> {
    if fields.mobile.is_empty() && fields.email.is_empty() && fields.full_name.is_empty() {
        return Err(RepoError::Rejected(FieldErrors::single(
            FieldErrors::NON_FIELD,
            NO_IDENTITY,
        )));
    }
    for (field, key) in fields.unique_keys() {
        match state.unique.get(&(field, key)) {
            Some(owner) if Some(*owner) != id => return Err(RepoError::Duplicate { field }),
            _ => {}
        }
    }
    Ok(())
}

fn tags_of(changes: &CustomerChanges) -> Option<Vec<String>> {
    changes.tags.as_ref().map(|set| {
        let mut tags: Vec<String> = set.iter().map(|t| t.as_str().to_owned()).collect();
        tags.sort_unstable();
        tags.dedup();
        tags
    })
}

fn metafields_of(changes: &CustomerChanges) -> Option<Vec<Metafield>> {
    changes.metafields.as_ref().map(|m| {
        let mut list = m.as_slice().to_vec();
        list.sort_by(|a, b| (a.namespace(), a.key()).cmp(&(b.namespace(), b.key())));
        list
    })
}

type UniqueKey = (&'static str, String);

/// Replaces customer `id`'s unique keys `old` by `new` in the index.
fn reindex(state: &mut State, id: i64, old: &[UniqueKey], new: Vec<UniqueKey>) {
    for key in old {
        if state.unique.get(key) == Some(&id) {
            state.unique.remove(key);
        }
    }
    for key in new {
        state.unique.insert(key, id);
    }
}

/// Moves customer `id` from the referred customers of `old` to those of
/// `new` (the `referred` index; `referrer` itself is written by the caller).
fn set_referrer(state: &mut State, id: i64, old: Option<i64>, new: Option<i64>) {
    if old == new {
        return;
    }
    if let Some(referrer) = old.and_then(|r| state.customers.get_mut(&r)) {
        referrer.referred.remove(&id);
    }
    if let Some(referrer) = new.and_then(|r| state.customers.get_mut(&r)) {
        referrer.referred.insert(id);
    }
}

/// Whether `value` is absent or satisfies `test` (a criterion not given
/// holds).
fn holds<T>(value: Option<T>, test: impl FnOnce(T) -> bool) -> bool {
    match value {
        None => true,
        Some(value) => test(value),
    }
}

/// Whether customer `record` meets every criterion of `filter`; `search` is
/// the lower-cased search text. Bounds on instants are truncated to the
/// microsecond, as the SQL stores bind them.
fn matches(
    id: i64,
    record: &CustomerRecord,
    filter: &CustomerFilter,
    search: Option<&str>,
) -> bool {
    let f = &record.fields;
    holds(filter.id, |wanted| wanted == id)
        && holds(filter.id_in.as_ref(), |ids| ids.contains(&id))
        && holds(filter.coupon, |c| record.coupons.contains_key(&c))
        && holds(filter.coupon_exclude, |c| !record.coupons.contains_key(&c))
        && holds(filter.segment, |s| record.segments.contains(&s))
        && holds(filter.segment_exclude, |s| !record.segments.contains(&s))
        && holds(filter.mobile.as_ref(), |m| f.mobile == *m)
        && holds(filter.email.as_ref(), |e| {
            email_key(&f.email) == email_key(e)
        })
        && holds(filter.tag.as_ref(), |t| record.tags.contains(t))
        && holds(search, |text| {
            [&f.full_name, &f.mobile, &f.email]
                .iter()
                .any(|value| value.to_lowercase().contains(text))
        })
        && holds(filter.created_at_gte.map(stored), |t| f.created_at >= t)
        && holds(filter.created_at_lte.map(stored), |t| f.created_at <= t)
        && holds(filter.updated_at_gte.map(stored), |t| f.updated_at >= t)
        && holds(filter.updated_at_lte.map(stored), |t| f.updated_at <= t)
}

/// The order of `ordering`, ties broken by id in the same direction.
fn compare(
    ordering: CustomerOrdering,
    (a_id, a): (i64, &CustomerRecord),
    (b_id, b): (i64, &CustomerRecord),
) -> Ordering {
    let (a, b) = (&a.fields, &b.fields);
    match ordering {
        CustomerOrdering::IdAsc => a_id.cmp(&b_id),
        CustomerOrdering::IdDesc => b_id.cmp(&a_id),
        CustomerOrdering::CreatedAtAsc => (a.created_at, a_id).cmp(&(b.created_at, b_id)),
        CustomerOrdering::CreatedAtDesc => (b.created_at, b_id).cmp(&(a.created_at, a_id)),
        CustomerOrdering::UpdatedAtAsc => (a.updated_at, a_id).cmp(&(b.updated_at, b_id)),
        CustomerOrdering::UpdatedAtDesc => (b.updated_at, b_id).cmp(&(a.updated_at, a_id)),
    }
}

fn list_page(state: &State, filter: &CustomerFilter, page: PageRequest) -> Page<CustomerSummary> {
    let search = filter.search.as_ref().map(|text| text.to_lowercase());
    let mut found: Vec<(i64, &CustomerRecord)> = state
        .customers
        .iter()
        .filter(|(id, record)| matches(**id, record, filter, search.as_deref()))
        .map(|(id, record)| (*id, record))
        .collect();
    let count = found.len() as u64;
    if page.offset() >= count {
        return Page {
            count,
            items: Vec::new(),
            request: page,
        };
    }
    found.sort_by(|a, b| compare(filter.ordering, *a, *b));
    // Both fit in usize: the offset is below `count`, a length.
    let offset = usize::try_from(page.offset()).unwrap_or(usize::MAX);
    let size = usize::try_from(page.size()).unwrap_or(usize::MAX);
    let items = found
        .into_iter()
        .skip(offset)
        .take(size)
        .map(|(id, record)| summary(state, id, record, true))
        .collect();
    Page {
        count,
        items,
        request: page,
    }
}

/// A cursor page: every call sees a state no write is in progress in (the
/// store's one lock), so positions are final when read.
fn cursor_page(state: &State, filter: &CustomerFilter, request: &CursorRequest) -> CursorPage {
    let search = filter.search.as_ref().map(|text| text.to_lowercase());
    let settled = request.settled_before.map(stored);
    let by_time = by_update_time(filter.ordering);
    let asc = request.ascending(filter.ordering);
    // One key for both orderings: (instant or epoch, id).
    let key = |id: i64, record: &CustomerRecord| {
        let at = if by_time {
            record.fields.updated_at
        } else {
            OffsetDateTime::UNIX_EPOCH
        };
        (at, id)
    };
    let start = request.position.map(|p| match p {
        CursorPosition::Id(id) => (OffsetDateTime::UNIX_EPOCH, id),
        CursorPosition::UpdatedAt(at, id) => (stored(at), id),
    });
    let mut found: Vec<((OffsetDateTime, i64), i64, &CustomerRecord)> = state
        .customers
        .iter()
        .filter(|(id, record)| matches(**id, record, filter, search.as_deref()))
        .filter(|(_, record)| settled.is_none_or(|before| record.fields.updated_at <= before))
        .map(|(id, record)| (key(*id, record), *id, record))
        .filter(|(k, _, _)| start.is_none_or(|s| if asc { *k > s } else { *k < s }))
        .collect();
    found.sort_by(|a, b| if asc { a.0.cmp(&b.0) } else { b.0.cmp(&a.0) });
    let size = usize::try_from(request.size).unwrap_or(usize::MAX);
    let more = found.len() > size;
    found.truncate(size);
    if request.backward {
        found.reverse();
    }
    CursorPage {
        items: found
            .into_iter()
            .map(|(_, id, record)| {
                let summary = summary(state, id, record, true);
                let position =
                    CursorPosition::of(filter.ordering, summary.id, record.fields.updated_at);
                (position, summary)
            })
            .collect(),
        more,
    }
}

#[async_trait]
impl CustomerRepository for MemoryStore {
    async fn create(
        &self,
        changes: &CustomerChanges,
        now: OffsetDateTime,
    ) -> Result<Customer, RepoError> {
        let now = stored(now);
        let mut state = self.write_data().await;
        check_referrer(&state, changes)?;
        let fields = new_fields(changes, now);
        check_fields(&state, None, &fields)?;
        // Checked: from here on nothing fails.
        state.last_customer_id += 1;
        let id = state.last_customer_id;
        reindex(&mut state, id, &[], fields.unique_keys());
        let record = CustomerRecord {
            fields,
            tags: tags_of(changes).unwrap_or_default(),
            metafields: metafields_of(changes).unwrap_or_default(),
            addresses: BTreeMap::new(),
            coupons: BTreeMap::new(),
            segments: BTreeSet::new(),
            referred: BTreeSet::new(),
        };
        let referrer = record.fields.referrer;
        state.customers.insert(id, record);
        set_referrer(&mut state, id, None, referrer);
        let created = customer(&state, id)?;
        let data = EventData::Customer(Box::new(created.clone()));
        events::record(&mut state, EventKind::CustomerCreated, now, data);
        Ok(created)
    }

    async fn get(&self, id: CustomerId) -> Result<Customer, RepoError> {
        customer(&self.read(), id.get())
    }

    async fn update(
        &self,
        id: CustomerId,
        changes: &CustomerChanges,
        now: OffsetDateTime,
    ) -> Result<Customer, RepoError> {
        let (id, now) = (id.get(), stored(now));
        let mut state = self.write_data().await;
        check_referrer(&state, changes)?;
        let record = state.customers.get(&id).ok_or(RepoError::NotFound)?;
        let old_keys = record.fields.unique_keys();
        let old_referrer = record.fields.referrer;
        let mut fields = record.fields.clone();
        apply(&mut fields, changes, now);
        check_fields(&state, Some(id), &fields)?;
        // Checked: from here on nothing fails.
        reindex(&mut state, id, &old_keys, fields.unique_keys());
        set_referrer(&mut state, id, old_referrer, fields.referrer);
        let record = state.customers.get_mut(&id).expect("checked above");
        record.fields = fields;
        if let Some(tags) = tags_of(changes) {
            record.tags = tags;
        }
        if let Some(metafields) = metafields_of(changes) {
            record.metafields = metafields;
        }
        let updated = customer(&state, id)?;
        let data = EventData::Customer(Box::new(updated.clone()));
        events::record(&mut state, EventKind::CustomerUpdated, now, data);
        Ok(updated)
    }

    async fn delete(&self, id: CustomerId, now: OffsetDateTime) -> Result<(), RepoError> {
        let (id, now) = (id.get(), stored(now));
        let mut state = self.write_data().await;
        let record = state.customers.remove(&id).ok_or(RepoError::NotFound)?;
        // Its addresses, tags, metafields and coupons went with the record.
        reindex(&mut state, id, &record.fields.unique_keys(), Vec::new());
        for segment in &record.segments {
            if let Some(segment) = state.segments.get_mut(segment) {
                segment.members.remove(&id);
            }
        }
        set_referrer(&mut state, id, record.fields.referrer, None);
        events::record(
            &mut state,
            EventKind::CustomerDeleted,
            now,
            EventData::CustomerDeleted(customer_id(id)),
        );
        // Released referrals are writes to the referred customers.
        for referred in &record.referred {
            if let Some(other) = state.customers.get_mut(referred) {
                other.fields.referrer = None;
                other.fields.updated_at = now;
            }
        }
        for referred in &record.referred {
            events::customer_updated(&mut state, now, *referred);
        }
        Ok(())
    }

    async fn list(
        &self,
        filter: &CustomerFilter,
        page: PageRequest,
    ) -> Result<Page<CustomerSummary>, RepoError> {
        Ok(list_page(&self.read(), filter, page))
    }

    async fn cursor_page(
        &self,
        filter: &CustomerFilter,
        request: &CursorRequest,
    ) -> Result<CursorPage, RepoError> {
        Ok(cursor_page(&self.read(), filter, request))
    }
}
