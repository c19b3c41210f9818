//! Webhook delivery (contract section 9, "Delivery" and "Delivery log"):
//! real receivers on 127.0.0.1, signatures checked by an HMAC written in
//! the test support, retries on a short schedule.

use std::time::{Duration, Instant};

use crm_server::Settings;
use crm_tests::receiver::{signature_is_valid, Receiver, Reply};
use crm_tests::{json, TestApp, Value};

const WEBHOOKS: &str = "/api/crm/webhook/";

/// Private addresses allowed (the receivers are on loopback), attempts
/// time out after a second and are retried after a second, twice.
fn quick(settings: &mut Settings) {
    settings.webhook_allow_private = true;
    settings.webhook_timeout_seconds = 1;
    settings.webhook_retry_schedule = "1,1".into();
}

/// Creates an endpoint; its id and secret.
async fn endpoint(app: &TestApp, url: &str, events: Value) -> (i64, String) {
    let created = app
        .post(WEBHOOKS, &json!({"url": url, "events": events}))
        .await
        .expect(201)
        .body;
    (
        created["id"].as_i64().unwrap(),
        created["secret"].as_str().unwrap().to_string(),
    )
}

/// The delivery log of endpoint `id`, newest first.
async fn log(app: &TestApp, id: i64) -> Vec<Value> {
    app.get(&format!("{WEBHOOKS}{id}/deliveries/?page_size=1000"))
        .await
        .expect(200)
        .body["results"]
        .as_array()
        .unwrap()
        .clone()
}

/// The log of endpoint `id` once `done` holds for it (panics after 15 s).
async fn log_when(app: &TestApp, id: i64, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let started = Instant::now();
    loop {
        let deliveries = log(app, id).await;
        if done(&deliveries) {
            return deliveries;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the delivery log never got there: {deliveries:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn statuses(deliveries: &[Value]) -> Vec<&str> {
    deliveries
        .iter()
        .map(|d| d["status"].as_str().unwrap())
        .collect()
}

/// The feed's events, once at least `n` are listed.
async fn feed(app: &TestApp, n: usize) -> Vec<Value> {
    for _ in 0..500 {
        let page = app.get("/api/crm/event/?limit=1000").await.expect(200).body;
        let results = page["results"].as_array().unwrap().clone();
        if results.len() >= n {
            return results;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("fewer than {n} events were listed");
}

const WAIT: Duration = Duration::from_secs(15);

#[actix_web::test]
async fn an_event_is_posted_as_the_feed_lists_it_signed_with_the_endpoint_secret() {
    let app = spawn!(quick);
    let receiver = Receiver::start().await;
    let (id, secret) = endpoint(&app, &receiver.url("/hook"), json!(["customer.created"])).await;
    let before = time::OffsetDateTime::now_utc().unix_timestamp();
    let customer = app.customer_id(json!({"full_name": "Ann"})).await;

    let got = receiver.wait_for("/hook", 1, WAIT).await;
    let request = &got[0];
    let event = &feed(&app, 1).await[0];
    assert_eq!(event["data"]["object"]["id"], customer);
    assert_eq!(
        request.json(),
        *event,
        "the body is the event as the feed lists it"
    );
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(
        request.header("webhook-id"),
        Some(format!("evt_{}", event["id"]).as_str())
    );
    let timestamp: i64 = request
        .header("webhook-timestamp")
        .unwrap()
        .parse()
        .unwrap();
    let after = time::OffsetDateTime::now_utc().unix_timestamp();
    assert!(
        (before..=after).contains(&timestamp),
        "the time of the attempt"
    );
    assert!(request
        .header("webhook-signature")
        .unwrap()
        .starts_with("v1,"));
    assert!(
        signature_is_valid(request, &secret),
        "signed with the secret"
    );
    let other = endpoint(&app, "http://127.0.0.1:9/other", json!(["*"]))
        .await
        .1;
    assert!(
        !signature_is_valid(request, &other),
        "and with no other key"
    );

    let deliveries = log_when(&app, id, |d| statuses(d) == ["delivered"]).await;
    let delivery = &deliveries[0];
    assert_eq!(delivery["event_id"], event["id"]);
    assert_eq!(delivery["event_type"], "customer.created");
    assert_eq!(delivery["attempts"], 1);
    assert_eq!(delivery["last_status_code"], 204);
    assert_eq!(delivery["last_error"], "");
    assert_eq!(delivery["next_attempt_at"], Value::Null);
    let one = app
        .get(&format!("{WEBHOOKS}{id}/deliveries/{}/", delivery["id"]))
        .await
        .expect(200)
        .body;
    assert_eq!(one, *delivery);
}

#[actix_web::test]
async fn failed_attempts_are_retried_on_the_schedule_with_the_same_bytes() {
    let app = spawn!(quick);
    let receiver = Receiver::start().await;
    // A 500, then no answer within the timeout, then a 200.
    receiver.script([
        Reply::Status(500),
        Reply::After(Duration::from_secs(3), 200),
        Reply::Status(200),
    ]);
    let (id, secret) = endpoint(&app, &receiver.url("/hook"), json!(["*"])).await;
    app.customer_id(json!({"full_name": "Ann"})).await;

    let first = log_when(&app, id, |d| d.len() == 1 && d[0]["attempts"] == 1).await;
    if first[0]["status"] == "pending" {
        assert_eq!(first[0]["last_status_code"], 500);
        assert_eq!(first[0]["last_error"], "HTTP 500");
        assert!(first[0]["next_attempt_at"].is_string());
    }
    let second = log_when(&app, id, |d| d[0]["attempts"] == 2).await;
    if second[0]["status"] == "pending" {
        assert_eq!(second[0]["last_status_code"], Value::Null);
        assert_eq!(second[0]["last_error"], "timeout");
    }
    let done = log_when(&app, id, |d| statuses(d) == ["delivered"]).await;
    assert_eq!(done[0]["attempts"], 3);
    assert_eq!(done[0]["last_status_code"], 200);
    assert_eq!(done[0]["last_error"], "");

    let got = receiver.wait_for("/hook", 3, WAIT).await;
    assert_eq!(got.len(), 3, "nothing after the success");
    for request in &got {
        assert_eq!(request.body, got[0].body, "the same bytes on every attempt");
        assert_eq!(request.header("webhook-id"), got[0].header("webhook-id"));
        assert!(signature_is_valid(request, &secret));
    }
    // Never early: each retry waits a second after the attempt before it
    // ended (the second attempt ended at its one-second timeout).
    assert!(got[1].at - got[0].at >= Duration::from_secs(1));
    assert!(got[2].at - got[1].at >= Duration::from_secs(2));
}

#[actix_web::test]
async fn a_spent_schedule_fails_the_delivery_and_a_retry_by_hand_delivers_it() {
    let app = spawn!(quick);
    let receiver = Receiver::start().await;
    receiver.by_default(Reply::Status(503));
    let (id, _) = endpoint(&app, &receiver.url("/down"), json!(["customer.created"])).await;
    app.customer_id(json!({"full_name": "Ann"})).await;

    let failed = log_when(&app, id, |d| statuses(d) == ["failed"]).await;
    assert_eq!(failed[0]["attempts"], 3, "one attempt and two retries");
    assert_eq!(failed[0]["last_status_code"], 503);
    assert_eq!(failed[0]["last_error"], "HTTP 503");
    assert_eq!(failed[0]["next_attempt_at"], Value::Null);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        receiver.received_at("/down").len(),
        3,
        "no attempt after failing"
    );

    // The receiver is back: a retry by hand delivers.
    receiver.by_default(Reply::Status(200));
    let retry = format!("{WEBHOOKS}{id}/deliveries/{}/retry/", failed[0]["id"]);
    let before = time::OffsetDateTime::now_utc() - time::Duration::seconds(1);
    let retried = app.post(&retry, &json!({})).await.expect(202).body;
    assert_eq!(retried["status"], "pending");
    assert_eq!(retried["id"], failed[0]["id"]);
    let due = time::OffsetDateTime::parse(
        retried["next_attempt_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert!(due >= before && due <= time::OffsetDateTime::now_utc() + time::Duration::seconds(1));
    let delivered = log_when(&app, id, |d| statuses(d) == ["delivered"]).await;
    assert_eq!(delivered[0]["attempts"], 4);
    assert_eq!(delivered[0]["last_error"], "");

    // A delivered one can be sent again too.
    app.post(&retry, &json!({})).await.expect(202);
    let again = log_when(&app, id, |d| d[0]["attempts"] == 5).await;
    assert_eq!(statuses(&again), ["delivered"]);
    assert_eq!(receiver.received_at("/down").len(), 5);

    // The delivery of another endpoint is not this one's to retry.
    let (other, _) = endpoint(&app, &receiver.url("/other"), json!(["*"])).await;
    app.post(
        &format!("{WEBHOOKS}{other}/deliveries/{}/retry/", failed[0]["id"]),
        &json!({}),
    )
    .await
    .expect(404);
}

#[actix_web::test]
async fn only_active_subscribed_endpoints_get_an_event_and_paused_ones_wait() {
    let app = spawn!(quick);
    let receiver = Receiver::start().await;
    let (segments, _) =
        endpoint(&app, &receiver.url("/segments"), json!(["segment.created"])).await;
    let (all, _) = endpoint(&app, &receiver.url("/all"), json!(["*"])).await;
    let (paused, _) = endpoint(&app, &receiver.url("/paused"), json!(["*"])).await;
    app.patch(
        &format!("{WEBHOOKS}{paused}/"),
        &json!({"is_active": false}),
    )
    .await
    .expect(200);

    app.customer_id(json!({"full_name": "Ann"})).await;
    app.segment_id("VIP").await;
    let to_all = receiver.wait_for("/all", 2, WAIT).await;
    let types: Vec<_> = to_all.iter().map(|r| r.json()["type"].clone()).collect();
    assert!(
        types.contains(&json!("customer.created")) && types.contains(&json!("segment.created"))
    );
    let to_segments = receiver.wait_for("/segments", 1, WAIT).await;
    assert_eq!(to_segments[0].json()["type"], "segment.created");
    let same_event = to_all
        .iter()
        .find(|r| r.json()["type"] == "segment.created")
        .unwrap();
    assert_eq!(
        same_event.header("webhook-id"),
        to_segments[0].header("webhook-id"),
        "one event has one webhook-id on every endpoint"
    );
    assert_eq!(same_event.body, to_segments[0].body);
    assert_eq!(log(&app, segments).await.len(), 1, "nothing of other types");
    assert!(log(&app, paused).await.is_empty(), "nothing while inactive");

    // Reactivated, it gets what happens from now on, not what it missed.
    app.patch(&format!("{WEBHOOKS}{paused}/"), &json!({"is_active": true}))
        .await
        .expect(200);
    let (late, _) = endpoint(&app, &receiver.url("/late"), json!(["*"])).await;
    app.customer_id(json!({"full_name": "Bob"})).await;
    let got = receiver.wait_for("/paused", 1, WAIT).await;
    assert_eq!(got[0].json()["data"]["object"]["full_name"], "Bob");
    let got = receiver.wait_for("/late", 1, WAIT).await;
    assert_eq!(got[0].json()["data"]["object"]["full_name"], "Bob");
    assert_eq!(
        log(&app, late).await.len(),
        1,
        "nothing from before its creation"
    );

    // An inactive endpoint gets no delivery of what happens meanwhile.
    app.patch(&format!("{WEBHOOKS}{all}/"), &json!({"is_active": false}))
        .await
        .expect(200);
    let before = receiver.received_at("/all").len();
    app.customer_id(json!({"full_name": "Cy"})).await;
    receiver.wait_for("/paused", 2, WAIT).await;
    assert_eq!(receiver.received_at("/all").len(), before);
    assert_eq!(
        log(&app, all).await.len(),
        3,
        "no delivery recorded while paused"
    );
}

#[actix_web::test]
async fn a_paused_endpoint_keeps_its_pending_deliveries_until_it_is_resumed() {
    let app = spawn!(|s: &mut Settings| {
        quick(s);
        s.webhook_retry_schedule = "2,2".into();
    });
    let receiver = Receiver::start().await;
    receiver.script([Reply::Status(500)]);
    let (id, _) = endpoint(&app, &receiver.url("/hook"), json!(["*"])).await;
    app.customer_id(json!({"full_name": "Ann"})).await;
    log_when(&app, id, |d| d.len() == 1 && d[0]["attempts"] == 1).await;
    // The retry is due in two seconds: pause the endpoint before it.
    app.patch(&format!("{WEBHOOKS}{id}/"), &json!({"is_active": false}))
        .await
        .expect(200);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        receiver.received_at("/hook").len(),
        1,
        "no attempt while paused"
    );
    let waiting = log(&app, id).await;
    assert_eq!(statuses(&waiting), ["pending"]);
    assert_eq!(waiting[0]["attempts"], 1);
    app.patch(&format!("{WEBHOOKS}{id}/"), &json!({"is_active": true}))
        .await
        .expect(200);
    receiver.wait_for("/hook", 2, WAIT).await;
    log_when(&app, id, |d| statuses(d) == ["delivered"]).await;
}

#[actix_web::test]
async fn refused_addresses_fail_at_delivery_time_after_resolution() {
    // Private addresses refused: endpoints pointing at loopback can only
    // have been stored around the API (or resolved elsewhere when saved).
    let app = spawn!(|s: &mut Settings| {
        quick(s);
        s.webhook_allow_private = false;
        s.webhook_retry_schedule = "".into();
    });
    let receiver = Receiver::start().await;
    let port = receiver.base.rsplit(':').next().unwrap().to_string();
    // A public literal: accepted, and left inactive so it is never tried.
    let created = app
        .post(
            WEBHOOKS,
            &json!({"url": "http://203.0.113.10/hook", "events": ["*"], "is_active": false}),
        )
        .await
        .expect(201)
        .body;
    let template = created["id"].as_i64().unwrap();
    for url in [
        format!("http://127.0.0.1:{port}/literal"),
        format!("http://localhost:{port}/name"),
        format!("http://[::ffff:127.0.0.1]:{port}/mapped"),
    ] {
        assert_eq!(
            app.post(WEBHOOKS, &json!({"url": url, "events": ["*"]}))
                .await
                .expect(400)
                .body["url"]
                .as_array()
                .map(Vec::len),
            Some(1),
            "{url} is refused by the API"
        );
        app.sql_execute(&format!(
            "INSERT INTO crm_webhook_endpoints (url, event_mask, description, is_active, secret, created_at) \
             SELECT '{url}', -1, '', TRUE, secret, created_at FROM crm_webhook_endpoints WHERE id = {template}"
        ));
    }
    app.customer_id(json!({"full_name": "Ann"})).await;
    for id in template + 1..=template + 3 {
        let deliveries = log_when(&app, id, |d| statuses(d) == ["failed"]).await;
        assert_eq!(
            deliveries[0]["last_error"], "address not allowed",
            "endpoint {id}"
        );
        assert_eq!(deliveries[0]["last_status_code"], Value::Null);
        assert_eq!(deliveries[0]["attempts"], 1);
    }
    assert!(receiver.received().is_empty(), "no connection was made");
    assert!(log(&app, template).await.is_empty());
}

#[actix_web::test]
async fn a_slow_receiver_delays_neither_other_endpoints_nor_requests() {
    let app = spawn!(|s: &mut Settings| {
        quick(s);
        s.webhook_timeout_seconds = 10;
        s.webhook_endpoint_concurrency = 2;
        s.webhook_concurrency = 8;
    });
    let fast = Receiver::start().await;
    let slow = Receiver::start().await;
    // The slow receiver answers after four seconds, every time.
    slow.by_default(Reply::After(Duration::from_secs(4), 200));
    endpoint(&app, &slow.url("/slow"), json!(["customer.created"])).await;
    endpoint(&app, &fast.url("/fast"), json!(["customer.created"])).await;
    for n in 0..10 {
        app.customer_id(json!({"full_name": format!("C{n}")})).await;
    }
    // All ten reach the fast endpoint while the slow one holds at most its
    // two slots (ten attempts at four seconds, two at a time, take twenty).
    fast.wait_for("/fast", 10, WAIT).await;
    assert!(
        slow.received().len() <= 4,
        "at most two attempts at once to one endpoint: {}",
        slow.received().len()
    );
    // And the API answers meanwhile.
    app.get("/api/crm/customer/").await.expect(200);
}

#[actix_web::test]
async fn the_worker_reports_its_figures_on_metrics() {
    let app = spawn!(quick);
    let receiver = Receiver::start().await;
    endpoint(&app, &receiver.url("/hook"), json!(["*"])).await;
    app.customer_id(json!({"full_name": "Ann"})).await;
    receiver.wait_for("/hook", 1, WAIT).await;
    let started = Instant::now();
    loop {
        let text = app
            .client
            .get(app.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if text.contains("webhook_attempts_total{result=\"delivered\"} 1") {
            for name in [
                "webhook_attempt_duration_seconds_count 1",
                "webhook_deliveries_pending",
                "webhook_deliveries_failed",
                "webhook_oldest_pending_age_seconds",
            ] {
                assert!(text.contains(name), "{name} in {text}");
            }
            return;
        }
        assert!(
            started.elapsed() < WAIT,
            "no delivered attempt counted: {text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[actix_web::test]
async fn redirects_are_not_followed_and_unreachable_receivers_fail_the_attempt() {
    let app = spawn!(|s: &mut Settings| {
        quick(s);
        s.webhook_retry_schedule = "".into();
    });
    let receiver = Receiver::start().await;
    receiver.by_default(Reply::Redirect("/elsewhere"));
    let (moved, _) = endpoint(&app, &receiver.url("/moved"), json!(["*"])).await;
    // A port nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let (refused, _) = endpoint(&app, &format!("http://127.0.0.1:{port}/hook"), json!(["*"])).await;
    app.customer_id(json!({"full_name": "Ann"})).await;

    let deliveries = log_when(&app, moved, |d| statuses(d) == ["failed"]).await;
    assert_eq!(deliveries[0]["last_status_code"], 302);
    assert_eq!(deliveries[0]["last_error"], "HTTP 302");
    assert_eq!(receiver.received_at("/moved").len(), 1);
    assert!(
        receiver.received_at("/elsewhere").is_empty(),
        "not followed"
    );

    let deliveries = log_when(&app, refused, |d| statuses(d) == ["failed"]).await;
    assert_eq!(deliveries[0]["last_status_code"], Value::Null);
    assert_eq!(deliveries[0]["last_error"], "connection refused");
}
