//! Route registration, and the pieces every resource shares: method-not-
//! allowed answers with `Allow`, OPTIONS metadata, path id parsing.

pub mod customers;
pub mod events;
pub mod health;
pub mod oauth;
pub mod segments;
pub mod webhooks;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::web::{self, ServiceConfig};
use actix_web::{FromRequest, Handler, HttpRequest, HttpResponse, Resource, Responder};
use serde_json::json;

use crate::error::ApiError;
use crate::input::Query;

/// The scope every [`API_ROUTES`] path is under.
pub const API_PREFIX: &str = "/api/crm";

/// One resource of the API: its path template (under `/api/crm`), its name
/// and the methods it answers.
#[derive(Clone, Copy, Debug)]
pub struct RouteSpec {
    pub path: &'static str,
    pub name: &'static str,
    pub allow: &'static str,
}

macro_rules! routes {
    ($($id:ident = $path:literal, $name:literal, $allow:literal;)*) => {
        $(pub const $id: RouteSpec = RouteSpec { path: $path, name: $name, allow: $allow };)*
        /// Every `/api/crm` resource; the auth middleware guards them all.
        pub const API_ROUTES: &[RouteSpec] = &[$($id),*];
    };
}

routes! {
    CUSTOMER_LIST = "/customer", "Customer List", "GET, POST, HEAD, OPTIONS";
    CUSTOMER = "/customer/{id}", "Customer Instance", "GET, PUT, PATCH, DELETE, HEAD, OPTIONS";
    ADDRESS_LIST = "/customer/{id}/addresses", "Address List", "GET, POST, HEAD, OPTIONS";
    ADDRESS = "/customer/{id}/addresses/{address_id}", "Address Instance", "GET, PUT, PATCH, DELETE, HEAD, OPTIONS";
    COUPON_LIST = "/customer/{id}/coupons", "Coupon Holding List", "GET, POST, HEAD, OPTIONS";
    COUPON = "/customer/{id}/coupons/{coupon_id}", "Coupon Holding Instance", "DELETE, OPTIONS";
    SEGMENT_LIST = "/segment", "Segment List", "GET, POST, HEAD, OPTIONS";
    SEGMENT = "/segment/{id}", "Segment Instance", "GET, PUT, PATCH, DELETE, HEAD, OPTIONS";
    SEGMENT_CUSTOMER = "/segment/{id}/segment_customer", "Segment Customer", "POST, DELETE, OPTIONS";
    EVENT_LIST = "/event", "Event List", "GET, HEAD, OPTIONS";
    WEBHOOK_LIST = "/webhook", "Webhook List", "GET, POST, HEAD, OPTIONS";
    WEBHOOK = "/webhook/{id}", "Webhook Instance", "GET, PUT, PATCH, DELETE, HEAD, OPTIONS";
    WEBHOOK_DELIVERY_LIST = "/webhook/{id}/deliveries", "Webhook Delivery List", "GET, HEAD, OPTIONS";
    WEBHOOK_DELIVERY = "/webhook/{id}/deliveries/{delivery_id}", "Webhook Delivery Instance", "GET, HEAD, OPTIONS";
    WEBHOOK_DELIVERY_RETRY = "/webhook/{id}/deliveries/{delivery_id}/retry", "Webhook Delivery Retry", "POST, OPTIONS";
}

/// Registers the `/api/crm` resources.
pub fn configure_api(cfg: &mut ServiceConfig) {
    customers::configure(cfg);
    segments::configure(cfg);
    events::configure(cfg);
    webhooks::configure(cfg);
}

/// Middleware for the `/api/crm` scope (inside the authentication): a query
/// string that repeats a parameter (other than the list filters, whose values
/// are combined) is a 400 on every resource and method, before the handler
/// runs, whether or not that resource reads the parameter. A path that names
/// no resource (404) and a method it does not answer (405) are left to the
/// router.
pub async fn refuse_repeated_parameters(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    if !req.query_string().is_empty() && answered(&req) {
        if let Err(errors) = Query::parse(req.query_string()) {
            return Ok(req
                .error_response(ApiError::from(errors))
                .map_into_boxed_body());
        }
    }
    Ok(next.call(req).await?.map_into_boxed_body())
}

/// Whether a route of [`API_ROUTES`] answers the request's path and method.
pub(crate) fn answered(req: &ServiceRequest) -> bool {
    let Some(pattern) = req.request().match_pattern() else {
        return false;
    };
    let Some(path) = pattern.strip_prefix(API_PREFIX) else {
        return false;
    };
    API_ROUTES
        .iter()
        .find(|route| route.path == path)
        .is_some_and(|route| {
            route
                .allow
                .split(',')
                .any(|m| m.trim() == req.method().as_str())
        })
}

/// The resource `spec` describes: it answers 405 with `Allow` to methods it
/// has no route for, and OPTIONS with its metadata.
pub fn resource(spec: &RouteSpec) -> Resource {
    public_resource(spec.path, spec.name, spec.allow)
}

/// A collection resource: GET and HEAD list it, POST adds to it.
pub fn collection<L, LA, C, CA>(spec: &RouteSpec, list: L, create: C) -> Resource
where
    L: Handler<LA>,
    LA: FromRequest + 'static,
    L::Output: Responder + 'static,
    C: Handler<CA>,
    CA: FromRequest + 'static,
    C::Output: Responder + 'static,
{
    resource(spec)
        .route(web::get().to(list.clone()))
        .route(web::head().to(list))
        .route(web::post().to(create))
}

/// An instance resource: GET and HEAD read it, PUT and PATCH change it
/// (the handler tells them apart by method), DELETE removes it.
pub fn instance<R, RA, U, UA, D, DA>(spec: &RouteSpec, read: R, update: U, delete: D) -> Resource
where
    R: Handler<RA>,
    RA: FromRequest + 'static,
    R::Output: Responder + 'static,
    U: Handler<UA>,
    UA: FromRequest + 'static,
    U::Output: Responder + 'static,
    D: Handler<DA>,
    DA: FromRequest + 'static,
    D::Output: Responder + 'static,
{
    resource(spec)
        .route(web::get().to(read.clone()))
        .route(web::head().to(read))
        .route(web::put().to(update.clone()))
        .route(web::patch().to(update))
        .route(web::delete().to(delete))
}

/// Like [`resource`], for routes outside `/api/crm`.
pub fn public_resource(path: &str, name: &'static str, allow: &'static str) -> Resource {
    web::resource(path)
        .route(
            web::method(actix_web::http::Method::OPTIONS).to(move || async move {
                HttpResponse::Ok()
                    .insert_header((header::ALLOW, allow))
                    .json(json!({
                        "name": name,
                        "description": "",
                        "renders": ["application/json"],
                        "parses": ["application/json"],
                    }))
            }),
        )
        .default_service(web::to(move |req: HttpRequest| async move {
            Err::<HttpResponse, _>(ApiError::MethodNotAllowed {
                method: req.method().to_string(),
                allow,
            })
        }))
}

/// A resource outside `/api/crm` that answers only the methods in `allow`
/// (its routes are added by the caller) and every other method with 405 and
/// `Allow`, like the API's resources, but without OPTIONS metadata.
pub fn fixed_resource(path: &str, allow: &'static str) -> Resource {
    web::resource(path).default_service(web::to(move |req: HttpRequest| async move {
        Err::<HttpResponse, _>(ApiError::MethodNotAllowed {
            method: req.method().to_string(),
            allow,
        })
    }))
}

/// Parses path segment `name` with `parse`; anything else names no resource.
pub fn path_id<T>(
    req: &HttpRequest,
    name: &str,
    parse: fn(&str) -> Option<T>,
) -> Result<T, ApiError> {
    req.match_info()
        .get(name)
        .and_then(parse)
        .ok_or(ApiError::NotFound)
}
