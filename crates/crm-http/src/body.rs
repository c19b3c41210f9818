//! Reading request bodies: JSON as DRF does (the content type must be JSON,
//! the size is bounded, a parse failure is a 400 that says why), and the form
//! bodies of the OAuth endpoints.

use std::time::Duration;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;
use futures_util::StreamExt;
use serde_json::Value;

use crate::error::ApiError;
use crate::ApiSettings;

/// A parsed JSON body. A request without a body reads as an empty object,
/// as DRF treats it; a body without a JSON content type is a 415.
#[derive(Debug)]
pub struct JsonBody(pub Value);

fn media_type(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get(header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

fn is_json(media_type: &str) -> bool {
    let essence = media_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// How much of a body may be read, and for how long.
#[derive(Clone, Copy, Debug)]
struct Limits {
    bytes: usize,
    declared_length: Option<usize>,
    deadline: Duration,
}

/// Reads the whole body, refusing more than `limits.bytes` (413) and a body
/// that has not arrived whole by the deadline (408: a client trickling bytes
/// must not hold a connection forever). A failure to read is
/// `Err(Err(reason))`; a refusal is `Err(Ok(error))`.
async fn read_limited(
    payload: &mut Payload,
    limits: Limits,
) -> Result<web::BytesMut, Result<ApiError, String>> {
    let limit = limits.bytes;
    if limits.declared_length.is_some_and(|n| n > limit) {
        return Err(Ok(ApiError::PayloadTooLarge { limit }));
    }
    let read = async {
        let mut body = web::BytesMut::new();
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|e| Err(format!("could not read body: {e}")))?;
            if body.len() + chunk.len() > limit {
                return Err(Ok(ApiError::PayloadTooLarge { limit }));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    };
    actix_web::rt::time::timeout(limits.deadline, read)
        .await
        .unwrap_or(Err(Ok(ApiError::RequestTimeout)))
}

fn limits(req: &HttpRequest) -> Limits {
    let settings = req.app_data::<web::Data<ApiSettings>>();
    let declared_length = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    Limits {
        bytes: settings.map_or(ApiSettings::DEFAULT_MAX_BODY_BYTES, |s| s.max_body_bytes),
        declared_length,
        deadline: settings.map_or(ApiSettings::DEFAULT_BODY_TIMEOUT, |s| s.body_timeout),
    }
}

/// The whole body within the request's limits (413 when larger, 408 when it
/// has not arrived in time), whatever its type: what the idempotency
/// middleware fingerprints before the handler reads it.
pub(crate) async fn read_whole(
    req: &HttpRequest,
    payload: &mut Payload,
) -> Result<web::BytesMut, ApiError> {
    read_limited(payload, limits(req))
        .await
        .map_err(|e| e.unwrap_or_else(ApiError::MalformedJson))
}

/// An `application/x-www-form-urlencoded` body as (name, value) pairs, for
/// the OAuth endpoints. Anything else is an OAuth `invalid_request`.
#[derive(Debug)]
pub struct FormBody(pub Vec<(String, String)>);

impl FormBody {
    /// The value of `name`; a parameter given twice is an `invalid_request`
    /// (RFC 6749 §3.1).
    pub fn get(&self, name: &str) -> Result<Option<&str>, ApiError> {
        let mut values = self
            .0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str());
        let first = values.next();
        if values.next().is_some() {
            return Err(ApiError::oauth_invalid_request());
        }
        Ok(first.filter(|v| !v.is_empty()))
    }
}

impl FromRequest for FormBody {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let limits = limits(req);
        let is_form = media_type(req).is_some_and(|m| {
            m.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
        let mut payload = payload.take();
        Box::pin(async move {
            if !is_form {
                return Err(ApiError::oauth_invalid_request());
            }
            let body = read_limited(&mut payload, limits)
                .await
                .map_err(|e| e.unwrap_or_else(|_| ApiError::oauth_invalid_request()))?;
            Ok(Self(
                url::form_urlencoded::parse(&body).into_owned().collect(),
            ))
        })
    }
}

impl FromRequest for JsonBody {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let limits = limits(req);
        let declared_length = limits.declared_length;
        let media_type = media_type(req);
        let mut payload = payload.take();
        Box::pin(async move {
            if let Some(media_type) = media_type.as_deref().filter(|m| !is_json(m)) {
                if declared_length != Some(0) {
                    return Err(ApiError::UnsupportedMediaType(media_type.to_owned()));
                }
            }
            let body = read_limited(&mut payload, limits)
                .await
                .map_err(|e| e.unwrap_or_else(ApiError::MalformedJson))?;
            // No body at all reads as an empty object, whatever the type
            // (DRF); a body needs a JSON content type.
            if body.is_empty() {
                return Ok(Self(Value::Object(Default::default())));
            }
            if media_type.is_none() {
                return Err(ApiError::UnsupportedMediaType(String::new()));
            }
            serde_json::from_slice(&body)
                .map(Self)
                .map_err(|e| ApiError::MalformedJson(e.to_string()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::is_json;

    #[test]
    fn json_media_types() {
        assert!(is_json("application/json"));
        assert!(is_json("application/json; charset=utf-8"));
        assert!(is_json("Application/JSON"));
        assert!(is_json("application/merge-patch+json"));
        assert!(!is_json("text/plain"));
        assert!(!is_json("application/x-www-form-urlencoded"));
    }
}
