//! Section 7: `GET /api/openapi.json` — public, valid OpenAPI 3, naming every
//! route and method the server answers, with schemas the real responses fit.

use crm_http::{
    API_PREFIX, API_ROUTES, HEALTHZ_PATH, INTROSPECT_PATH, READYZ_PATH, REVOKE_PATH, TOKEN_PATH,
};
use crm_tests::{json, Method, TestApp, Value};

const OPENAPI: &str = "/api/openapi.json";

async fn document(app: &TestApp) -> Value {
    app.send(app.anonymous(Method::GET, OPENAPI))
        .await
        .expect(200)
        .body
}

/// The methods of `path` in the document, upper case, sorted.
fn documented_methods(doc: &Value, path: &str) -> Vec<String> {
    let mut methods: Vec<String> = doc["paths"][path]
        .as_object()
        .unwrap_or_else(|| panic!("{path} is not in the document"))
        .keys()
        .filter(|k| *k != "parameters")
        .map(|k| k.to_ascii_uppercase())
        .collect();
    methods.sort();
    methods
}

fn sorted(allow: &str) -> Vec<String> {
    let mut methods: Vec<String> = allow.split(", ").map(str::to_owned).collect();
    methods.sort();
    methods
}

#[actix_web::test]
async fn the_document_needs_no_token_and_is_openapi_3() {
    let app = spawn!();
    let resp = app.send(app.anonymous(Method::GET, OPENAPI)).await;
    assert_eq!(resp.status, 200, "{}", resp.text);
    assert!(
        resp.header("content-type")
            .is_some_and(|t| t.starts_with("application/json")),
        "{:?}",
        resp.header("content-type")
    );
    let doc: Value = serde_json::from_str(&resp.text).expect("valid JSON");
    let version = doc["openapi"].as_str().expect("an openapi version");
    assert!(version.starts_with("3."), "{version}");
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
    // Served as generated (and so as committed: the crm-http drift test).
    assert_eq!(resp.text, crm_http::openapi::document_json());
    // Without the trailing slash too, and a bad token changes nothing.
    let resp = app
        .send(app.anonymous(Method::GET, OPENAPI).bearer_auth("nonsense"))
        .await
        .expect(200);
    assert_eq!(resp.body, doc);
}

#[actix_web::test]
async fn every_route_and_method_is_documented_with_its_scopes() {
    let app = spawn!();
    let doc = document(&app).await;
    let mut missing = Vec::new();
    for route in API_ROUTES {
        let path = format!("{API_PREFIX}{}/", route.path);
        for method in route.allow.split(", ") {
            let Some(operation) = doc["paths"][&path].get(method.to_ascii_lowercase()) else {
                missing.push(format!("{method} {path}"));
                continue;
            };
            let write = !matches!(method, "GET" | "HEAD" | "OPTIONS");
            let expected = if write {
                json!([{"oauth2": ["crm:write"]}, {"oauth2": ["write"]}])
            } else {
                json!([{"oauth2": ["crm:read"]}, {"oauth2": ["read"]}])
            };
            assert_eq!(operation["security"], expected, "{method} {path}");
            for status in ["401", "403"] {
                assert!(
                    operation["responses"].get(status).is_some(),
                    "{method} {path} lacks {status}"
                );
            }
        }
        // No more methods than the route answers.
        assert_eq!(
            documented_methods(&doc, &path),
            sorted(route.allow),
            "{path}"
        );
    }
    let public: [(String, &str); 7] = [
        (format!("{TOKEN_PATH}/"), "POST, OPTIONS"),
        (format!("{REVOKE_PATH}/"), "POST, OPTIONS"),
        (format!("{INTROSPECT_PATH}/"), "POST, OPTIONS"),
        (HEALTHZ_PATH.to_owned(), "GET, HEAD"),
        (READYZ_PATH.to_owned(), "GET, HEAD"),
        ("/metrics".to_owned(), "GET"),
        (OPENAPI.to_owned(), "GET"),
    ];
    for (path, allow) in &public {
        for method in allow.split(", ") {
            if doc["paths"][path]
                .get(method.to_ascii_lowercase())
                .is_none()
            {
                missing.push(format!("{method} {path}"));
            }
        }
    }
    assert!(missing.is_empty(), "not in /api/openapi.json: {missing:?}");
    // Nothing documented that the server does not serve.
    let served: Vec<String> = API_ROUTES
        .iter()
        .map(|r| format!("{API_PREFIX}{}/", r.path))
        .chain(public.iter().map(|(p, _)| p.clone()))
        .collect();
    for path in doc["paths"].as_object().unwrap().keys() {
        assert!(served.contains(path), "{path} is documented but not served");
    }
    // The OAuth 2.0 scheme the operations refer to.
    let flow = &doc["components"]["securitySchemes"]["oauth2"]["flows"]["clientCredentials"];
    assert_eq!(flow["tokenUrl"], "/oauth/token/");
    let mut scopes: Vec<&String> = flow["scopes"].as_object().unwrap().keys().collect();
    scopes.sort();
    assert_eq!(scopes, ["crm:read", "crm:write", "read", "write"]);
    // The public routes answer the methods documented for them.
    for (path, allow) in &public[..3] {
        let resp = app
            .send(app.anonymous(Method::OPTIONS, path))
            .await
            .expect(200);
        assert_eq!(resp.header("allow"), Some(*allow), "{path}");
    }
    for path in [HEALTHZ_PATH, READYZ_PATH, "/metrics"] {
        app.send(app.anonymous(Method::GET, path)).await.expect(200);
    }
}

/// A small JSON Schema check, enough for the document's own schemas:
/// `$ref`, `type` (one or several), `properties`, `required`, `items`,
/// `enum`, `const`, `anyOf`. Extra keys in an object are reported too, so a
/// field the server sends but the document lacks fails.
fn check(doc: &Value, schema: &Value, value: &Value, at: &str, problems: &mut Vec<String>) {
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.trim_start_matches("#/components/schemas/");
        return check(
            doc,
            &doc["components"]["schemas"][name],
            value,
            at,
            problems,
        );
    }
    if let Some(options) = schema["anyOf"].as_array() {
        let fits = options.iter().any(|option| {
            let mut found = Vec::new();
            check(doc, option, value, at, &mut found);
            found.is_empty()
        });
        if !fits {
            problems.push(format!("{at}: {value} fits no anyOf branch"));
        }
        return;
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    let actual = match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    if !types.is_empty() && !types.contains(&actual) {
        problems.push(format!("{at}: {actual} where the document says {types:?}"));
        return;
    }
    if let Some(choices) = schema["enum"].as_array() {
        if !choices.contains(value) {
            problems.push(format!("{at}: {value} is not one of {choices:?}"));
        }
    }
    if let Some(constant) = schema.get("const") {
        if constant != value {
            problems.push(format!("{at}: {value} is not {constant}"));
        }
    }
    match value {
        Value::Object(map) => {
            let properties = schema["properties"].as_object();
            for name in schema["required"].as_array().into_iter().flatten() {
                let name = name.as_str().unwrap();
                if !map.contains_key(name) {
                    problems.push(format!("{at}: required {name} is missing"));
                }
            }
            for (name, item) in map {
                match properties.and_then(|p| p.get(name)) {
                    Some(property) => check(doc, property, item, &format!("{at}.{name}"), problems),
                    None if schema.get("additionalProperties").is_some() => check(
                        doc,
                        &schema["additionalProperties"],
                        item,
                        &format!("{at}.{name}"),
                        problems,
                    ),
                    None => problems.push(format!("{at}: {name} is not documented")),
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                check(doc, &schema["items"], item, &format!("{at}[{i}]"), problems);
            }
        }
        _ => {}
    }
}

/// Asserts that `body`, the answer of `method path` with `status`, fits the
/// schema the document gives for it.
#[track_caller]
fn assert_conforms(doc: &Value, path: &str, method: &str, status: u16, body: &Value) {
    let operation = &doc["paths"][path][method.to_ascii_lowercase()];
    let mut response = &operation["responses"][status.to_string()];
    assert!(
        !response.is_null(),
        "{method} {path}: {status} is not documented"
    );
    if let Some(reference) = response["$ref"].as_str() {
        let name = reference.trim_start_matches("#/components/responses/");
        response = &doc["components"]["responses"][name];
    }
    let schema = &response["content"]["application/json"]["schema"];
    assert!(
        !schema.is_null(),
        "{method} {path} {status}: no JSON schema"
    );
    let mut problems = Vec::new();
    check(doc, schema, body, "body", &mut problems);
    assert!(
        problems.is_empty(),
        "{method} {path} {status} does not fit the document: {problems:#?}\n{body:#}"
    );
}

#[actix_web::test]
async fn real_responses_fit_the_documented_schemas() {
    let app = spawn!();
    let doc = document(&app).await;
    // The checker catches a wrong type and a field the document lacks.
    let mut problems = Vec::new();
    let detail = json!({"$ref": "#/components/schemas/Detail"});
    let body = json!({"detail": 1, "extra": true});
    check(&doc, &detail, &body, "body", &mut problems);
    assert_eq!(problems.len(), 2, "{problems:?}");
    let referrer = app.customer_id(json!({"full_name": "Referrer"})).await;
    let customer = app
        .post(
            "/api/crm/customer/",
            &json!({
                "mobile": 13000000000u64, "full_name": "Full", "gender": "female",
                "email": "full@example.com", "birthday": "1986-05-24", "note": "n",
                "accepts_marketing": true, "referral_code": "CODE", "tags": ["b", "a"],
                "avatar": "https://example.com/a.png", "referrer": referrer,
                "multipass_identifier": "mp-1", "profile": {"source_name": "web"},
                "metafields": [{"namespace": "n", "key": "k", "value": "v"}],
            }),
        )
        .await
        .expect(201);
    assert_conforms(&doc, "/api/crm/customer/", "POST", 201, &customer.body);
    let id = customer.body["id"].as_i64().unwrap();
    let address = app
        .post(
            &format!("/api/crm/customer/{id}/addresses/"),
            &json!({"full_name": "A", "mobile": "13800000000", "province": "P", "city": "C", "address1": "1"}),
        )
        .await
        .expect(201);
    let addresses = "/api/crm/customer/{id}/addresses/";
    assert_conforms(&doc, addresses, "POST", 201, &address.body);
    let coupon = app
        .post(
            &format!("/api/crm/customer/{id}/coupons/"),
            &json!({"coupon_id": 222}),
        )
        .await
        .expect(201);
    assert_conforms(
        &doc,
        "/api/crm/customer/{id}/coupons/",
        "POST",
        201,
        &coupon.body,
    );
    let segment = app.segment_id("S").await;
    let members = app
        .post(
            &format!("/api/crm/segment/{segment}/segment_customer/"),
            &json!([{"customer_id": id}]),
        )
        .await
        .expect(200);
    let segment_customer = "/api/crm/segment/{id}/segment_customer/";
    assert_conforms(&doc, segment_customer, "POST", 200, &members.body);

    let cases: Vec<(String, &str, u16)> = vec![
        (
            format!("/api/crm/customer/{id}/"),
            "/api/crm/customer/{id}/",
            200,
        ),
        (
            "/api/crm/customer/?page_size=1".into(),
            "/api/crm/customer/",
            200,
        ),
        (
            "/api/crm/customer/?page=2&page_size=1".into(),
            "/api/crm/customer/",
            200,
        ),
        ("/api/crm/customer/?id=x".into(), "/api/crm/customer/", 400),
        (
            "/api/crm/customer/?page=9".into(),
            "/api/crm/customer/",
            404,
        ),
        (format!("/api/crm/customer/{id}/addresses/"), addresses, 200),
        (
            format!("/api/crm/customer/{id}/coupons/"),
            "/api/crm/customer/{id}/coupons/",
            200,
        ),
        (
            format!("/api/crm/segment/{segment}/"),
            "/api/crm/segment/{id}/",
            200,
        ),
        ("/api/crm/segment/".into(), "/api/crm/segment/", 200),
        (
            "/api/crm/customer/999999/".into(),
            "/api/crm/customer/{id}/",
            404,
        ),
    ];
    for (url, path, status) in cases {
        let resp = app.get(&url).await.expect(status);
        assert_conforms(&doc, path, "GET", status, &resp.body);
    }
    let invalid = app
        .post("/api/crm/customer/", &json!({"gender": "x"}))
        .await
        .expect(400);
    assert_conforms(&doc, "/api/crm/customer/", "POST", 400, &invalid.body);
    let malformed = app
        .send(
            app.request(Method::POST, "/api/crm/customer/")
                .header("content-type", "application/json")
                .body("{"),
        )
        .await
        .expect(400);
    assert_conforms(&doc, "/api/crm/customer/", "POST", 400, &malformed.body);
    let anonymous = app
        .send(app.anonymous(Method::GET, "/api/crm/customer/"))
        .await
        .expect(401);
    assert_conforms(&doc, "/api/crm/customer/", "GET", 401, &anonymous.body);
    let options = app
        .send(app.request(Method::OPTIONS, "/api/crm/customer/"))
        .await
        .expect(200);
    assert_conforms(&doc, "/api/crm/customer/", "OPTIONS", 200, &options.body);
    let token = app
        .send(
            app.anonymous(Method::POST, "/oauth/token/")
                .form(&[("grant_type", "client_credentials")]),
        )
        .await
        .expect(401);
    assert_conforms(&doc, "/oauth/token/", "POST", 401, &token.body);
    let form = |extra: &[(&'static str, &str)]| -> Vec<(&'static str, String)> {
        let mut fields = vec![
            ("client_id", app.oauth_client.id.clone()),
            ("client_secret", app.oauth_client.secret.clone()),
        ];
        fields.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
        fields
    };
    let issued = app
        .send(app.anonymous(Method::POST, "/oauth/token/").form(&form(&[
            ("grant_type", "client_credentials"),
            ("scope", "read"),
        ])))
        .await
        .expect(200);
    assert_conforms(&doc, "/oauth/token/", "POST", 200, &issued.body);
    let bad_grant = app
        .send(
            app.anonymous(Method::POST, "/oauth/token/")
                .form(&form(&[("grant_type", "password")])),
        )
        .await
        .expect(400);
    assert_conforms(&doc, "/oauth/token/", "POST", 400, &bad_grant.body);
    for token in [issued.body["access_token"].as_str().unwrap(), "unknown"] {
        let introspection = app
            .send(
                app.anonymous(Method::POST, "/oauth/introspect/")
                    .form(&form(&[("token", token)])),
            )
            .await
            .expect(200);
        assert_conforms(&doc, "/oauth/introspect/", "POST", 200, &introspection.body);
    }
    for (path, status) in [(HEALTHZ_PATH, 200), (READYZ_PATH, 200)] {
        let resp = app.send(app.anonymous(Method::GET, path)).await;
        assert_conforms(&doc, path, "GET", status, &resp.body);
    }
}

/// Found by schemathesis: the probes, `/metrics` and this document answered
/// an undeclared method (TRACE, POST) with 404 instead of 405 and `Allow`.
#[actix_web::test]
async fn public_routes_refuse_other_methods_with_405_and_allow() {
    let app = spawn!();
    for (path, allow) in [
        (HEALTHZ_PATH, "GET, HEAD"),
        (READYZ_PATH, "GET, HEAD"),
        ("/metrics", "GET"),
        (OPENAPI, "GET"),
    ] {
        for method in [Method::TRACE, Method::POST, Method::DELETE] {
            let resp = app
                .send(app.anonymous(method.clone(), path))
                .await
                .expect(405);
            assert_eq!(resp.header("allow"), Some(allow), "{method} {path}");
            assert_eq!(
                resp.body,
                json!({"detail": format!("Method \"{method}\" not allowed.")}),
                "{method} {path}"
            );
        }
        app.send(app.anonymous(Method::GET, path)).await.expect(200);
    }
    for path in [HEALTHZ_PATH, READYZ_PATH] {
        app.send(app.anonymous(Method::HEAD, path))
            .await
            .expect(200);
    }
}

/// Every JSON object inside `value`, with its JSON pointer.
fn objects<'a>(value: &'a Value, at: String, out: &mut Vec<(String, &'a Value)>) {
    match value {
        Value::Object(map) => {
            out.push((at.clone(), value));
            for (key, item) in map {
                objects(item, format!("{at}/{key}"), out);
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                objects(item, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// `schema` with its `$ref`s followed (once per name), as (pointer, object)
/// pairs: what a generator reads for a request body.
fn resolved<'a>(doc: &'a Value, schema: &'a Value, at: &str) -> Vec<(String, &'a Value)> {
    let mut seen = Vec::new();
    let mut out = Vec::new();
    let mut todo = vec![(at.to_owned(), schema)];
    while let Some((at, schema)) = todo.pop() {
        let mut found = Vec::new();
        objects(schema, at, &mut found);
        for (at, object) in found {
            if let Some(reference) = object["$ref"].as_str() {
                let name = reference.trim_start_matches("#/components/schemas/");
                if !seen.contains(&name) {
                    seen.push(name);
                    todo.push((reference.to_owned(), &doc["components"]["schemas"][name]));
                }
            }
            out.push((at, object));
        }
    }
    out
}

/// Every (path, method, operation) of the document.
fn operations(doc: &Value) -> Vec<(&str, &str, &Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            out.push((path.as_str(), method.as_str(), operation));
        }
    }
    out
}

/// Issue 11: a generated PATCH sent `accepts_marketing: false` and
/// `gender: "unknown"` for "patch the note", because the update body
/// declared them as defaults; openapi-typescript made them required.
#[actix_web::test]
async fn request_bodies_declare_no_defaults_and_patch_bodies_require_nothing() {
    let app = spawn!();
    let doc = document(&app).await;
    let mut bodies = 0;
    for (path, method, operation) in operations(&doc) {
        let Some(content) = operation["requestBody"]["content"].as_object() else {
            continue;
        };
        for media in content.values() {
            bodies += 1;
            for (at, object) in resolved(&doc, &media["schema"], "body") {
                assert!(
                    object.get("default").is_none(),
                    "{method} {path}: {at} declares a default: {object}"
                );
            }
            if method == "patch" {
                let name = media["schema"]["$ref"].as_str().unwrap();
                let name = name.trim_start_matches("#/components/schemas/");
                let schema = &doc["components"]["schemas"][name];
                assert!(schema.get("required").is_none(), "PATCH {path}: {schema}");
            }
        }
    }
    assert!(bodies >= 10, "{bodies} request bodies");
    let write = &doc["components"]["schemas"]["CustomerWrite"];
    assert!(write.get("required").is_none());
    for field in ["accepts_marketing", "gender"] {
        assert!(write["properties"][field].is_object(), "{field}");
    }
}

/// Issue 11: list query parameters declared defaults, so generated clients
/// sent `ordering=-id&page=1&page_size=10` on every call.
#[actix_web::test]
async fn query_parameters_declare_no_defaults() {
    let app = spawn!();
    let doc = document(&app).await;
    let mut checked = 0;
    for (path, method, operation) in operations(&doc) {
        for parameter in operation["parameters"].as_array().into_iter().flatten() {
            checked += 1;
            let mut found = Vec::new();
            objects(parameter, String::new(), &mut found);
            for (at, object) in found {
                assert!(
                    object.get("default").is_none(),
                    "{method} {path} {}{at}: {object}",
                    parameter["name"]
                );
            }
        }
    }
    assert!(checked > 20, "{checked} parameters");
    let list = &doc["paths"]["/api/crm/customer/"]["get"]["parameters"];
    let description = |name: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("{name}"))["description"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    // The defaults are stated in words instead.
    assert!(description("ordering").contains("`-id`"));
    assert!(description("page_size").contains("10"));
    // The list filters are arrays in the form generators send them.
    for (path, method, name) in [
        ("/api/crm/customer/", "get", "id__in"),
        (
            "/api/crm/segment/{id}/segment_customer/",
            "delete",
            "customer__in",
        ),
    ] {
        let parameter = doc["paths"][path][method]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap();
        assert_eq!(parameter["schema"]["type"], "array", "{name}");
        assert_eq!(parameter["explode"], true, "{name}");
    }
}

/// Issue 11: the create body was properties plus an `anyOf` of one-field
/// schemas, which generators turn into untyped models.
#[actix_web::test]
async fn the_create_body_is_a_plain_typed_object() {
    let app = spawn!();
    let doc = document(&app).await;
    let schemas = &doc["components"]["schemas"];
    let create = &schemas["CustomerCreate"];
    assert_eq!(create["type"], "object");
    for composition in ["anyOf", "oneOf", "allOf", "not"] {
        assert!(create.get(composition).is_none(), "{composition}: {create}");
    }
    let properties = create["properties"].as_object().unwrap();
    assert_eq!(
        properties,
        schemas["CustomerWrite"]["properties"].as_object().unwrap()
    );
    for (name, property) in properties {
        let typed = property.get("type").is_some()
            || property["$ref"].is_string()
            || property["anyOf"]
                .as_array()
                .is_some_and(|options| options.iter().all(|o| o.get("type").is_some()));
        assert!(typed, "{name} has no type: {property}");
    }
    let description = create["description"].as_str().unwrap();
    for field in ["`mobile`", "`email`", "`full_name`", "non_field_errors"] {
        assert!(description.contains(field), "{description}");
    }
    let body = &doc["paths"]["/api/crm/customer/"]["post"]["requestBody"];
    assert_eq!(body["required"], true);
}

/// Issue 11: the OAuth operations declared `security: [{"clientBasic": []},
/// {}]`, so openapi-python-client wanted a bearer-token client to get a
/// token; their errors had no `error_description`.
#[actix_web::test]
async fn the_oauth_operations_need_no_bearer_token() {
    let app = spawn!();
    let doc = document(&app).await;
    for path in [
        "/oauth/token/",
        "/oauth/revoke_token/",
        "/oauth/introspect/",
    ] {
        let operation = &doc["paths"][path]["post"];
        assert_eq!(operation["security"], json!([]), "{path}");
        let description = operation["description"].as_str().unwrap();
        for words in ["HTTP Basic", "`client_id`", "`client_secret`", "Bearer"] {
            assert!(description.contains(words), "{path}: {description}");
        }
        let body = &operation["requestBody"]["content"]["application/x-www-form-urlencoded"];
        let name = body["schema"]["$ref"].as_str().unwrap();
        let schema =
            &doc["components"]["schemas"][name.trim_start_matches("#/components/schemas/")];
        for field in ["client_id", "client_secret"] {
            assert!(
                schema["properties"][field]["description"].is_string(),
                "{path} {field}"
            );
        }
    }
    // The only security scheme is the bearer one.
    let schemes: Vec<&String> = doc["components"]["securitySchemes"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(schemes, ["oauth2"]);
    let error = &doc["components"]["schemas"]["OAuthError"];
    assert_eq!(error["required"], json!(["error", "error_description"]));
    assert_eq!(error["properties"]["error_description"]["type"], "string");
}

/// Issue 11, the smaller items: a `servers` entry, 405 declared, enum
/// variants named, and no property typed `null` alone (openapi-fetch drops
/// such a property from its response types).
#[actix_web::test]
async fn generators_get_servers_405_enum_names_and_nullable_types() {
    let app = spawn!();
    let doc = document(&app).await;
    let servers = doc["servers"].as_array().expect("servers");
    assert!(!servers.is_empty() && servers.iter().all(|s| s["url"].is_string()));
    for (path, method, operation) in operations(&doc) {
        assert!(
            operation["responses"].get("405").is_some(),
            "{method} {path} does not declare 405"
        );
    }
    let mut all = Vec::new();
    objects(&doc, String::new(), &mut all);
    let mut enums = 0;
    for (at, object) in &all {
        if let Some(choices) = object.get("enum").and_then(Value::as_array) {
            enums += 1;
            let names = object["x-enum-varnames"]
                .as_array()
                .unwrap_or_else(|| panic!("{at}: enum without x-enum-varnames"));
            assert_eq!(names.len(), choices.len(), "{at}");
            let mut unique: Vec<&str> = names.iter().map(|n| n.as_str().unwrap()).collect();
            for name in &unique {
                assert!(
                    name.starts_with(|c: char| c.is_ascii_uppercase())
                        && name
                            .chars()
                            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'),
                    "{at}: {name}"
                );
            }
            unique.sort_unstable();
            unique.dedup();
            assert_eq!(unique.len(), names.len(), "{at}: {names:?}");
        }
        assert_ne!(object.get("type"), Some(&json!("null")), "{at}: {object}");
    }
    assert!(enums >= 5, "{enums} enums");
    let ordering = doc["paths"]["/api/crm/customer/"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "ordering")
        .unwrap();
    let names = &ordering["schema"]["x-enum-varnames"];
    assert!(
        names
            .as_array()
            .unwrap()
            .contains(&json!("CREATED_AT_DESC")),
        "{names}"
    );
    let level = &doc["components"]["schemas"]["Customer"]["properties"]["level"];
    assert_eq!(level["type"], json!(["string", "null"]));
}
