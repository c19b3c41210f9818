//! What the process-level tests share: free ports, PostgreSQL's server
//! binaries, and running them as the `postgres` user.

// Each test binary uses its own part of this module.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A port nobody listens on now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The newest installed PostgreSQL server binary `name` (`initdb`, `pg_ctl`).
pub fn pg_bin(name: &str) -> Option<PathBuf> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path().join("bin").join(name))
        .filter(|p| p.exists())
        .collect();
    versions.sort();
    versions.pop()
}

pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Runs a tool as the `postgres` user when we are root (PostgreSQL and
/// PgBouncer refuse to run as root).
pub fn as_postgres(tool: &Path, args: &[&str]) -> Output {
    let mut cmd = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(tool);
        c
    } else {
        Command::new(tool)
    };
    cmd.args(args).output().expect("run a PostgreSQL tool")
}

/// A fresh directory under the temp dir, owned by `postgres` when we are root.
pub fn postgres_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("{name}_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    if is_root() {
        Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(&dir)
            .status()
            .unwrap();
    }
    dir
}

/// A server built in this process on `settings` (already migrated), serving
/// on a free port: its handle, base URL, and a read-and-write bearer token
/// from its own token endpoint for a client named `client_name`.
pub async fn serve_with_token(
    settings: &crm_server::Settings,
    client_name: &str,
) -> (actix_web::dev::ServerHandle, String, String) {
    let backend = crm_server::Backend::open(settings).expect("open");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let running = crm_server::build(settings, backend, listener).expect("build");
    let (handle, auth) = (running.handle.clone(), running.auth.clone());
    let base = format!("http://{}", running.addr);
    actix_web::rt::spawn(running.server);
    let client = auth
        .create_client(client_name, "crm:read crm:write")
        .await
        .unwrap();
    let token = client_credentials_token(&base, &client.client.id, client.secret.expose()).await;
    (handle, base, token)
}

/// An access token from the token endpoint of the server at `base`, by the
/// client credentials grant.
pub async fn client_credentials_token(base: &str, id: &str, secret: &str) -> String {
    let token: serde_json::Value = reqwest::Client::new()
        .post(format!("{base}/oauth/token/"))
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    token["access_token"].as_str().unwrap().to_owned()
}
