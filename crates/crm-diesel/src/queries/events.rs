/// The `events` module of a Diesel adapter, instantiated by
/// [`diesel_adapter!`](crate::diesel_adapter) in the adapter's crate.
#[doc(hidden)]
#[macro_export]
macro_rules! __crm_diesel_events {
    () => {
        // The change feed: recording events inside the writes' transactions
        // (the functions the other modules call), and `EventRepository`.

        use crate::backend::Conn;
        use $crate::document::__private::{serde, serde_json};
        use $crate::snapshot::CustomerSnapshot;
        use crm_domain::customer::{Customer, CustomerId};
        use crm_domain::event::{
            Event, EventData, EventFeed, EventKind, EventQuery, EventRepository,
        };
        use crm_domain::segment::{SegmentId, SegmentRef};
        use crm_domain::RepoError;
        use diesel::prelude::*;
        use time::OffsetDateTime;

        use super::error::{StoreError, StoreResult};
        use super::load;
        use super::store::Store;
        use crate::schema::{crm_event_log, crm_event_members, crm_events};

        /// Events numbered by one publishing step at most.
        const PUBLISH_BATCH: i64 = 10_000;

        /// The stored code of each kind; never reuse or renumber one.
        pub fn code(kind: EventKind) -> i16 {
            match kind {
                EventKind::CustomerCreated => 1,
                EventKind::CustomerUpdated => 2,
                EventKind::CustomerDeleted => 3,
                EventKind::SegmentCreated => 4,
                EventKind::SegmentUpdated => 5,
                EventKind::SegmentDeleted => 6,
                EventKind::SegmentCustomersAdded => 7,
                EventKind::SegmentCustomersRemoved => 8,
            }
        }

        pub fn kind_of(code: i16) -> Option<EventKind> {
            EventKind::ALL
                .into_iter()
                .find(|kind| self::code(*kind) == code)
        }

        #[derive(Insertable)]
        #[diesel(table_name = crm_events)]
        struct NewEvent<'a> {
            kind: i16,
            created_at: OffsetDateTime,
            customer_id: Option<i64>,
            segment_id: Option<i64>,
            data: &'a str,
        }

        fn insert(conn: &mut Conn, event: NewEvent<'_>) -> StoreResult<()> {
            diesel::insert_into(crm_events::table)
                .values(&event)
                .execute(conn)?;
            Ok(())
        }

        /// Records `customer.created` / `customer.updated` with `customer`
        /// as it is now.
        pub fn customer(
            conn: &mut Conn,
            kind: EventKind,
            now: OffsetDateTime,
            customer: &Customer,
        ) -> StoreResult<()> {
            let data = CustomerSnapshot::encode(customer);
            insert(
                conn,
                NewEvent {
                    kind: code(kind),
                    created_at: now,
                    customer_id: Some(customer.id.get()),
                    segment_id: None,
                    data: &data,
                },
            )
        }

        /// Records `customer.updated` for customer `id`, read as it is
        /// now in the transaction.
        pub fn customer_updated(conn: &mut Conn, now: OffsetDateTime, id: i64) -> StoreResult<()> {
            let current = load::customer(conn, id)?;
            customer(conn, EventKind::CustomerUpdated, now, &current)
        }

        pub fn customer_deleted(conn: &mut Conn, now: OffsetDateTime, id: i64) -> StoreResult<()> {
            insert(
                conn,
                NewEvent {
                    kind: code(EventKind::CustomerDeleted),
                    created_at: now,
                    customer_id: Some(id),
                    segment_id: None,
                    data: "{}",
                },
            )
        }

        /// Records `segment.created` / `segment.updated` with the head.
        pub fn segment(
            conn: &mut Conn,
            kind: EventKind,
            now: OffsetDateTime,
            head: &SegmentRef,
        ) -> StoreResult<()> {
            let data = serde_json::json!({ "title": head.title }).to_string();
            insert(
                conn,
                NewEvent {
                    kind: code(kind),
                    created_at: now,
                    customer_id: None,
                    segment_id: Some(head.id.get()),
                    data: &data,
                },
            )
        }

        pub fn segment_deleted(conn: &mut Conn, now: OffsetDateTime, id: i64) -> StoreResult<()> {
            insert(
                conn,
                NewEvent {
                    kind: code(EventKind::SegmentDeleted),
                    created_at: now,
                    customer_id: None,
                    segment_id: Some(id),
                    data: "{}",
                },
            )
        }

        /// Records `segment.customers_added` / `_removed` naming
        /// `customers` (sorted here), and nothing when there are none.
        pub fn members(
            conn: &mut Conn,
            kind: EventKind,
            now: OffsetDateTime,
            segment: i64,
            mut customers: Vec<i64>,
        ) -> StoreResult<()> {
            if customers.is_empty() {
                return Ok(());
            }
            customers.sort_unstable();
            customers.dedup();
            let data = serde_json::json!({ "customer_ids": customers }).to_string();
            let seq: i64 = diesel::insert_into(crm_events::table)
                .values(&NewEvent {
                    kind: code(kind),
                    created_at: now,
                    customer_id: None,
                    segment_id: Some(segment),
                    data: &data,
                })
                .returning(crm_events::seq)
                .get_result(conn)?;
            for chunk in customers.chunks(crate::backend::INSERT_CHUNK) {
                let rows: Vec<_> = chunk
                    .iter()
                    .map(|c| {
                        (
                            crm_event_members::customer_id.eq(*c),
                            crm_event_members::event_seq.eq(seq),
                        )
                    })
                    .collect();
                diesel::insert_into(crm_event_members::table)
                    .values(&rows)
                    .execute(conn)?;
            }
            Ok(())
        }

        #[derive(Queryable, Selectable)]
        #[diesel(table_name = crm_events, check_for_backend(crate::backend::Db))]
        pub struct EventRow {
            id: Option<i64>,
            kind: i16,
            created_at: OffsetDateTime,
            customer_id: Option<i64>,
            segment_id: Option<i64>,
            data: String,
        }

        #[derive(serde::Deserialize)]
        #[serde(crate = "crm_diesel::document::__private::serde")]
        struct SegmentData {
            title: String,
        }

        #[derive(serde::Deserialize)]
        #[serde(crate = "crm_diesel::document::__private::serde")]
        struct MembersData {
            customer_ids: Vec<i64>,
        }

        fn broken(what: &str) -> StoreError {
            StoreError::Repo(RepoError::Internal(format!("stored event has {what}")))
        }

        impl EventRow {
            pub fn into_event(self) -> StoreResult<Event> {
                let kind = kind_of(self.kind).ok_or_else(|| broken("an unknown kind"))?;
                let customer = || {
                    self.customer_id
                        .and_then(CustomerId::new)
                        .ok_or_else(|| broken("no customer"))
                };
                let segment = || {
                    self.segment_id
                        .and_then(SegmentId::new)
                        .ok_or_else(|| broken("no segment"))
                };
                let data = match kind {
                    EventKind::CustomerCreated | EventKind::CustomerUpdated => EventData::Customer(
                        Box::new(CustomerSnapshot::decode(&self.data).map_err(StoreError::Repo)?),
                    ),
                    EventKind::CustomerDeleted => EventData::CustomerDeleted(customer()?),
                    EventKind::SegmentCreated | EventKind::SegmentUpdated => {
                        let data: SegmentData = load::decode(&self.data)?;
                        EventData::Segment(SegmentRef {
                            id: segment()?,
                            title: data.title,
                        })
                    }
                    EventKind::SegmentDeleted => EventData::SegmentDeleted(segment()?),
                    EventKind::SegmentCustomersAdded | EventKind::SegmentCustomersRemoved => {
                        let data: MembersData = load::decode(&self.data)?;
                        EventData::Members {
                            segment: segment()?,
                            customers: data
                                .customer_ids
                                .into_iter()
                                .map(|id| CustomerId::new(id).ok_or_else(|| broken("a bad member")))
                                .collect::<StoreResult<_>>()?,
                        }
                    }
                };
                Ok(Event {
                    id: self.id.ok_or_else(|| broken("no id"))?,
                    kind,
                    created_at: self.created_at,
                    data,
                })
            }
        }

        fn read_events(conn: &mut Conn, query: &EventQuery) -> StoreResult<EventFeed> {
            let purged: i64 = crm_event_log::table
                .select(crm_event_log::purged_through)
                .first(conn)?;
            if query.after > 0 && query.after < purged {
                return Ok(EventFeed::Expired {
                    first_kept: purged + 1,
                });
            }
            let mut rows = crm_events::table
                .filter(crm_events::id.gt(query.after))
                .into_boxed();
            if !query.kinds.is_empty() {
                let codes: Vec<i16> = query.kinds.iter().copied().map(code).collect();
                rows = rows.filter(crm_events::kind.eq_any(codes));
            }
            if let Some(customer) = query.customer {
                let customer = customer.get();
                rows = rows.filter(
                    crm_events::customer_id.eq(customer).or(crm_events::seq.eq_any(
                        crm_event_members::table
                            .filter(crm_event_members::customer_id.eq(customer))
                            .select(crm_event_members::event_seq),
                    )),
                );
            }
            let rows: Vec<EventRow> = rows
                .order(crm_events::id)
                .limit(i64::try_from(query.limit).unwrap_or(i64::MAX))
                .select(EventRow::as_select())
                .load(conn)?;
            Ok(EventFeed::Events(
                rows.into_iter()
                    .map(EventRow::into_event)
                    .collect::<StoreResult<_>>()?,
            ))
        }

        #[async_trait::async_trait]
        impl EventRepository for Store {
            async fn events(&self, query: &EventQuery) -> Result<EventFeed, RepoError> {
                if crate::backend::PUBLISHES_EVENTS {
                    self.publish_events().await?;
                }
                let query = query.clone();
                self.read(move |conn| read_events(conn, &query)).await
            }

            async fn publish_events(&self) -> Result<u64, RepoError> {
                if !crate::backend::PUBLISHES_EVENTS {
                    return Ok(0);
                }
                self.write(|conn| crate::backend::publish_events(conn, PUBLISH_BATCH))
                    .await
            }

            async fn purge_events(
                &self,
                before: OffsetDateTime,
                limit: usize,
            ) -> Result<u64, RepoError> {
                let limit = i64::try_from(limit).unwrap_or(i64::MAX);
                self.write(move |conn| {
                    // The oldest published events, by id: the purge never
                    // scans past `limit` of them, whatever their age.
                    let oldest: Vec<(Option<i64>, OffsetDateTime)> = crm_events::table
                        .filter(crm_events::id.is_not_null())
                        .order(crm_events::id)
                        .select((crm_events::id, crm_events::created_at))
                        .limit(limit)
                        .load(conn)?;
                    // An event with a pending webhook delivery is kept, and so
                    // is every later one: the deleted ids stay a prefix.
                    let kept = super::webhooks::oldest_pending_event(conn)?.unwrap_or(i64::MAX);
                    let Some(through) = oldest
                        .iter()
                        .take_while(|(id, at)| *at < before && id.is_some_and(|id| id < kept))
                        .filter_map(|(id, _)| *id)
                        .last()
                    else {
                        return Ok(0);
                    };
                    let deleted = diesel::delete(
                        crm_events::table.filter(crm_events::id.le(through)),
                    )
                    .execute(conn)?;
                    diesel::update(
                        crm_event_log::table.filter(crm_event_log::purged_through.lt(through)),
                    )
                    .set(crm_event_log::purged_through.eq(through))
                    .execute(conn)?;
                    Ok(u64::try_from(deleted).unwrap_or(0))
                })
                .await
            }
        }
    };
}
