//! Segments (contract section 6): `/api/crm/segment/` and its members.

use crm_tests::{json, keys, Method, TestApp, Value};

/// A customer list item inside a segment: the list item without `segments`.
const MEMBER_KEYS: [&str; 11] = [
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
    "created_at",
];

fn one(segment: i64) -> String {
    format!("/api/crm/segment/{segment}/")
}

fn members_path(segment: i64) -> String {
    format!("/api/crm/segment/{segment}/segment_customer/")
}

fn ids(list: &Value) -> Vec<i64> {
    list.as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|item| item["id"].as_i64().unwrap())
        .collect()
}

fn add_body(customers: &[i64]) -> Value {
    Value::Array(
        customers
            .iter()
            .map(|c| json!({ "customer_id": c }))
            .collect(),
    )
}

/// Adds `customers`, asserting 200, and returns the segment.
async fn add(app: &TestApp, segment: i64, customers: &[i64]) -> Value {
    app.post(&members_path(segment), &add_body(customers))
        .await
        .expect(200)
        .body
}

/// `DELETE .../segment_customer/?{query}`.
async fn remove(app: &TestApp, segment: i64, query: &str) -> crm_tests::Resp {
    app.delete(&format!("{}?{query}", members_path(segment)))
        .await
}

/// The segment's member ids, as `GET /api/crm/segment/{id}/` lists them.
async fn members(app: &TestApp, segment: i64) -> Vec<i64> {
    ids(&app.get(&one(segment)).await.expect(200).body["customers"])
}

async fn customers(app: &TestApp, n: usize) -> Vec<i64> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        out.push(
            app.customer_id(json!({ "full_name": format!("C{i}") }))
                .await,
        );
    }
    out
}

async fn customer(app: &TestApp, id: i64) -> Value {
    app.get(&format!("/api/crm/customer/{id}/"))
        .await
        .expect(200)
        .body
}

// --- The segment resource -------------------------------------------------

#[actix_web::test]
async fn create_is_201_with_id_title_and_no_customers() {
    let app = super::spawn().await;
    let r = app
        .post("/api/crm/segment/", &json!({"title": "test_title"}))
        .await
        .expect(201);
    assert_eq!(keys(&r.body), ["id", "title", "customers"]);
    assert!(r.body["id"].as_i64().unwrap() > 0);
    assert_eq!(r.body["title"], "test_title");
    assert_eq!(r.body["customers"], json!([]));
    let id = r.body["id"].as_i64().unwrap();
    assert_eq!(app.get(&one(id)).await.expect(200).body, r.body);
}

#[actix_web::test]
async fn create_ignores_read_only_and_unknown_fields() {
    let app = super::spawn().await;
    let c = app.customer_id(json!({"full_name": "A"})).await;
    let r = app
        .post(
            "/api/crm/segment/",
            &json!({"title": "标签1", "id": 4242, "customers": [{"customer_id": c}], "x": 1}),
        )
        .await
        .expect(201);
    assert_ne!(r.body["id"], 4242);
    assert_eq!(r.body["title"], "标签1");
    assert_eq!(r.body["customers"], json!([]));
    assert_eq!(keys(&r.body), ["id", "title", "customers"]);
}

#[actix_web::test]
async fn title_is_required() {
    let app = super::spawn().await;
    let r = app.post("/api/crm/segment/", &json!({})).await.expect(400);
    assert_eq!(r.body, json!({"title": ["This field is required."]}));
    let r = app
        .post("/api/crm/segment/", &json!({"name": "x"}))
        .await
        .expect(400);
    assert_eq!(r.body, json!({"title": ["This field is required."]}));
    assert_eq!(
        app.get("/api/crm/segment/").await.expect(200).body["count"],
        0
    );
}

#[actix_web::test]
async fn title_may_not_be_blank_or_null() {
    let app = super::spawn().await;
    for blank in ["", "   "] {
        let r = app
            .post("/api/crm/segment/", &json!({ "title": blank }))
            .await
            .expect(400);
        assert_eq!(r.body, json!({"title": ["This field may not be blank."]}));
    }
    let r = app
        .post("/api/crm/segment/", &json!({"title": null}))
        .await
        .expect(400);
    assert_eq!(keys(&r.body), ["title"]);
    assert_eq!(
        app.get("/api/crm/segment/").await.expect(200).body["count"],
        0
    );
}

#[actix_web::test]
async fn title_is_at_most_255_characters() {
    let app = super::spawn().await;
    let r = app
        .post("/api/crm/segment/", &json!({ "title": "标".repeat(256) }))
        .await
        .expect(400);
    assert_eq!(keys(&r.body), ["title"]);
    assert!(r.body["title"][0].is_string());
    // 255 characters fit, however many bytes they take.
    let r = app
        .post("/api/crm/segment/", &json!({ "title": "标".repeat(255) }))
        .await
        .expect(201);
    assert_eq!(r.body["title"], "标".repeat(255));
}

#[actix_web::test]
async fn list_is_paginated_like_drf_and_ordered_by_id() {
    let app = super::spawn().await;
    let mut made = Vec::new();
    for title in ["c", "a", "b"] {
        made.push(app.segment_id(title).await);
    }
    let r = app.get("/api/crm/segment/").await.expect(200);
    assert_eq!(keys(&r.body), ["count", "next", "previous", "results"]);
    assert_eq!(r.body["count"], 3);
    assert_eq!(r.body["next"], Value::Null);
    assert_eq!(r.body["previous"], Value::Null);
    assert_eq!(ids(&r.body["results"]), made);
    for item in r.body["results"].as_array().unwrap() {
        assert_eq!(keys(item), ["id", "title", "customers"]);
    }
    assert_eq!(r.body["results"][0]["title"], "c");

    let r = app.get("/api/crm/segment/?page_size=2").await.expect(200);
    assert_eq!(r.body["count"], 3);
    assert_eq!(ids(&r.body["results"]), made[..2]);
    let next = r.body["next"].as_str().expect("a next link");
    assert!(next.starts_with("http://"), "{next}");
    assert!(
        next.ends_with("/api/crm/segment/?page=2&page_size=2"),
        "{next}"
    );
    assert_eq!(r.body["previous"], Value::Null);

    let r = app
        .get("/api/crm/segment/?page=2&page_size=2")
        .await
        .expect(200);
    assert_eq!(ids(&r.body["results"]), made[2..]);
    assert_eq!(r.body["next"], Value::Null);
    let previous = r.body["previous"].as_str().expect("a previous link");
    assert!(
        previous.ends_with("/api/crm/segment/?page_size=2"),
        "{previous}"
    );
}

#[actix_web::test]
async fn list_items_show_their_members() {
    let app = super::spawn().await;
    let cs = customers(&app, 2).await;
    let s = app.segment_id("s").await;
    let empty = app.segment_id("empty").await;
    let added = add(&app, s, &cs).await;
    let r = app.get("/api/crm/segment/").await.expect(200);
    assert_eq!(r.body["results"][0], added);
    assert_eq!(r.body["results"][1]["id"], empty);
    assert_eq!(r.body["results"][1]["customers"], json!([]));
}

#[actix_web::test]
async fn empty_list_is_200_and_a_page_past_the_end_is_404_invalid_page() {
    let app = super::spawn().await;
    let r = app.get("/api/crm/segment/").await.expect(200);
    assert_eq!(
        r.body,
        json!({"count": 0, "next": null, "previous": null, "results": []})
    );
    let r = app.get("/api/crm/segment/?page=2").await.expect(404);
    assert_eq!(r.body, json!({"detail": "Invalid page."}));
    app.segment_id("a").await;
    app.segment_id("b").await;
    app.get("/api/crm/segment/?page=2&page_size=1")
        .await
        .expect(200);
    let r = app
        .get("/api/crm/segment/?page=3&page_size=1")
        .await
        .expect(404);
    assert_eq!(r.body, json!({"detail": "Invalid page."}));
    for bad in ["0", "-1", "x"] {
        let r = app
            .get(&format!("/api/crm/segment/?page={bad}"))
            .await
            .expect(404);
        assert_eq!(r.body, json!({"detail": "Invalid page."}), "page={bad}");
    }
}

#[actix_web::test]
async fn retrieve_returns_the_segment() {
    let app = super::spawn().await;
    let s = app.segment_id("标签1").await;
    let r = app.get(&one(s)).await.expect(200);
    assert_eq!(r.body, json!({"id": s, "title": "标签1", "customers": []}));
    assert_eq!(keys(&r.body), ["id", "title", "customers"]);
    // Without the trailing slash too.
    let r = app.get(&format!("/api/crm/segment/{s}")).await.expect(200);
    assert_eq!(r.body["id"], s);
}

#[actix_web::test]
async fn put_renames() {
    let app = super::spawn().await;
    let cs = customers(&app, 1).await;
    let s = app.segment_id("old").await;
    add(&app, s, &cs).await;
    let r = app.put(&one(s), &json!({"title": "new"})).await.expect(200);
    assert_eq!(keys(&r.body), ["id", "title", "customers"]);
    assert_eq!(r.body["id"], s);
    assert_eq!(r.body["title"], "new");
    assert_eq!(ids(&r.body["customers"]), cs, "members stay");
    assert_eq!(app.get(&one(s)).await.body, r.body);
}

#[actix_web::test]
async fn patch_renames() {
    let app = super::spawn().await;
    let s = app.segment_id("old").await;
    let r = app
        .patch(&one(s), &json!({"title": "new"}))
        .await
        .expect(200);
    assert_eq!(r.body["title"], "new");
    assert_eq!(app.get(&one(s)).await.body["title"], "new");
    // A PATCH without a title changes nothing.
    let r = app.patch(&one(s), &json!({})).await.expect(200);
    assert_eq!(r.body["title"], "new");
}

#[actix_web::test]
async fn put_without_a_title_is_400() {
    let app = super::spawn().await;
    let s = app.segment_id("old").await;
    let r = app.put(&one(s), &json!({})).await.expect(400);
    assert_eq!(r.body, json!({"title": ["This field is required."]}));
    assert_eq!(app.get(&one(s)).await.body["title"], "old");
}

#[actix_web::test]
async fn rename_applies_the_title_rules() {
    let app = super::spawn().await;
    let s = app.segment_id("old").await;
    let r = app.put(&one(s), &json!({"title": " "})).await.expect(400);
    assert_eq!(r.body, json!({"title": ["This field may not be blank."]}));
    let r = app.patch(&one(s), &json!({"title": ""})).await.expect(400);
    assert_eq!(r.body, json!({"title": ["This field may not be blank."]}));
    let r = app
        .patch(&one(s), &json!({ "title": "t".repeat(256) }))
        .await
        .expect(400);
    assert_eq!(keys(&r.body), ["title"]);
    assert_eq!(app.get(&one(s)).await.body["title"], "old");
}

#[actix_web::test]
async fn delete_is_204_and_the_customers_stay() {
    let app = super::spawn().await;
    let cs = customers(&app, 2).await;
    let s = app.segment_id("doomed").await;
    let kept = app.segment_id("kept").await;
    add(&app, s, &cs).await;
    add(&app, kept, &cs[..1]).await;
    let r = app.delete(&one(s)).await.expect(204);
    assert_eq!(r.text, "");
    let r = app.get(&one(s)).await.expect(404);
    assert_eq!(r.body, json!({"detail": "Not found."}));
    app.delete(&one(s)).await.expect(404);
    let c0 = customer(&app, cs[0]).await;
    assert_eq!(c0["segments"], json!([{"id": kept, "title": "kept"}]));
    assert_eq!(c0["segment_ids"], json!([kept]));
    let c1 = customer(&app, cs[1]).await;
    assert_eq!(c1["segments"], json!([]));
    assert_eq!(c1["segment_ids"], json!([]));
    assert_eq!(app.customers_where("").await, cs);
    assert_eq!(members(&app, kept).await, cs[..1]);
    let list = app.get("/api/crm/segment/").await.expect(200).body;
    assert_eq!(list["count"], 1);
}

#[actix_web::test]
async fn an_unknown_segment_is_404_everywhere() {
    let app = super::spawn().await;
    let cs = customers(&app, 1).await;
    let s = app.segment_id("real").await;
    let ghost = s + 1000;
    let not_found = json!({"detail": "Not found."});
    assert_eq!(app.get(&one(ghost)).await.expect(404).body, not_found);
    let r = app.put(&one(ghost), &json!({"title": "x"})).await;
    assert_eq!(r.expect(404).body, not_found);
    app.patch(&one(ghost), &json!({"title": "x"}))
        .await
        .expect(404);
    app.patch(&one(ghost), &json!({})).await.expect(404);
    assert_eq!(app.delete(&one(ghost)).await.expect(404).body, not_found);
    let r = app.post(&members_path(ghost), &add_body(&cs)).await;
    assert_eq!(r.expect(404).body, not_found);
    let r = remove(&app, ghost, &format!("customer__in={}", cs[0])).await;
    assert_eq!(r.expect(404).body, not_found);
    // The missing segment decides before the body or query is validated.
    app.put(&one(ghost), &json!({})).await.expect(404);
    app.put(&one(ghost), &json!({"title": ""}))
        .await
        .expect(404);
    app.post(&members_path(ghost), &json!({"customer_id": 1}))
        .await
        .expect(404);
    app.post(&members_path(ghost), &add_body(&[cs[0] + 1000]))
        .await
        .expect(404);
    remove(&app, ghost, "").await.expect(404);
    remove(&app, ghost, "customer__in=1,x").await.expect(404);
    assert_eq!(app.get(&one(s)).await.body["title"], "real");
}

#[actix_web::test]
async fn non_integer_segment_ids_are_404() {
    let app = super::spawn().await;
    let cs = customers(&app, 1).await;
    app.segment_id("real").await;
    for bad in ["abc", "0", "-1", "1.0", "99999999999999999999"] {
        let r = app
            .get(&format!("/api/crm/segment/{bad}/"))
            .await
            .expect(404);
        assert_eq!(r.body, json!({"detail": "Not found."}), "{bad}");
        app.put(&format!("/api/crm/segment/{bad}/"), &json!({"title": "x"}))
            .await
            .expect(404);
        app.delete(&format!("/api/crm/segment/{bad}/"))
            .await
            .expect(404);
        app.post(
            &format!("/api/crm/segment/{bad}/segment_customer/"),
            &add_body(&cs),
        )
        .await
        .expect(404);
        app.delete(&format!(
            "/api/crm/segment/{bad}/segment_customer/?customer__in={}",
            cs[0]
        ))
        .await
        .expect(404);
    }
}

// --- Members ----------------------------------------------------------------

#[actix_web::test]
async fn adding_customers_is_200_with_the_segment_members_by_customer_id() {
    let app = super::spawn().await;
    let cs = customers(&app, 3).await;
    let s = app.segment_id("标签1").await;
    let r = app
        .post(&members_path(s), &add_body(&[cs[2], cs[0], cs[1]]))
        .await
        .expect(200);
    assert_eq!(keys(&r.body), ["id", "title", "customers"]);
    assert_eq!(r.body["id"], s);
    assert_eq!(r.body["title"], "标签1");
    assert_eq!(ids(&r.body["customers"]), cs, "ordered by customer id");
    assert_eq!(app.get(&one(s)).await.body, r.body);
}

#[actix_web::test]
async fn members_are_list_items_without_segments() {
    let app = super::spawn().await;
    let c = app
        .create_customer(json!({
            "full_name": "Xindong Ding", "mobile": "13821761807", "gender": "male",
            "email": "dxd.spirits@gmail.com", "birthday": "1986-05-24",
            "accepts_marketing": true, "tags": ["vip"]
        }))
        .await;
    let id = c["id"].as_i64().unwrap();
    app.post(
        &format!("/api/crm/customer/{id}/addresses/"),
        &json!({"full_name": "X", "mobile": "1", "province": "p", "city": "c", "address1": "a"}),
    )
    .await
    .expect(201);
    let s = app.segment_id("s").await;
    let segment = add(&app, s, &[id]).await;
    let member = &segment["customers"][0];
    assert_eq!(keys(member), MEMBER_KEYS);
    // Exactly the customer's list item, minus `segments`.
    let list = app
        .get(&format!("/api/crm/customer/?id={id}"))
        .await
        .expect(200)
        .body;
    let mut item = list["results"][0].clone();
    assert_eq!(item["segments"], json!([{"id": s, "title": "s"}]));
    item.as_object_mut().unwrap().remove("segments");
    assert_eq!(member, &item);
    assert_eq!(member["addresses"].as_array().unwrap().len(), 1);
    assert_eq!(member["tags"], json!(["vip"]));
}

#[actix_web::test]
async fn adding_an_existing_member_is_fine_and_keeps_it_once() {
    let app = super::spawn().await;
    let cs = customers(&app, 2).await;
    let s = app.segment_id("s").await;
    add(&app, s, &cs[..1]).await;
    let r = add(&app, s, &cs).await;
    assert_eq!(ids(&r["customers"]), cs);
    // The same id twice in one body.
    let r = add(&app, s, &[cs[1], cs[1], cs[0]]).await;
    assert_eq!(ids(&r["customers"]), cs);
    assert_eq!(members(&app, s).await, cs);
}

#[actix_web::test]
async fn a_customer_id_as_a_string_of_digits_is_accepted() {
    let app = super::spawn().await;
    let cs = customers(&app, 1).await;
    let s = app.segment_id("s").await;
    let r = app
        .post(
            &members_path(s),
            &json!([{ "customer_id": cs[0].to_string() }]),
        )
        .await
        .expect(200);
    assert_eq!(ids(&r.body["customers"]), cs);
}

#[actix_web::test]
async fn an_empty_list_adds_nothing() {
    let app = super::spawn().await;
    let cs = customers(&app, 1).await;
    let s = app.segment_id("s").await;
    add(&app, s, &cs).await;
    let r = add(&app, s, &[]).await;
    assert_eq!(ids(&r["customers"]), cs);
}

#[actix_web::test]
async fn a_missing_customer_is_400_naming_it_and_nothing_is_added() {
    let app = super::spawn().await;
    let cs = customers(&app, 3).await;
    let s = app.segment_id("s").await;
    add(&app, s, &cs[..1]).await;
    let before = app.get(&one(s)).await.body;
    let missing = [cs[2] + 1000, cs[2] + 2000];
    let r = app
        .post(
            &members_path(s),
            &add_body(&[cs[1], missing[0], cs[2], missing[1]]),
        )
        .await
        .expect(400);
    assert_eq!(keys(&r.body), ["customer_id"], "{}", r.text);
    let messages = r.body["customer_id"].as_array().unwrap();
    let text: String = messages
        .iter()
        .map(|m| m.as_str().expect("messages are strings"))
        .collect();
    // The numbers the message names are exactly the missing ids.
    let mut named: Vec<i64> = text
        .split(|ch: char| !ch.is_ascii_digit())
        .filter(|run| !run.is_empty())
        .map(|run| run.parse().unwrap())
        .collect();
    named.sort_unstable();
    named.dedup();
    assert_eq!(named, missing, "{text}");
    assert_eq!(app.get(&one(s)).await.body, before, "nothing added");
    assert_eq!(customer(&app, cs[1]).await["segment_ids"], json!([]));
}

#[actix_web::test]
async fn a_deleted_customer_counts_as_missing() {
    let app = super::spawn().await;
    let cs = customers(&app, 2).await;
    let s = app.segment_id("s").await;
    app.delete(&format!("/api/crm/customer/{}/", cs[1]))
        .await
        .expect(204);
    let r = app.post(&members_path(s), &add_body(&cs)).await.expect(400);
    assert!(
        r.body["customer_id"][0]
            .as_str()
            .unwrap()
            .contains(&cs[1].to_string()),
        "{}",
        r.text
    );
    assert_eq!(members(&app, s).await, Vec::<i64>::new());
}

#[actix_web::test]
async fn a_body_that_is_not_a_list_of_customer_ids_is_400() {
    let app = super::spawn().await;
    let cs = customers(&app, 1).await;
    let c = cs[0];
    let s = app.segment_id("s").await;
    let bodies = [
        json!({ "customer_id": c }),
        json!([c]),
        json!([{ "id": c }]),
        json!("x"),
        json!(null),
        json!(c),
        json!([{ "customer_id": "abc" }]),
        json!([{ "customer_id": null }]),
        json!([{ "customer_id": c }, "x"]),
        json!([{ "customer_id": c }, { "id": c }]),
    ];
    for body in bodies {
        let r = app.post(&members_path(s), &body).await.expect(400);
        let errors = r
            .body
            .as_object()
            .unwrap_or_else(|| panic!("{body}: {}", r.text));
        assert!(!errors.is_empty(), "{body}");
        for messages in errors.values() {
            assert!(messages.is_array(), "{body}: {}", r.text);
        }
    }
    assert_eq!(members(&app, s).await, Vec::<i64>::new(), "nothing added");
}

#[actix_web::test]
async fn concurrent_overlapping_adds_both_succeed_and_each_customer_is_in_once() {
    let app = super::spawn().await;
    let cs = customers(&app, 6).await;
    let s = app.segment_id("s").await;
    let path = members_path(s);
    let b1 = add_body(&cs[..4]);
    let b2 = add_body(&cs[2..]);
    let b3 = add_body(&[cs[5], cs[0], cs[3]]);
    let (r1, r2, r3, r4) = tokio::join!(
        app.post(&path, &b1),
        app.post(&path, &b2),
        app.post(&path, &b3),
        app.post(&path, &b1),
    );
    for r in [r1, r2, r3, r4] {
        r.expect(200);
    }
    assert_eq!(members(&app, s).await, cs);
    for c in &cs {
        assert_eq!(customer(&app, *c).await["segment_ids"], json!([s]));
    }
}

#[actix_web::test]
async fn removing_customers_is_200_with_the_segment() {
    let app = super::spawn().await;
    let cs = customers(&app, 4).await;
    let s = app.segment_id("s").await;
    add(&app, s, &cs).await;
    let r = remove(&app, s, &format!("customer__in={},{}", cs[0], cs[2]))
        .await
        .expect(200);
    assert_eq!(keys(&r.body), ["id", "title", "customers"]);
    assert_eq!(ids(&r.body["customers"]), [cs[1], cs[3]]);
    assert_eq!(app.get(&one(s)).await.body, r.body);
    // The customers themselves stay.
    assert_eq!(app.customers_where("").await, cs);
    assert_eq!(customer(&app, cs[0]).await["segment_ids"], json!([]));
}

#[actix_web::test]
async fn removing_ids_not_in_the_segment_is_ignored() {
    let app = super::spawn().await;
    let cs = customers(&app, 3).await;
    let s = app.segment_id("s").await;
    let other = app.segment_id("other").await;
    add(&app, s, &cs[..2]).await;
    add(&app, other, &cs).await;
    let query = format!("customer__in={},{},{}", cs[1], cs[2], cs[2] + 1000);
    let r = remove(&app, s, &query).await.expect(200);
    assert_eq!(ids(&r.body["customers"]), [cs[0]]);
    // Other segments are untouched.
    assert_eq!(members(&app, other).await, cs);
    // Removing from an empty selection is fine too.
    remove(&app, s, &query).await.expect(200);
    assert_eq!(members(&app, s).await, [cs[0]]);
}

/// Generated clients send `customer__in=4&customer__in=5`: both are removed
/// (before, only the last one was, with a 200).
#[actix_web::test]
async fn repeated_customer_in_values_are_combined() {
    let app = super::spawn().await;
    let cs = customers(&app, 5).await;
    let s = app.segment_id("s").await;
    add(&app, s, &cs).await;
    let r = remove(
        &app,
        s,
        &format!("customer__in={}&customer__in={}", cs[0], cs[1]),
    )
    .await
    .expect(200);
    assert_eq!(ids(&r.body["customers"]), &cs[2..]);
    let r = remove(
        &app,
        s,
        &format!(
            "customer__in={}&customer__in=&customer__in={},{}",
            cs[2], cs[3], cs[4]
        ),
    )
    .await
    .expect(200);
    assert_eq!(ids(&r.body["customers"]), Vec::<i64>::new());
    // A malformed value in any of them is a 400 and removes nothing.
    add(&app, s, &cs).await;
    let r = remove(&app, s, &format!("customer__in={}&customer__in=x", cs[0]))
        .await
        .expect(400);
    assert_eq!(keys(&r.body), ["customer__in"]);
    assert_eq!(members(&app, s).await, cs);
    // Another parameter twice is refused, and nothing is removed.
    let r = remove(&app, s, &format!("customer__in={}&x=1&x=2", cs[0]))
        .await
        .expect(400);
    assert_eq!(
        r.body,
        json!({"x": ["This parameter may be given only once."]})
    );
    assert_eq!(members(&app, s).await, cs);
}

#[actix_web::test]
async fn the_segment_list_refuses_a_repeated_parameter() {
    let app = super::spawn().await;
    app.segment_id("s").await;
    for query in ["page=1&page=1", "page_size=1&page_size=2"] {
        let r = app
            .get(&format!("/api/crm/segment/?{query}"))
            .await
            .expect(400);
        let name = query.split('=').next().unwrap();
        assert_eq!(
            r.body,
            json!({ name: ["This parameter may be given only once."] }),
            "{query}"
        );
    }
    app.get("/api/crm/segment/?page=1&page_size=1")
        .await
        .expect(200);
}

#[actix_web::test]
async fn removing_without_customer_in_is_400() {
    let app = super::spawn().await;
    let cs = customers(&app, 1).await;
    let s = app.segment_id("s").await;
    add(&app, s, &cs).await;
    for query in ["", "customer__in=", "customer=1", "customer_id=1"] {
        let r = remove(&app, s, query).await.expect(400);
        assert_eq!(keys(&r.body), ["customer__in"], "{query}: {}", r.text);
        assert!(r.body["customer__in"][0].is_string());
    }
    // No query string at all.
    let r = app.delete(&members_path(s)).await.expect(400);
    assert_eq!(keys(&r.body), ["customer__in"]);
    assert_eq!(members(&app, s).await, cs);
}

#[actix_web::test]
async fn removing_with_a_malformed_customer_in_is_400() {
    let app = super::spawn().await;
    let cs = customers(&app, 2).await;
    let s = app.segment_id("s").await;
    add(&app, s, &cs).await;
    for value in [
        format!("{},x", cs[0]),
        "abc".to_owned(),
        format!("{};{}", cs[0], cs[1]),
        format!("{}.5", cs[0]),
    ] {
        let r = remove(&app, s, &format!("customer__in={value}"))
            .await
            .expect(400);
        assert_eq!(keys(&r.body), ["customer__in"], "{value}: {}", r.text);
    }
    assert_eq!(members(&app, s).await, cs, "nothing removed");
}

#[actix_web::test]
async fn segment_customer_answers_405_with_allow_to_other_methods() {
    let app = super::spawn().await;
    let s = app.segment_id("s").await;
    for method in [Method::GET, Method::PUT, Method::PATCH] {
        let r = app
            .send(app.request(method.clone(), &members_path(s)))
            .await
            .expect(405);
        assert_eq!(
            r.body,
            json!({ "detail": format!("Method \"{method}\" not allowed.") })
        );
        assert_eq!(r.header("allow"), Some("POST, DELETE, OPTIONS"));
    }
}

#[actix_web::test]
async fn segment_resources_answer_405_with_allow_to_other_methods() {
    let app = super::spawn().await;
    let s = app.segment_id("s").await;
    for method in [Method::PUT, Method::PATCH, Method::DELETE] {
        let r = app
            .send(app.request(method, "/api/crm/segment/"))
            .await
            .expect(405);
        let allow = r.header("allow").expect("Allow header");
        assert!(allow.contains("GET") && allow.contains("POST"), "{allow}");
    }
    let r = app
        .send(
            app.request(Method::POST, &one(s))
                .json(&json!({"title": "x"})),
        )
        .await
        .expect(405);
    assert_eq!(r.body, json!({"detail": "Method \"POST\" not allowed."}));
    let allow = r.header("allow").expect("Allow header");
    for m in ["GET", "PUT", "PATCH", "DELETE"] {
        assert!(allow.contains(m), "{allow}");
    }
    assert!(!allow.contains("POST"), "{allow}");
    assert_eq!(app.get(&one(s)).await.body["title"], "s");
}

// --- Segments as seen from customers -----------------------------------------

#[actix_web::test]
async fn customer_full_representation_shows_segments_and_segment_ids() {
    let app = super::spawn().await;
    let cs = customers(&app, 2).await;
    let s1 = app.segment_id("one").await;
    let s2 = app.segment_id("two").await;
    let s3 = app.segment_id("three").await;
    add(&app, s3, &cs[..1]).await;
    add(&app, s1, &cs[..1]).await;
    add(&app, s2, &cs[1..]).await;
    let c0 = customer(&app, cs[0]).await;
    assert_eq!(
        c0["segments"],
        json!([{"id": s1, "title": "one"}, {"id": s3, "title": "three"}])
    );
    for seg in c0["segments"].as_array().unwrap() {
        assert_eq!(keys(seg), ["id", "title"]);
    }
    assert_eq!(c0["segment_ids"], json!([s1, s3]));
    let c1 = customer(&app, cs[1]).await;
    assert_eq!(c1["segments"], json!([{"id": s2, "title": "two"}]));
    assert_eq!(c1["segment_ids"], json!([s2]));
    // A rename shows at once.
    app.patch(&one(s1), &json!({"title": "uno"}))
        .await
        .expect(200);
    assert_eq!(
        customer(&app, cs[0]).await["segments"][0],
        json!({"id": s1, "title": "uno"})
    );
    // Removal too.
    remove(&app, s3, &format!("customer__in={}", cs[0]))
        .await
        .expect(200);
    assert_eq!(customer(&app, cs[0]).await["segment_ids"], json!([s1]));
}

#[actix_web::test]
async fn customer_list_item_shows_segments() {
    let app = super::spawn().await;
    let cs = customers(&app, 2).await;
    let s1 = app.segment_id("one").await;
    let s2 = app.segment_id("two").await;
    add(&app, s2, &cs[..1]).await;
    add(&app, s1, &cs[..1]).await;
    let list = app.get("/api/crm/customer/").await.expect(200).body;
    let results = list["results"].as_array().unwrap();
    let item = |id: i64| results.iter().find(|i| i["id"] == id).unwrap();
    assert_eq!(
        item(cs[0])["segments"],
        json!([{"id": s1, "title": "one"}, {"id": s2, "title": "two"}])
    );
    assert_eq!(item(cs[1])["segments"], json!([]));
    assert!(item(cs[0]).get("segment_ids").is_none());
}

#[actix_web::test]
async fn segment_filters_select_customers_by_membership() {
    let app = super::spawn().await;
    let cs = customers(&app, 3).await;
    let s1 = app.segment_id("one").await;
    let s2 = app.segment_id("two").await;
    let empty = app.segment_id("empty").await;
    add(&app, s1, &cs[..2]).await;
    add(&app, s2, &cs[1..]).await;
    assert_eq!(app.customers_where(&format!("segment={s1}")).await, cs[..2]);
    assert_eq!(app.customers_where(&format!("segment={s2}")).await, cs[1..]);
    assert_eq!(
        app.customers_where(&format!("segment={empty}")).await,
        Vec::<i64>::new()
    );
    assert_eq!(
        app.customers_where(&format!("segment__exclude={s1}")).await,
        cs[2..]
    );
    assert_eq!(
        app.customers_where(&format!("segment__exclude={empty}"))
            .await,
        cs
    );
    assert_eq!(
        app.customers_where(&format!("segment={s2}&segment__exclude={s1}"))
            .await,
        cs[2..]
    );
    let r = app.get("/api/crm/customer/?segment=abc").await.expect(400);
    assert_eq!(keys(&r.body), ["segment"]);
    let r = app
        .get("/api/crm/customer/?segment__exclude=1,2")
        .await
        .expect(400);
    assert_eq!(keys(&r.body), ["segment__exclude"]);
}

#[actix_web::test]
async fn deleting_a_customer_removes_it_from_its_segments() {
    let app = super::spawn().await;
    let cs = customers(&app, 3).await;
    let s1 = app.segment_id("one").await;
    let s2 = app.segment_id("two").await;
    add(&app, s1, &cs).await;
    add(&app, s2, &cs[1..2]).await;
    app.delete(&format!("/api/crm/customer/{}/", cs[1]))
        .await
        .expect(204);
    assert_eq!(members(&app, s1).await, [cs[0], cs[2]]);
    assert_eq!(members(&app, s2).await, Vec::<i64>::new());
    let list = app.get("/api/crm/segment/").await.expect(200).body;
    assert_eq!(ids(&list["results"][0]["customers"]), [cs[0], cs[2]]);
    assert_eq!(
        app.customers_where(&format!("segment={s1}")).await,
        [cs[0], cs[2]]
    );
}

// --- Large segments: streamed answers ----------------------------------------

/// More members than one streamed chunk holds, and not a multiple of it.
const LARGE: usize = 2 * crm_http::segment_stream::MEMBER_CHUNK + 200;

/// `n` customers created by a few concurrent clients; sorted by id.
async fn many_customers(app: &TestApp, n: usize) -> Vec<i64> {
    const CLIENTS: usize = 8;
    let mut tasks = tokio::task::JoinSet::new();
    for client in 0..CLIENTS {
        let builders: Vec<_> = (client..n)
            .step_by(CLIENTS)
            .map(|i| {
                app.request(Method::POST, "/api/crm/customer/").json(
                    &json!({ "full_name": format!("Member {i}"), "tags": [format!("t{}", i % 3)] }),
                )
            })
            .collect();
        tasks.spawn(async move {
            let mut ids = Vec::new();
            for builder in builders {
                let r = builder.send().await.expect("request failed");
                assert_eq!(r.status(), 201);
                let body: Value = r.json().await.expect("json");
                ids.push(body["id"].as_i64().unwrap());
            }
            ids
        });
    }
    let mut ids = Vec::with_capacity(n);
    while let Some(result) = tasks.join_next().await {
        ids.extend(result.expect("task"));
    }
    ids.sort_unstable();
    ids
}

/// Every customer's list item without `segments`, by id, as the customer
/// list renders them (pages of 1000).
async fn list_items_without_segments(app: &TestApp) -> Vec<Value> {
    let mut items = Vec::new();
    for page in 1.. {
        let r = app
            .get(&format!("/api/crm/customer/?page_size=1000&page={page}"))
            .await
            .expect(200);
        for item in r.body["results"].as_array().unwrap() {
            let mut item = item.clone();
            item.as_object_mut().unwrap().remove("segments");
            items.push(item);
        }
        if r.body["next"].is_null() {
            break;
        }
    }
    items.sort_by_key(|item| item["id"].as_i64().unwrap());
    items
}

/// Asserts `r` was streamed: chunked, with no `Content-Length`.
#[track_caller]
fn assert_streamed(r: &crm_tests::Resp) {
    assert_eq!(
        r.header("transfer-encoding"),
        Some("chunked"),
        "{:?}",
        r.headers
    );
    assert_eq!(r.header("content-length"), None);
    assert_eq!(r.header("content-type"), Some("application/json"));
}

/// Asserts `segment` is `{"id", "title", "customers"}` whose customers are
/// exactly `expected` (list items without `segments`), in id order.
#[track_caller]
fn assert_segment(segment: &Value, id: i64, title: &str, expected: &[Value]) {
    assert_eq!(keys(segment), ["id", "title", "customers"]);
    assert_eq!(segment["id"], id);
    assert_eq!(segment["title"], title);
    let members = segment["customers"].as_array().unwrap();
    assert_eq!(members.len(), expected.len());
    let ids = ids(&segment["customers"]);
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "in id order, each once"
    );
    for (member, item) in members.iter().zip(expected) {
        assert_eq!(keys(member), MEMBER_KEYS);
        assert_eq!(member, item);
    }
}

#[actix_web::test]
async fn a_segment_larger_than_a_chunk_is_streamed_whole_in_id_order() {
    let app = super::spawn().await;
    let cs = many_customers(&app, LARGE).await;
    let items = list_items_without_segments(&app).await;
    assert_eq!(items.len(), LARGE);
    let s = app.segment_id("大").await;
    let small = app.segment_id("small").await;
    add(&app, small, &cs[..3]).await;

    // One POST adds them all, in reverse order; the answer is streamed.
    let reversed: Vec<i64> = cs.iter().rev().copied().collect();
    let r = app
        .post(&members_path(s), &add_body(&reversed))
        .await
        .expect(200);
    assert_streamed(&r);
    assert_segment(&r.body, s, "大", &items);

    let detail = app.get(&one(s)).await.expect(200);
    assert_streamed(&detail);
    assert_eq!(detail.text, r.text, "the same bytes");

    // In the list, between a small segment's answer and the envelope.
    let list = app.get("/api/crm/segment/").await.expect(200);
    assert_streamed(&list);
    assert_eq!(keys(&list.body), ["count", "next", "previous", "results"]);
    assert_eq!(list.body["count"], 2);
    assert_segment(&list.body["results"][0], s, "大", &items);
    assert_eq!(list.body["results"][0], detail.body);
    assert_eq!(list.body["results"][1], app.get(&one(small)).await.body);
    let second = app
        .get("/api/crm/segment/?page=2&page_size=1")
        .await
        .expect(200);
    assert_eq!(
        second.body["results"],
        json!([app.get(&one(small)).await.body])
    );

    // A rename answers with every member too.
    let renamed = app
        .patch(&one(s), &json!({"title": "big"}))
        .await
        .expect(200);
    assert_streamed(&renamed);
    assert_segment(&renamed.body, s, "big", &items);

    // DELETE removes members across chunk boundaries.
    let chunk = crm_http::segment_stream::MEMBER_CHUNK;
    let removed = [cs[0], cs[chunk - 1], cs[chunk], cs[LARGE - 1]];
    let query = removed.map(|c| c.to_string()).join(",");
    let r = remove(&app, s, &format!("customer__in={query}"))
        .await
        .expect(200);
    assert_streamed(&r);
    let kept: Vec<Value> = items
        .iter()
        .filter(|item| !removed.contains(&item["id"].as_i64().unwrap()))
        .cloned()
        .collect();
    assert_segment(&r.body, s, "big", &kept);
    assert_eq!(app.get(&one(s)).await.text, r.text);
}

#[actix_web::test]
async fn a_small_segment_answer_is_sent_whole() {
    let app = super::spawn().await;
    let cs = customers(&app, 2).await;
    let s = app.segment_id("s").await;
    let r = app.post(&members_path(s), &add_body(&cs)).await.expect(200);
    for r in [
        r,
        app.get(&one(s)).await,
        app.get("/api/crm/segment/").await,
    ] {
        let r = r.expect(200);
        assert_eq!(
            r.header("content-length"),
            Some(r.text.len().to_string().as_str())
        );
        assert_eq!(r.header("transfer-encoding"), None);
        assert_eq!(r.header("content-type"), Some("application/json"));
    }
}
