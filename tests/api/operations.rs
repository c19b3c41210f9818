//! Operations (API.md section 7 and the production issue): health probes,
//! request ids, metrics, and per-client rate limits.

use crm_tests::{json, Method};

#[actix_web::test]
async fn health_probes_need_no_token() {
    let app = spawn!();
    let resp = app
        .send(app.anonymous(Method::GET, "/healthz"))
        .await
        .expect(200);
    assert_eq!(resp.body["status"], "ok");
    let resp = app
        .send(app.anonymous(Method::GET, "/readyz/"))
        .await
        .expect(200);
    assert_eq!(resp.body["database"], "ok");
}

#[actix_web::test]
async fn every_response_carries_a_request_id() {
    let app = spawn!();
    let a = app.get("/api/crm/customer/").await.expect(200);
    let b = app
        .send(app.anonymous(Method::GET, "/api/crm/customer/"))
        .await
        .expect(401);
    let c = app.get("/nowhere/").await.expect(404);
    let ids: Vec<&str> = [&a, &b, &c]
        .iter()
        .map(|r| r.header("x-request-id").unwrap())
        .collect();
    assert!(ids.iter().all(|id| id.len() >= 16));
    assert!(ids[0] != ids[1] && ids[1] != ids[2]);
}

#[actix_web::test]
async fn a_plain_incoming_request_id_is_kept_and_a_hostile_one_replaced() {
    let app = spawn!();
    let resp = app
        .send(
            app.request(Method::GET, "/api/crm/customer/")
                .header("X-Request-Id", "trace-42.a_b"),
        )
        .await
        .expect(200);
    assert_eq!(resp.header("x-request-id"), Some("trace-42.a_b"));
    let hostile = "a b\"c";
    let resp = app
        .send(
            app.request(Method::GET, "/api/crm/customer/")
                .header("X-Request-Id", hostile),
        )
        .await
        .expect(200);
    assert_ne!(resp.header("x-request-id"), Some(hostile));
}

#[actix_web::test]
async fn metrics_count_requests_by_route_and_status_and_show_the_pool() {
    let app = spawn!();
    let id = app.customer_id(json!({"full_name": "Metered"})).await;
    app.get(&format!("/api/crm/customer/{id}/"))
        .await
        .expect(200);
    app.get("/api/crm/customer/999999/").await.expect(404);
    let resp = app
        .send(app.anonymous(Method::GET, "/metrics"))
        .await
        .expect(200);
    assert!(resp
        .header("content-type")
        .unwrap()
        .starts_with("text/plain"));
    let text = resp.text;
    assert!(
        text.contains(
            r#"http_requests_total{method="GET",route="/api/crm/customer/{id}",status="200"} 1"#
        ),
        "{text}"
    );
    assert!(text.contains(
        r#"http_requests_total{method="GET",route="/api/crm/customer/{id}",status="404"} 1"#
    ));
    assert!(text.contains(
        r#"http_requests_total{method="POST",route="/api/crm/customer",status="201"} 1"#
    ));
    assert!(text.contains("http_request_duration_seconds_bucket{"));
    assert!(
        text.contains(r#"db_pool_connections{state="max"} 4"#),
        "{text}"
    );
}

#[actix_web::test]
async fn rate_limits_are_off_by_default() {
    let app = spawn!();
    for _ in 0..30 {
        app.get("/api/crm/customer/").await.expect(200);
    }
}

#[actix_web::test]
async fn a_client_over_its_rate_gets_429_with_retry_after() {
    let app = spawn!(|s| {
        s.rate_limit_per_second = 1;
        s.rate_limit_burst = 3;
    });
    for _ in 0..3 {
        app.get("/api/crm/customer/").await.expect(200);
    }
    let resp = app.get("/api/crm/customer/").await.expect(429);
    assert_eq!(resp.header("retry-after"), Some("1"));
    assert_eq!(
        resp.body,
        json!({"detail": "Request was throttled. Expected available in 1 seconds."})
    );
    // Another client has its own bucket.
    let other = app.register_client("other", "crm:read").await;
    let token = app.fetch_token(&other, &["crm:read"]).await;
    app.send(
        app.anonymous(Method::GET, "/api/crm/customer/")
            .bearer_auth(&token),
    )
    .await
    .expect(200);
    // And the first client may go on after waiting.
    actix_web::rt::time::sleep(std::time::Duration::from_millis(1100)).await;
    app.get("/api/crm/customer/").await.expect(200);
}
