//! The change feed (contract section 8): `/api/crm/event/`.
//!
//! An event may be listed a moment after its write's response, so the tests
//! wait for the events they expect; to show that nothing else was written
//! they write a marker customer last and look at what came before it.

use std::time::Duration;

use crm_tests::{json, keys, Method, TestApp, Value};

const FEED: &str = "/api/crm/event/";

/// `GET /api/crm/event/?{query}`, asserting 200.
async fn feed(app: &TestApp, query: &str) -> Value {
    app.get(&format!("{FEED}?{query}")).await.expect(200).body
}

/// The results after `after` once at least `n` are listed.
async fn events_after(app: &TestApp, after: i64, n: usize) -> Vec<Value> {
    for _ in 0..500 {
        let page = feed(app, &format!("after={after}&limit=1000")).await;
        let results = page["results"].as_array().unwrap().clone();
        if results.len() >= n {
            return results;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("fewer than {n} events were listed after {after}");
}

/// The id of the last event listed, once `n` are.
async fn position(app: &TestApp, n: usize) -> i64 {
    events_after(app, 0, n)
        .await
        .last()
        .map_or(0, |e| e["id"].as_i64().unwrap())
}

/// The events after `after` written before a marker customer created now.
async fn until_marker(app: &TestApp, after: i64) -> Vec<Value> {
    let marker = app.customer_id(json!({"full_name": "Marker"})).await;
    for _ in 0..500 {
        let page = feed(app, &format!("after={after}&limit=1000")).await;
        let results = page["results"].as_array().unwrap();
        if let Some(last) = results.last() {
            if last["type"] == "customer.created" && last["data"]["object"]["id"] == marker {
                return results[..results.len() - 1].to_vec();
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the marker was never listed last");
}

fn types(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["type"].as_str().unwrap()).collect()
}

#[actix_web::test]
async fn every_write_is_an_event_carrying_what_get_returned() {
    let app = spawn!();
    let created = app
        .create_customer(json!({"full_name": "Ann", "mobile": "13800000001", "tags": ["b", "a"]}))
        .await;
    let id = created["id"].as_i64().unwrap();
    let path = format!("/api/crm/customer/{id}/");
    let patched = app
        .patch(
            &path,
            &json!({"metafields": [{"namespace": "n", "key": "k", "value": "v"}]}),
        )
        .await
        .expect(200)
        .body;
    let address = app
        .post(
            &format!("{path}addresses/"),
            &json!({"full_name": "Ann", "mobile": "13800000001", "place_code": "330106",
                    "province": "Zhejiang", "city": "Hangzhou", "district": "Xihu",
                    "address1": "Wensan Road 1", "zip": "310012"}),
        )
        .await
        .expect(201)
        .body;
    let after_address = app.get(&path).await.expect(200).body;
    app.post(&format!("{path}coupons/"), &json!({"coupon_id": 5}))
        .await
        .expect(201);
    let after_grant = app.get(&path).await.expect(200).body;
    assert_ne!(
        after_grant["updated_at"], after_address["updated_at"],
        "a coupon grant is a write to the customer"
    );
    app.delete(&format!("{path}coupons/5/")).await.expect(204);

    let events = events_after(&app, 0, 5).await;
    assert_eq!(
        types(&events),
        [
            "customer.created",
            "customer.updated",
            "customer.updated",
            "customer.updated",
            "customer.updated"
        ]
    );
    for event in &events {
        assert_eq!(keys(event), ["id", "type", "created_at", "data"]);
        crm_tests::assert_timestamp(&event["created_at"], "Z");
    }
    assert_eq!(events[0]["data"], json!({"object": created}));
    assert_eq!(events[1]["data"], json!({"object": patched}));
    assert_eq!(events[2]["data"], json!({"object": after_address}));
    assert_eq!(
        events[2]["data"]["object"]["addresses"][0]["id"],
        address["id"]
    );
    assert_eq!(events[3]["data"], json!({"object": after_grant}));
    assert_eq!(
        events[4]["data"]["object"]["updated_at"],
        app.get(&path).await.body["updated_at"]
    );
    let ids: Vec<i64> = events.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]) && ids[0] > 0);
}

#[actix_web::test]
async fn segment_events_and_membership_events_name_only_what_changed() {
    let app = spawn!();
    let a = app.customer_id(json!({"full_name": "A"})).await;
    let b = app.customer_id(json!({"full_name": "B"})).await;
    let s = app
        .post("/api/crm/segment/", &json!({"title": "VIP"}))
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    let members = format!("/api/crm/segment/{s}/segment_customer/");
    app.post(&members, &json!([{"customer_id": a}]))
        .await
        .expect(200);
    app.post(&members, &json!([{"customer_id": b}, {"customer_id": a}]))
        .await
        .expect(200);
    app.put(&format!("/api/crm/segment/{s}/"), &json!({"title": "Gold"}))
        .await
        .expect(200);
    app.send(app.request(
        Method::DELETE,
        &format!("{members}?customer__in={b},{a},999999"),
    ))
    .await
    .expect(200);
    app.delete(&format!("/api/crm/segment/{s}/"))
        .await
        .expect(204);
    let events = events_after(&app, 0, 8).await;
    assert_eq!(
        types(&events),
        [
            "customer.created",
            "customer.created",
            "segment.created",
            "segment.customers_added",
            "segment.customers_added",
            "segment.updated",
            "segment.customers_removed",
            "segment.deleted"
        ]
    );
    assert_eq!(
        events[2]["data"],
        json!({"object": {"id": s, "title": "VIP"}})
    );
    assert_eq!(
        events[3]["data"],
        json!({"segment_id": s, "customer_ids": [a]})
    );
    assert_eq!(
        events[4]["data"],
        json!({"segment_id": s, "customer_ids": [b]}),
        "only the customer not yet in the segment"
    );
    assert_eq!(
        events[5]["data"],
        json!({"object": {"id": s, "title": "Gold"}})
    );
    assert_eq!(
        events[6]["data"],
        json!({"segment_id": s, "customer_ids": [a, b]}),
        "ascending, the unknown id left out"
    );
    assert_eq!(events[7]["data"], json!({"object": {"id": s}}));
    // Membership changes are no customer.updated.
    let last = events[7]["id"].as_i64().unwrap();
    assert_eq!(until_marker(&app, last).await, Vec::<Value>::new());
}

#[actix_web::test]
async fn deleting_a_referrer_is_its_deletion_then_an_update_of_each_referred() {
    let app = spawn!();
    let referrer = app.customer_id(json!({"full_name": "R"})).await;
    let x = app
        .customer_id(json!({"full_name": "X", "referrer": referrer}))
        .await;
    let y = app
        .customer_id(json!({"full_name": "Y", "referrer": referrer}))
        .await;
    let seen = position(&app, 3).await;
    app.delete(&format!("/api/crm/customer/{referrer}/"))
        .await
        .expect(204);
    let events = events_after(&app, seen, 3).await;
    assert_eq!(
        types(&events),
        ["customer.deleted", "customer.updated", "customer.updated"]
    );
    assert_eq!(events[0]["data"], json!({"object": {"id": referrer}}));
    for (event, id) in events[1..].iter().zip([x, y]) {
        let now = app.get(&format!("/api/crm/customer/{id}/")).await.body;
        assert_eq!(event["data"]["object"], now);
        assert_eq!(now["referrer"], Value::Null);
    }
}

#[actix_web::test]
async fn refused_and_empty_writes_write_no_event() {
    let app = spawn!();
    let a = app
        .customer_id(json!({"full_name": "A", "mobile": "13800000001"}))
        .await;
    let s = app.segment_id("S").await;
    app.post(
        &format!("/api/crm/customer/{a}/coupons/"),
        &json!({"coupon_id": 1}),
    )
    .await
    .expect(201);
    let seen = position(&app, 3).await;
    app.post("/api/crm/customer/", &json!({"mobile": "13800000001"}))
        .await
        .expect(400);
    app.patch(&format!("/api/crm/customer/{a}/"), &json!({"gender": "x"}))
        .await
        .expect(400);
    app.patch("/api/crm/customer/987654/", &json!({"full_name": "Z"}))
        .await
        .expect(404);
    app.post(
        &format!("/api/crm/customer/{a}/coupons/"),
        &json!({"coupon_id": 1}),
    )
    .await
    .expect(200);
    app.post(
        &format!("/api/crm/segment/{s}/segment_customer/"),
        &json!([{"customer_id": a}, {"customer_id": 987654}]),
    )
    .await
    .expect(400);
    app.send(app.request(
        Method::DELETE,
        &format!("/api/crm/segment/{s}/segment_customer/?customer__in={a}"),
    ))
    .await
    .expect(200);
    app.delete(&format!("/api/crm/customer/{a}/coupons/7/"))
        .await
        .expect(404);
    assert_eq!(until_marker(&app, seen).await, Vec::<Value>::new());
}

#[actix_web::test]
async fn next_sets_after_to_the_last_id_and_keeps_the_other_parameters() {
    let app = spawn!();
    for name in ["A", "B", "C"] {
        app.customer_id(json!({ "full_name": name })).await;
    }
    let all = events_after(&app, 0, 3).await;
    let second = all[1]["id"].as_i64().unwrap();
    let page = feed(&app, "type=customer.created&limit=2").await;
    assert_eq!(keys(&page), ["next", "results"]);
    assert_eq!(page["results"].as_array().unwrap().len(), 2);
    assert_eq!(
        page["next"],
        app.url(&format!(
            "{FEED}?after={second}&limit=2&type=customer.created"
        ))
    );
    // Following `next` to the end, then again on an empty page.
    let next = page["next"].as_str().unwrap().to_owned();
    let rest = app
        .send(app.client.get(&next).bearer_auth(&app.token))
        .await
        .expect(200)
        .body;
    assert_eq!(rest["results"], json!([all[2]]));
    let last = all[2]["id"].as_i64().unwrap();
    let empty = app
        .send(
            app.client
                .get(rest["next"].as_str().unwrap())
                .bearer_auth(&app.token),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(empty["results"], json!([]));
    assert_eq!(
        empty["next"],
        app.url(&format!(
            "{FEED}?after={last}&limit=2&type=customer.created"
        )),
        "an empty page keeps the request's after"
    );
    let nothing = feed(&app, "customer=0").await;
    assert_eq!(nothing["results"], json!([]));
    assert_eq!(
        nothing["next"],
        app.url(&format!("{FEED}?after=0&customer=0"))
    );
    let beyond = feed(&app, &format!("after={}", last + 100)).await;
    assert_eq!(
        beyond["results"],
        json!([]),
        "beyond the newest is no error"
    );
}

#[actix_web::test]
async fn filters_select_by_type_and_by_customer() {
    let app = spawn!();
    let a = app.customer_id(json!({"full_name": "A"})).await;
    let b = app.customer_id(json!({"full_name": "B"})).await;
    let s = app.segment_id("S").await;
    app.post(
        &format!("/api/crm/segment/{s}/segment_customer/"),
        &json!([{"customer_id": a}, {"customer_id": b}]),
    )
    .await
    .expect(200);
    app.patch(&format!("/api/crm/customer/{a}/"), &json!({"note": "n"}))
        .await
        .expect(200);
    events_after(&app, 0, 5).await;
    let of_a = feed(&app, &format!("customer={a}")).await;
    assert_eq!(
        types(of_a["results"].as_array().unwrap()),
        [
            "customer.created",
            "segment.customers_added",
            "customer.updated"
        ]
    );
    assert_eq!(
        of_a["results"][1]["data"]["customer_ids"],
        json!([a, b]),
        "a membership event is listed whole"
    );
    let two_types = feed(&app, "type=segment.created,customer.updated").await;
    assert_eq!(
        types(two_types["results"].as_array().unwrap()),
        ["segment.created", "customer.updated"]
    );
    let both = feed(&app, &format!("type=customer.created&customer={b}")).await;
    assert_eq!(both["results"].as_array().unwrap().len(), 1);
    assert_eq!(both["results"][0]["data"]["object"]["id"], b);
    let unfiltered = feed(&app, "type=").await;
    assert_eq!(unfiltered["results"].as_array().unwrap().len(), 5);
}

#[actix_web::test]
async fn malformed_parameters_are_400_under_their_names() {
    let app = spawn!();
    for (query, field) in [
        ("after=-1", "after"),
        ("after=x", "after"),
        ("after=1.5", "after"),
        ("limit=0", "limit"),
        ("limit=ten", "limit"),
        ("customer=x", "customer"),
        ("type=customer.created,customer", "type"),
        ("after=1&after=2", "after"),
    ] {
        let r = app.get(&format!("{FEED}?{query}")).await.expect(400);
        assert_eq!(keys(&r.body), [field], "{query}: {}", r.text);
    }
    let r = app.get(&format!("{FEED}?type=x")).await.expect(400);
    assert_eq!(r.body, json!({"type": ["\"x\" is not a valid choice."]}));
    let r = app.get(&format!("{FEED}?limit=5000")).await.expect(200);
    assert_eq!(r.body["results"], json!([]), "a large limit is clamped");
}

#[actix_web::test]
async fn only_get_head_and_options_are_answered() {
    let app = spawn!();
    for method in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
        let r = app
            .send(app.request(method.clone(), FEED))
            .await
            .expect(405);
        assert_eq!(r.header("allow"), Some("GET, HEAD, OPTIONS"), "{method}");
    }
    app.send(app.request(Method::HEAD, FEED)).await.expect(200);
    app.send(app.request(Method::OPTIONS, FEED))
        .await
        .expect(200);
    app.send(app.anonymous(Method::GET, FEED)).await.expect(401);
    let reader = app.register_client("reader", "crm:read").await;
    let token = app.fetch_token(&reader, &["crm:read"]).await;
    app.send(app.client.get(app.url(FEED)).bearer_auth(token))
        .await
        .expect(200);
}

#[actix_web::test]
async fn a_position_before_what_retention_deleted_is_410() {
    let app = spawn!();
    for name in ["A", "B", "C"] {
        app.customer_id(json!({ "full_name": name })).await;
    }
    let all = events_after(&app, 0, 3).await;
    let ids: Vec<i64> = all.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    // What the background purge does to events past their retention.
    app.sql_execute(&format!("DELETE FROM crm_events WHERE id <= {}", ids[1]));
    app.sql_execute(&format!(
        "UPDATE crm_event_log SET purged_through = {}",
        ids[1]
    ));
    let r = app
        .get(&format!("{FEED}?after={}", ids[0]))
        .await
        .expect(410);
    assert_eq!(
        r.body,
        json!({"detail": format!("Events before {} are no longer retained.", ids[1] + 1)})
    );
    let kept = feed(&app, &format!("after={}", ids[1])).await;
    assert_eq!(kept["results"], json!([all[2]]));
    let from_oldest = feed(&app, "after=0").await;
    assert_eq!(from_oldest["results"], json!([all[2]]));
}
