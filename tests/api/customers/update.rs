//! Customers: PUT and PATCH, ignored fields, and failed writes that leave
//! nothing behind.

use super::*;

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
