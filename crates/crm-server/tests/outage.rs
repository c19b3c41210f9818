//! Database outages: with a private PostgreSQL server (never the shared one),
//! stop it under load and check that requests fail fast with 503 and
//! `/readyz` says 503, then start it again and check that the server recovers
//! by itself, without a restart.
//!
//! Needs PostgreSQL's server binaries (`initdb`, `pg_ctl`); without them the
//! test says it is skipped.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crm_server::{Backend, Settings};
use support::{as_postgres, free_port, pg_bin, postgres_dir, serve_with_token};

mod support;

struct PrivatePostgres {
    dir: PathBuf,
    pg_ctl: PathBuf,
    port: u16,
}

impl PrivatePostgres {
    fn start() -> Option<Self> {
        let (initdb, pg_ctl) = (pg_bin("initdb")?, pg_bin("pg_ctl")?);
        let dir = postgres_dir("crm_outage");
        let data = dir.join("data");
        let out = as_postgres(
            &initdb,
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
            ],
        );
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let server = Self {
            dir,
            pg_ctl,
            port: free_port(),
        };
        server.ctl_start();
        Some(server)
    }

    fn ctl_start(&self) {
        let data = self.dir.join("data");
        let log = self.dir.join("log");
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.dir.display()
        );
        let out = as_postgres(
            &self.pg_ctl,
            &[
                "-D",
                data.to_str().unwrap(),
                "-l",
                log.to_str().unwrap(),
                "-o",
                &opts,
                "-w",
                "start",
            ],
        );
        assert!(
            out.status.success(),
            "pg_ctl start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn ctl_stop(&self) {
        let data = self.dir.join("data");
        let out = as_postgres(
            &self.pg_ctl,
            &["-D", data.to_str().unwrap(), "-m", "fast", "-w", "stop"],
        );
        assert!(
            out.status.success(),
            "pg_ctl stop: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        let _ = as_postgres(
            &self.pg_ctl,
            &["-D", data.to_str().unwrap(), "-m", "immediate", "stop"],
        );
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

struct Probe {
    status: u16,
    took: Duration,
    body: serde_json::Value,
}

async fn probe(http: &reqwest::Client, url: &str, token: &str) -> Probe {
    let started = Instant::now();
    let resp = http
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .expect("the server answers");
    let status = resp.status().as_u16();
    let body = resp.json().await.unwrap_or(serde_json::Value::Null);
    Probe {
        status,
        took: started.elapsed(),
        body,
    }
}

/// Every log line of this test process, kept in memory.
#[derive(Clone, Default)]
struct Logs(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    fn capture() -> Self {
        let logs = Self::default();
        let writer = logs.clone();
        tracing_subscriber::fmt()
            .with_env_filter("warn")
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .init();
        logs
    }

    fn lines_with(&self, needle: &str) -> usize {
        String::from_utf8_lossy(&self.0.lock().unwrap())
            .lines()
            .filter(|l| l.contains(needle))
            .count()
    }
}

#[actix_web::test]
async fn requests_fail_fast_while_postgres_is_down_and_recover_after() {
    let logs = Logs::capture();
    let Some(db) = PrivatePostgres::start() else {
        eprintln!("SKIPPED: PostgreSQL server binaries (initdb, pg_ctl) not found");
        return;
    };
    let mut settings = Settings::new(db.url());
    settings.workers = Some(2);
    settings.db_pool_size = 4;
    settings.db_timeout_seconds = 1;
    Backend::migrate(&settings).expect("migrate");
    let (handle, base, token) = serve_with_token(&settings, "outage").await;
    let http = reqwest::Client::new();
    let list = format!("{base}/api/crm/customer/");
    let ready = format!("{base}/readyz");

    // Healthy, with pooled connections open.
    for _ in 0..8 {
        assert_eq!(probe(&http, &list, &token).await.status, 200);
    }
    assert_eq!(probe(&http, &ready, &token).await.status, 200);

    db.ctl_stop();

    // Down: every request answers 503 in the contract's shape, quickly.
    let mut slowest = Duration::ZERO;
    for _ in 0..20 {
        let p = probe(&http, &list, &token).await;
        assert_eq!(p.status, 503, "while PostgreSQL is down: {:?}", p.body);
        assert!(p.body["detail"].is_string());
        slowest = slowest.max(p.took);
    }
    assert!(
        slowest < Duration::from_millis(2500),
        "slowest answer took {slowest:?}"
    );
    assert_eq!(probe(&http, &ready, &token).await.status, 503);
    eprintln!("while down: 20 requests answered 503, slowest in {slowest:?}");
    // Twenty failed requests, not twenty warnings: repeats are sampled.
    let warned = logs.lines_with("storage unavailable");
    assert!(
        (1..=3).contains(&warned),
        "{warned} 'storage unavailable' lines"
    );

    db.ctl_start();

    // Back: the server recovers by itself within a few seconds.
    let since = Instant::now();
    loop {
        let p = probe(&http, &list, &token).await;
        if p.status == 200 {
            break;
        }
        assert_eq!(p.status, 503, "while recovering: {:?}", p.body);
        assert!(
            since.elapsed() < Duration::from_secs(15),
            "no recovery after 15 s"
        );
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("recovered {:?} after PostgreSQL came back", since.elapsed());
    for _ in 0..8 {
        assert_eq!(probe(&http, &list, &token).await.status, 200);
    }
    assert_eq!(probe(&http, &ready, &token).await.status, 200);
    handle.stop(false).await;
}
