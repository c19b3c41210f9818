//! Customers: tags, metafields and the profile object.

use super::*;

// --- tags ---------------------------------------------------------------------------

#[actix_web::test]
async fn tags_are_trimmed_deduplicated_and_sorted() {
    let app = spawn!();
    let body = app
        .create_customer(json!({"full_name": "T", "tags": [" vip ", "b", "a", "vip", "b"]}))
        .await;
    assert_eq!(body["tags"], json!(["a", "b", "vip"]));
    let read = app.get(&customer_path(id_of(&body))).await.expect(200).body;
    assert_eq!(read["tags"], json!(["a", "b", "vip"]));
}

#[actix_web::test]
async fn a_tag_must_have_1_to_64_characters() {
    let app = spawn!();
    let ok = app
        .create_customer(json!({"full_name": "T", "tags": ["t".repeat(64)]}))
        .await;
    assert_eq!(ok["tags"], json!(["t".repeat(64)]));
    for bad in [json!(["ok", ""]), json!(["   "]), json!(["t".repeat(65)])] {
        create_fails(&app, json!({"full_name": "T", "tags": bad}), "tags").await;
    }
}

#[actix_web::test]
async fn tags_must_be_a_list_of_strings() {
    let app = spawn!();
    for bad in [
        json!("vip"),
        json!({"a": 1}),
        json!([["nested"]]),
        json!([null]),
        json!(null),
    ] {
        create_fails(&app, json!({"full_name": "T", "tags": bad}), "tags").await;
    }
    assert_eq!(count(&app).await, 0);
}

#[actix_web::test]
async fn a_given_tag_list_replaces_the_tags_and_a_missing_one_keeps_them() {
    let app = spawn!();
    let id = app
        .customer_id(json!({"full_name": "T", "tags": ["old1", "old2"]}))
        .await;
    let kept = app
        .patch(&customer_path(id), &json!({"note": "no tags given"}))
        .await
        .expect(200)
        .body;
    assert_eq!(kept["tags"], json!(["old1", "old2"]));
    let replaced = app
        .put(&customer_path(id), &json!({"tags": ["new", "old2"]}))
        .await
        .expect(200)
        .body;
    assert_eq!(replaced["tags"], json!(["new", "old2"]));
    let cleared = app
        .patch(&customer_path(id), &json!({"tags": []}))
        .await
        .expect(200)
        .body;
    assert_eq!(cleared["tags"], json!([]));
    assert_eq!(app.get(&customer_path(id)).await.body["tags"], json!([]));
}

// --- metafields ---------------------------------------------------------------------

#[actix_web::test]
async fn metafields_are_replaced_wholesale() {
    let app = spawn!();
    let id = app
        .customer_id(json!({
            "full_name": "M",
            "metafields": [
                {"namespace": "erp", "key": "no", "value": "1"},
                {"namespace": "erp", "key": "level", "value": "gold"}
            ]
        }))
        .await;
    let body = app.get(&customer_path(id)).await.body;
    assert_eq!(body["metafields"].as_array().unwrap().len(), 2);
    let kept = app
        .patch(&customer_path(id), &json!({"note": "x"}))
        .await
        .expect(200)
        .body;
    assert_eq!(kept["metafields"], body["metafields"]);
    let replaced = app
        .put(
            &customer_path(id),
            &json!({"metafields": [{"namespace": "crm", "key": "k", "value": "v"}]}),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(
        replaced["metafields"],
        json!([{"namespace": "crm", "key": "k", "value": "v"}])
    );
    let cleared = app
        .patch(&customer_path(id), &json!({"metafields": []}))
        .await
        .expect(200)
        .body;
    assert_eq!(cleared["metafields"], json!([]));
}

#[actix_web::test]
async fn duplicate_metafield_namespace_and_key_is_refused() {
    let app = spawn!();
    create_fails(
        &app,
        json!({
            "full_name": "M",
            "metafields": [
                {"namespace": "erp", "key": "no", "value": "1"},
                {"namespace": "erp", "key": "no", "value": "2"}
            ]
        }),
        "metafields",
    )
    .await;
    // The same key in another namespace is fine.
    let body = app
        .create_customer(json!({
            "full_name": "M",
            "metafields": [
                {"namespace": "erp", "key": "no", "value": "1"},
                {"namespace": "crm", "key": "no", "value": "2"}
            ]
        }))
        .await;
    assert_eq!(body["metafields"].as_array().unwrap().len(), 2);
}

#[actix_web::test]
async fn metafield_parts_are_bounded() {
    let app = spawn!();
    for bad in [
        json!([{"namespace": "", "key": "k", "value": "v"}]),
        json!([{"namespace": "n".repeat(65), "key": "k", "value": "v"}]),
        json!([{"namespace": "n", "key": "", "value": "v"}]),
        json!([{"namespace": "n", "key": "k".repeat(65), "value": "v"}]),
        json!([{"namespace": "n", "key": "k", "value": "v".repeat(4097)}]),
        json!([{"namespace": "n", "key": "k"}]),
        json!(["not an object"]),
        json!({"namespace": "n", "key": "k", "value": "v"}),
    ] {
        create_fails(
            &app,
            json!({"full_name": "M", "metafields": bad}),
            "metafields",
        )
        .await;
    }
    let ok = app
        .create_customer(json!({
            "full_name": "M",
            "metafields": [{"namespace": "n".repeat(64), "key": "k".repeat(64), "value": "v".repeat(4096)}]
        }))
        .await;
    assert_eq!(ok["metafields"][0]["value"], "v".repeat(4096));
}

// --- profile ------------------------------------------------------------------------

#[actix_web::test]
async fn profile_keys_merge_on_update() {
    let app = spawn!();
    let id = app
        .customer_id(json!({
            "full_name": "P",
            "profile": {"source_name": "wechat", "campaign_name": "spring", "campaign_term": "t"}
        }))
        .await;
    let body = app
        .patch(
            &customer_path(id),
            &json!({"profile": {"campaign_name": "summer", "campaign_medium": "sms"}}),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(
        body["profile"],
        json!({
            "source_name": "wechat", "campaign_name": "summer", "campaign_source": "",
            "campaign_medium": "sms", "campaign_content": "", "campaign_term": "t"
        })
    );
    let put = app
        .put(
            &customer_path(id),
            &json!({"profile": {"campaign_source": "ad"}}),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(put["profile"]["source_name"], "wechat");
    assert_eq!(put["profile"]["campaign_name"], "summer");
    assert_eq!(put["profile"]["campaign_source"], "ad");
    assert_eq!(
        app.get(&customer_path(id)).await.body["profile"],
        put["profile"]
    );
}

#[actix_web::test]
async fn profile_must_be_an_object_of_short_strings() {
    let app = spawn!();
    for bad in [
        json!("wechat"),
        json!(["wechat"]),
        json!({"source_name": "s".repeat(256)}),
        json!({"campaign_name": null}),
    ] {
        create_fails(&app, json!({"full_name": "P", "profile": bad}), "profile").await;
    }
    let ok = app
        .create_customer(json!({"full_name": "P", "profile": {"source_name": "s".repeat(255)}}))
        .await;
    assert_eq!(ok["profile"]["source_name"], "s".repeat(255));
}
