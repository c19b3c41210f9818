/// The `oauth` module of a Diesel adapter, instantiated by
/// [`diesel_adapter!`](crate::diesel_adapter) in the adapter's crate.
#[doc(hidden)]
#[macro_export]
macro_rules! __crm_diesel_oauth {
    () => {
        // `ClientStore` and `TokenStore`.

        use crm_domain::auth::{Client, ClientStore, ScopeSet, TokenRecord, TokenStore};
        use std::num::NonZeroUsize;

        use crm_domain::RepoError;
        use diesel::prelude::*;
        use time::OffsetDateTime;

        use super::error::fail;
        use super::store::Store;
        use crate::schema::{oauth_clients, oauth_tokens};

        #[derive(Queryable, Selectable, Insertable)]
        #[diesel(table_name = oauth_clients, check_for_backend(crate::backend::Db))]
        struct ClientRow {
            id: String,
            name: String,
            secret_hash: String,
            scopes: String,
            created_at: OffsetDateTime,
        }

        /// Scopes were validated when written; an unknown one read back is dropped.
        fn scopes(raw: &str) -> ScopeSet {
            ScopeSet::parse(raw).unwrap_or_default()
        }

        impl From<ClientRow> for Client {
            fn from(row: ClientRow) -> Self {
                Client {
                    scopes: scopes(&row.scopes),
                    id: row.id,
                    name: row.name,
                    secret_hash: row.secret_hash,
                    created_at: row.created_at,
                }
            }
        }

        #[derive(Queryable, Selectable, Insertable)]
        #[diesel(table_name = oauth_tokens, check_for_backend(crate::backend::Db))]
        struct TokenRow {
            token_hash: String,
            client_id: String,
            scopes: String,
            issued_at: OffsetDateTime,
            expires_at: OffsetDateTime,
        }

        #[async_trait::async_trait]
        impl ClientStore for Store {
            async fn insert_client(&self, client: &Client) -> Result<(), RepoError> {
                let row = ClientRow {
                    id: client.id.clone(),
                    name: client.name.clone(),
                    secret_hash: client.secret_hash.clone(),
                    scopes: client.scopes.to_string(),
                    created_at: client.created_at,
                };
                self.write(move |conn| {
                    let inserted = diesel::insert_into(oauth_clients::table)
                        .values(&row)
                        .on_conflict_do_nothing()
                        .execute(conn)?;
                    if inserted == 0 {
                        return fail(RepoError::Duplicate { field: "client_id" });
                    }
                    Ok(())
                })
                .await
            }

            async fn find_client(&self, id: &str) -> Result<Option<Client>, RepoError> {
                let id = id.to_owned();
                self.run(move |conn| {
                    Ok(oauth_clients::table
                        .find(id)
                        .select(ClientRow::as_select())
                        .first::<ClientRow>(conn)
                        .optional()?
                        .map(Client::from))
                })
                .await
            }

            async fn list_clients(&self) -> Result<Vec<Client>, RepoError> {
                self.run(|conn| {
                    Ok(oauth_clients::table
                        .order((oauth_clients::created_at, oauth_clients::id))
                        .select(ClientRow::as_select())
                        .load::<ClientRow>(conn)?
                        .into_iter()
                        .map(Client::from)
                        .collect())
                })
                .await
            }

            async fn delete_client(&self, id: &str) -> Result<(), RepoError> {
                let id = id.to_owned();
                // Its tokens go by ON DELETE CASCADE in the same statement.
                self.write(move |conn| {
                    let deleted = diesel::delete(oauth_clients::table.find(id)).execute(conn)?;
                    if deleted == 0 {
                        return fail(RepoError::NotFound);
                    }
                    Ok(())
                })
                .await
            }
        }

        #[async_trait::async_trait]
        impl TokenStore for Store {
            async fn insert_token(
                &self,
                token: &TokenRecord,
                max_live: NonZeroUsize,
            ) -> Result<u64, RepoError> {
                let row = TokenRow {
                    token_hash: token.token_hash.clone(),
                    client_id: token.client_id.clone(),
                    scopes: token.scopes.to_string(),
                    issued_at: token.issued_at,
                    expires_at: token.expires_at,
                };
                // Beyond this many, the subquery's LIMIT is as good as none.
                let keep = i64::try_from(max_live.get()).unwrap_or(i64::MAX);
                self.write(move |conn| {
                    // One issue per client at a time, so concurrent issues cannot
                    // each keep `max_live` and leave more than that together.
                    if !crate::backend::lock_client(conn, &row.client_id)? {
                        return fail(RepoError::NotFound);
                    }
                    let client = row.client_id.clone();
                    diesel::insert_into(oauth_tokens::table)
                        .values(&row)
                        .execute(conn)?;
                    let beyond_cap: Vec<String> = oauth_tokens::table
                        .filter(oauth_tokens::client_id.eq(client))
                        .order((
                            oauth_tokens::issued_at.desc(),
                            oauth_tokens::token_hash.desc(),
                        ))
                        .select(oauth_tokens::token_hash)
                        .offset(keep)
                        .load(conn)?;
                    if beyond_cap.is_empty() {
                        return Ok(0);
                    }
                    let deleted = diesel::delete(
                        oauth_tokens::table.filter(oauth_tokens::token_hash.eq_any(beyond_cap)),
                    )
                    .execute(conn)?;
                    Ok(deleted as u64)
                })
                .await
            }

            async fn find_token(&self, token_hash: &str) -> Result<Option<TokenRecord>, RepoError> {
                let hash = token_hash.to_owned();
                self.run(move |conn| {
                    let row = oauth_tokens::table
                        .find(hash)
                        .select(TokenRow::as_select())
                        .first::<TokenRow>(conn)
                        .optional()?;
                    Ok(row.map(|row| TokenRecord {
                        scopes: scopes(&row.scopes),
                        token_hash: row.token_hash,
                        client_id: row.client_id,
                        issued_at: row.issued_at,
                        expires_at: row.expires_at,
                    }))
                })
                .await
            }

            async fn revoke_token(
                &self,
                token_hash: &str,
                client_id: &str,
            ) -> Result<bool, RepoError> {
                let (hash, client) = (token_hash.to_owned(), client_id.to_owned());
                self.run(move |conn| {
                    let deleted = diesel::delete(
                        oauth_tokens::table
                            .filter(oauth_tokens::token_hash.eq(hash))
                            .filter(oauth_tokens::client_id.eq(client)),
                    )
                    .execute(conn)?;
                    Ok(deleted > 0)
                })
                .await
            }

            async fn delete_expired_tokens(&self, now: OffsetDateTime) -> Result<u64, RepoError> {
                self.run(move |conn| {
                    let deleted = diesel::delete(
                        oauth_tokens::table.filter(oauth_tokens::expires_at.le(now)),
                    )
                    .execute(conn)?;
                    Ok(deleted as u64)
                })
                .await
            }
        }
    };
}
