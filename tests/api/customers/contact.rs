//! Customers: mobile, e-mail, referral code and multipass identifier — their
//! formats, and uniqueness where the contract asks for it.

use super::*;

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
