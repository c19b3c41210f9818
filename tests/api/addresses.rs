//! Addresses (contract section 4): `/api/crm/customer/{id}/addresses/`.

use crm_tests::{assert_timestamp, json, keys, Method, TestApp, Value};

const KEYS: [&str; 13] = [
    "id",
    "full_name",
    "mobile",
    "place_code",
    "province",
    "city",
    "district",
    "address1",
    "address2",
    "zip",
    "is_default",
    "created_at",
    "updated_at",
];

const REQUIRED: [&str; 5] = ["full_name", "mobile", "province", "city", "address1"];

const TEXT_FIELDS: [&str; 9] = [
    "full_name",
    "mobile",
    "place_code",
    "province",
    "city",
    "district",
    "address1",
    "address2",
    "zip",
];

/// A complete address body, with `full_name` set to `name`.
fn body(name: &str) -> Value {
    json!({
        "full_name": name,
        "mobile": "13800000000",
        "province": "天津市",
        "city": "天津市",
        "address1": "南京路 1 号",
    })
}

fn path(customer: i64) -> String {
    format!("/api/crm/customer/{customer}/addresses/")
}

fn one(customer: i64, address: i64) -> String {
    format!("/api/crm/customer/{customer}/addresses/{address}/")
}

/// Creates an address from `body`, asserting 201, and returns it.
async fn add(app: &TestApp, customer: i64, body: Value) -> Value {
    app.post(&path(customer), &body).await.expect(201).body
}

async fn add_id(app: &TestApp, customer: i64, name: &str) -> i64 {
    add(app, customer, body(name)).await["id"].as_i64().unwrap()
}

/// The customer's addresses as (id, is_default), in list order.
async fn listing(app: &TestApp, customer: i64) -> Vec<(i64, bool)> {
    let list = app.get(&path(customer)).await.expect(200).body;
    list.as_array()
        .expect("an unpaginated JSON array")
        .iter()
        .map(|a| {
            (
                a["id"].as_i64().unwrap(),
                a["is_default"].as_bool().unwrap(),
            )
        })
        .collect()
}

#[actix_web::test]
async fn create_returns_201_with_every_key_in_order() {
    let app = spawn!();
    let c = app.customer_id(json!({"full_name": "A"})).await;
    let r = app
        .post(
            &path(c),
            &json!({
                "full_name": "收件人", "mobile": "13800000000", "place_code": "120101",
                "province": "天津市", "city": "天津市", "district": "和平区",
                "address1": "南京路 1 号", "address2": "3 楼", "zip": "300000",
                "is_default": true
            }),
        )
        .await
        .expect(201);
    assert_eq!(keys(&r.body), KEYS);
    let a = &r.body;
    assert!(a["id"].as_i64().unwrap() > 0);
    assert_eq!(a["full_name"], "收件人");
    assert_eq!(a["mobile"], "13800000000");
    assert_eq!(a["place_code"], "120101");
    assert_eq!(a["province"], "天津市");
    assert_eq!(a["city"], "天津市");
    assert_eq!(a["district"], "和平区");
    assert_eq!(a["address1"], "南京路 1 号");
    assert_eq!(a["address2"], "3 楼");
    assert_eq!(a["zip"], "300000");
    assert_eq!(a["is_default"], true);
    assert_timestamp(&a["created_at"], "Z");
    assert_timestamp(&a["updated_at"], "Z");
}

#[actix_web::test]
async fn optional_fields_default_to_empty_strings() {
    let app = spawn!();
    let c = app.customer_id(json!({"full_name": "A"})).await;
    let a = add(&app, c, body("X")).await;
    for field in ["place_code", "district", "address2", "zip"] {
        assert_eq!(a[field], "", "{field}");
    }
}

#[actix_web::test]
async fn read_only_fields_in_the_body_are_ignored() {
    let app = spawn!();
    let c = app.customer_id(json!({"full_name": "A"})).await;
    let mut b = body("X");
    b["id"] = json!(424242);
    b["created_at"] = json!("2000-01-01T00:00:00.000000Z");
    b["unknown"] = json!("ignored");
    let a = add(&app, c, b).await;
    assert_ne!(a["id"], 424242);
    assert_ne!(a["created_at"], "2000-01-01T00:00:00.000000Z");
    assert!(a.get("unknown").is_none());
}

#[actix_web::test]
async fn list_is_an_unpaginated_array_default_first_then_by_id() {
    let app = spawn!();
    let c = app.customer_id(json!({"full_name": "A"})).await;
    assert_eq!(app.get(&path(c)).await.expect(200).body, json!([]));
    let a1 = add_id(&app, c, "1").await;
    let a2 = add_id(&app, c, "2").await;
    let a3 = add_id(&app, c, "3").await;
    let a4 = add_id(&app, c, "4").await;
    app.patch(&one(c, a3), &json!({"is_default": true}))
        .await
        .expect(200);
    assert_eq!(
        listing(&app, c).await,
        [(a3, true), (a1, false), (a2, false), (a4, false)]
    );
    let list = app.get(&path(c)).await.body;
    for item in list.as_array().unwrap() {
        assert_eq!(keys(item), KEYS);
    }
}

#[actix_web::test]
async fn retrieve_returns_the_address() {
    let app = spawn!();
    let c = app.customer_id(json!({"full_name": "A"})).await;
    let created = add(&app, c, body("X")).await;
    let id = created["id"].as_i64().unwrap();
    let got = app.get(&one(c, id)).await.expect(200).body;
    assert_eq!(got, created);
    assert_eq!(keys(&got), KEYS);
    // Without the trailing slash too.
    let got = app
        .get(&format!("/api/crm/customer/{c}/addresses/{id}"))
        .await
        .expect(200)
        .body;
    assert_eq!(got, created);
}

#[actix_web::test]
async fn create_without_a_required_field_is_400_required() {
    let app = spawn!();
    let c = app.customer_id(json!({"full_name": "A"})).await;
    for field in REQUIRED {
        let mut b = body("X");
        b.as_object_mut().unwrap().remove(field);
        let r = app.post(&path(c), &b).await.expect(400);
        assert_eq!(
            r.body,
            json!({ field: ["This field is required."] }),
            "{field}"
        );
    }
    let r = app.post(&path(c), &json!({})).await.expect(400);
    let mut reported: Vec<&str> = keys(&r.body);
    reported.sort_unstable();
    let mut expected = REQUIRED.to_vec();
    expected.sort_unstable();
    assert_eq!(reported, expected);
    assert_eq!(listing(&app, c).await, []);
}

#[actix_web::test]
async fn create_with_a_blank_required_field_is_400_may_not_be_blank() {
    let app = spawn!();
    let c = app.customer_id(json!({"full_name": "A"})).await;
    for field in REQUIRED {
        for blank in ["", "   "] {
            let mut b = body("X");
            b[field] = json!(blank);
            let r = app.post(&path(c), &b).await.expect(400);
            assert_eq!(
                r.body,
                json!({ field: ["This field may not be blank."] }),
                "{field} = {blank:?}"
            );
        }
    }
    assert_eq!(listing(&app, c).await, []);
}

#[actix_web::test]
async fn null_required_field_is_400_under_its_name() {
    let app = spawn!();
    let c = app.customer_id(json!({"full_name": "A"})).await;
    let mut b = body("X");
    b["city"] = Value::Null;
    let r = app.post(&path(c), &b).await.expect(400);
    assert_eq!(keys(&r.body), ["city"]);
}

#[actix_web::test]
async fn optional_fields_may_be_blank() {
    let app = spawn!();
    let c = app.customer_id(json!({"full_name": "A"})).await;
    let mut b = body("X");
    for field in ["place_code", "district", "address2", "zip"] {
        b[field] = json!("");
    }
    add(&app, c, b).await;
}

#[actix_web::test]
async fn every_string_is_at_most_255_characters() {
    let app = spawn!();
    let c = app.customer_id(json!({"full_name": "A"})).await;
    for field in TEXT_FIELDS {
        let mut b = body("X");
        b[field] = json!("天".repeat(256));
        let r = app.post(&path(c), &b).await.expect(400);
        assert_eq!(keys(&r.body), [field], "{field}: {}", r.text);
        assert!(r.body[field][0].is_string());
    }
    assert_eq!(listing(&app, c).await, []);
    // 255 characters (765 bytes in UTF-8) fit.
    let mut b = body("X");
    for field in TEXT_FIELDS {
        b[field] = json!("天".repeat(255));
    }
    let a = add(&app, c, b).await;
    for field in TEXT_FIELDS {
        assert_eq!(a[field].as_str().unwrap().chars().count(), 255, "{field}");
    }
}

#[actix_web::test]
async fn too_long_on_update_is_400_and_changes_nothing() {
    let app = spawn!();
    let c = app.customer_id(json!({"full_name": "A"})).await;
    let a = add(&app, c, body("X")).await;
    let id = a["id"].as_i64().unwrap();
    let r = app
        .patch(&one(c, id), &json!({"zip": "1".repeat(256)}))
        .await
        .expect(400);
    assert_eq!(keys(&r.body), ["zip"]);
    assert_eq!(app.get(&one(c, id)).await.body, a);
}

#[actix_web::test]
async fn put_without_every_required_field_is_400_required() {
    let app = spawn!();
    let c = app.customer_id(json!({"full_name": "A"})).await;
    let a = add(&app, c, body("X")).await;
    let id = a["id"].as_i64().unwrap();
    for field in REQUIRED {
        let mut b = body("Y");
        b.as_object_mut().unwrap().remove(field);
        let r = app.put(&one(c, id), &b).await.expect(400);
        assert_eq!(
            r.body,
            json!({ field: ["This field is required."] }),
            "{field}"
        );
    }
    let r = app.put(&one(c, id), &json!({"zip": "1"})).await.expect(400);
    assert_eq!(keys(&r.body).len(), 5, "{}", r.text);
    assert_eq!(app.get(&one(c, id)).await.body, a, "nothing changed");
}

#[actix_web::test]
async fn put_with_every_required_field_replaces_them() {
    let app = spawn!();
    let c = app.customer_id(json!({"full_name": "A"})).await;
    let a = add(&app, c, body("X")).await;
    let id = a["id"].as_i64().unwrap();
    let r = app
        .put(
            &one(c, id),
            &json!({
                "full_name": "Y", "mobile": "13900000000", "province": "北京市",
                "city": "北京市", "address1": "长安街 1 号", "district": "东城区"
            }),
        )
        .await
        .expect(200);
    assert_eq!(keys(&r.body), KEYS);
    assert_eq!(r.body["id"], id);
    assert_eq!(r.body["full_name"], "Y");
    assert_eq!(r.body["mobile"], "13900000000");
    assert_eq!(r.body["province"], "北京市");
    assert_eq!(r.body["city"], "北京市");
    assert_eq!(r.body["address1"], "长安街 1 号");
    assert_eq!(r.body["district"], "东城区");
    assert_eq!(r.body["created_at"], a["created_at"]);
    assert_ne!(r.body["updated_at"], a["updated_at"]);
    assert_eq!(app.get(&one(c, id)).await.body, r.body);
}

#[actix_web::test]
async fn patch_changes_only_the_given_fields() {
    let app = spawn!();
    let c = app.customer_id(json!({"full_name": "A"})).await;
    let mut b = body("X");
    b["zip"] = json!("300000");
    b["district"] = json!("和平区");
    let a = add(&app, c, b).await;
    let id = a["id"].as_i64().unwrap();
    let r = app
        .patch(&one(c, id), &json!({"city": "北京市"}))
        .await
        .expect(200);
    for field in KEYS {
        match field {
            "city" => assert_eq!(r.body[field], "北京市"),
            "updated_at" => assert!(r.body[field].as_str() > a[field].as_str()),
            _ => assert_eq!(r.body[field], a[field], "{field}"),
        }
    }
    assert_eq!(app.get(&one(c, id)).await.body, r.body);
}

#[actix_web::test]
async fn patch_with_a_blank_required_field_is_400() {
    let app = spawn!();
    let c = app.customer_id(json!({"full_name": "A"})).await;
    let a = add(&app, c, body("X")).await;
    let id = a["id"].as_i64().unwrap();
    let r = app
        .patch(&one(c, id), &json!({"address1": " "}))
        .await
        .expect(400);
    assert_eq!(
        r.body,
        json!({"address1": ["This field may not be blank."]})
    );
    assert_eq!(app.get(&one(c, id)).await.body, a);
}

#[actix_web::test]
async fn first_address_becomes_default_even_when_false_or_absent() {
    let app = spawn!();
    let c1 = app.customer_id(json!({"full_name": "A"})).await;
    let a = add(&app, c1, body("X")).await;
    assert_eq!(a["is_default"], true, "absent");
    let c2 = app.customer_id(json!({"full_name": "B"})).await;
    let mut b = body("X");
    b["is_default"] = json!(false);
    let a = add(&app, c2, b).await;
    assert_eq!(a["is_default"], true, "false");
}

#[actix_web::test]
async fn later_addresses_are_not_default_unless_asked() {
    let app = spawn!();
    let c = app.customer_id(json!({"full_name": "A"})).await;
    let a1 = add_id(&app, c, "1").await;
    let a2 = add(&app, c, body("2")).await;
    assert_eq!(a2["is_default"], false);
    let mut b = body("3");
    b["is_default"] = json!(false);
    let a3 = add(&app, c, b).await;
    assert_eq!(a3["is_default"], false);
    assert_eq!(
        listing(&app, c).await,
        [
            (a1, true),
            (a2["id"].as_i64().unwrap(), false),
            (a3["id"].as_i64().unwrap(), false)
        ]
    );
}

#[actix_web::test]
async fn creating_with_is_default_true_clears_it_on_the_others() {
    let app = spawn!();
    let c = app.customer_id(json!({"full_name": "A"})).await;
    let a1 = add_id(&app, c, "1").await;
    let a2 = add_id(&app, c, "2").await;
    let mut b = body("3");
    b["is_default"] = json!(true);
    let a3 = add(&app, c, b).await;
    assert_eq!(a3["is_default"], true);
    let a3 = a3["id"].as_i64().unwrap();
    assert_eq!(
        listing(&app, c).await,
        [(a3, true), (a1, false), (a2, false)]
    );
    assert_eq!(app.get(&one(c, a1)).await.body["is_default"], false);
}

#[actix_web::test]
async fn updating_with_is_default_true_clears_it_on_the_others() {
    let app = spawn!();
    let c = app.customer_id(json!({"full_name": "A"})).await;
    let a1 = add_id(&app, c, "1").await;
    let a2 = add_id(&app, c, "2").await;
    let a3 = add_id(&app, c, "3").await;
    let r = app
        .patch(&one(c, a2), &json!({"is_default": true}))
        .await
        .expect(200);
    assert_eq!(r.body["is_default"], true);
    assert_eq!(
        listing(&app, c).await,
        [(a2, true), (a1, false), (a3, false)]
    );
    // PUT too.
    let mut b = body("3");
    b["is_default"] = json!(true);
    app.put(&one(c, a3), &b).await.expect(200);
    assert_eq!(
        listing(&app, c).await,
        [(a3, true), (a1, false), (a2, false)]
    );
    // Setting it again on the default keeps exactly one.
    app.patch(&one(c, a3), &json!({"is_default": true}))
        .await
        .expect(200);
    assert_eq!(
        listing(&app, c).await,
        [(a3, true), (a1, false), (a2, false)]
    );
}

#[actix_web::test]
async fn default_flag_of_one_customer_leaves_other_customers_alone() {
    let app = spawn!();
    let c1 = app.customer_id(json!({"full_name": "A"})).await;
    let c2 = app.customer_id(json!({"full_name": "B"})).await;
    let x = add_id(&app, c1, "x").await;
    let y1 = add_id(&app, c2, "y1").await;
    let mut b = body("y2");
    b["is_default"] = json!(true);
    let y2 = add(&app, c2, b).await["id"].as_i64().unwrap();
    assert_eq!(listing(&app, c1).await, [(x, true)]);
    assert_eq!(listing(&app, c2).await, [(y2, true), (y1, false)]);
}

#[actix_web::test]
async fn deleting_the_default_promotes_the_oldest_remaining_address() {
    let app = spawn!();
    let c = app.customer_id(json!({"full_name": "A"})).await;
    let a1 = add_id(&app, c, "1").await;
    let a2 = add_id(&app, c, "2").await;
    let a3 = add_id(&app, c, "3").await;
    let a4 = add_id(&app, c, "4").await;
    app.patch(&one(c, a4), &json!({"is_default": true}))
        .await
        .expect(200);
    // Deleting a non-default address keeps the default where it is.
    app.delete(&one(c, a1)).await.expect(204);
    assert_eq!(
        listing(&app, c).await,
        [(a4, true), (a2, false), (a3, false)]
    );
    // Deleting the default promotes the lowest remaining id.
    app.delete(&one(c, a4)).await.expect(204);
    assert_eq!(listing(&app, c).await, [(a2, true), (a3, false)]);
    assert_eq!(app.get(&one(c, a2)).await.body["is_default"], true);
    app.delete(&one(c, a2)).await.expect(204);
    assert_eq!(listing(&app, c).await, [(a3, true)]);
    app.delete(&one(c, a3)).await.expect(204);
    assert_eq!(listing(&app, c).await, []);
}

#[actix_web::test]
async fn delete_is_204_with_an_empty_body_and_the_address_is_gone() {
    let app = spawn!();
    let c = app.customer_id(json!({"full_name": "A"})).await;
    let a1 = add_id(&app, c, "1").await;
    let a2 = add_id(&app, c, "2").await;
    let r = app.delete(&one(c, a2)).await.expect(204);
    assert_eq!(r.text, "");
    let r = app.get(&one(c, a2)).await.expect(404);
    assert_eq!(r.body, json!({"detail": "Not found."}));
    app.delete(&one(c, a2)).await.expect(404);
    app.patch(&one(c, a2), &json!({"city": "x"}))
        .await
        .expect(404);
    assert_eq!(listing(&app, c).await, [(a1, true)]);
}

#[actix_web::test]
async fn address_ids_are_never_reused() {
    let app = spawn!();
    let c = app.customer_id(json!({"full_name": "A"})).await;
    let a1 = add_id(&app, c, "1").await;
    app.delete(&one(c, a1)).await.expect(204);
    let a2 = add_id(&app, c, "2").await;
    assert!(a2 > a1);
}

#[actix_web::test]
async fn an_address_under_another_customer_is_404() {
    let app = spawn!();
    let owner = app.customer_id(json!({"full_name": "Owner"})).await;
    let other = app.customer_id(json!({"full_name": "Other"})).await;
    let a = add(&app, owner, body("X")).await;
    let id = a["id"].as_i64().unwrap();
    let mut full = body("Hijack");
    full["is_default"] = json!(true);
    let r = app.get(&one(other, id)).await.expect(404);
    assert_eq!(r.body, json!({"detail": "Not found."}));
    app.put(&one(other, id), &full).await.expect(404);
    app.put(&one(other, id), &json!({})).await.expect(404);
    app.patch(&one(other, id), &json!({"full_name": "Hijack"}))
        .await
        .expect(404);
    // The missing address decides before the body is validated.
    app.patch(&one(other, id), &json!({"city": ""}))
        .await
        .expect(404);
    app.delete(&one(other, id)).await.expect(404);
    assert_eq!(app.get(&path(other)).await.expect(200).body, json!([]));
    assert_eq!(app.get(&one(owner, id)).await.expect(200).body, a);
}

#[actix_web::test]
async fn an_unknown_customer_is_404() {
    let app = spawn!();
    let c = app.customer_id(json!({"full_name": "A"})).await;
    let a = add_id(&app, c, "X").await;
    let ghost = c + 1000;
    let not_found = json!({"detail": "Not found."});
    assert_eq!(app.get(&path(ghost)).await.expect(404).body, not_found);
    assert_eq!(
        app.post(&path(ghost), &body("X")).await.expect(404).body,
        not_found
    );
    // Even with a body that would fail validation.
    assert_eq!(
        app.post(&path(ghost), &json!({})).await.expect(404).body,
        not_found
    );
    app.post(&path(ghost), &json!({"city": ""}))
        .await
        .expect(404);
    app.get(&one(ghost, a)).await.expect(404);
    app.put(&one(ghost, a), &body("X")).await.expect(404);
    app.put(&one(ghost, a), &json!({})).await.expect(404);
    app.patch(&one(ghost, a), &json!({"city": ""}))
        .await
        .expect(404);
    app.patch(&one(ghost, a), &json!({"city": "x"}))
        .await
        .expect(404);
    app.delete(&one(ghost, a)).await.expect(404);
}

#[actix_web::test]
async fn non_integer_ids_are_404() {
    let app = spawn!();
    let c = app.customer_id(json!({"full_name": "A"})).await;
    let a = add_id(&app, c, "X").await;
    for bad in ["abc", "0", "-1", "1.0", "99999999999999999999", "%20"] {
        app.get(&format!("/api/crm/customer/{bad}/addresses/"))
            .await
            .expect(404);
        app.post(&format!("/api/crm/customer/{bad}/addresses/"), &body("X"))
            .await
            .expect(404);
        let r = app
            .get(&format!("/api/crm/customer/{c}/addresses/{bad}/"))
            .await
            .expect(404);
        assert_eq!(r.body, json!({"detail": "Not found."}), "{bad}");
        app.patch(
            &format!("/api/crm/customer/{c}/addresses/{bad}/"),
            &json!({"city": "x"}),
        )
        .await
        .expect(404);
        app.delete(&format!("/api/crm/customer/{c}/addresses/{bad}/"))
            .await
            .expect(404);
        app.get(&format!("/api/crm/customer/{bad}/addresses/{a}/"))
            .await
            .expect(404);
    }
    assert_eq!(listing(&app, c).await, [(a, true)]);
}

#[actix_web::test]
async fn customer_full_representation_shows_addresses_default_first() {
    let app = spawn!();
    let c = app.customer_id(json!({"full_name": "A"})).await;
    let a1 = add(&app, c, body("1")).await;
    let mut b = body("2");
    b["is_default"] = json!(true);
    let a2 = add(&app, c, b).await;
    let a1 = app.get(&one(c, a1["id"].as_i64().unwrap())).await.body;
    let customer = app
        .get(&format!("/api/crm/customer/{c}/"))
        .await
        .expect(200)
        .body;
    assert_eq!(customer["addresses"], json!([a2, a1]));
    for item in customer["addresses"].as_array().unwrap() {
        assert_eq!(keys(item), KEYS);
    }
}

#[actix_web::test]
async fn customer_list_item_shows_addresses_default_first() {
    let app = spawn!();
    let c = app.customer_id(json!({"full_name": "A"})).await;
    let other = app.customer_id(json!({"full_name": "B"})).await;
    let a1 = add_id(&app, c, "1").await;
    let a2 = add_id(&app, c, "2").await;
    app.patch(&one(c, a2), &json!({"is_default": true}))
        .await
        .expect(200);
    let expected = app.get(&path(c)).await.body;
    let list = app.get("/api/crm/customer/").await.expect(200).body;
    let results = list["results"].as_array().unwrap();
    let item = results.iter().find(|i| i["id"] == c).expect("listed");
    assert_eq!(item["addresses"], expected);
    let ids: Vec<i64> = item["addresses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [a2, a1]);
    let other_item = results.iter().find(|i| i["id"] == other).expect("listed");
    assert_eq!(other_item["addresses"], json!([]));
}

async fn customer_updated_at(app: &TestApp, c: i64) -> String {
    app.get(&format!("/api/crm/customer/{c}/"))
        .await
        .expect(200)
        .body["updated_at"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[actix_web::test]
async fn address_writes_bump_the_customer_updated_at() {
    let app = spawn!();
    let c = app.customer_id(json!({"full_name": "A"})).await;
    let t0 = customer_updated_at(&app, c).await;
    let a = add_id(&app, c, "1").await;
    let t1 = customer_updated_at(&app, c).await;
    assert!(t1 > t0, "POST: {t0} -> {t1}");
    app.patch(&one(c, a), &json!({"zip": "1"}))
        .await
        .expect(200);
    let t2 = customer_updated_at(&app, c).await;
    assert!(t2 > t1, "PATCH: {t1} -> {t2}");
    app.put(&one(c, a), &body("2")).await.expect(200);
    let t3 = customer_updated_at(&app, c).await;
    assert!(t3 > t2, "PUT: {t2} -> {t3}");
    app.delete(&one(c, a)).await.expect(204);
    let t4 = customer_updated_at(&app, c).await;
    assert!(t4 > t3, "DELETE: {t3} -> {t4}");
    // A failed write changes nothing.
    app.post(&path(c), &json!({})).await.expect(400);
    assert_eq!(customer_updated_at(&app, c).await, t4);
}

#[actix_web::test]
async fn reads_do_not_bump_the_customer_updated_at() {
    let app = spawn!();
    let c = app.customer_id(json!({"full_name": "A"})).await;
    let a = add_id(&app, c, "1").await;
    let t = customer_updated_at(&app, c).await;
    app.get(&path(c)).await.expect(200);
    app.get(&one(c, a)).await.expect(200);
    assert_eq!(customer_updated_at(&app, c).await, t);
}

#[actix_web::test]
async fn deleting_the_customer_deletes_its_addresses() {
    let app = spawn!();
    let c = app.customer_id(json!({"full_name": "A"})).await;
    let keep = app.customer_id(json!({"full_name": "B"})).await;
    let a1 = add_id(&app, c, "1").await;
    let a2 = add_id(&app, c, "2").await;
    let kept = add_id(&app, keep, "k").await;
    app.delete(&format!("/api/crm/customer/{c}/"))
        .await
        .expect(204);
    app.get(&path(c)).await.expect(404);
    app.get(&one(c, a1)).await.expect(404);
    // Behind the API: the rows are gone, not merely hidden.
    let left = app.sql_count(&format!(
        "SELECT COUNT(*) AS n FROM addresses WHERE customer_id = {c} OR id IN ({a1}, {a2})"
    ));
    assert_eq!(left, 0);
    assert_eq!(listing(&app, keep).await, [(kept, true)]);
}

#[actix_web::test]
async fn unserved_methods_are_405_with_allow() {
    let app = spawn!();
    let c = app.customer_id(json!({"full_name": "A"})).await;
    let a = add_id(&app, c, "1").await;
    let r = app
        .send(app.request(Method::DELETE, &path(c)))
        .await
        .expect(405);
    assert_eq!(r.body, json!({"detail": "Method \"DELETE\" not allowed."}));
    let allow = r.header("allow").expect("Allow header");
    assert!(allow.contains("GET") && allow.contains("POST"), "{allow}");
    let r = app
        .send(app.request(Method::POST, &one(c, a)).json(&body("x")))
        .await
        .expect(405);
    let allow = r.header("allow").expect("Allow header");
    for m in ["GET", "PUT", "PATCH", "DELETE"] {
        assert!(allow.contains(m), "{allow}");
    }
    assert!(!allow.contains("POST"), "{allow}");
}

#[actix_web::test]
async fn is_default_must_be_a_boolean() {
    let app = spawn!();
    let c = app.customer_id(json!({"full_name": "A"})).await;
    let mut b = body("X");
    b["is_default"] = json!("maybe");
    let r = app.post(&path(c), &b).await.expect(400);
    assert_eq!(keys(&r.body), ["is_default"]);
    assert_eq!(listing(&app, c).await, []);
}
