//! `/api/crm/customer/`: customers, their addresses and coupon holdings.

use actix_web::web::{self, ServiceConfig};
use actix_web::{HttpRequest, HttpResponse};
use crm_domain::customer::{AddressId, CouponId, CursorRequest, CustomerId};
use time::OffsetDateTime;

use super::{
    collection, instance, path_id, resource, ADDRESS, ADDRESS_LIST, COUPON, COUPON_LIST, CUSTOMER,
    CUSTOMER_LIST,
};
use crate::body::JsonBody;
use crate::cursor;
use crate::dto::{AddressDto, CouponHoldingDto, CursorPageDto, CustomerDto, CustomerListItemDto};
use crate::error::ApiError;
use crate::input::{self, Query};
use crate::pagination;
use crate::{ApiSettings, Services};

type Result<T> = std::result::Result<T, ApiError>;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(collection(&CUSTOMER_LIST, list, create))
        .service(instance(&CUSTOMER, retrieve, update, destroy))
        .service(collection(&ADDRESS_LIST, list_addresses, create_address))
        .service(instance(
            &ADDRESS,
            retrieve_address,
            update_address,
            destroy_address,
        ))
        .service(collection(&COUPON_LIST, list_coupons, grant_coupon))
        .service(resource(&COUPON).route(web::delete().to(revoke_coupon)));
}

fn customer_id(req: &HttpRequest) -> Result<CustomerId> {
    path_id(req, "id", CustomerId::parse)
}

fn today(settings: &ApiSettings) -> time::Date {
    OffsetDateTime::now_utc()
        .to_offset(settings.utc_offset)
        .date()
}

async fn list(
    req: HttpRequest,
    services: web::Data<Services>,
    settings: web::Data<ApiSettings>,
) -> Result<HttpResponse> {
    let query = Query::parse(req.query_string())?;
    let filter = input::customer_filter(&query)?;
    if let Some(raw) = query.get("cursor") {
        return cursor_list(&req, &services, &settings, &query, filter, raw).await;
    }
    let page = pagination::page_request(&query)?;
    let result = services.customers.list(&filter, page).await?;
    let r = settings.render();
    let body = pagination::envelope(&req, &settings, &query, result, |c| {
        CustomerListItemDto::new(c, r, true)
    });
    Ok(HttpResponse::Ok().json(body))
}

/// `?cursor=`: a keyset page (API.md section 10); `page` is ignored.
async fn cursor_list(
    req: &HttpRequest,
    services: &Services,
    settings: &ApiSettings,
    query: &Query,
    filter: crm_domain::customer::CustomerFilter,
    raw: &str,
) -> Result<HttpResponse> {
    // The ordering is checked before the cursor: a cursor can only belong
    // to a cursor ordering.
    crm_domain::customer::cursor::cursor_ordering(filter.ordering)
        .map_err(|message| crm_domain::FieldErrors::single("ordering", message))?;
    let asked = cursor::decode(raw, filter.ordering)?;
    let size = crm_domain::page::PageRequest::parse(None, query.get("page_size"))
        .map_err(|()| crm_domain::Error::InvalidPage)?
        .size();
    let request = CursorRequest {
        position: asked.map(|c| c.position),
        backward: asked.is_some_and(|c| c.backward),
        size,
        settled_before: None,
    };
    let page = services
        .customers
        .cursor_page(&filter, request, settings.cursor_settle)
        .await?;
    let (next, previous) = cursor::links(req, settings, query, filter.ordering, asked, &page);
    let r = settings.render();
    Ok(HttpResponse::Ok().json(CursorPageDto {
        next,
        previous,
        results: page
            .items
            .iter()
            .map(|(_, c)| CustomerListItemDto::new(c, r, true))
            .collect(),
    }))
}

async fn create(
    services: web::Data<Services>,
    settings: web::Data<ApiSettings>,
    body: JsonBody,
) -> Result<HttpResponse> {
    let changes = input::customer_changes(&body.0, today(&settings))?;
    let customer = services.customers.create(changes).await?;
    Ok(HttpResponse::Created().json(CustomerDto::new(&customer, settings.render())))
}

async fn retrieve(
    req: HttpRequest,
    services: web::Data<Services>,
    settings: web::Data<ApiSettings>,
) -> Result<HttpResponse> {
    let customer = services.customers.get(customer_id(&req)?).await?;
    Ok(HttpResponse::Ok().json(CustomerDto::new(&customer, settings.render())))
}

async fn update(
    req: HttpRequest,
    services: web::Data<Services>,
    settings: web::Data<ApiSettings>,
    body: JsonBody,
) -> Result<HttpResponse> {
    let id = customer_id(&req)?;
    let changes = input::customer_changes(&body.0, today(&settings))?;
    let customer = services.customers.update(id, changes).await?;
    Ok(HttpResponse::Ok().json(CustomerDto::new(&customer, settings.render())))
}

async fn destroy(req: HttpRequest, services: web::Data<Services>) -> Result<HttpResponse> {
    services.customers.delete(customer_id(&req)?).await?;
    Ok(HttpResponse::NoContent().finish())
}

fn address_id(req: &HttpRequest) -> Result<AddressId> {
    path_id(req, "address_id", AddressId::parse)
}

async fn list_addresses(
    req: HttpRequest,
    services: web::Data<Services>,
    settings: web::Data<ApiSettings>,
) -> Result<HttpResponse> {
    let addresses = services
        .customers
        .list_addresses(customer_id(&req)?)
        .await?;
    let r = settings.render();
    let body: Vec<AddressDto> = addresses.iter().map(|a| AddressDto::new(a, r)).collect();
    Ok(HttpResponse::Ok().json(body))
}

async fn create_address(
    req: HttpRequest,
    services: web::Data<Services>,
    settings: web::Data<ApiSettings>,
    body: JsonBody,
) -> Result<HttpResponse> {
    let id = customer_id(&req)?;
    let changes = match input::address_changes(&body.0) {
        Ok(changes) => changes,
        Err(errors) => {
            // An unknown customer is a 404 even when the body is invalid.
            services.customers.list_addresses(id).await?;
            return Err(errors.into());
        }
    };
    let address = services.customers.create_address(id, changes).await?;
    Ok(HttpResponse::Created().json(AddressDto::new(&address, settings.render())))
}

async fn retrieve_address(
    req: HttpRequest,
    services: web::Data<Services>,
    settings: web::Data<ApiSettings>,
) -> Result<HttpResponse> {
    let address = services
        .customers
        .get_address(customer_id(&req)?, address_id(&req)?)
        .await?;
    Ok(HttpResponse::Ok().json(AddressDto::new(&address, settings.render())))
}

async fn update_address(
    req: HttpRequest,
    services: web::Data<Services>,
    settings: web::Data<ApiSettings>,
    body: JsonBody,
) -> Result<HttpResponse> {
    let (id, address) = (customer_id(&req)?, address_id(&req)?);
    let changes = match input::address_changes(&body.0) {
        Ok(changes) => changes,
        Err(errors) => {
            // A missing address is a 404 even when the body is invalid.
            services.customers.get_address(id, address).await?;
            return Err(errors.into());
        }
    };
    let complete = req.method() == actix_web::http::Method::PUT;
    let address = services
        .customers
        .update_address(id, address, changes, complete)
        .await?;
    Ok(HttpResponse::Ok().json(AddressDto::new(&address, settings.render())))
}

async fn destroy_address(req: HttpRequest, services: web::Data<Services>) -> Result<HttpResponse> {
    services
        .customers
        .delete_address(customer_id(&req)?, address_id(&req)?)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn list_coupons(
    req: HttpRequest,
    services: web::Data<Services>,
    settings: web::Data<ApiSettings>,
) -> Result<HttpResponse> {
    let holdings = services.customers.list_coupons(customer_id(&req)?).await?;
    let r = settings.render();
    let body: Vec<CouponHoldingDto> = holdings
        .iter()
        .map(|h| CouponHoldingDto::new(h, r))
        .collect();
    Ok(HttpResponse::Ok().json(body))
}

async fn grant_coupon(
    req: HttpRequest,
    services: web::Data<Services>,
    settings: web::Data<ApiSettings>,
    body: JsonBody,
) -> Result<HttpResponse> {
    let id = customer_id(&req)?;
    let coupon = match input::coupon_id(&body.0) {
        Ok(coupon) => coupon,
        Err(errors) => {
            // An unknown customer is a 404 even when the body is invalid.
            services.customers.list_coupons(id).await?;
            return Err(errors.into());
        }
    };
    let (holding, created) = services.customers.grant_coupon(id, coupon).await?;
    let dto = CouponHoldingDto::new(&holding, settings.render());
    Ok(if created {
        HttpResponse::Created().json(dto)
    } else {
        HttpResponse::Ok().json(dto)
    })
}

async fn revoke_coupon(req: HttpRequest, services: web::Data<Services>) -> Result<HttpResponse> {
    let coupon = path_id(&req, "coupon_id", CouponId::parse)?;
    services
        .customers
        .revoke_coupon(customer_id(&req)?, coupon)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
