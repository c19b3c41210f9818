//! Customers: delete, and what goes with a deleted customer.

use super::*;

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
