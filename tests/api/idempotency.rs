//! Idempotency keys (contract section 7): `Idempotency-Key` on the writes
//! under `/api/crm/`.

use std::io::Write;
use std::time::Duration;

use crm_tests::{json, Method, Resp, TestApp, Value};

const CUSTOMERS: &str = "/api/crm/customer/";

/// A request with the default token and `key`.
fn keyed(app: &TestApp, method: Method, path: &str, key: &str) -> reqwest::RequestBuilder {
    app.request(method, path).header("Idempotency-Key", key)
}

/// POST `body` (as these bytes) to `path` with `key`.
async fn post_raw(app: &TestApp, path: &str, key: &str, body: &str) -> Resp {
    app.send(
        keyed(app, Method::POST, path, key)
            .header("Content-Type", "application/json")
            .body(body.to_owned()),
    )
    .await
}

fn replayed(r: &Resp) -> bool {
    r.header("idempotent-replayed") == Some("true")
}

async fn customer_count(app: &TestApp) -> u64 {
    app.get(CUSTOMERS).await.expect(200).body["count"]
        .as_u64()
        .unwrap()
}

#[actix_web::test]
async fn a_retried_create_gets_the_first_answer_byte_for_byte_and_runs_once() {
    let app = spawn!();
    let body = r#"{"full_name": "Ann", "mobile": "13800000001"}"#;
    let first = post_raw(&app, CUSTOMERS, "create-ann", body)
        .await
        .expect(201);
    assert!(!replayed(&first), "a first answer is no replay");
    let again = post_raw(&app, CUSTOMERS, "create-ann", body)
        .await
        .expect(201);
    assert!(replayed(&again));
    assert_eq!(again.text, first.text, "byte for byte");
    assert_eq!(again.header("content-type"), first.header("content-type"));
    assert_eq!(customer_count(&app).await, 1);
    // The replay wrote no event: one customer.created, nothing after it.
    let marker = app.customer_id(json!({"full_name": "Marker"})).await;
    for _ in 0..500 {
        let feed = app.get("/api/crm/event/?limit=1000").await.expect(200).body;
        let results = feed["results"].as_array().unwrap();
        if results
            .last()
            .is_some_and(|e| e["data"]["object"]["id"] == marker)
        {
            assert_eq!(results.len(), 2, "{results:#?}");
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the marker never appeared in the feed");
}

#[actix_web::test]
async fn a_replay_is_the_first_answer_even_after_the_resource_changed() {
    let app = spawn!();
    let created = post_raw(&app, CUSTOMERS, "k1", r#"{"full_name": "Ann"}"#)
        .await
        .expect(201);
    let id = created.body["id"].as_i64().unwrap();
    let path = format!("/api/crm/customer/{id}/");
    let deleted = app
        .send(keyed(&app, Method::DELETE, &path, "k2"))
        .await
        .expect(204);
    assert!(!replayed(&deleted));
    let again = app
        .send(keyed(&app, Method::DELETE, &path, "k2"))
        .await
        .expect(204);
    assert!(replayed(&again), "a replayed DELETE is 204, not 404");
    assert_eq!(again.text, "");
    let recreated = post_raw(&app, CUSTOMERS, "k1", r#"{"full_name": "Ann"}"#)
        .await
        .expect(201);
    assert!(replayed(&recreated));
    assert_eq!(recreated.text, created.text);
    app.get(&path).await.expect(404);
}

#[actix_web::test]
async fn client_errors_are_kept_and_replayed() {
    let app = spawn!();
    let bad = post_raw(&app, CUSTOMERS, "bad", r#"{"gender": "x"}"#)
        .await
        .expect(400);
    let again = post_raw(&app, CUSTOMERS, "bad", r#"{"gender": "x"}"#)
        .await
        .expect(400);
    assert!(replayed(&again));
    assert_eq!(again.body, bad.body);
    let missing = app
        .send(keyed(&app, Method::PATCH, "/api/crm/customer/987654/", "gone").json(&json!({})))
        .await
        .expect(404);
    let again = app
        .send(keyed(&app, Method::PATCH, "/api/crm/customer/987654/", "gone").json(&json!({})))
        .await
        .expect(404);
    assert!(replayed(&again));
    assert_eq!(again.text, missing.text);
}

#[actix_web::test]
async fn the_key_with_another_request_is_422() {
    let app = spawn!();
    post_raw(&app, CUSTOMERS, "k", r#"{"full_name":"Ann"}"#)
        .await
        .expect(201);
    for (method, path, body) in [
        (Method::POST, CUSTOMERS, r#"{"full_name": "Ann"}"#),
        (
            Method::POST,
            "/api/crm/customer/?x=1",
            r#"{"full_name":"Ann"}"#,
        ),
        (
            Method::DELETE,
            "/api/crm/customer/1/",
            r#"{"full_name":"Ann"}"#,
        ),
        (Method::POST, "/api/crm/segment/", r#"{"full_name":"Ann"}"#),
    ] {
        let r = app
            .send(
                keyed(&app, method.clone(), path, "k")
                    .header("Content-Type", "application/json")
                    .body(body),
            )
            .await
            .expect(422);
        assert_eq!(
            r.body,
            json!({"detail": "Idempotency-Key was used with a different request."}),
            "{method} {path} {body}"
        );
    }
    // A trailing slash is the same path.
    let same = post_raw(&app, "/api/crm/customer", "k", r#"{"full_name":"Ann"}"#)
        .await
        .expect(201);
    assert!(replayed(&same));
    assert_eq!(customer_count(&app).await, 1);
}

#[actix_web::test]
async fn keys_belong_to_the_oauth_client_not_the_token() {
    let app = spawn!();
    let body = r#"{"full_name": "Ann"}"#;
    let first = post_raw(&app, CUSTOMERS, "shared", body).await.expect(201);
    // Another token of the same client: the same key.
    let fresh = app
        .fetch_token(&app.oauth_client, &["crm:read", "crm:write"])
        .await;
    let again = app
        .send(
            app.client
                .post(app.url(CUSTOMERS))
                .bearer_auth(&fresh)
                .header("Idempotency-Key", "shared")
                .header("Content-Type", "application/json")
                .body(body),
        )
        .await
        .expect(201);
    assert!(replayed(&again));
    assert_eq!(again.text, first.text);
    // Another client: another key.
    let other = app.register_client("other", "crm:read crm:write").await;
    let token = app.fetch_token(&other, &["crm:write"]).await;
    let theirs = app
        .send(
            app.client
                .post(app.url(CUSTOMERS))
                .bearer_auth(&token)
                .header("Idempotency-Key", "shared")
                .header("Content-Type", "application/json")
                .body(body),
        )
        .await
        .expect(201);
    assert!(!replayed(&theirs));
    assert_ne!(theirs.body["id"], first.body["id"]);
}

#[actix_web::test]
async fn malformed_keys_are_400_and_nothing_runs() {
    let app = spawn!();
    let long = "k".repeat(256);
    for value in ["", long.as_str(), "tab\there", "caf\u{e9}"] {
        let header = reqwest::header::HeaderValue::from_bytes(value.as_bytes()).unwrap();
        let r = app
            .send(
                app.request(Method::POST, CUSTOMERS)
                    .header("Idempotency-Key", header)
                    .json(&json!({"full_name": "Ann"})),
            )
            .await
            .expect(400);
        assert_eq!(
            r.body.as_object().unwrap().keys().collect::<Vec<_>>(),
            ["Idempotency-Key"],
            "{value:?}: {}",
            r.text
        );
    }
    let twice = app
        .send(
            app.request(Method::POST, CUSTOMERS)
                .header("Idempotency-Key", "a")
                .header("Idempotency-Key", "b")
                .json(&json!({"full_name": "Ann"})),
        )
        .await
        .expect(400);
    assert!(twice.body["Idempotency-Key"].is_array());
    assert_eq!(customer_count(&app).await, 0);
    let exact = "k".repeat(255);
    post_raw(&app, CUSTOMERS, &exact, r#"{"full_name": "Ann"}"#)
        .await
        .expect(201);
    // Reads ignore the header.
    for _ in 0..2 {
        let r = app
            .send(keyed(&app, Method::GET, CUSTOMERS, "read"))
            .await
            .expect(200);
        assert!(!replayed(&r));
    }
}

#[actix_web::test]
async fn earlier_refusals_leave_the_key_unused() {
    let app = spawn!(|s| s.max_body_bytes = 64);
    let big = format!(r#"{{"full_name": "{}"}}"#, "A".repeat(100));
    post_raw(&app, CUSTOMERS, "k", &big).await.expect(413);
    app.send(
        app.anonymous(Method::POST, CUSTOMERS)
            .header("Idempotency-Key", "k")
            .json(&json!({"full_name": "Ann"})),
    )
    .await
    .expect(401);
    // The key is still unused: another request with it runs.
    let r = post_raw(&app, CUSTOMERS, "k", r#"{"full_name": "Ann"}"#)
        .await
        .expect(201);
    assert!(!replayed(&r));
}

#[actix_web::test]
async fn concurrent_requests_with_one_key_write_once() {
    let app = spawn!();
    let body = r#"{"full_name": "Raced"}"#;
    let sends = (0..8).map(|_| post_raw(&app, CUSTOMERS, "raced", body));
    let answers = futures_util::future::join_all(sends).await;
    let mut first = 0;
    for r in &answers {
        match r.status {
            201 if !replayed(r) => first += 1,
            201 => {}
            409 => assert_eq!(
                r.body,
                json!({"detail": "A request with this Idempotency-Key is being processed."})
            ),
            other => panic!("unexpected {other}: {}", r.text),
        }
    }
    assert_eq!(first, 1, "one request ran");
    assert_eq!(customer_count(&app).await, 1);
}

#[actix_web::test]
async fn a_retry_after_a_dropped_connection_gets_the_first_answer() {
    let app = spawn!();
    let body = r#"{"full_name": "Dropped"}"#;
    let addr = app.base.trim_start_matches("http://").to_owned();
    let request = format!(
        "POST {CUSTOMERS} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\n\
         Idempotency-Key: dropped\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        app.token,
        body.len()
    );
    let mut socket = std::net::TcpStream::connect(&addr).unwrap();
    socket.write_all(request.as_bytes()).unwrap();
    // The write lands; the client never reads its answer (a timeout, a
    // lost connection) and goes away.
    for _ in 0..500 {
        if customer_count(&app).await == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(socket);
    let mut retry = None;
    for _ in 0..500 {
        let r = post_raw(&app, CUSTOMERS, "dropped", body).await;
        if r.status != 409 {
            retry = Some(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let retry = retry.expect("the first request finished").expect(201);
    assert!(replayed(&retry), "the retry gets the first answer");
    assert_eq!(customer_count(&app).await, 1);
}

#[actix_web::test]
async fn segment_writes_are_kept_whole_and_replayed() {
    let app = spawn!();
    let a = app.customer_id(json!({"full_name": "A"})).await;
    let s = app.segment_id("S").await;
    let path = format!("/api/crm/segment/{s}/segment_customer/");
    let body = format!(r#"[{{"customer_id": {a}}}]"#);
    let first = post_raw(&app, &path, "add", &body).await.expect(200);
    assert_eq!(first.body["customers"][0]["id"], a);
    let again = post_raw(&app, &path, "add", &body).await.expect(200);
    assert!(replayed(&again));
    assert_eq!(again.text, first.text);
}

#[actix_web::test]
async fn an_expired_key_runs_as_new() {
    let app = spawn!();
    post_raw(&app, CUSTOMERS, "old", r#"{"full_name": "Ann"}"#)
        .await
        .expect(201);
    // What a day's wait does.
    app.sql_execute(
        "UPDATE idempotency_keys SET started_at = '2020-01-01T00:00:00Z', \
         expires_at = '2020-01-02T00:00:00Z'",
    );
    let r = post_raw(&app, CUSTOMERS, "old", r#"{"full_name": "Bob"}"#)
        .await
        .expect(201);
    assert!(!replayed(&r));
    assert_eq!(r.body["full_name"], "Bob");
    assert_eq!(customer_count(&app).await, 2);
    let _: Value = r.body;
}

#[actix_web::test]
async fn writes_a_resource_does_not_take_and_other_methods_ignore_the_key() {
    let app = spawn!();
    post_raw(&app, CUSTOMERS, "used", r#"{"full_name": "Ann"}"#)
        .await
        .expect(201);
    // A method the resource does not answer is a 405 whatever the key: no
    // write can happen, so nothing is kept and the key is not compared.
    let path = "/api/crm/customer/1/coupons/5/";
    for _ in 0..2 {
        let r = post_raw(&app, path, "used", "{}").await.expect(405);
        assert!(!replayed(&r));
        assert_eq!(r.header("allow"), Some("DELETE, OPTIONS"));
    }
    let trace = Method::from_bytes(b"TRACE").unwrap();
    for _ in 0..2 {
        let r = app
            .send(keyed(&app, trace.clone(), CUSTOMERS, "used"))
            .await
            .expect(405);
        assert!(
            !replayed(&r),
            "methods other than the writes ignore the key"
        );
    }
}

/// A claim of `key` for `body` POSTed to the customer list, as a request
/// still running (or stopped) since `started` would have left it.
fn claim_in_flight(app: &TestApp, key: &str, body: &str, started: time::OffsetDateTime) {
    let fingerprint =
        crm_domain::idempotency::Fingerprint::of("POST", "/api/crm/customer", body.as_bytes());
    let at = |t: time::OffsetDateTime| {
        let t = t.to_offset(time::UtcOffset::UTC);
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
            t.microsecond()
        )
    };
    app.sql_execute(&format!(
        "INSERT INTO idempotency_keys (client_id, key, fingerprint, claim, started_at, expires_at) \
         VALUES ('{}', '{key}', '{}', 42, '{}', '{}')",
        app.oauth_client.id,
        fingerprint.to_hex(),
        at(started),
        at(started + time::Duration::days(1)),
    ));
}

#[actix_web::test]
async fn a_request_still_running_is_409_until_its_claim_is_stale() {
    let app = spawn!();
    let body = r#"{"full_name": "Busy"}"#;
    claim_in_flight(&app, "busy", body, time::OffsetDateTime::now_utc());
    let r = post_raw(&app, CUSTOMERS, "busy", body).await.expect(409);
    assert_eq!(
        r.body,
        json!({"detail": "A request with this Idempotency-Key is being processed."})
    );
    let other = post_raw(&app, CUSTOMERS, "busy", r#"{"full_name": "Else"}"#)
        .await
        .expect(422);
    assert!(!replayed(&other));
    assert_eq!(customer_count(&app).await, 0, "nothing ran");
    // A claim whose request began more than 60 s ago never finished (its
    // server stopped): the next request with the key runs.
    let stopped = time::OffsetDateTime::now_utc() - time::Duration::seconds(61);
    claim_in_flight(&app, "stopped", body, stopped);
    let r = post_raw(&app, CUSTOMERS, "stopped", body).await.expect(201);
    assert!(!replayed(&r));
    let again = post_raw(&app, CUSTOMERS, "stopped", body).await.expect(201);
    assert!(replayed(&again));
    assert_eq!(customer_count(&app).await, 1);
}

#[actix_web::test]
async fn the_key_is_checked_before_the_body_size_and_options_ignore_it() {
    let app = spawn!(|s| s.max_body_bytes = 64);
    let big = format!(r#"{{"full_name": "{}"}}"#, "A".repeat(100));
    let r = post_raw(&app, CUSTOMERS, "", &big).await.expect(400);
    assert!(r.body["Idempotency-Key"].is_array(), "{}", r.text);
    for _ in 0..2 {
        let r = app
            .send(keyed(&app, Method::OPTIONS, CUSTOMERS, "opt"))
            .await
            .expect(200);
        assert!(!replayed(&r));
        let r = app
            .send(keyed(&app, Method::HEAD, CUSTOMERS, "opt"))
            .await
            .expect(200);
        assert!(!replayed(&r));
    }
}

#[actix_web::test]
async fn a_throttled_request_leaves_its_key_unused() {
    let app = spawn!(|s| {
        s.rate_limit_per_second = 1;
        s.rate_limit_burst = 1;
    });
    post_raw(&app, CUSTOMERS, "first", r#"{"full_name": "Ann"}"#)
        .await
        .expect(201);
    let throttled = post_raw(&app, CUSTOMERS, "second", r#"{"full_name": "Bob"}"#)
        .await
        .expect(429);
    assert!(!replayed(&throttled));
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let r = post_raw(&app, CUSTOMERS, "second", r#"{"full_name": "Bob"}"#)
        .await
        .expect(201);
    assert!(!replayed(&r), "the 429 was not kept: the request ran");
}
