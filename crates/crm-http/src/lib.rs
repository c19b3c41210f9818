//! The HTTP adapter: actix-web routes for the CRM API, the wire DTOs, input
//! parsing into domain requests, DRF-style errors and pagination.
//!
//! Only this crate knows the wire format. Handlers parse the request into
//! domain types, call a domain service, and render the result; no business
//! rule lives here.

mod auth;
mod body;
mod cursor;
pub mod dto;
pub mod edge;
pub mod error;
mod fields;
pub mod idempotency;
mod input;
pub mod observe;
pub mod openapi;
mod pagination;
mod routes;
pub mod segment_stream;
pub mod throttle;

use std::sync::Arc;

use actix_web::middleware::{NormalizePath, TrailingSlash};
use actix_web::web::{self, ServiceConfig};
use actix_web::{HttpRequest, HttpResponse};
use crm_domain::auth::AuthService;
use crm_domain::customer::{CustomerService, HealthCheck};
use crm_domain::event::EventService;
use crm_domain::idempotency::IdempotencyStore;
use crm_domain::segment::SegmentService;
use crm_domain::webhook::WebhookService;
use time::UtcOffset;

pub use error::ApiError;
pub use routes::health::{HEALTHZ_PATH, READYZ_PATH};
pub use routes::oauth::{INTROSPECT_PATH, REVOKE_PATH, TOKEN_PATH};
pub use routes::{RouteSpec, API_PREFIX, API_ROUTES};

/// Where the Prometheus metrics are served.
pub const METRICS_PATH: &str = "/metrics";

/// Settings that shape the wire format and request handling.
#[derive(Clone, Debug)]
pub struct ApiSettings {
    /// The offset timestamps are rendered in.
    pub utc_offset: UtcOffset,
    /// Whether `X-Forwarded-Proto` / `X-Forwarded-Host` are believed.
    pub trust_proxy: bool,
    /// The largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Per-client request limits; `None` for none.
    pub rate_limiter: Option<throttle::ClientRateLimiter>,
    /// The throttle on failed OAuth client authentication; `None` for none.
    pub oauth_failures: Option<throttle::FailureThrottle>,
    /// How long a client may take to send a whole request body.
    pub body_timeout: std::time::Duration,
    /// The hosts served; others get 400.
    pub allowed_hosts: edge::AllowedHosts,
    /// Whether the server is draining before a shutdown.
    pub lifecycle: edge::Lifecycle,
    /// How many segment answers may be in progress at once (shared by the
    /// workers: clones share the slots).
    pub segment_streams: segment_stream::StreamLimit,
    /// How long an `Idempotency-Key` lives from its first request.
    pub idempotency_ttl: std::time::Duration,
    /// How long a write may take from reading the clock to committing: a
    /// cursor walk in `updated_at` order leaves out customers updated more
    /// recently than this, until they settle.
    pub cursor_settle: std::time::Duration,
}

impl ApiSettings {
    pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;
    pub const DEFAULT_BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

    /// How timestamps are rendered under these settings.
    pub fn render(&self) -> dto::Render {
        dto::Render {
            offset: self.utc_offset,
        }
    }
}

impl Default for ApiSettings {
    fn default() -> Self {
        Self {
            utc_offset: UtcOffset::UTC,
            trust_proxy: false,
            max_body_bytes: Self::DEFAULT_MAX_BODY_BYTES,
            rate_limiter: None,
            oauth_failures: None,
            body_timeout: Self::DEFAULT_BODY_TIMEOUT,
            allowed_hosts: edge::AllowedHosts::default(),
            lifecycle: edge::Lifecycle::default(),
            segment_streams: segment_stream::StreamLimit::default(),
            idempotency_ttl: crm_domain::idempotency::DEFAULT_TTL,
            cursor_settle: std::time::Duration::from_secs(5),
        }
    }
}

/// The services the handlers call.
#[derive(Clone)]
pub struct Services {
    pub customers: CustomerService,
    pub segments: SegmentService,
    pub events: EventService,
    pub webhooks: WebhookService,
    pub idempotency: Arc<dyn IdempotencyStore>,
    pub auth: AuthService,
    pub health: Arc<dyn HealthCheck>,
}

/// The path normalisation every app built from [`configure`] needs: a path
/// is served the same with or without its trailing slash, without a redirect.
pub fn normalize_path() -> NormalizePath {
    NormalizePath::new(TrailingSlash::Trim)
}

/// Registers every route, the shared state and the JSON 404 fallback.
/// Wrap the app in [`normalize_path`], then in [`edge::guard`], then in
/// [`observe::observe`] (outermost) with the same `metrics`.
pub fn configure(
    services: Services,
    settings: ApiSettings,
    metrics: observe::Metrics,
) -> impl FnOnce(&mut ServiceConfig) {
    move |cfg: &mut ServiceConfig| {
        cfg.app_data(web::Data::new(services))
            .app_data(web::Data::new(settings))
            .app_data(web::Data::new(metrics))
            .service(
                routes::fixed_resource(METRICS_PATH, "GET")
                    .route(web::get().to(observe::metrics_endpoint)),
            )
            .service(
                routes::fixed_resource(openapi::OPENAPI_PATH, "GET")
                    .route(web::get().to(openapi::endpoint)),
            )
            .configure(routes::health::configure)
            .configure(routes::oauth::configure)
            .service(
                web::scope(API_PREFIX)
                    // Inner: runs once the token is accepted.
                    .wrap(actix_web::middleware::from_fn(
                        routes::refuse_repeated_parameters,
                    ))
                    // After the token, the scope and the rate limit.
                    .wrap(actix_web::middleware::from_fn(idempotency::idempotent))
                    .wrap(actix_web::middleware::from_fn(auth::require_token))
                    .configure(routes::configure_api),
            )
            .default_service(web::to(not_found));
    }
}

async fn not_found(_req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound)
}
