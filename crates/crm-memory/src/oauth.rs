//! `ClientStore` and `TokenStore`.

use std::num::NonZeroUsize;

use async_trait::async_trait;
use crm_domain::auth::{Client, ClientStore, TokenRecord, TokenStore};
use crm_domain::RepoError;
use time::OffsetDateTime;

use crate::{stored, MemoryStore};

#[async_trait]
impl ClientStore for MemoryStore {
    async fn insert_client(&self, client: &Client) -> Result<(), RepoError> {
        let mut state = self.write();
        if state.clients.contains_key(&client.id) {
            return Err(RepoError::Duplicate { field: "client_id" });
        }
        let client = Client {
            created_at: stored(client.created_at),
            ..client.clone()
        };
        state.clients.insert(client.id.clone(), client);
        Ok(())
    }

    async fn find_client(&self, id: &str) -> Result<Option<Client>, RepoError> {
        Ok(self.read().clients.get(id).cloned())
    }

    async fn list_clients(&self) -> Result<Vec<Client>, RepoError> {
        let mut clients: Vec<Client> = self.read().clients.values().cloned().collect();
        clients.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(clients)
    }

    async fn delete_client(&self, id: &str) -> Result<(), RepoError> {
        let mut state = self.write();
        if state.clients.remove(id).is_none() {
            return Err(RepoError::NotFound);
        }
        state.tokens.retain(|_, token| token.client_id != id);
        Ok(())
    }
}

#[async_trait]
impl TokenStore for MemoryStore {
    async fn insert_token(
        &self,
        token: &TokenRecord,
        max_live: NonZeroUsize,
    ) -> Result<u64, RepoError> {
        let mut state = self.write();
        if !state.clients.contains_key(&token.client_id) {
            return Err(RepoError::NotFound);
        }
        if state.tokens.contains_key(&token.token_hash) {
            return Err(RepoError::Internal(
                "unexpected unique violation: token digest already stored".into(),
            ));
        }
        let token = TokenRecord {
            issued_at: stored(token.issued_at),
            expires_at: stored(token.expires_at),
            ..token.clone()
        };
        // The client's tokens, newest first (by issue, then digest); those
        // past the cap go, the new one included in the count.
        let mut own: Vec<(OffsetDateTime, &String)> = state
            .tokens
            .values()
            .filter(|t| t.client_id == token.client_id)
            .map(|t| (t.issued_at, &t.token_hash))
            .chain(std::iter::once((token.issued_at, &token.token_hash)))
            .collect();
        own.sort_unstable_by(|a, b| b.cmp(a));
        let beyond_cap: Vec<String> = own
            .into_iter()
            .skip(max_live.get())
            .map(|(_, hash)| hash.clone())
            .collect();
        state.tokens.insert(token.token_hash.clone(), token);
        for hash in &beyond_cap {
            state.tokens.remove(hash);
        }
        Ok(beyond_cap.len() as u64)
    }

    async fn find_token(&self, token_hash: &str) -> Result<Option<TokenRecord>, RepoError> {
        Ok(self.read().tokens.get(token_hash).cloned())
    }

    async fn revoke_token(&self, token_hash: &str, client_id: &str) -> Result<bool, RepoError> {
        let mut state = self.write();
        match state.tokens.get(token_hash) {
            Some(token) if token.client_id == client_id => {
                state.tokens.remove(token_hash);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn delete_expired_tokens(&self, now: OffsetDateTime) -> Result<u64, RepoError> {
        // Truncated as the SQL stores bind it; stored instants are too.
        let now = stored(now);
        let mut state = self.write();
        let before = state.tokens.len();
        state.tokens.retain(|_, token| token.expires_at > now);
        Ok((before - state.tokens.len()) as u64)
    }
}
