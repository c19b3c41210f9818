//! The whole black-box suite on SQLite.

use crm_server::Settings;
use crm_tests::{BackendKind, TestApp};

const BACKEND: BackendKind = BackendKind::Sqlite;

/// A server on SQLite with default settings (SQLite needs no server, so
/// always `Some`).
pub async fn spawn() -> Option<TestApp> {
    Some(TestApp::spawn_on(BACKEND).await)
}

/// A server on SQLite after `adjust` has changed its settings.
pub async fn spawn_with(adjust: impl FnOnce(&mut Settings)) -> Option<TestApp> {
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
