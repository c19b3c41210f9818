//! The customer list filters and ordering (section 3): each one alone, in
//! combination, and the 400 for every malformed value.

use crm_tests::{json, keys, TestApp, Value};

/// The ids a list query returns (one page of up to 1000), asserting 200 and
/// that `count` agrees.
async fn ids(app: &TestApp, query: &str) -> Vec<i64> {
    let resp = app
        .get(&format!("/api/crm/customer/?page_size=1000&{query}"))
        .await;
    assert_eq!(resp.status, 200, "?{query}: {}", resp.text);
    let ids: Vec<i64> = resp.body["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|c| c["id"].as_i64().expect("id"))
        .collect();
    assert_eq!(resp.body["count"], ids.len(), "?{query}: count");
    ids
}

/// Sorted, for comparing sets.
fn sorted(mut v: Vec<i64>) -> Vec<i64> {
    v.sort_unstable();
    v
}

/// Asserts `?query` is a 400 naming exactly `params`, each with messages.
async fn bad_query(app: &TestApp, query: &str, params: &[&str]) {
    let resp = app.get(&format!("/api/crm/customer/?{query}")).await;
    assert_eq!(resp.status, 400, "?{query}: {}", resp.text);
    let mut names: Vec<&str> = resp
        .body
        .as_object()
        .unwrap_or_else(|| panic!("?{query}: an object: {}", resp.text))
        .keys()
        .map(String::as_str)
        .collect();
    names.sort_unstable();
    let mut expected = params.to_vec();
    expected.sort_unstable();
    assert_eq!(names, expected, "?{query}: {}", resp.text);
    for name in params {
        let messages = resp.body[*name].as_array().expect("a list of messages");
        assert!(!messages.is_empty() && messages.iter().all(Value::is_string));
    }
}

async fn grant(app: &TestApp, customer: i64, coupon: i64) {
    let resp = app
        .post(
            &format!("/api/crm/customer/{customer}/coupons/"),
            &json!({ "coupon_id": coupon }),
        )
        .await;
    assert!(resp.status == 201 || resp.status == 200, "{}", resp.text);
}

async fn add_to_segment(app: &TestApp, segment: i64, customers: &[i64]) {
    let body: Vec<Value> = customers
        .iter()
        .map(|id| json!({ "customer_id": id }))
        .collect();
    app.post(
        &format!("/api/crm/segment/{segment}/segment_customer/"),
        &Value::Array(body),
    )
    .await
    .expect(200);
}

async fn created_at(app: &TestApp, id: i64) -> String {
    app.get(&format!("/api/crm/customer/{id}/"))
        .await
        .expect(200)
        .body["created_at"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn updated_at(app: &TestApp, id: i64) -> String {
    app.get(&format!("/api/crm/customer/{id}/"))
        .await
        .expect(200)
        .body["updated_at"]
        .as_str()
        .unwrap()
        .to_owned()
}

// --- id, id__in ---------------------------------------------------------------------

#[actix_web::test]
async fn id_selects_one_customer() {
    let app = spawn!();
    let a = app.customer_id(json!({"full_name": "A"})).await;
    let b = app.customer_id(json!({"full_name": "B"})).await;
    assert_eq!(ids(&app, &format!("id={a}")).await, [a]);
    assert_eq!(ids(&app, &format!("id={b}")).await, [b]);
    assert_eq!(ids(&app, "id=987654").await, Vec::<i64>::new());
}

#[actix_web::test]
async fn id_in_selects_the_listed_customers() {
    let app = spawn!();
    let a = app.customer_id(json!({"full_name": "A"})).await;
    let b = app.customer_id(json!({"full_name": "B"})).await;
    let c = app.customer_id(json!({"full_name": "C"})).await;
    assert_eq!(ids(&app, &format!("id__in={a},{c}")).await, [c, a]);
    assert_eq!(ids(&app, &format!("id__in={b}")).await, [b]);
    assert_eq!(ids(&app, &format!("id__in={a},987654")).await, [a]);
    // Commas may be encoded.
    assert_eq!(ids(&app, &format!("id__in={a}%2C{b}")).await, [b, a]);
}

#[actix_web::test]
async fn malformed_id_and_id_in_are_400() {
    let app = spawn!();
    app.customer_id(json!({"full_name": "A"})).await;
    bad_query(&app, "id=abc", &["id"]).await;
    bad_query(&app, "id=1.5", &["id"]).await;
    bad_query(&app, "id__in=1,x", &["id__in"]).await;
    bad_query(&app, "id__in=abc", &["id__in"]).await;
    bad_query(&app, "id__in=1;2", &["id__in"]).await;
}

/// Generated clients send arrays as repeated keys (`?id__in=1&id__in=2`):
/// the values are combined, as if joined by commas (section 1).
#[actix_web::test]
async fn repeated_id_in_values_are_combined() {
    let app = spawn!();
    let a = app.customer_id(json!({"full_name": "A"})).await;
    let b = app.customer_id(json!({"full_name": "B"})).await;
    let c = app.customer_id(json!({"full_name": "C"})).await;
    app.customer_id(json!({"full_name": "D"})).await;
    assert_eq!(ids(&app, &format!("id__in={a}&id__in={b}")).await, [b, a]);
    assert_eq!(
        ids(&app, &format!("id__in={a}&id__in={b},{c}")).await,
        ids(&app, &format!("id__in={a},{b},{c}")).await
    );
    assert_eq!(
        ids(&app, &format!("id__in={a}&id__in={b}&id__in={c}")).await,
        [c, b, a]
    );
    // An empty value among them adds nothing; all empty is no filter.
    assert_eq!(ids(&app, &format!("id__in=&id__in={c}")).await, [c]);
    assert_eq!(ids(&app, "id__in=&id__in=").await.len(), 4);
    // A malformed value in any of them is the usual 400.
    bad_query(&app, &format!("id__in={a}&id__in=x"), &["id__in"]).await;
    // The page links keep the parameters as given.
    let r = app
        .get(&format!(
            "/api/crm/customer/?id__in={a}&id__in={b}&id__in={c}&page_size=1"
        ))
        .await
        .expect(200);
    assert_eq!(r.body["count"], 3);
    let next = r.body["next"].as_str().expect("a next link");
    assert!(
        next.contains(&format!("id__in={a}&id__in={b}&id__in={c}")),
        "{next}"
    );
}

/// Any other parameter given twice is refused: nothing is silently dropped
/// (before, the last value won: `?id=abc&id=3` was a 200).
#[actix_web::test]
async fn any_other_parameter_given_twice_is_400() {
    let app = spawn!();
    let a = app
        .customer_id(json!({"full_name": "A", "mobile": "13000000001", "tags": ["t"]}))
        .await;
    for (name, first, second) in [
        ("id", "abc".to_owned(), a.to_string()),
        ("id", a.to_string(), a.to_string()),
        ("coupon", "1".into(), "2".into()),
        ("coupon__exclude", "1".into(), "2".into()),
        ("segment", "1".into(), "2".into()),
        ("segment__exclude", "1".into(), "2".into()),
        ("mobile", "13000000001".into(), "13000000002".into()),
        ("email", "a@example.com".into(), "".into()),
        ("tag", "t".into(), "u".into()),
        ("search", "A".into(), "B".into()),
        (
            "created_at__gte",
            "2024-01-01T00:00:00Z".into(),
            "2024-01-02T00:00:00Z".into(),
        ),
        (
            "updated_at__lte",
            "2999-01-01T00:00:00Z".into(),
            "2999-01-01T00:00:00Z".into(),
        ),
        ("ordering", "id".into(), "-id".into()),
        ("page", "1".into(), "1".into()),
        ("page_size", "10".into(), "20".into()),
        ("unknown", "1".into(), "2".into()),
    ] {
        let query = format!("{name}={first}&{name}={second}");
        let r = app
            .get(&format!("/api/crm/customer/?{query}"))
            .await
            .expect(400);
        assert_eq!(
            r.body,
            json!({ name: ["This parameter may be given only once."] }),
            "?{query}"
        );
    }
    // Every repeated parameter is named, list filters never.
    let r = app
        .get(&format!(
            "/api/crm/customer/?search=A&page=1&id__in={a}&search=B&id__in={a}&page=2"
        ))
        .await
        .expect(400);
    assert_eq!(keys(&r.body), ["page", "search"], "{}", r.text);
}

// --- coupon, coupon__exclude --------------------------------------------------------

#[actix_web::test]
async fn coupon_selects_holders_and_coupon_exclude_the_others() {
    let app = spawn!();
    let a = app.customer_id(json!({"full_name": "A"})).await;
    let b = app.customer_id(json!({"full_name": "B"})).await;
    let c = app.customer_id(json!({"full_name": "C"})).await;
    grant(&app, a, 222).await;
    grant(&app, b, 222).await;
    grant(&app, b, 333).await;
    grant(&app, c, 333).await;
    assert_eq!(ids(&app, "coupon=222").await, [b, a]);
    assert_eq!(ids(&app, "coupon=333").await, [c, b]);
    assert_eq!(ids(&app, "coupon=444").await, Vec::<i64>::new());
    assert_eq!(ids(&app, "coupon__exclude=222").await, [c]);
    assert_eq!(ids(&app, "coupon__exclude=333").await, [a]);
    assert_eq!(ids(&app, "coupon__exclude=444").await, [c, b, a]);
    assert_eq!(ids(&app, "coupon=222&coupon__exclude=333").await, [a]);
    // Revoking a coupon takes the customer out of the filter.
    app.delete(&format!("/api/crm/customer/{a}/coupons/222/"))
        .await
        .expect(204);
    assert_eq!(ids(&app, "coupon=222").await, [b]);
    assert_eq!(ids(&app, "coupon__exclude=222").await, [c, a]);
}

#[actix_web::test]
async fn malformed_coupon_values_are_400() {
    let app = spawn!();
    bad_query(&app, "coupon=abc", &["coupon"]).await;
    bad_query(&app, "coupon__exclude=x1", &["coupon__exclude"]).await;
}

// --- segment, segment__exclude ------------------------------------------------------

#[actix_web::test]
async fn segment_selects_members_and_segment_exclude_the_others() {
    let app = spawn!();
    let a = app.customer_id(json!({"full_name": "A"})).await;
    let b = app.customer_id(json!({"full_name": "B"})).await;
    let c = app.customer_id(json!({"full_name": "C"})).await;
    let s1 = app.segment_id("one").await;
    let s2 = app.segment_id("two").await;
    let empty = app.segment_id("empty").await;
    add_to_segment(&app, s1, &[a, b]).await;
    add_to_segment(&app, s2, &[b, c]).await;
    assert_eq!(ids(&app, &format!("segment={s1}")).await, [b, a]);
    assert_eq!(ids(&app, &format!("segment={s2}")).await, [c, b]);
    assert_eq!(
        ids(&app, &format!("segment={empty}")).await,
        Vec::<i64>::new()
    );
    assert_eq!(ids(&app, &format!("segment__exclude={s1}")).await, [c]);
    assert_eq!(
        ids(&app, &format!("segment__exclude={empty}")).await,
        [c, b, a]
    );
    assert_eq!(
        ids(&app, &format!("segment={s1}&segment__exclude={s2}")).await,
        [a]
    );
    assert_eq!(ids(&app, "segment=987654").await, Vec::<i64>::new());
    // Removing a member takes it out of the filter.
    app.delete(&format!(
        "/api/crm/segment/{s1}/segment_customer/?customer__in={a}"
    ))
    .await
    .expect(200);
    assert_eq!(ids(&app, &format!("segment={s1}")).await, [b]);
}

#[actix_web::test]
async fn malformed_segment_values_are_400() {
    let app = spawn!();
    bad_query(&app, "segment=abc", &["segment"]).await;
    bad_query(&app, "segment__exclude=1x", &["segment__exclude"]).await;
}

// --- mobile, email, tag ---------------------------------------------------------------

#[actix_web::test]
async fn mobile_matches_exactly() {
    let app = spawn!();
    let a = app.customer_id(json!({"mobile": "12345"})).await;
    let b = app.customer_id(json!({"mobile": "123456"})).await;
    let c = app.customer_id(json!({"mobile": "+8613000000000"})).await;
    assert_eq!(ids(&app, "mobile=12345").await, [a]);
    assert_eq!(ids(&app, "mobile=123456").await, [b]);
    assert_eq!(ids(&app, "mobile=1234").await, Vec::<i64>::new());
    assert_eq!(ids(&app, "mobile=%2B8613000000000").await, [c]);
}

#[actix_web::test]
async fn email_matches_exactly_ignoring_case() {
    let app = spawn!();
    let a = app.customer_id(json!({"email": "Ann@Example.com"})).await;
    let b = app
        .customer_id(json!({"email": "ann@example.com.cn"}))
        .await;
    assert_eq!(ids(&app, "email=ann@example.com").await, [a]);
    assert_eq!(ids(&app, "email=ANN%40EXAMPLE.COM").await, [a]);
    assert_eq!(ids(&app, "email=Ann@Example.com.CN").await, [b]);
    assert_eq!(ids(&app, "email=ann@example").await, Vec::<i64>::new());
}

#[actix_web::test]
async fn tag_selects_customers_carrying_it() {
    let app = spawn!();
    let a = app
        .customer_id(json!({"full_name": "A", "tags": ["vip", "new"]}))
        .await;
    let b = app
        .customer_id(json!({"full_name": "B", "tags": ["vip"]}))
        .await;
    let c = app
        .customer_id(json!({"full_name": "C", "tags": ["vipx"]}))
        .await;
    app.customer_id(json!({"full_name": "D"})).await;
    assert_eq!(ids(&app, "tag=vip").await, [b, a]);
    assert_eq!(ids(&app, "tag=new").await, [a]);
    assert_eq!(ids(&app, "tag=vipx").await, [c]);
    assert_eq!(ids(&app, "tag=vi").await, Vec::<i64>::new());
    // Replacing the tags changes what the filter finds.
    app.patch(
        &format!("/api/crm/customer/{a}/"),
        &json!({"tags": ["new"]}),
    )
    .await
    .expect(200);
    assert_eq!(ids(&app, "tag=vip").await, [b]);
}

#[actix_web::test]
async fn tag_with_spaces_and_unicode_matches() {
    let app = spawn!();
    let a = app
        .customer_id(json!({"full_name": "A", "tags": ["big spender", "标签1"]}))
        .await;
    assert_eq!(ids(&app, "tag=big%20spender").await, [a]);
    assert_eq!(ids(&app, "tag=big+spender").await, [a]);
    assert_eq!(ids(&app, "tag=%E6%A0%87%E7%AD%BE1").await, [a]);
}

// --- search ---------------------------------------------------------------------------

#[actix_web::test]
async fn search_is_a_case_insensitive_substring_of_name_mobile_or_email() {
    let app = spawn!();
    let by_name = app.customer_id(json!({"full_name": "Xindong Ding"})).await;
    let by_mobile = app.customer_id(json!({"mobile": "13821761807"})).await;
    let by_email = app
        .customer_id(json!({"email": "DXD.spirits@gmail.com"}))
        .await;
    let none = app
        .customer_id(json!({"full_name": "Other", "note": "ding in the note", "tags": ["ding"]}))
        .await;
    assert_eq!(ids(&app, "search=dong%20d").await, [by_name]);
    assert_eq!(ids(&app, "search=XINDONG").await, [by_name]);
    assert_eq!(ids(&app, "search=2176").await, [by_mobile]);
    assert_eq!(ids(&app, "search=spirits@GMAIL").await, [by_email]);
    assert_eq!(ids(&app, "search=ding").await, [by_name]);
    assert_eq!(ids(&app, "search=d").await, [by_email, by_name]);
    assert_eq!(ids(&app, "search=o").await, [none, by_email, by_name]);
    assert_eq!(ids(&app, "search=nothing").await, Vec::<i64>::new());
}

#[actix_web::test]
async fn search_matches_percent_and_underscore_literally() {
    let app = spawn!();
    let percent = app.customer_id(json!({"full_name": "100% real"})).await;
    app.customer_id(json!({"full_name": "1000 real"})).await;
    let underscore = app.customer_id(json!({"full_name": "a_b"})).await;
    app.customer_id(json!({"full_name": "axb"})).await;
    let backslash = app.customer_id(json!({"full_name": "back\\slash"})).await;
    assert_eq!(ids(&app, "search=0%25").await, [percent]);
    assert_eq!(ids(&app, "search=%25").await, [percent]);
    assert_eq!(ids(&app, "search=a_b").await, [underscore]);
    assert_eq!(ids(&app, "search=_").await, [underscore]);
    assert_eq!(ids(&app, "search=k%5Cs").await, [backslash]);
}

// --- timestamps ---------------------------------------------------------------------

#[actix_web::test]
async fn created_at_bounds_are_inclusive() {
    let app = spawn!();
    let a = app.customer_id(json!({"full_name": "A"})).await;
    let b = app.customer_id(json!({"full_name": "B"})).await;
    let c = app.customer_id(json!({"full_name": "C"})).await;
    let tb = created_at(&app, b).await;
    assert_eq!(ids(&app, &format!("created_at__gte={tb}")).await, [c, b]);
    assert_eq!(ids(&app, &format!("created_at__lte={tb}")).await, [b, a]);
    assert_eq!(
        ids(&app, &format!("created_at__gte={tb}&created_at__lte={tb}")).await,
        [b]
    );
    assert_eq!(
        ids(&app, "created_at__gte=2000-01-01T00:00:00Z").await,
        [c, b, a]
    );
    assert_eq!(
        ids(&app, "created_at__lte=2000-01-01T00:00:00Z").await,
        Vec::<i64>::new()
    );
    assert_eq!(
        ids(&app, "created_at__gte=2999-01-01T00:00:00Z").await,
        Vec::<i64>::new()
    );
}

#[actix_web::test]
async fn timestamp_bounds_honour_their_offset() {
    let app = spawn!();
    let a = app.customer_id(json!({"full_name": "A"})).await;
    let t = created_at(&app, a).await;
    let wall = t.strip_suffix('Z').expect("UTC renders as Z");
    // The same wall-clock time one hour east is an hour earlier: included by
    // gte, excluded by lte; one hour west is an hour later: the reverse.
    let east = format!("{wall}%2B01:00");
    let west = format!("{wall}-01:00");
    assert_eq!(ids(&app, &format!("created_at__gte={east}")).await, [a]);
    assert_eq!(
        ids(&app, &format!("created_at__lte={east}")).await,
        Vec::<i64>::new()
    );
    assert_eq!(
        ids(&app, &format!("created_at__gte={west}")).await,
        Vec::<i64>::new()
    );
    assert_eq!(ids(&app, &format!("created_at__lte={west}")).await, [a]);
    // A +00:00 offset names the same instant as Z.
    let plus_zero = format!("{wall}%2B00:00");
    assert_eq!(
        ids(
            &app,
            &format!("created_at__gte={plus_zero}&created_at__lte={plus_zero}")
        )
        .await,
        [a]
    );
}

#[actix_web::test]
async fn timestamp_bounds_work_with_a_configured_offset() {
    let app = spawn!(|s| s.utc_offset = "+08:00".into());
    let a = app.customer_id(json!({"full_name": "A"})).await;
    let b = app.customer_id(json!({"full_name": "B"})).await;
    let tb = created_at(&app, b).await;
    assert!(tb.ends_with("+08:00"), "{tb}");
    let encoded = tb.replace('+', "%2B");
    assert_eq!(ids(&app, &format!("created_at__gte={encoded}")).await, [b]);
    assert_eq!(
        ids(&app, &format!("created_at__lte={encoded}")).await,
        [b, a]
    );
}

#[actix_web::test]
async fn updated_at_bounds_select_customers_changed_since() {
    let app = spawn!();
    let a = app.customer_id(json!({"full_name": "A"})).await;
    let b = app.customer_id(json!({"full_name": "B"})).await;
    let c = app.customer_id(json!({"full_name": "C"})).await;
    let since = updated_at(&app, c).await;
    app.patch(
        &format!("/api/crm/customer/{a}/"),
        &json!({"note": "changed"}),
    )
    .await
    .expect(200);
    let ta = updated_at(&app, a).await;
    assert!(ta > since);
    assert_eq!(ids(&app, &format!("updated_at__gte={ta}")).await, [a]);
    assert_eq!(ids(&app, &format!("updated_at__gte={since}")).await, [c, a]);
    assert_eq!(ids(&app, &format!("updated_at__lte={since}")).await, [c, b]);
    // created_at did not move with the update.
    let ca = created_at(&app, a).await;
    assert_eq!(ids(&app, &format!("created_at__lte={ca}")).await, [a]);
    assert_eq!(
        ids(
            &app,
            &format!("updated_at__gte={since}&updated_at__lte={since}")
        )
        .await,
        [c]
    );
}

#[actix_web::test]
async fn malformed_timestamps_are_400_under_their_parameter() {
    let app = spawn!();
    app.customer_id(json!({"full_name": "A"})).await;
    for param in [
        "created_at__gte",
        "created_at__lte",
        "updated_at__gte",
        "updated_at__lte",
    ] {
        for bad in [
            "yesterday",
            "2024-01-01",
            "2024-13-01T00:00:00Z",
            "2024-01-01T00:00:00",
            "1700000000",
            // Valid RFC 3339, but with no UTC equivalent the store can hold.
            "9999-12-31T23:59:59-23:59",
        ] {
            bad_query(&app, &format!("{param}={bad}"), &[param]).await;
        }
    }
}

#[actix_web::test]
async fn null_characters_in_text_filters_are_400_never_a_500() {
    let app = spawn!();
    app.customer_id(json!({"full_name": "A", "mobile": "12345", "email": "a@example.com"}))
        .await;
    for param in ["search", "mobile", "email", "tag"] {
        bad_query(&app, &format!("{param}=a%00b"), &[param]).await;
    }
}

// --- ordering -------------------------------------------------------------------------

#[actix_web::test]
async fn ordering_by_id_and_created_at() {
    let app = spawn!();
    let a = app.customer_id(json!({"full_name": "A"})).await;
    let b = app.customer_id(json!({"full_name": "B"})).await;
    let c = app.customer_id(json!({"full_name": "C"})).await;
    assert_eq!(ids(&app, "").await, [c, b, a], "default is -id");
    assert_eq!(ids(&app, "ordering=id").await, [a, b, c]);
    assert_eq!(ids(&app, "ordering=-id").await, [c, b, a]);
    assert_eq!(ids(&app, "ordering=created_at").await, [a, b, c]);
    assert_eq!(ids(&app, "ordering=-created_at").await, [c, b, a]);
}

#[actix_web::test]
async fn ordering_by_updated_at_follows_the_latest_write() {
    let app = spawn!();
    let a = app.customer_id(json!({"full_name": "A"})).await;
    let b = app.customer_id(json!({"full_name": "B"})).await;
    let c = app.customer_id(json!({"full_name": "C"})).await;
    app.patch(&format!("/api/crm/customer/{a}/"), &json!({"note": "1"}))
        .await
        .expect(200);
    app.put(&format!("/api/crm/customer/{b}/"), &json!({"note": "2"}))
        .await
        .expect(200);
    assert_eq!(ids(&app, "ordering=updated_at").await, [c, a, b]);
    assert_eq!(ids(&app, "ordering=-updated_at").await, [b, a, c]);
    // created_at order is unaffected by the writes.
    assert_eq!(ids(&app, "ordering=created_at").await, [a, b, c]);
}

#[actix_web::test]
async fn ordering_applies_across_pages() {
    let app = spawn!();
    let mut all = Vec::new();
    for i in 0..5 {
        all.push(app.customer_id(json!({"full_name": format!("C{i}")})).await);
    }
    let page = |n: u32| {
        let app = &app;
        async move {
            let body = app
                .get(&format!(
                    "/api/crm/customer/?ordering=id&page_size=2&page={n}"
                ))
                .await
                .expect(200)
                .body;
            body["results"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["id"].as_i64().unwrap())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(page(1).await, all[0..2]);
    assert_eq!(page(2).await, all[2..4]);
    assert_eq!(page(3).await, all[4..]);
    let body = app
        .get("/api/crm/customer/?ordering=id&page_size=2")
        .await
        .expect(200)
        .body;
    assert_eq!(
        body["next"],
        format!(
            "{}/api/crm/customer/?ordering=id&page=2&page_size=2",
            app.base
        )
    );
}

#[actix_web::test]
async fn unknown_ordering_is_400() {
    let app = spawn!();
    for bad in [
        "full_name",
        "name",
        "-mobile",
        "ID",
        "id,created_at",
        "%2Bid",
        "--id",
    ] {
        bad_query(&app, &format!("ordering={bad}"), &["ordering"]).await;
    }
}

// --- combinations, unknown and empty parameters -----------------------------------------

#[actix_web::test]
async fn filters_combine_with_and() {
    let app = spawn!();
    let sid = app.segment_id("s").await;
    let a = app
        .customer_id(
            json!({"full_name": "Alice Match", "tags": ["vip"], "email": "alice@example.com"}),
        )
        .await;
    let b = app
        .customer_id(json!({"full_name": "Bob Match", "tags": ["vip"]}))
        .await;
    let c = app
        .customer_id(json!({"full_name": "Carol Match", "tags": ["regular"]}))
        .await;
    let d = app
        .customer_id(json!({"full_name": "Dave", "tags": ["vip"]}))
        .await;
    add_to_segment(&app, sid, &[a, b, c, d]).await;
    grant(&app, a, 222).await;
    assert_eq!(ids(&app, "search=match&tag=vip").await, [b, a]);
    assert_eq!(
        ids(
            &app,
            &format!("search=match&tag=vip&segment={sid}&coupon__exclude=222")
        )
        .await,
        [b]
    );
    assert_eq!(
        ids(&app, &format!("tag=vip&segment={sid}&coupon=222")).await,
        [a]
    );
    assert_eq!(
        ids(&app, &format!("id__in={a},{c},{d}&tag=vip")).await,
        [d, a]
    );
    assert_eq!(
        ids(&app, &format!("id={c}&tag=vip")).await,
        Vec::<i64>::new()
    );
    assert_eq!(
        ids(&app, "email=ALICE@example.com&search=alice&tag=vip").await,
        [a]
    );
    assert_eq!(
        ids(&app, &format!("segment={sid}&ordering=id&tag=vip")).await,
        [a, b, d]
    );
    let t = created_at(&app, b).await;
    assert_eq!(
        ids(
            &app,
            &format!("tag=vip&created_at__gte={t}&ordering=created_at")
        )
        .await,
        [b, d]
    );
}

#[actix_web::test]
async fn unknown_parameters_are_ignored() {
    let app = spawn!();
    let a = app.customer_id(json!({"full_name": "A"})).await;
    let b = app.customer_id(json!({"full_name": "B"})).await;
    assert_eq!(
        ids(
            &app,
            "full_name=A&foo=bar&id__gt=abc&limit=1&offset=5&format=xml"
        )
        .await,
        [b, a]
    );
}

#[actix_web::test]
async fn empty_values_are_ignored() {
    let app = spawn!();
    let a = app
        .customer_id(json!({"full_name": "A", "tags": ["t"]}))
        .await;
    let b = app.customer_id(json!({"full_name": "B"})).await;
    let all = [b, a];
    for param in [
        "id",
        "id__in",
        "coupon",
        "coupon__exclude",
        "segment",
        "segment__exclude",
        "mobile",
        "email",
        "tag",
        "search",
        "created_at__gte",
        "created_at__lte",
        "updated_at__gte",
        "updated_at__lte",
        "ordering",
    ] {
        assert_eq!(ids(&app, &format!("{param}=")).await, all, "{param}=");
    }
    assert_eq!(ids(&app, "id=&tag=t&search=").await, [a]);
}

#[actix_web::test]
async fn every_malformed_parameter_is_reported_at_once() {
    let app = spawn!();
    bad_query(
        &app,
        "id=abc&id__in=1,x&coupon=c&segment=s&created_at__gte=bad&updated_at__lte=bad&ordering=nope&tag=fine",
        &["id", "id__in", "coupon", "segment", "created_at__gte", "updated_at__lte", "ordering"],
    )
    .await;
}

#[actix_web::test]
async fn a_malformed_filter_is_400_even_with_a_bad_page() {
    let app = spawn!();
    // The filter error is reported, not swallowed by pagination.
    let resp = app.get("/api/crm/customer/?id=abc&page=2").await;
    assert_eq!(resp.status, 400, "{}", resp.text);
    assert!(resp.body.get("id").is_some(), "{}", resp.text);
}

#[actix_web::test]
async fn filtered_count_and_links_cover_the_whole_filtered_result() {
    let app = spawn!();
    let mut tagged = Vec::new();
    for i in 0..12 {
        let tags = if i % 2 == 0 {
            json!(["even"])
        } else {
            json!([])
        };
        let id = app
            .customer_id(json!({"full_name": format!("C{i}"), "tags": tags}))
            .await;
        if i % 2 == 0 {
            tagged.push(id);
        }
    }
    let body = app
        .get("/api/crm/customer/?tag=even&page_size=4")
        .await
        .expect(200)
        .body;
    assert_eq!(body["count"], 6);
    assert_eq!(
        body["next"],
        format!("{}/api/crm/customer/?page=2&page_size=4&tag=even", app.base)
    );
    let page2 = app
        .get("/api/crm/customer/?tag=even&page_size=4&page=2")
        .await
        .expect(200)
        .body;
    assert_eq!(page2["next"], Value::Null);
    let mut seen: Vec<i64> = [&body, &page2]
        .iter()
        .flat_map(|b| {
            b["results"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["id"].as_i64().unwrap())
        })
        .collect();
    seen = sorted(seen);
    assert_eq!(seen, sorted(tagged));
    let resp = app
        .get("/api/crm/customer/?tag=even&page_size=4&page=3")
        .await;
    assert_eq!(resp.status, 404);
    assert_eq!(resp.body, json!({"detail": "Invalid page."}));
}
