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
        use crm_domain::segment::{Segment, SegmentId, SegmentRepository, SegmentTitle};
        use crm_domain::{FieldErrors, RepoError};
        use diesel::prelude::*;
        use time::OffsetDateTime;

        use super::error::{fail, StoreResult};
        use super::load;
        use super::store::Store;
        use crate::schema::{segment_memberships, segments};

        /// The segments `rows` (id, title) with their members, in one query for the
        /// memberships and a constant number for the members' data.
        fn with_members(conn: &mut Conn, rows: Vec<(i64, String)>) -> StoreResult<Vec<Segment>> {
            let ids: Vec<i64> = rows.iter().map(|(id, _)| *id).collect();
            let pairs: Vec<(i64, i64)> = segment_memberships::table
                .filter(segment_memberships::segment_id.eq_any(&ids))
                .order((
                    segment_memberships::segment_id,
                    segment_memberships::customer_id,
                ))
                .select((
                    segment_memberships::segment_id,
                    segment_memberships::customer_id,
                ))
                .load(conn)?;
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
            let mut members: HashMap<i64, Vec<CustomerSummary>> = HashMap::new();
            for (segment, customer) in pairs {
                if let Some(summary) = summaries.get(&customer) {
                    members.entry(segment).or_default().push(summary.clone());
                }
            }
            Ok(rows
                .into_iter()
                .map(|(id, title)| Segment {
                    id: SegmentId::new(id).expect("stored segment ids are positive"),
                    title,
                    customers: members.remove(&id).unwrap_or_default(),
                })
                .collect())
        }

        fn segment(conn: &mut Conn, id: i64) -> StoreResult<Segment> {
            let row: Option<(i64, String)> = segments::table
                .find(id)
                .select((segments::id, segments::title))
                .first(conn)
                .optional()?;
            match row {
                Some(row) => Ok(with_members(conn, vec![row])?.remove(0)),
                None => fail(RepoError::NotFound),
            }
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
            ) -> Result<Segment, RepoError> {
                let title = title.as_str().to_owned();
                self.write(move |conn| {
                    let (id, title): (i64, String) = diesel::insert_into(segments::table)
                        .values((
                            segments::title.eq(title),
                            segments::created_at.eq(now),
                            segments::updated_at.eq(now),
                        ))
                        .returning((segments::id, segments::title))
                        .get_result(conn)?;
                    Ok(Segment {
                        id: SegmentId::new(id).expect("stored segment ids are positive"),
                        title,
                        customers: Vec::new(),
                    })
                })
                .await
            }

            async fn list_segments(&self, page: PageRequest) -> Result<Page<Segment>, RepoError> {
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
                        items: with_members(conn, rows)?,
                        request: page,
                    })
                })
                .await
            }

            async fn get_segment(&self, id: SegmentId) -> Result<Segment, RepoError> {
                self.read(move |conn| segment(conn, id.get())).await
            }

            async fn rename_segment(
                &self,
                id: SegmentId,
                title: &SegmentTitle,
                now: OffsetDateTime,
            ) -> Result<Segment, RepoError> {
                let title = title.as_str().to_owned();
                self.write(move |conn| {
                    let updated = diesel::update(segments::table.find(id.get()))
                        .set((segments::title.eq(title), segments::updated_at.eq(now)))
                        .execute(conn)?;
                    if updated == 0 {
                        return fail(RepoError::NotFound);
                    }
                    segment(conn, id.get())
                })
                .await
            }

            async fn delete_segment(&self, id: SegmentId) -> Result<(), RepoError> {
                self.write(move |conn| {
                    let deleted = diesel::delete(segments::table.find(id.get())).execute(conn)?;
                    if deleted == 0 {
                        return fail(RepoError::NotFound);
                    }
                    Ok(())
                })
                .await
            }

            async fn add_members(
                &self,
                id: SegmentId,
                customers: &[CustomerId],
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
                        // The primary key makes overlapping concurrent adds harmless.
                        diesel::insert_into(segment_memberships::table)
                            .values(&rows)
                            .on_conflict_do_nothing()
                            .execute(conn)?;
                    }
                    Ok(())
                })
                .await
            }

            async fn remove_members(
                &self,
                id: SegmentId,
                customers: &[CustomerId],
            ) -> Result<(), RepoError> {
                let ids: Vec<i64> = customers.iter().map(|c| c.get()).collect();
                self.write(move |conn| {
                    require_segment(conn, id.get())?;
                    for chunk in load::id_chunks(&ids) {
                        diesel::delete(
                            segment_memberships::table
                                .filter(segment_memberships::segment_id.eq(id.get()))
                                .filter(segment_memberships::customer_id.eq_any(chunk)),
                        )
                        .execute(conn)?;
                    }
                    Ok(())
                })
                .await
            }
        }
    };
}
