//! `/api/crm/segment/`: segments and their members. Every answer that embeds
//! members is streamed as it is read (`segment_stream`), so its cost does not
//! grow with the segments' size.

use actix_web::web::{self, ServiceConfig};
use actix_web::{HttpMessage, HttpRequest, HttpResponse};
use crm_domain::segment::{SegmentId, SegmentRef};
use crm_domain::FieldErrors;

use super::{collection, instance, path_id, resource, SEGMENT, SEGMENT_CUSTOMER, SEGMENT_LIST};
use crate::body::JsonBody;
use crate::dto::{PageDto, SegmentDto};
use crate::error::ApiError;
use crate::input::{self, Query};
use crate::observe::RequestId;
use crate::pagination;
use crate::segment_stream::Writer;
use crate::{ApiSettings, Services};

type Result<T> = std::result::Result<T, ApiError>;

/// The request id, for what is logged after the answer has started.
fn request_id(req: &HttpRequest) -> Option<String> {
    req.extensions().get::<RequestId>().map(|id| id.0.clone())
}

/// The 200 answer for segment `head` with its members, streamed.
async fn answer(
    req: &HttpRequest,
    services: &Services,
    settings: &ApiSettings,
    head: SegmentRef,
) -> Result<HttpResponse> {
    let writer = Writer::single(services.segments.clone(), settings.render(), head);
    Ok(writer
        .respond(&settings.segment_streams, request_id(req))
        .await?)
}

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(collection(&SEGMENT_LIST, list, create))
        .service(instance(&SEGMENT, retrieve, rename, destroy))
        .service(
            resource(&SEGMENT_CUSTOMER)
                .route(web::post().to(add_members))
                .route(web::delete().to(remove_members)),
        );
}

fn segment_id(req: &HttpRequest) -> Result<SegmentId> {
    path_id(req, "id", SegmentId::parse)
}

/// The error for a request on segment `id` whose input is invalid: a 404 when
/// there is no such segment (the segment is looked up before the input is
/// validated, as DRF does on detail routes), the validation errors otherwise.
async fn not_found_first(services: &Services, id: SegmentId, errors: FieldErrors) -> ApiError {
    match services.segments.get(id).await {
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
    let heads = services.segments.list(page).await?;
    let envelope: PageDto<SegmentDto> = pagination::empty_envelope(&req, &settings, &query, &heads);
    let writer = Writer::page(
        services.segments.clone(),
        settings.render(),
        &envelope,
        heads.items,
    );
    Ok(writer
        .respond(&settings.segment_streams, request_id(&req))
        .await?)
}

async fn create(services: web::Data<Services>, body: JsonBody) -> Result<HttpResponse> {
    let title = input::segment_title(&body.0, true)?.expect("a required title is present");
    let segment = services.segments.create(title).await?;
    Ok(HttpResponse::Created().json(SegmentDto::head(&segment)))
}

async fn retrieve(
    req: HttpRequest,
    services: web::Data<Services>,
    settings: web::Data<ApiSettings>,
) -> Result<HttpResponse> {
    let head = services.segments.get(segment_id(&req)?).await?;
    answer(&req, &services, &settings, head).await
}

async fn rename(
    req: HttpRequest,
    services: web::Data<Services>,
    settings: web::Data<ApiSettings>,
    body: JsonBody,
) -> Result<HttpResponse> {
    let id = segment_id(&req)?;
    let full = req.method() == actix_web::http::Method::PUT;
    let title = match input::segment_title(&body.0, full) {
        Ok(title) => title,
        Err(errors) => return Err(not_found_first(&services, id, errors).await),
    };
    let head = match title {
        Some(title) => services.segments.rename(id, title).await?,
        None => services.segments.get(id).await?,
    };
    answer(&req, &services, &settings, head).await
}

async fn destroy(req: HttpRequest, services: web::Data<Services>) -> Result<HttpResponse> {
    services.segments.delete(segment_id(&req)?).await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn add_members(
    req: HttpRequest,
    services: web::Data<Services>,
    settings: web::Data<ApiSettings>,
    body: JsonBody,
) -> Result<HttpResponse> {
    let id = segment_id(&req)?;
    let customers = match input::segment_customer_ids(&body.0) {
        Ok(customers) => customers,
        Err(errors) => return Err(not_found_first(&services, id, errors).await),
    };
    let head = services.segments.add_members(id, customers).await?;
    answer(&req, &services, &settings, head).await
}

async fn remove_members(
    req: HttpRequest,
    services: web::Data<Services>,
    settings: web::Data<ApiSettings>,
) -> Result<HttpResponse> {
    let id = segment_id(&req)?;
    let customers = match Query::parse(req.query_string()).and_then(|q| input::customer_in(&q)) {
        Ok(customers) => customers,
        Err(errors) => return Err(not_found_first(&services, id, errors).await),
    };
    let head = services.segments.remove_members(id, customers).await?;
    answer(&req, &services, &settings, head).await
}
