//! The PostgreSQL run of the contract suite is compiled in only when
//! CRM_TEST_DATABASE_URL names a server to test against.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(crm_pg_tests)");
    println!("cargo:rerun-if-env-changed=CRM_TEST_DATABASE_URL");
    if std::env::var_os("CRM_TEST_DATABASE_URL").is_some_and(|v| !v.is_empty()) {
        println!("cargo:rustc-cfg=crm_pg_tests");
    } else {
        println!("cargo:warning=PostgreSQL contract tests SKIPPED: set CRM_TEST_DATABASE_URL to run them");
    }
}
