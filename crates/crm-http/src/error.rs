//! The one place where failures become HTTP responses, in DRF's shapes. Every
//! variant is mapped explicitly; there is no catch-all arm.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use crm_domain::auth::{AuthError, ScopeSet};
use crm_domain::{Error as DomainError, FieldErrors};
use serde_json::{json, Map, Value};

use crate::observe::{one_line, LogSampler};

/// Repeated failure lines of one kind are logged at most once per this
/// interval; the next line counts the ones left out (`suppressed`).
pub(crate) const LOG_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

/// What a request handler can fail with.
#[derive(Debug)]
pub enum ApiError {
    /// A failure reported by a domain service.
    Domain(DomainError),
    /// Input that fails validation: 400 with `{"field": ["message"]}`.
    Invalid(FieldErrors),
    /// The path names no resource: 404.
    NotFound,
    /// The body is not valid JSON: 400 with the parser's reason.
    MalformedJson(String),
    /// The body is not JSON: 415 naming the content type sent.
    UnsupportedMediaType(String),
    /// The body is larger than allowed: 413.
    PayloadTooLarge { limit: usize },
    /// The body did not arrive within the time allowed: 408, and the
    /// connection is closed.
    RequestTimeout,
    /// The `Host` header names a host the server does not serve: 400.
    DisallowedHost,
    /// The resource does not answer this method: 405 with `Allow`.
    MethodNotAllowed { method: String, allow: &'static str },
    /// No bearer credentials: 401.
    Unauthenticated,
    /// A bearer token that is unknown, revoked or expired: 401.
    InvalidToken(&'static str),
    /// A valid token without any of these scopes: 403.
    InsufficientScope(ScopeSet),
    /// A `cursor` that does not decode or belongs to another ordering: 404
    /// `Invalid cursor` (DRF's answer).
    InvalidCursor,
    /// What was asked for existed once and is gone for good: 410 with this
    /// detail.
    Gone(String),
    /// The client made too many requests: 429 with `Retry-After`.
    Throttled { seconds: u64 },
    /// An OAuth endpoint error (RFC 6749 §5.2):
    /// `{"error": code, "error_description": ...}`.
    OAuth {
        status: StatusCode,
        code: &'static str,
    },
}

impl ApiError {
    pub fn oauth_invalid_request() -> Self {
        Self::OAuth {
            status: StatusCode::BAD_REQUEST,
            code: "invalid_request",
        }
    }

    /// 429 for a wait of `wait`, in whole seconds rounded up (at least 1).
    pub fn throttled(wait: std::time::Duration) -> Self {
        let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        Self::Throttled {
            seconds: seconds.max(1),
        }
    }

    pub fn oauth_invalid_client() -> Self {
        Self::OAuth {
            status: StatusCode::UNAUTHORIZED,
            code: "invalid_client",
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::InvalidClient => Self::oauth_invalid_client(),
            AuthError::InvalidScope => Self::OAuth {
                status: StatusCode::BAD_REQUEST,
                code: "invalid_scope",
            },
            AuthError::InvalidToken(reason) => Self::InvalidToken(reason),
            AuthError::Store(e) => Self::Domain(e),
        }
    }
}

impl From<DomainError> for ApiError {
    fn from(error: DomainError) -> Self {
        Self::Domain(error)
    }
}

impl From<FieldErrors> for ApiError {
    fn from(errors: FieldErrors) -> Self {
        Self::Invalid(errors)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}

/// The JSON body of a DRF validation error.
pub fn field_errors_body(errors: &FieldErrors) -> Value {
    let mut map = Map::new();
    for (field, messages) in errors.iter() {
        map.insert(field.to_owned(), json!(messages));
    }
    Value::Object(map)
}

/// The `error_description` of an OAuth error (RFC 6749 §5.2): short, for
/// the developer reading a library's exception, and revealing nothing (which
/// of the id and the secret was wrong, whether a client exists).
pub fn oauth_description(code: &str) -> &'static str {
    match code {
        "invalid_request" => {
            "The request is missing a required parameter, repeats a parameter, \
             authenticates the client in more than one way, or is not a form body."
        }
        "invalid_client" => "Client authentication failed.",
        "invalid_scope" => "The requested scope is unknown or not allowed for this client.",
        "unsupported_grant_type" => "Only the client_credentials grant type is supported.",
        _ => "The request was refused.",
    }
}

fn detail(message: &str) -> Value {
    json!({ "detail": message })
}

impl ApiError {
    fn parts(&self) -> (StatusCode, Value) {
        match self {
            Self::Domain(DomainError::NotFound) | Self::NotFound => {
                (StatusCode::NOT_FOUND, detail("Not found."))
            }
            Self::Domain(DomainError::InvalidPage) => {
                (StatusCode::NOT_FOUND, detail("Invalid page."))
            }
            Self::Domain(DomainError::Invalid(errors)) | Self::Invalid(errors) => {
                (StatusCode::BAD_REQUEST, field_errors_body(errors))
            }
            Self::Domain(DomainError::Unavailable(_)) => (
                StatusCode::SERVICE_UNAVAILABLE,
                detail("Service temporarily unavailable, try again later."),
            ),
            Self::Domain(DomainError::Internal(_)) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                detail("A server error occurred."),
            ),
            Self::MalformedJson(reason) => (
                StatusCode::BAD_REQUEST,
                detail(&format!("JSON parse error - {reason}")),
            ),
            Self::UnsupportedMediaType(media_type) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                detail(&format!(
                    "Unsupported media type \"{media_type}\" in request."
                )),
            ),
            Self::PayloadTooLarge { limit } => (
                StatusCode::PAYLOAD_TOO_LARGE,
                detail(&format!(
                    "Request body is too large: the limit is {limit} bytes."
                )),
            ),
            Self::RequestTimeout => (
                StatusCode::REQUEST_TIMEOUT,
                detail("The request body was not received in time."),
            ),
            Self::DisallowedHost => (
                StatusCode::BAD_REQUEST,
                detail("The Host header names a host this server does not serve."),
            ),
            Self::MethodNotAllowed { method, .. } => (
                StatusCode::METHOD_NOT_ALLOWED,
                detail(&format!("Method \"{method}\" not allowed.")),
            ),
            Self::Unauthenticated => (
                StatusCode::UNAUTHORIZED,
                detail("Authentication credentials were not provided."),
            ),
            Self::InvalidToken(reason) => (StatusCode::UNAUTHORIZED, detail(reason)),
            Self::InsufficientScope(_) => (
                StatusCode::FORBIDDEN,
                detail("You do not have permission to perform this action."),
            ),
            Self::Gone(message) => (StatusCode::GONE, detail(message)),
            Self::InvalidCursor => (StatusCode::NOT_FOUND, detail("Invalid cursor")),
            Self::Throttled { seconds } => (
                StatusCode::TOO_MANY_REQUESTS,
                detail(&format!(
                    "Request was throttled. Expected available in {seconds} seconds."
                )),
            ),
            Self::OAuth { status, code } => (
                *status,
                json!({ "error": code, "error_description": oauth_description(code) }),
            ),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.parts().0
    }

    fn error_response(&self) -> HttpResponse {
        let (status, body) = self.parts();
        match self {
            Self::Domain(DomainError::Internal(context)) => {
                static SAMPLER: LogSampler = LogSampler::new(LOG_INTERVAL);
                if let Some(suppressed) = SAMPLER.admit() {
                    let error = one_line(context);
                    tracing::error!(%error, suppressed, "internal error");
                }
            }
            Self::Domain(DomainError::Unavailable(context)) => {
                static SAMPLER: LogSampler = LogSampler::new(LOG_INTERVAL);
                if let Some(suppressed) = SAMPLER.admit() {
                    let error = one_line(context);
                    tracing::warn!(%error, suppressed, "storage unavailable");
                }
            }
            _ => {}
        }
        let mut response = HttpResponse::build(status);
        match self {
            Self::MethodNotAllowed { allow, .. } => {
                response.insert_header((header::ALLOW, HeaderValue::from_static(allow)));
            }
            Self::Unauthenticated => {
                response.insert_header((header::WWW_AUTHENTICATE, "Bearer realm=\"api\""));
            }
            Self::InvalidToken(reason) => {
                response.insert_header((
                    header::WWW_AUTHENTICATE,
                    format!(
                        "Bearer realm=\"api\", error=\"invalid_token\", error_description=\"{reason}\""
                    ),
                ));
            }
            Self::InsufficientScope(scopes) => {
                response.insert_header((
                    header::WWW_AUTHENTICATE,
                    format!(
                        "Bearer realm=\"api\", error=\"insufficient_scope\", scope=\"{scopes}\""
                    ),
                ));
            }
            Self::Throttled { seconds } => {
                response.insert_header((header::RETRY_AFTER, seconds.to_string()));
            }
            Self::OAuth { status, .. } => {
                response.insert_header((header::CACHE_CONTROL, "no-store"));
                response.insert_header((header::PRAGMA, "no-cache"));
                if *status == StatusCode::UNAUTHORIZED {
                    response.insert_header((header::WWW_AUTHENTICATE, "Basic realm=\"oauth\""));
                }
            }
            Self::RequestTimeout => {
                response.force_close();
            }
            Self::Domain(_)
            | Self::DisallowedHost
            | Self::Invalid(_)
            | Self::NotFound
            | Self::Gone(_)
            | Self::InvalidCursor
            | Self::MalformedJson(_)
            | Self::UnsupportedMediaType(_)
            | Self::PayloadTooLarge { .. } => {}
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response.insert_header((header::RETRY_AFTER, HeaderValue::from_static("1")));
        }
        response.json(body)
    }
}
