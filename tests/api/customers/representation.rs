//! Customers: the representation that create, retrieve and list give, key
//! for key and in order, and the defaults a create fills in.

use super::*;

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
