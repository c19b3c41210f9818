//! The whole black-box suite on PostgreSQL. Always compiled; without
//! `CRM_TEST_DATABASE_URL` at run time each test says it was skipped.

use crm_server::Settings;
use crm_tests::{BackendKind, TestApp};

const BACKEND: BackendKind = BackendKind::Postgres;

/// A server on PostgreSQL with default settings, or `None` (the test was
/// reported skipped) without a server to test against.
pub async fn spawn() -> Option<TestApp> {
    spawn_with(|_| {}).await
}

/// A server on PostgreSQL after `adjust` has changed its settings, or `None`.
pub async fn spawn_with(adjust: impl FnOnce(&mut Settings)) -> Option<TestApp> {
    if !crm_postgres::testing::server_configured() {
        return None;
    }
    Some(TestApp::spawn_on_with(BACKEND, adjust).await)
}

#[path = "addresses.rs"]
mod addresses;
#[path = "conventions.rs"]
mod conventions;
#[path = "coupons.rs"]
mod coupons;
#[path = "cursor.rs"]
mod cursor;
#[path = "customers/mod.rs"]
mod customers;
#[path = "events.rs"]
mod events;
#[path = "filters.rs"]
mod filters;
#[path = "hardening.rs"]
mod hardening;
#[path = "idempotency.rs"]
mod idempotency;
#[path = "oauth.rs"]
mod oauth;
#[path = "openapi.rs"]
mod openapi;
#[path = "operations.rs"]
mod operations;
#[path = "segments.rs"]
mod segments;
#[path = "webhook_delivery.rs"]
mod webhook_delivery;
#[path = "webhooks.rs"]
mod webhooks;
