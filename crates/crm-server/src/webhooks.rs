//! Webhook delivery: the worker every `serve` runs, the one HTTP client it
//! sends with, and the address checks (API.md section 9).
//!
//! The worker claims due deliveries from the store with a lease, so any
//! number of servers on one database share them and a dead server's claims
//! lapse; it makes each attempt in a task of its own, at most
//! `CRM_WEBHOOK_CONCURRENCY` at once and `CRM_WEBHOOK_ENDPOINT_CONCURRENCY`
//! per endpoint, so a slow receiver holds a few slots and nothing else:
//! API requests never wait for it, and other endpoints keep theirs.
//!
//! Every connection the client makes goes through [`GuardedResolver`],
//! which drops refused addresses from what a name resolves to, so a name
//! that resolved to a public address when its endpoint was created and to
//! a private one now (DNS rebinding) gets no connection. IP literals never
//! reach a resolver and are checked before sending.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crm_domain::event::EventService;
use crm_domain::webhook::{
    is_refused_address, message_id, sign, AddressGuard, AttemptOutcome, ClaimRequest,
    ClaimedDelivery, EndpointId, EndpointUrl, Host, RetrySchedule, WebhookService, REFUSED_ADDRESS,
};
use crm_http::dto::{EventDto, Render};
use prometheus::{Histogram, HistogramOpts, IntCounterVec, IntGauge, Opts};
use reqwest::dns::{Name, Resolve, Resolving};
use time::OffsetDateTime;
use tokio::sync::{Notify, Semaphore};

/// How long resolving a host name may take when an endpoint is saved.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// What a failed attempt's `last_error` says when the address was refused.
const ADDRESS_NOT_ALLOWED: &str = "address not allowed";

/// The [`AddressGuard`] of the API: resolves the host and refuses it when
/// any address is refused.
#[derive(Clone, Copy, Debug)]
pub struct DnsGuard {
    pub allow_private: bool,
}

#[async_trait::async_trait]
impl AddressGuard for DnsGuard {
    async fn check(&self, url: &EndpointUrl) -> Result<(), String> {
        let addresses: Vec<IpAddr> = match url.host() {
            Host::Ip(ip) => vec![ip],
            Host::Name(name) => {
                let lookup = tokio::net::lookup_host((name, url.port()));
                match tokio::time::timeout(RESOLVE_TIMEOUT, lookup).await {
                    Ok(Ok(found)) => found.map(|a| a.ip()).collect(),
                    _ => Vec::new(),
                }
            }
        };
        if addresses.is_empty() {
            return Err("The host name could not be resolved.".into());
        }
        if !self.allow_private && addresses.into_iter().any(is_refused_address) {
            return Err(REFUSED_ADDRESS.into());
        }
        Ok(())
    }
}

/// The error a connection gets when every address of its host is refused.
#[derive(Debug)]
struct RefusedAddress;

impl std::fmt::Display for RefusedAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(ADDRESS_NOT_ALLOWED)
    }
}

impl std::error::Error for RefusedAddress {}

/// Resolves names for the delivery client and keeps only the addresses
/// that may be connected to.
#[derive(Clone, Copy, Debug)]
pub struct GuardedResolver {
    allow_private: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let found = tokio::net::lookup_host((name.as_str(), 0)).await?;
            let allowed: Vec<SocketAddr> = found
                .filter(|addr| allow_private || !is_refused_address(addr.ip()))
                .collect();
            if allowed.is_empty() {
                return Err(Box::new(RefusedAddress) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as Box<dyn Iterator<Item = SocketAddr> + Send>)
        })
    }
}

/// The one client every attempt is sent with: the attempt timeout, no
/// redirects, no proxies from the environment, guarded name resolution.
pub fn client(timeout: Duration, allow_private: bool) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .dns_resolver(Arc::new(GuardedResolver { allow_private }))
        .user_agent(concat!("crm-server-webhooks/", env!("CARGO_PKG_VERSION")))
        .pool_max_idle_per_host(8)
        .build()
        .expect("the webhook client builds")
}

/// The worker's metrics, registered with the server's.
#[derive(Clone)]
pub struct WebhookMetrics {
    attempts: IntCounterVec,
    latency: Histogram,
    pending: IntGauge,
    failed: IntGauge,
    oldest_pending: IntGauge,
}

impl WebhookMetrics {
    pub fn new(metrics: &crm_http::observe::Metrics) -> Self {
        let attempts = IntCounterVec::new(
            Opts::new(
                "webhook_attempts_total",
                "Webhook attempts made by this server, by result (delivered, retry: failed with a retry due, failed: the schedule spent).",
            ),
            &["result"],
        )
        .expect("valid metric");
        let latency = Histogram::with_opts(
            HistogramOpts::new(
                "webhook_attempt_duration_seconds",
                "Time from the start of a webhook attempt to its response status or failure.",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
            ]),
        )
        .expect("valid metric");
        let pending = IntGauge::new(
            "webhook_deliveries_pending",
            "Webhook deliveries pending (due or waiting for a retry), in the database.",
        )
        .expect("valid metric");
        let failed = IntGauge::new(
            "webhook_deliveries_failed",
            "Webhook deliveries whose retry schedule is spent, in the database.",
        )
        .expect("valid metric");
        let oldest_pending = IntGauge::new(
            "webhook_oldest_pending_age_seconds",
            "Age of the oldest pending webhook delivery (0 when none is pending).",
        )
        .expect("valid metric");
        for collector in [
            Box::new(attempts.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(latency.clone()),
            Box::new(pending.clone()),
            Box::new(failed.clone()),
            Box::new(oldest_pending.clone()),
        ] {
            if let Err(error) = metrics.register(collector) {
                tracing::warn!(%error, "webhook metric not registered");
            }
        }
        Self {
            attempts,
            latency,
            pending,
            failed,
            oldest_pending,
        }
    }
}

/// How the worker runs.
#[derive(Clone, Debug)]
pub struct WorkerConfig {
    pub timeout: Duration,
    pub schedule: RetrySchedule,
    pub concurrency: usize,
    pub per_endpoint: usize,
    pub allow_private: bool,
    pub render: Render,
}

/// How often an idle worker looks for due deliveries.
const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// How often the delivery figures on `/metrics` are refreshed.
const STATS_INTERVAL: Duration = Duration::from_secs(5);

/// How long a claim of a delivery holds beyond the attempt's timeout.
const LEASE_MARGIN: Duration = Duration::from_secs(60);

/// The delivery worker of one server.
///
/// It claims a little ahead: up to twice the attempts it may run, per
/// endpoint and in all, and claims again for an endpoint only once what it
/// holds for it has fallen to half. So a busy endpoint costs one claim per
/// `CRM_WEBHOOK_ENDPOINT_CONCURRENCY` deliveries rather than one per
/// delivery, and a claimed delivery waits at most one attempt's time for a
/// slot, well within its lease (claiming ahead is off when the timeout is
/// above the lease's margin).
pub struct DeliveryWorker {
    webhooks: WebhookService,
    events: EventService,
    client: reqwest::Client,
    config: WorkerConfig,
    metrics: WebhookMetrics,
    /// Attempts running at once, in all.
    running: Arc<Semaphore>,
    /// Deliveries held (claimed, waiting or running), in all.
    held_slots: Arc<Semaphore>,
    /// How many deliveries each endpoint may have held at once.
    hold_per_endpoint: usize,
    /// By endpoint: the deliveries held, and the slots of its attempts.
    held: Mutex<HashMap<EndpointId, (usize, Arc<Semaphore>)>>,
    finished: Notify,
}

impl DeliveryWorker {
    pub fn new(
        webhooks: WebhookService,
        events: EventService,
        config: WorkerConfig,
        metrics: WebhookMetrics,
    ) -> Arc<Self> {
        let ahead = if config.timeout <= LEASE_MARGIN { 2 } else { 1 };
        let concurrency = config.concurrency.max(1);
        Arc::new(Self {
            webhooks,
            events,
            client: client(config.timeout, config.allow_private),
            running: Arc::new(Semaphore::new(concurrency)),
            held_slots: Arc::new(Semaphore::new(concurrency * ahead)),
            hold_per_endpoint: config.per_endpoint.max(1) * ahead,
            config,
            metrics,
            held: Mutex::new(HashMap::new()),
            finished: Notify::new(),
        })
    }

    /// Runs the worker and its metrics refresh on the current runtime,
    /// until the process ends.
    pub fn spawn(self: &Arc<Self>) {
        let worker = self.clone();
        actix_web::rt::spawn(async move { worker.run().await });
        let worker = self.clone();
        actix_web::rt::spawn(async move {
            let mut interval = actix_web::rt::time::interval(STATS_INTERVAL);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                interval.tick().await;
                worker.refresh_stats().await;
            }
        });
    }

    async fn refresh_stats(&self) {
        match self.webhooks.stats().await {
            Ok(stats) => {
                self.metrics
                    .pending
                    .set(i64::try_from(stats.pending).unwrap_or(i64::MAX));
                self.metrics
                    .failed
                    .set(i64::try_from(stats.failed).unwrap_or(i64::MAX));
                let age = stats.oldest_pending.map_or(0, |at| {
                    (OffsetDateTime::now_utc() - at).whole_seconds().max(0)
                });
                self.metrics.oldest_pending.set(age);
            }
            Err(error) => tracing::debug!(%error, "could not read webhook delivery figures"),
        }
    }

    async fn run(self: Arc<Self>) {
        // Whether an endpoint's hold just fell to half (rather than the
        // poll interval passing).
        let mut woken = false;
        loop {
            let free = self.held_slots.available_permits();
            let claimed = if free == 0 {
                0
            } else {
                self.claim_and_start(free, woken).await
            };
            woken = false;
            if claimed == 0 || claimed >= free {
                tokio::select! {
                    () = self.finished.notified() => woken = true,
                    () = tokio::time::sleep(POLL_INTERVAL) => {}
                }
            }
        }
    }

    /// Claims at most `free` due deliveries and starts their attempts;
    /// how many it claimed.
    async fn claim_and_start(self: &Arc<Self>, free: usize, woken: bool) -> usize {
        // Deliveries of events not yet numbered are not claimable; the
        // server's background publisher numbers them every 200 ms, and the
        // worker does so itself when it polls.
        if !woken {
            if let Err(error) = self.events.publish().await {
                tracing::debug!(%error, "could not publish events");
            }
        }
        let now = crm_domain::time_util::now_micros();
        let lease = time::Duration::try_from(self.config.timeout + LEASE_MARGIN)
            .unwrap_or(time::Duration::MINUTE);
        let half = self.hold_per_endpoint.div_ceil(2);
        // An endpoint holding more than half gets nothing until it has
        // worked through some: claims come in batches.
        let busy = self
            .held
            .lock()
            .expect("held map")
            .iter()
            .map(|(id, (n, _))| {
                (
                    *id,
                    if *n > half {
                        self.hold_per_endpoint
                    } else {
                        *n
                    },
                )
            })
            .collect();
        let request = ClaimRequest {
            now,
            lease_until: now + lease,
            limit: free,
            per_endpoint: self.hold_per_endpoint,
            busy,
        };
        let claims = match self.webhooks.claim(&request).await {
            Ok(claims) => claims,
            Err(error) => {
                tracing::debug!(%error, "could not claim webhook deliveries");
                return 0;
            }
        };
        let count = claims.len();
        for claim in claims {
            let Ok(held) = self.held_slots.clone().try_acquire_owned() else {
                // Cannot happen (only this loop takes these slots); the
                // claim lapses and the attempt is made then.
                break;
            };
            let endpoint_slots = {
                let mut map = self.held.lock().expect("held map");
                let entry = map.entry(claim.endpoint).or_insert_with(|| {
                    (0, Arc::new(Semaphore::new(self.config.per_endpoint.max(1))))
                });
                entry.0 += 1;
                entry.1.clone()
            };
            let worker = self.clone();
            actix_web::rt::spawn(async move {
                {
                    let _endpoint = endpoint_slots.acquire().await;
                    let _running = worker.running.acquire().await;
                    worker.deliver(&claim).await;
                }
                let wake = {
                    let mut map = worker.held.lock().expect("held map");
                    let left = map.get_mut(&claim.endpoint).map_or(0, |entry| {
                        entry.0 -= 1;
                        entry.0
                    });
                    if left == 0 {
                        map.remove(&claim.endpoint);
                    }
                    left == 0 || left == half
                };
                drop(held);
                if wake {
                    worker.finished.notify_one();
                }
            });
        }
        count
    }

    /// Makes one attempt and records it.
    async fn deliver(&self, claim: &ClaimedDelivery) {
        let started = Instant::now();
        let outcome = self.attempt(claim).await;
        self.metrics
            .latency
            .observe(started.elapsed().as_secs_f64());
        match self
            .webhooks
            .record(claim, &outcome, &self.config.schedule)
            .await
        {
            Ok(true) => {
                let result = match &outcome {
                    AttemptOutcome::Delivered { .. } => "delivered",
                    AttemptOutcome::Failed { .. } => {
                        if self
                            .config
                            .schedule
                            .wait_after(claim.attempts.saturating_add(1))
                            .is_some()
                        {
                            "retry"
                        } else {
                            "failed"
                        }
                    }
                };
                self.metrics.attempts.with_label_values(&[result]).inc();
            }
            Ok(false) => tracing::info!(
                delivery = claim.id.get(),
                "a webhook attempt ended after its claim lapsed; not recorded"
            ),
            // The claim lapses and the attempt is made again.
            Err(error) => {
                tracing::warn!(%error, delivery = claim.id.get(), "could not record a webhook attempt")
            }
        }
    }

    /// Sends the event to the endpoint once.
    async fn attempt(&self, claim: &ClaimedDelivery) -> AttemptOutcome {
        let failed = |error: &str| AttemptOutcome::Failed {
            status_code: None,
            error: error.to_string(),
        };
        let url = match EndpointUrl::parse(&claim.url) {
            Ok(url) => url,
            Err(_) => return failed("invalid url"),
        };
        if let Host::Ip(ip) = url.host() {
            if !self.config.allow_private && is_refused_address(ip) {
                return failed(ADDRESS_NOT_ALLOWED);
            }
        }
        let Ok(key) = claim.secret.key() else {
            return failed("invalid secret");
        };
        let body = match serde_json::to_vec(&EventDto::new(&claim.event, self.config.render)) {
            Ok(body) => body,
            Err(_) => return failed("the event could not be encoded"),
        };
        let msg_id = message_id(claim.event.id);
        let timestamp = OffsetDateTime::now_utc().unix_timestamp();
        let signature = sign(&key, &msg_id, timestamp, &body);
        let sent = self
            .client
            .post(claim.url.as_str())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("webhook-id", msg_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await;
        match sent {
            Ok(response) if response.status().is_success() => AttemptOutcome::Delivered {
                status_code: response.status().as_u16(),
            },
            Ok(response) => AttemptOutcome::Failed {
                status_code: Some(response.status().as_u16()),
                error: format!("HTTP {}", response.status().as_u16()),
            },
            Err(error) => failed(&describe(&error)),
        }
    }
}

/// A failed request in a few words: `timeout`, `connection refused`,
/// `address not allowed`, ...
fn describe(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        return "timeout".into();
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = source {
        if current.downcast_ref::<RefusedAddress>().is_some() {
            return ADDRESS_NOT_ALLOWED.into();
        }
        if let Some(io) = current.downcast_ref::<std::io::Error>() {
            match io.kind() {
                std::io::ErrorKind::ConnectionRefused => return "connection refused".into(),
                std::io::ErrorKind::ConnectionReset => return "connection reset".into(),
                std::io::ErrorKind::TimedOut => return "timeout".into(),
                _ => {}
            }
        }
        source = current.source();
    }
    if error.is_connect() {
        return "connection failed".into();
    }
    // The innermost cause says most; no URL (it may carry credentials).
    let mut innermost: &dyn std::error::Error = error;
    while let Some(next) = innermost.source() {
        innermost = next;
    }
    format!("request failed: {innermost}")
}
