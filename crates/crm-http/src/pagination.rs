//! DRF's PageNumberPagination: parsing `page` / `page_size`, and building the
//! absolute `next` / `previous` links from the request.

use actix_web::http::header;
use actix_web::HttpRequest;
use crm_domain::page::{Page, PageRequest};
use crm_domain::Error;

use crate::dto::PageDto;
use crate::input::Query;
use crate::ApiSettings;

/// The page a request asks for; a bad `page` is an invalid page (404). An
/// empty `page` means page 1, as DRF reads it (`params.get("page") or 1`).
pub fn page_request(query: &Query) -> Result<PageRequest, Error> {
    PageRequest::parse(query.non_empty("page"), query.get("page_size"))
        .map_err(|()| Error::InvalidPage)
}

/// `scheme://host` of the request. Forwarded headers count only when the
/// server is configured to trust a proxy.
/// The host (with any port) the request addresses, as links are built for
/// it: `X-Forwarded-Host` behind a trusted proxy, the `Host` header otherwise.
pub(crate) fn request_host(req: &HttpRequest, settings: &ApiSettings) -> String {
    if settings.trust_proxy {
        return req.connection_info().host().to_owned();
    }
    req.headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .unwrap_or_else(|| req.app_config().host().to_owned())
}

fn origin(req: &HttpRequest, settings: &ApiSettings) -> String {
    let host = request_host(req, settings);
    if settings.trust_proxy {
        return format!("{}://{host}", req.connection_info().scheme());
    }
    let scheme = if req.app_config().secure() {
        "https"
    } else {
        "http"
    };
    format!("{scheme}://{host}")
}

/// The URL of this request with `page` set to `page` (or removed for `None`),
/// other parameters kept, sorted by name as DRF does.
fn link(req: &HttpRequest, settings: &ApiSettings, query: &Query, page: Option<u64>) -> String {
    link_with(req, settings, query, "page", page.map(|p| p.to_string()))
}

/// The absolute URL of this request with parameter `name` set to `value`
/// (or removed for `None`), every other parameter kept, sorted by name.
pub fn link_with(
    req: &HttpRequest,
    settings: &ApiSettings,
    query: &Query,
    name: &str,
    value: Option<String>,
) -> String {
    let replaced = name;
    let mut names: Vec<&str> = Vec::new();
    for (name, _) in query.pairs() {
        if name != replaced && !names.contains(&name.as_str()) {
            names.push(name);
        }
    }
    if value.is_some() {
        names.push(replaced);
    }
    names.sort_unstable();
    let mut serializer = url::form_urlencoded::Serializer::new(String::new());
    for name in names {
        if name == replaced {
            serializer.append_pair(replaced, value.as_deref().unwrap_or_default());
            continue;
        }
        for (k, v) in query.pairs() {
            if k == name {
                serializer.append_pair(k, v);
            }
        }
    }
    let encoded = serializer.finish();
    let mut path = req.path().to_owned();
    if !path.ends_with('/') {
        path.push('/');
    }
    let mut url = format!("{}{}", origin(req, settings), path);
    if !encoded.is_empty() {
        url.push('?');
        url.push_str(&encoded);
    }
    url
}

/// Wraps a page of results in DRF's envelope.
pub fn envelope<T, U>(
    req: &HttpRequest,
    settings: &ApiSettings,
    query: &Query,
    page: Page<T>,
    render: impl FnMut(&T) -> U,
) -> PageDto<U> {
    let mut dto = empty_envelope(req, settings, query, &page);
    dto.results = page.items.iter().map(render).collect();
    dto
}

/// DRF's envelope for `page` with its results left empty: count and links,
/// for an answer that writes the results itself.
pub fn empty_envelope<T, U>(
    req: &HttpRequest,
    settings: &ApiSettings,
    query: &Query,
    page: &Page<T>,
) -> PageDto<U> {
    let number = page.request.page();
    let next = page
        .has_next()
        .then(|| link(req, settings, query, Some(number + 1)));
    let previous = page.has_previous().then(|| {
        let target = number - 1;
        link(req, settings, query, (target > 1).then_some(target))
    });
    PageDto {
        count: page.count,
        next,
        previous,
        results: Vec::new(),
    }
}
