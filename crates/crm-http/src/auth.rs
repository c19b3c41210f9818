//! Bearer-token enforcement for every `/api/crm/` route, in one middleware so
//! that no route can forget it: GET, HEAD and OPTIONS need a read scope, every
//! other method a write scope.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{header, Method};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage};
use std::sync::Arc;

use crm_domain::auth::{Access, Grant};
use crm_domain::consistency::{self, Session};

use crate::error::ApiError;
use crate::{ApiSettings, Services};

/// The access a method needs.
pub fn access_for(method: &Method) -> Access {
    if method == Method::GET || method == Method::HEAD || method == Method::OPTIONS {
        Access::Read
    } else {
        Access::Write
    }
}

/// The token of an `Authorization: Bearer <token>` header. `None` when the
/// header is absent or uses another scheme; `Some("")` when it has no token.
fn bearer_token(req: &ServiceRequest) -> Option<String> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| rest.trim().to_owned())
}

/// Middleware: authenticates the bearer token, checks its scope and the
/// client's rate limit, and leaves the [`Grant`] in the request extensions.
/// A refusal is answered here, as a response.
pub async fn require_token(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    match authorize(&req).await {
        Ok(grant) => {
            // The rest of the request runs in the client's read session:
            // GET and HEAD may read from a replica, which then holds every
            // write this client made (`crm_domain::consistency`).
            let stale_reads_ok = req.method() == Method::GET || req.method() == Method::HEAD;
            let session = Session::new(Arc::from(grant.client_id.as_str()), stale_reads_ok);
            req.extensions_mut().insert(grant);
            let response = consistency::in_session(session, next.call(req)).await?;
            Ok(response.map_into_boxed_body())
        }
        Err(error) => Ok(req.error_response(error).map_into_boxed_body()),
    }
}

async fn authorize(req: &ServiceRequest) -> Result<Grant, ApiError> {
    let Some(token) = bearer_token(req) else {
        return Err(ApiError::Unauthenticated);
    };
    if token.is_empty() {
        return Err(ApiError::InvalidToken(
            "Invalid token header. No credentials provided.",
        ));
    }
    let services = req
        .app_data::<web::Data<Services>>()
        .cloned()
        .expect("services are registered with the routes");
    let grant = services.auth.authenticate_token(&token).await?;
    let accepted = access_for(req.method()).accepted_scopes();
    if !grant.scopes.intersects(accepted) {
        return Err(ApiError::InsufficientScope(accepted));
    }
    let limiter = req
        .app_data::<web::Data<ApiSettings>>()
        .and_then(|s| s.rate_limiter.clone());
    if let Some(limiter) = limiter {
        limiter
            .check(&grant.client_id)
            .map_err(ApiError::throttled)?;
    }
    Ok(grant)
}
