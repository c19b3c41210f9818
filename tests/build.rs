//! The PostgreSQL half of the black-box suite is compiled in only when
//! CRM_TEST_DATABASE_URL names a server to test against; without it the
//! suite runs on SQLite alone and says so.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(crm_pg_tests)");
    println!("cargo:rerun-if-env-changed=CRM_TEST_DATABASE_URL");
    if std::env::var_os("CRM_TEST_DATABASE_URL").is_some_and(|v| !v.is_empty()) {
        println!("cargo:rustc-cfg=crm_pg_tests");
    } else {
        println!(
            "cargo:warning=PostgreSQL black-box tests SKIPPED: set CRM_TEST_DATABASE_URL (e.g. postgres://postgres@127.0.0.1:5432/postgres) to run them"
        );
    }
}
