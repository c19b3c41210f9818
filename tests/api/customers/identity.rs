//! Customers: identity (mobile, e-mail or name) and referrer rules.

use super::*;

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
async fn an_update_reports_its_own_referral_and_a_lost_identity_together() {
    let app = spawn!();
    let id = app.customer_id(json!({"mobile": "12345"})).await;
    let resp = app
        .patch(&customer_path(id), &json!({"mobile": "", "referrer": id}))
        .await;
    assert_eq!(resp.status, 400, "body: {}", resp.text);
    assert_eq!(
        error_fields(&resp.body),
        ["non_field_errors", "referrer"],
        "both rules in one answer; body: {}",
        resp.text
    );
    assert_eq!(app.get(&customer_path(id)).await.body["mobile"], "12345");
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
