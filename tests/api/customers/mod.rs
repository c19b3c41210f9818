//! Customers: create, read, update, delete, and the rules on their fields,
//! one file per topic. The helpers here serve them all; the backend's
//! `spawn` is imported for the `spawn!` macro of the topic modules.

mod collections;
mod contact;
mod delete;
mod fields;
mod identity;
mod races;
mod representation;
mod update;

use super::spawn;

use crm_tests::{json, keys, TestApp, Value};

const CUSTOMERS: &str = "/api/crm/customer/";

fn customer_path(id: i64) -> String {
    format!("/api/crm/customer/{id}/")
}

fn id_of(body: &Value) -> i64 {
    body["id"].as_i64().expect("id is an integer")
}

/// The field names of a 400 body.
fn error_fields(body: &Value) -> Vec<&str> {
    keys(body)
}

/// Asserts a 400 whose body names exactly `field`, each message a string.
#[track_caller]
fn assert_field_error(resp: &crm_tests::Resp, field: &str) {
    assert_eq!(
        resp.status, 400,
        "expected 400 under {field:?}; body: {}",
        resp.text
    );
    assert_eq!(
        error_fields(&resp.body),
        [field],
        "expected errors under {field:?} only; body: {}",
        resp.text
    );
    let messages = resp.body[field].as_array().expect("a list of messages");
    assert!(!messages.is_empty(), "no message under {field}");
    assert!(
        messages.iter().all(Value::is_string),
        "messages are strings: {}",
        resp.text
    );
}

async fn count(app: &TestApp) -> i64 {
    app.get(CUSTOMERS).await.expect(200).body["count"]
        .as_i64()
        .expect("count is an integer")
}

/// Creates a customer and expects a 400 naming only `field`.
async fn create_fails(app: &TestApp, body: Value, field: &str) {
    let resp = app.post(CUSTOMERS, &body).await;
    assert_field_error(&resp, field);
}

async fn create_address(app: &TestApp, customer: i64) -> Value {
    app.post(
        &format!("/api/crm/customer/{customer}/addresses/"),
        &json!({
            "full_name": "Receiver", "mobile": "13800000000", "province": "天津市",
            "city": "天津市", "district": "和平区", "address1": "Nanjing Road 1"
        }),
    )
    .await
    .expect(201)
    .body
}
