//! Idempotency keys: a write retried with the same key runs once, and every
//! retry gets the first answer (API.md section 7, Stripe's semantics).
//!
//! A request with a key first *claims* it ([`IdempotencyStore::claim_key`]):
//! the store records the key, the request's [`Fingerprint`] and a random
//! claim token, or says why the request must not run (the answer is stored:
//! replay it; the first request still runs; the key was used with another
//! request). A request that holds a claim then runs as one *unit*
//! ([`IdempotencyStore::run_claimed`]): everything it writes through the
//! store and the answer it gives commit in one transaction, so a retry
//! after a crash finds either the stored answer or nothing written.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use async_trait::async_trait;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::RepoError;

/// The longest key, in characters.
pub const MAX_KEY_LENGTH: usize = 255;

/// How long a key lives from its first request unless configured.
pub const DEFAULT_TTL: Duration = Duration::from_secs(86_400);

/// A claim older than this whose request never finished (its server
/// stopped) is given to the next request with the key.
pub const STALE_CLAIM: Duration = Duration::from_secs(60);

/// An `Idempotency-Key` value: 1 to 255 printable ASCII characters
/// (`0x20`–`0x7E`), kept verbatim.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// The key sent as `raw`, or why it is refused.
    pub fn parse(raw: &[u8]) -> Result<Self, String> {
        if raw.is_empty() || raw.len() > MAX_KEY_LENGTH {
            return Err(format!(
                "The key must be 1 to {MAX_KEY_LENGTH} characters long."
            ));
        }
        if !raw.iter().all(|b| (0x20..=0x7e).contains(b)) {
            return Err("The key may hold printable ASCII characters only.".to_owned());
        }
        Ok(Self(
            String::from_utf8(raw.to_vec()).expect("ASCII is UTF-8"),
        ))
    }

    /// The key as sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What makes two requests the same request: the method, the path with its
/// query string byte for byte, and the SHA-256 of the body bytes as sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// The fingerprint of a request. `path_and_query` is the normalised
    /// path (no trailing slash) and, after a `?` when there is one, the
    /// query string as sent.
    pub fn of(method: &str, path_and_query: &str, body: &[u8]) -> Self {
        let body = Sha256::digest(body);
        let mut hasher = Sha256::new();
        for part in [
            method.as_bytes(),
            path_and_query.as_bytes(),
            body.as_slice(),
        ] {
            hasher.update((part.len() as u64).to_be_bytes());
            hasher.update(part);
        }
        Self(hasher.finalize().into())
    }

    /// The fingerprint stored as `hex`, if it is one.
    pub fn from_hex(hex: &str) -> Option<Self> {
        if hex.len() != 64 {
            return None;
        }
        let mut bytes = [0u8; 32];
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(Self(bytes))
    }

    /// Lower-case hex, for storing.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// An answer kept for replays: status, `Content-Type` and body, byte for
/// byte.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredResponse {
    /// The HTTP status, below 500.
    pub status: u16,
    /// The `Content-Type` header, when the answer had one.
    pub content_type: Option<String>,
    /// The body as sent.
    pub body: Vec<u8>,
}

/// Who holds a key for a running request: the key, its owner and the
/// token of this claim.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimToken {
    /// The OAuth client the key belongs to.
    pub client_id: String,
    /// The key.
    pub key: IdempotencyKey,
    /// Random, unique to this claim: a request whose claim was taken over
    /// cannot complete it.
    pub token: i64,
}

/// What claiming a key decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claim {
    /// The key was free (new, forgotten after its lifetime, or held by a
    /// request that never finished): the request runs under this claim.
    Acquired(ClaimToken),
    /// The first request with the key answered this: send it again.
    Replay(StoredResponse),
    /// The first request with the key is still running.
    InFlight,
    /// The key was used with another method, path or body.
    Mismatch,
}

/// How a unit of work ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnitOutcome {
    /// Its writes and the answer were committed together.
    Committed,
    /// It gave no answer to keep: its writes were rolled back and the key
    /// freed.
    RolledBack,
    /// Its claim had been taken over (it ran past [`STALE_CLAIM`]): its
    /// writes were rolled back.
    ClaimLost,
}

/// The work of a request that holds a claim: what it answers, `None` when
/// the answer must not be kept (a 5xx). Not `Send`: it is the request's own
/// work, which stays on the thread serving the request.
pub type UnitWork<'a> = Pin<Box<dyn Future<Output = Option<StoredResponse>> + 'a>>;

/// A unit of work in progress (see [`IdempotencyStore::run_claimed`]).
pub type UnitRun<'a> = Pin<Box<dyn Future<Output = Result<UnitOutcome, RepoError>> + 'a>>;

/// Stores idempotency keys and runs the requests that hold them atomically.
#[async_trait]
pub trait IdempotencyStore: Send + Sync + 'static {
    /// Claims `key` of `client_id` for a request with `fingerprint`, in a
    /// transaction of its own (so that a concurrent request with the key
    /// sees it at once). A key whose lifetime (`ttl` from its first
    /// request) is over counts as new. Otherwise MUST answer, in this
    /// order: `Mismatch` when the fingerprint differs; `Replay` when an
    /// answer is stored; `Acquired` (taking the claim over) when the claim
    /// is older than `stale_after`; `InFlight`. Of two racing claims of a
    /// new key exactly one is `Acquired`.
    async fn claim_key(
        &self,
        client_id: &str,
        key: &IdempotencyKey,
        fingerprint: &Fingerprint,
        now: OffsetDateTime,
        ttl: Duration,
        stale_after: Duration,
    ) -> Result<Claim, RepoError>;

    /// Runs `work` as one transaction: every write the current task makes
    /// through this store's ports while `work` runs joins it. When `work`
    /// gives an answer, the answer is stored under `claim` and committed
    /// with the writes (`Committed`), unless the claim was taken over
    /// (`ClaimLost`, nothing committed). When it gives none, the writes are
    /// rolled back and the key freed (`RolledBack`). If the unit is
    /// abandoned (the future dropped), nothing it wrote is committed.
    fn run_claimed<'a>(&'a self, claim: &'a ClaimToken, work: UnitWork<'a>) -> UnitRun<'a>;

    /// Deletes the keys whose lifetime ended before `now`; how many.
    async fn purge_idempotency_keys(&self, now: OffsetDateTime) -> Result<u64, RepoError>;
}

/// A random claim token (never 0).
pub fn claim_token() -> i64 {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).expect("the operating system gives random bytes");
    (i64::from_le_bytes(bytes) & i64::MAX).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claim_tokens_are_positive_and_differ() {
        let tokens: std::collections::HashSet<i64> = (0..64).map(|_| claim_token()).collect();
        assert_eq!(tokens.len(), 64);
        assert!(tokens.iter().all(|t| *t > 0));
    }

    #[test]
    fn keys_are_printable_ascii_of_bounded_length() {
        assert_eq!(IdempotencyKey::parse(b"a").unwrap().as_str(), "a");
        assert_eq!(
            IdempotencyKey::parse(b"\"quoted\" ~ key").unwrap().as_str(),
            "\"quoted\" ~ key"
        );
        assert!(IdempotencyKey::parse(&[b'k'; 255]).is_ok());
        assert!(IdempotencyKey::parse(&[b'k'; 256]).is_err());
        assert!(IdempotencyKey::parse(b"").is_err());
        for bad in [&b"tab\there"[..], b"nul\0", b"del\x7f", "é".as_bytes()] {
            assert!(IdempotencyKey::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn fingerprints_tell_requests_apart_and_survive_hex() {
        let a = Fingerprint::of("POST", "/api/crm/customer", b"{\"a\":1}");
        assert_eq!(
            a,
            Fingerprint::of("POST", "/api/crm/customer", b"{\"a\":1}")
        );
        for other in [
            Fingerprint::of("PUT", "/api/crm/customer", b"{\"a\":1}"),
            Fingerprint::of("POST", "/api/crm/customer?x=1", b"{\"a\":1}"),
            Fingerprint::of("POST", "/api/crm/customer", b"{\"a\": 1}"),
            Fingerprint::of("POST", "/api/crm/customerPOST", b""),
        ] {
            assert_ne!(a, other);
        }
        assert_eq!(Fingerprint::from_hex(&a.to_hex()), Some(a));
        assert_eq!(Fingerprint::from_hex("zz"), None);
    }
}
