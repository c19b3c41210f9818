//! What the process-level tests share: free ports, `crm-server` child
//! processes and the CLI, PostgreSQL's server binaries, and running them as
//! the `postgres` user.

// Each test binary uses its own part of this module.
#![allow(dead_code)]

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

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

/// A `crm-server serve` child process; killed if the test fails. Its logs
/// are read as they come, so a busy server never blocks on a full pipe.
pub struct Server {
    pub child: Child,
    pub port: u16,
    logs: std::thread::JoinHandle<String>,
}

impl Server {
    /// Starts `serve` (through `wrapper`, such as `prlimit`, when given)
    /// and waits until it listens.
    pub fn start(
        db: &crm_sqlite::testing::TestDatabase,
        wrapper: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        Self::start_on(db.url(), wrapper, env)
    }

    pub fn start_on(database_url: &str, wrapper: &[&str], env: &[(&str, &str)]) -> Self {
        let port = free_port();
        let binary = env!("CARGO_BIN_EXE_crm-server");
        let mut command = match wrapper.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(binary);
                c
            }
            None => Command::new(binary),
        };
        command
            .arg("serve")
            .env("DATABASE_URL", database_url)
            .env("CRM_BIND", format!("127.0.0.1:{port}"))
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("start crm-server");
        let mut stderr = child.stderr.take().unwrap();
        let logs = std::thread::spawn(move || {
            let mut logs = String::new();
            let _ = stderr.read_to_string(&mut logs);
            logs
        });
        let server = Self { child, port, logs };
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "server did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn signal(&self, name: &str) {
        let sent = Command::new("kill")
            .args([name, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
    }

    /// Waits for the process to exit; its status and everything it logged.
    pub fn wait(mut self, limit: Duration) -> (std::process::ExitStatus, String) {
        let started = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                break status;
            }
            assert!(started.elapsed() < limit, "did not exit within {limit:?}");
            std::thread::sleep(Duration::from_millis(20));
        };
        let logs = std::mem::replace(&mut self.logs, std::thread::spawn(String::new));
        (status, logs.join().unwrap_or_default())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a `crm-server` command (such as `client create`) on a database.
pub fn cli(database_url: &str, args: &[&str]) -> std::process::Output {
    let out = Command::new(env!("CARGO_BIN_EXE_crm-server"))
        .args(args)
        .env("DATABASE_URL", database_url)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run crm-server");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Registers a client with the CLI: its id and secret.
pub fn new_client(database_url: &str) -> (String, String) {
    let out = cli(database_url, &["client", "create", "--name", "load"]);
    let created: Value = serde_json::from_slice(&out.stdout).unwrap();
    let field = |name: &str| created[name].as_str().unwrap().to_owned();
    (field("client_id"), field("client_secret"))
}

/// Gets a token for a client from the server.
pub async fn token_for(server: &Server, (id, secret): &(String, String)) -> String {
    client_credentials_token(&server.url(""), id, secret).await
}
