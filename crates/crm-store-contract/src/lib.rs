//! The storage contract suite: every documented rule (the MUST wording) of the
//! `crm-domain` storage ports, written once and run against every adapter.
//!
//! Each check is a `pub async fn rule<S: Ports>(store: Arc<S>)` that panics
//! when the store breaks the rule. A check gets a store over an empty, migrated
//! database of its own, so it may count everything the store holds.
//!
//! An adapter runs the whole suite with one line; the expression gives a fresh
//! store and a guard that keeps its database alive until the test ends:
//!
//! ```ignore
//! crm_store_contract::contract_tests!({
//!     let db = crm_sqlite::testing::TestDatabase::create();
//!     let store = crm_sqlite::SqliteStore::new(&crm_sqlite::SqliteConfig::new(db.url())).unwrap();
//!     (std::sync::Arc::new(store), db)
//! });
//! ```
//!
//! The calling crate needs `tokio` with the `macros` and `rt-multi-thread`
//! features.

pub mod addresses;
pub mod coupons;
pub mod cursor;
pub mod customers;
pub mod events;
pub mod health;
pub mod idempotency;
pub mod listing;
pub mod oauth;
pub mod segments;
mod support;
pub mod webhooks;

/// Everything a complete storage adapter implements (the domain's
/// [`Storage`](crm_domain::Storage)).
pub use crm_domain::Storage as Ports;

/// Generates one `#[tokio::test]` per check of the suite, in one module per
/// port group. `$make` is evaluated once per test and must give
/// `(Arc<Store>, Guard)`; the guard is dropped when the test ends.
#[macro_export]
macro_rules! contract_tests {
    ($make:expr) => {
        $crate::__with_checks!(__contract_tests { $make });
    };
}

/// Calls `$crate::$callback!` with `$args`, a `;`, then every check as
/// `module { check, ... }`. The one list of checks the suite has.
#[doc(hidden)]
#[macro_export]
macro_rules! __with_checks {
    ($callback:ident { $($args:tt)* }) => {
        $crate::$callback! { $($args)* ;
            customers {
                create_assigns_defaults,
                create_round_trips_every_field,
                tags_come_back_sorted_and_deduplicated,
                metafields_come_back_sorted_with_values_kept,
                duplicate_mobile_is_refused,
                duplicate_email_is_refused_across_non_ascii_case,
                duplicate_email_is_refused_case_insensitively,
                duplicate_referral_code_is_refused,
                duplicate_multipass_identifier_is_refused,
                blank_and_null_values_are_exempt_from_uniqueness,
                update_refuses_duplicates_and_changes_nothing,
                update_to_own_unique_values_is_not_a_duplicate,
                failed_create_stores_nothing,
                missing_referrer_is_rejected_on_create,
                missing_referrer_is_rejected_on_update,
                update_that_leaves_no_identity_is_rejected,
                get_missing_is_not_found,
                update_missing_is_not_found,
                delete_missing_is_not_found,
                update_writes_only_given_values,
                update_sets_updated_at_and_keeps_created_at,
                update_replaces_tags_only_when_given,
                update_replaces_metafields_only_when_given,
                update_clears_clearable_values,
                delete_removes_customer_and_everything_it_owns,
                delete_clears_referrer_on_referred_customers,
                referral_figures_are_live,
                concurrent_creates_with_same_mobile_one_wins,
                concurrent_creates_with_same_email_one_wins,
                concurrent_updates_of_different_fields_both_land,
            }
            listing {
                list_of_empty_store_is_empty,
                list_counts_exactly_and_pages_without_overlap,
                page_past_the_end_has_count_and_no_items,
                default_ordering_is_newest_id_first,
                ordering_by_id,
                ordering_by_created_at_breaks_ties_by_id,
                ordering_by_updated_at_breaks_ties_by_id,
                filter_by_id,
                filter_by_id_in,
                filter_by_coupon_and_coupon_exclude,
                filter_by_segment_and_segment_exclude,
                filter_by_mobile_is_exact,
                filter_by_email_is_case_insensitive,
                filter_by_tag_is_exact,
                search_folds_non_ascii_case,
                search_is_case_insensitive_substring_of_name_mobile_email,
                search_matches_percent_underscore_and_backslash_literally,
                filter_by_created_at_range_is_inclusive,
                filter_by_updated_at_range_is_inclusive,
                filters_combine_with_and,
                list_items_match_the_customer_summary,
            }
            cursor {
                pages_walk_every_ordering_once_in_order,
                positions_page_back_and_outlive_their_customers,
                filters_apply_to_cursor_pages,
                settled_before_holds_back_recent_updates,
                a_walk_by_update_time_sees_updated_customers_again_and_skips_none,
            }
            addresses {
                first_address_becomes_default,
                later_address_is_not_default_unless_asked,
                create_with_is_default_moves_the_default,
                update_with_is_default_true_moves_the_default,
                update_with_is_default_false_keeps_the_default,
                deleting_the_default_promotes_the_oldest_remaining,
                deleting_another_address_keeps_the_default,
                address_round_trips_every_field,
                update_address_writes_only_given_values,
                addresses_listed_default_first_then_by_id,
                address_of_another_customer_is_not_found,
                missing_address_is_not_found,
                missing_customer_is_not_found,
                address_writes_touch_customer_updated_at,
                concurrent_address_writes_leave_one_default,
            }
            coupons {
                grant_is_idempotent,
                coupons_listed_by_coupon_id,
                revoke_removes_the_holding,
                revoke_of_unheld_coupon_is_not_found,
                missing_customer_is_not_found,
                concurrent_grants_store_one,
                coupon_changes_touch_customer_updated_at,
            }
            segments {
                create_segment_is_empty_and_readable,
                get_missing_segment_is_not_found,
                rename_segment_keeps_members,
                rename_missing_segment_is_not_found,
                delete_segment_keeps_customers,
                delete_missing_segment_is_not_found,
                segment_heads_page_by_id_with_count,
                segment_members_page_by_keyset_without_skips_or_repeats,
                segment_members_continue_past_changes_between_pages,
                segment_members_of_an_unknown_segment_are_none,
                add_members_is_idempotent,
                add_members_rejects_missing_customers_all_or_nothing,
                add_members_to_missing_segment_is_not_found,
                remove_members_ignores_non_members,
                remove_members_from_missing_segment_is_not_found,
                members_ordered_by_id_with_empty_segments,
                customer_segments_field_lists_memberships,
                concurrent_overlapping_adds_leave_each_member_once,
                add_more_than_ten_thousand_members_at_once,
                membership_changes_leave_customer_updated_at,
            }
            events {
                every_write_records_its_event,
                customer_events_carry_the_customer_as_written,
                deleting_a_referrer_records_its_released_referrals,
                membership_events_name_only_the_changed_customers,
                writes_that_change_nothing_record_nothing,
                refused_writes_record_nothing,
                feed_pages_after_an_id,
                feed_filters_by_kind_and_customer,
                purge_deletes_the_oldest_and_expires_older_positions,
                concurrent_writers_never_make_a_follower_skip,
            }
            idempotency {
                a_key_is_acquired_then_in_flight_then_replayed,
                another_request_with_the_key_is_a_mismatch,
                keys_belong_to_their_client,
                a_unit_without_an_answer_writes_nothing_and_frees_the_key,
                a_refused_write_inside_a_unit_leaves_the_others,
                a_stale_claim_is_taken_over_and_its_unit_cannot_commit,
                an_expired_key_starts_over,
                racing_claims_of_a_new_key_acquire_it_once,
                an_abandoned_unit_commits_nothing,
            }
            webhooks {
                endpoints_round_trip_and_page_by_id,
                events_fan_out_to_active_subscribed_endpoints,
                deliveries_page_newest_first_with_exact_count,
                refused_writes_record_no_delivery,
                an_undone_unit_of_work_records_no_delivery,
                delivery_of_another_endpoint_is_not_found,
                claims_take_due_deliveries_earliest_first_within_limits,
                a_paused_endpoint_keeps_its_deliveries_waiting,
                concurrent_claims_never_hand_out_a_delivery_twice,
                a_lapsed_claim_is_claimed_again_and_cannot_record,
                record_attempt_writes_the_outcome_and_releases_the_claim,
                retry_makes_a_delivery_pending_and_due_now,
                deleting_an_endpoint_deletes_its_deliveries,
                purge_keeps_events_with_pending_deliveries,
                delivery_stats_count_pending_and_failed,
            }
            oauth {
                client_round_trips,
                find_missing_client_is_none,
                clients_listed_oldest_first,
                duplicate_client_id_is_refused,
                delete_client_removes_it,
                delete_missing_client_is_not_found,
                delete_client_deletes_its_tokens,
                token_round_trips_expired_included,
                find_missing_token_is_none,
                revoke_only_by_the_owning_client,
                delete_expired_tokens_deletes_only_expired,
                insert_token_keeps_only_the_newest_per_client,
                concurrent_token_issues_respect_the_cap,
                insert_token_for_missing_client_is_not_found,
                text_the_store_cannot_hold_is_not_a_fault,
            }
            health {
                ping_answers,
            }
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __contract_tests {
    ($make:expr ; $( $module:ident { $( $check:ident ),* $(,)? } )*) => {
        $(
            mod $module {
                #[allow(unused_imports)]
                use super::*;
                $(
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $check() {
                        let (store, _guard) = $make;
                        $crate::$module::$check(store).await;
                    }
                )*
            }
        )*
    };
}

/// `module::check` for every check of the suite.
#[doc(hidden)]
#[macro_export]
macro_rules! __check_names {
    (; $( $module:ident { $( $check:ident ),* $(,)? } )*) => {
        &[ $( $( concat!(stringify!($module), "::", stringify!($check)) ),* ),* ]
    };
}

#[cfg(test)]
mod tests {
    /// Every `pub async fn` of a check module is in the list the macro runs,
    /// so no check is written and then silently never run.
    #[test]
    fn every_check_is_registered() {
        let sources = [
            ("customers", include_str!("customers.rs")),
            ("listing", include_str!("listing.rs")),
            ("cursor", include_str!("cursor.rs")),
            ("addresses", include_str!("addresses.rs")),
            ("coupons", include_str!("coupons.rs")),
            ("segments", include_str!("segments.rs")),
            ("events", include_str!("events.rs")),
            ("idempotency", include_str!("idempotency.rs")),
            ("webhooks", include_str!("webhooks.rs")),
            ("oauth", include_str!("oauth.rs")),
            ("health", include_str!("health.rs")),
        ];
        let mut written: Vec<String> = sources
            .iter()
            .flat_map(|(module, source)| {
                source.lines().filter_map(move |line| {
                    let rest = line.strip_prefix("pub async fn ")?;
                    let name: String = rest
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    Some(format!("{module}::{name}"))
                })
            })
            .collect();
        let names: &[&str] = crate::__with_checks!(__check_names {});
        let mut registered: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        written.sort();
        registered.sort();
        assert_eq!(written, registered);
        let before = registered.len();
        registered.dedup();
        assert_eq!(before, registered.len(), "a check is listed twice");
    }
}
