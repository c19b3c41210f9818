//! Cursor pagination of the customer list (contract section 10).

use std::time::Duration;

use crm_tests::{json, keys, TestApp, Value};

/// `GET /api/crm/customer/?{query}`, asserting 200.
async fn list(app: &TestApp, query: &str) -> Value {
    app.get(&format!("/api/crm/customer/?{query}"))
        .await
        .expect(200)
        .body
}

/// GET an absolute link the server gave.
async fn follow(app: &TestApp, link: &Value) -> Value {
    app.send(
        app.client
            .get(link.as_str().expect("a link"))
            .bearer_auth(&app.token),
    )
    .await
    .expect(200)
    .body
}

fn ids(page: &Value) -> Vec<i64> {
    page["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_i64().unwrap())
        .collect()
}

/// Every id of a walk that starts with `query` and follows `next`.
async fn walk(app: &TestApp, query: &str) -> Vec<i64> {
    let mut page = list(app, query).await;
    let mut seen = ids(&page);
    while !page["next"].is_null() {
        page = follow(app, &page["next"]).await;
        seen.extend(ids(&page));
    }
    seen
}

async fn create_some(app: &TestApp, n: usize) -> Vec<i64> {
    let mut created = Vec::new();
    for i in 0..n {
        created.push(
            app.customer_id(json!({ "full_name": format!("C{i}") }))
                .await,
        );
    }
    created
}

#[actix_web::test]
async fn a_walk_returns_every_customer_once_in_each_ordering() {
    let app = spawn!(|s| s.cursor_settle_ms = 0);
    let created = create_some(&app, 7).await;
    let mut descending = created.clone();
    descending.reverse();
    assert_eq!(
        walk(&app, "cursor=&page_size=3").await,
        descending,
        "-id by default"
    );
    assert_eq!(
        walk(&app, "cursor=&page_size=3&ordering=-id").await,
        descending
    );
    assert_eq!(walk(&app, "cursor=&page_size=2&ordering=id").await, created);
    assert_eq!(
        walk(&app, "cursor=&page_size=3&ordering=updated_at").await,
        created
    );
    assert_eq!(
        walk(&app, "cursor=&page_size=4&ordering=-updated_at").await,
        descending
    );
}

#[actix_web::test]
async fn cursor_pages_have_no_count_and_links_that_keep_the_parameters() {
    let app = spawn!();
    let created = create_some(&app, 5).await;
    let first = list(&app, "cursor=&page_size=2&ordering=id&page=7").await;
    assert_eq!(keys(&first), ["next", "previous", "results"]);
    assert_eq!(ids(&first), created[..2], "page is ignored");
    assert_eq!(first["previous"], Value::Null);
    let next = first["next"].as_str().unwrap();
    assert!(
        next.starts_with(&app.url("/api/crm/customer/?cursor=")),
        "{next}"
    );
    assert!(
        next.contains("ordering=id") && next.contains("page_size=2") && next.contains("page=7")
    );
    let second = follow(&app, &first["next"]).await;
    assert_eq!(ids(&second), created[2..4]);
    let back = follow(&app, &second["previous"]).await;
    assert_eq!(
        ids(&back),
        created[..2],
        "previous gives the previous page, in order"
    );
    assert_eq!(back["previous"], Value::Null);
    assert_eq!(follow(&app, &back["next"]).await, second);
    let last = follow(&app, &second["next"]).await;
    assert_eq!(ids(&last), created[4..]);
    assert_eq!(last["next"], Value::Null);
    // Nothing matching.
    let none = list(&app, "cursor=&tag=nobody").await;
    assert_eq!(none, json!({"next": null, "previous": null, "results": []}));
}

#[actix_web::test]
async fn cursors_outlive_their_customers() {
    let app = spawn!();
    let created = create_some(&app, 4).await;
    let first = list(&app, "cursor=&page_size=2&ordering=id").await;
    app.delete(&format!("/api/crm/customer/{}/", created[1]))
        .await
        .expect(204);
    let second = follow(&app, &first["next"]).await;
    assert_eq!(ids(&second), created[2..]);
}

#[actix_web::test]
async fn bad_cursors_are_404_and_other_orderings_400() {
    let app = spawn!();
    create_some(&app, 3).await;
    for cursor in ["garbage", "bz1pZCZkPWYmcD0x%3D%3D%3D!", "cD0yODI2OTY%3D"] {
        let r = app
            .get(&format!("/api/crm/customer/?cursor={cursor}"))
            .await
            .expect(404);
        assert_eq!(r.body, json!({"detail": "Invalid cursor"}), "{cursor}");
    }
    // A cursor issued for another ordering.
    let by_id = list(&app, "cursor=&page_size=1&ordering=id").await;
    let next = by_id["next"]
        .as_str()
        .unwrap()
        .replace("ordering=id", "ordering=-id");
    let r = app
        .send(app.client.get(&next).bearer_auth(&app.token))
        .await
        .expect(404);
    assert_eq!(r.body, json!({"detail": "Invalid cursor"}));
    for ordering in ["created_at", "-created_at"] {
        let r = app
            .get(&format!("/api/crm/customer/?cursor=&ordering={ordering}"))
            .await
            .expect(400);
        assert_eq!(keys(&r.body), ["ordering"], "{}", r.text);
    }
    let r = app
        .get("/api/crm/customer/?cursor=&ordering=x")
        .await
        .expect(400);
    assert_eq!(keys(&r.body), ["ordering"]);
    let r = app.get("/api/crm/customer/?cursor=&id=x").await.expect(400);
    assert_eq!(keys(&r.body), ["id"], "every filter keeps its 400s");
}

#[actix_web::test]
async fn filters_apply_to_cursor_walks() {
    let app = spawn!();
    let mut vip = Vec::new();
    for i in 0..6 {
        let tags = if i % 2 == 0 {
            json!(["vip"])
        } else {
            json!([])
        };
        let id = app
            .customer_id(json!({"full_name": format!("C{i}"), "tags": tags}))
            .await;
        if i % 2 == 0 {
            vip.push(id);
        }
    }
    vip.reverse();
    assert_eq!(walk(&app, "cursor=&page_size=1&tag=vip").await, vip);
}

#[actix_web::test]
async fn a_walk_by_update_time_returns_an_updated_customer_again() {
    let app = spawn!(|s| s.cursor_settle_ms = 0);
    let created = create_some(&app, 5).await;
    let first = list(&app, "cursor=&page_size=2&ordering=updated_at").await;
    assert_eq!(ids(&first), created[..2]);
    app.patch(
        &format!("/api/crm/customer/{}/", created[0]),
        &json!({"note": "changed"}),
    )
    .await
    .expect(200);
    let mut seen = ids(&first);
    let mut page = first;
    while !page["next"].is_null() {
        page = follow(&app, &page["next"]).await;
        seen.extend(ids(&page));
    }
    assert_eq!(
        seen,
        [created[0], created[1], created[2], created[3], created[4], created[0]]
    );
}

#[actix_web::test]
async fn a_walk_by_update_time_holds_back_what_has_not_settled() {
    let app = spawn!(|s| s.cursor_settle_ms = 1_500);
    let created = create_some(&app, 2).await;
    let early = list(&app, "cursor=&ordering=updated_at").await;
    assert_eq!(ids(&early), Vec::<i64>::new(), "written moments ago");
    tokio::time::sleep(Duration::from_millis(1_600)).await;
    let later = list(&app, "cursor=&ordering=updated_at").await;
    assert_eq!(ids(&later), created);
    // The other orderings hold nothing back.
    assert_eq!(ids(&list(&app, "cursor=&ordering=id").await), created);
}
