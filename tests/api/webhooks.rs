//! Webhook endpoints (contract section 9): `/api/crm/webhook/`, their
//! validation, the secret shown once, and the wire shape of the delivery
//! log. How deliveries are made (signatures, retries) is the delivery
//! worker's, tested with it.
//!
//! No test needs internet access: endpoints that must be accepted point at
//! `127.0.0.1` on a server that allows private addresses, or at a public IP
//! literal (`203.0.113.10`, which needs no DNS) on one that refuses them.

use std::time::Duration;

use crm_tests::{json, keys, Method, TestApp, Value};

const LIST: &str = "/api/crm/webhook/";

/// A receiver no test listens on: attempts to it fail at once.
const LOCAL: &str = "http://127.0.0.1:9/hook";

/// A public address, accepted without a DNS lookup when private addresses
/// are refused.
const PUBLIC: &str = "http://203.0.113.10/hook";

const ENDPOINT_KEYS: [&str; 6] = [
    "id",
    "url",
    "events",
    "description",
    "is_active",
    "created_at",
];

const DELIVERY_KEYS: [&str; 9] = [
    "id",
    "event_id",
    "event_type",
    "status",
    "attempts",
    "last_status_code",
    "last_error",
    "next_attempt_at",
    "created_at",
];

fn endpoint_path(id: i64) -> String {
    format!("{LIST}{id}/")
}

fn deliveries_path(id: i64) -> String {
    format!("{LIST}{id}/deliveries/")
}

/// Creates an endpoint, asserting 201, and returns the answer.
async fn create(app: &TestApp, body: Value) -> Value {
    app.post(LIST, &body).await.expect(201).body
}

/// Creates an endpoint for `url` subscribed to `events` and returns its id.
async fn endpoint_id(app: &TestApp, url: &str, events: Value) -> i64 {
    create(app, json!({"url": url, "events": events})).await["id"]
        .as_i64()
        .unwrap()
}

/// `value` without its `secret`.
fn without_secret(value: &Value) -> Value {
    let mut value = value.clone();
    value.as_object_mut().unwrap().remove("secret");
    value
}

/// The endpoint's deliveries (newest first) once at least `n` are listed.
async fn deliveries(app: &TestApp, endpoint: i64, n: usize) -> Vec<Value> {
    for _ in 0..500 {
        let page = app
            .get(&format!("{}?page_size=1000", deliveries_path(endpoint)))
            .await
            .expect(200)
            .body;
        let results = page["results"].as_array().unwrap().clone();
        if results.len() >= n {
            assert_eq!(page["count"], results.len());
            return results;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("fewer than {n} deliveries were listed for endpoint {endpoint}");
}

/// `whsec_` and the standard, padded base64 of 32 bytes.
#[track_caller]
fn assert_secret(secret: &Value) {
    let secret = secret.as_str().expect("the secret is a string");
    let encoded = secret.strip_prefix("whsec_").expect("the whsec_ prefix");
    // 32 bytes are 43 characters and one `=` of padding.
    assert_eq!(encoded.len(), 44, "{secret}");
    let (data, padding) = encoded.split_at(43);
    assert_eq!(padding, "=", "{secret}");
    assert!(
        data.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/'),
        "{secret} is not standard base64"
    );
    // 256 bits: the 43rd character carries the last 4 and 2 zero bits.
    let last = data.as_bytes()[42];
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let value = alphabet.iter().position(|c| *c == last).unwrap();
    assert_eq!(value & 0b11, 0, "{secret} is not canonical base64");
}

#[actix_web::test]
async fn create_answers_the_secret_once_and_reads_never_show_it() {
    let app = spawn!(|s| s.webhook_allow_private = true);
    let created = app
        .post(
            LIST,
            &json!({
                "url": LOCAL,
                "events": ["customer.updated", "customer.created", "customer.updated"],
                "description": "CRM sync",
                // Read-only fields are ignored.
                "id": 999, "secret": "whsec_mine", "created_at": "2020-01-01T00:00:00Z",
            }),
        )
        .await
        .expect(201)
        .body;
    let mut expected_keys = ENDPOINT_KEYS.to_vec();
    expected_keys.push("secret");
    assert_eq!(keys(&created), expected_keys);
    assert_ne!(created["id"], 999);
    assert_eq!(created["url"], LOCAL);
    assert_eq!(
        created["events"],
        json!(["customer.created", "customer.updated"])
    );
    assert_eq!(created["description"], "CRM sync");
    assert_eq!(created["is_active"], true);
    crm_tests::assert_timestamp(&created["created_at"], "Z");
    assert_ne!(created["created_at"], "2020-01-01T00:00:00.000000Z");
    assert_secret(&created["secret"]);
    assert_ne!(created["secret"], "whsec_mine");

    let id = created["id"].as_i64().unwrap();
    let read = app.get(&endpoint_path(id)).await.expect(200).body;
    assert_eq!(keys(&read), ENDPOINT_KEYS);
    assert_eq!(read, without_secret(&created));
    let list = app.get(LIST).await.expect(200).body;
    assert_eq!(keys(&list), ["count", "next", "previous", "results"]);
    assert_eq!(list["count"], 1);
    assert_eq!(list["results"], json!([read]));
    assert!(!list.to_string().contains("whsec_"));

    // Defaults, and a secret of its own for every endpoint.
    let other = create(&app, json!({"url": LOCAL, "events": ["*"]})).await;
    assert_eq!(other["description"], "");
    assert_eq!(other["is_active"], true);
    assert_eq!(other["events"], json!(["*"]));
    assert_secret(&other["secret"]);
    assert_ne!(other["secret"], created["secret"]);
    let inactive = create(
        &app,
        json!({"url": LOCAL, "events": ["*"], "is_active": false}),
    )
    .await;
    assert_eq!(inactive["is_active"], false);
}

#[actix_web::test]
async fn timestamps_are_rendered_in_the_configured_offset() {
    let app = spawn!(|s| {
        s.webhook_allow_private = true;
        s.utc_offset = "+08:00".into();
    });
    let created = create(&app, json!({"url": LOCAL, "events": ["*"]})).await;
    crm_tests::assert_timestamp(&created["created_at"], "+08:00");
}

#[actix_web::test]
async fn events_are_sorted_deduplicated_and_star_stands_alone() {
    let app = spawn!(|s| s.webhook_allow_private = true);
    for (events, expected) in [
        (json!(["*"]), json!(["*"])),
        (json!(["*", "*"]), json!(["*"])),
        (
            json!([
                "segment.deleted",
                "customer.created",
                "segment.customers_added",
                "customer.created"
            ]),
            json!([
                "customer.created",
                "segment.customers_added",
                "segment.deleted"
            ]),
        ),
    ] {
        let created = create(&app, json!({"url": LOCAL, "events": events})).await;
        assert_eq!(created["events"], expected, "{events}");
    }
    for (events, message) in [
        (
            json!(["*", "customer.created"]),
            "\"*\" must be the only event type.",
        ),
        (
            json!(["customer.created", "customer"]),
            "\"customer\" is not a valid choice.",
        ),
        (json!(["x"]), "\"x\" is not a valid choice."),
        (json!([]), "This list may not be empty."),
        (
            json!("customer.created"),
            "Expected a list of items but got type \"str\".",
        ),
        (json!(null), "This field may not be null."),
    ] {
        let r = app
            .post(LIST, &json!({"url": LOCAL, "events": events}))
            .await
            .expect(400);
        assert_eq!(r.body, json!({ "events": [message] }), "{events}");
    }
    assert_eq!(
        app.get(LIST).await.body["count"],
        3,
        "nothing refused was kept"
    );
}

#[actix_web::test]
async fn invalid_bodies_are_400_under_their_fields() {
    let app = spawn!(|s| s.webhook_allow_private = true);
    let r = app.post(LIST, &json!({})).await.expect(400);
    assert_eq!(
        r.body,
        json!({"url": ["This field is required."], "events": ["This field is required."]})
    );
    let r = app.post(LIST, &json!({"url": LOCAL})).await.expect(400);
    assert_eq!(r.body, json!({"events": ["This field is required."]}));
    let r = app.post(LIST, &json!({"events": ["*"]})).await.expect(400);
    assert_eq!(r.body, json!({"url": ["This field is required."]}));
    let too_long = format!("http://127.0.0.1/{}", "a".repeat(2000));
    for url in [
        json!("ftp://127.0.0.1/hook"),
        json!("mailto:ops@example.com"),
        json!("file:///etc/passwd"),
        json!("127.0.0.1/hook"),
        json!("/hook"),
        json!("http://"),
        json!(""),
        json!(too_long),
        json!(true),
        json!(["http://127.0.0.1/"]),
        json!(null),
    ] {
        let r = app
            .post(LIST, &json!({"url": url, "events": ["*"]}))
            .await
            .expect(400);
        assert_eq!(keys(&r.body), ["url"], "{url}: {}", r.text);
        assert!(r.body["url"][0].is_string(), "{}", r.text);
    }
    let r = app
        .post(LIST, &json!({"url": too_long, "events": ["*"]}))
        .await
        .expect(400);
    assert_eq!(
        r.body,
        json!({"url": ["Ensure this field has no more than 2000 characters."]})
    );
    let r = app
        .post(
            LIST,
            &json!({"url": LOCAL, "events": ["*"], "description": "d".repeat(256),
                    "is_active": "maybe"}),
        )
        .await
        .expect(400);
    assert_eq!(
        r.body,
        json!({
            "description": ["Ensure this field has no more than 255 characters."],
            "is_active": ["Must be a valid boolean."],
        })
    );
    let r = app
        .post(LIST, &json!([{"url": LOCAL, "events": ["*"]}]))
        .await
        .expect(400);
    assert_eq!(
        r.body,
        json!({"non_field_errors": ["Invalid data. Expected a dictionary, but got list."]})
    );
    assert_eq!(app.get(LIST).await.body["count"], 0, "nothing was kept");
    // DRF's lenient booleans, and a URL of exactly 2000 characters.
    let exact = format!("http://127.0.0.1/{}", "a".repeat(2000 - 17));
    assert_eq!(exact.len(), 2000);
    let created = create(
        &app,
        json!({"url": exact, "events": ["*"], "is_active": "false", "description": "d".repeat(255)}),
    )
    .await;
    assert_eq!(created["is_active"], false);
    assert_eq!(created["url"], exact);
}

#[actix_web::test]
async fn private_addresses_are_refused_on_create_and_update() {
    let app = spawn!();
    let refused = [
        "http://127.0.0.1/hook",
        "http://127.0.0.1:9/hook",
        "http://10.1.2.3/hook",
        "http://172.16.0.1/hook",
        "http://192.168.1.1/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://100.64.0.1/hook",
        "http://0.0.0.0/hook",
        "http://localhost/hook",
        "http://localhost:8080/hook",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://[::ffff:10.0.0.1]/hook",
        "http://[fe80::1]/hook",
        "http://[fc00::1]/hook",
        "http://[::]/hook",
    ];
    for url in refused {
        let r = app
            .post(LIST, &json!({"url": url, "events": ["*"]}))
            .await
            .expect(400);
        assert_eq!(keys(&r.body), ["url"], "{url}: {}", r.text);
        assert!(r.body["url"][0].is_string(), "{url}: {}", r.text);
    }
    assert_eq!(app.get(LIST).await.body["count"], 0);
    let created = create(&app, json!({"url": PUBLIC, "events": ["*"]})).await;
    let id = created["id"].as_i64().unwrap();
    for url in [
        "http://127.0.0.1/hook",
        "http://localhost/hook",
        "http://[::1]/",
    ] {
        for method in [Method::PUT, Method::PATCH] {
            let r = app
                .send(
                    app.request(method.clone(), &endpoint_path(id))
                        .json(&json!({"url": url, "description": "changed"})),
                )
                .await
                .expect(400);
            assert_eq!(keys(&r.body), ["url"], "{method} {url}: {}", r.text);
        }
    }
    let read = app.get(&endpoint_path(id)).await.expect(200).body;
    assert_eq!(
        read,
        without_secret(&created),
        "a refused update changes nothing"
    );
    // A public address is accepted on update too.
    let r = app
        .patch(
            &endpoint_path(id),
            &json!({"url": "https://203.0.113.11:8443/crm"}),
        )
        .await
        .expect(200);
    assert_eq!(r.body["url"], "https://203.0.113.11:8443/crm");
}

#[actix_web::test]
async fn private_addresses_are_accepted_when_allowed() {
    let app = spawn!(|s| s.webhook_allow_private = true);
    for url in [
        "http://127.0.0.1:9/hook",
        "http://10.1.2.3/hook",
        "http://localhost:9/hook",
        "http://[::1]:9/hook",
    ] {
        let created = create(&app, json!({"url": url, "events": ["*"]})).await;
        assert_eq!(created["url"], url);
    }
}

#[actix_web::test]
async fn put_and_patch_keep_left_out_fields_and_never_touch_the_secret() {
    let app = spawn!(|s| s.webhook_allow_private = true);
    let created = create(
        &app,
        json!({"url": LOCAL, "events": ["customer.created"], "description": "a"}),
    )
    .await;
    let id = created["id"].as_i64().unwrap();
    let secret = created["secret"].as_str().unwrap().to_owned();
    let path = endpoint_path(id);

    let mut expected = without_secret(&created);
    let r = app
        .patch(&path, &json!({"is_active": false}))
        .await
        .expect(200);
    expected["is_active"] = json!(false);
    assert_eq!(r.body, expected);
    assert_eq!(keys(&r.body), ENDPOINT_KEYS);

    let r = app
        .put(&path, &json!({"description": "b"}))
        .await
        .expect(200);
    expected["description"] = json!("b");
    assert_eq!(r.body, expected, "PUT is partial too");

    let r = app
        .put(
            &path,
            &json!({"url": "http://127.0.0.1:9/other", "events": ["segment.deleted", "*"]}),
        )
        .await
        .expect(400);
    assert_eq!(keys(&r.body), ["events"]);
    let r = app
        .patch(
            &path,
            &json!({"url": "http://127.0.0.1:9/other", "events": ["*"], "is_active": "true"}),
        )
        .await
        .expect(200);
    expected["url"] = json!("http://127.0.0.1:9/other");
    expected["events"] = json!(["*"]);
    expected["is_active"] = json!(true);
    assert_eq!(r.body, expected);

    // Read-only fields, an empty body and no body at all change nothing.
    let r = app
        .patch(
            &path,
            &json!({"id": id + 1, "secret": "whsec_mine", "created_at": "2020-01-01T00:00:00Z"}),
        )
        .await
        .expect(200);
    assert_eq!(r.body, expected);
    app.put(&path, &json!({})).await.expect(200);
    let r = app
        .send(app.request(Method::PATCH, &path))
        .await
        .expect(200);
    assert_eq!(r.body, expected);
    assert_eq!(app.get(&path).await.expect(200).body, expected);

    // Invalid input changes nothing.
    let r = app
        .patch(&path, &json!({"description": "c", "is_active": "maybe"}))
        .await
        .expect(400);
    assert_eq!(r.body, json!({"is_active": ["Must be a valid boolean."]}));
    let r = app
        .patch(&path, &json!({"url": null, "events": null}))
        .await
        .expect(400);
    assert_eq!(
        r.body,
        json!({"url": ["This field may not be null."], "events": ["This field may not be null."]})
    );
    assert_eq!(app.get(&path).await.expect(200).body, expected);

    // The secret is never shown again, and never changes.
    assert_eq!(
        app.sql_count(&format!(
            "SELECT COUNT(*) AS n FROM crm_webhook_endpoints WHERE id = {id} AND secret = '{secret}'"
        )),
        1
    );
}

#[actix_web::test]
async fn a_missing_endpoint_is_404_before_its_input_is_checked() {
    let app = spawn!(|s| s.webhook_allow_private = true);
    let id = endpoint_id(&app, LOCAL, json!(["*"])).await;
    let path = endpoint_path(id);
    app.delete(&path).await.expect(204);
    let not_found = json!({"detail": "Not found."});
    assert_eq!(app.get(&path).await.expect(404).body, not_found);
    assert_eq!(app.delete(&path).await.expect(404).body, not_found);
    for body in [
        json!({"description": "x"}),
        json!({"events": "x", "is_active": "maybe"}),
        json!({"url": "http://10.0.0.1/"}),
        json!([]),
    ] {
        for method in [Method::PUT, Method::PATCH] {
            let r = app
                .send(app.request(method.clone(), &path).json(&body))
                .await
                .expect(404);
            assert_eq!(r.body, not_found, "{method} {body}");
        }
    }
    app.get(&deliveries_path(id)).await.expect(404);
    app.get(&format!("{}1/", deliveries_path(id)))
        .await
        .expect(404);
    app.post(&format!("{}1/retry/", deliveries_path(id)), &json!({}))
        .await
        .expect(404);
    assert_eq!(app.get(LIST).await.body["count"], 0);
    // A path id that is not a positive integer names no endpoint.
    for bad in ["abc", "0", "-1", "1.5"] {
        app.get(&format!("{LIST}{bad}/")).await.expect(404);
        app.patch(&format!("{LIST}{bad}/"), &json!({"is_active": "maybe"}))
            .await
            .expect(404);
    }
}

#[actix_web::test]
async fn deliveries_are_listed_only_under_their_endpoint() {
    let app = spawn!(|s| s.webhook_allow_private = true);
    let a = endpoint_id(&app, LOCAL, json!(["customer.created"])).await;
    let b = endpoint_id(&app, "http://127.0.0.1:9/other", json!(["*"])).await;
    let customer = app.customer_id(json!({"full_name": "Ann"})).await;
    let of_a = deliveries(&app, a, 1).await;
    let of_b = deliveries(&app, b, 1).await;
    let (da, db) = (&of_a[0], &of_b[0]);
    assert_eq!(keys(da), DELIVERY_KEYS);
    assert_eq!(da["event_type"], "customer.created");
    assert!(["pending", "delivered", "failed"].contains(&da["status"].as_str().unwrap()));
    assert!(da["attempts"].is_u64());
    assert!(da["last_status_code"].is_null() || da["last_status_code"].is_u64());
    assert!(da["last_error"].is_string());
    crm_tests::assert_timestamp(&da["created_at"], "Z");
    // The event delivered is the feed's.
    let feed = app
        .get("/api/crm/event/?type=customer.created")
        .await
        .expect(200)
        .body;
    let event = &feed["results"][0];
    assert_eq!(event["data"]["object"]["id"], customer);
    assert_eq!(da["event_id"], event["id"]);
    assert_eq!(db["event_id"], event["id"]);
    assert_ne!(da["id"], db["id"]);

    let (da_id, db_id) = (da["id"].as_i64().unwrap(), db["id"].as_i64().unwrap());
    let read = app
        .get(&format!("{}{da_id}/", deliveries_path(a)))
        .await
        .expect(200)
        .body;
    assert_eq!(keys(&read), DELIVERY_KEYS);
    for key in ["id", "event_id", "event_type", "created_at"] {
        assert_eq!(read[key], da[key], "{key}");
    }
    // Another endpoint's delivery is not found under this one.
    app.get(&format!("{}{db_id}/", deliveries_path(a)))
        .await
        .expect(404);
    app.get(&format!("{}{da_id}/", deliveries_path(b)))
        .await
        .expect(404);
    let r = app
        .send(app.request(
            Method::POST,
            &format!("{}{db_id}/retry/", deliveries_path(a)),
        ))
        .await
        .expect(404);
    assert_eq!(r.body, json!({"detail": "Not found."}));
    app.get(&format!("{}999999/", deliveries_path(a)))
        .await
        .expect(404);
    app.get(&format!("{}abc/", deliveries_path(a)))
        .await
        .expect(404);

    // A retry needs no body and answers 202 with the delivery, due now.
    let r = app
        .send(app.request(
            Method::POST,
            &format!("{}{da_id}/retry/", deliveries_path(a)),
        ))
        .await
        .expect(202);
    assert_eq!(keys(&r.body), DELIVERY_KEYS);
    assert_eq!(r.body["id"], da_id);
    assert_eq!(r.body["status"], "pending");
    crm_tests::assert_timestamp(&r.body["next_attempt_at"], "Z");

    // Deleting an endpoint takes its delivery log with it.
    app.delete(&endpoint_path(a)).await.expect(204);
    app.get(&format!("{}{da_id}/", deliveries_path(a)))
        .await
        .expect(404);
    app.get(&format!("{}{db_id}/", deliveries_path(b)))
        .await
        .expect(200);
}

#[actix_web::test]
async fn endpoints_page_by_id_and_deliveries_newest_first() {
    let app = spawn!();
    let mut ids = Vec::new();
    for i in 0..3 {
        let url = format!("http://203.0.113.{}/hook", 10 + i);
        ids.push(endpoint_id(&app, &url, json!(["customer.created"])).await);
    }
    let page = app
        .get(&format!("{LIST}?page_size=2"))
        .await
        .expect(200)
        .body;
    assert_eq!(page["count"], 3);
    let listed: Vec<i64> = page["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    assert_eq!(listed, ids[..2]);
    assert_eq!(page["next"], app.url(&format!("{LIST}?page=2&page_size=2")));
    assert_eq!(page["previous"], Value::Null);
    let second = app
        .get(&format!("{LIST}?page=2&page_size=2"))
        .await
        .expect(200)
        .body;
    assert_eq!(second["results"].as_array().unwrap().len(), 1);
    assert_eq!(second["results"][0]["id"], ids[2]);
    assert_eq!(second["next"], Value::Null);
    assert_eq!(second["previous"], app.url(&format!("{LIST}?page_size=2")));
    for bad in ["page=3&page_size=2", "page=0", "page=abc"] {
        let r = app.get(&format!("{LIST}?{bad}")).await.expect(404);
        assert_eq!(r.body, json!({"detail": "Invalid page."}), "{bad}");
    }
    let r = app.get(&format!("{LIST}?page=1&page=2")).await.expect(400);
    assert_eq!(keys(&r.body), ["page"]);

    // Three events, three deliveries per endpoint, newest first.
    for name in ["A", "B", "C"] {
        app.customer_id(json!({ "full_name": name })).await;
    }
    let all = deliveries(&app, ids[0], 3).await;
    let all_ids: Vec<i64> = all.iter().map(|d| d["id"].as_i64().unwrap()).collect();
    assert!(all_ids.windows(2).all(|w| w[0] > w[1]), "{all_ids:?}");
    let events: Vec<i64> = all
        .iter()
        .map(|d| d["event_id"].as_i64().unwrap())
        .collect();
    assert!(events.windows(2).all(|w| w[0] > w[1]), "{events:?}");
    let path = deliveries_path(ids[0]);
    let page = app
        .get(&format!("{path}?page_size=2"))
        .await
        .expect(200)
        .body;
    assert_eq!(page["count"], 3);
    let first: Vec<i64> = page["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_i64().unwrap())
        .collect();
    assert_eq!(first, all_ids[..2]);
    assert_eq!(page["next"], app.url(&format!("{path}?page=2&page_size=2")));
    let last = app
        .get(&format!("{path}?page=2&page_size=2"))
        .await
        .expect(200)
        .body;
    assert_eq!(last["results"][0]["id"], all_ids[2]);
    app.get(&format!("{path}?page=3&page_size=2"))
        .await
        .expect(404);
    // An endpoint with no deliveries has an empty first page.
    let quiet = endpoint_id(&app, PUBLIC, json!(["segment.deleted"])).await;
    let empty = app.get(&deliveries_path(quiet)).await.expect(200).body;
    assert_eq!(
        empty,
        json!({"count": 0, "next": null, "previous": null, "results": []})
    );
}

#[actix_web::test]
async fn reads_need_the_read_scope_and_writes_the_write_scope() {
    let app = spawn!(|s| s.webhook_allow_private = true);
    let id = endpoint_id(&app, LOCAL, json!(["*"])).await;
    let reader = app.register_client("reader", "crm:read").await;
    let read_token = app.fetch_token(&reader, &["crm:read"]).await;
    let writer = app.register_client("writer", "crm:write").await;
    let write_token = app.fetch_token(&writer, &["crm:write"]).await;
    let path = endpoint_path(id);
    let retry = format!("{}1/retry/", deliveries_path(id));
    let body = json!({"url": LOCAL, "events": ["*"]});

    for url in [LIST.to_owned(), path.clone(), deliveries_path(id)] {
        app.send(app.client.get(app.url(&url)).bearer_auth(&read_token))
            .await
            .expect(200);
        let r = app
            .send(app.client.get(app.url(&url)).bearer_auth(&write_token))
            .await
            .expect(403);
        assert_eq!(
            r.header("www-authenticate"),
            Some("Bearer realm=\"api\", error=\"insufficient_scope\", scope=\"crm:read read\"")
        );
        app.send(app.anonymous(Method::GET, &url)).await.expect(401);
    }
    for (method, url) in [
        (Method::POST, LIST),
        (Method::PUT, path.as_str()),
        (Method::PATCH, path.as_str()),
        (Method::DELETE, path.as_str()),
        (Method::POST, retry.as_str()),
    ] {
        let r = app
            .send(
                app.client
                    .request(method.clone(), app.url(url))
                    .bearer_auth(&read_token)
                    .json(&body),
            )
            .await
            .expect(403);
        assert_eq!(
            r.body,
            json!({"detail": "You do not have permission to perform this action."}),
            "{method} {url}"
        );
        assert_eq!(
            r.header("www-authenticate"),
            Some("Bearer realm=\"api\", error=\"insufficient_scope\", scope=\"crm:write write\""),
            "{method} {url}"
        );
        app.send(app.anonymous(method.clone(), url).json(&body))
            .await
            .expect(401);
    }
    // The write-only client can write.
    let r = app
        .send(
            app.client
                .post(app.url(LIST))
                .bearer_auth(&write_token)
                .json(&body),
        )
        .await
        .expect(201);
    assert_secret(&r.body["secret"]);
    assert_eq!(app.get(LIST).await.body["count"], 2);
}

#[actix_web::test]
async fn each_path_answers_its_methods_and_405_names_them() {
    let app = spawn!(|s| s.webhook_allow_private = true);
    let id = endpoint_id(&app, LOCAL, json!(["*"])).await;
    let cases = [
        (LIST.to_owned(), "GET, POST, HEAD, OPTIONS", Method::DELETE),
        (
            endpoint_path(id),
            "GET, PUT, PATCH, DELETE, HEAD, OPTIONS",
            Method::POST,
        ),
        (deliveries_path(id), "GET, HEAD, OPTIONS", Method::POST),
        (
            format!("{}1/", deliveries_path(id)),
            "GET, HEAD, OPTIONS",
            Method::DELETE,
        ),
        (
            format!("{}1/retry/", deliveries_path(id)),
            "POST, OPTIONS",
            Method::GET,
        ),
    ];
    for (path, allow, refused) in cases {
        let r = app
            .send(app.request(refused.clone(), &path))
            .await
            .expect(405);
        assert_eq!(r.header("allow"), Some(allow), "{path}");
        assert_eq!(
            r.body,
            json!({"detail": format!("Method \"{refused}\" not allowed.")})
        );
        let r = app
            .send(app.request(Method::OPTIONS, &path))
            .await
            .expect(200);
        assert_eq!(r.header("allow"), Some(allow), "{path}");
        // Without the trailing slash too.
        let trimmed = path.trim_end_matches('/');
        let r = app
            .send(app.request(Method::OPTIONS, trimmed))
            .await
            .expect(200);
        assert_eq!(r.header("allow"), Some(allow), "{trimmed}");
    }
    app.send(app.request(Method::HEAD, LIST)).await.expect(200);
    app.send(app.request(Method::HEAD, &endpoint_path(id)))
        .await
        .expect(200);
    app.send(app.request(Method::HEAD, &deliveries_path(id)))
        .await
        .expect(200);
    let r = app
        .get(endpoint_path(id).trim_end_matches('/'))
        .await
        .expect(200);
    assert_eq!(r.body["id"], id);
}

#[actix_web::test]
async fn a_body_must_be_json() {
    let app = spawn!(|s| s.webhook_allow_private = true);
    let r = app
        .send(
            app.request(Method::POST, LIST)
                .header("content-type", "text/plain")
                .body("url=x"),
        )
        .await
        .expect(415);
    assert_eq!(
        r.body,
        json!({"detail": "Unsupported media type \"text/plain\" in request."})
    );
    let r = app
        .send(
            app.request(Method::POST, LIST)
                .header("content-type", "application/json")
                .body("{"),
        )
        .await
        .expect(400);
    assert!(r.body["detail"]
        .as_str()
        .unwrap()
        .starts_with("JSON parse error - "));
    assert_eq!(app.get(LIST).await.body["count"], 0);
}
