//! What a stranger, or a client gone wrong, can do to the server must be
//! bounded: text the database cannot store, made-up methods, slow bodies,
//! failed OAuth authentication, token hoarding, foreign Host headers.

use std::time::{Duration, Instant};

use crm_tests::{json, Method, Resp, TestApp, TestClient};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// POSTs a form to an OAuth endpoint, with HTTP Basic for `basic`.
async fn oauth_form(
    app: &TestApp,
    path: &str,
    basic: Option<(&str, &str)>,
    fields: &[(&str, &str)],
) -> Resp {
    let mut builder = app.anonymous(Method::POST, path).form(fields);
    if let Some((id, secret)) = basic {
        builder = builder.basic_auth(id, Some(secret));
    }
    app.send(builder).await
}

const OAUTH_PATHS: [&str; 3] = [
    "/oauth/token/",
    "/oauth/introspect/",
    "/oauth/revoke_token/",
];

#[actix_web::test]
async fn text_the_database_cannot_store_never_reaches_it_through_oauth() {
    // Every attempt here fails on purpose: no failure throttle.
    let app = spawn!(|s| s.oauth_failures_per_minute = 0);
    let own = app.oauth_client.clone();
    for path in OAUTH_PATHS {
        for bad_id in ["a\0b", "\0", "é", "a b"] {
            let fields = [
                ("grant_type", "client_credentials"),
                ("client_id", bad_id),
                ("client_secret", "x"),
                ("token", "t"),
            ];
            let resp = oauth_form(&app, path, None, &fields).await;
            assert_eq!(resp.status, 401, "{path} form id {bad_id:?}: {}", resp.text);
            assert_eq!(resp.body["error"], "invalid_client");
            let fields = [("grant_type", "client_credentials"), ("token", "t")];
            let resp = oauth_form(&app, path, Some((bad_id, "x")), &fields).await;
            assert_eq!(
                resp.status, 401,
                "{path} basic id {bad_id:?}: {}",
                resp.text
            );
        }
        // A NUL in the secret, the token or the scope is no fault either.
        let fields = [("grant_type", "client_credentials"), ("token", "t")];
        let resp = oauth_form(&app, path, Some((&own.id, "se\0cret")), &fields).await;
        assert_eq!(resp.status, 401, "{path}: {}", resp.text);
    }
    let basic = Some((own.id.as_str(), own.secret.as_str()));
    let resp = oauth_form(&app, "/oauth/introspect/", basic, &[("token", "a\0b")])
        .await
        .expect(200);
    assert_eq!(resp.body, json!({"active": false}));
    oauth_form(&app, "/oauth/revoke_token/", basic, &[("token", "a\0b")])
        .await
        .expect(200);
    let fields = [("grant_type", "client_credentials"), ("scope", "read\0")];
    let resp = oauth_form(&app, "/oauth/token/", basic, &fields).await;
    assert_eq!(resp.status, 400, "{}", resp.text);
    assert_eq!(resp.body["error"], "invalid_scope");
    // The server still answers normally.
    app.get("/api/crm/customer/").await.expect(200);
}

#[actix_web::test]
async fn text_the_database_cannot_store_is_a_400_in_every_field_and_filter() {
    let app = spawn!();
    let customer = app.customer_id(json!({"full_name": "Target"})).await;
    let segment = app.segment_id("Segment").await;
    let nul = "a\u{0}b";
    let customer_fields = [
        "full_name",
        "email",
        "mobile",
        "gender",
        "birthday",
        "note",
        "avatar",
        "referral_code",
        "multipass_identifier",
    ];
    for field in customer_fields {
        let resp = app.post("/api/crm/customer/", &json!({field: nul})).await;
        assert_eq!(resp.status, 400, "create {field}: {}", resp.text);
        let resp = app
            .patch(
                &format!("/api/crm/customer/{customer}/"),
                &json!({field: nul}),
            )
            .await;
        assert_eq!(resp.status, 400, "patch {field}: {}", resp.text);
    }
    for body in [
        json!({"full_name": "x", "tags": [nul]}),
        json!({"full_name": "x", "metafields": [{"namespace": nul, "key": "k", "value": "v"}]}),
        json!({"full_name": "x", "metafields": [{"namespace": "n", "key": nul, "value": "v"}]}),
        json!({"full_name": "x", "metafields": [{"namespace": "n", "key": "k", "value": nul}]}),
        json!({"full_name": "x", "profile": {"source_name": nul}}),
        json!({"full_name": "x", "profile": {"campaign_term": nul}}),
    ] {
        let resp = app.post("/api/crm/customer/", &body).await;
        assert!(
            resp.status == 400,
            "create {body}: {} {}",
            resp.status,
            resp.text
        );
    }
    let address = json!({
        "full_name": "Ding", "mobile": "13821761807", "province": "p",
        "city": "c", "district": "d", "address1": "1 Main St",
    });
    for field in [
        "full_name",
        "mobile",
        "place_code",
        "province",
        "city",
        "district",
        "address1",
        "address2",
        "zip",
    ] {
        let mut body = address.clone();
        body[field] = json!(nul);
        let resp = app
            .post(&format!("/api/crm/customer/{customer}/addresses/"), &body)
            .await;
        assert_eq!(resp.status, 400, "address {field}: {}", resp.text);
    }
    let resp = app.post("/api/crm/segment/", &json!({"title": nul})).await;
    assert_eq!(resp.status, 400, "segment title: {}", resp.text);
    let resp = app
        .patch(
            &format!("/api/crm/segment/{segment}/"),
            &json!({"title": nul}),
        )
        .await;
    assert_eq!(resp.status, 400, "segment rename: {}", resp.text);
    for param in [
        "search",
        "tag",
        "email",
        "mobile",
        "ordering",
        "id",
        "id__in",
        "coupon",
        "coupon__exclude",
        "segment",
        "segment__exclude",
        "updated_at__gte",
        "updated_at__lte",
        "created_at__gte",
        "created_at__lte",
        "page",
    ] {
        let resp = app.get(&format!("/api/crm/customer/?{param}=a%00b")).await;
        assert!(
            (400..500).contains(&resp.status),
            "filter {param}: {} {}",
            resp.status,
            resp.text
        );
    }
    let resp = app
        .delete(&format!(
            "/api/crm/segment/{segment}/segment_customer/?customer__in=1%00"
        ))
        .await;
    assert_eq!(resp.status, 400, "customer__in: {}", resp.text);
    app.get("/api/crm/customer/").await.expect(200);
}

#[actix_web::test]
async fn made_up_methods_add_no_metric_label_sets() {
    let app = spawn!();
    let long = "X".repeat(2000);
    let mut methods: Vec<String> = (0..40).map(|i| format!("MADEUP{i}")).collect();
    methods.push(long.clone());
    for name in &methods {
        let method = Method::from_bytes(name.as_bytes()).expect("a valid method token");
        for path in ["/healthz", "/api/crm/customer/", "/nowhere/"] {
            let resp = app.send(app.anonymous(method.clone(), path)).await;
            assert!(
                resp.status >= 400 && resp.status < 500,
                "{path}: {}",
                resp.status
            );
        }
    }
    let text = app
        .send(app.anonymous(Method::GET, "/metrics"))
        .await
        .expect(200)
        .text;
    assert!(!text.contains("MADEUP"), "a made-up method became a label");
    assert!(!text.contains(&long));
    assert!(text.contains(r#"method="other""#), "{text}");
    assert!(
        text.len() < 64 * 1024,
        "/metrics grew to {} bytes",
        text.len()
    );
}

/// Sends a request head announcing a 100-byte body, then trickles one byte
/// every 200 ms; returns the first response line and how long it took.
async fn trickle(
    app: &TestApp,
    path: &str,
    content_type: &str,
    bearer: Option<&str>,
) -> (String, Duration) {
    let addr = app.url("").trim_start_matches("http://").to_owned();
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let auth = bearer.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Content-Type: {content_type}\r\nContent-Length: 100\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.expect("send head");
    let started = Instant::now();
    let mut buf = vec![0u8; 4096];
    loop {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "{path}: held past any deadline"
        );
        match tokio::time::timeout(Duration::from_millis(200), stream.read(&mut buf)).await {
            Ok(Ok(0)) => return (String::new(), started.elapsed()),
            Ok(Ok(n)) => {
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                let line = text.lines().next().unwrap_or("").to_owned();
                return (line, started.elapsed());
            }
            Ok(Err(_)) => return (String::new(), started.elapsed()),
            Err(_) => {
                // Still waiting: one more byte of body.
                if stream.write_all(b" ").await.is_err() {
                    return (String::new(), started.elapsed());
                }
            }
        }
    }
}

#[actix_web::test]
async fn a_body_that_trickles_in_gets_408_at_the_deadline() {
    let app = spawn!(|s| s.body_timeout_seconds = 1);
    let token = app.token.clone();
    let cases = [
        ("/oauth/token/", "application/x-www-form-urlencoded", None),
        (
            "/api/crm/customer/",
            "application/json",
            Some(token.as_str()),
        ),
    ];
    for (path, content_type, bearer) in cases {
        let (line, took) = trickle(&app, path, content_type, bearer).await;
        assert!(line.contains(" 408 "), "{path}: {line:?}");
        assert!(
            took >= Duration::from_millis(900),
            "{path}: answered after {took:?}"
        );
        assert!(
            took < Duration::from_secs(8),
            "{path}: answered after {took:?}"
        );
    }
    // A body sent at once is unaffected.
    app.post("/api/crm/customer/", &json!({"full_name": "Prompt"}))
        .await
        .expect(201);
}

#[actix_web::test]
async fn failed_client_authentication_is_throttled_per_client_and_address() {
    let app = spawn!(|s| s.oauth_failures_per_minute = 3);
    let victim = app.register_client("victim", "crm:read").await;
    let grant = [("grant_type", "client_credentials")];
    for _ in 0..3 {
        let resp = oauth_form(&app, "/oauth/token/", Some((&victim.id, "wrong")), &grant).await;
        assert_eq!(resp.status, 401, "{}", resp.text);
    }
    // Past the limit even the right secret is refused, before it is checked.
    let resp = oauth_form(
        &app,
        "/oauth/token/",
        Some((&victim.id, &victim.secret)),
        &grant,
    )
    .await;
    assert_eq!(resp.status, 429, "{}", resp.text);
    let wait: u64 = resp.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "Retry-After {wait}");
    assert!(resp.body["detail"].as_str().unwrap().contains("throttled"));
    // The address is throttled too, for every client and endpoint.
    let other: TestClient = app.oauth_client.clone();
    for path in OAUTH_PATHS {
        let fields = [("grant_type", "client_credentials"), ("token", "t")];
        let resp = oauth_form(&app, path, Some((&other.id, &other.secret)), &fields).await;
        assert_eq!(resp.status, 429, "{path}: {}", resp.text);
    }
    // Bearer requests are not client authentication: they go on.
    app.get("/api/crm/customer/").await.expect(200);
}

#[actix_web::test]
async fn successful_authentication_is_not_throttled() {
    let app = spawn!(|s| s.oauth_failures_per_minute = 2);
    let client = app.oauth_client.clone();
    for _ in 0..6 {
        app.fetch_token(&client, &["crm:read"]).await;
    }
}

#[actix_web::test]
async fn a_client_keeps_at_most_the_configured_number_of_live_tokens() {
    let app = spawn!(|s| s.max_tokens_per_client = 3);
    let client = app.register_client("hoarder", "crm:read").await;
    let mut tokens = Vec::new();
    for _ in 0..5 {
        tokens.push(app.fetch_token(&client, &["crm:read"]).await);
    }
    for (i, token) in tokens.iter().enumerate() {
        let resp = app
            .send(
                app.anonymous(Method::GET, "/api/crm/customer/")
                    .bearer_auth(token),
            )
            .await;
        let expected = if i < 2 { 401 } else { 200 };
        assert_eq!(resp.status, expected, "token {i}: {}", resp.text);
    }
    let stored = app.sql_count(&format!(
        "SELECT COUNT(*) AS n FROM oauth_tokens WHERE client_id = '{}'",
        client.id
    ));
    assert_eq!(stored, 3);
    // Other clients' tokens are not touched.
    app.get("/api/crm/customer/").await.expect(200);
}

#[actix_web::test]
async fn a_client_introspects_only_its_own_tokens() {
    let app = spawn!();
    let other = app.register_client("other", "crm:read").await;
    let own = app.oauth_client.clone();
    let resp = oauth_form(
        &app,
        "/oauth/introspect/",
        Some((&other.id, &other.secret)),
        &[("token", &app.token)],
    )
    .await
    .expect(200);
    assert_eq!(
        resp.body,
        json!({"active": false}),
        "another client's token"
    );
    let resp = oauth_form(
        &app,
        "/oauth/introspect/",
        Some((&own.id, &own.secret)),
        &[("token", &app.token)],
    )
    .await
    .expect(200);
    assert_eq!(resp.body["active"], true);
}

#[actix_web::test]
async fn only_allowed_hosts_are_served_when_configured() {
    let app = spawn!(|s| {
        // The suite itself talks to 127.0.0.1.
        s.allowed_hosts = vec![
            "api.shop.test".into(),
            ".example.com".into(),
            "127.0.0.1".into(),
        ];
    });
    for host in ["evil.test", "api.shop.test.evil.test", "example.org"] {
        let resp = app
            .send(
                app.request(Method::GET, "/api/crm/customer/")
                    .header("Host", host),
            )
            .await;
        assert_eq!(resp.status, 400, "{host}: {}", resp.text);
        assert!(resp.body["detail"].is_string());
        assert!(
            !resp.text.contains(host),
            "the refusal does not echo the host"
        );
    }
    for _ in 0..2 {
        app.customer_id(json!({"full_name": "Paged"})).await;
    }
    for host in ["api.shop.test", "API.shop.test:8443", "eu.example.com"] {
        let resp = app
            .send(
                app.request(Method::GET, "/api/crm/customer/?page_size=1")
                    .header("Host", host),
            )
            .await
            .expect(200);
        let next = resp.body["next"].as_str().unwrap();
        assert!(next.starts_with(&format!("http://{host}/")), "{next}");
    }
}

#[actix_web::test]
async fn with_a_trusted_proxy_the_forwarded_host_must_be_allowed() {
    let app = spawn!(|s| {
        s.trust_proxy = true;
        s.allowed_hosts = vec!["api.shop.test".into(), "127.0.0.1".into()];
    });
    let resp = app
        .send(
            app.request(Method::GET, "/api/crm/customer/")
                .header("Host", "api.shop.test")
                .header("X-Forwarded-Host", "evil.test"),
        )
        .await;
    assert_eq!(resp.status, 400, "{}", resp.text);
    app.send(
        app.request(Method::GET, "/api/crm/customer/")
            .header("X-Forwarded-Host", "api.shop.test"),
    )
    .await
    .expect(200);
}
