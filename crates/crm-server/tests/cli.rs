//! The `crm-server` binary as an operator runs it: `migrate` and the `client`
//! commands, against a fresh embedded database file.

use std::process::{Command, Output};

use crm_sqlite::testing::TestDatabase;
use serde_json::Value;

fn crm_server(db: &TestDatabase, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_crm-server"))
        .args(args)
        .env("DATABASE_URL", db.url())
        .env("RUST_LOG", "warn")
        .output()
        .expect("run crm-server")
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "crm-server failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).expect("utf-8 output")
}

#[test]
fn migrate_is_idempotent() {
    let db = TestDatabase::create();
    stdout(&crm_server(&db, &["migrate"]));
    stdout(&crm_server(&db, &["migrate"]));
}

#[test]
fn client_create_prints_exactly_one_json_object() {
    let db = TestDatabase::create();
    let out = stdout(&crm_server(
        &db,
        &[
            "client",
            "create",
            "--name",
            "shop",
            "--scope",
            "crm:read crm:write",
        ],
    ));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 1, "stdout holds one line: {out}");
    let created: Value = serde_json::from_str(lines[0]).expect("json");
    let keys: Vec<&str> = created
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, ["client_id", "client_secret", "name", "scope"]);
    assert_eq!(created["name"], "shop");
    assert_eq!(created["scope"], "crm:read crm:write");
    assert!(created["client_secret"].as_str().unwrap().len() >= 43);
}

#[test]
fn client_list_shows_clients_without_secrets_and_delete_removes_them() {
    let db = TestDatabase::create();
    let created: Value = serde_json::from_str(&stdout(&crm_server(
        &db,
        &["client", "create", "--name", "crm-sync", "--scope", "read"],
    )))
    .unwrap();
    let id = created["client_id"].as_str().unwrap();
    let secret = created["client_secret"].as_str().unwrap();
    let listed = stdout(&crm_server(&db, &["client", "list"]));
    assert!(listed.contains(id));
    assert!(listed.contains("crm-sync"));
    assert!(!listed.contains(secret), "list never shows a secret");
    stdout(&crm_server(&db, &["client", "delete", id]));
    let listed = stdout(&crm_server(&db, &["client", "list"]));
    assert!(!listed.contains(id));
    // Deleting it again fails with a message.
    let again = crm_server(&db, &["client", "delete", id]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("no client"));
}

#[test]
fn client_create_refuses_unknown_scopes() {
    let db = TestDatabase::create();
    let out = crm_server(
        &db,
        &["client", "create", "--name", "x", "--scope", "admin"],
    );
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "nothing on stdout on failure");
}

#[test]
fn help_documents_every_setting() {
    let out = Command::new(env!("CARGO_BIN_EXE_crm-server"))
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for var in [
        "DATABASE_URL",
        "CRM_BIND",
        "CRM_DB_POOL_SIZE",
        "CRM_TOKEN_TTL_SECONDS",
        "CRM_UTC_OFFSET",
        "CRM_MAX_BODY_BYTES",
        "CRM_TRUST_PROXY",
        "CRM_DATABASE_DIRECT_URL",
        "CRM_DB_PREPARED_STATEMENTS",
    ] {
        assert!(help.contains(var), "{var} missing from --help");
    }
}

#[test]
fn invalid_settings_are_refused_with_a_clear_message() {
    let out = Command::new(env!("CARGO_BIN_EXE_crm-server"))
        .args(["migrate"])
        .env("DATABASE_URL", "postgres://127.0.0.1:1/none")
        .env("CRM_UTC_OFFSET", "eight")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("CRM_UTC_OFFSET"));
}

/// Waits for `child` to exit, up to `limit`.
fn wait_for(
    child: &mut std::process::Child,
    limit: std::time::Duration,
) -> Option<std::process::ExitStatus> {
    let started = std::time::Instant::now();
    while started.elapsed() < limit {
        if let Some(status) = child.try_wait().expect("wait") {
            return Some(status);
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    None
}

#[test]
fn serve_stops_gracefully_on_sigterm_and_sigint() {
    for signal in ["-TERM", "-INT"] {
        let db = TestDatabase::create();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = Command::new(env!("CARGO_BIN_EXE_crm-server"))
            .arg("serve")
            .env("DATABASE_URL", db.url())
            .env("CRM_BIND", format!("127.0.0.1:{port}"))
            .env("CRM_SHUTDOWN_DRAIN_SECONDS", "1")
            .env("RUST_LOG", "info")
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start crm-server");
        // Wait until it listens.
        let started = std::time::Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(started.elapsed().as_secs() < 20, "server did not start");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let killed = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let status =
            wait_for(&mut child, std::time::Duration::from_secs(10)).expect("stops within 10 s");
        assert!(status.success(), "{signal}: exit status {status}");
        let mut stderr = String::new();
        std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
        assert!(
            stderr.contains("stopped"),
            "{signal}: logs say it stopped: {stderr}"
        );
    }
}
