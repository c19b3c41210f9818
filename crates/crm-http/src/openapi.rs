//! The OpenAPI 3.1 description of the API, served at `GET /api/openapi.json`
//! and committed as `docs/openapi.json`. It is generated from the code so it
//! cannot drift from it:
//!
//! - the response schemas are derived (`utoipa::ToSchema`) from the DTOs in
//!   [`crate::dto`] that the handlers serialize;
//! - the paths and methods are those of the route table [`API_ROUTES`] and of
//!   the public route constants; a route or method of the table that this
//!   module does not describe is left out of the document, and the tests fail;
//! - the scopes of every operation come from `auth::access_for`, the rule
//!   the middleware enforces; choices, keys and lengths come from the domain's
//!   constants (`Gender::ALL`, `CustomerOrdering::CHOICES`, `Scope::ALL`, ...).
//!
//! It is also written for client generators (openapi-python-client,
//! openapi-typescript, ...): no request body or query parameter declares a
//! `default` (generators would send it whenever the caller leaves the field
//! out), bodies are plain typed objects, the OAuth operations declare no
//! security requirement, every enum has `x-enum-varnames`. The black-box
//! tests in `tests/api/openapi.rs` and `scripts/clients.sh` (generated
//! clients run against the server) keep it so.
//!
//! The test `openapi::tests::committed_copy_is_current` fails when
//! `docs/openapi.json` differs from the generated document;
//! `UPDATE_OPENAPI=1 cargo test -p crm-http openapi` rewrites it.

use std::sync::OnceLock;

use actix_web::http::Method;
use actix_web::HttpResponse;
use crm_domain::auth::Scope;
use crm_domain::customer::{AddressChanges, CustomerOrdering, Email, ProfilePatch, Tag};
use crm_domain::event::{EventKind, DEFAULT_EVENT_PAGE, MAX_EVENT_PAGE};
use crm_domain::page::PageRequest;
use crm_domain::webhook::{MAX_DESCRIPTION_CHARS, MAX_URL_CHARS};
use serde_json::{json, Map, Value};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};

use crate::auth::access_for;
use crate::dto::{
    CouponHoldingDto, CursorPageDto, CustomerDto, CustomerListItemDto, EventPageDto, PageDto,
    SegmentDto, WebhookDeliveryDto, WebhookEndpointCreatedDto, WebhookEndpointDto,
};
use crate::routes::oauth::{INTROSPECT_PATH, REVOKE_PATH, TOKEN_PATH};
use crate::routes::{
    health, RouteSpec, ADDRESS, ADDRESS_LIST, API_PREFIX, API_ROUTES, COUPON, COUPON_LIST,
    CUSTOMER, CUSTOMER_LIST, EVENT_LIST, SEGMENT, SEGMENT_CUSTOMER, SEGMENT_LIST, WEBHOOK,
    WEBHOOK_DELIVERY, WEBHOOK_DELIVERY_LIST, WEBHOOK_DELIVERY_RETRY, WEBHOOK_LIST,
};
use crate::METRICS_PATH;

/// Where the document is served.
pub const OPENAPI_PATH: &str = "/api/openapi.json";

/// Schemas that the DTO derives refer to by function.
pub mod schema {
    use crm_domain::customer::Gender;
    use crm_domain::webhook::DeliveryStatus;
    use std::borrow::Cow;

    use utoipa::openapi::schema::{Object, ObjectBuilder, SchemaType, Type};
    use utoipa::openapi::{RefOr, Schema};

    /// `gender`: one of the domain's genders, as the component `Gender`, so
    /// that generated clients have one gender type for every body.
    pub struct GenderSchema;

    impl utoipa::PartialSchema for GenderSchema {
        fn schema() -> RefOr<Schema> {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(Gender::ALL.map(Gender::as_str)))
                .description(Some("`unknown`, `male` or `female`."))
                .into()
        }
    }

    impl utoipa::ToSchema for GenderSchema {
        fn name() -> Cow<'static, str> {
            Cow::Borrowed("Gender")
        }
    }

    /// A webhook delivery's `status`, as the component
    /// `WebhookDeliveryStatus`.
    pub struct DeliveryStatusSchema;

    impl utoipa::PartialSchema for DeliveryStatusSchema {
        fn schema() -> RefOr<Schema> {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(
                    [
                        DeliveryStatus::Pending,
                        DeliveryStatus::Delivered,
                        DeliveryStatus::Failed,
                    ]
                    .map(DeliveryStatus::name),
                ))
                .description(Some(
                    "`pending` (an attempt is due or running), `delivered`, or `failed` \
                     (the retry schedule is spent).",
                ))
                .into()
        }
    }

    impl utoipa::ToSchema for DeliveryStatusSchema {
        fn name() -> Cow<'static, str> {
            Cow::Borrowed("WebhookDeliveryStatus")
        }
    }

    /// `level`: always `null` (membership levels are outside this API).
    /// Typed as a nullable string, not as the type `null` alone: TypeScript
    /// clients (openapi-fetch) drop a property whose only type is `null`.
    pub fn always_null() -> Object {
        ObjectBuilder::new()
            .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
            .description(Some("Always null: membership levels are outside this API."))
            .build()
    }
}

/// The document as served, pretty-printed with a final newline; built once.
pub fn document_json() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| {
        let mut text =
            serde_json::to_string_pretty(&canonical(document())).expect("the document serializes");
        text.push('\n');
        text
    })
}

/// `value` with every object's keys in sorted order, so the text is the same
/// whether or not serde_json's `preserve_order` feature is on in a build.
fn canonical(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, canonical(v)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.into_iter().map(canonical).collect()),
        other => other,
    }
}

/// `GET /api/openapi.json`: public.
pub async fn endpoint() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(document_json())
}

/// The OpenAPI document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for route in API_ROUTES {
        let mut item = Map::new();
        for method in methods(route.allow) {
            if let Some(operation) = api_operation(route, method) {
                item.insert(method.to_ascii_lowercase(), operation);
            }
        }
        paths.insert(format!("{API_PREFIX}{}/", route.path), Value::Object(item));
    }
    for (path, item) in public_paths() {
        paths.insert(path, item);
    }
    let mut document = json!({
        "openapi": "3.1.0",
        "servers": [{
            "url": "/",
            "description": "The server that serves this document (its origin).",
        }],
        "info": {
            "title": "CRM API",
            "version": env!("CARGO_PKG_VERSION"),
            "license": {
                "name": env!("CARGO_PKG_LICENSE"),
                "identifier": env!("CARGO_PKG_LICENSE"),
            },
            "description": INFO_DESCRIPTION,
        },
        "tags": [
            {"name": "customers", "description": "Customers (API.md section 3)."},
            {"name": "addresses", "description": "A customer's addresses (section 4)."},
            {"name": "coupons", "description": "A customer's coupon holdings (section 5)."},
            {"name": "segments", "description": "Segments and their members (section 6)."},
            {"name": "events", "description": "The change feed (section 8)."},
            {"name": "webhooks", "description": "Webhook endpoints and their delivery log (section 9)."},
            {"name": "oauth", "description": "The OAuth 2.0 authorization server (section 2)."},
            {"name": "operations", "description": "Probes, metrics and this document (section 7)."},
        ],
        "paths": paths,
        "components": components(),
    });
    name_enum_variants(&mut document);
    document
}

/// Gives every string `enum` its variants' names (`x-enum-varnames`), so
/// generated clients name them (`ORDERING.CREATED_AT_DESC`) instead of
/// numbering them (`VALUE_3`): `-id` is `ID_DESC`, `crm:read` `CRM_READ`.
fn name_enum_variants(value: &mut Value) {
    match value {
        Value::Object(map) => {
            let names: Option<Vec<Value>> = map
                .get("enum")
                .and_then(Value::as_array)
                .filter(|_| !map.contains_key("x-enum-varnames"))
                .and_then(|choices| {
                    choices
                        .iter()
                        .map(|c| c.as_str().map(|c| json!(enum_variant_name(c))))
                        .collect()
                });
            if let Some(names) = names {
                map.insert("x-enum-varnames".into(), Value::Array(names));
            }
            map.values_mut().for_each(name_enum_variants);
        }
        Value::Array(items) => items.iter_mut().for_each(name_enum_variants),
        _ => {}
    }
}

/// `-created_at` → `CREATED_AT_DESC`, `crm:read` → `CRM_READ`.
fn enum_variant_name(choice: &str) -> String {
    let (descending, choice) = match choice.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, choice),
    };
    let mut name: String = choice
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    if descending {
        name.push_str("_DESC");
    }
    name
}

const INFO_DESCRIPTION: &str = "The customer API of a shop platform, wire-compatible with the \
Django REST Framework original. Every `/api/crm/` request carries `Authorization: Bearer \
<token>`, a token from `POST /oauth/token/` (client credentials); reads need `crm:read` or \
`read`, writes `crm:write` or `write`. Paths are served with or without their trailing \
slash. Unknown body fields and query parameters are ignored. A query parameter given twice \
is a 400 under its name, except the list filters (`id__in`, `customer__in`), whose values \
are combined: `?id__in=1&id__in=2,3` is `?id__in=1,2,3`. A method a path does not \
answer gets 405 `{\"detail\": \"Method \\\"X\\\" not allowed.\"}` with an `Allow` header \
(see `components.responses.MethodNotAllowed`).";

/// The methods of an `Allow` list.
fn methods(allow: &str) -> impl Iterator<Item = &str> {
    allow.split(',').map(str::trim).filter(|m| !m.is_empty())
}

fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn response_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/responses/{name}") })
}

fn json_content(schema: Value) -> Value {
    json!({ "application/json": { "schema": schema } })
}

/// What one `/api/crm` operation takes and answers, beyond what every one of
/// them shares (path ids, bearer scopes, 401/403/429/503).
struct Operation {
    tag: &'static str,
    summary: &'static str,
    description: &'static str,
    /// A second paragraph of the description.
    more: &'static str,
    query: Vec<Value>,
    /// The name of the JSON body's schema: the operation reads a JSON body
    /// (so it may also answer 400, 413 and 415).
    body: Option<&'static str>,
    /// Success answers: status, description, body schema.
    ok: Vec<(u16, &'static str, Option<Value>)>,
    /// Error answers beyond the shared ones, as `components.responses` names.
    errors: Vec<&'static str>,
}

impl Operation {
    fn new(tag: &'static str, summary: &'static str) -> Self {
        Self {
            tag,
            summary,
            description: "",
            more: "",
            query: Vec::new(),
            body: None,
            ok: Vec::new(),
            errors: Vec::new(),
        }
    }

    fn describe(mut self, description: &'static str) -> Self {
        self.description = description;
        self
    }

    fn describe_more(mut self, more: &'static str) -> Self {
        self.more = more;
        self
    }

    fn query(mut self, parameters: Vec<Value>) -> Self {
        self.query = parameters;
        self
    }

    /// Reads a JSON body described by the written schema `name`.
    fn body(mut self, name: &'static str) -> Self {
        self.body = Some(name);
        self
    }

    fn ok(mut self, status: u16, description: &'static str, schema: Option<Value>) -> Self {
        self.ok.push((status, description, schema));
        self
    }

    fn error(mut self, name: &'static str) -> Self {
        self.errors.push(name);
        self
    }
}

/// The description of `method` on `route`; `None` for a method this module
/// does not describe (the document then lacks it, and the tests say so).
fn describe(route: &RouteSpec, method: &str) -> Option<Operation> {
    let is = |spec: &RouteSpec| spec.path == route.path;
    let customer = || Some(schema_ref("Customer"));
    let address = || Some(schema_ref("Address"));
    let segment = || Some(schema_ref("Segment"));
    let holding = || Some(schema_ref("CouponHolding"));
    let webhook = || Some(schema_ref("WebhookEndpoint"));
    let delivery = || Some(schema_ref("WebhookDelivery"));
    let op = if is(&CUSTOMER_LIST) {
        match method {
            "GET" => Operation::new("customers", "List customers")
                .describe(
                    "Paginated list items, newest first by default. Every filter combines \
                     with AND; a malformed value is a 400 naming the parameter.",
                )
                .describe_more(CURSOR_PAGING)
                .query(
                    customer_filters()
                        .into_iter()
                        .chain(page_parameters())
                        .collect(),
                )
                .ok(
                    200,
                    "A page of customers.",
                    Some(schema_ref("CustomerPage")),
                )
                .error("InvalidQuery")
                .error("InvalidPage"),
            "POST" => Operation::new("customers", "Create a customer")
                .describe(
                    "At least one of `mobile`, `email`, `full_name` must not be blank \
                     (`non_field_errors`); `mobile`, `email` (case-insensitively), \
                     `referral_code` and `multipass_identifier` are unique.",
                )
                .body("CustomerCreate")
                .ok(201, "The created customer.", customer()),
            _ => return None,
        }
    } else if is(&CUSTOMER) {
        match method {
            "GET" => Operation::new("customers", "Retrieve a customer").ok(
                200,
                "The customer.",
                customer(),
            ),
            "PUT" => Operation::new("customers", "Update a customer")
                .describe("Fields left out keep their values; a given list replaces the old one.")
                .body("CustomerWrite")
                .ok(200, "The updated customer.", customer()),
            "PATCH" => Operation::new("customers", "Partially update a customer")
                .body("CustomerWrite")
                .ok(200, "The updated customer.", customer()),
            "DELETE" => Operation::new("customers", "Delete a customer")
                .describe(
                    "Its addresses, coupon holdings, tags, metafields and segment \
                     memberships go with it.",
                )
                .ok(204, "Deleted.", None),
            _ => return None,
        }
    } else if is(&ADDRESS_LIST) {
        match method {
            "GET" => Operation::new("addresses", "List a customer's addresses")
                .describe("Unpaginated, the default address first.")
                .ok(200, "The addresses.", Some(array(schema_ref("Address")))),
            "POST" => Operation::new("addresses", "Add an address")
                .describe("A customer's first address becomes its default.")
                .body("AddressCreate")
                .ok(201, "The created address.", address()),
            _ => return None,
        }
    } else if is(&ADDRESS) {
        match method {
            "GET" => Operation::new("addresses", "Retrieve an address").ok(
                200,
                "The address.",
                address(),
            ),
            "PUT" => Operation::new("addresses", "Replace an address")
                .describe("Every required field must be given.")
                .body("AddressCreate")
                .ok(200, "The updated address.", address()),
            "PATCH" => Operation::new("addresses", "Partially update an address")
                .body("AddressPatch")
                .ok(200, "The updated address.", address()),
            "DELETE" => Operation::new("addresses", "Delete an address")
                .describe("Deleting the default makes the oldest remaining address the default.")
                .ok(204, "Deleted.", None),
            _ => return None,
        }
    } else if is(&COUPON_LIST) {
        match method {
            "GET" => Operation::new("coupons", "List a customer's coupon holdings")
                .describe("Unpaginated, by `coupon_id`.")
                .ok(
                    200,
                    "The holdings.",
                    Some(array(schema_ref("CouponHolding"))),
                ),
            "POST" => Operation::new("coupons", "Grant a coupon")
                .body("CouponGrant")
                .ok(201, "The new holding.", holding())
                .ok(200, "The customer already held the coupon.", holding()),
            _ => return None,
        }
    } else if is(&COUPON) {
        match method {
            "DELETE" => Operation::new("coupons", "Take a coupon back")
                .describe("404 when the customer does not hold it.")
                .ok(204, "Revoked.", None),
            _ => return None,
        }
    } else if is(&SEGMENT_LIST) {
        match method {
            "GET" => Operation::new("segments", "List segments")
                .describe("Paginated, by id.")
                .query(page_parameters())
                .ok(200, "A page of segments.", Some(schema_ref("SegmentPage")))
                .error("InvalidPage"),
            "POST" => Operation::new("segments", "Create a segment")
                .body("SegmentCreate")
                .ok(201, "The created segment.", segment()),
            _ => return None,
        }
    } else if is(&SEGMENT) {
        match method {
            "GET" => Operation::new("segments", "Retrieve a segment").ok(
                200,
                "The segment, its customers by id.",
                segment(),
            ),
            "PUT" => Operation::new("segments", "Rename a segment")
                .body("SegmentCreate")
                .ok(200, "The renamed segment.", segment()),
            "PATCH" => Operation::new("segments", "Rename a segment (partial update)")
                .body("SegmentPatch")
                .ok(200, "The segment.", segment()),
            "DELETE" => Operation::new("segments", "Delete a segment")
                .describe("Its customers stay.")
                .ok(204, "Deleted.", None),
            _ => return None,
        }
    } else if is(&SEGMENT_CUSTOMER) {
        match method {
            "POST" => Operation::new("segments", "Add customers to a segment")
                .describe(
                    "Adding a member again is not an error. If any `customer_id` does not \
                     exist, nothing is added: 400 under `customer_id` naming the missing ids.",
                )
                .body("SegmentMembers")
                .ok(200, "The segment.", segment()),
            "DELETE" => Operation::new("segments", "Remove customers from a segment")
                .describe("Ids not in the segment are ignored.")
                .query(vec![id_list_parameter(
                    "customer__in",
                    true,
                    "The customers to remove.",
                )])
                .ok(200, "The segment.", segment())
                .error("InvalidQuery"),
            _ => return None,
        }
    } else if is(&EVENT_LIST) {
        match method {
            "GET" => Operation::new("events", "Follow the change feed")
                .describe(
                    "Every change to customers and segments, by `id` ascending. Follow `next`: \
                     it always has `after` set to the last id returned, so a consumer that \
                     processes each page and GETs `next` (again, after a pause, when a page is \
                     empty) sees every event exactly once, in order. An event may appear a \
                     moment after its write's response.",
                )
                .query(event_parameters())
                .ok(200, "A page of events.", Some(schema_ref("EventPage")))
                .error("InvalidQuery")
                .error("Gone"),
            _ => return None,
        }
    } else if is(&WEBHOOK_LIST) {
        match method {
            "GET" => Operation::new("webhooks", "List webhook endpoints")
                .describe("Paginated, by id. The secrets are not shown.")
                .query(page_parameters())
                .ok(
                    200,
                    "A page of webhook endpoints.",
                    Some(schema_ref("WebhookEndpointPage")),
                )
                .error("InvalidPage"),
            "POST" => Operation::new("webhooks", "Create a webhook endpoint")
                .describe(WEBHOOK_CREATE)
                .body("WebhookCreate")
                .ok(
                    201,
                    "The created endpoint with its `secret`, shown only in this answer.",
                    Some(schema_ref("WebhookEndpointCreated")),
                ),
            _ => return None,
        }
    } else if is(&WEBHOOK) {
        match method {
            "GET" => Operation::new("webhooks", "Retrieve a webhook endpoint")
                .describe("The secret is not shown.")
                .ok(200, "The endpoint.", webhook()),
            "PUT" => Operation::new("webhooks", "Update a webhook endpoint")
                .describe(WEBHOOK_UPDATE)
                .body("WebhookWrite")
                .ok(200, "The updated endpoint, without its secret.", webhook()),
            "PATCH" => Operation::new("webhooks", "Partially update a webhook endpoint")
                .describe(WEBHOOK_UPDATE)
                .body("WebhookWrite")
                .ok(200, "The updated endpoint, without its secret.", webhook()),
            "DELETE" => Operation::new("webhooks", "Delete a webhook endpoint")
                .describe("Its pending deliveries are dropped and its delivery log goes with it.")
                .ok(204, "Deleted.", None),
            _ => return None,
        }
    } else if is(&WEBHOOK_DELIVERY_LIST) {
        match method {
            "GET" => Operation::new("webhooks", "List a webhook endpoint's deliveries")
                .describe(
                    "Paginated, newest first (`-id`). A delivery is kept as long as its event.",
                )
                .query(page_parameters())
                .ok(
                    200,
                    "A page of deliveries.",
                    Some(schema_ref("WebhookDeliveryPage")),
                )
                .error("InvalidPage"),
            _ => return None,
        }
    } else if is(&WEBHOOK_DELIVERY) {
        match method {
            "GET" => Operation::new("webhooks", "Retrieve a delivery")
                .describe("A delivery of another endpoint is 404.")
                .ok(200, "The delivery.", delivery()),
            _ => return None,
        }
    } else if is(&WEBHOOK_DELIVERY_RETRY) {
        match method {
            "POST" => Operation::new("webhooks", "Retry a delivery")
                .describe(
                    "One more attempt, at once, whatever the delivery's status (`failed` and \
                     `delivered` too). It counts like any attempt: a 2xx makes the delivery \
                     `delivered`; a failure follows the retry schedule by its new `attempts`. \
                     No body is needed; one sent is ignored.",
                )
                .ok(
                    202,
                    "The delivery, now `pending` with `next_attempt_at` now.",
                    delivery(),
                ),
            _ => return None,
        }
    } else {
        return None;
    };
    Some(op)
}

/// The path parameters of a route template, in order.
fn path_parameters(path: &str) -> Vec<Value> {
    path.split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| {
            let what = match name {
                "id" if path.starts_with("/segment") => "The segment's id.",
                "id" if path.starts_with("/webhook") => "The webhook endpoint's id.",
                "id" => "The customer's id.",
                "address_id" => "The address's id (of this customer).",
                "coupon_id" => "The coupon's id.",
                "delivery_id" => "The delivery's id (of this endpoint).",
                _ => "An id.",
            };
            json!({
                "name": name,
                "in": "path",
                "required": true,
                "description": format!("{what} Anything but a positive integer names no resource (404)."),
                "schema": {"type": "integer", "format": "int64", "minimum": 1},
            })
        })
        .collect()
}

/// The bearer scopes `method` needs: any one of them.
fn bearer_security(method: &str) -> Value {
    let method = Method::from_bytes(method.as_bytes()).expect("a method of an Allow list");
    let mut scopes: Vec<&str> = access_for(&method)
        .accepted_scopes()
        .iter()
        .map(Scope::as_str)
        .collect();
    scopes.sort_by_key(|s| !s.starts_with("crm:"));
    Value::Array(
        scopes
            .into_iter()
            .map(|scope| json!({ "oauth2": [scope] }))
            .collect(),
    )
}

fn operation_id(method: &str, name: &str) -> String {
    let name: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("{}_{name}", method.to_ascii_lowercase())
}

/// The OpenAPI operation for `method` on `route`.
fn api_operation(route: &RouteSpec, method: &str) -> Option<Value> {
    let mut parameters = path_parameters(route.path);
    let mut responses = Map::new();
    let (tag, summary, description, body) = match method {
        "OPTIONS" => {
            responses.insert(
                "200".into(),
                json!({
                    "description": "The resource's metadata; the `Allow` header lists its methods.",
                    "headers": {"Allow": allow_header()},
                    "content": json_content(schema_ref("OptionsMetadata")),
                }),
            );
            let tag = describe(route, "GET")
                .or_else(|| describe(route, "POST"))
                .or_else(|| describe(route, "DELETE"))
                .map_or("customers", |op| op.tag);
            (tag, format!("Describe {}", route.name), String::new(), None)
        }
        "HEAD" => {
            // GET without a body.
            let get = describe(route, "GET")?;
            parameters.extend(get.query);
            for (status, what, _) in get.ok {
                responses.insert(status.to_string(), json!({ "description": what }));
            }
            for name in get.errors.into_iter().chain(shared_errors(route, false)) {
                let (status, what) = error_status(name);
                responses.insert(status.to_string(), json!({ "description": what }));
            }
            (
                get.tag,
                format!("{} (headers only)", get.summary),
                "As GET, without a body.".to_owned(),
                None,
            )
        }
        _ => {
            let op = describe(route, method)?;
            parameters.extend(op.query);
            let write = method != "GET";
            if write {
                parameters.push(idempotency_key_parameter());
            }
            for (status, what, schema) in op.ok {
                let mut response = json!({ "description": what });
                if let Some(schema) = schema {
                    response["content"] = json_content(schema);
                }
                let links = links(route);
                if status == 201 && !links.is_empty() {
                    response["links"] = Value::Object(links);
                }
                responses.insert(status.to_string(), response);
            }
            let reads_body = op.body.is_some();
            let idempotency_errors: &[&'static str] = if write {
                &["IdempotencyInFlight", "IdempotencyMismatch"]
            } else {
                &[]
            };
            for name in op
                .errors
                .into_iter()
                .chain(shared_errors(route, reads_body))
                .chain(idempotency_errors.iter().copied())
            {
                let (status, _) = error_status(name);
                responses
                    .entry(status.to_string())
                    .or_insert_with(|| response_ref(name));
            }
            let body = op.body.map(|name| {
                // An empty body reads as `{}`: it is needed only when `{}`
                // is not a valid body.
                let schema = written_schemas()
                    .into_iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, schema)| schema)
                    .unwrap_or_else(|| panic!("no written schema {name}"));
                let required = schema.get("required").is_some()
                    || schema.get("minProperties").is_some()
                    || schema["type"] == "array";
                json!({
                    "description": "JSON; an empty body reads as `{}`. Unknown and read-only fields are ignored.",
                    "required": required,
                    "content": json_content(schema_ref(name)),
                })
            });
            (
                op.tag,
                op.summary.to_owned(),
                format!("{}{}", op.description, op.more),
                body,
            )
        }
    };
    if method == "OPTIONS" {
        for name in shared_errors(route, false)
            .into_iter()
            .filter(|n| *n != "NotFound")
        {
            let (status, _) = error_status(name);
            responses.insert(status.to_string(), response_ref(name));
        }
    }
    let mut operation = json!({
        "tags": [tag],
        "summary": summary,
        "operationId": operation_id(method, route.name),
    });
    if !description.is_empty() {
        operation["description"] = json!(description);
    }
    if !parameters.is_empty() {
        operation["parameters"] = Value::Array(parameters);
    }
    if let Some(body) = body {
        operation["requestBody"] = body;
    }
    responses.insert("405".into(), response_ref("MethodNotAllowed"));
    operation["responses"] = Value::Object(sorted(responses));
    operation["security"] = bearer_security(method);
    Some(operation)
}

/// OpenAPI links from what a POST on `route` creates to the operations on it
/// (they let clients and fuzzers follow a created id).
fn links(route: &RouteSpec) -> Map<String, Value> {
    let is = |spec: &RouteSpec| spec.path == route.path;
    let (targets, parameters): (&[&RouteSpec], Value) = if is(&CUSTOMER_LIST) {
        (
            &[&CUSTOMER, &ADDRESS_LIST, &COUPON_LIST],
            json!({"id": "$response.body#/id"}),
        )
    } else if is(&ADDRESS_LIST) {
        (
            &[&ADDRESS],
            json!({"id": "$request.path.id", "address_id": "$response.body#/id"}),
        )
    } else if is(&COUPON_LIST) {
        (
            &[&COUPON],
            json!({"id": "$request.path.id", "coupon_id": "$response.body#/coupon_id"}),
        )
    } else if is(&SEGMENT_LIST) {
        (
            &[&SEGMENT, &SEGMENT_CUSTOMER],
            json!({"id": "$response.body#/id"}),
        )
    } else if is(&WEBHOOK_LIST) {
        (
            &[&WEBHOOK, &WEBHOOK_DELIVERY_LIST],
            json!({"id": "$response.body#/id"}),
        )
    } else {
        return Map::new();
    };
    let mut links = Map::new();
    for target in targets {
        for method in methods(target.allow) {
            if matches!(method, "HEAD" | "OPTIONS") || describe(target, method).is_none() {
                continue;
            }
            let id = operation_id(method, target.name);
            links.insert(
                id.clone(),
                json!({"operationId": id, "parameters": parameters}),
            );
        }
    }
    links
}

/// The error answers every `/api/crm` operation on `route` shares.
fn shared_errors(route: &RouteSpec, reads_body: bool) -> Vec<&'static str> {
    let mut names = Vec::new();
    if reads_body {
        names.extend(["BadRequest", "PayloadTooLarge", "UnsupportedMediaType"]);
    }
    if route.path.contains('{') {
        names.push("NotFound");
    }
    names.extend(["Unauthenticated", "Forbidden", "Throttled", "Unavailable"]);
    // A repeated query parameter; where a body is read, `BadRequest` (first)
    // covers it.
    names.push("InvalidQuery");
    names
}

/// Status codes in ascending order.
fn sorted(map: Map<String, Value>) -> Map<String, Value> {
    let mut entries: Vec<_> = map.into_iter().collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    entries.into_iter().collect()
}

fn allow_header() -> Value {
    json!({
        "description": "The methods the resource answers.",
        "required": true,
        "schema": {"type": "string"},
    })
}

fn retry_after_header() -> Value {
    json!({
        "description": "Seconds to wait before trying again.",
        "required": true,
        "schema": {"type": "string"},
    })
}

fn www_authenticate_header(example: &str) -> Value {
    json!({
        "description": "The authentication challenge.",
        "required": true,
        "schema": {"type": "string"},
        "example": example,
    })
}

/// The `components.responses` entries: (name, status, description, body
/// schema, headers).
fn error_responses() -> Vec<(&'static str, u16, &'static str, Value, Value)> {
    vec![
        (
            "BadRequest",
            400,
            "The body is invalid: DRF field errors (`{\"field\": [\"message\"]}`, cross-field \
             problems under `non_field_errors`), or `{\"detail\": \"JSON parse error - ...\"}` \
             for malformed JSON; or a query parameter is given twice \
             (`{\"<param>\": [\"This parameter may be given only once.\"]}`).",
            json!({"anyOf": [schema_ref("ValidationError"), schema_ref("Detail")]}),
            json!({}),
        ),
        (
            "InvalidQuery",
            400,
            "A query parameter is malformed, or given twice (other than a list filter): \
             `{\"<param>\": [\"message\"]}`.",
            schema_ref("ValidationError"),
            json!({}),
        ),
        (
            "Unauthenticated",
            401,
            "No bearer token, or one that is unknown, expired or revoked.",
            schema_ref("Detail"),
            json!({"WWW-Authenticate": www_authenticate_header(
                "Bearer realm=\"api\", error=\"invalid_token\", error_description=\"Invalid token.\"",
            )}),
        ),
        (
            "Forbidden",
            403,
            "The token lacks the scope the method needs.",
            schema_ref("Detail"),
            json!({"WWW-Authenticate": www_authenticate_header(
                "Bearer realm=\"api\", error=\"insufficient_scope\", scope=\"crm:read read\"",
            )}),
        ),
        (
            "NotFound",
            404,
            "No such resource: `{\"detail\": \"Not found.\"}`.",
            schema_ref("Detail"),
            json!({}),
        ),
        (
            "InvalidPage",
            404,
            "`page` is not a positive integer, or is past the last page: \
             `{\"detail\": \"Invalid page.\"}`; on the customer list also a `cursor` that \
             does not decode or belongs to another ordering: `{\"detail\": \"Invalid cursor\"}`.",
            schema_ref("Detail"),
            json!({}),
        ),
        (
            "IdempotencyInFlight",
            409,
            "A request with this `Idempotency-Key` is still running: \
             `{\"detail\": \"A request with this Idempotency-Key is being processed.\"}`. Retry \
             later to get its answer.",
            schema_ref("Detail"),
            json!({}),
        ),
        (
            "IdempotencyMismatch",
            422,
            "The `Idempotency-Key` was used with another method, path, query or body: \
             `{\"detail\": \"Idempotency-Key was used with a different request.\"}`.",
            schema_ref("Detail"),
            json!({}),
        ),
        (
            "Gone",
            410,
            "`after` lies before events that retention deleted: \
             `{\"detail\": \"Events before <n> are no longer retained.\"}`. Follow the feed \
             from `after=0` to its end, resynchronize with a cursor walk of the customers, then \
             go on from the position noted.",
            schema_ref("Detail"),
            json!({}),
        ),
        (
            "MethodNotAllowed",
            405,
            "The path does not answer the method used; `Allow` lists those it answers: \
             `{\"detail\": \"Method \\\"X\\\" not allowed.\"}`.",
            schema_ref("Detail"),
            json!({"Allow": allow_header()}),
        ),
        (
            "PayloadTooLarge",
            413,
            "The body is larger than the server's limit (1 MiB by default).",
            schema_ref("Detail"),
            json!({}),
        ),
        (
            "UnsupportedMediaType",
            415,
            "A body whose content type is not JSON.",
            schema_ref("Detail"),
            json!({}),
        ),
        (
            "Throttled",
            429,
            "The client's rate limit is spent, or too many failed OAuth client authentications came from its address or for its client id.",
            schema_ref("Detail"),
            json!({"Retry-After": retry_after_header()}),
        ),
        (
            "Unavailable",
            503,
            "The database is unavailable; try again.",
            schema_ref("Detail"),
            json!({"Retry-After": retry_after_header()}),
        ),
        (
            "OAuthBadRequest",
            400,
            "RFC 6749 section 5.2: `invalid_request`, `invalid_scope` or `unsupported_grant_type`, \
             with a short `error_description`.",
            schema_ref("OAuthError"),
            json!({}),
        ),
        (
            "OAuthInvalidClient",
            401,
            "Client authentication failed: \
             `{\"error\": \"invalid_client\", \"error_description\": \"...\"}`.",
            schema_ref("OAuthError"),
            json!({"WWW-Authenticate": www_authenticate_header("Basic realm=\"oauth\"")}),
        ),
    ]
}

fn error_status(name: &str) -> (u16, &'static str) {
    error_responses()
        .into_iter()
        .find(|(n, ..)| *n == name)
        .map(|(_, status, what, ..)| (status, what))
        .unwrap_or_else(|| panic!("no response component {name}"))
}

fn array(items: Value) -> Value {
    json!({"type": "array", "items": items})
}

fn query_parameter(name: &str, required: bool, description: &str, schema: Value) -> Value {
    json!({
        "name": name,
        "in": "query",
        "required": required,
        "description": description,
        "schema": schema,
    })
}

/// A list of ids. Documented in the form client generators send arrays in
/// (`?id__in=1&id__in=2`, the OpenAPI default for query arrays); the server
/// also reads the original comma-separated form (`?id__in=1,2`) and any mix.
fn id_list_parameter(name: &str, required: bool, description: &str) -> Value {
    let mut parameter = query_parameter(
        name,
        required,
        &format!(
            "{description} Repeat the parameter (`{name}=1&{name}=2`) or separate the ids by \
             commas (`{name}=1,2`); every value given counts."
        ),
        json!({"type": "array", "items": {"type": "integer", "format": "int64"}}),
    );
    if required {
        parameter["schema"]["minItems"] = json!(1);
    }
    parameter["style"] = json!("form");
    parameter["explode"] = json!(true);
    parameter
}

fn page_parameters() -> Vec<Value> {
    vec![
        query_parameter(
            "page",
            false,
            "The page number, from 1; absent or empty means 1. Not a positive integer, or past \
             the last page: 404 `Invalid page.`.",
            json!({"type": "integer", "format": "int64", "minimum": 1}),
        ),
        query_parameter(
            "page_size",
            false,
            &format!(
                "Items per page; absent means {}. Larger values are clamped to {}; a value \
                 that is not a positive integer means {}.",
                PageRequest::DEFAULT_SIZE,
                PageRequest::MAX_SIZE,
                PageRequest::DEFAULT_SIZE,
            ),
            json!({"type": "integer", "format": "int64", "minimum": 1}),
        ),
    ]
}

/// Cursor paging of the customer list (API.md section 10). Described in
/// words and by its own schema rather than as a parameter of the list
/// operation: an operation has one response shape per status, and making
/// the list's a union of both pages would take `count` away from every
/// generated client that reads numbered pages.
const CURSOR_PAGING: &str = "\n\nFor bulk sync the list also pages by cursor: add \
`cursor=` (empty for the first page), then follow `next` / `previous`. The answer is then a \
`CustomerCursorPage` (no `count`; `page` is ignored), `ordering` must be `id`, `-id` (the \
default), `updated_at` or `-updated_at`, and each page is a keyset seek, so deep pages cost no \
more. A cursor that does not decode, or was issued for another ordering, is 404 \
`{\"detail\": \"Invalid cursor\"}`.";

/// `Idempotency-Key` (API.md section 7), accepted by every write.
fn idempotency_key_parameter() -> Value {
    json!({
        "name": "Idempotency-Key",
        "in": "header",
        "required": false,
        "description": "Makes the write safe to retry: the first answer (any status below 500) \
                        is kept for `CRM_IDEMPOTENCY_TTL_SECONDS` (a day by default) and sent again, \
                        with `Idempotent-Replayed: true`, to a request with the same key, method, \
                        path, query and body bytes, without running it again. Keys belong to the \
                        OAuth client. 1 to 255 printable ASCII characters; otherwise 400 under \
                        `Idempotency-Key`.",
        "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[ -~]+$"},
    })
}

/// The change feed's parameters (`input::event_query`).
fn event_parameters() -> Vec<Value> {
    let integer = |minimum: i64| json!({"type": "integer", "format": "int64", "minimum": minimum});
    let kinds: Vec<&str> = EventKind::ALL.iter().map(|k| k.name()).collect();
    vec![
        query_parameter(
            "after",
            false,
            "Events with a greater id; absent or 0 reads from the oldest retained.",
            integer(0),
        ),
        query_parameter(
            "limit",
            false,
            &format!(
                "Events per page; absent means {DEFAULT_EVENT_PAGE}, larger values are \
                 clamped to {MAX_EVENT_PAGE}."
            ),
            integer(1),
        ),
        query_parameter(
            "type",
            false,
            "Comma-separated event types; empty means every type.",
            json!({"type": "string", "example": "customer.created,customer.deleted",
                   "description": format!("Any of: {}.", kinds.join(", "))}),
        ),
        query_parameter(
            "customer",
            false,
            "Only `customer.*` events about this customer, and the membership events \
             naming it.",
            json!({"type": "integer", "format": "int64"}),
        ),
    ]
}

/// The customer list filters (`input::customer_filter`).
fn customer_filters() -> Vec<Value> {
    let integer = || json!({"type": "integer", "format": "int64"});
    let text = || json!({"type": "string", "pattern": NO_NUL});
    let instant = || json!({"type": "string", "format": "date-time"});
    let mut parameters = vec![
        query_parameter("id", false, "Exact id.", integer()),
        id_list_parameter("id__in", false, "Any of these ids."),
        query_parameter(
            "coupon",
            false,
            "Customers holding this coupon id.",
            integer(),
        ),
        query_parameter(
            "coupon__exclude",
            false,
            "Customers not holding this coupon id.",
            integer(),
        ),
        query_parameter("segment", false, "Customers in this segment id.", integer()),
        query_parameter(
            "segment__exclude",
            false,
            "Customers not in this segment id.",
            integer(),
        ),
        query_parameter("mobile", false, "Exact mobile.", text()),
        query_parameter("email", false, "Exact e-mail, case-insensitively.", text()),
        query_parameter("tag", false, "Customers carrying this tag.", text()),
        query_parameter(
            "search",
            false,
            "Case-insensitive substring of `full_name`, `mobile` or `email`.",
            text(),
        ),
    ];
    for (name, what) in [
        ("created_at__gte", "Created at or after (RFC 3339)."),
        ("created_at__lte", "Created at or before (RFC 3339)."),
        ("updated_at__gte", "Updated at or after (RFC 3339)."),
        ("updated_at__lte", "Updated at or before (RFC 3339)."),
    ] {
        parameters.push(query_parameter(name, false, what, instant()));
    }
    parameters.push(query_parameter(
        "ordering",
        false,
        "The order of the list; absent means `-id` (newest first).",
        json!({"type": "string", "enum": CustomerOrdering::CHOICES}),
    ));
    parameters
}

/// Paths outside `/api/crm`: the authorization server, probes, metrics and
/// this document.
fn public_paths() -> Vec<(String, Value)> {
    let oauth_errors = || {
        let mut responses = Map::new();
        responses.insert("400".into(), response_ref("OAuthBadRequest"));
        responses.insert("401".into(), response_ref("OAuthInvalidClient"));
        responses.insert("405".into(), response_ref("MethodNotAllowed"));
        responses.insert("413".into(), response_ref("PayloadTooLarge"));
        responses.insert("429".into(), response_ref("Throttled"));
        responses.insert("503".into(), response_ref("Unavailable"));
        responses
    };
    let form = |schema: &str| {
        json!({
            "required": true,
            "content": {"application/x-www-form-urlencoded": {"schema": schema_ref(schema)}},
        })
    };
    let options = |name: &str| {
        json!({
            "tags": ["oauth"],
            "summary": format!("Describe {name}"),
            "operationId": operation_id("OPTIONS", name),
            "responses": {
                "200": {
                    "description": "The resource's metadata; the `Allow` header lists its methods.",
                    "headers": {"Allow": allow_header()},
                    "content": json_content(schema_ref("OptionsMetadata")),
                },
                "405": response_ref("MethodNotAllowed"),
            },
            "security": [],
        })
    };
    let oauth =
        |path: &str, name: &str, summary: &str, description: &str, request: &str, ok: Value| {
            let mut responses = oauth_errors();
            responses.insert("200".into(), ok);
            (
                format!("{path}/"),
                json!({
                    "post": {
                        "tags": ["oauth"],
                        "summary": summary,
                        "description": format!("{description} {CLIENT_AUTHENTICATION}"),
                        "operationId": operation_id("POST", name),
                        "requestBody": form(request),
                        "responses": sorted(responses),
                        // The client authenticates itself (below), never with
                        // a bearer token: a security requirement here makes
                        // generated clients demand a token to get a token.
                        "security": [],
                    },
                    "options": options(name),
                }),
            )
        };
    let no_store = json!({
        "Cache-Control": {"required": true, "schema": {"type": "string", "const": "no-store"}},
    });
    let probe = |name: &str, summary: &str, ok: Value, unavailable: Option<Value>| {
        let mut responses = Map::new();
        responses.insert("200".into(), ok.clone());
        responses.insert("405".into(), response_ref("MethodNotAllowed"));
        if let Some(u) = &unavailable {
            responses.insert("503".into(), u.clone());
        }
        let head_responses: Map<String, Value> = responses
            .iter()
            .map(|(status, r)| {
                let description = r
                    .get("description")
                    .cloned()
                    .unwrap_or_else(|| json!(error_status("MethodNotAllowed").1));
                (status.clone(), json!({ "description": description }))
            })
            .collect();
        json!({
            "get": {
                "tags": ["operations"],
                "summary": summary,
                "operationId": operation_id("GET", name),
                "responses": responses,
                "security": [],
            },
            "head": {
                "tags": ["operations"],
                "summary": format!("{summary} (headers only)"),
                "operationId": operation_id("HEAD", name),
                "responses": head_responses,
                "security": [],
            },
        })
    };
    vec![
        oauth(
            TOKEN_PATH,
            "token",
            "Issue an access token (client credentials)",
            "RFC 6749 section 4.4. `scope` is space-separated, a subset of the client's \
             scopes; absent means all of them.",
            "TokenRequest",
            json!({
                "description": "The token (`Cache-Control: no-store`).",
                "headers": no_store.clone(),
                "content": json_content(schema_ref("TokenResponse")),
            }),
        ),
        oauth(
            REVOKE_PATH,
            "revoke_token",
            "Revoke a token",
            "RFC 7009: 200 whether or not the token existed; a client revokes only its own tokens.",
            "RevokeRequest",
            json!({"description": "Revoked, or there was no such token of this client. No body.", "headers": no_store.clone()}),
        ),
        oauth(
            INTROSPECT_PATH,
            "introspect",
            "Introspect a token",
            "RFC 7662.",
            "IntrospectRequest",
            json!({
                "description": "What the token is; `{\"active\": false}` for an unknown, expired or revoked one.",
                "headers": no_store,
                "content": json_content(schema_ref("Introspection")),
            }),
        ),
        (
            health::HEALTHZ_PATH.to_owned(),
            probe(
                "healthz",
                "Liveness: the process is up",
                json!({"description": "Up.", "content": json_content(schema_ref("Health"))}),
                None,
            ),
        ),
        (
            health::READYZ_PATH.to_owned(),
            probe(
                "readyz",
                "Readiness: the database answers",
                json!({"description": "Ready.", "content": json_content(schema_ref("Readiness"))}),
                Some(json!({
                    "description": "The database does not answer.",
                    "content": json_content(schema_ref("Readiness")),
                })),
            ),
        ),
        (
            METRICS_PATH.to_owned(),
            json!({"get": {
                "tags": ["operations"],
                "summary": "Prometheus metrics",
                "operationId": "get_metrics",
                "responses": {
                    "200": {
                        "description": "The Prometheus text exposition format.",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    },
                    "405": response_ref("MethodNotAllowed"),
                },
                "security": [],
            }}),
        ),
        (
            OPENAPI_PATH.to_owned(),
            json!({"get": {
                "tags": ["operations"],
                "summary": "This OpenAPI document",
                "operationId": "get_openapi",
                "responses": {
                    "200": {
                        "description": "The OpenAPI 3.1 description of the API.",
                        "content": json_content(json!({
                            "type": "object",
                            "required": ["openapi", "paths"],
                            "properties": {
                                "openapi": {"type": "string"},
                                "paths": {"type": "object"},
                            },
                        })),
                    },
                    "405": response_ref("MethodNotAllowed"),
                },
                "security": [],
            }}),
        ),
    ]
}

/// `T`'s schema and those it refers to, by name.
fn with_dependencies<T: ToSchema>(out: &mut Vec<(String, RefOr<Schema>)>) {
    out.push((T::name().into_owned(), T::schema()));
    T::schemas(out);
}

fn components() -> Value {
    // The wire representations, derived from the DTOs the handlers render.
    let mut derived = Vec::new();
    with_dependencies::<CustomerDto>(&mut derived);
    with_dependencies::<CustomerListItemDto>(&mut derived);
    with_dependencies::<SegmentDto>(&mut derived);
    with_dependencies::<CouponHoldingDto>(&mut derived);
    derived.push((
        "CustomerPage".into(),
        PageDto::<CustomerListItemDto>::schema(),
    ));
    derived.push(("SegmentPage".into(), PageDto::<SegmentDto>::schema()));
    with_dependencies::<EventPageDto>(&mut derived);
    with_dependencies::<CursorPageDto>(&mut derived);
    with_dependencies::<WebhookEndpointDto>(&mut derived);
    with_dependencies::<WebhookEndpointCreatedDto>(&mut derived);
    with_dependencies::<WebhookDeliveryDto>(&mut derived);
    derived.push((
        "WebhookEndpointPage".into(),
        PageDto::<WebhookEndpointDto>::schema(),
    ));
    derived.push((
        "WebhookDeliveryPage".into(),
        PageDto::<WebhookDeliveryDto>::schema(),
    ));
    let mut schemas = Map::new();
    for (name, schema) in derived {
        let mut schema = serde_json::to_value(schema).expect("schemas serialize");
        if name == "EventObject" {
            // A customer or a segment head also has the `id` a deleted
            // object's form requires: the forms overlap, so any of them,
            // not exactly one, matches.
            if let Some(forms) = schema.as_object_mut().and_then(|o| o.remove("oneOf")) {
                schema["anyOf"] = forms;
            }
        }
        schemas.insert(name, schema);
    }
    for (name, schema) in written_schemas().into_iter().chain(other_schemas()) {
        schemas.insert(name.to_owned(), schema);
    }
    let mut responses = Map::new();
    for (name, _, description, schema, headers) in error_responses() {
        let mut response = json!({
            "description": description,
            "content": json_content(schema),
        });
        if headers.as_object().is_some_and(|h| !h.is_empty()) {
            response["headers"] = headers;
        }
        responses.insert(name.to_owned(), response);
    }
    let scopes: Map<String, Value> = Scope::ALL
        .iter()
        .map(|scope| {
            let what = match scope {
                Scope::Read | Scope::CrmRead => "Read customers and segments (GET, HEAD, OPTIONS).",
                Scope::Write | Scope::CrmWrite => {
                    "Create, change and delete (POST, PUT, PATCH, DELETE)."
                }
            };
            (scope.as_str().to_owned(), json!(what))
        })
        .collect();
    json!({
        "schemas": sorted(schemas),
        "responses": sorted(responses),
        "securitySchemes": {
            "oauth2": {
                "type": "oauth2",
                "description": "Bearer tokens from the client credentials grant. Reads need \
                                `crm:read` or `read`; writes need `crm:write` or `write`.",
                "flows": {"clientCredentials": {
                    "tokenUrl": format!("{TOKEN_PATH}/"),
                    "scopes": scopes,
                }},
            },
        },
    })
}

/// What creating a webhook endpoint does (API.md section 9).
const WEBHOOK_CREATE: &str = "Every event (the change feed's) of a subscribed type is then \
POSTed to `url`, signed as Standard Webhooks specifies: headers `webhook-id` \
(`evt_<event id>`), `webhook-timestamp` and `webhook-signature` (`v1,` + base64 of \
HMAC-SHA256 over `<webhook-id>.<webhook-timestamp>.<body>`, keyed with the base64-decoded \
part of `secret` after `whsec_`). A 2xx within the timeout delivers it; anything else is \
retried on a schedule. The `secret` is in this answer only: to rotate it, create a new \
endpoint, then delete the old one.";

/// What updating a webhook endpoint does.
const WEBHOOK_UPDATE: &str = "`url`, `events`, `description`, `is_active`: fields left out \
keep their values. The secret never changes and is not shown. A new `url` is checked like a \
created one.";

/// How the OAuth endpoints authenticate the client, which is not an OpenAPI
/// security requirement (see `public_paths`).
const CLIENT_AUTHENTICATION: &str = "Client authentication (RFC 6749 section 2.3.1): HTTP \
Basic (`Authorization: Basic base64(client_id:client_secret)`, each part form-urlencoded \
first) or the `client_id` and `client_secret` form fields, not both. An `Authorization` \
header of another scheme (such as `Bearer`) is ignored when the form fields are given. No \
bearer token is needed.";

/// The server refuses NUL characters in every text.
const NO_NUL: &str = "^[^\\u0000]*$";
/// Not blank once trimmed, and no NUL characters.
const NOT_BLANK: &str = "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$";

/// A text of at most `max` characters (counted after trimming).
fn text(max: usize) -> Value {
    json!({"type": "string", "maxLength": max, "pattern": NO_NUL})
}

/// A text that must not be blank, at most `max` characters.
fn required_text(max: usize) -> Value {
    json!({"type": "string", "minLength": 1, "maxLength": max, "pattern": NOT_BLANK})
}

/// A customer create body: the writable fields as a plain typed object.
/// The rule "at least one of `mobile`, `email`, `full_name` not blank" is
/// stated in words: as an `anyOf` of one-field schemas it turns into untyped
/// models in generated clients.
fn customer_create(write: &Value) -> Value {
    let mut schema = write.clone();
    schema["description"] = json!(
        "The writable fields of a new customer. At least one of `mobile`, `email` and \
         `full_name` must be given and not blank (else 400 under `non_field_errors`). \
         A field left out takes the server's default: `gender` `unknown`, \
         `accepts_marketing` false, `birthday`, `referrer` and `multipass_identifier` null, \
         lists empty, texts blank."
    );
    schema["minProperties"] = json!(1);
    schema
}

/// The `client_id` / `client_secret` form field.
fn client_field(what: &str) -> Value {
    json!({
        "type": "string",
        "minLength": 1,
        "description": format!(
            "The client's {what}, when the client authenticates with form fields \
             instead of HTTP Basic."
        ),
    })
}

/// Request bodies: what `input.rs` reads.
fn written_schemas() -> Vec<(&'static str, Value)> {
    let profile: Map<String, Value> = ProfilePatch::KEYS
        .iter()
        .map(|key| ((*key).to_owned(), text(255)))
        .collect();
    let address = |required: bool| {
        let mut properties = Map::new();
        for field in AddressChanges::TEXT_FIELDS {
            let schema = if AddressChanges::REQUIRED.contains(&field) {
                required_text(AddressChanges::MAX_CHARS)
            } else {
                text(AddressChanges::MAX_CHARS)
            };
            properties.insert(field.to_owned(), schema);
        }
        properties.insert(
            "is_default".into(),
            json!({"type": "boolean", "description": "Setting it clears it on the customer's other addresses."}),
        );
        let mut schema = json!({"type": "object", "properties": properties});
        if required {
            schema["required"] = json!(AddressChanges::REQUIRED);
        }
        schema
    };
    let title = required_text(255);
    let mut schemas = vec![
        (
            "CustomerWrite",
            json!({
                "type": "object",
                "description": "The writable fields of a customer (PUT and PATCH bodies). Fields left \
                                out keep their values: no field is required and none has a default, \
                                so a client sends only what it changes.",
                "properties": {
                    "mobile": {
                        "description": "An optional `+` then 5 to 20 digits, or blank. A JSON number is stored as its digits.",
                        "anyOf": [
                            {"type": "string", "pattern": "^(\\+?[0-9]{5,20})?$"},
                            {"type": "integer", "minimum": 10000, "maximum": u64::MAX},
                        ],
                    },
                    "full_name": text(255),
                    "gender": {
                        "$ref": "#/components/schemas/Gender",
                        "description": "`unknown` for a new customer that is not given one.",
                    },
                    "email": {
                        "description": "A valid address or blank.",
                        "anyOf": [
                            {"type": "string", "format": "email", "maxLength": Email::MAX_CHARS},
                            {"type": "string", "maxLength": 0},
                        ],
                    },
                    "birthday": {"type": ["string", "null"], "format": "date", "description": "Not in the future."},
                    "avatar": {
                        "type": "string",
                        "maxLength": 1024,
                        "pattern": "^(https?://[A-Za-z0-9.-]+(:[0-9]{1,4})?([/?#][^\\s\\u0000]*)?)?$",
                        "description": "An http(s) URL or blank.",
                    },
                    "note": text(10_000),
                    "accepts_marketing": {
                        "type": "boolean",
                        "description": "Marketing consent; false for a new customer that is not given it.",
                    },
                    "referral_code": text(32),
                    "referrer": {
                        "type": ["integer", "null"],
                        "format": "int64",
                        "minimum": 1,
                        "description": "The id of an existing customer, not this one.",
                    },
                    "multipass_identifier": {"type": ["string", "null"], "minLength": 1, "maxLength": 255, "pattern": NOT_BLANK},
                    "tags": {
                        "type": "array",
                        "description": "Replaces the set; trimmed, duplicates dropped.",
                        "items": required_text(Tag::MAX_CHARS),
                    },
                    "profile": {"type": "object", "properties": profile},
                    "metafields": {
                        "type": "array",
                        "description": "Replaces all; (namespace, key) unique.",
                        "items": schema_ref("MetafieldWrite"),
                    },
                },
            }),
        ),
        (
            "MetafieldWrite",
            json!({
                "type": "object",
                "required": ["namespace", "key", "value"],
                "properties": {
                    "namespace": required_text(64),
                    "key": required_text(64),
                    "value": text(4096),
                },
            }),
        ),
        ("AddressCreate", address(true)),
        ("AddressPatch", address(false)),
        (
            "CouponGrant",
            json!({
                "type": "object",
                "required": ["coupon_id"],
                "properties": {"coupon_id": {"type": "integer", "format": "int64", "minimum": 1}},
            }),
        ),
        (
            "SegmentCreate",
            json!({"type": "object", "required": ["title"], "properties": {"title": title}}),
        ),
        (
            "SegmentPatch",
            json!({"type": "object", "properties": {"title": title}}),
        ),
        (
            "SegmentMembers",
            json!({
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["customer_id"],
                    "properties": {"customer_id": {"type": "integer", "format": "int64", "minimum": 1}},
                },
            }),
        ),
        (
            "TokenRequest",
            json!({
                "type": "object",
                "required": ["grant_type"],
                "properties": {
                    "grant_type": {"type": "string", "enum": ["client_credentials"]},
                    "scope": {"type": "string", "description": "Space-separated scopes."},
                    "client_id": client_field("id"),
                    "client_secret": client_field("secret"),
                },
            }),
        ),
        (
            "RevokeRequest",
            json!({
                "type": "object",
                "required": ["token"],
                "properties": {
                    "token": {"type": "string", "minLength": 1},
                    "token_type_hint": {"type": "string"},
                    "client_id": client_field("id"),
                    "client_secret": client_field("secret"),
                },
            }),
        ),
        (
            "IntrospectRequest",
            json!({
                "type": "object",
                "required": ["token"],
                "properties": {
                    "token": {"type": "string", "minLength": 1},
                    "client_id": client_field("id"),
                    "client_secret": client_field("secret"),
                },
            }),
        ),
    ];
    let create = customer_create(&schemas[0].1);
    schemas.push(("CustomerCreate", create));
    schemas.extend(webhook_bodies());
    schemas
}

/// The webhook endpoint bodies (`input::endpoint_input`,
/// `input::endpoint_patch`): the create's, and the update's, in which
/// nothing is required; and the event type choice both share.
fn webhook_bodies() -> [(&'static str, Value); 3] {
    let mut kinds: Vec<&str> = EventKind::ALL.iter().map(|k| k.name()).collect();
    kinds.sort_unstable();
    let mut choices = vec!["*"];
    choices.extend(&kinds);
    let mut names = vec!["ALL".to_owned()];
    names.extend(kinds.iter().map(|k| enum_variant_name(k)));
    let properties = json!({
        "url": {
            "type": "string",
            "format": "uri",
            "minLength": 1,
            "maxLength": MAX_URL_CHARS,
            "pattern": "^https?://",
            "description": "An absolute `http` or `https` URL with a host. The host must \
                            resolve (an IP literal is taken as is), and to no unspecified, \
                            loopback, link-local, private or shared address (unless the \
                            server allows private addresses): else 400 under `url`.",
        },
        "events": {
            "type": "array",
            "minItems": 1,
            "description": "The event types to deliver, or `[\"*\"]` for every type, \
                            including types added later (`*` only alone). Duplicates are \
                            dropped; the endpoint shows them sorted.",
            "items": schema_ref("WebhookEventChoice"),
        },
        "description": text(MAX_DESCRIPTION_CHARS),
        "is_active": {
            "type": "boolean",
            "description": "Whether events are delivered; true for a new endpoint that is not \
                            given it. A paused endpoint gets no deliveries of the events \
                            written meanwhile, and its pending deliveries wait.",
        },
    });
    [
        (
            "WebhookEventChoice",
            json!({
                "type": "string",
                "description": "An event type (the change feed's `type`), or `*` for every \
                                type.",
                "enum": choices,
                "x-enum-varnames": names,
            }),
        ),
        (
            "WebhookCreate",
            json!({
                "type": "object",
                "description": "A new webhook endpoint. `description` is blank and `is_active` \
                                true when left out.",
                "required": ["url", "events"],
                "properties": properties.clone(),
            }),
        ),
        (
            "WebhookWrite",
            json!({
                "type": "object",
                "description": "The writable fields of a webhook endpoint (PUT and PATCH \
                                bodies): fields left out keep their values.",
                "properties": properties,
            }),
        ),
    ]
}

/// Error bodies and the bodies the handlers build with `json!`.
fn other_schemas() -> Vec<(&'static str, Value)> {
    vec![
        (
            "ValidationError",
            json!({
                "type": "object",
                "description": "DRF field errors: each field (or `non_field_errors`) with its messages.",
                "additionalProperties": {"type": "array", "items": {"type": "string"}},
                "example": {"mobile": ["customer with this mobile already exists."]},
            }),
        ),
        (
            "Detail",
            json!({
                "type": "object",
                "required": ["detail"],
                "properties": {"detail": {"type": "string"}},
                "example": {"detail": "Not found."},
            }),
        ),
        (
            "OAuthError",
            json!({
                "type": "object",
                "required": ["error", "error_description"],
                "properties": {
                    "error": {
                        "type": "string",
                        "enum": ["invalid_request", "invalid_client", "invalid_scope", "unsupported_grant_type"],
                    },
                    "error_description": {
                        "type": "string",
                        "description": "A short human-readable explanation (RFC 6749 section 5.2).",
                    },
                },
                "example": {"error": "invalid_client", "error_description": "Client authentication failed."},
            }),
        ),
        (
            "TokenResponse",
            json!({
                "type": "object",
                "required": ["access_token", "token_type", "expires_in", "scope"],
                "properties": {
                    "access_token": {"type": "string"},
                    "token_type": {"type": "string", "const": "Bearer"},
                    "expires_in": {"type": "integer", "description": "Seconds."},
                    "scope": {"type": "string", "description": "Space-separated granted scopes."},
                },
            }),
        ),
        (
            "Introspection",
            json!({
                "type": "object",
                "required": ["active"],
                "properties": {
                    "active": {"type": "boolean"},
                    "scope": {"type": "string"},
                    "client_id": {"type": "string"},
                    "token_type": {"type": "string", "const": "Bearer"},
                    "exp": {"type": "integer", "description": "Expiry, Unix time."},
                    "iat": {"type": "integer", "description": "Issue time, Unix time."},
                },
            }),
        ),
        (
            "OptionsMetadata",
            json!({
                "type": "object",
                "required": ["name", "description", "renders", "parses"],
                "properties": {
                    "name": {"type": "string"},
                    "description": {"type": "string"},
                    "renders": {"type": "array", "items": {"type": "string"}},
                    "parses": {"type": "array", "items": {"type": "string"}},
                },
            }),
        ),
        (
            "Health",
            json!({
                "type": "object",
                "required": ["status"],
                "properties": {"status": {"type": "string", "const": "ok"}},
            }),
        ),
        (
            "Readiness",
            json!({
                "type": "object",
                "required": ["status", "database"],
                "properties": {
                    "status": {"type": "string", "enum": ["ok", "unavailable"]},
                    "database": {"type": "string", "enum": ["ok", "unavailable"]},
                },
            }),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMMITTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json");

    /// Every (path, method) the server answers outside `/api/crm`.
    const PUBLIC_OPERATIONS: &[(&str, &[&str])] = &[
        ("/oauth/token/", &["POST", "OPTIONS"]),
        ("/oauth/revoke_token/", &["POST", "OPTIONS"]),
        ("/oauth/introspect/", &["POST", "OPTIONS"]),
        ("/healthz", &["GET", "HEAD"]),
        ("/readyz", &["GET", "HEAD"]),
        ("/metrics", &["GET"]),
        ("/api/openapi.json", &["GET"]),
    ];

    fn operation<'a>(doc: &'a Value, path: &str, method: &str) -> Option<&'a Value> {
        doc["paths"].get(path)?.get(method.to_ascii_lowercase())
    }

    #[test]
    fn every_route_and_method_is_documented() {
        let doc = document();
        let mut missing = Vec::new();
        for route in API_ROUTES {
            let path = format!("{API_PREFIX}{}/", route.path);
            for method in methods(route.allow) {
                if operation(&doc, &path, method).is_none() {
                    missing.push(format!("{method} {path}"));
                }
            }
        }
        for (path, methods) in PUBLIC_OPERATIONS {
            for method in *methods {
                if operation(&doc, path, method).is_none() {
                    missing.push(format!("{method} {path}"));
                }
            }
        }
        assert!(
            missing.is_empty(),
            "missing from the OpenAPI document (describe them in crates/crm-http/src/openapi.rs): {missing:?}"
        );
    }

    #[test]
    fn only_the_webhook_create_answer_has_the_secret() {
        let doc = document();
        let schemas = &doc["components"]["schemas"];
        let answer = |path: &str, method: &str, status: &str| {
            let op = operation(&doc, path, method).unwrap_or_else(|| panic!("{method} {path}"));
            let schema = &op["responses"][status]["content"]["application/json"]["schema"];
            let name = schema["$ref"].as_str().unwrap_or_else(|| panic!("{op}"));
            schemas[name.trim_start_matches("#/components/schemas/")].clone()
        };
        let created = answer("/api/crm/webhook/", "POST", "201");
        assert!(created["required"]
            .as_array()
            .unwrap()
            .contains(&json!("secret")));
        let item = "/api/crm/webhook/{id}/";
        for (method, status) in [("GET", "200"), ("PUT", "200"), ("PATCH", "200")] {
            let read = answer(item, method, status);
            assert!(read["properties"].get("secret").is_none(), "{method}");
            assert_eq!(
                read["properties"].as_object().unwrap().keys().count() + 1,
                created["properties"].as_object().unwrap().keys().count()
            );
        }
        let retry = "/api/crm/webhook/{id}/deliveries/{delivery_id}/retry/";
        let delivery = answer(retry, "POST", "202");
        assert_eq!(delivery, schemas["WebhookDelivery"]);
        assert!(operation(&doc, retry, "POST").unwrap()["requestBody"].is_null());
        let mut choices = vec!["*".to_owned()];
        let mut kinds: Vec<String> = EventKind::ALL.iter().map(|k| k.name().into()).collect();
        kinds.sort();
        choices.extend(kinds);
        assert_eq!(schemas["WebhookEventChoice"]["enum"], json!(choices));
        assert_eq!(
            schemas["WebhookCreate"]["required"],
            json!(["url", "events"])
        );
        assert!(schemas["WebhookWrite"].get("required").is_none());
    }

    #[test]
    fn committed_copy_is_current() {
        let generated = document_json();
        if std::env::var_os("UPDATE_OPENAPI").is_some_and(|v| v == "1") {
            std::fs::write(COMMITTED, generated).expect("docs/openapi.json is writable");
            return;
        }
        let committed = std::fs::read_to_string(COMMITTED).unwrap_or_default();
        assert!(
            committed == generated,
            "docs/openapi.json is not the document the code generates; regenerate it with \
             `UPDATE_OPENAPI=1 cargo test -p crm-http openapi` and commit the result"
        );
    }
}
