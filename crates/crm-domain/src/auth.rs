//! OAuth 2.0 for machine clients: clients with hashed secrets, scoped bearer
//! tokens stored only as hashes, and the rule deciding which scopes a request
//! needs.
//!
//! Secrets and tokens are high-entropy random strings (at least 256 bits from
//! the operating system's CSPRNG), so a fast SHA-256 digest is a safe way to
//! store them: there is nothing to brute-force. Client secrets are compared in
//! constant time; tokens are looked up by the digest of what was presented,
//! which reveals nothing about any stored token's value.

use std::fmt;
use std::num::NonZeroUsize;
use std::sync::Arc;

use async_trait::async_trait;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::{Duration, OffsetDateTime};

use crate::time_util::now_micros;
use crate::{text, Error, FieldErrors, RepoError};

/// One scope a client may be granted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    Read,
    Write,
    CrmRead,
    CrmWrite,
}

impl Scope {
    pub const ALL: [Scope; 4] = [Scope::Read, Scope::Write, Scope::CrmRead, Scope::CrmWrite];

    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "read" => Self::Read,
            "write" => Self::Write,
            "crm:read" => Self::CrmRead,
            "crm:write" => Self::CrmWrite,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::CrmRead => "crm:read",
            Self::CrmWrite => "crm:write",
        }
    }

    fn bit(self) -> u8 {
        match self {
            Self::Read => 1,
            Self::Write => 2,
            Self::CrmRead => 4,
            Self::CrmWrite => 8,
        }
    }
}

/// A set of scopes; renders space-separated in a fixed order.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct ScopeSet(u8);

impl ScopeSet {
    pub fn all() -> Self {
        Self::ALL_SCOPES
    }

    const ALL_SCOPES: ScopeSet = ScopeSet(1 | 2 | 4 | 8);

    /// Parses a space-separated list; `Err` names the first unknown scope.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let mut set = Self::default();
        for item in raw.split_ascii_whitespace() {
            let scope = Scope::parse(item).ok_or_else(|| item.to_owned())?;
            set.0 |= scope.bit();
        }
        Ok(set)
    }

    pub fn of(scopes: &[Scope]) -> Self {
        Self(scopes.iter().fold(0, |acc, s| acc | s.bit()))
    }

    pub fn contains(self, scope: Scope) -> bool {
        self.0 & scope.bit() != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn is_subset_of(self, other: ScopeSet) -> bool {
        self.0 & !other.0 == 0
    }

    /// Whether any scope of `alternatives` is in this set.
    pub fn intersects(self, alternatives: ScopeSet) -> bool {
        self.0 & alternatives.0 != 0
    }

    pub fn iter(self) -> impl Iterator<Item = Scope> {
        Scope::ALL.into_iter().filter(move |s| self.contains(*s))
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = [Scope::CrmRead, Scope::CrmWrite, Scope::Read, Scope::Write]
            .into_iter()
            .filter(|s| self.contains(*s))
            .map(Scope::as_str)
            .collect();
        f.write_str(&names.join(" "))
    }
}

impl fmt::Debug for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ScopeSet({self})")
    }
}

/// What a request does, which decides the scopes it needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// GET, HEAD, OPTIONS.
    Read,
    /// POST, PUT, PATCH, DELETE.
    Write,
}

impl Access {
    /// The scopes of which a token needs any one.
    pub fn accepted_scopes(self) -> ScopeSet {
        match self {
            Self::Read => ScopeSet::of(&[Scope::CrmRead, Scope::Read]),
            Self::Write => ScopeSet::of(&[Scope::CrmWrite, Scope::Write]),
        }
    }
}

/// A registered client, as stored (the secret only as its digest).
#[derive(Clone, PartialEq, Eq)]
pub struct Client {
    pub id: String,
    pub name: String,
    pub secret_hash: String,
    pub scopes: ScopeSet,
    pub created_at: OffsetDateTime,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

/// A stored access token (by digest) and what it grants.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenRecord {
    pub token_hash: String,
    pub client_id: String,
    pub scopes: ScopeSet,
    pub issued_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

impl fmt::Debug for TokenRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenRecord")
            .field("client_id", &self.client_id)
            .field("scopes", &self.scopes)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// A secret value that never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// The hex SHA-256 digest of `value`.
pub fn digest(value: &str) -> String {
    let hash = Sha256::digest(value.as_bytes());
    let mut out = String::with_capacity(64);
    for byte in hash {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// `len` characters from `[A-Za-z0-9]`, uniformly, from the OS CSPRNG
/// (5.95 bits each).
pub fn random_string(len: usize) -> Result<String, Error> {
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        getrandom::fill(&mut buf)
            .map_err(|e| Error::Internal(format!("no randomness available: {e}")))?;
        for &b in &buf {
            // 248 = 4 * 62: rejecting larger bytes keeps the choice uniform.
            if b < 248 && out.len() < len {
                out.push(ALPHABET[(b % 62) as usize] as char);
            }
        }
    }
    Ok(out)
}

/// Characters in a client id (≈ 238 bits) and in secrets and tokens (≈ 286 bits).
pub const CLIENT_ID_LEN: usize = 40;
pub const SECRET_LEN: usize = 48;

/// Whether `id` could name a client: client ids are generated from
/// `[A-Za-z0-9]`, so anything else (a NUL, a non-ASCII or invalid-UTF-8
/// replacement character, an empty or huge string) names none and is refused
/// without asking the store, which may not even be able to compare it.
pub fn is_plausible_client_id(id: &str) -> bool {
    (1..=255).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Stores clients.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait ClientStore: Send + Sync + 'static {
    /// Stores a new client. MUST return `Duplicate { field: "client_id" }`
    /// when the id is taken.
    async fn insert_client(&self, client: &Client) -> Result<(), RepoError>;

    /// The client with this id, or `None`.
    async fn find_client(&self, id: &str) -> Result<Option<Client>, RepoError>;

    /// Every client, oldest first.
    async fn list_clients(&self) -> Result<Vec<Client>, RepoError>;

    /// Deletes the client and every token issued to it, in one transaction.
    /// MUST return `NotFound` when there is no such client.
    async fn delete_client(&self, id: &str) -> Result<(), RepoError>;
}

/// Stores access tokens by digest.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait TokenStore: Send + Sync + 'static {
    /// Stores a new token and, in the same transaction, deletes the client's
    /// oldest tokens (by `issued_at`, then digest) so that at most `max_live`
    /// remain, the new one included; returns how many it deleted. Concurrent
    /// calls for one client MUST NOT leave more than `max_live` together.
    /// MUST return `NotFound` when the client does not exist.
    async fn insert_token(
        &self,
        token: &TokenRecord,
        max_live: NonZeroUsize,
    ) -> Result<u64, RepoError>;

    /// The token with this digest, or `None` (expired ones included: the
    /// caller decides). MUST be a single indexed lookup.
    async fn find_token(&self, token_hash: &str) -> Result<Option<TokenRecord>, RepoError>;

    /// Deletes the token with this digest if it belongs to `client_id`;
    /// returns whether one was deleted.
    async fn revoke_token(&self, token_hash: &str, client_id: &str) -> Result<bool, RepoError>;

    /// Deletes every token that expired at or before `now`; returns how many.
    async fn delete_expired_tokens(&self, now: OffsetDateTime) -> Result<u64, RepoError>;
}

/// Why an OAuth operation was refused, in RFC 6749 terms.
#[derive(Debug)]
pub enum AuthError {
    /// Unknown client or wrong secret.
    InvalidClient,
    /// A requested scope is unknown or not allowed for the client.
    InvalidScope,
    /// The bearer token is unknown, revoked or expired.
    InvalidToken(&'static str),
    /// The store failed.
    Store(Error),
}

impl PartialEq for AuthError {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::InvalidClient, Self::InvalidClient)
            | (Self::InvalidScope, Self::InvalidScope) => true,
            (Self::InvalidToken(a), Self::InvalidToken(b)) => a == b,
            _ => false,
        }
    }
}

impl From<RepoError> for AuthError {
    fn from(error: RepoError) -> Self {
        Self::Store(error.into())
    }
}

impl From<Error> for AuthError {
    fn from(error: Error) -> Self {
        Self::Store(error)
    }
}

/// A token just issued: the only time its value exists outside the client.
#[derive(Debug)]
pub struct IssuedToken {
    pub access_token: Secret,
    pub scopes: ScopeSet,
    pub expires_in: i64,
}

/// A client just created: the only time its secret is known.
#[derive(Debug)]
pub struct CreatedClient {
    pub client: Client,
    pub secret: Secret,
}

/// What a valid bearer token grants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    pub client_id: String,
    pub scopes: ScopeSet,
    pub issued_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

/// Validated bearer tokens kept in memory, by digest, so that checking a
/// token costs no round trip to the store.
///
/// The cache is only as good as what tells it about revocations: an adapter
/// that hears every deletion of a token (PostgreSQL's LISTEN/NOTIFY) calls
/// [`TokenCache::invalidate`] for each and [`TokenCache::set_live`] as its
/// channel comes and goes. While it is not live the cache is empty and
/// unused, so a lost channel can never let a revoked token through; every
/// check then goes to the store. Entries are never served past the token's
/// expiry, and at most `capacity` are kept.
#[derive(Debug)]
pub struct TokenCache {
    state: std::sync::Mutex<CacheState>,
    capacity: usize,
    propagation: std::time::Duration,
    hits: std::sync::atomic::AtomicU64,
    misses: std::sync::atomic::AtomicU64,
}

#[derive(Debug, Default)]
struct CacheState {
    entries: std::collections::HashMap<String, Grant>,
    /// Bumped by every invalidation: a lookup that raced with one does not
    /// put what it read (possibly the revoked token) into the cache.
    generation: u64,
    live: bool,
}

impl TokenCache {
    /// An empty cache holding at most `capacity` tokens, not yet live.
    pub fn new(capacity: usize) -> Self {
        Self {
            state: std::sync::Mutex::default(),
            capacity,
            propagation: std::time::Duration::ZERO,
            hits: Default::default(),
            misses: Default::default(),
        }
    }

    /// How long a revocation takes to reach every instance's cache once it
    /// is committed (what the feeding channel needs); a revocation made here
    /// is answered only after that, so that the very next request anywhere
    /// is refused.
    pub fn with_propagation(mut self, propagation: std::time::Duration) -> Self {
        self.propagation = propagation;
        self
    }

    fn state(&self) -> std::sync::MutexGuard<'_, CacheState> {
        // A panic while holding the lock leaves a consistent map behind.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether revocations are being heard. Either way the cache is
    /// emptied: what it held may have been revoked unheard.
    pub fn set_live(&self, live: bool) {
        let mut state = self.state();
        state.entries.clear();
        state.generation += 1;
        state.live = live;
    }

    pub fn is_live(&self) -> bool {
        self.state().live
    }

    /// Forgets the token with this digest.
    pub fn invalidate(&self, token_hash: &str) {
        let mut state = self.state();
        state.entries.remove(token_hash);
        state.generation += 1;
    }

    /// Forgets every token of the client.
    pub fn invalidate_client(&self, client_id: &str) {
        let mut state = self.state();
        state
            .entries
            .retain(|_, grant| grant.client_id != client_id);
        state.generation += 1;
    }

    /// Tokens held now.
    pub fn len(&self) -> usize {
        self.state().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Lookups answered from the cache, and lookups that went to the store
    /// while it was live.
    pub fn counts(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        (self.hits.load(Relaxed), self.misses.load(Relaxed))
    }

    fn get(&self, token_hash: &str, now: OffsetDateTime) -> Option<Grant> {
        use std::sync::atomic::Ordering::Relaxed;
        let state = self.state();
        if !state.live {
            return None;
        }
        let found = state
            .entries
            .get(token_hash)
            .filter(|grant| grant.expires_at > now)
            .cloned();
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Relaxed);
        found
    }

    /// The generation to hand back to [`TokenCache::fill`].
    fn generation(&self) -> u64 {
        self.state().generation
    }

    /// Keeps `grant` unless an invalidation happened since `seen`.
    fn fill(&self, token_hash: String, grant: Grant, seen: u64) {
        let mut state = self.state();
        if !state.live || state.generation != seen || self.capacity == 0 {
            return;
        }
        if state.entries.len() >= self.capacity {
            let now = OffsetDateTime::now_utc();
            state.entries.retain(|_, g| g.expires_at > now);
            if state.entries.len() >= self.capacity {
                if let Some(victim) = state.entries.keys().next().cloned() {
                    state.entries.remove(&victim);
                }
            }
        }
        state.entries.insert(token_hash, grant);
    }
}

/// The OAuth 2.0 use cases.
#[derive(Clone)]
pub struct AuthService {
    clients: Arc<dyn ClientStore>,
    tokens: Arc<dyn TokenStore>,
    token_ttl: Duration,
    max_tokens_per_client: NonZeroUsize,
    cache: Option<Arc<TokenCache>>,
}

impl AuthService {
    pub fn new(
        clients: Arc<dyn ClientStore>,
        tokens: Arc<dyn TokenStore>,
        token_ttl: Duration,
    ) -> Self {
        Self {
            clients,
            tokens,
            token_ttl,
            max_tokens_per_client: Self::DEFAULT_MAX_TOKENS_PER_CLIENT,
            cache: None,
        }
    }

    /// Checks bearer tokens against `cache` first (see [`TokenCache`] for
    /// what keeps it correct).
    pub fn with_token_cache(mut self, cache: Arc<TokenCache>) -> Self {
        self.cache = Some(cache);
        self
    }

    /// Live tokens a client may hold unless configured otherwise.
    pub const DEFAULT_MAX_TOKENS_PER_CLIENT: NonZeroUsize = match NonZeroUsize::new(100) {
        Some(n) => n,
        None => unreachable!(),
    };

    /// Keeps at most `max` live tokens per client: issuing one more revokes
    /// the client's oldest.
    pub fn with_max_tokens_per_client(mut self, max: NonZeroUsize) -> Self {
        self.max_tokens_per_client = max;
        self
    }

    pub fn token_ttl(&self) -> Duration {
        self.token_ttl
    }

    /// Registers a client allowed `scopes` (space-separated, not empty).
    pub async fn create_client(&self, name: &str, scopes: &str) -> Result<CreatedClient, Error> {
        let mut errors = FieldErrors::new();
        let name = errors.check("name", text::required(name, 255));
        let scopes = errors.check(
            "scope",
            ScopeSet::parse(scopes)
                .map_err(|bad| {
                    format!("Unknown scope \"{bad}\"; use read, write, crm:read, crm:write.")
                })
                .and_then(|s| {
                    if s.is_empty() {
                        Err("At least one scope is required.".to_owned())
                    } else {
                        Ok(s)
                    }
                }),
        );
        errors.into_result()?;
        let secret = Secret::new(random_string(SECRET_LEN)?);
        let client = Client {
            id: random_string(CLIENT_ID_LEN)?,
            name: name.expect("checked"),
            secret_hash: digest(secret.expose()),
            scopes: scopes.expect("checked"),
            created_at: now_micros(),
        };
        self.clients.insert_client(&client).await?;
        Ok(CreatedClient { client, secret })
    }

    pub async fn list_clients(&self) -> Result<Vec<Client>, Error> {
        Ok(self.clients.list_clients().await?)
    }

    /// Deletes a client; its tokens stop working at once.
    pub async fn delete_client(&self, id: &str) -> Result<(), Error> {
        if !is_plausible_client_id(id) {
            return Err(Error::NotFound);
        }
        self.clients.delete_client(id).await?;
        if let Some(cache) = &self.cache {
            cache.invalidate_client(id);
        }
        Ok(())
    }

    /// Checks a client's credentials, in constant time for the secret.
    pub async fn authenticate_client(&self, id: &str, secret: &str) -> Result<Client, AuthError> {
        if !is_plausible_client_id(id) {
            return Err(AuthError::InvalidClient);
        }
        let client = self.clients.find_client(id).await?;
        let presented = digest(secret);
        match client {
            Some(client)
                if bool::from(presented.as_bytes().ct_eq(client.secret_hash.as_bytes())) =>
            {
                Ok(client)
            }
            _ => Err(AuthError::InvalidClient),
        }
    }

    /// Issues a token for `client` with `requested` scopes (space-separated;
    /// `None` means every scope the client is allowed). Also removes the
    /// store's expired tokens, so they are not kept forever.
    pub async fn issue_token(
        &self,
        client: &Client,
        requested: Option<&str>,
    ) -> Result<IssuedToken, AuthError> {
        let scopes = match requested {
            None => client.scopes,
            Some(raw) => {
                let set = ScopeSet::parse(raw).map_err(|_| AuthError::InvalidScope)?;
                if set.is_empty() {
                    client.scopes
                } else if set.is_subset_of(client.scopes) {
                    set
                } else {
                    return Err(AuthError::InvalidScope);
                }
            }
        };
        let now = now_micros();
        self.tokens.delete_expired_tokens(now).await?;
        let token = Secret::new(random_string(SECRET_LEN)?);
        let record = TokenRecord {
            token_hash: digest(token.expose()),
            client_id: client.id.clone(),
            scopes,
            issued_at: now,
            expires_at: now + self.token_ttl,
        };
        // The client's oldest tokens beyond the cap are revoked with it.
        self.tokens
            .insert_token(&record, self.max_tokens_per_client)
            .await?;
        Ok(IssuedToken {
            access_token: token,
            scopes,
            expires_in: self.token_ttl.whole_seconds(),
        })
    }

    /// What the bearer `token` grants, if it is known and not expired.
    pub async fn authenticate_token(&self, token: &str) -> Result<Grant, AuthError> {
        let token_hash = digest(token);
        let cache = self.cache.as_deref();
        if let Some(grant) = cache.and_then(|c| c.get(&token_hash, OffsetDateTime::now_utc())) {
            return Ok(grant);
        }
        let seen = cache.map(TokenCache::generation);
        let record = self.tokens.find_token(&token_hash).await?;
        let Some(record) = record else {
            return Err(AuthError::InvalidToken(
                "The access token is invalid or has been revoked.",
            ));
        };
        if record.expires_at <= OffsetDateTime::now_utc() {
            return Err(AuthError::InvalidToken("The access token has expired."));
        }
        let grant = Grant {
            client_id: record.client_id,
            scopes: record.scopes,
            issued_at: record.issued_at,
            expires_at: record.expires_at,
        };
        if let (Some(cache), Some(seen)) = (cache, seen) {
            cache.fill(token_hash, grant.clone(), seen);
        }
        Ok(grant)
    }

    /// Revokes `token` if `client` owns it (RFC 7009: unknown tokens are fine).
    pub async fn revoke(&self, client: &Client, token: &str) -> Result<(), AuthError> {
        let token_hash = digest(token);
        if self.tokens.revoke_token(&token_hash, &client.id).await? {
            if let Some(cache) = &self.cache {
                cache.invalidate(&token_hash);
            }
        }
        Ok(())
    }

    /// The token cache's (hits, misses), when there is one.
    pub fn token_cache_counts(&self) -> Option<(u64, u64)> {
        self.cache.as_deref().map(TokenCache::counts)
    }

    /// How long the caller of [`AuthService::revoke`] should wait before
    /// answering, so that every instance has heard of the revocation: zero
    /// without a live cache.
    pub fn revocation_propagation(&self) -> std::time::Duration {
        self.cache
            .as_deref()
            .filter(|c| c.is_live())
            .map_or(std::time::Duration::ZERO, |c| c.propagation)
    }

    /// Deletes expired tokens; returns how many.
    pub async fn purge_expired(&self) -> Result<u64, Error> {
        Ok(self.tokens.delete_expired_tokens(now_micros()).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn client(scopes: &str) -> Client {
        Client {
            id: "c1".into(),
            name: "n".into(),
            secret_hash: digest("s3cret"),
            scopes: ScopeSet::parse(scopes).unwrap(),
            created_at: datetime!(2020-01-01 0:00 UTC),
        }
    }

    fn service(clients: MockClientStore, tokens: MockTokenStore) -> AuthService {
        AuthService::new(
            Arc::new(clients),
            Arc::new(tokens),
            Duration::seconds(36000),
        )
    }

    #[test]
    fn scope_sets() {
        let set = ScopeSet::parse("crm:write read  read").unwrap();
        assert!(set.contains(Scope::Read) && set.contains(Scope::CrmWrite));
        assert!(!set.contains(Scope::Write));
        assert_eq!(set.to_string(), "crm:write read");
        assert_eq!(ScopeSet::parse("crm:read admin").unwrap_err(), "admin");
        assert!(ScopeSet::parse("read").unwrap().is_subset_of(set));
        assert!(!ScopeSet::parse("write").unwrap().is_subset_of(set));
    }

    #[test]
    fn read_and_write_need_either_alternative() {
        let read_only = ScopeSet::parse("read").unwrap();
        let crm_write = ScopeSet::parse("crm:write").unwrap();
        assert!(read_only.intersects(Access::Read.accepted_scopes()));
        assert!(!read_only.intersects(Access::Write.accepted_scopes()));
        assert!(crm_write.intersects(Access::Write.accepted_scopes()));
        assert!(!crm_write.intersects(Access::Read.accepted_scopes()));
        assert_eq!(Access::Read.accepted_scopes().to_string(), "crm:read read");
    }

    #[test]
    fn random_strings_are_alphanumeric_and_distinct() {
        let a = random_string(SECRET_LEN).unwrap();
        let b = random_string(SECRET_LEN).unwrap();
        assert_eq!(a.len(), SECRET_LEN);
        assert!(a.bytes().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
        // 48 characters of 62 possibilities carry more than 256 bits.
        assert!(SECRET_LEN as f64 * 62f64.log2() > 256.0);
    }

    #[test]
    fn digest_is_hex_sha256() {
        assert_eq!(
            digest("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn secrets_do_not_print() {
        assert_eq!(format!("{:?}", Secret::new("x")), "Secret(***)");
        assert!(!format!("{:?}", client("read")).contains(&digest("s3cret")));
    }

    #[tokio::test]
    async fn create_client_stores_only_the_digest() {
        let mut clients = MockClientStore::new();
        clients
            .expect_insert_client()
            .times(1)
            .returning(|_| Ok(()));
        let created = service(clients, MockTokenStore::new())
            .create_client("shop", "crm:read crm:write")
            .await
            .unwrap();
        assert_eq!(created.client.secret_hash, digest(created.secret.expose()));
        assert_eq!(created.client.scopes.to_string(), "crm:read crm:write");
        assert_eq!(created.client.id.len(), CLIENT_ID_LEN);
    }

    #[tokio::test]
    async fn create_client_refuses_unknown_or_no_scopes() {
        let svc = service(MockClientStore::new(), MockTokenStore::new());
        assert!(svc.create_client("shop", "admin").await.is_err());
        assert!(svc.create_client("shop", "").await.is_err());
        assert!(svc.create_client("", "read").await.is_err());
    }

    #[tokio::test]
    async fn wrong_secret_or_unknown_client_is_invalid_client() {
        let mut clients = MockClientStore::new();
        clients
            .expect_find_client()
            .returning(|id| Ok((id == "c1").then(|| client("read"))));
        let svc = service(clients, MockTokenStore::new());
        assert!(svc.authenticate_client("c1", "s3cret").await.is_ok());
        assert_eq!(
            svc.authenticate_client("c1", "nope").await.unwrap_err(),
            AuthError::InvalidClient
        );
        assert_eq!(
            svc.authenticate_client("c2", "s3cret").await.unwrap_err(),
            AuthError::InvalidClient
        );
    }

    #[tokio::test]
    async fn implausible_client_ids_never_reach_the_store() {
        // No expectation is set: any store call would panic.
        let svc = service(MockClientStore::new(), MockTokenStore::new());
        for id in ["", "a\0b", "a b", "é", "\u{fffd}", &"a".repeat(256)] {
            assert_eq!(
                svc.authenticate_client(id, "s3cret").await.unwrap_err(),
                AuthError::InvalidClient,
                "{id:?}"
            );
            assert!(matches!(svc.delete_client(id).await, Err(Error::NotFound)));
        }
        assert!(is_plausible_client_id(
            &random_string(CLIENT_ID_LEN).unwrap()
        ));
    }

    #[tokio::test]
    async fn requested_scopes_must_be_allowed() {
        let mut tokens = MockTokenStore::new();
        tokens.expect_delete_expired_tokens().returning(|_| Ok(0));
        tokens.expect_insert_token().returning(|_, _| Ok(0));
        let svc = service(MockClientStore::new(), tokens);
        let c = client("crm:read crm:write");
        assert_eq!(svc.issue_token(&c, None).await.unwrap().scopes, c.scopes);
        assert_eq!(
            svc.issue_token(&c, Some("crm:read"))
                .await
                .unwrap()
                .scopes
                .to_string(),
            "crm:read"
        );
        assert_eq!(
            svc.issue_token(&c, Some("write")).await.unwrap_err(),
            AuthError::InvalidScope
        );
        assert_eq!(
            svc.issue_token(&c, Some("bogus")).await.unwrap_err(),
            AuthError::InvalidScope
        );
    }

    #[tokio::test]
    async fn issued_token_is_stored_as_digest_with_expiry() {
        let mut tokens = MockTokenStore::new();
        tokens
            .expect_delete_expired_tokens()
            .times(1)
            .returning(|_| Ok(0));
        tokens
            .expect_insert_token()
            .withf(|t, max| {
                t.token_hash.len() == 64
                    && t.expires_at - t.issued_at == Duration::seconds(36000)
                    && *max == AuthService::DEFAULT_MAX_TOKENS_PER_CLIENT
            })
            .times(1)
            .returning(|_, _| Ok(0));
        let issued = service(MockClientStore::new(), tokens)
            .issue_token(&client("read"), None)
            .await
            .unwrap();
        assert_eq!(issued.expires_in, 36000);
        assert_eq!(issued.access_token.expose().len(), SECRET_LEN);
    }

    fn live_record(hash: &str) -> TokenRecord {
        TokenRecord {
            token_hash: hash.to_owned(),
            client_id: "c1".into(),
            scopes: ScopeSet::all(),
            issued_at: OffsetDateTime::now_utc(),
            expires_at: OffsetDateTime::now_utc() + Duration::hours(1),
        }
    }

    #[tokio::test]
    async fn a_live_cache_answers_repeated_checks_without_the_store() {
        let mut tokens = MockTokenStore::new();
        tokens
            .expect_find_token()
            .times(1)
            .returning(|hash| Ok(Some(live_record(hash))));
        let cache = Arc::new(TokenCache::new(10));
        cache.set_live(true);
        let svc = service(MockClientStore::new(), tokens).with_token_cache(cache.clone());
        for _ in 0..5 {
            assert_eq!(svc.authenticate_token("t").await.unwrap().client_id, "c1");
        }
        assert_eq!(cache.len(), 1);
    }

    #[tokio::test]
    async fn a_cache_that_is_not_live_is_not_used() {
        let mut tokens = MockTokenStore::new();
        tokens
            .expect_find_token()
            .times(3)
            .returning(|hash| Ok(Some(live_record(hash))));
        let cache = Arc::new(TokenCache::new(10));
        let svc = service(MockClientStore::new(), tokens).with_token_cache(cache.clone());
        for _ in 0..3 {
            svc.authenticate_token("t").await.unwrap();
        }
        assert!(cache.is_empty());
    }

    #[tokio::test]
    async fn invalidation_and_loss_of_the_channel_empty_the_cache() {
        let mut tokens = MockTokenStore::new();
        tokens
            .expect_find_token()
            .returning(|hash| Ok(Some(live_record(hash))));
        tokens.expect_revoke_token().returning(|_, _| Ok(true));
        let mut clients = MockClientStore::new();
        clients.expect_delete_client().returning(|_| Ok(()));
        let cache = Arc::new(TokenCache::new(10));
        cache.set_live(true);
        let svc = service(clients, tokens).with_token_cache(cache.clone());
        svc.authenticate_token("a").await.unwrap();
        svc.authenticate_token("b").await.unwrap();
        cache.invalidate(&digest("a"));
        assert_eq!(cache.len(), 1);
        svc.revoke(&client("read"), "b").await.unwrap();
        assert!(
            cache.is_empty(),
            "a revocation through this instance is local at once"
        );
        svc.authenticate_token("a").await.unwrap();
        svc.delete_client("c1").await.unwrap();
        assert!(cache.is_empty(), "deleting the client forgets its tokens");
        svc.authenticate_token("a").await.unwrap();
        cache.set_live(false);
        assert!(cache.is_empty());
    }

    #[test]
    fn a_lookup_that_raced_with_an_invalidation_is_not_cached() {
        let cache = TokenCache::new(10);
        cache.set_live(true);
        let seen = cache.generation();
        cache.invalidate("x");
        let grant = Grant {
            client_id: "c1".into(),
            scopes: ScopeSet::all(),
            issued_at: OffsetDateTime::now_utc(),
            expires_at: OffsetDateTime::now_utc() + Duration::hours(1),
        };
        cache.fill("x".into(), grant.clone(), seen);
        assert!(cache.is_empty());
        cache.fill("x".into(), grant, cache.generation());
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn the_cache_is_bounded_and_never_serves_an_expired_token() {
        let cache = TokenCache::new(3);
        cache.set_live(true);
        let now = OffsetDateTime::now_utc();
        let grant = |expires_at| Grant {
            client_id: "c1".into(),
            scopes: ScopeSet::all(),
            issued_at: now,
            expires_at,
        };
        for i in 0..10 {
            cache.fill(
                format!("t{i}"),
                grant(now + Duration::hours(1)),
                cache.generation(),
            );
        }
        assert_eq!(cache.len(), 3);
        cache.set_live(true);
        cache.fill(
            "old".into(),
            grant(now - Duration::seconds(1)),
            cache.generation(),
        );
        assert_eq!(cache.get("old", now), None);
    }

    #[tokio::test]
    async fn expired_or_unknown_tokens_are_invalid() {
        let mut tokens = MockTokenStore::new();
        tokens.expect_find_token().returning(|hash| {
            Ok((hash == digest("old")).then(|| TokenRecord {
                token_hash: hash.to_owned(),
                client_id: "c1".into(),
                scopes: ScopeSet::all(),
                issued_at: datetime!(2020-01-01 0:00 UTC),
                expires_at: datetime!(2020-01-01 10:00 UTC),
            }))
        });
        let svc = service(MockClientStore::new(), tokens);
        assert!(
            matches!(svc.authenticate_token("old").await, Err(AuthError::InvalidToken(m)) if m.contains("expired"))
        );
        assert!(matches!(
            svc.authenticate_token("new").await,
            Err(AuthError::InvalidToken(_))
        ));
    }
}
