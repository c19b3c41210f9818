/// The `webhooks` module of a Diesel adapter, instantiated by
/// [`diesel_adapter!`](crate::diesel_adapter) in the adapter's crate.
#[doc(hidden)]
#[macro_export]
macro_rules! __crm_diesel_webhooks {
    () => {
        // `WebhookRepository`. Deliveries are recorded by the migrations'
        // trigger on `crm_events`, in the transaction of each event; this
        // module keeps endpoints, lists deliveries, and claims and records
        // attempts.

        use crate::backend::{Conn, Instant};
        use crm_domain::event::EventKind;
        use crm_domain::page::{Page, PageRequest};
        use crm_domain::webhook::{
            AttemptRecord, ClaimRequest, ClaimedDelivery, Delivery, DeliveryId, DeliveryStats,
            DeliveryStatus, Endpoint, EndpointId, EndpointPatch, NewEndpoint, Subscription,
            WebhookRepository, WebhookSecret,
        };
        use crm_domain::RepoError;
        use diesel::prelude::*;
        use diesel::sql_types::BigInt;
        use time::OffsetDateTime;

        use super::error::{StoreError, StoreResult};
        use super::events::{code, kind_of, EventRow};
        use super::store::Store;
        use crate::schema::{crm_events, crm_webhook_deliveries as d, crm_webhook_endpoints as e};

        /// The mask of `["*"]`: every bit, so kinds added later are included.
        const ALL_KINDS: i64 = -1;

        fn mask(subscription: &Subscription) -> i64 {
            match subscription {
                Subscription::All => ALL_KINDS,
                Subscription::Kinds(kinds) => kinds
                    .iter()
                    .fold(0, |mask, kind| mask | (1i64 << code(*kind))),
            }
        }

        fn subscription(mask: i64) -> Subscription {
            if mask == ALL_KINDS {
                return Subscription::All;
            }
            Subscription::Kinds(
                EventKind::ALL
                    .into_iter()
                    .filter(|kind| mask & (1i64 << code(*kind)) != 0)
                    .collect(),
            )
        }

        fn status_code(status: DeliveryStatus) -> i16 {
            match status {
                DeliveryStatus::Pending => 0,
                DeliveryStatus::Delivered => 1,
                DeliveryStatus::Failed => 2,
            }
        }

        fn broken(what: &str) -> StoreError {
            StoreError::Repo(RepoError::Internal(format!("stored delivery has {what}")))
        }

        fn status_of(code: i16) -> StoreResult<DeliveryStatus> {
            match code {
                0 => Ok(DeliveryStatus::Pending),
                1 => Ok(DeliveryStatus::Delivered),
                2 => Ok(DeliveryStatus::Failed),
                _ => Err(broken("an unknown status")),
            }
        }

        #[derive(Queryable, Selectable)]
        #[diesel(table_name = e, check_for_backend(crate::backend::Db))]
        struct EndpointRow {
            id: i64,
            url: String,
            event_mask: i64,
            description: String,
            is_active: bool,
            created_at: OffsetDateTime,
        }

        impl EndpointRow {
            fn into_endpoint(self) -> StoreResult<Endpoint> {
                Ok(Endpoint {
                    id: EndpointId::new(self.id).ok_or_else(|| broken("a bad endpoint id"))?,
                    url: self.url,
                    subscription: subscription(self.event_mask),
                    description: self.description,
                    is_active: self.is_active,
                    created_at: self.created_at,
                })
            }
        }

        #[derive(Insertable)]
        #[diesel(table_name = e)]
        struct NewRow<'a> {
            url: &'a str,
            event_mask: i64,
            description: &'a str,
            is_active: bool,
            secret: &'a str,
            created_at: OffsetDateTime,
        }

        #[derive(AsChangeset)]
        #[diesel(table_name = e)]
        struct Changes<'a> {
            url: Option<&'a str>,
            event_mask: Option<i64>,
            description: Option<&'a str>,
            is_active: Option<bool>,
        }

        /// A delivery with the id and kind of its event.
        type DeliveryColumns = (
            d::id,
            d::endpoint_id,
            crm_events::id,
            crm_events::kind,
            d::status,
            d::attempts,
            d::last_status_code,
            d::last_error,
            d::next_attempt_at,
            d::created_at,
        );

        const DELIVERY: DeliveryColumns = (
            d::id,
            d::endpoint_id,
            crm_events::id,
            crm_events::kind,
            d::status,
            d::attempts,
            d::last_status_code,
            d::last_error,
            d::next_attempt_at,
            d::created_at,
        );

        type DeliveryRow = (
            i64,
            i64,
            Option<i64>,
            i16,
            i16,
            i32,
            Option<i32>,
            String,
            Option<OffsetDateTime>,
            OffsetDateTime,
        );

        fn delivery_of(row: DeliveryRow) -> StoreResult<Delivery> {
            let (id, endpoint, event_id, kind, status, attempts, last_code, last_error, next, at) =
                row;
            Ok(Delivery {
                id: DeliveryId::new(id).ok_or_else(|| broken("a bad id"))?,
                endpoint: EndpointId::new(endpoint).ok_or_else(|| broken("a bad endpoint"))?,
                event_id: event_id.ok_or_else(|| broken("an unpublished event"))?,
                event_kind: kind_of(kind).ok_or_else(|| broken("an unknown event kind"))?,
                status: status_of(status)?,
                attempts: u32::try_from(attempts).unwrap_or(0),
                last_status_code: last_code.and_then(|c| u16::try_from(c).ok()),
                last_error,
                next_attempt_at: next,
                created_at: at,
            })
        }

        fn endpoint(conn: &mut Conn, id: EndpointId) -> StoreResult<Endpoint> {
            e::table
                .find(id.get())
                .select(EndpointRow::as_select())
                .first(conn)
                .optional()?
                .ok_or(StoreError::Repo(RepoError::NotFound))?
                .into_endpoint()
        }

        fn delivery(
            conn: &mut Conn,
            endpoint: EndpointId,
            id: DeliveryId,
        ) -> StoreResult<Delivery> {
            let row: Option<DeliveryRow> = d::table
                .inner_join(crm_events::table)
                .filter(d::id.eq(id.get()))
                .filter(d::endpoint_id.eq(endpoint.get()))
                .filter(crm_events::id.is_not_null())
                .select(DELIVERY)
                .first(conn)
                .optional()?;
            delivery_of(row.ok_or(StoreError::Repo(RepoError::NotFound))?)
        }

        fn offset_limit(page: PageRequest) -> (i64, i64) {
            (
                i64::try_from(page.offset()).unwrap_or(i64::MAX),
                i64::try_from(page.size()).unwrap_or(i64::MAX),
            )
        }

        #[derive(QueryableByName)]
        struct Id {
            #[diesel(sql_type = BigInt)]
            id: i64,
        }

        /// The active endpoints with a delivery due at `now` and not
        /// claimed. `OFFSET 0` keeps PostgreSQL from turning the EXISTS into
        /// a join that reads every pending delivery: each endpoint is one
        /// probe of the claims' index.
        fn waiting_endpoints(conn: &mut Conn, now: OffsetDateTime) -> StoreResult<Vec<i64>> {
            let ids: Vec<Id> = diesel::sql_query(
                "SELECT e.id FROM crm_webhook_endpoints e WHERE e.is_active AND EXISTS ( \
                     SELECT 1 FROM crm_webhook_deliveries w \
                     WHERE w.endpoint_id = e.id AND w.status = 0 AND w.next_attempt_at <= $1 \
                       AND (w.lease_until IS NULL OR w.lease_until <= $1) LIMIT 1 OFFSET 0) \
                 ORDER BY e.id",
            )
            .bind::<Instant, _>(now)
            .load(conn)?;
            Ok(ids.into_iter().map(|row| row.id).collect())
        }

        /// Leases at most `limit` pending deliveries of `endpoint` to
        /// `token` until `until`, the earliest due first; their ids.
        fn claim_for(
            conn: &mut Conn,
            endpoint: i64,
            now: OffsetDateTime,
            until: OffsetDateTime,
            token: i64,
            limit: i64,
        ) -> StoreResult<Vec<i64>> {
            let sql = format!(
                "UPDATE crm_webhook_deliveries SET lease_until = $1, lease_token = $2 \
                 WHERE id IN (SELECT w.id FROM crm_webhook_deliveries w \
                     WHERE w.endpoint_id = $3 AND w.status = 0 AND w.next_attempt_at <= $4 \
                       AND (w.lease_until IS NULL OR w.lease_until <= $4) \
                       AND EXISTS (SELECT 1 FROM crm_events v \
                                   WHERE v.seq = w.event_seq AND v.id IS NOT NULL) \
                     ORDER BY w.next_attempt_at, w.id LIMIT $5{}) \
                 RETURNING id",
                crate::backend::CLAIM_LOCK
            );
            let ids: Vec<Id> = diesel::sql_query(sql)
                .bind::<Instant, _>(until)
                .bind::<BigInt, _>(token)
                .bind::<BigInt, _>(endpoint)
                .bind::<Instant, _>(now)
                .bind::<BigInt, _>(limit)
                .load(conn)?;
            Ok(ids.into_iter().map(|row| row.id).collect())
        }

        #[async_trait::async_trait]
        impl WebhookRepository for Store {
            async fn create_endpoint(&self, new: &NewEndpoint) -> Result<Endpoint, RepoError> {
                let new = new.clone();
                self.write(move |conn| {
                    diesel::insert_into(e::table)
                        .values(&NewRow {
                            url: new.url.as_str(),
                            event_mask: mask(&new.subscription),
                            description: &new.description,
                            is_active: new.is_active,
                            secret: new.secret.expose(),
                            created_at: new.created_at,
                        })
                        .returning(EndpointRow::as_returning())
                        .get_result(conn)?
                        .into_endpoint()
                })
                .await
            }

            async fn endpoints(&self, page: PageRequest) -> Result<Page<Endpoint>, RepoError> {
                self.read(move |conn| {
                    let count: i64 = e::table.count().get_result(conn)?;
                    let count = u64::try_from(count).unwrap_or(0);
                    if page.offset() >= count {
                        return Ok(Page {
                            count,
                            items: Vec::new(),
                            request: page,
                        });
                    }
                    let (offset, limit) = offset_limit(page);
                    let rows: Vec<EndpointRow> = e::table
                        .order(e::id)
                        .select(EndpointRow::as_select())
                        .offset(offset)
                        .limit(limit)
                        .load(conn)?;
                    Ok(Page {
                        count,
                        items: rows
                            .into_iter()
                            .map(EndpointRow::into_endpoint)
                            .collect::<StoreResult<_>>()?,
                        request: page,
                    })
                })
                .await
            }

            async fn endpoint(&self, id: EndpointId) -> Result<Endpoint, RepoError> {
                self.read(move |conn| endpoint(conn, id)).await
            }

            async fn update_endpoint(
                &self,
                id: EndpointId,
                patch: &EndpointPatch,
            ) -> Result<Endpoint, RepoError> {
                let patch = patch.clone();
                self.write(move |conn| {
                    let changes = Changes {
                        url: patch.url.as_ref().map(|url| url.as_str()),
                        event_mask: patch.subscription.as_ref().map(mask),
                        description: patch.description.as_deref(),
                        is_active: patch.is_active,
                    };
                    if changes.url.is_none()
                        && changes.event_mask.is_none()
                        && changes.description.is_none()
                        && changes.is_active.is_none()
                    {
                        return endpoint(conn, id);
                    }
                    diesel::update(e::table.find(id.get()))
                        .set(&changes)
                        .returning(EndpointRow::as_returning())
                        .get_result(conn)
                        .optional()?
                        .ok_or(StoreError::Repo(RepoError::NotFound))?
                        .into_endpoint()
                })
                .await
            }

            async fn delete_endpoint(&self, id: EndpointId) -> Result<(), RepoError> {
                self.write(move |conn| {
                    match diesel::delete(e::table.find(id.get())).execute(conn)? {
                        0 => Err(StoreError::Repo(RepoError::NotFound)),
                        _ => Ok(()),
                    }
                })
                .await
            }

            async fn deliveries(
                &self,
                endpoint: EndpointId,
                page: PageRequest,
            ) -> Result<Page<Delivery>, RepoError> {
                if crate::backend::PUBLISHES_EVENTS {
                    crm_domain::event::EventRepository::publish_events(self).await?;
                }
                self.read(move |conn| {
                    self::endpoint(conn, endpoint)?;
                    let listed = || {
                        d::table
                            .inner_join(crm_events::table)
                            .filter(d::endpoint_id.eq(endpoint.get()))
                            .filter(crm_events::id.is_not_null())
                    };
                    let count: i64 = listed().count().get_result(conn)?;
                    let count = u64::try_from(count).unwrap_or(0);
                    if page.offset() >= count {
                        return Ok(Page {
                            count,
                            items: Vec::new(),
                            request: page,
                        });
                    }
                    let (offset, limit) = offset_limit(page);
                    let rows: Vec<DeliveryRow> = listed()
                        .order(d::id.desc())
                        .select(DELIVERY)
                        .offset(offset)
                        .limit(limit)
                        .load(conn)?;
                    Ok(Page {
                        count,
                        items: rows
                            .into_iter()
                            .map(delivery_of)
                            .collect::<StoreResult<_>>()?,
                        request: page,
                    })
                })
                .await
            }

            async fn delivery(
                &self,
                endpoint: EndpointId,
                id: DeliveryId,
            ) -> Result<Delivery, RepoError> {
                self.read(move |conn| delivery(conn, endpoint, id)).await
            }

            async fn retry_delivery(
                &self,
                endpoint: EndpointId,
                id: DeliveryId,
                now: OffsetDateTime,
            ) -> Result<Delivery, RepoError> {
                self.write(move |conn| {
                    // Found first: a delivery of another endpoint, or of an
                    // event not yet listable, is not this endpoint's to retry.
                    delivery(conn, endpoint, id)?;
                    diesel::update(d::table.find(id.get()))
                        .set((
                            d::status.eq(status_code(DeliveryStatus::Pending)),
                            d::next_attempt_at.eq(Some(now)),
                        ))
                        .execute(conn)?;
                    delivery(conn, endpoint, id)
                })
                .await
            }

            async fn claim_deliveries(
                &self,
                request: &ClaimRequest,
            ) -> Result<Vec<ClaimedDelivery>, RepoError> {
                let request = request.clone();
                // No transaction: each claiming UPDATE is atomic by itself
                // (its subquery's row locks last as long as the statement),
                // and what it leased stays leased once it has committed.
                self.run(move |conn| {
                    let now = request.now;
                    let waiting = waiting_endpoints(conn, now)?;
                    let token = crm_domain::idempotency::claim_token();
                    let mut left = request.limit;
                    let mut claimed = Vec::new();
                    for id in waiting {
                        let Some(endpoint) = EndpointId::new(id) else {
                            continue;
                        };
                        let free = request.free_for(endpoint).min(left);
                        if free == 0 {
                            continue;
                        }
                        let limit = i64::try_from(free).unwrap_or(i64::MAX);
                        let ids = claim_for(conn, id, now, request.lease_until, token, limit)?;
                        left = left.saturating_sub(ids.len());
                        claimed.extend(ids);
                        if left == 0 {
                            break;
                        }
                    }
                    if claimed.is_empty() {
                        return Ok(Vec::new());
                    }
                    let rows: Vec<(i64, i64, i32, String, String, EventRow)> = d::table
                        .inner_join(e::table)
                        .inner_join(crm_events::table)
                        .filter(d::id.eq_any(&claimed))
                        .order((d::next_attempt_at, d::id))
                        .select((
                            d::id,
                            d::endpoint_id,
                            d::attempts,
                            e::url,
                            e::secret,
                            EventRow::as_select(),
                        ))
                        .load(conn)?;
                    rows.into_iter()
                        .map(|(id, endpoint, attempts, url, secret, event)| {
                            Ok(ClaimedDelivery {
                                id: DeliveryId::new(id).ok_or_else(|| broken("a bad id"))?,
                                endpoint: EndpointId::new(endpoint)
                                    .ok_or_else(|| broken("a bad endpoint"))?,
                                url,
                                secret: WebhookSecret::from_stored(secret),
                                event: event.into_event()?,
                                attempts: u32::try_from(attempts).unwrap_or(0),
                                lease: token,
                            })
                        })
                        .collect()
                })
                .await
            }

            async fn record_attempt(
                &self,
                claim: &ClaimedDelivery,
                record: &AttemptRecord,
            ) -> Result<bool, RepoError> {
                let (id, lease) = (claim.id.get(), claim.lease);
                let record = record.clone();
                // One UPDATE, atomic by itself: no transaction around it.
                self.run(move |conn| {
                    let updated = diesel::update(
                        d::table
                            .filter(d::id.eq(id))
                            .filter(d::lease_token.eq(lease)),
                    )
                    .set((
                        d::attempts.eq(d::attempts + 1),
                        d::status.eq(status_code(record.status)),
                        d::last_status_code.eq(record.last_status_code.map(i32::from)),
                        d::last_error.eq(&record.last_error),
                        d::next_attempt_at.eq(record.next_attempt_at),
                        d::lease_until.eq(None::<OffsetDateTime>),
                        d::lease_token.eq(None::<i64>),
                    ))
                    .execute(conn)?;
                    Ok(updated == 1)
                })
                .await
            }

            async fn delivery_stats(&self) -> Result<DeliveryStats, RepoError> {
                self.read(move |conn| {
                    let pending =
                        d::table.filter(d::status.eq(status_code(DeliveryStatus::Pending)));
                    let count: i64 = pending.count().get_result(conn)?;
                    // Both read every pending delivery, through the one
                    // index over them (the claims'): pending deliveries are
                    // few unless a receiver is down.
                    let oldest: Option<OffsetDateTime> = pending
                        .order(d::created_at)
                        .select(d::created_at)
                        .first(conn)
                        .optional()?;
                    let failed: i64 = d::table
                        .filter(d::status.eq(status_code(DeliveryStatus::Failed)))
                        .count()
                        .get_result(conn)?;
                    Ok(DeliveryStats {
                        pending: u64::try_from(count).unwrap_or(0),
                        failed: u64::try_from(failed).unwrap_or(0),
                        oldest_pending: oldest,
                    })
                })
                .await
            }
        }

        /// The id of the oldest listable event with a pending delivery:
        /// retention keeps it and every later event.
        pub fn oldest_pending_event(conn: &mut Conn) -> StoreResult<Option<i64>> {
            Ok(d::table
                .inner_join(crm_events::table)
                .filter(d::status.eq(status_code(DeliveryStatus::Pending)))
                .select(diesel::dsl::min(crm_events::id))
                .first::<Option<i64>>(conn)?)
        }
    };
}
