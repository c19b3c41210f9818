//! Webhooks: endpoints that get every event of the change feed they
//! subscribe to, POSTed and signed as Standard Webhooks specifies, with
//! retries on a schedule and a log of deliveries.
//!
//! A delivery is recorded by the store in the transaction of the event it
//! delivers, for every endpoint active and subscribed at that moment (the
//! transactional outbox): an event that commits always has its deliveries,
//! one that rolls back has none. Deliveries live in the store, so they
//! survive restarts, and any number of processes share them by claiming
//! due deliveries with a lease ([`WebhookRepository::claim_deliveries`]):
//! a process that dies lets its claims lapse and another makes the attempt
//! again. Delivery is at least once and not ordered.
//!
//! This module holds the rules: what an endpoint is, which addresses are
//! refused ([`is_refused_address`]), how an attempt is signed ([`sign`]),
//! and when the next attempt is due ([`RetrySchedule`]). Sending is the
//! caller's (an HTTP client); resolving host names is an [`AddressGuard`].

use std::collections::BTreeSet;
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use time::OffsetDateTime;

use crate::event::{Event, EventKind};
use crate::page::{Page, PageRequest};
use crate::time_util::now_micros;
use crate::{text, Error, FieldErrors, RepoError};

/// A positive 64-bit id newtype: built from a positive integer, parsed from
/// a path segment of digits only.
macro_rules! positive_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(i64);

        impl $name {
            pub fn new(raw: i64) -> Option<Self> {
                (raw > 0).then_some(Self(raw))
            }

            /// A path segment as an id: digits only, positive.
            pub fn parse(raw: &str) -> Option<Self> {
                parse_id(raw).and_then(Self::new)
            }

            pub fn get(self) -> i64 {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

positive_id!(
    /// Positive 64-bit integer identifying a webhook endpoint.
    EndpointId
);
positive_id!(
    /// Positive 64-bit integer identifying a delivery.
    DeliveryId
);

fn parse_id(raw: &str) -> Option<i64> {
    if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    raw.parse().ok()
}

/// The longest endpoint URL accepted.
pub const MAX_URL_CHARS: usize = 2000;

/// The longest description accepted.
pub const MAX_DESCRIPTION_CHARS: usize = 255;

/// An endpoint's URL: absolute, `http` or `https`, with a host, at most
/// [`MAX_URL_CHARS`] characters. Whether its host may be reached is the
/// [`AddressGuard`]'s question.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointUrl(url::Url);

impl EndpointUrl {
    pub fn parse(raw: &str) -> Result<Self, String> {
        const INVALID: &str = "Enter a valid URL.";
        text::no_null_characters(raw)?;
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err("This field may not be blank.".into());
        }
        if trimmed.chars().count() > MAX_URL_CHARS {
            return Err(format!(
                "Ensure this field has no more than {MAX_URL_CHARS} characters."
            ));
        }
        let url = url::Url::parse(trimmed).map_err(|_| INVALID.to_string())?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err("Enter a valid URL with the scheme http or https.".into());
        }
        match url.host() {
            None => return Err(INVALID.into()),
            Some(url::Host::Domain("")) => return Err(INVALID.into()),
            Some(_) => {}
        }
        if url.as_str().chars().count() > MAX_URL_CHARS {
            return Err(format!(
                "Ensure this field has no more than {MAX_URL_CHARS} characters."
            ));
        }
        Ok(Self(url))
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The host as written: a domain name, or an IP literal.
    pub fn host(&self) -> Host<'_> {
        match self.0.host() {
            Some(url::Host::Ipv4(ip)) => Host::Ip(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Host::Ip(IpAddr::V6(ip)),
            Some(url::Host::Domain(name)) => Host::Name(name),
            None => Host::Name(""),
        }
    }

    /// The port connections go to (the scheme's default when none is
    /// written).
    pub fn port(&self) -> u16 {
        self.0.port_or_known_default().unwrap_or(80)
    }
}

/// Where an endpoint URL points.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Host<'a> {
    /// A name to resolve.
    Name(&'a str),
    /// An IP literal, taken as is.
    Ip(IpAddr),
}

/// Whether connections to `ip` are refused (unless private addresses are
/// allowed): unspecified, loopback, link-local, private and shared
/// addresses, in IPv4, IPv6 and IPv4-mapped IPv6 forms.
pub fn is_refused_address(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            a == 0
                || a == 127
                || a == 10
                || (a == 169 && b == 254)
                || (a == 172 && (16..32).contains(&b))
                || (a == 192 && b == 168)
                || (a == 100 && (64..128).contains(&b))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_refused_address(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            v6.is_unspecified()
                || v6.is_loopback()
                || (first & 0xffc0) == 0xfe80
                || (first & 0xfe00) == 0xfc00
        }
    }
}

/// The message of a URL refused for its address.
pub const REFUSED_ADDRESS: &str =
    "The host resolves to an address that is not allowed (private, loopback, link-local or unspecified).";

/// Decides whether an endpoint URL's host may be reached: resolves its name
/// and refuses the addresses [`is_refused_address`] names (unless the
/// deployment allows private addresses). Implemented where there is a
/// resolver.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait AddressGuard: Send + Sync + 'static {
    /// `Err` with the message for the `url` field when the host does not
    /// resolve or resolves to a refused address.
    async fn check(&self, url: &EndpointUrl) -> Result<(), String>;
}

/// Which event kinds an endpoint gets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Subscription {
    /// Every kind, including kinds added later (`["*"]`).
    All,
    /// These kinds; never empty.
    Kinds(BTreeSet<EventKind>),
}

impl Subscription {
    /// The wire list: `["*"]`, or event type names, duplicates dropped.
    pub fn parse<S: AsRef<str>>(names: &[S]) -> Result<Self, String> {
        if names.is_empty() {
            return Err("This list may not be empty.".into());
        }
        if names.iter().any(|n| n.as_ref() == "*") {
            if names.iter().all(|n| n.as_ref() == "*") {
                return Ok(Self::All);
            }
            return Err("\"*\" must be the only event type.".into());
        }
        let mut kinds = BTreeSet::new();
        for name in names {
            let name = name.as_ref();
            let kind = EventKind::from_name(name)
                .ok_or_else(|| format!("\"{name}\" is not a valid choice."))?;
            kinds.insert(kind);
        }
        Ok(Self::Kinds(kinds))
    }

    /// Whether events of `kind` are delivered.
    pub fn includes(&self, kind: EventKind) -> bool {
        match self {
            Self::All => true,
            Self::Kinds(kinds) => kinds.contains(&kind),
        }
    }

    /// The wire list, sorted.
    pub fn names(&self) -> Vec<&'static str> {
        match self {
            Self::All => vec!["*"],
            Self::Kinds(kinds) => {
                let mut names: Vec<_> = kinds.iter().map(|k| k.name()).collect();
                names.sort_unstable();
                names
            }
        }
    }
}

/// An endpoint's signing secret: `whsec_` and the base64 (standard,
/// padded) of 32 random bytes. Shown once, when the endpoint is created.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(String);

impl WebhookSecret {
    const PREFIX: &'static str = "whsec_";

    /// A fresh secret from the OS CSPRNG.
    pub fn generate() -> Result<Self, Error> {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key)
            .map_err(|e| Error::Internal(format!("no randomness available: {e}")))?;
        Ok(Self(format!(
            "{}{}",
            Self::PREFIX,
            base64::engine::general_purpose::STANDARD.encode(key)
        )))
    }

    /// A stored secret, as it was generated.
    pub fn from_stored(stored: String) -> Self {
        Self(stored)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The HMAC key: the base64-decoded part after `whsec_`.
    pub fn key(&self) -> Result<Vec<u8>, Error> {
        let encoded = self.0.strip_prefix(Self::PREFIX).unwrap_or(&self.0);
        base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|_| Error::Internal("a stored webhook secret is not base64".into()))
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(..)")
    }
}

/// The `webhook-signature` header of an attempt: `v1,` and the base64 of
/// HMAC-SHA256(`key`, `<msg_id>.<timestamp>.<body>`).
pub fn sign(key: &[u8], msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC takes keys of any size");
    mac.update(msg_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let tag = mac.finalize().into_bytes();
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(tag)
    )
}

/// The `webhook-id` of every attempt of `event`, on every endpoint.
pub fn message_id(event_id: i64) -> String {
    format!("evt_{event_id}")
}

/// A webhook endpoint, without its secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub id: EndpointId,
    pub url: String,
    pub subscription: Subscription,
    pub description: String,
    pub is_active: bool,
    pub created_at: OffsetDateTime,
}

/// What creating an endpoint stores.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewEndpoint {
    pub url: EndpointUrl,
    pub subscription: Subscription,
    pub description: String,
    pub is_active: bool,
    pub secret: WebhookSecret,
    pub created_at: OffsetDateTime,
}

/// A change to an endpoint: fields left `None` keep their values.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EndpointPatch {
    pub url: Option<EndpointUrl>,
    pub subscription: Option<Subscription>,
    pub description: Option<String>,
    pub is_active: Option<bool>,
}

/// The validated input of a create: the fields of [`NewEndpoint`] a client
/// sets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointInput {
    pub url: EndpointUrl,
    pub subscription: Subscription,
    pub description: String,
    pub is_active: bool,
}

/// A description: trimmed, at most [`MAX_DESCRIPTION_CHARS`] characters;
/// it may be blank.
pub fn parse_description(raw: &str) -> Result<String, String> {
    text::bounded(raw, MAX_DESCRIPTION_CHARS)
}

/// Where a delivery is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeliveryStatus {
    /// An attempt is due or running.
    Pending,
    /// An attempt succeeded.
    Delivered,
    /// The retry schedule is spent.
    Failed,
}

impl DeliveryStatus {
    pub fn name(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }
}

/// One event on its way to one endpoint, as the delivery log shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub id: DeliveryId,
    pub endpoint: EndpointId,
    pub event_id: i64,
    pub event_kind: EventKind,
    pub status: DeliveryStatus,
    /// Attempts finished so far.
    pub attempts: u32,
    /// The last attempt's HTTP status; `None` before the first attempt or
    /// when the last one got no response.
    pub last_status_code: Option<u16>,
    /// `""` before the first attempt and after a success; else one line.
    pub last_error: String,
    /// When the next attempt is due; `None` once delivered or failed.
    pub next_attempt_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
}

/// A delivery claimed for one attempt: everything the attempt needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimedDelivery {
    pub id: DeliveryId,
    pub endpoint: EndpointId,
    pub url: String,
    pub secret: WebhookSecret,
    pub event: Event,
    /// Attempts finished before this one.
    pub attempts: u32,
    /// Identifies this claim, with the delivery's id (the deliveries of one
    /// `claim_deliveries` call may share it): the attempt's outcome is
    /// recorded only while the claim holds.
    pub lease: i64,
}

/// What to claim.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimRequest {
    /// Deliveries due at or before this time are claimed.
    pub now: OffsetDateTime,
    /// The claim lapses at this time, when another process may claim the
    /// delivery again.
    pub lease_until: OffsetDateTime,
    /// At most this many deliveries in all.
    pub limit: usize,
    /// At most this many per endpoint, less what [`busy`](Self::busy) says
    /// the caller already runs for it.
    pub per_endpoint: usize,
    /// The attempts the caller runs now, by endpoint.
    pub busy: Vec<(EndpointId, usize)>,
}

impl ClaimRequest {
    /// How many more deliveries of `endpoint` this request may claim.
    pub fn free_for(&self, endpoint: EndpointId) -> usize {
        let busy = self
            .busy
            .iter()
            .find(|(id, _)| *id == endpoint)
            .map_or(0, |(_, n)| *n);
        self.per_endpoint.saturating_sub(busy)
    }
}

/// How an attempt ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// A 2xx within the timeout.
    Delivered { status_code: u16 },
    /// Anything else; `status_code` when there was a response.
    Failed {
        status_code: Option<u16>,
        error: String,
    },
}

/// What recording an attempt writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttemptRecord {
    pub status: DeliveryStatus,
    pub last_status_code: Option<u16>,
    pub last_error: String,
    /// When the next attempt is due (pending only).
    pub next_attempt_at: Option<OffsetDateTime>,
}

/// The waits between attempts: after the n-th failed attempt of a delivery
/// the next is due the n-th wait later; when there is no n-th wait the
/// delivery has failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetrySchedule(Vec<Duration>);

impl RetrySchedule {
    /// `5,300,1800,7200,18000,36000,36000`: 8 attempts over about 27.6 hours.
    pub const DEFAULT: &'static str = "5,300,1800,7200,18000,36000,36000";

    /// Comma-separated whole seconds (an empty value: no retries).
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Ok(Self(Vec::new()));
        }
        raw.split(',')
            .map(|part| {
                part.trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|s| *s <= 365 * 86_400)
                    .map(Duration::from_secs)
                    .ok_or_else(|| {
                        format!(
                            "\"{}\" is not a number of seconds (0 to 31536000)",
                            part.trim()
                        )
                    })
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }

    pub fn new(waits: Vec<Duration>) -> Self {
        Self(waits)
    }

    /// The wait after the `attempts`-th failed attempt, if any.
    pub fn wait_after(&self, attempts: u32) -> Option<Duration> {
        let index = usize::try_from(attempts).ok()?.checked_sub(1)?;
        self.0.get(index).copied()
    }

    /// What recording `outcome`, the `attempts`-th attempt, ending at
    /// `now`, writes.
    pub fn record(
        &self,
        outcome: &AttemptOutcome,
        attempts: u32,
        now: OffsetDateTime,
    ) -> AttemptRecord {
        match outcome {
            AttemptOutcome::Delivered { status_code } => AttemptRecord {
                status: DeliveryStatus::Delivered,
                last_status_code: Some(*status_code),
                last_error: String::new(),
                next_attempt_at: None,
            },
            AttemptOutcome::Failed { status_code, error } => {
                let next = self
                    .wait_after(attempts)
                    .and_then(|wait| time::Duration::try_from(wait).ok())
                    .map(|wait| now + wait);
                AttemptRecord {
                    status: if next.is_some() {
                        DeliveryStatus::Pending
                    } else {
                        DeliveryStatus::Failed
                    },
                    last_status_code: *status_code,
                    last_error: one_line(error),
                    next_attempt_at: next,
                }
            }
        }
    }
}

impl Default for RetrySchedule {
    fn default() -> Self {
        Self::parse(Self::DEFAULT).expect("the default schedule parses")
    }
}

/// `error` on one line, at most 500 characters.
fn one_line(error: &str) -> String {
    let line: String = error
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(500)
        .collect();
    line.trim().to_string()
}

/// Figures about the deliveries, for monitoring.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeliveryStats {
    pub pending: u64,
    pub failed: u64,
    /// When the oldest pending delivery was created.
    pub oldest_pending: Option<OffsetDateTime>,
}

/// Stores endpoints and deliveries. The deliveries themselves are created
/// by the stores' event writes: recording an event MUST, in the same
/// transaction, record a pending delivery due at the event's `created_at`
/// for every endpoint active and subscribed to its kind at that moment.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait WebhookRepository: Send + Sync + 'static {
    /// Stores a new endpoint and returns it.
    async fn create_endpoint(&self, endpoint: &NewEndpoint) -> Result<Endpoint, RepoError>;

    /// One page of endpoints by id, with the exact count; past the last
    /// page the count with no items.
    async fn endpoints(&self, page: PageRequest) -> Result<Page<Endpoint>, RepoError>;

    /// Endpoint `id`; `NotFound` when there is none.
    async fn endpoint(&self, id: EndpointId) -> Result<Endpoint, RepoError>;

    /// Applies `patch` and returns the endpoint; `NotFound` when there is
    /// none. Deactivating stops deliveries from being recorded for it and
    /// its pending ones from being claimed; they wait.
    async fn update_endpoint(
        &self,
        id: EndpointId,
        patch: &EndpointPatch,
    ) -> Result<Endpoint, RepoError>;

    /// Deletes the endpoint with its deliveries; `NotFound` when there is
    /// none.
    async fn delete_endpoint(&self, id: EndpointId) -> Result<(), RepoError>;

    /// One page of the endpoint's deliveries, newest (highest id) first,
    /// with the exact count; `NotFound` when there is no such endpoint.
    /// Lists only deliveries of listable events (see `crate::event`).
    async fn deliveries(
        &self,
        endpoint: EndpointId,
        page: PageRequest,
    ) -> Result<Page<Delivery>, RepoError>;

    /// Delivery `id` of `endpoint`; `NotFound` when there is no such
    /// endpoint or the delivery belongs to another one.
    async fn delivery(&self, endpoint: EndpointId, id: DeliveryId) -> Result<Delivery, RepoError>;

    /// Makes the delivery pending and due at `now`, whatever its status,
    /// and returns it; `NotFound` as [`delivery`](Self::delivery).
    async fn retry_delivery(
        &self,
        endpoint: EndpointId,
        id: DeliveryId,
        now: OffsetDateTime,
    ) -> Result<Delivery, RepoError>;

    /// Claims pending deliveries due at `request.now` of active endpoints
    /// whose events are listable and that no unexpired claim holds, the
    /// earliest due first, within the request's limits, and returns them.
    /// MUST NOT hand one delivery to two claims that both hold, whatever
    /// the number of processes claiming at once; a claim lapses at
    /// `lease_until`.
    async fn claim_deliveries(
        &self,
        request: &ClaimRequest,
    ) -> Result<Vec<ClaimedDelivery>, RepoError>;

    /// Records the attempt of `claim` (one more attempt) and releases the
    /// claim. Returns false, writing nothing, when the claim no longer
    /// holds (it lapsed and the delivery was claimed again, or the delivery
    /// is gone).
    async fn record_attempt(
        &self,
        claim: &ClaimedDelivery,
        record: &AttemptRecord,
    ) -> Result<bool, RepoError>;

    /// Counts pending and failed deliveries and finds the oldest pending.
    async fn delivery_stats(&self) -> Result<DeliveryStats, RepoError>;
}

/// Webhook endpoints and their deliveries.
#[derive(Clone)]
pub struct WebhookService {
    store: Arc<dyn WebhookRepository>,
    guard: Arc<dyn AddressGuard>,
}

impl fmt::Debug for WebhookService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookService").finish_non_exhaustive()
    }
}

impl WebhookService {
    pub fn new(store: Arc<dyn WebhookRepository>, guard: Arc<dyn AddressGuard>) -> Self {
        Self { store, guard }
    }

    async fn check_url(&self, url: &EndpointUrl) -> Result<(), Error> {
        self.guard
            .check(url)
            .await
            .map_err(|message| Error::Invalid(FieldErrors::single("url", message)))
    }

    /// Creates an endpoint; returns it with its secret, which is never
    /// shown again.
    pub async fn create(&self, input: EndpointInput) -> Result<(Endpoint, WebhookSecret), Error> {
        self.check_url(&input.url).await?;
        let secret = WebhookSecret::generate()?;
        let endpoint = self
            .store
            .create_endpoint(&NewEndpoint {
                url: input.url,
                subscription: input.subscription,
                description: input.description,
                is_active: input.is_active,
                secret: secret.clone(),
                created_at: now_micros(),
            })
            .await?;
        Ok((endpoint, secret))
    }

    pub async fn list(&self, page: PageRequest) -> Result<Page<Endpoint>, Error> {
        let endpoints = self.store.endpoints(page).await?;
        if !page.exists_for(endpoints.count) {
            return Err(Error::InvalidPage);
        }
        Ok(endpoints)
    }

    pub async fn get(&self, id: EndpointId) -> Result<Endpoint, Error> {
        Ok(self.store.endpoint(id).await?)
    }

    /// Applies `patch`; a new URL is checked like a created one.
    pub async fn update(&self, id: EndpointId, patch: EndpointPatch) -> Result<Endpoint, Error> {
        if let Some(url) = &patch.url {
            // The endpoint's absence answers before its input does.
            self.store.endpoint(id).await?;
            self.check_url(url).await?;
        }
        Ok(self.store.update_endpoint(id, &patch).await?)
    }

    pub async fn delete(&self, id: EndpointId) -> Result<(), Error> {
        Ok(self.store.delete_endpoint(id).await?)
    }

    pub async fn deliveries(
        &self,
        endpoint: EndpointId,
        page: PageRequest,
    ) -> Result<Page<Delivery>, Error> {
        let deliveries = self.store.deliveries(endpoint, page).await?;
        if !page.exists_for(deliveries.count) {
            return Err(Error::InvalidPage);
        }
        Ok(deliveries)
    }

    pub async fn delivery(&self, endpoint: EndpointId, id: DeliveryId) -> Result<Delivery, Error> {
        Ok(self.store.delivery(endpoint, id).await?)
    }

    /// One more attempt, due now, whatever the delivery's status.
    pub async fn retry(&self, endpoint: EndpointId, id: DeliveryId) -> Result<Delivery, Error> {
        Ok(self
            .store
            .retry_delivery(endpoint, id, now_micros())
            .await?)
    }

    /// Claims due deliveries (see [`WebhookRepository::claim_deliveries`]).
    pub async fn claim(&self, request: &ClaimRequest) -> Result<Vec<ClaimedDelivery>, Error> {
        if request.limit == 0 || request.per_endpoint == 0 {
            return Ok(Vec::new());
        }
        Ok(self.store.claim_deliveries(request).await?)
    }

    /// Records how the attempt of `claim` ended, with the next attempt due
    /// per `schedule`; false when the claim had lapsed.
    pub async fn record(
        &self,
        claim: &ClaimedDelivery,
        outcome: &AttemptOutcome,
        schedule: &RetrySchedule,
    ) -> Result<bool, Error> {
        let record = schedule.record(outcome, claim.attempts.saturating_add(1), now_micros());
        Ok(self.store.record_attempt(claim, &record).await?)
    }

    pub async fn stats(&self) -> Result<DeliveryStats, Error> {
        Ok(self.store.delivery_stats().await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn refused_addresses_are_exactly_the_listed_ranges() {
        let refused = [
            "0.0.0.0",
            "0.1.2.3",
            "127.0.0.1",
            "127.255.0.9",
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.255",
            "::",
            "::1",
            "fe80::1",
            "febf::1",
            "fc00::1",
            "fdff::1",
            "::ffff:127.0.0.1",
            "::ffff:10.1.2.3",
            "::ffff:169.254.169.254",
        ];
        for ip in refused {
            assert!(
                is_refused_address(ip.parse().unwrap()),
                "{ip} must be refused"
            );
        }
        let allowed = [
            "8.8.8.8",
            "172.15.255.255",
            "172.32.0.1",
            "192.169.0.1",
            "100.63.255.255",
            "100.128.0.1",
            "169.253.1.1",
            "11.0.0.1",
            "2001:db8::1",
            "fec0::1",
            "fe00::1",
            "::ffff:8.8.8.8",
            "1.1.1.1",
        ];
        for ip in allowed {
            assert!(
                !is_refused_address(ip.parse().unwrap()),
                "{ip} must be allowed"
            );
        }
        assert!(is_refused_address(IpAddr::V4(Ipv4Addr::UNSPECIFIED)));
        assert!(is_refused_address(IpAddr::V6(Ipv6Addr::LOCALHOST)));
    }

    #[test]
    fn urls_must_be_absolute_http_with_a_host() {
        for ok in [
            "https://hooks.example.com/crm",
            "http://1.2.3.4:8080/x?y=1",
            "http://[2001:db8::1]/",
        ] {
            assert!(EndpointUrl::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "  ",
            "hooks.example.com",
            "ftp://x.example/",
            "http://",
            "/relative",
            "mailto:a@b.c",
            "file:///etc/passwd",
        ] {
            assert!(EndpointUrl::parse(bad).is_err(), "{bad}");
        }
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_CHARS));
        assert!(EndpointUrl::parse(&long).unwrap_err().contains("2000"));
        let url = EndpointUrl::parse("http://[::1]:81/").unwrap();
        assert_eq!(url.host(), Host::Ip("::1".parse().unwrap()));
        assert_eq!(url.port(), 81);
        assert_eq!(
            EndpointUrl::parse("https://a.example/").unwrap().port(),
            443
        );
    }

    #[test]
    fn subscriptions_sort_drop_duplicates_and_keep_star_alone() {
        let sub =
            Subscription::parse(&["customer.updated", "customer.created", "customer.updated"])
                .unwrap();
        assert_eq!(sub.names(), vec!["customer.created", "customer.updated"]);
        assert!(sub.includes(EventKind::CustomerCreated));
        assert!(!sub.includes(EventKind::SegmentCreated));
        assert_eq!(Subscription::parse(&["*", "*"]).unwrap(), Subscription::All);
        assert!(Subscription::parse(&["*", "customer.created"]).is_err());
        assert!(Subscription::parse::<&str>(&[]).is_err());
        assert_eq!(
            Subscription::parse(&["customer"]).unwrap_err(),
            "\"customer\" is not a valid choice."
        );
    }

    #[test]
    fn secrets_are_32_random_bytes_in_base64() {
        let a = WebhookSecret::generate().unwrap();
        let b = WebhookSecret::generate().unwrap();
        assert_ne!(a, b);
        assert!(a.expose().starts_with("whsec_"));
        assert_eq!(a.key().unwrap().len(), 32);
        assert!(!format!("{a:?}").contains(a.expose()));
    }

    #[test]
    fn signatures_follow_the_standard_webhooks_example() {
        // The example of the Standard Webhooks specification.
        let secret = WebhookSecret::from_stored("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into());
        let body = br#"{"test": 2432232314}"#;
        let signature = sign(
            &secret.key().unwrap(),
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            body,
        );
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn the_schedule_spaces_attempts_and_then_fails() {
        let schedule = RetrySchedule::default();
        let now = OffsetDateTime::UNIX_EPOCH;
        let failed = AttemptOutcome::Failed {
            status_code: Some(503),
            error: "HTTP 503\nmore".into(),
        };
        let first = schedule.record(&failed, 1, now);
        assert_eq!(first.status, DeliveryStatus::Pending);
        assert_eq!(
            first.next_attempt_at,
            Some(now + time::Duration::seconds(5))
        );
        assert_eq!(first.last_error, "HTTP 503 more");
        let seventh = schedule.record(&failed, 7, now);
        assert_eq!(
            seventh.next_attempt_at,
            Some(now + time::Duration::seconds(36000))
        );
        let eighth = schedule.record(&failed, 8, now);
        assert_eq!(eighth.status, DeliveryStatus::Failed);
        assert_eq!(eighth.next_attempt_at, None);
        let total: u64 = (1..=7)
            .map(|n| schedule.wait_after(n).unwrap().as_secs())
            .sum();
        assert_eq!(total, 99_305); // about 27.6 hours
        let ok = schedule.record(&AttemptOutcome::Delivered { status_code: 204 }, 3, now);
        assert_eq!(ok.status, DeliveryStatus::Delivered);
        assert_eq!(
            (ok.last_status_code, ok.last_error.as_str()),
            (Some(204), "")
        );
        assert!(RetrySchedule::parse("5,x").is_err());
        assert_eq!(RetrySchedule::parse("").unwrap().wait_after(1), None);
    }

    #[test]
    fn claims_leave_room_for_what_is_running() {
        let endpoint = EndpointId::new(3).unwrap();
        let request = ClaimRequest {
            now: OffsetDateTime::UNIX_EPOCH,
            lease_until: OffsetDateTime::UNIX_EPOCH,
            limit: 10,
            per_endpoint: 4,
            busy: vec![(endpoint, 3)],
        };
        assert_eq!(request.free_for(endpoint), 1);
        assert_eq!(request.free_for(EndpointId::new(4).unwrap()), 4);
    }
}
