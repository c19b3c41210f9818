//! `CustomerRepository`: create, get, update and delete.

use std::sync::Arc;

use crm_domain::customer::model::NO_IDENTITY;
use crm_domain::customer::{
    Avatar, Birthday, CouponId, Customer, CustomerChanges, CustomerFilter, Gender,
    MultipassIdentifier, Note, Profile, ProfilePatch, ReferralCode, Statistics,
};
use crm_domain::segment::SegmentTitle;
use crm_domain::{FieldErrors, RepoError};
use time::macros::date;

use crate::support::{
    address, at, create, create_at, create_named, customer_count, email, expect_duplicate,
    expect_not_found, expect_rejected, full_name, get, id_set, metafield, metafields,
    missing_customer, mobile, named, now, tag_names, tags,
};
use crate::Ports;

fn referral_code(raw: &str) -> Option<Option<ReferralCode>> {
    Some(ReferralCode::parse(raw).expect("valid referral code"))
}

fn multipass(raw: &str) -> Option<Option<MultipassIdentifier>> {
    Some(Some(
        MultipassIdentifier::parse(raw).expect("valid multipass identifier"),
    ))
}

fn profile_patch(pairs: &[(&str, &str)]) -> ProfilePatch {
    let mut patch = ProfilePatch::default();
    for (key, value) in pairs {
        patch.set(key, value).expect("valid profile value");
    }
    patch
}

/// A customer with every writable value given (the referrer when `referrer`).
fn everything(referrer: Option<&Customer>) -> CustomerChanges {
    let today = now().date();
    CustomerChanges {
        mobile: mobile("+8613800000001"),
        full_name: full_name("李雷 Lei Li"),
        gender: Some(Gender::Female),
        email: email("Lei.Li@Example.COM"),
        birthday: Some(Some(
            Birthday::parse(date!(1990 - 02 - 28), today).expect("past date"),
        )),
        avatar: Some(Avatar::parse("https://cdn.example.com/avatars/lei.png").unwrap()),
        note: Some(Note::parse("first line\nsecond line ✓").unwrap()),
        accepts_marketing: Some(true),
        referral_code: referral_code("REF-LEI-01"),
        referrer: Some(referrer.map(|r| r.id)),
        multipass_identifier: multipass("mp-lei-01"),
        profile: profile_patch(&[
            ("source_name", "wechat"),
            ("campaign_name", "spring sale"),
            ("campaign_source", "newsletter"),
            ("campaign_medium", "email"),
            ("campaign_content", "banner-a"),
            ("campaign_term", "tea"),
        ]),
        tags: Some(tags(&["vip", "beta", "alpha"])),
        metafields: Some(metafields(vec![
            metafield("shop", "level", "gold"),
            metafield("erp", "id", "E-1"),
        ])),
    }
}

pub async fn create_assigns_defaults<S: Ports>(store: Arc<S>) {
    let t = now();
    let c = create_at(&*store, named("Ann"), t).await;
    assert_eq!(c.full_name, "Ann");
    assert_eq!(c.mobile, "");
    assert_eq!(c.email, "");
    assert_eq!(c.gender, Gender::Unknown);
    assert_eq!(c.birthday, None);
    assert_eq!(c.avatar, "");
    assert_eq!(c.note, "");
    assert!(!c.accepts_marketing);
    assert_eq!(c.referral_code, "");
    assert_eq!(c.referrer, None);
    assert_eq!(c.multipass_identifier, None);
    assert_eq!(c.wechat_nickname, None);
    assert_eq!(c.profile, Profile::default());
    assert_eq!(c.statistics, Statistics::default());
    assert!(c.tags.is_empty() && c.addresses.is_empty() && c.segments.is_empty());
    assert!(c.metafields.is_empty());
    assert_eq!((c.created_at, c.updated_at), (t, t));
    assert_eq!(
        get(&*store, c.id).await,
        c,
        "get returns what create returned"
    );
}

pub async fn create_round_trips_every_field<S: Ports>(store: Arc<S>) {
    let referrer = create_named(&*store, "Referrer").await;
    let changes = everything(Some(&referrer));
    let t = now();
    let c = create_at(&*store, changes.clone(), t).await;
    assert_eq!(c.mobile, "+8613800000001");
    assert_eq!(c.full_name, "李雷 Lei Li");
    assert_eq!(c.gender, Gender::Female);
    assert_eq!(c.email, "Lei.Li@Example.COM", "e-mail kept as written");
    assert_eq!(c.birthday, Some(date!(1990 - 02 - 28)));
    assert_eq!(c.avatar, "https://cdn.example.com/avatars/lei.png");
    assert_eq!(c.note, "first line\nsecond line ✓");
    assert!(c.accepts_marketing);
    assert_eq!(c.referral_code, "REF-LEI-01");
    assert_eq!(c.referrer, Some(referrer.id));
    assert_eq!(c.multipass_identifier.as_deref(), Some("mp-lei-01"));
    assert_eq!(
        c.profile,
        Profile {
            source_name: "wechat".into(),
            campaign_name: "spring sale".into(),
            campaign_source: "newsletter".into(),
            campaign_medium: "email".into(),
            campaign_content: "banner-a".into(),
            campaign_term: "tea".into(),
        }
    );
    assert_eq!(c.tags, ["alpha", "beta", "vip"]);
    assert_eq!(
        c.metafields,
        changes.metafields.as_ref().unwrap().as_slice().to_vec()
    );
    assert_eq!(c.statistics, Statistics::default());
    assert_eq!((c.created_at, c.updated_at), (t, t));
    assert_eq!(
        get(&*store, c.id).await,
        c,
        "get returns what create returned"
    );
}

pub async fn tags_come_back_sorted_and_deduplicated<S: Ports>(store: Arc<S>) {
    let set = tags(&[
        "vip", "Beta", "alpha", "vip", " alpha ", "Zed", "10", "9", "中文", "_x",
    ]);
    let expected = tag_names(&set);
    let c = create(
        &*store,
        CustomerChanges {
            tags: Some(set),
            ..named("Tagged")
        },
    )
    .await;
    assert_eq!(c.tags, expected, "tags in TagSet order");
    assert_eq!(get(&*store, c.id).await.tags, expected);
    let listed = store
        .list(&CustomerFilter::default(), Default::default())
        .await
        .unwrap();
    assert_eq!(listed.items[0].tags, expected, "list item tags");
}

pub async fn metafields_come_back_sorted_with_values_kept<S: Ports>(store: Arc<S>) {
    let given = metafields(vec![
        metafield("shop", "z-key", "  spaced value  "),
        metafield("shop", "a-key", ""),
        metafield("Erp", "id", "multi\nline"),
        metafield("erp", "id", "ünïcödé 值"),
        metafield("erp", "Code", "x"),
    ]);
    let expected = given.as_slice().to_vec();
    let c = create(
        &*store,
        CustomerChanges {
            metafields: Some(given),
            ..named("Meta")
        },
    )
    .await;
    assert_eq!(c.metafields, expected, "sorted by (namespace, key)");
    assert_eq!(get(&*store, c.id).await.metafields, expected);
}

pub async fn duplicate_mobile_is_refused<S: Ports>(store: Arc<S>) {
    create(
        &*store,
        CustomerChanges {
            mobile: mobile("13800000001"),
            ..Default::default()
        },
    )
    .await;
    let result = store
        .create(
            &CustomerChanges {
                mobile: mobile("13800000001"),
                ..named("Second")
            },
            now(),
        )
        .await;
    expect_duplicate(result, "mobile", "same mobile");
    assert_eq!(customer_count(&*store).await, 1);
}

pub async fn duplicate_email_is_refused_case_insensitively<S: Ports>(store: Arc<S>) {
    create(
        &*store,
        CustomerChanges {
            email: email("Ann.Lee@Example.com"),
            ..Default::default()
        },
    )
    .await;
    for other in [
        "Ann.Lee@Example.com",
        "ann.lee@example.com",
        "ANN.LEE@EXAMPLE.COM",
    ] {
        let result = store
            .create(
                &CustomerChanges {
                    email: email(other),
                    ..named("Second")
                },
                now(),
            )
            .await;
        expect_duplicate(result, "email", other);
    }
    assert_eq!(customer_count(&*store).await, 1);
}

pub async fn duplicate_email_is_refused_across_non_ascii_case<S: Ports>(store: Arc<S>) {
    create(
        &*store,
        CustomerChanges {
            email: email("Élodie@Example.com"),
            ..Default::default()
        },
    )
    .await;
    let result = store
        .create(
            &CustomerChanges {
                email: email("élodie@example.com"),
                ..named("Second")
            },
            now(),
        )
        .await;
    expect_duplicate(result, "email", "élodie@example.com");
    assert_eq!(customer_count(&*store).await, 1);
}

pub async fn duplicate_referral_code_is_refused<S: Ports>(store: Arc<S>) {
    create(
        &*store,
        CustomerChanges {
            referral_code: referral_code("CODE-1"),
            ..named("First")
        },
    )
    .await;
    let result = store
        .create(
            &CustomerChanges {
                referral_code: referral_code("CODE-1"),
                ..named("Second")
            },
            now(),
        )
        .await;
    expect_duplicate(result, "referral_code", "same referral code");
    assert_eq!(customer_count(&*store).await, 1);
}

pub async fn duplicate_multipass_identifier_is_refused<S: Ports>(store: Arc<S>) {
    create(
        &*store,
        CustomerChanges {
            multipass_identifier: multipass("mp-1"),
            ..named("First")
        },
    )
    .await;
    let result = store
        .create(
            &CustomerChanges {
                multipass_identifier: multipass("mp-1"),
                ..named("Second")
            },
            now(),
        )
        .await;
    expect_duplicate(result, "multipass_identifier", "same multipass identifier");
    assert_eq!(customer_count(&*store).await, 1);
}

pub async fn blank_and_null_values_are_exempt_from_uniqueness<S: Ports>(store: Arc<S>) {
    // Left out, given blank, and cleared by an update: none of them clash.
    let a = create_named(&*store, "A").await;
    let b = create(
        &*store,
        CustomerChanges {
            mobile: mobile(""),
            referral_code: referral_code(""),
            multipass_identifier: Some(None),
            ..named("B")
        },
    )
    .await;
    let c = create(
        &*store,
        CustomerChanges {
            email: email(""),
            ..named("C")
        },
    )
    .await;
    let d = create(
        &*store,
        CustomerChanges {
            mobile: mobile("13800000004"),
            email: email("d@example.com"),
            referral_code: referral_code("D"),
            multipass_identifier: multipass("mp-d"),
            ..named("D")
        },
    )
    .await;
    let cleared = store
        .update(
            d.id,
            &CustomerChanges {
                mobile: Some(None),
                email: Some(None),
                referral_code: Some(None),
                multipass_identifier: Some(None),
                ..Default::default()
            },
            now(),
        )
        .await
        .expect("clearing unique values leaves blanks, which never clash");
    for c in [&a, &b, &c, &cleared] {
        assert_eq!((c.mobile.as_str(), c.email.as_str()), ("", ""));
        assert_eq!(c.referral_code, "");
        assert_eq!(c.multipass_identifier, None);
    }
    assert_eq!(customer_count(&*store).await, 4);
}

pub async fn update_refuses_duplicates_and_changes_nothing<S: Ports>(store: Arc<S>) {
    create(
        &*store,
        CustomerChanges {
            mobile: mobile("13800000001"),
            email: email("taken@example.com"),
            referral_code: referral_code("TAKEN"),
            multipass_identifier: multipass("mp-taken"),
            ..named("Owner")
        },
    )
    .await;
    let other = create(&*store, everything(None)).await;
    let clashes: [(&str, CustomerChanges); 4] = [
        (
            "mobile",
            CustomerChanges {
                mobile: mobile("13800000001"),
                ..Default::default()
            },
        ),
        (
            "email",
            CustomerChanges {
                email: email("TAKEN@Example.com"),
                ..Default::default()
            },
        ),
        (
            "referral_code",
            CustomerChanges {
                referral_code: referral_code("TAKEN"),
                ..Default::default()
            },
        ),
        (
            "multipass_identifier",
            CustomerChanges {
                multipass_identifier: multipass("mp-taken"),
                ..Default::default()
            },
        ),
    ];
    for (field, clash) in clashes {
        // Other values in the same write must not land either.
        let changes = CustomerChanges {
            full_name: full_name("Changed"),
            note: Some(Note::parse("changed").unwrap()),
            tags: Some(tags(&["changed"])),
            metafields: Some(metafields(vec![metafield("x", "y", "z")])),
            profile: profile_patch(&[("campaign_name", "changed")]),
            ..clash
        };
        let result = store.update(other.id, &changes, at(now(), 60)).await;
        expect_duplicate(result, field, field);
        assert_eq!(
            get(&*store, other.id).await,
            other,
            "nothing changed after a refused update of {field}"
        );
    }
}

pub async fn update_to_own_unique_values_is_not_a_duplicate<S: Ports>(store: Arc<S>) {
    let c = create(&*store, everything(None)).await;
    let t = at(now(), 5);
    let same = CustomerChanges {
        mobile: mobile(&c.mobile),
        email: email(&c.email.to_uppercase()),
        referral_code: referral_code(&c.referral_code),
        multipass_identifier: multipass(c.multipass_identifier.as_deref().unwrap()),
        ..Default::default()
    };
    let updated = store
        .update(c.id, &same, t)
        .await
        .expect("a customer does not clash with itself");
    assert_eq!(updated.email, c.email.to_uppercase());
    assert_eq!(updated.updated_at, t);
}

pub async fn failed_create_stores_nothing<S: Ports>(store: Arc<S>) {
    let owner = create(
        &*store,
        CustomerChanges {
            mobile: mobile("13800000001"),
            ..named("Owner")
        },
    )
    .await;
    let attempt = |mobile_raw: &str, referrer| CustomerChanges {
        mobile: mobile(mobile_raw),
        email: email("fresh@example.com"),
        referral_code: referral_code("FRESH"),
        multipass_identifier: multipass("mp-fresh"),
        referrer: Some(referrer),
        tags: Some(tags(&["attempt"])),
        metafields: Some(metafields(vec![metafield("a", "b", "c")])),
        ..named("Attempt")
    };
    let duplicate = store.create(&attempt("13800000001", None), now()).await;
    expect_duplicate(duplicate, "mobile", "duplicate mobile");
    let rejected = store
        .create(&attempt("13800000002", Some(missing_customer())), now())
        .await;
    expect_rejected(rejected, "referrer", "missing referrer");
    assert_eq!(customer_count(&*store).await, 1, "only the owner is stored");
    let tagged = CustomerFilter {
        tag: Some("attempt".into()),
        ..Default::default()
    };
    assert!(id_set(&*store, &tagged).await.is_empty(), "no tags stored");
    // None of the attempt's unique values was kept.
    let later = create(&*store, attempt("13800000003", Some(owner.id))).await;
    assert_eq!(later.tags, ["attempt"]);
    assert_eq!(customer_count(&*store).await, 2);
}

pub async fn missing_referrer_is_rejected_on_create<S: Ports>(store: Arc<S>) {
    let result = store
        .create(
            &CustomerChanges {
                referrer: Some(Some(missing_customer())),
                ..named("Referred")
            },
            now(),
        )
        .await;
    let messages = expect_rejected(result, "referrer", "create with missing referrer");
    assert!(!messages.is_empty());
    assert_eq!(customer_count(&*store).await, 0);
}

pub async fn missing_referrer_is_rejected_on_update<S: Ports>(store: Arc<S>) {
    let c = create(&*store, everything(None)).await;
    let result = store
        .update(
            c.id,
            &CustomerChanges {
                referrer: Some(Some(missing_customer())),
                full_name: full_name("Changed"),
                tags: Some(tags(&["changed"])),
                ..Default::default()
            },
            at(now(), 60),
        )
        .await;
    expect_rejected(result, "referrer", "update with missing referrer");
    assert_eq!(get(&*store, c.id).await, c, "nothing changed");
}

pub async fn update_that_leaves_no_identity_is_rejected<S: Ports>(store: Arc<S>) {
    let c = create(
        &*store,
        CustomerChanges {
            mobile: mobile("13800000001"),
            tags: Some(tags(&["kept"])),
            ..Default::default()
        },
    )
    .await;
    let result = store
        .update(
            c.id,
            &CustomerChanges {
                mobile: Some(None),
                tags: Some(tags(&["changed"])),
                ..Default::default()
            },
            at(now(), 60),
        )
        .await;
    let messages = expect_rejected(result, FieldErrors::NON_FIELD, "update to no identity");
    assert_eq!(messages, vec![NO_IDENTITY.to_owned()]);
    assert_eq!(get(&*store, c.id).await, c, "nothing changed");
    // Blanking one identity value while another remains is allowed.
    let kept = store
        .update(
            c.id,
            &CustomerChanges {
                mobile: Some(None),
                full_name: full_name("Named"),
                ..Default::default()
            },
            at(now(), 120),
        )
        .await
        .expect("identity moved to the name");
    assert_eq!(
        (kept.mobile.as_str(), kept.full_name.as_str()),
        ("", "Named")
    );
}

pub async fn get_missing_is_not_found<S: Ports>(store: Arc<S>) {
    expect_not_found(store.get(missing_customer()).await, "get missing");
    let c = create_named(&*store, "Gone").await;
    store.delete(c.id, now()).await.unwrap();
    expect_not_found(store.get(c.id).await, "get deleted");
}

pub async fn update_missing_is_not_found<S: Ports>(store: Arc<S>) {
    let changes = CustomerChanges {
        full_name: full_name("Nobody"),
        tags: Some(tags(&["ghost"])),
        metafields: Some(metafields(vec![metafield("a", "b", "c")])),
        ..Default::default()
    };
    expect_not_found(
        store.update(missing_customer(), &changes, now()).await,
        "update missing",
    );
    let c = create_named(&*store, "Gone").await;
    store.delete(c.id, now()).await.unwrap();
    expect_not_found(store.update(c.id, &changes, now()).await, "update deleted");
    assert_eq!(customer_count(&*store).await, 0, "update created nothing");
}

pub async fn delete_missing_is_not_found<S: Ports>(store: Arc<S>) {
    expect_not_found(
        store.delete(missing_customer(), now()).await,
        "delete missing",
    );
    let c = create_named(&*store, "Once").await;
    store.delete(c.id, now()).await.expect("first delete");
    expect_not_found(store.delete(c.id, now()).await, "second delete");
}

pub async fn update_writes_only_given_values<S: Ports>(store: Arc<S>) {
    let referrer = create_named(&*store, "Referrer").await;
    let c = create(&*store, everything(Some(&referrer))).await;
    let t = at(c.created_at, 30);
    let updated = store
        .update(
            c.id,
            &CustomerChanges {
                note: Some(Note::parse("only the note").unwrap()),
                profile: profile_patch(&[("campaign_term", "coffee")]),
                ..Default::default()
            },
            t,
        )
        .await
        .expect("update");
    let mut expected = c.clone();
    expected.note = "only the note".into();
    expected.profile.campaign_term = "coffee".into();
    expected.updated_at = t;
    assert_eq!(updated, expected, "only the given values changed");
    assert_eq!(get(&*store, c.id).await, expected);
}

pub async fn update_sets_updated_at_and_keeps_created_at<S: Ports>(store: Arc<S>) {
    let t0 = now();
    let c = create_at(&*store, named("Ann"), t0).await;
    let t1 = at(t0, 90);
    let updated = store
        .update(c.id, &CustomerChanges::default(), t1)
        .await
        .expect("an empty update still touches updated_at");
    assert_eq!((updated.created_at, updated.updated_at), (t0, t1));
    let t2 = at(t0, 180);
    let updated = store
        .update(
            c.id,
            &CustomerChanges {
                gender: Some(Gender::Male),
                ..Default::default()
            },
            t2,
        )
        .await
        .unwrap();
    assert_eq!((updated.created_at, updated.updated_at), (t0, t2));
    assert_eq!(updated.gender, Gender::Male);
    let fetched = get(&*store, c.id).await;
    assert_eq!((fetched.created_at, fetched.updated_at), (t0, t2));
}

pub async fn update_replaces_tags_only_when_given<S: Ports>(store: Arc<S>) {
    let c = create(
        &*store,
        CustomerChanges {
            tags: Some(tags(&["a", "b"])),
            ..named("Ann")
        },
    )
    .await;
    let kept = store.update(c.id, &named("Ann Two"), now()).await.unwrap();
    assert_eq!(kept.tags, ["a", "b"], "no tag set given: tags kept");
    let replaced = store
        .update(
            c.id,
            &CustomerChanges {
                tags: Some(tags(&["c", "b"])),
                ..Default::default()
            },
            now(),
        )
        .await
        .unwrap();
    assert_eq!(replaced.tags, ["b", "c"], "a given set replaces");
    assert_eq!(get(&*store, c.id).await.tags, ["b", "c"]);
    let cleared = store
        .update(
            c.id,
            &CustomerChanges {
                tags: Some(tags(&[])),
                ..Default::default()
            },
            now(),
        )
        .await
        .unwrap();
    assert!(cleared.tags.is_empty(), "an empty set clears");
    assert!(get(&*store, c.id).await.tags.is_empty());
}

pub async fn update_replaces_metafields_only_when_given<S: Ports>(store: Arc<S>) {
    let c = create(
        &*store,
        CustomerChanges {
            metafields: Some(metafields(vec![
                metafield("ns", "a", "1"),
                metafield("ns", "b", "2"),
            ])),
            ..named("Ann")
        },
    )
    .await;
    let original = c.metafields.clone();
    let kept = store.update(c.id, &named("Ann Two"), now()).await.unwrap();
    assert_eq!(kept.metafields, original, "no list given: metafields kept");
    let new = metafields(vec![
        metafield("ns", "b", "changed"),
        metafield("other", "c", "3"),
    ]);
    let replaced = store
        .update(
            c.id,
            &CustomerChanges {
                metafields: Some(new.clone()),
                ..Default::default()
            },
            now(),
        )
        .await
        .unwrap();
    assert_eq!(
        replaced.metafields,
        new.as_slice().to_vec(),
        "a given list replaces"
    );
    assert_eq!(get(&*store, c.id).await.metafields, new.as_slice().to_vec());
    let cleared = store
        .update(
            c.id,
            &CustomerChanges {
                metafields: Some(metafields(vec![])),
                ..Default::default()
            },
            now(),
        )
        .await
        .unwrap();
    assert!(cleared.metafields.is_empty(), "an empty list clears");
    assert!(get(&*store, c.id).await.metafields.is_empty());
}

pub async fn update_clears_clearable_values<S: Ports>(store: Arc<S>) {
    let referrer = create_named(&*store, "Referrer").await;
    let c = create(&*store, everything(Some(&referrer))).await;
    let updated = store
        .update(
            c.id,
            &CustomerChanges {
                mobile: Some(None),
                email: Some(None),
                birthday: Some(None),
                referral_code: Some(None),
                referrer: Some(None),
                multipass_identifier: Some(None),
                ..Default::default()
            },
            now(),
        )
        .await
        .expect("clear");
    assert_eq!(updated.mobile, "");
    assert_eq!(updated.email, "");
    assert_eq!(updated.birthday, None);
    assert_eq!(updated.referral_code, "");
    assert_eq!(updated.referrer, None);
    assert_eq!(updated.multipass_identifier, None);
    assert_eq!(updated.full_name, c.full_name, "the rest is kept");
    assert_eq!(get(&*store, c.id).await, updated);
}

pub async fn delete_removes_customer_and_everything_it_owns<S: Ports>(store: Arc<S>) {
    let segment = store
        .create_segment(&SegmentTitle::parse("Members").unwrap(), now())
        .await
        .unwrap();
    let coupon = CouponId::new(77).unwrap();
    let make = |name: &str| CustomerChanges {
        tags: Some(tags(&["shared"])),
        metafields: Some(metafields(vec![metafield("ns", "k", "v")])),
        ..named(name)
    };
    let doomed = create(&*store, make("Doomed")).await;
    let kept = create(&*store, make("Kept")).await;
    for c in [&doomed, &kept] {
        store
            .create_address(c.id, &address("Home"), now())
            .await
            .unwrap();
        store
            .create_address(c.id, &address("Work"), now())
            .await
            .unwrap();
        store.grant_coupon(c.id, coupon, now()).await.unwrap();
    }
    store
        .add_members(segment.id, &[doomed.id, kept.id], now())
        .await
        .unwrap();
    let doomed_address = get(&*store, doomed.id).await.addresses[0].id;

    store
        .delete(doomed.id, now())
        .await
        .expect("delete with dependents");

    expect_not_found(store.get(doomed.id).await, "get");
    expect_not_found(store.list_addresses(doomed.id).await, "addresses");
    expect_not_found(
        store.get_address(doomed.id, doomed_address).await,
        "address",
    );
    expect_not_found(store.list_coupons(doomed.id).await, "coupons");
    let members = store
        .segment_members(&[segment.id], None, 10)
        .await
        .unwrap();
    assert_eq!(
        members.iter().map(|m| m.customer.id).collect::<Vec<_>>(),
        [kept.id],
        "membership gone"
    );
    for filter in [
        CustomerFilter {
            tag: Some("shared".into()),
            ..Default::default()
        },
        CustomerFilter {
            coupon: Some(77),
            ..Default::default()
        },
        CustomerFilter {
            segment: Some(segment.id.get()),
            ..Default::default()
        },
        CustomerFilter::default(),
    ] {
        assert_eq!(id_set(&*store, &filter).await, [kept.id], "{filter:?}");
    }
    // The other customer keeps everything.
    let other = get(&*store, kept.id).await;
    assert_eq!(other.addresses.len(), 2);
    assert_eq!(other.tags, ["shared"]);
    assert_eq!(other.metafields.len(), 1);
    assert_eq!(other.segments.len(), 1);
    assert_eq!(store.list_coupons(kept.id).await.unwrap().len(), 1);
}

pub async fn delete_clears_referrer_on_referred_customers<S: Ports>(store: Arc<S>) {
    let referrer = create_named(&*store, "Referrer").await;
    let other_referrer = create_named(&*store, "Other referrer").await;
    let referred = |name: &str, by: &Customer| CustomerChanges {
        referrer: Some(Some(by.id)),
        ..named(name)
    };
    let a = create(&*store, referred("A", &referrer)).await;
    let b = create(&*store, referred("B", &referrer)).await;
    let c = create(&*store, referred("C", &other_referrer)).await;
    let t = at(now(), 60);
    store
        .delete(referrer.id, t)
        .await
        .expect("delete a referrer");
    for id in [a.id, b.id] {
        let released = get(&*store, id).await;
        assert_eq!(released.referrer, None, "referrer cleared");
        assert_eq!(released.updated_at, t, "a released referral is a write");
    }
    assert_eq!(get(&*store, c.id).await.updated_at, c.updated_at);
    assert_eq!(get(&*store, c.id).await.referrer, Some(other_referrer.id));
    assert_eq!(customer_count(&*store).await, 4);
}

pub async fn referral_figures_are_live<S: Ports>(store: Arc<S>) {
    let referrer = create_named(&*store, "Referrer").await;
    let referred = |name: &str| CustomerChanges {
        referrer: Some(Some(referrer.id)),
        ..named(name)
    };
    let a = create(&*store, referred("A")).await;
    let b = create(&*store, referred("B")).await;
    let c = create_named(&*store, "C").await;
    let figures = |c: &Customer| {
        (
            c.statistics.customers_referred,
            c.statistics.total_spent_of_referred.0,
        )
    };
    assert_eq!(figures(&get(&*store, referrer.id).await), (2, 0));
    assert_eq!(figures(&a), (0, 0));
    store
        .update(
            c.id,
            &CustomerChanges {
                referrer: Some(Some(referrer.id)),
                ..Default::default()
            },
            now(),
        )
        .await
        .unwrap();
    assert_eq!(figures(&get(&*store, referrer.id).await), (3, 0));
    store.delete(a.id, now()).await.unwrap();
    assert_eq!(figures(&get(&*store, referrer.id).await), (2, 0));
    store
        .update(
            b.id,
            &CustomerChanges {
                referrer: Some(None),
                ..Default::default()
            },
            now(),
        )
        .await
        .unwrap();
    assert_eq!(figures(&get(&*store, referrer.id).await), (1, 0));
    let back = store
        .update(referrer.id, &named("Renamed"), now())
        .await
        .unwrap();
    assert_eq!(figures(&back), (1, 0), "update returns live figures");
}

/// Runs two creates of `changes` at once; exactly one must succeed and the
/// other must be refused as a duplicate of `field`.
async fn race_two_creates<S: Ports>(
    store: &Arc<S>,
    first: CustomerChanges,
    second: CustomerChanges,
    field: &'static str,
) -> Customer {
    let spawn = |changes: CustomerChanges| {
        let store = Arc::clone(store);
        tokio::spawn(async move { store.create(&changes, now()).await })
    };
    let (a, b) = (spawn(first), spawn(second));
    let results = [a.await.expect("task"), b.await.expect("task")];
    let mut winners = Vec::new();
    for result in results {
        match result {
            Ok(c) => winners.push(c),
            Err(RepoError::Duplicate { field: got }) if got == field => {}
            Err(other) => panic!("expected Ok or Duplicate {{ {field} }}, got {other:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one of two racing creates wins");
    winners.remove(0)
}

pub async fn concurrent_creates_with_same_mobile_one_wins<S: Ports>(store: Arc<S>) {
    for round in 0..8 {
        let m = format!("1390000{round:04}");
        let make = |name: &str| CustomerChanges {
            mobile: mobile(&m),
            ..named(name)
        };
        let winner = race_two_creates(&store, make("A"), make("B"), "mobile").await;
        let holders = CustomerFilter {
            mobile: Some(m.clone()),
            ..Default::default()
        };
        assert_eq!(id_set(&*store, &holders).await, [winner.id]);
    }
    assert_eq!(customer_count(&*store).await, 8);
}

pub async fn concurrent_creates_with_same_email_one_wins<S: Ports>(store: Arc<S>) {
    for round in 0..8 {
        let lower = format!("racer{round}@example.com");
        let upper = lower.to_uppercase();
        let make = |raw: &str| CustomerChanges {
            email: email(raw),
            ..Default::default()
        };
        let winner = race_two_creates(&store, make(&lower), make(&upper), "email").await;
        let holders = CustomerFilter {
            email: Some(lower.clone()),
            ..Default::default()
        };
        assert_eq!(id_set(&*store, &holders).await, [winner.id]);
    }
    assert_eq!(customer_count(&*store).await, 8);
}

pub async fn concurrent_updates_of_different_fields_both_land<S: Ports>(store: Arc<S>) {
    for round in 0..5 {
        let c = create_named(&*store, &format!("Customer {round}")).await;
        let note = {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let changes = CustomerChanges {
                    note: Some(Note::parse("note").unwrap()),
                    ..Default::default()
                };
                store.update(c.id, &changes, now()).await
            })
        };
        let tagged = {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let changes = CustomerChanges {
                    accepts_marketing: Some(true),
                    tags: Some(tags(&["t"])),
                    ..Default::default()
                };
                store.update(c.id, &changes, now()).await
            })
        };
        note.await.unwrap().expect("note update");
        tagged.await.unwrap().expect("tag update");
        let after = get(&*store, c.id).await;
        assert_eq!(after.note, "note");
        assert!(after.accepts_marketing);
        assert_eq!(after.tags, ["t"]);
        assert_eq!(after.full_name, format!("Customer {round}"));
    }
}
