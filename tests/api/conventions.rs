//! Section 1 conventions: paths, error shapes, content types, body limits,
//! OPTIONS and HEAD, pagination and timestamps.

use crm_tests::{assert_timestamp, json, keys, Method, Resp, TestApp, Value};

const CUSTOMERS: &str = "/api/crm/customer/";
const COLLECTION_ALLOW: &str = "GET, POST, HEAD, OPTIONS";
const INSTANCE_ALLOW: &str = "GET, PUT, PATCH, DELETE, HEAD, OPTIONS";

fn ids(body: &Value) -> Vec<i64> {
    body["results"]
        .as_array()
        .expect("results is a list")
        .iter()
        .map(|c| c["id"].as_i64().expect("id"))
        .collect()
}

#[track_caller]
fn assert_not_found(resp: &Resp) {
    assert_eq!(resp.status, 404, "{}", resp.text);
    assert_eq!(resp.body, json!({"detail": "Not found."}));
}

#[track_caller]
fn assert_invalid_page(resp: &Resp) {
    assert_eq!(resp.status, 404, "{}", resp.text);
    assert_eq!(resp.body, json!({"detail": "Invalid page."}));
}

/// The host part the server sees in requests from the test client.
fn host(app: &TestApp) -> &str {
    app.base.strip_prefix("http://").expect("http base")
}

/// Creates `n` customers, a few requests at a time; returns their ids in
/// creation order.
async fn create_many(app: &TestApp, n: usize) -> Vec<i64> {
    let mut ids = Vec::with_capacity(n);
    let mut i = 0;
    while i < n {
        let body = |k: usize| json!({"full_name": format!("Customer {k}")});
        let (b0, b1, b2, b3) = (body(i), body(i + 1), body(i + 2), body(i + 3));
        let (r0, r1, r2, r3) = tokio::join!(
            app.post(CUSTOMERS, &b0),
            async {
                if i + 1 < n {
                    Some(app.post(CUSTOMERS, &b1).await)
                } else {
                    None
                }
            },
            async {
                if i + 2 < n {
                    Some(app.post(CUSTOMERS, &b2).await)
                } else {
                    None
                }
            },
            async {
                if i + 3 < n {
                    Some(app.post(CUSTOMERS, &b3).await)
                } else {
                    None
                }
            },
        );
        for resp in std::iter::once(Some(r0)).chain([r1, r2, r3]).flatten() {
            ids.push(resp.expect(201).body["id"].as_i64().unwrap());
        }
        i += 4;
    }
    ids.sort_unstable();
    ids
}

// --- paths --------------------------------------------------------------------------

#[actix_web::test]
async fn paths_are_served_with_and_without_the_trailing_slash() {
    let app = spawn!();
    let created = app
        .post("/api/crm/customer", &json!({"full_name": "No Slash"}))
        .await
        .expect(201)
        .body;
    let id = created["id"].as_i64().unwrap();
    let with = app.get(CUSTOMERS).await.expect(200);
    let without = app.get("/api/crm/customer").await.expect(200);
    assert_eq!(with.body, without.body);
    assert_eq!(with.body["count"], 1);
    let query = app.get("/api/crm/customer?page_size=1").await.expect(200);
    assert_eq!(query.body["count"], 1);
    let one = app
        .get(&format!("/api/crm/customer/{id}"))
        .await
        .expect(200);
    assert_eq!(one.body, created);
    app.patch(&format!("/api/crm/customer/{id}"), &json!({"note": "x"}))
        .await
        .expect(200);
    app.put(&format!("/api/crm/customer/{id}"), &json!({"note": "y"}))
        .await
        .expect(200);
    app.get(&format!("/api/crm/customer/{id}/addresses"))
        .await
        .expect(200);
    app.get("/api/crm/segment").await.expect(200);
    app.delete(&format!("/api/crm/customer/{id}"))
        .await
        .expect(204);
    assert_not_found(&app.get(&format!("/api/crm/customer/{id}")).await);
}

#[actix_web::test]
async fn unknown_paths_are_404_not_found() {
    let app = spawn!();
    for path in [
        "/",
        "/api/",
        "/api/crm/",
        "/api/crm/unknown/",
        "/api/crm/customers/",
        "/api/crm/customer/1/unknown/",
        "/nothing/here",
    ] {
        let resp = app.get(path).await;
        assert_not_found(&resp);
        let resp = app.post(path, &json!({"full_name": "x"})).await;
        assert_eq!(resp.status, 404, "POST {path}: {}", resp.text);
        assert_eq!(resp.body, json!({"detail": "Not found."}), "POST {path}");
    }
}

#[actix_web::test]
async fn a_path_id_that_is_not_a_positive_integer_is_404() {
    let app = spawn!();
    app.create_customer(json!({"full_name": "Exists"})).await;
    for id in [
        "abc",
        "0",
        "-1",
        "1.5",
        "1e3",
        "+1",
        "99999999999999999999",
        "%20",
    ] {
        let path = format!("/api/crm/customer/{id}/");
        assert_not_found(&app.get(&path).await);
        assert_not_found(&app.delete(&path).await);
        assert_not_found(&app.patch(&path, &json!({"note": "x"})).await);
    }
    assert_not_found(&app.get("/api/crm/customer/987654/").await);
    // Nothing was touched.
    let list = app.get(CUSTOMERS).await.expect(200).body;
    assert_eq!(list["count"], 1);
    assert_eq!(list["results"][0]["note"], "");
}

// --- 405 ----------------------------------------------------------------------------

#[actix_web::test]
async fn collection_refuses_other_methods_with_405_and_allow() {
    let app = spawn!();
    for (method, name) in [
        (Method::PATCH, "PATCH"),
        (Method::PUT, "PUT"),
        (Method::DELETE, "DELETE"),
    ] {
        for path in [CUSTOMERS, "/api/crm/customer"] {
            let resp = app
                .send(app.request(method.clone(), path).json(&json!({})))
                .await;
            assert_eq!(resp.status, 405, "{name} {path}: {}", resp.text);
            assert_eq!(
                resp.body,
                json!({"detail": format!("Method \"{name}\" not allowed.")})
            );
            assert_eq!(
                resp.header("allow"),
                Some(COLLECTION_ALLOW),
                "{name} {path}"
            );
        }
    }
}

#[actix_web::test]
async fn instance_refuses_post_with_405_and_allow() {
    let app = spawn!();
    let id = app.customer_id(json!({"full_name": "A"})).await;
    let resp = app
        .post(
            &format!("/api/crm/customer/{id}/"),
            &json!({"full_name": "B"}),
        )
        .await;
    assert_eq!(resp.status, 405, "{}", resp.text);
    assert_eq!(resp.body, json!({"detail": "Method \"POST\" not allowed."}));
    assert_eq!(resp.header("allow"), Some(INSTANCE_ALLOW));
    // Nothing was created or changed.
    let list = app.get(CUSTOMERS).await.expect(200).body;
    assert_eq!(list["count"], 1);
    assert_eq!(list["results"][0]["full_name"], "A");
}

#[actix_web::test]
async fn method_not_allowed_names_the_method_sent() {
    let app = spawn!();
    let resp = app
        .send(app.request(Method::from_bytes(b"PURGE").unwrap(), CUSTOMERS))
        .await;
    assert_eq!(resp.status, 405, "{}", resp.text);
    assert_eq!(
        resp.body,
        json!({"detail": "Method \"PURGE\" not allowed."})
    );
    assert_eq!(resp.header("allow"), Some(COLLECTION_ALLOW));
}

// --- OPTIONS and HEAD ---------------------------------------------------------------

#[actix_web::test]
async fn options_answers_200_with_allow() {
    let app = spawn!();
    let id = app.customer_id(json!({"full_name": "A"})).await;
    for (path, allow) in [
        (CUSTOMERS.to_owned(), COLLECTION_ALLOW),
        ("/api/crm/customer".to_owned(), COLLECTION_ALLOW),
        (format!("/api/crm/customer/{id}/"), INSTANCE_ALLOW),
    ] {
        let resp = app.send(app.request(Method::OPTIONS, &path)).await;
        assert_eq!(resp.status, 200, "OPTIONS {path}: {}", resp.text);
        assert_eq!(resp.header("allow"), Some(allow), "{path}");
        assert!(
            resp.body.is_object(),
            "OPTIONS {path} answers JSON: {}",
            resp.text
        );
    }
}

#[actix_web::test]
async fn head_answers_like_get_without_a_body() {
    let app = spawn!();
    let id = app.customer_id(json!({"full_name": "A"})).await;
    let resp = app.send(app.request(Method::HEAD, CUSTOMERS)).await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.text, "");
    let resp = app
        .send(app.request(Method::HEAD, &format!("/api/crm/customer/{id}/")))
        .await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.text, "");
    let resp = app
        .send(app.request(Method::HEAD, "/api/crm/customer/987654/"))
        .await;
    assert_eq!(resp.status, 404);
    assert_eq!(resp.text, "");
}

// --- content types, malformed JSON, body size -----------------------------------------

#[actix_web::test]
async fn a_body_that_is_not_json_is_415() {
    let app = spawn!();
    let id = app.customer_id(json!({"full_name": "A"})).await;
    let instance = format!("/api/crm/customer/{id}/");
    for (method, path) in [
        (Method::POST, CUSTOMERS),
        (Method::PUT, instance.as_str()),
        (Method::PATCH, instance.as_str()),
    ] {
        let resp = app
            .send(
                app.request(method.clone(), path)
                    .header("content-type", "text/plain")
                    .body(r#"{"full_name": "B"}"#),
            )
            .await;
        assert_eq!(resp.status, 415, "{method} {path}: {}", resp.text);
        assert_eq!(
            resp.body,
            json!({"detail": "Unsupported media type \"text/plain\" in request."})
        );
    }
    let resp = app
        .send(
            app.request(Method::POST, CUSTOMERS)
                .header("content-type", "application/x-www-form-urlencoded")
                .body("full_name=B"),
        )
        .await;
    assert_eq!(resp.status, 415, "{}", resp.text);
    assert_eq!(
        resp.body,
        json!({"detail": "Unsupported media type \"application/x-www-form-urlencoded\" in request."})
    );
    // Nothing was written.
    let list = app.get(CUSTOMERS).await.expect(200).body;
    assert_eq!(list["count"], 1);
    assert_eq!(list["results"][0]["full_name"], "A");
}

#[actix_web::test]
async fn json_with_a_charset_parameter_is_accepted() {
    let app = spawn!();
    for content_type in [
        "application/json; charset=utf-8",
        "application/json;charset=UTF-8",
        "application/json",
    ] {
        let resp = app
            .send(
                app.request(Method::POST, CUSTOMERS)
                    .header("content-type", content_type)
                    .body(r#"{"full_name": "名字"}"#),
            )
            .await;
        assert_eq!(resp.status, 201, "{content_type}: {}", resp.text);
        assert_eq!(resp.body["full_name"], "名字");
    }
}

#[actix_web::test]
async fn malformed_json_is_400_with_a_parse_error() {
    let app = spawn!();
    let id = app.customer_id(json!({"full_name": "A"})).await;
    let instance = format!("/api/crm/customer/{id}/");
    for (method, path, body) in [
        (Method::POST, CUSTOMERS, "{"),
        (Method::POST, CUSTOMERS, "{\"full_name\": \"B\",}"),
        (Method::POST, CUSTOMERS, "not json"),
        (Method::PUT, instance.as_str(), "{\"full_name\": "),
        (Method::PATCH, instance.as_str(), "{'full_name': 'B'}"),
    ] {
        let resp = app
            .send(
                app.request(method.clone(), path)
                    .header("content-type", "application/json")
                    .body(body),
            )
            .await;
        assert_eq!(resp.status, 400, "{method} {body}: {}", resp.text);
        assert_eq!(keys(&resp.body), ["detail"], "{}", resp.text);
        let detail = resp.body["detail"].as_str().unwrap();
        assert!(
            detail.starts_with("JSON parse error - ") && detail.len() > "JSON parse error - ".len(),
            "{detail}"
        );
    }
    let list = app.get(CUSTOMERS).await.expect(200).body;
    assert_eq!(list["count"], 1);
    assert_eq!(list["results"][0]["full_name"], "A");
}

#[actix_web::test]
async fn a_body_over_the_configured_limit_is_413() {
    let app = spawn!(|s| s.max_body_bytes = 200);
    let small = json!({"full_name": "Small"});
    app.post(CUSTOMERS, &small).await.expect(201);
    let big = json!({"full_name": "Big", "note": "n".repeat(300)});
    let resp = app.post(CUSTOMERS, &big).await;
    assert_eq!(resp.status, 413, "{}", resp.text);
    assert_eq!(keys(&resp.body), ["detail"]);
    assert!(resp.body["detail"].is_string());
    let list = app.get(CUSTOMERS).await.expect(200).body;
    let id = list["results"][0]["id"].as_i64().unwrap();
    let resp = app.put(&format!("/api/crm/customer/{id}/"), &big).await;
    assert_eq!(resp.status, 413, "{}", resp.text);
    let resp = app.patch(&format!("/api/crm/customer/{id}/"), &big).await;
    assert_eq!(resp.status, 413, "{}", resp.text);
    let list = app.get(CUSTOMERS).await.expect(200).body;
    assert_eq!(list["count"], 1);
    assert_eq!(list["results"][0]["note"], "");
    // Exactly at the limit is fine.
    let mut at_limit = json!({"full_name": "Edge", "x": ""});
    let overhead = serde_json::to_vec(&at_limit).unwrap().len();
    at_limit["x"] = json!("x".repeat(200 - overhead));
    assert_eq!(serde_json::to_vec(&at_limit).unwrap().len(), 200);
    app.post(CUSTOMERS, &at_limit).await.expect(201);
}

/// Sends a POST with a chunked body (no Content-Length) over a plain socket;
/// returns the status and the raw response text.
fn post_chunked(app: &TestApp, path: &str, chunks: &[&str]) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(host(app)).expect("connect");
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        host(app),
        app.token
    );
    for chunk in chunks {
        request.push_str(&format!("{:x}\r\n{chunk}\r\n", chunk.len()));
    }
    request.push_str("0\r\n\r\n");
    // The server may answer and close before reading everything.
    let _ = stream.write_all(request.as_bytes());
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {text:?}"));
    (status, text)
}

#[actix_web::test]
async fn a_chunked_body_over_the_limit_is_413_too() {
    let app = spawn!(|s| s.max_body_bytes = 200);
    let (status, text) = post_chunked(&app, CUSTOMERS, &[r#"{"full_name": "#, r#""Chunked"}"#]);
    assert_eq!(status, 201, "{text}");
    let padding = "p".repeat(100);
    let big: [&str; 4] = [
        r#"{"full_name": "Big", "#,
        &format!(r#""a": "{padding}", "#),
        &format!(r#""b": "{padding}", "#),
        r#""c": 1}"#,
    ];
    let (status, text) = post_chunked(&app, CUSTOMERS, &big);
    assert_eq!(status, 413, "{text}");
    assert!(text.contains("\"detail\""), "{text}");
    let list = app.get(CUSTOMERS).await.expect(200).body;
    assert_eq!(list["count"], 1);
    assert_eq!(list["results"][0]["full_name"], "Chunked");
}

#[actix_web::test]
async fn the_default_body_limit_is_one_mebibyte() {
    let app = spawn!();
    // Unknown fields are ignored, so padding makes a valid body of any size.
    let under = json!({"full_name": "Under", "padding": "p".repeat(1024 * 1024 - 100)});
    app.post(CUSTOMERS, &under).await.expect(201);
    let over = json!({"full_name": "Over", "padding": "p".repeat(1024 * 1024)});
    let resp = app.post(CUSTOMERS, &over).await;
    assert_eq!(
        resp.status,
        413,
        "{}",
        &resp.text[..resp.text.len().min(200)]
    );
    assert!(resp.body["detail"].is_string());
    assert_eq!(app.get(CUSTOMERS).await.expect(200).body["count"], 1);
}

// --- pagination -----------------------------------------------------------------------

/// Section 1: a query parameter given twice (other than a list filter) is a
/// 400 on every resource and method, whether or not it reads that parameter,
/// and nothing runs. A path or method that is not served keeps its 404 or
/// 405; a request without a token its 401.
#[actix_web::test]
async fn a_repeated_query_parameter_is_400_on_every_resource() {
    let app = spawn!();
    let id = app.customer_id(json!({"full_name": "Kept"})).await;
    let address = app
        .post(
            &format!("/api/crm/customer/{id}/addresses/"),
            &json!({"full_name": "A", "mobile": "13800000000", "province": "P", "city": "C", "address1": "1"}),
        )
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    app.post(
        &format!("/api/crm/customer/{id}/coupons/"),
        &json!({"coupon_id": 7}),
    )
    .await
    .expect(201);
    let segment = app.segment_id("s").await;
    let twice = "x=1&x=2";
    let paths = [
        (Method::GET, format!("/api/crm/customer/{id}/")),
        (Method::HEAD, format!("/api/crm/customer/{id}/")),
        (Method::OPTIONS, format!("/api/crm/customer/{id}/")),
        (Method::DELETE, format!("/api/crm/customer/{id}/")),
        (Method::PATCH, format!("/api/crm/customer/{id}/")),
        (Method::POST, "/api/crm/customer/".to_owned()),
        (Method::GET, format!("/api/crm/customer/{id}/addresses/")),
        (Method::POST, format!("/api/crm/customer/{id}/addresses/")),
        (
            Method::GET,
            format!("/api/crm/customer/{id}/addresses/{address}/"),
        ),
        (
            Method::DELETE,
            format!("/api/crm/customer/{id}/addresses/{address}/"),
        ),
        (Method::GET, format!("/api/crm/customer/{id}/coupons/")),
        (Method::DELETE, format!("/api/crm/customer/{id}/coupons/7/")),
        (Method::GET, format!("/api/crm/segment/{segment}/")),
        (Method::DELETE, format!("/api/crm/segment/{segment}/")),
        (
            Method::POST,
            format!("/api/crm/segment/{segment}/segment_customer/"),
        ),
    ];
    for (method, path) in &paths {
        let r = app
            .send(
                app.request(method.clone(), &format!("{path}?{twice}"))
                    .json(&json!({"full_name": "Other", "note": "changed"})),
            )
            .await;
        assert_eq!(r.status, 400, "{method} {path}: {}", r.text);
        if *method != Method::HEAD {
            assert_eq!(
                r.body,
                json!({"x": ["This parameter may be given only once."]}),
                "{method} {path}"
            );
        }
    }
    // Nothing ran: the customer, its address and coupon, the segment stay,
    // and no customer was created.
    let customer = app
        .get(&format!("/api/crm/customer/{id}/"))
        .await
        .expect(200);
    assert_eq!(customer.body["note"], "");
    assert_eq!(customer.body["addresses"].as_array().unwrap().len(), 1);
    assert_eq!(app.customers_where("").await, [id]);
    app.get(&format!("/api/crm/customer/{id}/coupons/"))
        .await
        .expect(200);
    app.get(&format!("/api/crm/segment/{segment}/"))
        .await
        .expect(200);
    // Unserved paths and methods, and missing tokens, answer as before.
    app.get(&format!("/api/crm/nothing/?{twice}"))
        .await
        .expect(404);
    let r = app
        .send(app.request(Method::PATCH, &format!("{CUSTOMERS}?{twice}")))
        .await
        .expect(405);
    assert_eq!(r.header("allow"), Some(COLLECTION_ALLOW));
    app.send(app.anonymous(Method::GET, &format!("{CUSTOMERS}?{twice}")))
        .await
        .expect(401);
    // Given once each, the same parameters are ignored as unknown.
    app.get(&format!("/api/crm/customer/{id}/?x=1&y=1"))
        .await
        .expect(200);
}

#[actix_web::test]
async fn list_envelope_has_count_next_previous_results_in_order() {
    let app = spawn!();
    app.create_customer(json!({"full_name": "A"})).await;
    let body = app.get(CUSTOMERS).await.expect(200).body;
    assert_eq!(keys(&body), ["count", "next", "previous", "results"]);
    assert_eq!(body["count"], 1);
    assert_eq!(body["next"], Value::Null);
    assert_eq!(body["previous"], Value::Null);
    assert_eq!(body["results"].as_array().unwrap().len(), 1);
}

#[actix_web::test]
async fn first_page_of_an_empty_result_is_200_with_count_0() {
    let app = spawn!();
    let body = app.get(CUSTOMERS).await.expect(200).body;
    assert_eq!(
        body,
        json!({"count": 0, "next": null, "previous": null, "results": []})
    );
    let body = app.get("/api/crm/customer/?page=1").await.expect(200).body;
    assert_eq!(body["count"], 0);
    assert_invalid_page(&app.get("/api/crm/customer/?page=2").await);
    // Also when a filter matches nothing.
    app.create_customer(json!({"full_name": "A"})).await;
    let body = app
        .get("/api/crm/customer/?search=zzz")
        .await
        .expect(200)
        .body;
    assert_eq!(
        body,
        json!({"count": 0, "next": null, "previous": null, "results": []})
    );
}

#[actix_web::test]
async fn pages_of_ten_with_absolute_next_and_previous_links() {
    let app = spawn!();
    let all = create_many(&app, 25).await;
    let newest_first: Vec<i64> = all.iter().rev().copied().collect();
    let base = format!("http://{}/api/crm/customer/", host(&app));

    let page1 = app.get(CUSTOMERS).await.expect(200).body;
    assert_eq!(page1["count"], 25);
    assert_eq!(ids(&page1), newest_first[..10]);
    assert_eq!(page1["next"], format!("{base}?page=2"));
    assert_eq!(page1["previous"], Value::Null);

    let page2 = app.get("/api/crm/customer/?page=2").await.expect(200).body;
    assert_eq!(page2["count"], 25);
    assert_eq!(ids(&page2), newest_first[10..20]);
    assert_eq!(page2["next"], format!("{base}?page=3"));
    // DRF drops `page` for the link to page 1.
    assert_eq!(page2["previous"], base);

    let page3 = app.get("/api/crm/customer/?page=3").await.expect(200).body;
    assert_eq!(ids(&page3), newest_first[20..]);
    assert_eq!(page3["next"], Value::Null);
    assert_eq!(page3["previous"], format!("{base}?page=2"));

    // Following the links walks the same pages.
    let next = page1["next"]
        .as_str()
        .unwrap()
        .strip_prefix(&app.base)
        .unwrap()
        .to_owned();
    assert_eq!(app.get(&next).await.expect(200).body, page2);
    let previous = page3["previous"]
        .as_str()
        .unwrap()
        .strip_prefix(&app.base)
        .unwrap()
        .to_owned();
    assert_eq!(app.get(&previous).await.expect(200).body, page2);

    assert_invalid_page(&app.get("/api/crm/customer/?page=4").await);
}

#[actix_web::test]
async fn a_page_that_is_not_a_positive_integer_is_invalid() {
    let app = spawn!();
    create_many(&app, 3).await;
    for page in [
        "0",
        "-1",
        "abc",
        "1.5",
        "1.0",
        "2",
        "99999999999999999999999",
    ] {
        let resp = app.get(&format!("/api/crm/customer/?page={page}")).await;
        assert_eq!(resp.status, 404, "page={page}: {}", resp.text);
        assert_eq!(resp.body, json!({"detail": "Invalid page."}), "page={page}");
    }
}

#[actix_web::test]
async fn an_empty_page_parameter_means_page_one() {
    let app = spawn!();
    let all = create_many(&app, 11).await;
    let body = app.get("/api/crm/customer/?page=").await.expect(200).body;
    assert_eq!(body["count"], 11);
    assert_eq!(ids(&body).len(), 10);
    assert_eq!(ids(&body)[0], all[10]);
    assert_eq!(
        body["next"],
        format!("http://{}/api/crm/customer/?page=2", host(&app))
    );
}

#[actix_web::test]
async fn the_last_page_boundary_is_exact() {
    let app = spawn!();
    create_many(&app, 20).await;
    let page2 = app.get("/api/crm/customer/?page=2").await.expect(200).body;
    assert_eq!(ids(&page2).len(), 10);
    assert_eq!(page2["next"], Value::Null);
    assert_invalid_page(&app.get("/api/crm/customer/?page=3").await);
}

#[actix_web::test]
async fn page_size_chooses_the_page_length() {
    let app = spawn!();
    let all = create_many(&app, 12).await;
    let base = format!("http://{}/api/crm/customer/", host(&app));
    let body = app
        .get("/api/crm/customer/?page_size=5")
        .await
        .expect(200)
        .body;
    assert_eq!(body["count"], 12);
    assert_eq!(ids(&body), [all[11], all[10], all[9], all[8], all[7]]);
    assert_eq!(body["next"], format!("{base}?page=2&page_size=5"));
    let body = app
        .get("/api/crm/customer/?page_size=5&page=3")
        .await
        .expect(200)
        .body;
    assert_eq!(ids(&body), [all[1], all[0]]);
    assert_eq!(body["next"], Value::Null);
    assert_eq!(body["previous"], format!("{base}?page=2&page_size=5"));
    let body = app
        .get("/api/crm/customer/?page=2&page_size=5")
        .await
        .expect(200)
        .body;
    assert_eq!(body["previous"], format!("{base}?page_size=5"));
    let body = app
        .get("/api/crm/customer/?page_size=1000")
        .await
        .expect(200)
        .body;
    assert_eq!(ids(&body).len(), 12);
    assert_eq!(body["next"], Value::Null);
    let body = app
        .get("/api/crm/customer/?page_size=1")
        .await
        .expect(200)
        .body;
    assert_eq!(ids(&body), [all[11]]);
}

#[actix_web::test]
async fn a_page_size_that_is_not_a_positive_integer_falls_back_to_10() {
    let app = spawn!();
    create_many(&app, 12).await;
    for size in ["0", "-5", "abc", "2.5", ""] {
        let body = app
            .get(&format!("/api/crm/customer/?page_size={size}"))
            .await
            .expect(200)
            .body;
        assert_eq!(body["count"], 12, "page_size={size}");
        assert_eq!(ids(&body).len(), 10, "page_size={size}");
        assert!(
            body["next"].as_str().unwrap().contains("page=2"),
            "page_size={size}"
        );
    }
    let body = app
        .get("/api/crm/customer/?page_size=abc&page=2")
        .await
        .expect(200)
        .body;
    assert_eq!(ids(&body).len(), 2);
}

#[actix_web::test]
async fn a_page_size_over_1000_is_clamped_to_1000() {
    let app = spawn!();
    let all = create_many(&app, 1001).await;
    let base = format!("http://{}/api/crm/customer/", host(&app));
    let body = app
        .get("/api/crm/customer/?page_size=5000")
        .await
        .expect(200)
        .body;
    assert_eq!(body["count"], 1001);
    let page = ids(&body);
    assert_eq!(page.len(), 1000);
    assert_eq!(page[0], all[1000]);
    assert_eq!(body["next"], format!("{base}?page=2&page_size=5000"));
    let body = app
        .get("/api/crm/customer/?page_size=5000&page=2")
        .await
        .expect(200)
        .body;
    assert_eq!(ids(&body), [all[0]]);
    let body = app
        .get("/api/crm/customer/?page_size=1000")
        .await
        .expect(200)
        .body;
    assert_eq!(ids(&body).len(), 1000);
    let body = app
        .get("/api/crm/customer/?page_size=1001")
        .await
        .expect(200)
        .body;
    assert_eq!(ids(&body).len(), 1000);
}

#[actix_web::test]
async fn links_keep_every_other_parameter_sorted_by_name() {
    let app = spawn!();
    for i in 0..5 {
        app.create_customer(json!({"full_name": format!("Match {i}"), "tags": ["t"]}))
            .await;
    }
    app.create_customer(json!({"full_name": "Other"})).await;
    let base = format!("http://{}/api/crm/customer/", host(&app));
    let body = app
        .get("/api/crm/customer/?zeta=1&search=match&page_size=2&tag=t&alpha=x")
        .await
        .expect(200)
        .body;
    assert_eq!(body["count"], 5);
    assert_eq!(
        body["next"],
        format!("{base}?alpha=x&page=2&page_size=2&search=match&tag=t&zeta=1")
    );
    let body = app
        .get("/api/crm/customer/?zeta=1&search=match&page=2&page_size=2&tag=t&alpha=x")
        .await
        .expect(200)
        .body;
    assert_eq!(
        body["next"],
        format!("{base}?alpha=x&page=3&page_size=2&search=match&tag=t&zeta=1")
    );
    assert_eq!(
        body["previous"],
        format!("{base}?alpha=x&page_size=2&search=match&tag=t&zeta=1")
    );
    // Values are encoded as a form would encode them.
    let body = app
        .get("/api/crm/customer/?search=match%20&page_size=2")
        .await
        .expect(200)
        .body;
    assert_eq!(
        body["next"],
        format!("{base}?page=2&page_size=2&search=match+")
    );
}

#[actix_web::test]
async fn links_use_the_host_the_request_named() {
    let app = spawn!();
    create_many(&app, 11).await;
    let resp = app
        .send(
            app.request(Method::GET, "/api/crm/customer/?page=2")
                .header("host", "crm.example.test:8443"),
        )
        .await
        .expect(200);
    assert_eq!(
        resp.body["previous"],
        "http://crm.example.test:8443/api/crm/customer/"
    );
}

#[actix_web::test]
async fn forwarded_headers_are_ignored_unless_the_proxy_is_trusted() {
    let untrusted = spawn!();
    create_many(&untrusted, 11).await;
    let resp = untrusted
        .send(
            untrusted
                .request(Method::GET, CUSTOMERS)
                .header("x-forwarded-proto", "https")
                .header("x-forwarded-host", "shop.example.com"),
        )
        .await
        .expect(200);
    assert_eq!(
        resp.body["next"],
        format!("http://{}/api/crm/customer/?page=2", host(&untrusted))
    );

    let trusted = spawn!(|s| s.trust_proxy = true);
    create_many(&trusted, 11).await;
    let resp = trusted
        .send(
            trusted
                .request(Method::GET, "/api/crm/customer/?page=2")
                .header("x-forwarded-proto", "https")
                .header("x-forwarded-host", "shop.example.com"),
        )
        .await
        .expect(200);
    assert_eq!(
        resp.body["previous"],
        "https://shop.example.com/api/crm/customer/"
    );
    // Without the headers a trusting server still uses the request's own host.
    let resp = trusted.get(CUSTOMERS).await.expect(200);
    assert_eq!(
        resp.body["next"],
        format!("http://{}/api/crm/customer/?page=2", host(&trusted))
    );
}

// --- timestamps -----------------------------------------------------------------------

#[actix_web::test]
async fn timestamps_are_rfc3339_with_microseconds_in_utc_as_z() {
    let app = spawn!();
    let body = app.create_customer(json!({"full_name": "T"})).await;
    let id = body["id"].as_i64().unwrap();
    assert_timestamp(&body["created_at"], "Z");
    assert_timestamp(&body["updated_at"], "Z");
    let list = app.get(CUSTOMERS).await.expect(200).body;
    assert_timestamp(&list["results"][0]["created_at"], "Z");
    let address = app
        .post(
            &format!("/api/crm/customer/{id}/addresses/"),
            &json!({"full_name": "R", "mobile": "12345", "province": "P", "city": "C", "address1": "A"}),
        )
        .await
        .expect(201)
        .body;
    assert_timestamp(&address["created_at"], "Z");
    let coupon = app
        .post(
            &format!("/api/crm/customer/{id}/coupons/"),
            &json!({"coupon_id": 7}),
        )
        .await
        .expect(201)
        .body;
    assert_timestamp(&coupon["granted_at"], "Z");
}

#[actix_web::test]
async fn timestamps_use_the_configured_offset() {
    let app = spawn!(|s| s.utc_offset = "+08:00".into());
    let body = app
        .create_customer(json!({"full_name": "T", "birthday": "1990-01-01"}))
        .await;
    assert_timestamp(&body["created_at"], "+08:00");
    assert_timestamp(&body["updated_at"], "+08:00");
    assert_eq!(body["birthday"], "1990-01-01", "dates are not shifted");
    let list = app.get(CUSTOMERS).await.expect(200).body;
    assert_timestamp(&list["results"][0]["created_at"], "+08:00");
    // The rendering names the same instant as the one stored: used as both
    // bounds of a filter, it selects exactly this customer.
    let created = body["created_at"].as_str().unwrap().replace('+', "%2B");
    let found = app
        .get(&format!(
            "/api/crm/customer/?created_at__gte={created}&created_at__lte={created}"
        ))
        .await
        .expect(200)
        .body;
    assert_eq!(found["count"], 1);
}

#[actix_web::test]
async fn a_negative_offset_renders_with_a_minus_sign() {
    let app = spawn!(|s| s.utc_offset = "-05:30".into());
    let body = app.create_customer(json!({"full_name": "T"})).await;
    assert_timestamp(&body["created_at"], "-05:30");
    let created = body["created_at"].as_str().unwrap().to_owned();
    let found = app
        .get(&format!(
            "/api/crm/customer/?created_at__gte={created}&created_at__lte={created}"
        ))
        .await
        .expect(200)
        .body;
    assert_eq!(found["count"], 1);
}
