//! The black-box HTTP suite: every rule of the API contract, tested over real
//! HTTP against a real database, one fresh database per test — written once
//! and run on each storage backend: `sqlite` and `postgres` each compile
//! every test file as a module, with their own `spawn` and `spawn_with`.
//!
//! Both halves are always compiled. The PostgreSQL half runs when
//! `CRM_TEST_DATABASE_URL` is set at run time (`.ci/run` always sets it);
//! otherwise each of its tests prints `SKIPPED <test>` and returns.

// Each test file is compiled once per backend on purpose.
#![allow(clippy::duplicate_mod)]

/// A server on the backend of the enclosing backend module, with default
/// settings or after the given settings closure; when that backend has no
/// database to test against, returns from the test, which said it was
/// skipped.
macro_rules! spawn {
    () => {
        match super::spawn().await {
            Some(app) => app,
            None => return,
        }
    };
    ($adjust:expr) => {
        match super::spawn_with($adjust).await {
            Some(app) => app,
            None => return,
        }
    };
}

mod postgres;
mod sqlite;
mod sqlite_restart;
