//! The black-box HTTP suite: every rule of the API contract, tested over real
//! HTTP against a real database, one fresh database per test — written once
//! and run on each storage backend.
//!
//! The PostgreSQL half is compiled in when `CRM_TEST_DATABASE_URL` is set at
//! build time (`.ci/run` always sets it); otherwise the test
//! `postgresql_suite_skipped_set_crm_test_database_url` says so in the output.

// Each test file is compiled once per backend on purpose.
#![allow(clippy::duplicate_mod)]

#[cfg(crm_pg_tests)]
mod postgres;
mod sqlite;
mod sqlite_restart;

#[cfg(not(crm_pg_tests))]
#[test]
fn postgresql_suite_skipped_set_crm_test_database_url() {
    eprintln!(
        "SKIPPED: the PostgreSQL black-box suite; set CRM_TEST_DATABASE_URL \
         (e.g. postgres://postgres@127.0.0.1:5432/postgres) and rebuild to run it"
    );
}
