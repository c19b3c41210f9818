//! OAuth 2.0 (API.md section 2): the token endpoint, revocation,
//! introspection, and the bearer and scope rules on every `/api/crm/` route.

use std::time::Duration;

use crm_domain::auth::digest;
use crm_http::API_ROUTES;
use crm_tests::{json, Method, Resp, TestApp, TestClient};

/// POSTs a form to `path`, authenticating `client` with HTTP Basic.
async fn form(
    app: &TestApp,
    path: &str,
    client: Option<&TestClient>,
    fields: &[(&str, &str)],
) -> Resp {
    let mut builder = app.anonymous(Method::POST, path).form(fields);
    if let Some(c) = client {
        builder = builder.basic_auth(&c.id, Some(&c.secret));
    }
    app.send(builder).await
}

/// Asserts an RFC 6749 §5.2 error body: `error` is `code`, and
/// `error_description` is a short text that names neither the client nor its
/// secret. Returns the description.
#[track_caller]
fn assert_oauth_error(resp: &Resp, code: &str, app: &TestApp) -> String {
    assert_eq!(
        crm_tests::keys(&resp.body),
        ["error", "error_description"],
        "{}",
        resp.text
    );
    assert_eq!(resp.body["error"], code, "{}", resp.text);
    let description = resp.body["error_description"]
        .as_str()
        .expect("error_description is a string");
    assert!(
        !description.is_empty() && description.len() <= 200,
        "{description}"
    );
    // RFC 6749: printable ASCII except `"` and `\`.
    assert!(
        description
            .chars()
            .all(|c| matches!(c, ' '..='~') && c != '"' && c != '\\'),
        "{description}"
    );
    for secret in [&app.oauth_client.id, &app.oauth_client.secret] {
        assert!(!description.contains(secret.as_str()), "{description}");
    }
    description.to_owned()
}

async fn token_with(app: &TestApp, scopes: &str) -> String {
    let client = app.register_client("scoped", scopes).await;
    let scopes: Vec<&str> = scopes.split(' ').collect();
    app.fetch_token(&client, &scopes).await
}

async fn call(app: &TestApp, method: Method, path: &str, token: &str) -> Resp {
    let mut builder = app.anonymous(method.clone(), path).bearer_auth(token);
    if method == Method::POST || method == Method::PUT || method == Method::PATCH {
        builder = builder.json(&json!({"full_name": "Scoped"}));
    }
    app.send(builder).await
}

#[actix_web::test]
async fn token_response_has_the_contract_shape_and_no_store() {
    let app = spawn!();
    let resp = form(
        &app,
        "/oauth/token/",
        Some(&app.oauth_client),
        &[
            ("grant_type", "client_credentials"),
            ("scope", "crm:read crm:write"),
        ],
    )
    .await
    .expect(200);
    assert_eq!(resp.header("cache-control"), Some("no-store"));
    let body = resp.body.as_object().unwrap();
    let keys: Vec<&str> = body.keys().map(String::as_str).collect();
    assert_eq!(keys, ["access_token", "token_type", "expires_in", "scope"]);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 36000);
    assert_eq!(body["scope"], "crm:read crm:write");
    // 48 characters from a 62-letter alphabet: more than 256 bits.
    assert!(body["access_token"].as_str().unwrap().len() >= 43);
}

#[actix_web::test]
async fn form_field_client_authentication_works() {
    let app = spawn!();
    let c = &app.oauth_client;
    form(
        &app,
        "/oauth/token/",
        None,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &c.id),
            ("client_secret", &c.secret),
        ],
    )
    .await
    .expect(200);
}

#[actix_web::test]
async fn absent_scope_grants_every_allowed_scope() {
    let app = spawn!();
    let client = app.register_client("reader", "crm:read read").await;
    let resp = form(
        &app,
        "/oauth/token/",
        Some(&client),
        &[("grant_type", "client_credentials")],
    )
    .await
    .expect(200);
    assert_eq!(resp.body["scope"], "crm:read read");
}

#[actix_web::test]
async fn each_token_comes_with_its_own_value() {
    let app = spawn!();
    let a = app.fetch_token(&app.oauth_client, &["crm:read"]).await;
    let b = app.fetch_token(&app.oauth_client, &["crm:read"]).await;
    assert_ne!(a, b);
}

#[actix_web::test]
async fn wrong_secret_unknown_client_or_no_credentials_is_invalid_client() {
    let app = spawn!();
    let wrong = TestClient {
        id: app.oauth_client.id.clone(),
        secret: "wrong".into(),
    };
    let unknown = TestClient {
        id: "nobody".into(),
        secret: app.oauth_client.secret.clone(),
    };
    let mut descriptions = Vec::new();
    for client in [Some(&wrong), Some(&unknown), None] {
        let resp = form(
            &app,
            "/oauth/token/",
            client,
            &[("grant_type", "client_credentials")],
        )
        .await
        .expect(401);
        descriptions.push(assert_oauth_error(&resp, "invalid_client", &app));
        assert_eq!(
            resp.header("www-authenticate"),
            Some("Basic realm=\"oauth\"")
        );
    }
    // The description does not tell a wrong secret from an unknown client.
    descriptions.dedup();
    assert_eq!(descriptions.len(), 1, "{descriptions:?}");
}

/// Generated clients and some HTTP setups send `Authorization: Bearer ...`
/// on every call: on the OAuth endpoints a header of another scheme than
/// Basic is ignored when the form carries the client credentials.
#[actix_web::test]
async fn a_stray_bearer_header_does_not_hide_form_credentials() {
    let app = spawn!();
    let c = &app.oauth_client;
    let credentials = [
        ("client_id", c.id.as_str()),
        ("client_secret", c.secret.as_str()),
    ];
    let with = |path: &str, fields: &[(&str, &str)]| {
        let mut all = credentials.to_vec();
        all.extend_from_slice(fields);
        app.anonymous(Method::POST, path)
            .header("authorization", "Bearer stray-token")
            .form(&all)
    };
    let resp = app
        .send(with(
            "/oauth/token/",
            &[("grant_type", "client_credentials")],
        ))
        .await
        .expect(200);
    let token = resp.body["access_token"].as_str().unwrap().to_owned();
    let resp = app
        .send(with("/oauth/introspect/", &[("token", &token)]))
        .await
        .expect(200);
    assert_eq!(resp.body["active"], true);
    app.send(with("/oauth/revoke_token/", &[("token", &token)]))
        .await
        .expect(200);
    // Any other scheme too, in any case.
    for header in ["bearer x", "Token abc", "Digest username=\"x\""] {
        let resp = app
            .send(
                app.anonymous(Method::POST, "/oauth/token/")
                    .header("authorization", header)
                    .form(&[
                        ("grant_type", "client_credentials"),
                        ("client_id", c.id.as_str()),
                        ("client_secret", c.secret.as_str()),
                    ]),
            )
            .await;
        assert_eq!(resp.status, 200, "{header}: {}", resp.text);
    }
    // Without form credentials, a bearer header authenticates nothing.
    let resp = app
        .send(
            app.anonymous(Method::POST, "/oauth/token/")
                .header("authorization", "Bearer stray-token")
                .form(&[("grant_type", "client_credentials")]),
        )
        .await
        .expect(401);
    assert_oauth_error(&resp, "invalid_client", &app);
    // Wrong form credentials stay wrong whatever the header.
    let resp = app
        .send(
            app.anonymous(Method::POST, "/oauth/token/")
                .header("authorization", "Bearer stray-token")
                .form(&[
                    ("grant_type", "client_credentials"),
                    ("client_id", c.id.as_str()),
                    ("client_secret", "wrong"),
                ]),
        )
        .await
        .expect(401);
    assert_oauth_error(&resp, "invalid_client", &app);
}

#[actix_web::test]
async fn scope_outside_the_client_allowance_is_invalid_scope() {
    let app = spawn!();
    let reader = app.register_client("reader", "crm:read").await;
    for scope in ["crm:write", "crm:read crm:write", "admin"] {
        let resp = form(
            &app,
            "/oauth/token/",
            Some(&reader),
            &[("grant_type", "client_credentials"), ("scope", scope)],
        )
        .await
        .expect(400);
        assert_oauth_error(&resp, "invalid_scope", &app);
    }
}

#[actix_web::test]
async fn other_grant_types_are_unsupported() {
    let app = spawn!();
    for grant in ["password", "authorization_code", "refresh_token"] {
        let resp = form(
            &app,
            "/oauth/token/",
            Some(&app.oauth_client),
            &[("grant_type", grant)],
        )
        .await
        .expect(400);
        assert_oauth_error(&resp, "unsupported_grant_type", &app);
    }
}

#[actix_web::test]
async fn malformed_token_requests_are_invalid_request() {
    let app = spawn!();
    let c = &app.oauth_client;
    // No grant_type.
    let resp = form(&app, "/oauth/token/", Some(c), &[("scope", "crm:read")])
        .await
        .expect(400);
    assert_oauth_error(&resp, "invalid_request", &app);
    // A parameter twice.
    let resp = form(
        &app,
        "/oauth/token/",
        Some(c),
        &[
            ("grant_type", "client_credentials"),
            ("grant_type", "client_credentials"),
        ],
    )
    .await
    .expect(400);
    assert_oauth_error(&resp, "invalid_request", &app);
    // Two client authentication methods at once.
    let resp = form(
        &app,
        "/oauth/token/",
        Some(c),
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &c.id),
            ("client_secret", &c.secret),
        ],
    )
    .await
    .expect(400);
    assert_oauth_error(&resp, "invalid_request", &app);
    // Not a form body.
    let resp = app
        .send(
            app.anonymous(Method::POST, "/oauth/token/")
                .basic_auth(&c.id, Some(&c.secret))
                .json(&json!({"grant_type": "client_credentials"})),
        )
        .await
        .expect(400);
    assert_oauth_error(&resp, "invalid_request", &app);
}

#[actix_web::test]
async fn missing_credentials_get_401_with_bearer_challenge() {
    let app = spawn!();
    let resp = app
        .send(app.anonymous(Method::GET, "/api/crm/customer/"))
        .await
        .expect(401);
    assert_eq!(
        resp.body,
        json!({"detail": "Authentication credentials were not provided."})
    );
    assert_eq!(
        resp.header("www-authenticate"),
        Some("Bearer realm=\"api\"")
    );
    // Another scheme counts as no credentials.
    let resp = app
        .send(
            app.anonymous(Method::GET, "/api/crm/customer/")
                .basic_auth(&app.oauth_client.id, Some(&app.oauth_client.secret)),
        )
        .await
        .expect(401);
    assert_eq!(
        resp.header("www-authenticate"),
        Some("Bearer realm=\"api\"")
    );
}

#[actix_web::test]
async fn unknown_token_is_invalid_token() {
    let app = spawn!();
    let resp = call(&app, Method::GET, "/api/crm/customer/", "not-a-real-token")
        .await
        .expect(401);
    let challenge = resp.header("www-authenticate").unwrap();
    assert!(
        challenge
            .starts_with("Bearer realm=\"api\", error=\"invalid_token\", error_description=\""),
        "{challenge}"
    );
    assert!(resp.body["detail"].is_string());
}

#[actix_web::test]
async fn expired_token_is_invalid_token() {
    let app = spawn!(|s| s.token_ttl_seconds = 1);
    call(&app, Method::GET, "/api/crm/customer/", &app.token)
        .await
        .expect(200);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let resp = call(&app, Method::GET, "/api/crm/customer/", &app.token)
        .await
        .expect(401);
    assert!(resp
        .header("www-authenticate")
        .unwrap()
        .contains("error=\"invalid_token\""));
}

#[actix_web::test]
async fn expired_tokens_are_deleted_when_new_ones_are_issued() {
    let app = spawn!(|s| s.token_ttl_seconds = 1);
    assert_eq!(app.sql_count("SELECT count(*) AS n FROM oauth_tokens"), 1);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    app.fetch_token(&app.oauth_client, &["crm:read"]).await;
    assert_eq!(app.sql_count("SELECT count(*) AS n FROM oauth_tokens"), 1);
    let old = digest(&app.token);
    assert_eq!(
        app.sql_count(&format!(
            "SELECT count(*) AS n FROM oauth_tokens WHERE token_hash = '{old}'"
        )),
        0
    );
}

#[actix_web::test]
async fn tokens_and_secrets_are_stored_only_as_hashes() {
    let app = spawn!();
    let token = &app.token;
    let secret = &app.oauth_client.secret;
    assert_eq!(
        app.sql_count(&format!(
            "SELECT count(*) AS n FROM oauth_tokens WHERE token_hash = '{}'",
            digest(token)
        )),
        1
    );
    assert_eq!(app.sql_count(&format!("SELECT count(*) AS n FROM oauth_tokens WHERE token_hash = '{token}' OR scopes LIKE '%{token}%'")), 0);
    assert_eq!(
        app.sql_count(&format!(
            "SELECT count(*) AS n FROM oauth_clients WHERE secret_hash = '{}'",
            digest(secret)
        )),
        1
    );
    assert_eq!(
        app.sql_count(&format!(
            "SELECT count(*) AS n FROM oauth_clients WHERE secret_hash = '{secret}'"
        )),
        0
    );
}

/// Section 2's table: reads need `crm:read` or `read`, writes `crm:write` or
/// `write`; the alternatives are independent.
#[actix_web::test]
async fn scope_table() {
    let app = spawn!();
    let cases: [(&str, bool, bool); 4] = [
        // scope, may read, may write
        ("crm:read", true, false),
        ("read", true, false),
        ("crm:write", false, true),
        ("write", false, true),
    ];
    for (scope, may_read, may_write) in cases {
        let id = app.customer_id(json!({"full_name": "Target"})).await;
        let instance = format!("/api/crm/customer/{id}/");
        let token = token_with(&app, scope).await;
        for method in [Method::GET, Method::HEAD, Method::OPTIONS] {
            let resp = call(&app, method.clone(), &instance, &token).await;
            if may_read {
                assert_eq!(resp.status, 200, "{scope} {method}");
            } else {
                assert_eq!(resp.status, 403, "{scope} {method}");
                assert_eq!(
                    resp.header("www-authenticate"),
                    Some("Bearer realm=\"api\", error=\"insufficient_scope\", scope=\"crm:read read\"")
                );
                if method == Method::GET {
                    assert_eq!(
                        resp.body,
                        json!({"detail": "You do not have permission to perform this action."})
                    );
                }
            }
        }
        for method in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
            let path = if method == Method::POST {
                "/api/crm/customer/"
            } else {
                instance.as_str()
            };
            let resp = call(&app, method.clone(), path, &token).await;
            if may_write {
                assert!(resp.status < 300, "{scope} {method}: {}", resp.status);
            } else {
                assert_eq!(resp.status, 403, "{scope} {method}");
                assert_eq!(
                    resp.header("www-authenticate"),
                    Some("Bearer realm=\"api\", error=\"insufficient_scope\", scope=\"crm:write write\"")
                );
            }
        }
    }
}

/// `template` with every `{parameter}` replaced by 1.
fn with_ids(template: &str) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        out.push('1');
        let end = rest[start..].find('}').expect("a closed parameter");
        rest = &rest[start + end + 1..];
    }
    out.push_str(rest);
    assert!(!out.contains('}'), "{template}");
    out
}

#[actix_web::test]
async fn every_registered_route_refuses_a_request_without_a_token() {
    let app = spawn!();
    assert!(API_ROUTES.len() >= 9);
    for route in API_ROUTES {
        let path = format!("/api/crm{}/", with_ids(route.path));
        for method in route.allow.split(", ") {
            let method = Method::from_bytes(method.as_bytes()).unwrap();
            let resp = app.send(app.anonymous(method.clone(), &path)).await;
            assert_eq!(resp.status, 401, "{method} {path}");
            assert_eq!(
                resp.header("www-authenticate"),
                Some("Bearer realm=\"api\""),
                "{method} {path}"
            );
        }
        // The route exists and answers the methods it lists.
        let resp = app
            .send(app.request(Method::OPTIONS, &path))
            .await
            .expect(200);
        assert_eq!(resp.header("allow"), Some(route.allow), "{path}");
    }
    // Unknown paths under /api/crm/ are guarded too.
    app.send(app.anonymous(Method::GET, "/api/crm/nothing-here/"))
        .await
        .expect(401);
}

#[actix_web::test]
async fn health_and_oauth_routes_are_public() {
    let app = spawn!();
    app.send(app.anonymous(Method::GET, "/healthz"))
        .await
        .expect(200);
    app.send(app.anonymous(Method::GET, "/readyz"))
        .await
        .expect(200);
    form(
        &app,
        "/oauth/token/",
        Some(&app.oauth_client),
        &[("grant_type", "client_credentials")],
    )
    .await
    .expect(200);
}

#[actix_web::test]
async fn revocation_takes_effect_on_the_next_request() {
    let app = spawn!();
    let token = app.fetch_token(&app.oauth_client, &["crm:read"]).await;
    call(&app, Method::GET, "/api/crm/customer/", &token)
        .await
        .expect(200);
    let resp = form(
        &app,
        "/oauth/revoke_token/",
        Some(&app.oauth_client),
        &[("token", &token)],
    )
    .await
    .expect(200);
    assert_eq!(resp.header("cache-control"), Some("no-store"));
    let resp = call(&app, Method::GET, "/api/crm/customer/", &token)
        .await
        .expect(401);
    assert!(resp
        .header("www-authenticate")
        .unwrap()
        .contains("invalid_token"));
    // Revoking it again, or an unknown token, is still 200.
    form(
        &app,
        "/oauth/revoke_token/",
        Some(&app.oauth_client),
        &[("token", &token)],
    )
    .await
    .expect(200);
    form(
        &app,
        "/oauth/revoke_token/",
        Some(&app.oauth_client),
        &[("token", "unknown")],
    )
    .await
    .expect(200);
}

#[actix_web::test]
async fn a_client_cannot_revoke_another_clients_token() {
    let app = spawn!();
    let other = app.register_client("other", "crm:read").await;
    form(
        &app,
        "/oauth/revoke_token/",
        Some(&other),
        &[("token", &app.token)],
    )
    .await
    .expect(200);
    call(&app, Method::GET, "/api/crm/customer/", &app.token)
        .await
        .expect(200);
}

#[actix_web::test]
async fn revocation_needs_client_authentication_and_a_token() {
    let app = spawn!();
    let resp = form(&app, "/oauth/revoke_token/", None, &[("token", &app.token)])
        .await
        .expect(401);
    assert_oauth_error(&resp, "invalid_client", &app);
    let resp = form(&app, "/oauth/revoke_token/", Some(&app.oauth_client), &[])
        .await
        .expect(400);
    assert_oauth_error(&resp, "invalid_request", &app);
    call(&app, Method::GET, "/api/crm/customer/", &app.token)
        .await
        .expect(200);
}

#[actix_web::test]
async fn introspection_reports_active_tokens_and_nothing_else() {
    let app = spawn!();
    let resp = form(
        &app,
        "/oauth/introspect/",
        Some(&app.oauth_client),
        &[("token", &app.token)],
    )
    .await
    .expect(200);
    let body = resp.body.as_object().unwrap();
    assert_eq!(body["active"], true);
    assert_eq!(body["scope"], "crm:read crm:write");
    assert_eq!(body["client_id"], app.oauth_client.id.as_str());
    assert_eq!(body["token_type"], "Bearer");
    let (exp, iat) = (body["exp"].as_i64().unwrap(), body["iat"].as_i64().unwrap());
    assert!((exp - iat - 36000).abs() <= 1);
    let resp = form(
        &app,
        "/oauth/introspect/",
        Some(&app.oauth_client),
        &[("token", "unknown")],
    )
    .await
    .expect(200);
    assert_eq!(resp.body, json!({"active": false}));
    form(
        &app,
        "/oauth/revoke_token/",
        Some(&app.oauth_client),
        &[("token", &app.token)],
    )
    .await
    .expect(200);
    let resp = form(
        &app,
        "/oauth/introspect/",
        Some(&app.oauth_client),
        &[("token", &app.token)],
    )
    .await
    .expect(200);
    assert_eq!(resp.body, json!({"active": false}));
    let resp = form(&app, "/oauth/introspect/", None, &[("token", "x")])
        .await
        .expect(401);
    assert_oauth_error(&resp, "invalid_client", &app);
}

#[actix_web::test]
async fn deleting_a_client_revokes_its_tokens() {
    let app = spawn!();
    let client = app.register_client("doomed", "crm:read").await;
    let token = app.fetch_token(&client, &["crm:read"]).await;
    call(&app, Method::GET, "/api/crm/customer/", &token)
        .await
        .expect(200);
    app.delete_client(&client.id).await;
    call(&app, Method::GET, "/api/crm/customer/", &token)
        .await
        .expect(401);
    form(
        &app,
        "/oauth/token/",
        Some(&client),
        &[("grant_type", "client_credentials")],
    )
    .await
    .expect(401);
}

#[actix_web::test]
async fn no_secret_or_token_appears_in_any_log_line() {
    let sink = crm_tests::capture_logs();
    let app = spawn!();
    let client = app.register_client("logged", "crm:read crm:write").await;
    let token = app.fetch_token(&client, &["crm:read", "crm:write"]).await;
    call(&app, Method::GET, "/api/crm/customer/?search=x", &token)
        .await
        .expect(200);
    call(&app, Method::POST, "/api/crm/customer/", &token)
        .await
        .expect(201);
    form(
        &app,
        "/oauth/introspect/",
        Some(&client),
        &[("token", &token)],
    )
    .await
    .expect(200);
    form(
        &app,
        "/oauth/revoke_token/",
        Some(&client),
        &[("token", &token)],
    )
    .await
    .expect(200);
    call(&app, Method::GET, "/api/crm/customer/", &token)
        .await
        .expect(401);
    let wrong = TestClient {
        id: client.id.clone(),
        secret: format!("{}x", client.secret),
    };
    form(
        &app,
        "/oauth/token/",
        Some(&wrong),
        &[("grant_type", "client_credentials")],
    )
    .await
    .expect(401);
    let logs = sink.contents();
    assert!(logs.contains("request"), "the request log is captured");
    for secret in [&client.secret, &token, &app.token, &app.oauth_client.secret] {
        assert!(
            !logs.contains(secret.as_str()),
            "a secret leaked into the logs"
        );
    }
}
