/// The `segments` module of a Diesel adapter, instantiated by
/// [`diesel_adapter!`](crate::diesel_adapter) in the adapter's crate.
#[doc(hidden)]
#[macro_export]
macro_rules! __crm_diesel_segments {
    () => {
        // `SegmentRepository` on both backends.

        use std::collections::{BTreeSet, HashMap};

        use crate::backend::Conn;
        use crm_domain::customer::{CustomerId, CustomerSummary};
        use crm_domain::page::{Page, PageRequest};
        use crm_domain::segment::{
            SegmentId, SegmentMember, SegmentRef, SegmentRepository, SegmentTitle,
        };
        use crm_domain::{FieldErrors, RepoError};
        use diesel::prelude::*;
        use time::OffsetDateTime;

        use super::error::{fail, StoreResult};
        use super::events;
        use super::load;
        use super::store::Store;
        use crate::schema::{segment_memberships, segments};
        use crm_domain::event::EventKind;

        fn head((id, title): (i64, String)) -> SegmentRef {
            SegmentRef {
                id: SegmentId::new(id).expect("stored segment ids are positive"),
                title,
            }
        }

        /// The head of segment `id`, or `NotFound`.
        fn segment_head(conn: &mut Conn, id: i64) -> StoreResult<SegmentRef> {
            let row: Option<(i64, String)> = segments::table
                .find(id)
                .select((segments::id, segments::title))
                .first(conn)
                .optional()?;
            match row {
                Some(row) => Ok(head(row)),
                None => fail(RepoError::NotFound),
            }
        }

        /// Up to `limit` (segment id, customer id) memberships of the segments
        /// `wanted` (sorted, distinct) after `after`, in that order, then the
        /// customers' list items. Every query is a range scan of the membership
        /// primary key (segment_id, customer_id) that stops at the limit, so a page
        /// costs the same however deep into the segments it starts.
        fn members_after(
            conn: &mut Conn,
            wanted: &[i64],
            after: Option<(i64, i64)>,
            limit: usize,
        ) -> StoreResult<Vec<SegmentMember>> {
            let mut pairs: Vec<(i64, i64)> = Vec::new();
            let left =
                |pairs: &Vec<(i64, i64)>| i64::try_from(limit - pairs.len()).unwrap_or(i64::MAX);
            // The rest of the segment the last page ended in.
            let first_next = match after {
                Some((segment, customer)) => {
                    if wanted.binary_search(&segment).is_ok() {
                        pairs = segment_memberships::table
                            .filter(segment_memberships::segment_id.eq(segment))
                            .filter(segment_memberships::customer_id.gt(customer))
                            .order(segment_memberships::customer_id)
                            .select((
                                segment_memberships::segment_id,
                                segment_memberships::customer_id,
                            ))
                            .limit(left(&pairs))
                            .load(conn)?;
                    }
                    wanted.partition_point(|s| *s <= segment)
                }
                None => 0,
            };
            // Then the following segments, from their first member.
            for chunk in load::id_chunks(&wanted[first_next..]) {
                if pairs.len() >= limit {
                    break;
                }
                let (low, high) = (chunk[0], chunk[chunk.len() - 1]);
                pairs.extend(
                    segment_memberships::table
                        .filter(segment_memberships::segment_id.ge(low))
                        .filter(segment_memberships::segment_id.le(high))
                        .filter(segment_memberships::segment_id.eq_any(chunk))
                        .order((
                            segment_memberships::segment_id,
                            segment_memberships::customer_id,
                        ))
                        .select((
                            segment_memberships::segment_id,
                            segment_memberships::customer_id,
                        ))
                        .limit(left(&pairs))
                        .load::<(i64, i64)>(conn)?,
                );
            }
            // A customer may be in several of the segments: read each once.
            let customer_ids: Vec<i64> = pairs
                .iter()
                .map(|(_, c)| *c)
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            let summaries: HashMap<i64, CustomerSummary> =
                load::summaries(conn, &customer_ids, false)?
                    .into_iter()
                    .map(|s| (s.id.get(), s))
                    .collect();
            // The same read: every membership's customer is there (memberships go
            // with their customer).
            Ok(pairs
                .into_iter()
                .filter_map(|(segment, customer)| {
                    Some(SegmentMember {
                        segment: SegmentId::new(segment).expect("stored segment ids are positive"),
                        customer: summaries.get(&customer)?.clone(),
                    })
                })
                .collect())
        }

        /// Fails with `NotFound` unless segment `id` exists; keeps it from being
        /// deleted before the transaction ends.
        fn require_segment(conn: &mut Conn, id: i64) -> StoreResult<()> {
            if crate::backend::share_segment(conn, id)? {
                Ok(())
            } else {
                fail(RepoError::NotFound)
            }
        }

        fn missing_customers_message(missing: &[i64]) -> String {
            let ids: Vec<String> = missing.iter().map(i64::to_string).collect();
            format!("Invalid pk \"{}\" - object does not exist.", ids.join(", "))
        }

        #[async_trait::async_trait]
        impl SegmentRepository for Store {
            async fn create_segment(
                &self,
                title: &SegmentTitle,
                now: OffsetDateTime,
            ) -> Result<SegmentRef, RepoError> {
                let title = title.as_str().to_owned();
                self.write(move |conn| {
                    let row: (i64, String) = diesel::insert_into(segments::table)
                        .values((
                            segments::title.eq(title),
                            segments::created_at.eq(now),
                            segments::updated_at.eq(now),
                        ))
                        .returning((segments::id, segments::title))
                        .get_result(conn)?;
                    let head = head(row);
                    events::segment(conn, EventKind::SegmentCreated, now, &head)?;
                    Ok(head)
                })
                .await
            }

            async fn segment_heads(
                &self,
                page: PageRequest,
            ) -> Result<Page<SegmentRef>, RepoError> {
                self.read(move |conn| {
                    let count: i64 = segments::table.count().get_result(conn)?;
                    let count = u64::try_from(count).unwrap_or(0);
                    if page.offset() >= count {
                        return Ok(Page {
                            count,
                            items: Vec::new(),
                            request: page,
                        });
                    }
                    let rows: Vec<(i64, String)> = segments::table
                        .order(segments::id)
                        .select((segments::id, segments::title))
                        .offset(i64::try_from(page.offset()).unwrap_or(i64::MAX))
                        .limit(i64::try_from(page.size()).unwrap_or(i64::MAX))
                        .load(conn)?;
                    Ok(Page {
                        count,
                        items: rows.into_iter().map(head).collect(),
                        request: page,
                    })
                })
                .await
            }

            async fn segment_head(&self, id: SegmentId) -> Result<SegmentRef, RepoError> {
                self.read(move |conn| segment_head(conn, id.get())).await
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
                self.read(move |conn| members_after(conn, &wanted, after, limit))
                    .await
            }

            async fn rename_segment(
                &self,
                id: SegmentId,
                title: &SegmentTitle,
                now: OffsetDateTime,
            ) -> Result<SegmentRef, RepoError> {
                let title = title.as_str().to_owned();
                self.write(move |conn| {
                    let updated = diesel::update(segments::table.find(id.get()))
                        .set((segments::title.eq(title), segments::updated_at.eq(now)))
                        .execute(conn)?;
                    if updated == 0 {
                        return fail(RepoError::NotFound);
                    }
                    let head = segment_head(conn, id.get())?;
                    events::segment(conn, EventKind::SegmentUpdated, now, &head)?;
                    Ok(head)
                })
                .await
            }

            async fn delete_segment(
                &self,
                id: SegmentId,
                now: OffsetDateTime,
            ) -> Result<(), RepoError> {
                self.write(move |conn| {
                    let deleted = diesel::delete(segments::table.find(id.get())).execute(conn)?;
                    if deleted == 0 {
                        return fail(RepoError::NotFound);
                    }
                    events::segment_deleted(conn, now, id.get())?;
                    Ok(())
                })
                .await
            }

            async fn add_members(
                &self,
                id: SegmentId,
                customers: &[CustomerId],
                now: OffsetDateTime,
            ) -> Result<(), RepoError> {
                // Sorted: concurrent adds then take their row locks in one order and
                // cannot deadlock on overlapping lists.
                let wanted: Vec<i64> = customers
                    .iter()
                    .map(|c| c.get())
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect();
                self.write(move |conn| {
                    let segment = id.get();
                    require_segment(conn, segment)?;
                    // The found customers cannot be deleted before the memberships
                    // are written.
                    let mut found: BTreeSet<i64> = BTreeSet::new();
                    for chunk in load::id_chunks(&wanted) {
                        found.extend(crate::backend::share_customers(conn, chunk)?);
                    }
                    let missing: Vec<i64> = wanted
                        .iter()
                        .copied()
                        .filter(|c| !found.contains(c))
                        .collect();
                    if !missing.is_empty() {
                        return fail(RepoError::Rejected(FieldErrors::single(
                            "customer_id",
                            missing_customers_message(&missing),
                        )));
                    }
                    let mut added: Vec<i64> = Vec::new();
                    for chunk in wanted.chunks(crate::backend::INSERT_CHUNK) {
                        let rows: Vec<_> = chunk
                            .iter()
                            .map(|c| {
                                (
                                    segment_memberships::segment_id.eq(segment),
                                    segment_memberships::customer_id.eq(*c),
                                )
                            })
                            .collect();
                        // The primary key makes overlapping concurrent adds
                        // harmless; what it let through is what was added.
                        added.extend(
                            diesel::insert_into(segment_memberships::table)
                                .values(&rows)
                                .on_conflict_do_nothing()
                                .returning(segment_memberships::customer_id)
                                .get_results::<i64>(conn)?,
                        );
                    }
                    events::members(conn, EventKind::SegmentCustomersAdded, now, segment, added)?;
                    Ok(())
                })
                .await
            }

            async fn remove_members(
                &self,
                id: SegmentId,
                customers: &[CustomerId],
                now: OffsetDateTime,
            ) -> Result<(), RepoError> {
                let ids: Vec<i64> = customers.iter().map(|c| c.get()).collect();
                self.write(move |conn| {
                    require_segment(conn, id.get())?;
                    let mut removed: Vec<i64> = Vec::new();
                    for chunk in load::id_chunks(&ids) {
                        removed.extend(
                            diesel::delete(
                                segment_memberships::table
                                    .filter(segment_memberships::segment_id.eq(id.get()))
                                    .filter(segment_memberships::customer_id.eq_any(chunk)),
                            )
                            .returning(segment_memberships::customer_id)
                            .get_results::<i64>(conn)?,
                        );
                    }
                    events::members(
                        conn,
                        EventKind::SegmentCustomersRemoved,
                        now,
                        id.get(),
                        removed,
                    )?;
                    Ok(())
                })
                .await
            }
        }
    };
}
