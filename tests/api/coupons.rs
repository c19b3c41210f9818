//! Coupon holdings (contract section 5): `/api/crm/customer/{id}/coupons/`.

use crm_tests::{assert_timestamp, json, keys, Method, TestApp, Value};

fn path(customer: i64) -> String {
    format!("/api/crm/customer/{customer}/coupons/")
}

fn one(customer: i64, coupon: impl std::fmt::Display) -> String {
    format!("/api/crm/customer/{customer}/coupons/{coupon}/")
}

/// Grants `coupon`, asserting `status`, and returns the holding.
async fn grant(app: &TestApp, customer: i64, coupon: i64, status: u16) -> Value {
    app.post(&path(customer), &json!({ "coupon_id": coupon }))
        .await
        .expect(status)
        .body
}

/// The coupon ids the customer holds, in list order.
async fn held(app: &TestApp, customer: i64) -> Vec<i64> {
    app.get(&path(customer))
        .await
        .expect(200)
        .body
        .as_array()
        .expect("an unpaginated JSON array")
        .iter()
        .map(|h| h["coupon_id"].as_i64().unwrap())
        .collect()
}

#[actix_web::test]
async fn a_new_customer_holds_no_coupons() {
    let app = spawn!();
    let c = app.customer_id(json!({"full_name": "A"})).await;
    let r = app.get(&path(c)).await.expect(200);
    assert_eq!(r.body, json!([]));
}

#[actix_web::test]
async fn grant_is_201_with_the_holding() {
    let app = spawn!();
    let c = app.customer_id(json!({"full_name": "A"})).await;
    let r = app
        .post(&path(c), &json!({"coupon_id": 222}))
        .await
        .expect(201);
    assert_eq!(keys(&r.body), ["coupon_id", "granted_at"]);
    assert_eq!(r.body["coupon_id"], 222);
    assert_timestamp(&r.body["granted_at"], "Z");
    assert_eq!(app.get(&path(c)).await.body, json!([r.body]));
}

#[actix_web::test]
async fn list_is_an_unpaginated_array_sorted_by_coupon_id() {
    let app = spawn!();
    let c = app.customer_id(json!({"full_name": "A"})).await;
    let mut granted = Vec::new();
    for coupon in [333, 111, 2222, 222] {
        granted.push(grant(&app, c, coupon, 201).await);
    }
    let list = app.get(&path(c)).await.expect(200).body;
    let items = list.as_array().expect("a bare JSON array, not a page");
    let ids: Vec<i64> = items
        .iter()
        .map(|h| h["coupon_id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [111, 222, 333, 2222]);
    for item in items {
        assert_eq!(keys(item), ["coupon_id", "granted_at"]);
        assert_timestamp(&item["granted_at"], "Z");
        let original = granted
            .iter()
            .find(|g| g["coupon_id"] == item["coupon_id"])
            .unwrap();
        assert_eq!(item, original);
    }
}

#[actix_web::test]
async fn granting_a_held_coupon_again_is_200_with_the_same_holding() {
    let app = spawn!();
    let c = app.customer_id(json!({"full_name": "A"})).await;
    let first = grant(&app, c, 222, 201).await;
    let again = app
        .post(&path(c), &json!({"coupon_id": 222}))
        .await
        .expect(200)
        .body;
    assert_eq!(again, first, "same holding, same granted_at");
    assert_eq!(held(&app, c).await, [222]);
}

#[actix_web::test]
async fn coupon_id_as_a_string_of_digits_is_accepted() {
    let app = spawn!();
    let c = app.customer_id(json!({"full_name": "A"})).await;
    let r = app
        .post(&path(c), &json!({"coupon_id": "7"}))
        .await
        .expect(201);
    assert_eq!(r.body["coupon_id"], 7);
}

#[actix_web::test]
async fn missing_or_invalid_coupon_id_is_400_under_coupon_id() {
    let app = spawn!();
    let c = app.customer_id(json!({"full_name": "A"})).await;
    let bodies = [
        json!({}),
        json!({"coupon": 5}),
        json!({"coupon_id": "abc"}),
        json!({"coupon_id": 0}),
        json!({"coupon_id": -1}),
        json!({"coupon_id": null}),
        json!({"coupon_id": 1.5}),
        json!({"coupon_id": true}),
        json!({"coupon_id": [5]}),
    ];
    for body in bodies {
        let r = app.post(&path(c), &body).await.expect(400);
        assert_eq!(keys(&r.body), ["coupon_id"], "{body}: {}", r.text);
        let messages = r.body["coupon_id"].as_array().unwrap();
        assert!(!messages.is_empty() && messages.iter().all(Value::is_string));
    }
    let r = app.post(&path(c), &json!({})).await;
    assert_eq!(r.body, json!({"coupon_id": ["This field is required."]}));
    assert_eq!(held(&app, c).await, Vec::<i64>::new());
}

#[actix_web::test]
async fn a_body_that_is_not_an_object_is_400() {
    let app = spawn!();
    let c = app.customer_id(json!({"full_name": "A"})).await;
    for body in [json!([{"coupon_id": 5}]), json!(5), json!("x")] {
        app.post(&path(c), &body).await.expect(400);
    }
    assert_eq!(held(&app, c).await, Vec::<i64>::new());
}

#[actix_web::test]
async fn an_unknown_customer_is_404() {
    let app = spawn!();
    let c = app.customer_id(json!({"full_name": "A"})).await;
    grant(&app, c, 5, 201).await;
    let ghost = c + 1000;
    let not_found = json!({"detail": "Not found."});
    assert_eq!(app.get(&path(ghost)).await.expect(404).body, not_found);
    let r = app.post(&path(ghost), &json!({"coupon_id": 5})).await;
    assert_eq!(r.expect(404).body, not_found);
    // The missing customer decides before the body is validated.
    app.post(&path(ghost), &json!({})).await.expect(404);
    app.post(&path(ghost), &json!({"coupon_id": "abc"}))
        .await
        .expect(404);
    assert_eq!(app.delete(&one(ghost, 5)).await.expect(404).body, not_found);
    assert_eq!(held(&app, c).await, [5]);
}

#[actix_web::test]
async fn non_integer_ids_in_the_path_are_404() {
    let app = spawn!();
    let c = app.customer_id(json!({"full_name": "A"})).await;
    grant(&app, c, 5, 201).await;
    for bad in ["abc", "0", "-1", "5.0", "99999999999999999999"] {
        app.get(&format!("/api/crm/customer/{bad}/coupons/"))
            .await
            .expect(404);
        app.post(
            &format!("/api/crm/customer/{bad}/coupons/"),
            &json!({"coupon_id": 5}),
        )
        .await
        .expect(404);
        app.delete(&format!("/api/crm/customer/{bad}/coupons/5/"))
            .await
            .expect(404);
        let r = app.delete(&one(c, bad)).await.expect(404);
        assert_eq!(r.body, json!({"detail": "Not found."}), "{bad}");
    }
    assert_eq!(held(&app, c).await, [5]);
}

#[actix_web::test]
async fn revoke_is_204_with_an_empty_body_and_the_holding_is_gone() {
    let app = spawn!();
    let c = app.customer_id(json!({"full_name": "A"})).await;
    grant(&app, c, 111, 201).await;
    grant(&app, c, 222, 201).await;
    let r = app.delete(&one(c, 111)).await.expect(204);
    assert_eq!(r.text, "");
    assert_eq!(held(&app, c).await, [222]);
    // Gone: revoking again is 404.
    app.delete(&one(c, 111)).await.expect(404);
    // Granting it anew is a new holding.
    grant(&app, c, 111, 201).await;
    assert_eq!(held(&app, c).await, [111, 222]);
}

#[actix_web::test]
async fn revoking_a_coupon_not_held_is_404() {
    let app = spawn!();
    let c = app.customer_id(json!({"full_name": "A"})).await;
    let other = app.customer_id(json!({"full_name": "B"})).await;
    grant(&app, other, 5, 201).await;
    let r = app.delete(&one(c, 5)).await.expect(404);
    assert_eq!(r.body, json!({"detail": "Not found."}));
    // The other customer's holding is untouched.
    assert_eq!(held(&app, other).await, [5]);
}

#[actix_web::test]
async fn holdings_are_per_customer() {
    let app = spawn!();
    let a = app.customer_id(json!({"full_name": "A"})).await;
    let b = app.customer_id(json!({"full_name": "B"})).await;
    grant(&app, a, 5, 201).await;
    // Another customer's first grant of the same coupon is new: 201.
    grant(&app, b, 5, 201).await;
    grant(&app, b, 6, 201).await;
    app.delete(&one(a, 5)).await.expect(204);
    assert_eq!(held(&app, a).await, Vec::<i64>::new());
    assert_eq!(held(&app, b).await, [5, 6]);
}

#[actix_web::test]
async fn concurrent_grants_of_the_same_coupon_make_one_holding() {
    let app = spawn!();
    let c = app.customer_id(json!({"full_name": "A"})).await;
    let body = json!({"coupon_id": 777});
    let p = path(c);
    let (r1, r2, r3, r4, r5, r6) = tokio::join!(
        app.post(&p, &body),
        app.post(&p, &body),
        app.post(&p, &body),
        app.post(&p, &body),
        app.post(&p, &body),
        app.post(&p, &body),
    );
    let all = [r1, r2, r3, r4, r5, r6];
    let mut statuses: Vec<u16> = all.iter().map(|r| r.status).collect();
    statuses.sort_unstable();
    assert_eq!(
        statuses,
        [200, 200, 200, 200, 200, 201],
        "{:?}",
        all.iter().map(|r| &r.text).collect::<Vec<_>>()
    );
    for r in &all {
        assert_eq!(r.body, all[0].body, "every answer shows the one holding");
    }
    assert_eq!(app.get(&p).await.body, json!([all[0].body]));
}

#[actix_web::test]
async fn coupon_filters_select_customers_by_holdings() {
    let app = spawn!();
    let a = app.customer_id(json!({"full_name": "A"})).await;
    let b = app.customer_id(json!({"full_name": "B"})).await;
    let c = app.customer_id(json!({"full_name": "C"})).await;
    grant(&app, a, 222, 201).await;
    grant(&app, b, 222, 201).await;
    grant(&app, b, 333, 201).await;
    grant(&app, c, 333, 201).await;
    assert_eq!(app.customers_where("coupon=222").await, [a, b]);
    assert_eq!(app.customers_where("coupon=333").await, [b, c]);
    assert_eq!(app.customers_where("coupon=444").await, Vec::<i64>::new());
    assert_eq!(app.customers_where("coupon__exclude=222").await, [c]);
    assert_eq!(app.customers_where("coupon__exclude=444").await, [a, b, c]);
    assert_eq!(
        app.customers_where("coupon=333&coupon__exclude=222").await,
        [c]
    );
    // A revoked holding no longer counts.
    app.delete(&one(b, 222)).await.expect(204);
    assert_eq!(app.customers_where("coupon=222").await, [a]);
    assert_eq!(app.customers_where("coupon__exclude=222").await, [b, c]);
    // Malformed values are refused, never ignored.
    let r = app.get("/api/crm/customer/?coupon=abc").await.expect(400);
    assert_eq!(keys(&r.body), ["coupon"]);
    let r = app
        .get("/api/crm/customer/?coupon__exclude=x")
        .await
        .expect(400);
    assert_eq!(keys(&r.body), ["coupon__exclude"]);
}

#[actix_web::test]
async fn deleting_the_customer_removes_its_holdings_from_the_filters() {
    let app = spawn!();
    let a = app.customer_id(json!({"full_name": "A"})).await;
    let b = app.customer_id(json!({"full_name": "B"})).await;
    grant(&app, a, 9, 201).await;
    grant(&app, b, 9, 201).await;
    app.delete(&format!("/api/crm/customer/{a}/"))
        .await
        .expect(204);
    assert_eq!(app.customers_where("coupon=9").await, [b]);
    app.get(&path(a)).await.expect(404);
}

#[actix_web::test]
async fn list_holds_every_coupon_unpaginated() {
    let app = spawn!();
    let c = app.customer_id(json!({"full_name": "A"})).await;
    for coupon in (1..=25).rev() {
        grant(&app, c, coupon, 201).await;
    }
    // Unpaginated: all 25, not a page of 10.
    assert_eq!(held(&app, c).await, (1..=25).collect::<Vec<i64>>());
}

#[actix_web::test]
async fn unserved_methods_are_405_with_allow() {
    let app = spawn!();
    let c = app.customer_id(json!({"full_name": "A"})).await;
    grant(&app, c, 5, 201).await;
    let r = app
        .send(app.request(Method::GET, &one(c, 5)))
        .await
        .expect(405);
    assert_eq!(r.body, json!({"detail": "Method \"GET\" not allowed."}));
    let allow = r.header("allow").expect("Allow header");
    assert!(allow.contains("DELETE"), "{allow}");
    assert!(!allow.contains("GET"), "{allow}");
    let r = app
        .send(app.request(Method::DELETE, &path(c)))
        .await
        .expect(405);
    let allow = r.header("allow").expect("Allow header");
    assert!(allow.contains("GET") && allow.contains("POST"), "{allow}");
    assert_eq!(held(&app, c).await, [5]);
}
