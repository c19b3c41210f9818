//! Observability: a request id on every request and response, one structured
//! log line per request (method, route pattern, status, latency, request id —
//! never a header, a query string or a body), and Prometheus metrics.

use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, HttpResponse};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::Services;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The request metrics and the registry they live in; cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    pool: IntGaugeVec,
    token_cache: IntCounterVec,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "HTTP requests served, by route and status.",
            ),
            &["method", "route", "status"],
        )
        .expect("valid metric");
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "Time to serve an HTTP request, by route and status.",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0,
            ]),
            &["method", "route", "status"],
        )
        .expect("valid metric");
        let pool = IntGaugeVec::new(
            Opts::new(
                "db_pool_connections",
                "Database pool connections, by state.",
            ),
            &["state"],
        )
        .expect("valid metric");
        let token_cache = IntCounterVec::new(
            Opts::new(
                "auth_token_cache_lookups_total",
                "Bearer token checks answered from the in-memory cache (hit) or the database (miss), while the cache is live.",
            ),
            &["result"],
        )
        .expect("valid metric");
        for collector in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(latency.clone()),
            Box::new(pool.clone()),
            Box::new(token_cache.clone()),
        ] {
            registry
                .register(collector)
                .expect("metric registered once");
        }
        Self {
            registry,
            requests,
            latency,
            pool,
            token_cache,
        }
    }

    /// Adds metrics kept elsewhere (the webhook delivery worker's) to what
    /// the endpoint renders.
    pub fn register(
        &self,
        collector: Box<dyn prometheus::core::Collector>,
    ) -> Result<(), prometheus::Error> {
        self.registry.register(collector)
    }

    fn record(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let status = status.to_string();
        let labels = [method, route, status.as_str()];
        self.requests.with_label_values(&labels).inc();
        self.latency.with_label_values(&labels).observe(seconds);
    }

    /// The text exposition of every metric, with the pool state read now.
    pub fn render(&self, services: &Services) -> String {
        let state = services.health.pool_state();
        let active = state.open.saturating_sub(state.idle);
        for (name, value) in [
            ("idle", state.idle),
            ("active", active),
            ("open", state.open),
            ("max", state.max),
        ] {
            self.pool.with_label_values(&[name]).set(i64::from(value));
        }
        if let Some((hits, misses)) = services.auth.token_cache_counts() {
            for (result, total) in [("hit", hits), ("miss", misses)] {
                let counter = self.token_cache.with_label_values(&[result]);
                counter.inc_by(total.saturating_sub(counter.get()));
            }
        }
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("text encoding cannot fail");
        String::from_utf8(out).expect("exposition is UTF-8")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Keeps a burst of one kind of log event to one line per interval: the
/// first event is logged, the rest within the interval only counted, and the
/// next logged event says how many were left out. During a database outage
/// every request fails the same way; thousands of identical lines a second
/// would bury everything else.
#[derive(Debug)]
pub struct LogSampler {
    interval_ms: u64,
    /// Milliseconds since `epoch` of the last logged event, plus one (0: never).
    last: std::sync::atomic::AtomicU64,
    suppressed: std::sync::atomic::AtomicU64,
    epoch: std::sync::OnceLock<Instant>,
}

impl LogSampler {
    pub const fn new(interval: std::time::Duration) -> Self {
        Self {
            interval_ms: interval.as_millis() as u64,
            last: std::sync::atomic::AtomicU64::new(0),
            suppressed: std::sync::atomic::AtomicU64::new(0),
            epoch: std::sync::OnceLock::new(),
        }
    }

    /// `Some(n)` when this event should be logged, `n` being how many were
    /// left out since the last logged one; `None` to leave it out.
    pub fn admit(&self) -> Option<u64> {
        use std::sync::atomic::Ordering::Relaxed;
        let now = self.epoch.get_or_init(Instant::now).elapsed().as_millis() as u64 + 1;
        let last = self.last.load(Relaxed);
        if last != 0 && now.saturating_sub(last) < self.interval_ms {
            self.suppressed.fetch_add(1, Relaxed);
            return None;
        }
        if self
            .last
            .compare_exchange(last, now, Relaxed, Relaxed)
            .is_err()
        {
            // Another thread logs this interval's line.
            self.suppressed.fetch_add(1, Relaxed);
            return None;
        }
        Some(self.suppressed.swap(0, Relaxed))
    }
}

/// `text` on one line: line breaks and other control characters become
/// spaces, so a multi-line message (PostgreSQL's DETAIL and HINT lines) stays
/// one log event per line.
pub fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// The method as a metrics label: one of the methods HTTP defines, or
/// `other`. Any token is a valid method name, so labelling with what the
/// client sent would let anyone add label sets (and memory) without bound.
fn method_label(method: &actix_web::http::Method) -> &'static str {
    use actix_web::http::Method;
    const KNOWN: [(Method, &str); 9] = [
        (Method::GET, "GET"),
        (Method::HEAD, "HEAD"),
        (Method::POST, "POST"),
        (Method::PUT, "PUT"),
        (Method::PATCH, "PATCH"),
        (Method::DELETE, "DELETE"),
        (Method::OPTIONS, "OPTIONS"),
        (Method::TRACE, "TRACE"),
        (Method::CONNECT, "CONNECT"),
    ];
    KNOWN
        .iter()
        .find(|(known, _)| known == method)
        .map_or("other", |(_, label)| label)
}
/// The request's id, in the request's extensions for handlers that log
/// after the response has started (`segment_stream`).
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

/// The caller's request id when it is short and plain, or a fresh one.
fn request_id(req: &ServiceRequest) -> String {
    let given = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        });
    match given {
        Some(id) => id.to_owned(),
        None => {
            let mut bytes = [0u8; 12];
            // Not a secret: a time-based fallback is fine if the OS says no.
            if getrandom::fill(&mut bytes).is_err() {
                let nanos = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos());
                bytes.copy_from_slice(&nanos.to_le_bytes()[..12]);
            }
            bytes.iter().map(|b| format!("{b:02x}")).collect()
        }
    }
}

/// Middleware (outermost): request id, metrics and the request log line.
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let started = Instant::now();
    let id = request_id(&req);
    // Labels and log fields hold only bounded values: a known method or
    // `other`, the route pattern (never the raw path), the status code.
    let method = method_label(req.method());
    let metrics = req.app_data::<web::Data<Metrics>>().cloned();
    req.extensions_mut().insert(RequestId(id.clone()));
    // Inner layers answer errors as responses; an `Err` here would come
    // from actix itself and is rendered by it.
    let mut res = match next.call(req).await {
        Ok(res) => res.map_into_boxed_body(),
        Err(error) => {
            let reason = one_line(&error.to_string());
            tracing::warn!(request_id = %id, method, error = %reason, "request failed");
            return Err(error);
        }
    };
    let route = res
        .request()
        .match_pattern()
        .unwrap_or_else(|| "<unmatched>".to_owned());
    let status = res.status().as_u16();
    let elapsed = started.elapsed();
    if let Some(metrics) = metrics {
        metrics.record(method, &route, status, elapsed.as_secs_f64());
    }
    if let Ok(value) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(REQUEST_ID, value);
    }
    tracing::info!(
        request_id = %id,
        method,
        route = %route,
        status,
        latency_ms = elapsed.as_secs_f64() * 1000.0,
        "request"
    );
    Ok(res)
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics_endpoint(
    metrics: web::Data<Metrics>,
    services: web::Data<Services>,
) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(metrics.render(&services))
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::Method;

    #[test]
    fn only_known_methods_are_labels() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::PATCH), "PATCH");
        let made_up = Method::from_bytes(b"BREW").unwrap();
        assert_eq!(method_label(&made_up), "other");
    }

    #[test]
    fn a_burst_is_one_line_and_the_next_counts_the_rest() {
        let sampler = LogSampler::new(std::time::Duration::from_millis(100));
        assert_eq!(sampler.admit(), Some(0));
        for _ in 0..50 {
            assert_eq!(sampler.admit(), None);
        }
        std::thread::sleep(std::time::Duration::from_millis(150));
        assert_eq!(sampler.admit(), Some(50));
        assert_eq!(sampler.admit(), None);
    }

    #[test]
    fn multi_line_text_becomes_one_line() {
        assert_eq!(
            one_line("ERROR: x\nDETAIL: y\r\n\tHINT"),
            "ERROR: x DETAIL: y   HINT"
        );
    }
}
