//! `/api/crm/webhook/`: webhook endpoints and their delivery log (API.md
//! section 9). Whether an endpoint's URL may be reached is the service's
//! question; this module only parses and renders.

use actix_web::web::{self, ServiceConfig};
use actix_web::{HttpRequest, HttpResponse};
use crm_domain::webhook::{DeliveryId, EndpointId, EndpointPatch};
use crm_domain::FieldErrors;

use super::{
    collection, instance, path_id, resource, WEBHOOK, WEBHOOK_DELIVERY, WEBHOOK_DELIVERY_LIST,
    WEBHOOK_DELIVERY_RETRY, WEBHOOK_LIST,
};
use crate::body::JsonBody;
use crate::dto::{WebhookDeliveryDto, WebhookEndpointCreatedDto, WebhookEndpointDto};
use crate::error::ApiError;
use crate::input::{self, Query};
use crate::pagination;
use crate::{ApiSettings, Services};

type Result<T> = std::result::Result<T, ApiError>;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(collection(&WEBHOOK_LIST, list, create))
        .service(instance(&WEBHOOK, retrieve, update, destroy))
        .service(
            resource(&WEBHOOK_DELIVERY_LIST)
                .route(web::get().to(list_deliveries))
                .route(web::head().to(list_deliveries)),
        )
        .service(
            resource(&WEBHOOK_DELIVERY)
                .route(web::get().to(retrieve_delivery))
                .route(web::head().to(retrieve_delivery)),
        )
        .service(resource(&WEBHOOK_DELIVERY_RETRY).route(web::post().to(retry_delivery)));
}

fn endpoint_id(req: &HttpRequest) -> Result<EndpointId> {
    path_id(req, "id", EndpointId::parse)
}

fn delivery_id(req: &HttpRequest) -> Result<DeliveryId> {
    path_id(req, "delivery_id", DeliveryId::parse)
}

/// The error for a request on endpoint `id` whose input is invalid: a 404
/// when there is no such endpoint (the endpoint is looked up before the
/// input is validated, as DRF does on detail routes), the validation errors
/// otherwise.
async fn not_found_first(services: &Services, id: EndpointId, errors: FieldErrors) -> ApiError {
    match services.webhooks.get(id).await {
        Ok(_) => errors.into(),
        Err(error) => error.into(),
    }
}

async fn list(
    req: HttpRequest,
    services: web::Data<Services>,
    settings: web::Data<ApiSettings>,
) -> Result<HttpResponse> {
    let query = Query::parse(req.query_string())?;
    let page = pagination::page_request(&query)?;
    let endpoints = services.webhooks.list(page).await?;
    let r = settings.render();
    let body = pagination::envelope(&req, &settings, &query, endpoints, |e| {
        WebhookEndpointDto::new(e, r)
    });
    Ok(HttpResponse::Ok().json(body))
}

/// 201 with the endpoint and its secret, the only answer that shows it.
async fn create(
    services: web::Data<Services>,
    settings: web::Data<ApiSettings>,
    body: JsonBody,
) -> Result<HttpResponse> {
    let input = input::endpoint_input(&body.0)?;
    let (endpoint, secret) = services.webhooks.create(input).await?;
    Ok(HttpResponse::Created().json(WebhookEndpointCreatedDto::new(
        &endpoint,
        &secret,
        settings.render(),
    )))
}

async fn retrieve(
    req: HttpRequest,
    services: web::Data<Services>,
    settings: web::Data<ApiSettings>,
) -> Result<HttpResponse> {
    let endpoint = services.webhooks.get(endpoint_id(&req)?).await?;
    Ok(HttpResponse::Ok().json(WebhookEndpointDto::new(&endpoint, settings.render())))
}

/// PUT and PATCH alike: fields left out keep their values.
async fn update(
    req: HttpRequest,
    services: web::Data<Services>,
    settings: web::Data<ApiSettings>,
    body: JsonBody,
) -> Result<HttpResponse> {
    let id = endpoint_id(&req)?;
    let patch = match input::endpoint_patch(&body.0) {
        Ok(patch) => patch,
        Err(errors) => return Err(not_found_first(&services, id, errors).await),
    };
    let endpoint = if patch == EndpointPatch::default() {
        services.webhooks.get(id).await?
    } else {
        services.webhooks.update(id, patch).await?
    };
    Ok(HttpResponse::Ok().json(WebhookEndpointDto::new(&endpoint, settings.render())))
}

async fn destroy(req: HttpRequest, services: web::Data<Services>) -> Result<HttpResponse> {
    services.webhooks.delete(endpoint_id(&req)?).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The endpoint's deliveries, newest first.
async fn list_deliveries(
    req: HttpRequest,
    services: web::Data<Services>,
    settings: web::Data<ApiSettings>,
) -> Result<HttpResponse> {
    let id = endpoint_id(&req)?;
    let query = Query::parse(req.query_string())?;
    let page = pagination::page_request(&query)?;
    let deliveries = services.webhooks.deliveries(id, page).await?;
    let r = settings.render();
    let body = pagination::envelope(&req, &settings, &query, deliveries, |d| {
        WebhookDeliveryDto::new(d, r)
    });
    Ok(HttpResponse::Ok().json(body))
}

async fn retrieve_delivery(
    req: HttpRequest,
    services: web::Data<Services>,
    settings: web::Data<ApiSettings>,
) -> Result<HttpResponse> {
    let delivery = services
        .webhooks
        .delivery(endpoint_id(&req)?, delivery_id(&req)?)
        .await?;
    Ok(HttpResponse::Ok().json(WebhookDeliveryDto::new(&delivery, settings.render())))
}

/// 202 with the delivery, pending and due now; any body is ignored.
async fn retry_delivery(
    req: HttpRequest,
    services: web::Data<Services>,
    settings: web::Data<ApiSettings>,
) -> Result<HttpResponse> {
    let delivery = services
        .webhooks
        .retry(endpoint_id(&req)?, delivery_id(&req)?)
        .await?;
    Ok(HttpResponse::Accepted().json(WebhookDeliveryDto::new(&delivery, settings.render())))
}
