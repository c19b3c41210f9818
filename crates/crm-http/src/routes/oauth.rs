//! The authorization server: the client credentials grant (RFC 6749 §4.4),
//! token revocation (RFC 7009) and introspection (RFC 7662). Public routes;
//! each authenticates the client itself.

use actix_web::http::header;
use actix_web::web::{self, ServiceConfig};
use actix_web::{HttpRequest, HttpResponse};
use base64::Engine;
use crm_domain::auth::{AuthError, Client};
use serde_json::json;

use super::public_resource as resource;
use crate::body::FormBody;
use crate::error::ApiError;
use crate::throttle::FailureKey;
use crate::{ApiSettings, Services};

type Result<T> = std::result::Result<T, ApiError>;

pub const TOKEN_PATH: &str = "/oauth/token";
pub const REVOKE_PATH: &str = "/oauth/revoke_token";
pub const INTROSPECT_PATH: &str = "/oauth/introspect";

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(resource(TOKEN_PATH, "Token", "POST, OPTIONS").route(web::post().to(token)))
        .service(
            resource(REVOKE_PATH, "Revoke Token", "POST, OPTIONS").route(web::post().to(revoke)),
        )
        .service(
            resource(INTROSPECT_PATH, "Introspect", "POST, OPTIONS")
                .route(web::post().to(introspect)),
        );
}

/// Percent-decodes one part of HTTP Basic credentials (RFC 6749 §2.3.1 says
/// the id and secret are form-urlencoded before base64).
fn form_decode(raw: &str) -> String {
    url::form_urlencoded::parse(format!("x={raw}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// The client credentials of the request: HTTP Basic or form fields, not both.
/// An `Authorization` header of another scheme (a stray `Bearer` that a
/// generated client adds to every call) is not client authentication and is
/// ignored: the form fields decide.
fn credentials(req: &HttpRequest, form: &FormBody) -> Result<(String, String)> {
    let basic = match req.headers().get(header::AUTHORIZATION) {
        None => None,
        Some(value) => {
            let value = value
                .to_str()
                .map_err(|_| ApiError::oauth_invalid_client())?;
            let (scheme, encoded) = value.split_once(' ').unwrap_or((value, ""));
            if !scheme.eq_ignore_ascii_case("basic") {
                return match (form.get("client_id")?, form.get("client_secret")?) {
                    (Some(id), Some(secret)) => Ok((id.to_owned(), secret.to_owned())),
                    _ => Err(ApiError::oauth_invalid_client()),
                };
            }
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .map_err(|_| ApiError::oauth_invalid_client())?;
            let decoded =
                String::from_utf8(decoded).map_err(|_| ApiError::oauth_invalid_client())?;
            let (id, secret) = decoded
                .split_once(':')
                .ok_or_else(ApiError::oauth_invalid_client)?;
            Some((form_decode(id), form_decode(secret)))
        }
    };
    let id = form.get("client_id")?;
    let secret = form.get("client_secret")?;
    match (basic, id, secret) {
        (Some(_), _, Some(_)) => Err(ApiError::oauth_invalid_request()),
        (Some(pair), _, None) => Ok(pair),
        (None, Some(id), Some(secret)) => Ok((id.to_owned(), secret.to_owned())),
        (None, _, _) => Err(ApiError::oauth_invalid_client()),
    }
}

/// The keys failed authentication is counted under: the client id as
/// presented (bounded in length) and the remote address.
fn failure_keys(req: &HttpRequest, settings: &ApiSettings, id: &str) -> [FailureKey; 2] {
    let address = if settings.trust_proxy {
        req.connection_info()
            .realip_remote_addr()
            .map(|a| a.chars().take(64).collect())
    } else {
        req.peer_addr().map(|a| a.ip().to_string())
    };
    [
        FailureKey::Client(id.chars().take(64).collect()),
        FailureKey::Address(address.unwrap_or_default()),
    ]
}

/// Authenticates the client. While its id or the caller's address is
/// throttled for failing too often, the answer is 429 before the
/// credentials are checked.
async fn authenticate(
    req: &HttpRequest,
    services: &Services,
    settings: &ApiSettings,
    form: &FormBody,
) -> Result<Client> {
    let (id, secret) = credentials(req, form)?;
    let throttle = settings.oauth_failures.as_ref();
    let keys = failure_keys(req, settings, &id);
    if let Some(Err(wait)) = throttle.map(|t| t.check(&keys)) {
        return Err(ApiError::throttled(wait));
    }
    match services.auth.authenticate_client(&id, &secret).await {
        Ok(client) => Ok(client),
        Err(error) => {
            if let (Some(throttle), AuthError::InvalidClient) = (throttle, &error) {
                throttle.record_failure(&keys);
            }
            Err(error.into())
        }
    }
}

fn no_store() -> actix_web::HttpResponseBuilder {
    let mut builder = HttpResponse::Ok();
    builder
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"));
    builder
}

async fn token(
    req: HttpRequest,
    services: web::Data<Services>,
    settings: web::Data<ApiSettings>,
    form: FormBody,
) -> Result<HttpResponse> {
    let grant_type = form
        .get("grant_type")?
        .ok_or_else(ApiError::oauth_invalid_request)?
        .to_owned();
    let client = authenticate(&req, &services, &settings, &form).await?;
    if grant_type != "client_credentials" {
        return Err(ApiError::OAuth {
            status: actix_web::http::StatusCode::BAD_REQUEST,
            code: "unsupported_grant_type",
        });
    }
    let issued = services
        .auth
        .issue_token(&client, form.get("scope")?)
        .await?;
    Ok(no_store().json(json!({
        "access_token": issued.access_token.expose(),
        "token_type": "Bearer",
        "expires_in": issued.expires_in,
        "scope": issued.scopes.to_string(),
    })))
}

async fn revoke(
    req: HttpRequest,
    services: web::Data<Services>,
    settings: web::Data<ApiSettings>,
    form: FormBody,
) -> Result<HttpResponse> {
    let client = authenticate(&req, &services, &settings, &form).await?;
    let token = form
        .get("token")?
        .ok_or_else(ApiError::oauth_invalid_request)?;
    services.auth.revoke(&client, token).await?;
    // Other instances drop the token from their caches when the revocation
    // reaches them; answer once it has, so the very next request anywhere is
    // refused.
    let propagation = services.auth.revocation_propagation();
    if !propagation.is_zero() {
        actix_web::rt::time::sleep(propagation).await;
    }
    Ok(no_store().finish())
}

async fn introspect(
    req: HttpRequest,
    services: web::Data<Services>,
    settings: web::Data<ApiSettings>,
    form: FormBody,
) -> Result<HttpResponse> {
    let client = authenticate(&req, &services, &settings, &form).await?;
    let token = form
        .get("token")?
        .ok_or_else(ApiError::oauth_invalid_request)?;
    // A client may introspect only its own tokens: another client's token
    // reads as inactive, so a client cannot learn what others hold.
    let body = match services.auth.authenticate_token(token).await {
        Ok(grant) if grant.client_id != client.id => json!({ "active": false }),
        Ok(grant) => json!({
            "active": true,
            "scope": grant.scopes.to_string(),
            "client_id": grant.client_id,
            "token_type": "Bearer",
            "exp": grant.expires_at.unix_timestamp(),
            "iat": grant.issued_at.unix_timestamp(),
        }),
        Err(crm_domain::auth::AuthError::InvalidToken(_)) => json!({ "active": false }),
        Err(other) => return Err(other.into()),
    };
    Ok(no_store().json(body))
}

#[cfg(test)]
mod tests {
    use super::form_decode;

    #[test]
    fn basic_credentials_are_form_decoded() {
        assert_eq!(form_decode("a%3Ab+c"), "a:b c");
        assert_eq!(form_decode("plain"), "plain");
    }
}
