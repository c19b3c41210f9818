/// The `idempotency` module of a Diesel adapter, instantiated by
/// [`diesel_adapter!`](crate::diesel_adapter) in the adapter's crate.
#[doc(hidden)]
#[macro_export]
macro_rules! __crm_diesel_idempotency {
    () => {
        // `IdempotencyStore`: claims decided by the primary key and by
        // compare-and-set on the claim token, so racing requests agree on
        // one holder; a holder's writes and answer commit in one unit.

        use std::time::Duration;

        use crate::backend::Conn;
        use crm_domain::idempotency::{
            claim_token, Claim, ClaimToken, Fingerprint, IdempotencyKey, IdempotencyStore,
            StoredResponse, UnitOutcome, UnitRun, UnitWork,
        };
        use crm_domain::time_util::span;
        use crm_domain::RepoError;
        use diesel::prelude::*;
        use time::OffsetDateTime;

        use super::error::{StoreError, StoreResult};
        use super::store::Store;
        use crate::schema::idempotency_keys as keys;

        #[derive(Queryable, Selectable)]
        #[diesel(table_name = keys, check_for_backend(crate::backend::Db))]
        struct KeyRow {
            fingerprint: String,
            claim: i64,
            started_at: OffsetDateTime,
            expires_at: OffsetDateTime,
            status: Option<i16>,
            content_type: Option<String>,
            body: Option<Vec<u8>>,
        }

        /// Attempts at a claim before giving up on a key that keeps
        /// changing under it (each attempt lost a race to another claim).
        const CLAIM_ATTEMPTS: usize = 5;

        /// A claim about to be made: the request's key and fingerprint, a
        /// fresh token, and the key's lifetime from `now`.
        struct NewClaim {
            client: String,
            key: IdempotencyKey,
            fingerprint: String,
            token: i64,
            now: OffsetDateTime,
            ttl: time::Duration,
        }

        impl NewClaim {
            /// Inserts the key unless it is there; whether it was new.
            fn insert(&self, conn: &mut Conn) -> StoreResult<bool> {
                let inserted = diesel::insert_into(keys::table)
                    .values((
                        keys::client_id.eq(&self.client),
                        keys::key.eq(self.key.as_str()),
                        keys::fingerprint.eq(&self.fingerprint),
                        keys::claim.eq(self.token),
                        keys::started_at.eq(self.now),
                        keys::expires_at.eq(self.now + self.ttl),
                    ))
                    .on_conflict_do_nothing()
                    .execute(conn)?;
                Ok(inserted == 1)
            }

            fn acquired(self) -> Claim {
                Claim::Acquired(ClaimToken {
                    client_id: self.client,
                    key: self.key,
                    token: self.token,
                })
            }
        }

        /// Decides a claim of a key that may be there already.
        fn claim(
            conn: &mut Conn,
            new: NewClaim,
            stale_after: time::Duration,
        ) -> StoreResult<Claim> {
            let (client, key) = (new.client.as_str(), new.key.as_str());
            let (fingerprint, token, now, ttl) =
                (new.fingerprint.as_str(), new.token, new.now, new.ttl);
            for _ in 0..CLAIM_ATTEMPTS {
                if new.insert(conn)? {
                    return Ok(new.acquired());
                }
                let Some(row) = keys::table
                    .find((client, key))
                    .select(KeyRow::as_select())
                    .first::<KeyRow>(conn)
                    .optional()?
                else {
                    continue; // purged in between: insert again
                };
                let this = keys::table
                    .find((client, key))
                    .filter(keys::claim.eq(row.claim));
                if row.expires_at <= now {
                    // Forgotten: the key starts over with this request.
                    let taken = diesel::update(this)
                        .set((
                            keys::fingerprint.eq(fingerprint),
                            keys::claim.eq(token),
                            keys::started_at.eq(now),
                            keys::expires_at.eq(now + ttl),
                            keys::status.eq(None::<i16>),
                            keys::content_type.eq(None::<String>),
                            keys::body.eq(None::<Vec<u8>>),
                        ))
                        .execute(conn)?;
                    if taken == 1 {
                        return Ok(new.acquired());
                    }
                    continue;
                }
                if row.fingerprint != fingerprint {
                    return Ok(Claim::Mismatch);
                }
                if let Some(status) = row.status {
                    return Ok(Claim::Replay(StoredResponse {
                        status: u16::try_from(status).unwrap_or(500),
                        content_type: row.content_type,
                        body: row.body.unwrap_or_default(),
                    }));
                }
                if row.started_at <= now - stale_after {
                    // Its request never finished (its server stopped).
                    let taken = diesel::update(this.filter(keys::status.is_null()))
                        .set((keys::claim.eq(token), keys::started_at.eq(now)))
                        .execute(conn)?;
                    if taken == 1 {
                        return Ok(new.acquired());
                    }
                    continue;
                }
                return Ok(Claim::InFlight);
            }
            Err(StoreError::Repo(RepoError::Unavailable(
                "the idempotency key kept changing; try again".to_owned(),
            )))
        }

        #[async_trait::async_trait]
        impl IdempotencyStore for Store {
            async fn claim_key(
                &self,
                client_id: &str,
                key: &IdempotencyKey,
                fingerprint: &Fingerprint,
                now: OffsetDateTime,
                ttl: Duration,
                stale_after: Duration,
            ) -> Result<Claim, RepoError> {
                let new = NewClaim {
                    client: client_id.to_owned(),
                    key: key.clone(),
                    fingerprint: fingerprint.to_hex(),
                    token: claim_token(),
                    now,
                    ttl: span(ttl),
                };
                let stale_after = span(stale_after);
                // A new key, the common case, is one statement committing
                // on its own; a key already there is decided in a
                // transaction.
                let (new, inserted) = self
                    .run(move |conn| {
                        let inserted = new.insert(conn)?;
                        Ok((new, inserted))
                    })
                    .await?;
                if inserted {
                    return Ok(new.acquired());
                }
                self.write(move |conn| claim(conn, new, stale_after)).await
            }

            fn run_claimed<'a>(&'a self, claim: &'a ClaimToken, work: UnitWork<'a>) -> UnitRun<'a> {
                Box::pin(self.run_unit(claim, work))
            }

            async fn purge_idempotency_keys(&self, now: OffsetDateTime) -> Result<u64, RepoError> {
                self.write(move |conn| {
                    let deleted = diesel::delete(keys::table.filter(keys::expires_at.lt(now)))
                        .execute(conn)?;
                    Ok(u64::try_from(deleted).unwrap_or(0))
                })
                .await
            }
        }

        impl Store {
            /// `run_claimed`: the unit, then freeing the key when it gave
            /// no answer to keep.
            async fn run_unit(
                &self,
                claim: &ClaimToken,
                work: UnitWork<'_>,
            ) -> Result<UnitOutcome, RepoError> {
                let client = claim.client_id.clone();
                let key = claim.key.as_str().to_owned();
                let token = claim.token;
                let held = {
                    let (client, key) = (client.clone(), key.clone());
                    move || {
                        keys::table
                            .find((client, key))
                            .filter(keys::claim.eq(token))
                            .filter(keys::status.is_null())
                    }
                };
                let stored = held.clone();
                let outcome = self
                    .unit(
                        |_| Ok(()),
                        work,
                        move |conn, answer: Option<StoredResponse>| {
                            let Some(answer) = answer else {
                                return Ok((false, UnitOutcome::RolledBack));
                            };
                            let status = i16::try_from(answer.status).unwrap_or(i16::MAX);
                            let kept = diesel::update(stored())
                                .set((
                                    keys::status.eq(Some(status)),
                                    keys::content_type.eq(answer.content_type),
                                    keys::body.eq(Some(answer.body)),
                                ))
                                .execute(conn)?;
                            Ok(if kept == 1 {
                                (true, UnitOutcome::Committed)
                            } else {
                                (false, UnitOutcome::ClaimLost)
                            })
                        },
                    )
                    .await?;
                if outcome == UnitOutcome::RolledBack {
                    // No answer to keep: the key is free for the next request.
                    self.write(move |conn| {
                        diesel::delete(held()).execute(conn)?;
                        Ok(())
                    })
                    .await?;
                }
                Ok(outcome)
            }
        }
    };
}
