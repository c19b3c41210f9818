//! Customers: create, read, update, delete, and the rules on their fields.

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

// --- create and representations ---------------------------------------------

#[actix_web::test]
async fn create_returns_the_full_representation_key_for_key() {
    let app = spawn!();
    let resp = app
        .post(
            "/api/crm/customer/",
            &json!({
                "mobile": 13000000000u64, "full_name": "test", "gender": "male",
                "email": "xxxxxxxxx@163.com", "birthday": null, "note": "test",
                "accepts_marketing": true, "referral_code": "", "tags": []
            }),
        )
        .await
        .expect(201);
    let body = resp.body.as_object().unwrap();
    let keys: Vec<&str> = body.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "id",
            "multipass_identifier",
            "mobile",
            "full_name",
            "gender",
            "email",
            "birthday",
            "avatar",
            "note",
            "accepts_marketing",
            "created_at",
            "updated_at",
            "referral_code",
            "referrer",
            "tags",
            "addresses",
            "segments",
            "segment_ids",
            "statistics",
            "profile",
            "wechat_nickname",
            "level",
            "total_points",
            "points",
            "metafields"
        ]
    );
    assert_eq!(body["mobile"], "13000000000");
    assert_eq!(body["wechat_nickname"], "用户没有通过微信授权登录");
    assert_eq!(body["statistics"]["total_spent"], "0.00");
    assert_eq!(body["profile"]["source_name"], "unknown");
}

#[actix_web::test]
async fn statistics_and_profile_have_the_contract_keys_in_order() {
    let app = spawn!();
    let body = app.create_customer(json!({"full_name": "Keys"})).await;
    assert_eq!(
        keys(&body["statistics"]),
        [
            "last_order_id",
            "last_order_paid_at",
            "abandoned_checkouts",
            "orders",
            "paid_orders",
            "total_spent",
            "average_order_price",
            "visits",
            "visits_per_day",
            "customers_referred",
            "total_spent_of_referred",
            "preferred_device",
            "location"
        ]
    );
    assert_eq!(
        keys(&body["profile"]),
        [
            "source_name",
            "campaign_name",
            "campaign_source",
            "campaign_medium",
            "campaign_content",
            "campaign_term"
        ]
    );
}

#[actix_web::test]
async fn create_with_only_a_name_fills_every_default() {
    let app = spawn!();
    let body = app.create_customer(json!({"full_name": "Only Name"})).await;
    assert!(id_of(&body) > 0);
    assert_eq!(body["multipass_identifier"], Value::Null);
    assert_eq!(body["mobile"], "");
    assert_eq!(body["full_name"], "Only Name");
    assert_eq!(body["gender"], "unknown");
    assert_eq!(body["email"], "");
    assert_eq!(body["birthday"], Value::Null);
    assert_eq!(body["avatar"], "");
    assert_eq!(body["note"], "");
    assert_eq!(body["accepts_marketing"], false);
    assert_eq!(body["referral_code"], "");
    assert_eq!(body["referrer"], Value::Null);
    assert_eq!(body["tags"], json!([]));
    assert_eq!(body["addresses"], json!([]));
    assert_eq!(body["segments"], json!([]));
    assert_eq!(body["segment_ids"], json!([]));
    assert_eq!(
        body["statistics"],
        json!({
            "last_order_id": null, "last_order_paid_at": null, "abandoned_checkouts": 0,
            "orders": 0, "paid_orders": 0, "total_spent": "0.00", "average_order_price": "0.00",
            "visits": 0, "visits_per_day": "0.00", "customers_referred": 0,
            "total_spent_of_referred": "0.00", "preferred_device": "", "location": ""
        })
    );
    assert_eq!(
        body["profile"],
        json!({
            "source_name": "unknown", "campaign_name": "", "campaign_source": "",
            "campaign_medium": "", "campaign_content": "", "campaign_term": ""
        })
    );
    assert_eq!(body["wechat_nickname"], "用户没有通过微信授权登录");
    assert_eq!(body["level"], Value::Null);
    assert_eq!(body["total_points"], 0);
    assert_eq!(body["points"], 0);
    assert_eq!(body["metafields"], json!([]));
    assert!(body["created_at"].is_string());
    assert!(body["updated_at"].is_string());
}

#[actix_web::test]
async fn create_stores_every_writable_field() {
    let app = spawn!();
    let referrer = app.customer_id(json!({"full_name": "Referrer"})).await;
    let body = app
        .create_customer(json!({
            "mobile": "13821761807", "full_name": "Xindong Ding", "gender": "male",
            "email": "dxd.spirits@gmail.com", "birthday": "1986-05-24", "note": "a note",
            "accepts_marketing": true, "referral_code": "CODE1", "tags": ["vip"],
            "avatar": "https://img.example.com/a.png", "referrer": referrer,
            "multipass_identifier": "mp-1",
            "profile": {"source_name": "wechat", "campaign_name": "spring"},
            "metafields": [{"namespace": "erp", "key": "no", "value": "42"}]
        }))
        .await;
    let id = id_of(&body);
    assert_eq!(body["mobile"], "13821761807");
    assert_eq!(body["full_name"], "Xindong Ding");
    assert_eq!(body["gender"], "male");
    assert_eq!(body["email"], "dxd.spirits@gmail.com");
    assert_eq!(body["birthday"], "1986-05-24");
    assert_eq!(body["note"], "a note");
    assert_eq!(body["accepts_marketing"], true);
    assert_eq!(body["referral_code"], "CODE1");
    assert_eq!(body["tags"], json!(["vip"]));
    assert_eq!(body["avatar"], "https://img.example.com/a.png");
    assert_eq!(body["referrer"], referrer);
    assert_eq!(body["multipass_identifier"], "mp-1");
    assert_eq!(body["profile"]["source_name"], "wechat");
    assert_eq!(body["profile"]["campaign_name"], "spring");
    assert_eq!(body["profile"]["campaign_term"], "");
    assert_eq!(
        body["metafields"],
        json!([{"namespace": "erp", "key": "no", "value": "42"}])
    );
    // What was stored is what a read returns.
    let read = app.get(&customer_path(id)).await.expect(200).body;
    assert_eq!(read, body);
}

#[actix_web::test]
async fn retrieve_returns_the_same_representation_as_create() {
    let app = spawn!();
    let created = app
        .create_customer(json!({"mobile": "12345678", "email": "a@example.com", "tags": ["x"]}))
        .await;
    let read = app.get(&customer_path(id_of(&created))).await.expect(200);
    assert_eq!(read.body, created);
    assert_eq!(keys(&read.body), keys(&created));
}

#[actix_web::test]
async fn retrieve_of_an_unknown_customer_is_404() {
    let app = spawn!();
    let resp = app.get(&customer_path(987_654)).await.expect(404);
    assert_eq!(resp.body, json!({"detail": "Not found."}));
}

#[actix_web::test]
async fn list_items_have_exactly_the_list_keys_in_order() {
    let app = spawn!();
    app.create_customer(json!({
        "full_name": "Listed", "mobile": "12345", "tags": ["t"], "profile": {"campaign_name": "c"},
        "metafields": [{"namespace": "n", "key": "k", "value": "v"}], "referral_code": "R"
    }))
    .await;
    let body = app.get(CUSTOMERS).await.expect(200).body;
    let item = &body["results"][0];
    assert_eq!(
        keys(item),
        [
            "id",
            "mobile",
            "full_name",
            "gender",
            "email",
            "birthday",
            "note",
            "accepts_marketing",
            "tags",
            "addresses",
            "segments",
            "created_at"
        ]
    );
    assert_eq!(item["full_name"], "Listed");
    assert_eq!(item["tags"], json!(["t"]));
}

#[actix_web::test]
async fn list_item_matches_the_full_representation_on_shared_keys() {
    let app = spawn!();
    let sid = app.segment_id("seg").await;
    let id = app
        .customer_id(json!({
            "full_name": "Same", "mobile": "55555", "email": "same@example.com",
            "birthday": "2000-02-29", "note": "n", "accepts_marketing": true, "gender": "female",
            "tags": ["b", "a"]
        }))
        .await;
    create_address(&app, id).await;
    app.post(
        &format!("/api/crm/segment/{sid}/segment_customer/"),
        &json!([{"customer_id": id}]),
    )
    .await
    .expect(200);
    let full = app.get(&customer_path(id)).await.expect(200).body;
    let list = app.get(CUSTOMERS).await.expect(200).body;
    let item = &list["results"][0];
    for key in keys(item) {
        assert_eq!(item[key], full[key], "{key}");
    }
    assert_eq!(item["segments"], json!([{"id": sid, "title": "seg"}]));
}

#[actix_web::test]
async fn list_is_newest_first_by_default() {
    let app = spawn!();
    let a = app.customer_id(json!({"full_name": "A"})).await;
    let b = app.customer_id(json!({"full_name": "B"})).await;
    let c = app.customer_id(json!({"full_name": "C"})).await;
    let body = app.get(CUSTOMERS).await.expect(200).body;
    let ids: Vec<i64> = body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(id_of)
        .collect();
    assert_eq!(ids, [c, b, a]);
    assert_eq!(body["count"], 3);
}

#[actix_web::test]
async fn segments_and_segment_ids_show_memberships() {
    let app = spawn!();
    let id = app.customer_id(json!({"full_name": "Member"})).await;
    let s1 = app.segment_id("first").await;
    let s2 = app.segment_id("second").await;
    for sid in [s2, s1] {
        app.post(
            &format!("/api/crm/segment/{sid}/segment_customer/"),
            &json!([{"customer_id": id}]),
        )
        .await
        .expect(200);
    }
    let body = app.get(&customer_path(id)).await.expect(200).body;
    assert_eq!(
        body["segments"],
        json!([{"id": s1, "title": "first"}, {"id": s2, "title": "second"}])
    );
    assert_eq!(body["segment_ids"], json!([s1, s2]));
}

#[actix_web::test]
async fn addresses_appear_in_the_customer() {
    let app = spawn!();
    let id = app.customer_id(json!({"full_name": "Has Address"})).await;
    let address = create_address(&app, id).await;
    let body = app.get(&customer_path(id)).await.expect(200).body;
    assert_eq!(body["addresses"], json!([address]));
}

// --- mobile ---------------------------------------------------------------------

#[actix_web::test]
async fn mobile_given_as_a_json_number_is_stored_as_a_string() {
    let app = spawn!();
    let body = app.create_customer(json!({"mobile": 13000000000u64})).await;
    assert_eq!(body["mobile"], json!("13000000000"));
    let read = app.get(&customer_path(id_of(&body))).await.expect(200).body;
    assert_eq!(read["mobile"], json!("13000000000"));
    // A number clashes with the same digits given as a string.
    create_fails(&app, json!({"mobile": "13000000000"}), "mobile").await;
}

#[actix_web::test]
async fn mobile_accepts_an_optional_plus_then_5_to_20_digits() {
    let app = spawn!();
    for good in [
        "12345",
        "+12345",
        "+8613000000000",
        &"9".repeat(20),
        &format!("+{}", "8".repeat(20)),
    ] {
        let body = app.create_customer(json!({"mobile": good})).await;
        assert_eq!(body["mobile"], good);
    }
}

#[actix_web::test]
async fn mobile_refuses_anything_but_an_optional_plus_and_5_to_20_digits() {
    let app = spawn!();
    for bad in [
        json!("1234"),
        json!("+1234"),
        json!("1".repeat(21)),
        json!("130-0000-0000"),
        json!("++12345"),
        json!("12345+"),
        json!("abcdef"),
        json!("1234a5"),
        json!(1234),
        json!(true),
    ] {
        let resp = app
            .post(CUSTOMERS, &json!({"full_name": "X", "mobile": bad}))
            .await;
        assert_field_error(&resp, "mobile");
    }
    assert_eq!(count(&app).await, 0);
}

#[actix_web::test]
async fn blank_mobile_is_allowed_and_not_unique() {
    let app = spawn!();
    let a = app
        .create_customer(json!({"full_name": "A", "mobile": ""}))
        .await;
    let b = app
        .create_customer(json!({"full_name": "B", "mobile": ""}))
        .await;
    assert_eq!(a["mobile"], "");
    assert_eq!(b["mobile"], "");
}

#[actix_web::test]
async fn duplicate_mobile_is_refused_with_the_drf_message() {
    let app = spawn!();
    app.create_customer(json!({"mobile": "13800138000"})).await;
    let resp = app
        .post(
            CUSTOMERS,
            &json!({"mobile": "13800138000", "full_name": "Other"}),
        )
        .await
        .expect(400);
    assert_eq!(
        resp.body,
        json!({"mobile": ["customer with this mobile already exists."]})
    );
    assert_eq!(count(&app).await, 1);
}

#[actix_web::test]
async fn updating_to_another_customers_mobile_is_refused() {
    let app = spawn!();
    app.create_customer(json!({"mobile": "11111"})).await;
    let b = app.customer_id(json!({"mobile": "22222"})).await;
    let resp = app
        .patch(&customer_path(b), &json!({"mobile": "11111"}))
        .await
        .expect(400);
    assert_eq!(
        resp.body,
        json!({"mobile": ["customer with this mobile already exists."]})
    );
    assert_eq!(
        app.get(&customer_path(b)).await.expect(200).body["mobile"],
        "22222"
    );
    // Writing a customer's own mobile again is no clash.
    app.put(
        &customer_path(b),
        &json!({"mobile": "22222", "note": "again"}),
    )
    .await
    .expect(200);
}

#[actix_web::test]
async fn null_mobile_is_refused_as_not_nullable() {
    let app = spawn!();
    let resp = app
        .post(CUSTOMERS, &json!({"full_name": "X", "mobile": null}))
        .await;
    assert_field_error(&resp, "mobile");
    assert_eq!(resp.body["mobile"], json!(["This field may not be null."]));
}

// --- email ------------------------------------------------------------------------

#[actix_web::test]
async fn invalid_email_is_refused() {
    let app = spawn!();
    for bad in [
        "plain",
        "a@b",
        "@example.com",
        "a b@example.com",
        "a@@example.com",
        "a@example..com",
    ] {
        let resp = app
            .post(CUSTOMERS, &json!({"full_name": "X", "email": bad}))
            .await;
        assert_field_error(&resp, "email");
    }
    assert_eq!(count(&app).await, 0);
}

#[actix_web::test]
async fn email_longer_than_254_characters_is_refused() {
    let app = spawn!();
    let long = format!("{}@{}.com", "a".repeat(60), "b".repeat(200));
    assert!(long.chars().count() > 254);
    create_fails(&app, json!({"full_name": "X", "email": long}), "email").await;
}

#[actix_web::test]
async fn email_is_unique_case_insensitively() {
    let app = spawn!();
    let first = app
        .create_customer(json!({"email": "Mixed.Case@Example.com"}))
        .await;
    assert_eq!(first["email"], "Mixed.Case@Example.com", "kept as written");
    for clash in [
        "mixed.case@example.com",
        "MIXED.CASE@EXAMPLE.COM",
        "Mixed.Case@Example.com",
    ] {
        let resp = app
            .post(CUSTOMERS, &json!({"full_name": "Other", "email": clash}))
            .await
            .expect(400);
        assert_eq!(
            resp.body,
            json!({"email": ["customer with this email already exists."]}),
            "{clash}"
        );
    }
    let other = app.customer_id(json!({"email": "other@example.com"})).await;
    let resp = app
        .patch(
            &customer_path(other),
            &json!({"email": "MIXED.case@example.COM"}),
        )
        .await
        .expect(400);
    assert_eq!(
        resp.body,
        json!({"email": ["customer with this email already exists."]})
    );
    assert_eq!(count(&app).await, 2);
}

#[actix_web::test]
async fn blank_email_is_allowed_and_not_unique() {
    let app = spawn!();
    app.create_customer(json!({"full_name": "A", "email": ""}))
        .await;
    app.create_customer(json!({"full_name": "B", "email": ""}))
        .await;
    assert_eq!(count(&app).await, 2);
}

// --- referral code, multipass identifier -----------------------------------------

#[actix_web::test]
async fn referral_code_is_at_most_32_characters() {
    let app = spawn!();
    let ok = app
        .create_customer(json!({"full_name": "A", "referral_code": "r".repeat(32)}))
        .await;
    assert_eq!(ok["referral_code"], "r".repeat(32));
    create_fails(
        &app,
        json!({"full_name": "B", "referral_code": "r".repeat(33)}),
        "referral_code",
    )
    .await;
}

#[actix_web::test]
async fn referral_code_is_unique_when_not_blank() {
    let app = spawn!();
    app.create_customer(json!({"full_name": "A", "referral_code": "SPRING"}))
        .await;
    let resp = app
        .post(
            CUSTOMERS,
            &json!({"full_name": "B", "referral_code": "SPRING"}),
        )
        .await;
    assert_field_error(&resp, "referral_code");
    app.create_customer(json!({"full_name": "C", "referral_code": ""}))
        .await;
    app.create_customer(json!({"full_name": "D", "referral_code": ""}))
        .await;
    assert_eq!(count(&app).await, 3);
}

#[actix_web::test]
async fn multipass_identifier_is_unique_when_not_null() {
    let app = spawn!();
    let a = app
        .create_customer(json!({"full_name": "A", "multipass_identifier": "mp-1"}))
        .await;
    assert_eq!(a["multipass_identifier"], "mp-1");
    let resp = app
        .post(
            CUSTOMERS,
            &json!({"full_name": "B", "multipass_identifier": "mp-1"}),
        )
        .await;
    assert_field_error(&resp, "multipass_identifier");
    let c = app
        .create_customer(json!({"full_name": "C", "multipass_identifier": null}))
        .await;
    let d = app.create_customer(json!({"full_name": "D"})).await;
    assert_eq!(c["multipass_identifier"], Value::Null);
    assert_eq!(d["multipass_identifier"], Value::Null);
    // Clearing it with null works, and frees the identifier.
    let cleared = app
        .patch(
            &customer_path(id_of(&a)),
            &json!({"multipass_identifier": null}),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(cleared["multipass_identifier"], Value::Null);
    app.create_customer(json!({"full_name": "E", "multipass_identifier": "mp-1"}))
        .await;
}

// --- gender, birthday, avatar, note, full name ------------------------------------

#[actix_web::test]
async fn gender_takes_the_three_choices_and_defaults_to_unknown() {
    let app = spawn!();
    for gender in ["unknown", "male", "female"] {
        let body = app
            .create_customer(json!({"full_name": "G", "gender": gender}))
            .await;
        assert_eq!(body["gender"], gender);
    }
    let body = app.create_customer(json!({"full_name": "Default"})).await;
    assert_eq!(body["gender"], "unknown");
}

#[actix_web::test]
async fn gender_outside_the_choices_is_refused() {
    let app = spawn!();
    for bad in [
        json!("Male"),
        json!("other"),
        json!(""),
        json!(1),
        json!(null),
    ] {
        let resp = app
            .post(CUSTOMERS, &json!({"full_name": "G", "gender": bad}))
            .await;
        assert_field_error(&resp, "gender");
    }
    let resp = app
        .post(CUSTOMERS, &json!({"full_name": "G", "gender": "x"}))
        .await;
    assert_eq!(
        resp.body,
        json!({"gender": ["\"x\" is not a valid choice."]})
    );
}

#[actix_web::test]
async fn birthday_is_a_date_and_may_be_null() {
    let app = spawn!();
    let body = app
        .create_customer(json!({"full_name": "B", "birthday": "1986-05-24"}))
        .await;
    assert_eq!(body["birthday"], "1986-05-24");
    let id = id_of(&body);
    let cleared = app
        .patch(&customer_path(id), &json!({"birthday": null}))
        .await
        .expect(200)
        .body;
    assert_eq!(cleared["birthday"], Value::Null);
    let null = app
        .create_customer(json!({"full_name": "N", "birthday": null}))
        .await;
    assert_eq!(null["birthday"], Value::Null);
}

#[actix_web::test]
async fn birthday_in_the_future_is_refused() {
    let app = spawn!();
    create_fails(
        &app,
        json!({"full_name": "F", "birthday": "2999-01-01"}),
        "birthday",
    )
    .await;
    let id = app
        .customer_id(json!({"full_name": "F", "birthday": "1990-01-01"}))
        .await;
    let resp = app
        .patch(&customer_path(id), &json!({"birthday": "2999-01-01"}))
        .await;
    assert_field_error(&resp, "birthday");
    assert_eq!(
        app.get(&customer_path(id)).await.body["birthday"],
        "1990-01-01"
    );
}

#[actix_web::test]
async fn birthday_in_another_format_is_refused() {
    let app = spawn!();
    for bad in [
        json!("24/05/1986"),
        json!("1986-02-30"),
        json!("1986-5-24x"),
        json!("-0001-01-01"),
        json!("+1986-05-24"),
        json!(19860524),
        json!(""),
    ] {
        create_fails(&app, json!({"full_name": "F", "birthday": bad}), "birthday").await;
    }
}

#[actix_web::test]
async fn avatar_is_a_url_or_blank() {
    let app = spawn!();
    let a = app
        .create_customer(json!({"full_name": "A", "avatar": "http://example.com/x.jpg"}))
        .await;
    assert_eq!(a["avatar"], "http://example.com/x.jpg");
    let b = app
        .create_customer(json!({"full_name": "B", "avatar": ""}))
        .await;
    assert_eq!(b["avatar"], "");
    for bad in ["not a url", "example.com/x.jpg", "http://", "ftp//x"] {
        create_fails(&app, json!({"full_name": "C", "avatar": bad}), "avatar").await;
    }
}

#[actix_web::test]
async fn avatar_is_at_most_1024_characters() {
    let app = spawn!();
    let prefix = "https://example.com/";
    let ok = format!("{prefix}{}", "a".repeat(1024 - prefix.len()));
    app.create_customer(json!({"full_name": "A", "avatar": ok}))
        .await;
    let long = format!("{prefix}{}", "a".repeat(1025 - prefix.len()));
    create_fails(&app, json!({"full_name": "B", "avatar": long}), "avatar").await;
}

#[actix_web::test]
async fn note_is_at_most_10000_characters() {
    let app = spawn!();
    let ok = app
        .create_customer(json!({"full_name": "A", "note": "n".repeat(10_000)}))
        .await;
    assert_eq!(ok["note"].as_str().unwrap().chars().count(), 10_000);
    create_fails(
        &app,
        json!({"full_name": "B", "note": "n".repeat(10_001)}),
        "note",
    )
    .await;
}

#[actix_web::test]
async fn full_name_is_at_most_255_characters() {
    let app = spawn!();
    // Characters, not bytes.
    let ok = app
        .create_customer(json!({"full_name": "名".repeat(255)}))
        .await;
    assert_eq!(ok["full_name"], "名".repeat(255));
    create_fails(&app, json!({"full_name": "n".repeat(256)}), "full_name").await;
}

#[actix_web::test]
async fn null_for_a_non_nullable_string_is_refused() {
    let app = spawn!();
    for field in ["note", "email", "avatar", "referral_code", "gender"] {
        let resp = app
            .post(CUSTOMERS, &json!({"full_name": "X", field: null}))
            .await;
        assert_field_error(&resp, field);
        assert_eq!(
            resp.body[field],
            json!(["This field may not be null."]),
            "{field}"
        );
    }
    let resp = app
        .post(CUSTOMERS, &json!({"mobile": "12345", "full_name": null}))
        .await;
    assert_field_error(&resp, "full_name");
    assert_eq!(count(&app).await, 0);
}

#[actix_web::test]
async fn null_characters_in_text_are_refused_never_a_500() {
    let app = spawn!();
    for (field, body) in [
        ("full_name", json!({"full_name": "a\u{0}b"})),
        ("note", json!({"full_name": "x", "note": "a\u{0}b"})),
        (
            "avatar",
            json!({"full_name": "x", "avatar": "http://a\u{0}b.example.com"}),
        ),
        (
            "referral_code",
            json!({"full_name": "x", "referral_code": "a\u{0}"}),
        ),
        (
            "multipass_identifier",
            json!({"full_name": "x", "multipass_identifier": "a\u{0}"}),
        ),
        ("tags", json!({"full_name": "x", "tags": ["ok", "a\u{0}"]})),
        (
            "profile",
            json!({"full_name": "x", "profile": {"campaign_name": "a\u{0}"}}),
        ),
        (
            "metafields",
            json!({"full_name": "x", "metafields": [{"namespace": "n", "key": "k", "value": "a\u{0}"}]}),
        ),
        (
            "email",
            json!({"full_name": "x", "email": "a\u{0}@example.com"}),
        ),
        ("mobile", json!({"full_name": "x", "mobile": "12345\u{0}"})),
    ] {
        let resp = app.post(CUSTOMERS, &body).await;
        assert_field_error(&resp, field);
    }
    assert_eq!(count(&app).await, 0);
    let id = app.customer_id(json!({"full_name": "Clean"})).await;
    let resp = app
        .patch(&customer_path(id), &json!({"note": "\u{0}"}))
        .await;
    assert_field_error(&resp, "note");
    assert_eq!(app.get(&customer_path(id)).await.body["note"], "");
}

#[actix_web::test]
async fn accepts_marketing_reads_booleans_as_drf_does() {
    let app = spawn!();
    for (given, stored) in [
        (json!(true), true),
        (json!("true"), true),
        (json!("True"), true),
        (json!(1), true),
        (json!("1"), true),
        (json!(false), false),
        (json!("false"), false),
        (json!(0), false),
        (json!("0"), false),
    ] {
        let body = app
            .create_customer(json!({"full_name": "M", "accepts_marketing": given}))
            .await;
        assert_eq!(body["accepts_marketing"], stored, "{given}");
    }
    for bad in [json!("maybe"), json!(2), json!([]), json!(null)] {
        create_fails(
            &app,
            json!({"full_name": "M", "accepts_marketing": bad}),
            "accepts_marketing",
        )
        .await;
    }
}

#[actix_web::test]
async fn accepts_marketing_defaults_to_false() {
    let app = spawn!();
    let body = app.create_customer(json!({"full_name": "M"})).await;
    assert_eq!(body["accepts_marketing"], false);
}

// --- tags ---------------------------------------------------------------------------

#[actix_web::test]
async fn tags_are_trimmed_deduplicated_and_sorted() {
    let app = spawn!();
    let body = app
        .create_customer(json!({"full_name": "T", "tags": [" vip ", "b", "a", "vip", "b"]}))
        .await;
    assert_eq!(body["tags"], json!(["a", "b", "vip"]));
    let read = app.get(&customer_path(id_of(&body))).await.expect(200).body;
    assert_eq!(read["tags"], json!(["a", "b", "vip"]));
}

#[actix_web::test]
async fn a_tag_must_have_1_to_64_characters() {
    let app = spawn!();
    let ok = app
        .create_customer(json!({"full_name": "T", "tags": ["t".repeat(64)]}))
        .await;
    assert_eq!(ok["tags"], json!(["t".repeat(64)]));
    for bad in [json!(["ok", ""]), json!(["   "]), json!(["t".repeat(65)])] {
        create_fails(&app, json!({"full_name": "T", "tags": bad}), "tags").await;
    }
}

#[actix_web::test]
async fn tags_must_be_a_list_of_strings() {
    let app = spawn!();
    for bad in [
        json!("vip"),
        json!({"a": 1}),
        json!([["nested"]]),
        json!([null]),
        json!(null),
    ] {
        create_fails(&app, json!({"full_name": "T", "tags": bad}), "tags").await;
    }
    assert_eq!(count(&app).await, 0);
}

#[actix_web::test]
async fn a_given_tag_list_replaces_the_tags_and_a_missing_one_keeps_them() {
    let app = spawn!();
    let id = app
        .customer_id(json!({"full_name": "T", "tags": ["old1", "old2"]}))
        .await;
    let kept = app
        .patch(&customer_path(id), &json!({"note": "no tags given"}))
        .await
        .expect(200)
        .body;
    assert_eq!(kept["tags"], json!(["old1", "old2"]));
    let replaced = app
        .put(&customer_path(id), &json!({"tags": ["new", "old2"]}))
        .await
        .expect(200)
        .body;
    assert_eq!(replaced["tags"], json!(["new", "old2"]));
    let cleared = app
        .patch(&customer_path(id), &json!({"tags": []}))
        .await
        .expect(200)
        .body;
    assert_eq!(cleared["tags"], json!([]));
    assert_eq!(app.get(&customer_path(id)).await.body["tags"], json!([]));
}

// --- metafields ---------------------------------------------------------------------

#[actix_web::test]
async fn metafields_are_replaced_wholesale() {
    let app = spawn!();
    let id = app
        .customer_id(json!({
            "full_name": "M",
            "metafields": [
                {"namespace": "erp", "key": "no", "value": "1"},
                {"namespace": "erp", "key": "level", "value": "gold"}
            ]
        }))
        .await;
    let body = app.get(&customer_path(id)).await.body;
    assert_eq!(body["metafields"].as_array().unwrap().len(), 2);
    let kept = app
        .patch(&customer_path(id), &json!({"note": "x"}))
        .await
        .expect(200)
        .body;
    assert_eq!(kept["metafields"], body["metafields"]);
    let replaced = app
        .put(
            &customer_path(id),
            &json!({"metafields": [{"namespace": "crm", "key": "k", "value": "v"}]}),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(
        replaced["metafields"],
        json!([{"namespace": "crm", "key": "k", "value": "v"}])
    );
    let cleared = app
        .patch(&customer_path(id), &json!({"metafields": []}))
        .await
        .expect(200)
        .body;
    assert_eq!(cleared["metafields"], json!([]));
}

#[actix_web::test]
async fn duplicate_metafield_namespace_and_key_is_refused() {
    let app = spawn!();
    create_fails(
        &app,
        json!({
            "full_name": "M",
            "metafields": [
                {"namespace": "erp", "key": "no", "value": "1"},
                {"namespace": "erp", "key": "no", "value": "2"}
            ]
        }),
        "metafields",
    )
    .await;
    // The same key in another namespace is fine.
    let body = app
        .create_customer(json!({
            "full_name": "M",
            "metafields": [
                {"namespace": "erp", "key": "no", "value": "1"},
                {"namespace": "crm", "key": "no", "value": "2"}
            ]
        }))
        .await;
    assert_eq!(body["metafields"].as_array().unwrap().len(), 2);
}

#[actix_web::test]
async fn metafield_parts_are_bounded() {
    let app = spawn!();
    for bad in [
        json!([{"namespace": "", "key": "k", "value": "v"}]),
        json!([{"namespace": "n".repeat(65), "key": "k", "value": "v"}]),
        json!([{"namespace": "n", "key": "", "value": "v"}]),
        json!([{"namespace": "n", "key": "k".repeat(65), "value": "v"}]),
        json!([{"namespace": "n", "key": "k", "value": "v".repeat(4097)}]),
        json!([{"namespace": "n", "key": "k"}]),
        json!(["not an object"]),
        json!({"namespace": "n", "key": "k", "value": "v"}),
    ] {
        create_fails(
            &app,
            json!({"full_name": "M", "metafields": bad}),
            "metafields",
        )
        .await;
    }
    let ok = app
        .create_customer(json!({
            "full_name": "M",
            "metafields": [{"namespace": "n".repeat(64), "key": "k".repeat(64), "value": "v".repeat(4096)}]
        }))
        .await;
    assert_eq!(ok["metafields"][0]["value"], "v".repeat(4096));
}

// --- profile ------------------------------------------------------------------------

#[actix_web::test]
async fn profile_keys_merge_on_update() {
    let app = spawn!();
    let id = app
        .customer_id(json!({
            "full_name": "P",
            "profile": {"source_name": "wechat", "campaign_name": "spring", "campaign_term": "t"}
        }))
        .await;
    let body = app
        .patch(
            &customer_path(id),
            &json!({"profile": {"campaign_name": "summer", "campaign_medium": "sms"}}),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(
        body["profile"],
        json!({
            "source_name": "wechat", "campaign_name": "summer", "campaign_source": "",
            "campaign_medium": "sms", "campaign_content": "", "campaign_term": "t"
        })
    );
    let put = app
        .put(
            &customer_path(id),
            &json!({"profile": {"campaign_source": "ad"}}),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(put["profile"]["source_name"], "wechat");
    assert_eq!(put["profile"]["campaign_name"], "summer");
    assert_eq!(put["profile"]["campaign_source"], "ad");
    assert_eq!(
        app.get(&customer_path(id)).await.body["profile"],
        put["profile"]
    );
}

#[actix_web::test]
async fn profile_must_be_an_object_of_short_strings() {
    let app = spawn!();
    for bad in [
        json!("wechat"),
        json!(["wechat"]),
        json!({"source_name": "s".repeat(256)}),
        json!({"campaign_name": null}),
    ] {
        create_fails(&app, json!({"full_name": "P", "profile": bad}), "profile").await;
    }
    let ok = app
        .create_customer(json!({"full_name": "P", "profile": {"source_name": "s".repeat(255)}}))
        .await;
    assert_eq!(ok["profile"]["source_name"], "s".repeat(255));
}

// --- identity (mobile, email or full name) ------------------------------------------

#[actix_web::test]
async fn create_needs_a_mobile_email_or_name() {
    let app = spawn!();
    for body in [
        json!({}),
        json!({"mobile": "", "email": "", "full_name": ""}),
        json!({"full_name": "   "}),
        json!({"note": "only a note", "gender": "male", "tags": ["t"]}),
    ] {
        let resp = app.post(CUSTOMERS, &body).await;
        assert_field_error(&resp, "non_field_errors");
    }
    assert_eq!(count(&app).await, 0);
    for body in [
        json!({"mobile": "12345"}),
        json!({"email": "a@example.com"}),
        json!({"full_name": "A"}),
    ] {
        app.create_customer(body).await;
    }
}

#[actix_web::test]
async fn update_cannot_blank_the_last_of_mobile_email_and_name() {
    let app = spawn!();
    let id = app
        .customer_id(json!({"mobile": "12345", "tags": ["keep"]}))
        .await;
    let resp = app.patch(&customer_path(id), &json!({"mobile": ""})).await;
    assert_field_error(&resp, "non_field_errors");
    let resp = app
        .put(
            &customer_path(id),
            &json!({"mobile": "", "email": "", "full_name": "", "tags": []}),
        )
        .await;
    assert_field_error(&resp, "non_field_errors");
    let stored = app.get(&customer_path(id)).await.expect(200).body;
    assert_eq!(stored["mobile"], "12345");
    assert_eq!(stored["tags"], json!(["keep"]));
    // Blanking one while another is set is fine.
    let body = app
        .patch(
            &customer_path(id),
            &json!({"mobile": "", "full_name": "Now Named"}),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(body["mobile"], "");
    assert_eq!(body["full_name"], "Now Named");
}

#[actix_web::test]
async fn body_that_is_not_an_object_is_refused() {
    let app = spawn!();
    for body in [json!([{"full_name": "A"}]), json!("A"), json!(1)] {
        let resp = app.post(CUSTOMERS, &body).await;
        assert_field_error(&resp, "non_field_errors");
    }
    assert_eq!(count(&app).await, 0);
}

// --- referrer -----------------------------------------------------------------------

#[actix_web::test]
async fn referrer_must_exist() {
    let app = spawn!();
    for bad in [
        json!(987_654),
        json!(0),
        json!(-1),
        json!("abc"),
        json!([1]),
    ] {
        create_fails(&app, json!({"full_name": "R", "referrer": bad}), "referrer").await;
    }
    let id = app.customer_id(json!({"full_name": "R"})).await;
    let resp = app
        .patch(&customer_path(id), &json!({"referrer": 987_654}))
        .await;
    assert_field_error(&resp, "referrer");
    assert_eq!(
        app.get(&customer_path(id)).await.body["referrer"],
        Value::Null
    );
    assert_eq!(count(&app).await, 1);
}

#[actix_web::test]
async fn a_customer_cannot_be_its_own_referrer() {
    let app = spawn!();
    let id = app.customer_id(json!({"full_name": "Self"})).await;
    for update in [
        app.patch(&customer_path(id), &json!({"referrer": id}))
            .await,
        app.put(&customer_path(id), &json!({"referrer": id})).await,
    ] {
        assert_field_error(&update, "referrer");
    }
    assert_eq!(
        app.get(&customer_path(id)).await.body["referrer"],
        Value::Null
    );
}

#[actix_web::test]
async fn referrer_can_be_set_changed_and_cleared() {
    let app = spawn!();
    let r1 = app.customer_id(json!({"full_name": "R1"})).await;
    let r2 = app.customer_id(json!({"full_name": "R2"})).await;
    let id = app
        .customer_id(json!({"full_name": "C", "referrer": r1}))
        .await;
    assert_eq!(app.get(&customer_path(id)).await.body["referrer"], r1);
    let body = app
        .patch(&customer_path(id), &json!({"referrer": r2}))
        .await
        .expect(200)
        .body;
    assert_eq!(body["referrer"], r2);
    let body = app
        .patch(&customer_path(id), &json!({"referrer": null}))
        .await
        .expect(200)
        .body;
    assert_eq!(body["referrer"], Value::Null);
}

#[actix_web::test]
async fn customers_referred_counts_the_customers_naming_this_referrer() {
    let app = spawn!();
    let referrer = app.customer_id(json!({"full_name": "Referrer"})).await;
    let other = app.customer_id(json!({"full_name": "Other"})).await;
    let stat = |body: &Value| body["statistics"]["customers_referred"].clone();
    assert_eq!(stat(&app.get(&customer_path(referrer)).await.body), 0);
    let a = app
        .customer_id(json!({"full_name": "A", "referrer": referrer}))
        .await;
    let b = app
        .customer_id(json!({"full_name": "B", "referrer": referrer}))
        .await;
    app.customer_id(json!({"full_name": "C", "referrer": other}))
        .await;
    assert_eq!(stat(&app.get(&customer_path(referrer)).await.body), 2);
    assert_eq!(stat(&app.get(&customer_path(other)).await.body), 1);
    assert_eq!(stat(&app.get(&customer_path(a)).await.body), 0);
    // Moving one referral and deleting another are reflected live.
    app.patch(&customer_path(a), &json!({"referrer": other}))
        .await
        .expect(200);
    assert_eq!(stat(&app.get(&customer_path(referrer)).await.body), 1);
    assert_eq!(stat(&app.get(&customer_path(other)).await.body), 2);
    app.delete(&customer_path(b)).await.expect(204);
    assert_eq!(stat(&app.get(&customer_path(referrer)).await.body), 0);
    assert_eq!(
        app.get(&customer_path(referrer)).await.body["statistics"]["total_spent_of_referred"],
        "0.00"
    );
}

#[actix_web::test]
async fn deleting_the_referrer_sets_referrer_to_null() {
    let app = spawn!();
    let referrer = app.customer_id(json!({"full_name": "Referrer"})).await;
    let referred = app
        .customer_id(json!({"full_name": "Referred", "referrer": referrer}))
        .await;
    let before = app.get(&customer_path(referred)).await.body;
    app.delete(&customer_path(referrer)).await.expect(204);
    let after = app.get(&customer_path(referred)).await.expect(200).body;
    assert_eq!(after["referrer"], Value::Null);
    assert_eq!(after["full_name"], "Referred");
    assert_eq!(after["created_at"], before["created_at"]);
}

// --- read-only and unknown fields ---------------------------------------------------

#[actix_web::test]
async fn read_only_and_unknown_fields_in_a_body_are_ignored() {
    let app = spawn!();
    let body = app
        .create_customer(json!({
            "full_name": "RO", "id": 424_242, "created_at": "2000-01-01T00:00:00.000000Z",
            "updated_at": "2000-01-01T00:00:00.000000Z",
            "statistics": {"orders": 99, "customers_referred": 7, "total_spent": "9.99"},
            "wechat_nickname": "nick", "level": 3, "total_points": 50, "points": 50,
            "segments": [{"id": 1, "title": "x"}], "segment_ids": [1], "addresses": [{"city": "x"}],
            "no_such_field": "whatever"
        }))
        .await;
    let id = id_of(&body);
    assert_ne!(id, 424_242);
    assert!(!body["created_at"].as_str().unwrap().starts_with("2000"));
    assert!(!body["updated_at"].as_str().unwrap().starts_with("2000"));
    assert_eq!(body["statistics"]["orders"], 0);
    assert_eq!(body["statistics"]["customers_referred"], 0);
    assert_eq!(body["statistics"]["total_spent"], "0.00");
    assert_eq!(body["wechat_nickname"], "用户没有通过微信授权登录");
    assert_eq!(body["level"], Value::Null);
    assert_eq!(body["total_points"], 0);
    assert_eq!(body["points"], 0);
    assert_eq!(body["segments"], json!([]));
    assert_eq!(body["segment_ids"], json!([]));
    assert_eq!(body["addresses"], json!([]));
    assert!(body.get("no_such_field").is_none());
    app.get("/api/crm/customer/424242/").await.expect(404);

    let other = app.customer_id(json!({"full_name": "Other"})).await;
    let updated = app
        .put(
            &customer_path(id),
            &json!({"id": other, "created_at": "2000-01-01T00:00:00.000000Z", "note": "n", "bogus": 1}),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(id_of(&updated), id);
    assert_eq!(updated["created_at"], body["created_at"]);
    assert_eq!(updated["note"], "n");
    assert_eq!(app.get(&customer_path(other)).await.body["note"], "");
}

// --- update -------------------------------------------------------------------------

#[actix_web::test]
async fn put_and_patch_leave_fields_that_are_left_out_unchanged() {
    let app = spawn!();
    let original = app
        .create_customer(json!({
            "mobile": "13800000001", "full_name": "Full", "gender": "female",
            "email": "full@example.com", "birthday": "1990-01-02", "avatar": "https://x.example.com/a",
            "note": "note", "accepts_marketing": true, "referral_code": "RC",
            "multipass_identifier": "mp", "tags": ["t1"], "profile": {"campaign_name": "c"},
            "metafields": [{"namespace": "n", "key": "k", "value": "v"}]
        }))
        .await;
    let id = id_of(&original);
    let unchanged_except = |body: &Value, changed: &str| {
        for key in keys(&original) {
            if key != changed && key != "updated_at" {
                assert_eq!(
                    body[key], original[key],
                    "{key} changed by a write to {changed}"
                );
            }
        }
    };
    let put = app
        .put(&customer_path(id), &json!({"note": "put"}))
        .await
        .expect(200)
        .body;
    assert_eq!(put["note"], "put");
    unchanged_except(&put, "note");
    let patch = app
        .patch(
            &customer_path(id),
            &json!({"note": "note", "gender": "male"}),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(patch["gender"], "male");
    unchanged_except(&patch, "gender");
    let empty = app
        .put(&customer_path(id), &json!({}))
        .await
        .expect(200)
        .body;
    unchanged_except(&empty, "gender");
}

#[actix_web::test]
async fn update_changes_every_writable_field() {
    let app = spawn!();
    let referrer = app.customer_id(json!({"full_name": "Ref"})).await;
    let id = app.customer_id(json!({"full_name": "Before"})).await;
    let body = app
        .put(
            &customer_path(id),
            &json!({
                "mobile": 13900000000u64, "full_name": "After", "gender": "female",
                "email": "after@example.com", "birthday": "2001-01-01", "avatar": "https://a.example.com/",
                "note": "changed", "accepts_marketing": "true", "referral_code": "NEW",
                "referrer": referrer, "multipass_identifier": "mp-after", "tags": ["z", "a"],
                "profile": {"source_name": "web"},
                "metafields": [{"namespace": "a", "key": "b", "value": "c"}]
            }),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(body["mobile"], "13900000000");
    assert_eq!(body["full_name"], "After");
    assert_eq!(body["gender"], "female");
    assert_eq!(body["email"], "after@example.com");
    assert_eq!(body["birthday"], "2001-01-01");
    assert_eq!(body["avatar"], "https://a.example.com/");
    assert_eq!(body["note"], "changed");
    assert_eq!(body["accepts_marketing"], true);
    assert_eq!(body["referral_code"], "NEW");
    assert_eq!(body["referrer"], referrer);
    assert_eq!(body["multipass_identifier"], "mp-after");
    assert_eq!(body["tags"], json!(["a", "z"]));
    assert_eq!(body["profile"]["source_name"], "web");
    assert_eq!(
        body["metafields"],
        json!([{"namespace": "a", "key": "b", "value": "c"}])
    );
    assert_eq!(app.get(&customer_path(id)).await.expect(200).body, body);
}

#[actix_web::test]
async fn updated_at_changes_on_every_write_and_created_at_never() {
    let app = spawn!();
    let created = app.create_customer(json!({"full_name": "Times"})).await;
    let id = id_of(&created);
    let mut last = created["updated_at"].as_str().unwrap().to_owned();
    let writes = [
        json!({"note": "1"}),
        json!({"note": "1"}),
        json!({}),
        json!({"tags": ["x"]}),
    ];
    for (i, write) in writes.iter().enumerate() {
        let body = if i % 2 == 0 {
            app.patch(&customer_path(id), write).await
        } else {
            app.put(&customer_path(id), write).await
        }
        .expect(200)
        .body;
        assert_eq!(body["created_at"], created["created_at"]);
        let now = body["updated_at"].as_str().unwrap().to_owned();
        // Same format and offset, so the strings order as the instants do.
        assert!(now > last, "write {i}: updated_at {now} not after {last}");
        last = now;
    }
    // A failed write changes nothing.
    app.patch(&customer_path(id), &json!({"gender": "bad"}))
        .await
        .expect(400);
    let read = app.get(&customer_path(id)).await.body;
    assert_eq!(read["updated_at"], last.as_str());
    assert_eq!(read["created_at"], created["created_at"]);
}

#[actix_web::test]
async fn update_of_an_unknown_customer_is_404() {
    let app = spawn!();
    for resp in [
        app.put(&customer_path(987_654), &json!({"full_name": "X"}))
            .await,
        app.patch(&customer_path(987_654), &json!({"full_name": "X"}))
            .await,
    ] {
        assert_eq!(resp.status, 404, "{}", resp.text);
        assert_eq!(resp.body, json!({"detail": "Not found."}));
    }
    assert_eq!(count(&app).await, 0);
}

#[actix_web::test]
async fn invalid_update_reports_every_bad_field() {
    let app = spawn!();
    let id = app.customer_id(json!({"full_name": "X"})).await;
    let resp = app
        .patch(
            &customer_path(id),
            &json!({"gender": "x", "email": "nope", "birthday": "2999-01-01", "tags": [""], "mobile": "1"}),
        )
        .await
        .expect(400);
    let mut fields = error_fields(&resp.body);
    fields.sort_unstable();
    assert_eq!(fields, ["birthday", "email", "gender", "mobile", "tags"]);
}

// --- failed writes leave nothing behind -----------------------------------------------

#[actix_web::test]
async fn failed_create_leaves_nothing_behind() {
    let app = spawn!();
    app.create_customer(json!({"email": "taken@example.com"}))
        .await;
    // Valid fields with one bad tag.
    let resp = app
        .post(
            CUSTOMERS,
            &json!({"mobile": "13700000000", "full_name": "Partial", "tags": ["good", ""]}),
        )
        .await;
    assert_field_error(&resp, "tags");
    // Valid fields and tags, but a clashing e-mail: caught only by the database.
    let resp = app
        .post(
            CUSTOMERS,
            &json!({
                "mobile": "13700000001", "full_name": "Partial", "email": "TAKEN@example.com",
                "tags": ["leftover"], "referral_code": "LEFT",
                "metafields": [{"namespace": "n", "key": "k", "value": "v"}]
            }),
        )
        .await
        .expect(400);
    assert_eq!(
        resp.body,
        json!({"email": ["customer with this email already exists."]})
    );
    let list = app.get(CUSTOMERS).await.expect(200).body;
    assert_eq!(list["count"], 1);
    assert_eq!(list["results"].as_array().unwrap().len(), 1);
    assert_eq!(list["results"][0]["email"], "taken@example.com");
    let search = app
        .get("/api/crm/customer/?search=Partial")
        .await
        .expect(200)
        .body;
    assert_eq!(search["count"], 0);
    let tagged = app
        .get("/api/crm/customer/?tag=leftover")
        .await
        .expect(200)
        .body;
    assert_eq!(tagged["count"], 0);
    // Nothing of the failed attempts holds on to its unique values.
    let body = app
        .create_customer(json!({
            "mobile": "13700000001", "full_name": "Now", "referral_code": "LEFT", "tags": ["leftover"]
        }))
        .await;
    assert_eq!(body["tags"], json!(["leftover"]));
    app.create_customer(json!({"mobile": "13700000000"})).await;
}

#[actix_web::test]
async fn failed_update_leaves_the_customer_unchanged() {
    let app = spawn!();
    app.create_customer(json!({"email": "taken@example.com", "referral_code": "TAKEN"}))
        .await;
    let id = app
        .customer_id(json!({
            "full_name": "Stable", "email": "stable@example.com", "tags": ["a", "b"],
            "metafields": [{"namespace": "n", "key": "k", "value": "v"}],
            "profile": {"campaign_name": "keep"}
        }))
        .await;
    let before = app.get(&customer_path(id)).await.expect(200).body;
    for (body, field) in [
        (
            json!({"full_name": "Changed", "tags": ["x"], "email": "Taken@Example.com",
                   "metafields": [], "profile": {"campaign_name": "lost"}}),
            "email",
        ),
        (
            json!({"full_name": "Changed", "tags": ["x"], "referral_code": "TAKEN"}),
            "referral_code",
        ),
        (
            json!({"full_name": "Changed", "tags": ["x"], "referrer": 987_654}),
            "referrer",
        ),
        (json!({"full_name": "Changed", "tags": ["x", ""]}), "tags"),
    ] {
        let resp = app.put(&customer_path(id), &body).await;
        assert_field_error(&resp, field);
        let resp = app.patch(&customer_path(id), &body).await;
        assert_field_error(&resp, field);
        let after = app.get(&customer_path(id)).await.expect(200).body;
        assert_eq!(
            after, before,
            "a failed update under {field} changed the customer"
        );
    }
}

// --- concurrency ----------------------------------------------------------------------

#[actix_web::test]
async fn concurrent_creates_with_the_same_mobile_make_exactly_one_customer() {
    let app = spawn!();
    let body = json!({"mobile": "13600000000", "tags": ["race"]});
    let post = || app.post(CUSTOMERS, &body);
    let (a, b, c, d, e, f, g, h) = tokio::join!(
        post(),
        post(),
        post(),
        post(),
        post(),
        post(),
        post(),
        post()
    );
    let responses = [a, b, c, d, e, f, g, h];
    let created = responses.iter().filter(|r| r.status == 201).count();
    assert_eq!(created, 1, "exactly one create wins: {responses:?}");
    for resp in responses.iter().filter(|r| r.status != 201) {
        assert_eq!(resp.status, 400, "{}", resp.text);
        assert_eq!(
            resp.body,
            json!({"mobile": ["customer with this mobile already exists."]})
        );
    }
    let list = app.get(CUSTOMERS).await.expect(200).body;
    assert_eq!(list["count"], 1);
    assert_eq!(list["results"][0]["tags"], json!(["race"]));
}

#[actix_web::test]
async fn concurrent_creates_with_the_same_email_in_any_case_make_exactly_one_customer() {
    let app = spawn!();
    let bodies = [
        json!({"email": "race@example.com"}),
        json!({"email": "RACE@example.com"}),
        json!({"email": "Race@Example.com"}),
        json!({"email": "race@EXAMPLE.COM"}),
        json!({"email": "rAce@example.com"}),
        json!({"email": "raCe@example.com"}),
    ];
    let post = |i: usize| app.post(CUSTOMERS, &bodies[i]);
    let (a, b, c, d, e, f) = tokio::join!(post(0), post(1), post(2), post(3), post(4), post(5));
    let responses = [a, b, c, d, e, f];
    assert_eq!(
        responses.iter().filter(|r| r.status == 201).count(),
        1,
        "{responses:?}"
    );
    for resp in responses.iter().filter(|r| r.status != 201) {
        assert_eq!(resp.status, 400, "{}", resp.text);
        assert_eq!(
            resp.body,
            json!({"email": ["customer with this email already exists."]})
        );
    }
    assert_eq!(count(&app).await, 1);
}

#[actix_web::test]
async fn concurrent_updates_to_the_same_mobile_let_exactly_one_win() {
    let app = spawn!();
    let mut ids = Vec::new();
    for i in 0..6 {
        ids.push(app.customer_id(json!({"full_name": format!("C{i}")})).await);
    }
    let body = json!({"mobile": "13500000000"});
    let paths: Vec<String> = ids.iter().map(|&id| customer_path(id)).collect();
    let patch = |i: usize| app.patch(&paths[i], &body);
    let (a, b, c, d, e, f) =
        tokio::join!(patch(0), patch(1), patch(2), patch(3), patch(4), patch(5));
    let responses = [a, b, c, d, e, f];
    assert_eq!(
        responses.iter().filter(|r| r.status == 200).count(),
        1,
        "{responses:?}"
    );
    for resp in responses.iter().filter(|r| r.status != 200) {
        assert_eq!(resp.status, 400, "{}", resp.text);
        assert_eq!(
            resp.body,
            json!({"mobile": ["customer with this mobile already exists."]})
        );
    }
    let found = app
        .get("/api/crm/customer/?mobile=13500000000")
        .await
        .expect(200)
        .body;
    assert_eq!(found["count"], 1);
}

// --- delete ---------------------------------------------------------------------------

#[actix_web::test]
async fn delete_answers_204_with_an_empty_body_then_404() {
    let app = spawn!();
    let id = app.customer_id(json!({"full_name": "Gone"})).await;
    let keep = app.customer_id(json!({"full_name": "Stays"})).await;
    let resp = app.delete(&customer_path(id)).await.expect(204);
    assert_eq!(resp.text, "");
    let resp = app.get(&customer_path(id)).await.expect(404);
    assert_eq!(resp.body, json!({"detail": "Not found."}));
    let resp = app.delete(&customer_path(id)).await.expect(404);
    assert_eq!(resp.body, json!({"detail": "Not found."}));
    app.patch(&customer_path(id), &json!({"note": "x"}))
        .await
        .expect(404);
    let list = app.get(CUSTOMERS).await.expect(200).body;
    assert_eq!(list["count"], 1);
    assert_eq!(id_of(&list["results"][0]), keep);
}

#[actix_web::test]
async fn delete_of_an_unknown_customer_is_404() {
    let app = spawn!();
    let resp = app.delete(&customer_path(987_654)).await.expect(404);
    assert_eq!(resp.body, json!({"detail": "Not found."}));
}

#[actix_web::test]
async fn ids_are_never_reused_after_delete() {
    let app = spawn!();
    let first = app.customer_id(json!({"full_name": "A"})).await;
    app.delete(&customer_path(first)).await.expect(204);
    let second = app.customer_id(json!({"full_name": "B"})).await;
    assert!(second > first);
}

#[actix_web::test]
async fn delete_takes_addresses_coupons_tags_and_memberships_with_it() {
    let app = spawn!();
    let sid = app.segment_id("vips").await;
    let id = app
        .customer_id(json!({
            "full_name": "Doomed", "mobile": "13400000000", "email": "doomed@example.com",
            "tags": ["doomed"], "metafields": [{"namespace": "n", "key": "k", "value": "v"}]
        }))
        .await;
    let other = app
        .customer_id(json!({"full_name": "Survivor", "referrer": id}))
        .await;
    create_address(&app, id).await;
    app.post(
        &format!("/api/crm/customer/{id}/coupons/"),
        &json!({"coupon_id": 222}),
    )
    .await
    .expect(201);
    app.post(
        &format!("/api/crm/segment/{sid}/segment_customer/"),
        &json!([{"customer_id": id}, {"customer_id": other}]),
    )
    .await
    .expect(200);

    app.delete(&customer_path(id)).await.expect(204);

    let segment = app
        .get(&format!("/api/crm/segment/{sid}/"))
        .await
        .expect(200)
        .body;
    let members: Vec<i64> = segment["customers"]
        .as_array()
        .unwrap()
        .iter()
        .map(id_of)
        .collect();
    assert_eq!(members, [other]);
    for query in [
        "coupon=222",
        "tag=doomed",
        &format!("segment={sid}&id={id}"),
        "search=Doomed",
    ] {
        let body = app
            .get(&format!("/api/crm/customer/?{query}"))
            .await
            .expect(200)
            .body;
        assert_eq!(body["count"], 0, "{query}");
    }
    app.get(&format!("/api/crm/customer/{id}/addresses/"))
        .await
        .expect(404);
    app.get(&format!("/api/crm/customer/{id}/coupons/"))
        .await
        .expect(404);
    let survivor = app.get(&customer_path(other)).await.expect(200).body;
    assert_eq!(survivor["referrer"], Value::Null);
    assert_eq!(survivor["segment_ids"], json!([sid]));
    // The freed unique values can be used again.
    let again = app
        .create_customer(json!({"mobile": "13400000000", "email": "doomed@example.com"}))
        .await;
    assert_eq!(again["tags"], json!([]));
    assert_eq!(again["metafields"], json!([]));
    assert_eq!(again["addresses"], json!([]));
    assert_eq!(again["segments"], json!([]));
}
