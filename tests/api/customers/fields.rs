//! Customers: gender, birthday, avatar, note, full name and marketing
//! consent, and text the store cannot hold.

use super::*;

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
