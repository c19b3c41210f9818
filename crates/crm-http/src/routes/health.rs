//! Liveness and readiness probes; public.

use actix_web::web::{self, ServiceConfig};
use actix_web::HttpResponse;
use serde_json::json;

use super::fixed_resource;
use crate::error::LOG_INTERVAL;
use crate::observe::{one_line, LogSampler};
use crate::{ApiSettings, Services};

pub const HEALTHZ_PATH: &str = "/healthz";
pub const READYZ_PATH: &str = "/readyz";

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(
        fixed_resource(HEALTHZ_PATH, "GET, HEAD")
            .route(web::get().to(healthz))
            .route(web::head().to(healthz)),
    )
    .service(
        fixed_resource(READYZ_PATH, "GET, HEAD")
            .route(web::get().to(readyz))
            .route(web::head().to(readyz)),
    );
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

async fn readyz(services: web::Data<Services>, settings: web::Data<ApiSettings>) -> HttpResponse {
    if settings.lifecycle.is_draining() {
        return HttpResponse::ServiceUnavailable()
            .json(json!({"status": "draining", "database": "unknown"}));
    }
    match services.health.ping().await {
        Ok(()) => HttpResponse::Ok().json(json!({"status": "ok", "database": "ok"})),
        Err(error) => {
            static SAMPLER: LogSampler = LogSampler::new(LOG_INTERVAL);
            if let Some(suppressed) = SAMPLER.admit() {
                let error = one_line(&error.to_string());
                tracing::warn!(%error, suppressed, "readiness check failed");
            }
            HttpResponse::ServiceUnavailable()
                .json(json!({"status": "unavailable", "database": "unavailable"}))
        }
    }
}
