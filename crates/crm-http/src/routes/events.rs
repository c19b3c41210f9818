//! `/api/crm/event/`: the change feed (API.md section 8).

use actix_web::web::{self, ServiceConfig};
use actix_web::{HttpRequest, HttpResponse};
use crm_domain::event::EventFeed;

use super::{resource, EVENT_LIST};
use crate::dto::{EventDto, EventPageDto};
use crate::error::ApiError;
use crate::input::{self, Query};
use crate::pagination;
use crate::{ApiSettings, Services};

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(
        resource(&EVENT_LIST)
            .route(web::get().to(list))
            .route(web::head().to(list)),
    );
}

/// The events after `after`, and `next`: this request with `after` set to
/// the last id returned (or kept as asked when none was), so that a
/// consumer always GETs `next`.
async fn list(
    req: HttpRequest,
    services: web::Data<Services>,
    settings: web::Data<ApiSettings>,
) -> Result<HttpResponse, ApiError> {
    let query = Query::parse(req.query_string())?;
    let (asked, matches_nothing) = input::event_query(&query)?;
    let after = asked.after;
    let events = if matches_nothing {
        // A customer id below 1 names no customer.
        Vec::new()
    } else {
        match services.events.read(asked).await? {
            EventFeed::Events(events) => events,
            EventFeed::Expired { first_kept } => {
                return Err(ApiError::Gone(format!(
                    "Events before {first_kept} are no longer retained."
                )))
            }
        }
    };
    let last = events.last().map_or(after, |e| e.id);
    let r = settings.render();
    let body = EventPageDto {
        next: pagination::link_with(&req, &settings, &query, "after", Some(last.to_string())),
        results: events.iter().map(|e| EventDto::new(e, r)).collect(),
    };
    Ok(HttpResponse::Ok().json(body))
}
