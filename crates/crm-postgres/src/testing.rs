//! Test support: each test gets its own database, cloned from a template that
//! is migrated once per schema version, so tests run in parallel with no
//! shared state.
//!
//! The server to use comes from `CRM_TEST_DATABASE_URL` (a URL of a database
//! the tests may connect to as a user allowed to create databases), by
//! default `postgres://postgres@127.0.0.1:5432/postgres`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::Text;

use crate::run_migrations;

const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
const TEMPLATE_LOCK_KEY: i64 = 0x6372_6d5f_7465_6d70;

/// Whether the PostgreSQL tests have a server to run on:
/// `CRM_TEST_DATABASE_URL` is set. When it is not, prints one line naming
/// the calling test (libtest names its thread after it) as skipped, past the
/// output capture so that it shows, and the test should return at once.
pub fn server_configured() -> bool {
    use std::io::Write;
    if std::env::var_os("CRM_TEST_DATABASE_URL").is_some_and(|v| !v.is_empty()) {
        return true;
    }
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("a PostgreSQL test");
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: set CRM_TEST_DATABASE_URL (e.g. {DEFAULT_ADMIN_URL}) to run it on PostgreSQL"
    );
    false
}

/// The admin URL the tests use.
pub fn admin_url() -> String {
    std::env::var("CRM_TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_ADMIN_URL.to_owned())
}

/// `url` with its database name replaced by `name`.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, params) = match url.split_once('?') {
        Some((b, p)) => (b, Some(p)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let authority_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    let mut out = format!("{}/{}", &base[..authority_end], name);
    if let Some(p) = params {
        out.push('?');
        out.push_str(p);
    }
    out
}

fn template_name() -> String {
    format!("crm_tpl_{}", env!("CRM_PG_MIGRATIONS_HASH"))
}

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    datname: String,
}

fn connect(url: &str) -> PgConnection {
    PgConnection::establish(url).unwrap_or_else(|e| {
        panic!("cannot connect to the test PostgreSQL server (set CRM_TEST_DATABASE_URL): {e}")
    })
}

/// Creates the migrated template once; other processes wait on an advisory
/// lock and reuse it. A template is built under a temporary name and renamed
/// when complete, so a crash never leaves a half-built one behind.
fn ensure_template(admin: &str) -> String {
    static TEMPLATE: OnceLock<String> = OnceLock::new();
    TEMPLATE
        .get_or_init(|| {
            let name = template_name();
            let mut conn = connect(admin);
            diesel::sql_query(format!("SELECT pg_advisory_lock({TEMPLATE_LOCK_KEY})"))
                .execute(&mut conn)
                .expect("advisory lock");
            let existing: Vec<Name> = diesel::sql_query(
                "SELECT datname::text AS datname FROM pg_database WHERE datname LIKE 'crm_tpl_%'",
            )
            .load(&mut conn)
            .expect("list templates");
            if !existing.iter().any(|d| d.datname == name) {
                // Templates of other schemas stay: another checkout on the
                // same server (a branch with other migrations) may be using
                // one right now. They are small; drop them by hand.
                let building = format!("{name}_building");
                diesel::sql_query(format!(
                    "DROP DATABASE IF EXISTS \"{building}\" WITH (FORCE)"
                ))
                .execute(&mut conn)
                .expect("drop stale template");
                diesel::sql_query(format!("CREATE DATABASE \"{building}\""))
                    .execute(&mut conn)
                    .expect("create template");
                {
                    let mut tpl = connect(&with_database(admin, &building));
                    run_migrations(&mut tpl).expect("migrate template");
                }
                diesel::sql_query(format!(
                    "ALTER DATABASE \"{building}\" RENAME TO \"{name}\""
                ))
                .execute(&mut conn)
                .expect("rename template");
                diesel::sql_query(format!("ALTER DATABASE \"{name}\" IS_TEMPLATE true"))
                    .execute(&mut conn)
                    .expect("mark template");
            }
            diesel::sql_query(format!("SELECT pg_advisory_unlock({TEMPLATE_LOCK_KEY})"))
                .execute(&mut conn)
                .expect("advisory unlock");
            name
        })
        .clone()
}

/// A fresh, migrated database, dropped when this value is dropped.
pub struct TestDatabase {
    admin: String,
    name: String,
    url: String,
}

impl TestDatabase {
    pub fn create() -> Self {
        let admin = admin_url();
        let template = ensure_template(&admin);
        Self::copy_of(admin, &template)
    }

    /// A fresh database with nothing in it, not migrated (for tests of
    /// migrating), dropped when this value is dropped.
    pub fn empty() -> Self {
        Self::copy_of(admin_url(), "template0")
    }

    fn copy_of(admin: String, template: &str) -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!(
            "crm_test_{}_{}_{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let mut conn = connect(&admin);
        let mut attempt = 0;
        loop {
            let created = diesel::sql_query(format!(
                "CREATE DATABASE \"{name}\" TEMPLATE \"{template}\""
            ))
            .execute(&mut conn);
            match created {
                Ok(_) => break,
                // Two clones of one template at the same instant can collide.
                Err(e)
                    if attempt < 50 && e.to_string().contains("being accessed by other users") =>
                {
                    attempt += 1;
                    std::thread::sleep(Duration::from_millis(20 * attempt));
                }
                Err(e) => panic!("cannot create test database {name}: {e}"),
            }
        }
        let url = with_database(&admin, &name);
        Self { admin, name, url }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Ok(mut conn) = PgConnection::establish(&self.admin) {
            let _ = diesel::sql_query(format!(
                "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                self.name
            ))
            .execute(&mut conn);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn database_name_is_replaced() {
        assert_eq!(
            with_database("postgres://u@h:5432/postgres", "x"),
            "postgres://u@h:5432/x"
        );
        assert_eq!(
            with_database("postgres://u@h/db?sslmode=disable", "x"),
            "postgres://u@h/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://u@h", "x"), "postgres://u@h/x");
    }
}
