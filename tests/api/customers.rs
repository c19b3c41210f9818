//! Customers: create, read, update, delete, and the rules on their fields.

use crm_tests::{json, TestApp};

#[actix_web::test]
async fn create_returns_the_full_representation_key_for_key() {
    let app = TestApp::spawn().await;
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
            "id", "multipass_identifier", "mobile", "full_name", "gender", "email", "birthday",
            "avatar", "note", "accepts_marketing", "created_at", "updated_at", "referral_code",
            "referrer", "tags", "addresses", "segments", "segment_ids", "statistics", "profile",
            "wechat_nickname", "level", "total_points", "points", "metafields"
        ]
    );
    assert_eq!(body["mobile"], "13000000000");
    assert_eq!(body["wechat_nickname"], "用户没有通过微信授权登录");
    assert_eq!(body["statistics"]["total_spent"], "0.00");
    assert_eq!(body["profile"]["source_name"], "unknown");
}
