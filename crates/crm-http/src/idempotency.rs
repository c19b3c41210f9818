//! `Idempotency-Key` on the writes under `/api/crm` (API.md section 7).
//!
//! The middleware runs inside the authentication (so it knows the client
//! and comes after 401, 403 and 429), checks the header (400), reads the
//! body whole within its limits (413, 408) to fingerprint the request, and
//! claims the key in the store. A stored answer is replayed byte for byte
//! with `Idempotent-Replayed: true`; a request still running is a 409; the
//! key used for another request is a 422. Otherwise the request runs as a
//! unit of work of the store (`IdempotencyStore::run_claimed`): its writes
//! and its answer, read whole here, commit in one transaction, so a retry
//! after a crash finds the answer or nothing written. A 5xx is not kept:
//! its writes are rolled back and the key freed.
//!
//! The unit runs in a task of its own, so that a client that disconnects
//! does not abandon it halfway: its retry then replays the answer.

use std::cell::RefCell;
use std::rc::Rc;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::web::{self, Bytes};
use actix_web::{HttpMessage, HttpResponse};
use crm_domain::auth::Grant;
use crm_domain::idempotency::{Claim, Fingerprint, IdempotencyKey, StoredResponse, UnitOutcome};
use crm_domain::FieldErrors;
use serde_json::json;

use crate::body;
use crate::error::ApiError;
use crate::{ApiSettings, Services};

/// The request header.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// The header marking a replayed answer.
pub const IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// The largest answer kept for replays. A write whose answer is larger (a
/// segment of very many members) is refused with 503 and rolled back: it
/// can be sent without the header.
pub const MAX_KEPT_ANSWER: usize = 32 * 1024 * 1024;

tokio::task_local! {
    /// Set while a request runs as a unit of work: its answer is read
    /// whole, in the request's task (see `segment_stream`).
    static IN_UNIT: ();
}

/// Whether the current task serves a request that runs as a unit of work.
pub fn in_unit() -> bool {
    IN_UNIT.try_with(|()| ()).is_ok()
}

fn header_error(message: impl Into<String>) -> ApiError {
    ApiError::Invalid(FieldErrors::single("Idempotency-Key", message))
}

fn detail(status: StatusCode, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(json!({ "detail": message }))
}

/// The request's key: `None` when it has none, or when it is not a write
/// the API answers (GET, HEAD, OPTIONS, methods the API does not know, and
/// a write to a resource that does not take it, answered 405 before the
/// key is looked at: no write can happen, so nothing is kept).
fn key_of(req: &ServiceRequest) -> Result<Option<IdempotencyKey>, ApiError> {
    if !matches!(
        *req.method(),
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    ) || !crate::routes::answered(req)
    {
        return Ok(None);
    }
    let mut values = req.headers().get_all(IDEMPOTENCY_KEY);
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(header_error("Send this header only once."));
    }
    IdempotencyKey::parse(first.as_bytes())
        .map(Some)
        .map_err(header_error)
}

/// A stored answer, sent again.
fn replay(stored: StoredResponse) -> HttpResponse {
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    let mut response = HttpResponse::build(status);
    if let Some(content_type) = stored.content_type {
        response.insert_header((header::CONTENT_TYPE, content_type));
    }
    response.insert_header((IDEMPOTENT_REPLAYED, HeaderValue::from_static("true")));
    response.body(stored.body)
}

/// Middleware for the `/api/crm` scope, inside the authentication.
pub async fn idempotent(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let key = match key_of(&req) {
        Ok(Some(key)) => key,
        Ok(None) => return Ok(next.call(req).await?.map_into_boxed_body()),
        Err(error) => return Ok(req.error_response(error).map_into_boxed_body()),
    };
    let (http, mut payload) = req.into_parts();
    let body = match body::read_whole(&http, &mut payload).await {
        Ok(body) => body,
        Err(error) => return Ok(ServiceResponse::new(http, HttpResponse::from_error(error))),
    };
    let services = http
        .app_data::<web::Data<Services>>()
        .expect("the services are registered")
        .clone();
    let settings = http
        .app_data::<web::Data<ApiSettings>>()
        .expect("the settings are registered")
        .clone();
    let Some(client) = http
        .extensions()
        .get::<Grant>()
        .map(|g| g.client_id.clone())
    else {
        // Inside the authentication there is always a grant.
        return Ok(ServiceResponse::new(
            http,
            HttpResponse::from_error(ApiError::Unauthenticated),
        ));
    };
    let mut target = http.path().to_owned();
    if !http.query_string().is_empty() {
        target.push('?');
        target.push_str(http.query_string());
    }
    let fingerprint = Fingerprint::of(http.method().as_str(), &target, &body);
    let req = ServiceRequest::from_parts(http, Payload::from(Bytes::from(body)));
    // The request has arrived whole: from here on it runs in a task of its
    // own, so that a client that goes away abandons neither the claim nor
    // the unit, and its retry gets the answer.
    let run = actix_web::rt::spawn(async move {
        let now = time::OffsetDateTime::now_utc();
        let claim = services
            .idempotency
            .claim_key(
                &client,
                &key,
                &fingerprint,
                now,
                settings.idempotency_ttl,
                crm_domain::idempotency::STALE_CLAIM,
            )
            .await;
        let token = match claim {
            Ok(Claim::Acquired(token)) => token,
            Ok(Claim::Replay(stored)) => return Ok(req.into_response(replay(stored))),
            Ok(Claim::InFlight) => return Ok(req.into_response(in_flight())),
            Ok(Claim::Mismatch) => {
                return Ok(req.into_response(detail(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "Idempotency-Key was used with a different request.",
                )))
            }
            Err(error) => {
                return Ok(
                    req.into_response(HttpResponse::from_error(ApiError::Domain(error.into())))
                )
            }
        };
        let sent: Rc<RefCell<Option<Answer>>> = Rc::default();
        let keep = sent.clone();
        let work = Box::pin(IN_UNIT.scope((), async move {
            match next.call(req).await {
                Ok(response) => {
                    let (http, response) = response.into_parts();
                    let (answer, stored) = read_answer(response.map_into_boxed_body()).await;
                    *keep.borrow_mut() = Some(Ok(ServiceResponse::new(http, answer)));
                    stored
                }
                Err(error) => {
                    *keep.borrow_mut() = Some(Err(error));
                    None
                }
            }
        }));
        let outcome = services.idempotency.run_claimed(&token, work).await;
        let answer = sent.borrow_mut().take();
        match (outcome, answer) {
            (Ok(UnitOutcome::Committed | UnitOutcome::RolledBack), Some(answer)) => answer,
            (Ok(UnitOutcome::ClaimLost), Some(Ok(answer))) => Ok(answer.into_response(in_flight())),
            (Err(error), Some(Ok(answer))) => {
                Ok(answer.into_response(HttpResponse::from_error(ApiError::Domain(error.into()))))
            }
            (_, Some(Err(error))) => Err(error),
            (Err(error), None) => Err(ApiError::Domain(error.into()).into()),
            (Ok(_), None) => Err(ApiError::Domain(crm_domain::Error::Internal(
                "the request's unit of work gave no answer".to_owned(),
            ))
            .into()),
        }
    });
    run.await.unwrap_or_else(|_| {
        Err(ApiError::Domain(crm_domain::Error::Internal(
            "the request's unit of work failed".to_owned(),
        ))
        .into())
    })
}

/// What the handler answered, or the error its service failed with.
type Answer = Result<ServiceResponse<BoxBody>, actix_web::Error>;

fn in_flight() -> HttpResponse {
    detail(
        StatusCode::CONFLICT,
        "A request with this Idempotency-Key is being processed.",
    )
}

/// The answer read whole, and what to keep of it: nothing for a 5xx, or
/// for an answer too large to keep (then a 503 is sent instead).
async fn read_answer(response: HttpResponse) -> (HttpResponse, Option<StoredResponse>) {
    let status = response.status();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (head, body) = response.into_parts();
    let bytes = match actix_web::body::to_bytes_limited(body, MAX_KEPT_ANSWER).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(_)) => {
            return (
                HttpResponse::from_error(ApiError::Domain(crm_domain::Error::Unavailable(
                    "the answer is too large to keep for Idempotency-Key replays; send the \
                     request without the header"
                        .to_owned(),
                ))),
                None,
            )
        }
        Err(_) => {
            return (
                HttpResponse::from_error(ApiError::Domain(crm_domain::Error::Internal(
                    "the answer could not be read".to_owned(),
                ))),
                None,
            )
        }
    };
    let stored = (status.as_u16() < 500).then(|| StoredResponse {
        status: status.as_u16(),
        content_type,
        body: bytes.to_vec(),
    });
    (head.set_body(bytes).map_into_boxed_body(), stored)
}
