//! Customers: concurrent writes racing on the same unique value.

use super::*;

// --- concurrency ----------------------------------------------------------------------

#[actix_web::test]
async fn concurrent_creates_with_the_same_mobile_make_exactly_one_customer() {
    let app = spawn!();
    let body = json!({"mobile": "13600000000", "tags": ["race"]});
    let post = || app.post(CUSTOMERS, &body);
    let (a, b, c, d, e, f, g, h) = tokio::join!(
        post(),
        post(),
        post(),
        post(),
        post(),
        post(),
        post(),
        post()
    );
    let responses = [a, b, c, d, e, f, g, h];
    let created = responses.iter().filter(|r| r.status == 201).count();
    assert_eq!(created, 1, "exactly one create wins: {responses:?}");
    for resp in responses.iter().filter(|r| r.status != 201) {
        assert_eq!(resp.status, 400, "{}", resp.text);
        assert_eq!(
            resp.body,
            json!({"mobile": ["customer with this mobile already exists."]})
        );
    }
    let list = app.get(CUSTOMERS).await.expect(200).body;
    assert_eq!(list["count"], 1);
    assert_eq!(list["results"][0]["tags"], json!(["race"]));
}

#[actix_web::test]
async fn concurrent_creates_with_the_same_email_in_any_case_make_exactly_one_customer() {
    let app = spawn!();
    let bodies = [
        json!({"email": "race@example.com"}),
        json!({"email": "RACE@example.com"}),
        json!({"email": "Race@Example.com"}),
        json!({"email": "race@EXAMPLE.COM"}),
        json!({"email": "rAce@example.com"}),
        json!({"email": "raCe@example.com"}),
    ];
    let post = |i: usize| app.post(CUSTOMERS, &bodies[i]);
    let (a, b, c, d, e, f) = tokio::join!(post(0), post(1), post(2), post(3), post(4), post(5));
    let responses = [a, b, c, d, e, f];
    assert_eq!(
        responses.iter().filter(|r| r.status == 201).count(),
        1,
        "{responses:?}"
    );
    for resp in responses.iter().filter(|r| r.status != 201) {
        assert_eq!(resp.status, 400, "{}", resp.text);
        assert_eq!(
            resp.body,
            json!({"email": ["customer with this email already exists."]})
        );
    }
    assert_eq!(count(&app).await, 1);
}

#[actix_web::test]
async fn concurrent_updates_to_the_same_mobile_let_exactly_one_win() {
    let app = spawn!();
    let mut ids = Vec::new();
    for i in 0..6 {
        ids.push(app.customer_id(json!({"full_name": format!("C{i}")})).await);
    }
    let body = json!({"mobile": "13500000000"});
    let paths: Vec<String> = ids.iter().map(|&id| customer_path(id)).collect();
    let patch = |i: usize| app.patch(&paths[i], &body);
    let (a, b, c, d, e, f) =
        tokio::join!(patch(0), patch(1), patch(2), patch(3), patch(4), patch(5));
    let responses = [a, b, c, d, e, f];
    assert_eq!(
        responses.iter().filter(|r| r.status == 200).count(),
        1,
        "{responses:?}"
    );
    for resp in responses.iter().filter(|r| r.status != 200) {
        assert_eq!(resp.status, 400, "{}", resp.text);
        assert_eq!(
            resp.body,
            json!({"mobile": ["customer with this mobile already exists."]})
        );
    }
    let found = app
        .get("/api/crm/customer/?mobile=13500000000")
        .await
        .expect(200)
        .body;
    assert_eq!(found["count"], 1);
}
