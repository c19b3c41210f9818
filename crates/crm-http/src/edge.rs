//! The server's edge: which hosts it answers for, and the drain before a
//! shutdown (readiness says no, and every response closes its connection).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::ConnectionType;
use actix_web::middleware::Next;
use actix_web::web;

use crate::error::ApiError;
use crate::{pagination, ApiSettings};

/// The host names the server answers for, as Django's `ALLOWED_HOSTS`: an
/// exact name, `.example.com` for that domain and its subdomains, or `*` for
/// any. Names compare without case and without the port. Empty: any host.
#[derive(Clone, Debug, Default)]
pub struct AllowedHosts(Vec<String>);

impl AllowedHosts {
    /// From the configured names; blank entries are ignored.
    pub fn new<S: AsRef<str>>(names: &[S]) -> Self {
        Self(
            names
                .iter()
                .map(|n| n.as_ref().trim().to_ascii_lowercase())
                .filter(|n| !n.is_empty())
                .collect(),
        )
    }

    /// Whether `host` (a `Host` header value: name or `[v6]`, optional port)
    /// is allowed.
    pub fn allows(&self, host: &str) -> bool {
        if self.0.is_empty() {
            return true;
        }
        let Some(name) = host_name(host) else {
            return false;
        };
        self.0.iter().any(|pattern| {
            pattern == "*"
                || *pattern == name
                || pattern
                    .strip_prefix('.')
                    .is_some_and(|domain| name == domain || name.ends_with(pattern.as_str()))
        })
    }
}

/// The name part of a `Host` value, lower-cased; `None` when it is not a
/// plausible host (Django's `split_domain_port` and host validation).
fn host_name(host: &str) -> Option<String> {
    let host = host.trim().to_ascii_lowercase();
    let name = if let Some(rest) = host.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        if !(after.is_empty() || after.starts_with(':')) {
            return None;
        }
        format!("[{inside}]")
    } else {
        match host.rsplit_once(':') {
            Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name.to_owned(),
            Some(_) => return None,
            None => host,
        }
    };
    let name = name.strip_suffix('.').unwrap_or(&name).to_owned();
    let plausible = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.[]:".contains(&b));
    plausible.then_some(name)
}

/// Whether the server is draining before it stops; shared by every worker.
#[derive(Clone, Debug, Default)]
pub struct Lifecycle {
    draining: Arc<AtomicBool>,
}

impl Lifecycle {
    /// From now on `/readyz` answers 503 and every response closes its
    /// connection; requests are still served.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }
}

/// Middleware (inside [`crate::observe::observe`]): refuses hosts the server
/// does not serve (400), and while draining closes every connection after its
/// response, so keep-alive clients reconnect to another instance.
pub async fn guard(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let settings = req.app_data::<web::Data<ApiSettings>>().cloned();
    let Some(settings) = settings else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let host = pagination::request_host(req.request(), &settings);
    let mut res = if settings.allowed_hosts.allows(&host) {
        next.call(req).await?.map_into_boxed_body()
    } else {
        req.error_response(ApiError::DisallowedHost)
            .map_into_boxed_body()
    };
    if settings.lifecycle.is_draining() {
        res.response_mut()
            .head_mut()
            .set_connection_type(ConnectionType::Close);
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_allows_any_host() {
        assert!(AllowedHosts::new::<&str>(&[]).allows("evil.example"));
        assert!(AllowedHosts::new(&[" ", ""]).allows("evil.example"));
    }

    #[test]
    fn hosts_match_as_django_matches_them() {
        let hosts = AllowedHosts::new(&["api.shop.test", ".example.com", "[::1]", "127.0.0.1"]);
        for allowed in [
            "api.shop.test",
            "API.Shop.Test:8000",
            "api.shop.test.",
            "example.com",
            "a.b.example.com:443",
            "[::1]:8000",
            "127.0.0.1:80",
        ] {
            assert!(hosts.allows(allowed), "{allowed}");
        }
        for refused in [
            "evil.test",
            "shop.test",
            "notexample.com",
            "api.shop.test:x",
            "api.shop.test/x",
            "api.shop.test@evil.test",
            "",
            "[::1]x",
            "127.0.0.2",
        ] {
            assert!(!hosts.allows(refused), "{refused}");
        }
        assert!(AllowedHosts::new(&["*"]).allows("anything.test"));
    }
}
