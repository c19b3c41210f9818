//! Route registration, and the pieces every resource shares: method-not-
//! allowed answers with `Allow`, OPTIONS metadata, path id parsing.

pub mod customers;
pub mod health;
pub mod oauth;
pub mod segments;

use actix_web::http::header;
use actix_web::web::{self, ServiceConfig};
use actix_web::{HttpRequest, HttpResponse, Resource};
use serde_json::json;

use crate::error::ApiError;

/// Registers the `/api/crm` resources.
pub fn configure_api(cfg: &mut ServiceConfig) {
    customers::configure(cfg);
    segments::configure(cfg);
}

/// A resource answering 405 with `Allow: allow` to methods it has no route
/// for, and OPTIONS with its metadata.
pub fn resource(path: &str, name: &'static str, allow: &'static str) -> Resource {
    web::resource(path)
        .route(web::method(actix_web::http::Method::OPTIONS).to(move || async move {
            HttpResponse::Ok()
                .insert_header((header::ALLOW, allow))
                .json(json!({
                    "name": name,
                    "description": "",
                    "renders": ["application/json"],
                    "parses": ["application/json"],
                }))
        }))
        .default_service(web::to(move |req: HttpRequest| async move {
            Err::<HttpResponse, _>(ApiError::MethodNotAllowed {
                method: req.method().to_string(),
                allow,
            })
        }))
}

/// Parses path segment `name` with `parse`; anything else names no resource.
pub fn path_id<T>(req: &HttpRequest, name: &str, parse: fn(&str) -> Option<T>) -> Result<T, ApiError> {
    req.match_info()
        .get(name)
        .and_then(parse)
        .ok_or(ApiError::NotFound)
}
