//! Reads from a streaming replica (`CRM_DATABASE_REPLICA_URL`), against a
//! private PostgreSQL primary and a replica made from it with
//! `pg_basebackup -R` (never the shared server): GET requests are answered
//! by the replica, except that a client that wrote reads from the primary
//! until the replica holds its write; every read goes to the primary while
//! the replica lags more than `CRM_REPLICA_MAX_LAG_MS` (replay paused with
//! `pg_wal_replay_pause()`) or is stopped, without an error for clients.
//!
//! Needs PostgreSQL's server binaries; without them the test says it is
//! skipped.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use crm_server::{Backend, Settings};
use serde_json::{json, Value};
use support::{as_postgres, client_credentials_token, free_port, pg_bin, postgres_dir};

mod support;

fn check(out: std::process::Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A private primary and its streaming replica.
struct Pair {
    dir: PathBuf,
    pg_ctl: PathBuf,
    primary_port: u16,
    replica_port: u16,
}

impl Pair {
    fn start() -> Option<Self> {
        let (initdb, pg_ctl, basebackup) = (
            pg_bin("initdb")?,
            pg_bin("pg_ctl")?,
            pg_bin("pg_basebackup")?,
        );
        let dir = postgres_dir("crm_replica");
        let pair = Self {
            dir: dir.clone(),
            pg_ctl,
            primary_port: free_port(),
            replica_port: free_port(),
        };
        let primary = dir.join("primary");
        check(
            as_postgres(
                &initdb,
                &[
                    "-D",
                    primary.to_str().unwrap(),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                ],
            ),
            "initdb",
        );
        std::fs::write(
            primary.join("pg_hba.conf"),
            "local all all trust\nhost all all 127.0.0.1/32 trust\n\
             host replication all 127.0.0.1/32 trust\n",
        )
        .unwrap();
        pair.pg_start("primary", pair.primary_port);
        check(
            as_postgres(
                &basebackup,
                &[
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &pair.primary_port.to_string(),
                    "-U",
                    "postgres",
                    "-D",
                    dir.join("replica").to_str().unwrap(),
                    "-R",
                    "-X",
                    "stream",
                    "-c",
                    "fast",
                ],
            ),
            "pg_basebackup",
        );
        pair.pg_start("replica", pair.replica_port);
        Some(pair)
    }

    fn pg_start(&self, name: &str, port: u16) {
        let data = self.dir.join(name);
        let opts = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c wal_level=replica -c hot_standby=on",
            self.dir.display()
        );
        let log = self.dir.join(format!("{name}.log"));
        check(
            as_postgres(
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
            ),
            &format!("pg_ctl start {name}"),
        );
    }

    fn stop_replica(&self) {
        let data = self.dir.join("replica");
        check(
            as_postgres(
                &self.pg_ctl,
                &["-D", data.to_str().unwrap(), "-m", "fast", "-w", "stop"],
            ),
            "pg_ctl stop replica",
        );
    }

    fn url(port: u16) -> String {
        format!("postgres://postgres@127.0.0.1:{port}/postgres")
    }

    /// One value from `sql` on the replica.
    fn on_replica(&self, sql: &str) -> String {
        let out = Command::new("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-Atc",
                sql,
            ])
            .args(["-p", &self.replica_port.to_string()])
            .output()
            .expect("psql");
        check(out.clone(), sql);
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        for name in ["replica", "primary"] {
            let data = self.dir.join(name);
            let _ = as_postgres(
                &self.pg_ctl,
                &["-D", data.to_str().unwrap(), "-m", "immediate", "stop"],
            );
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A server on the pair, allowing `max_lag_ms` of replica lag, and tokens
/// for two clients of its own: one that writes, one that only reads.
struct Api {
    handle: actix_web::dev::ServerHandle,
    base: String,
    writer: String,
    reader: String,
    http: reqwest::Client,
}

impl Api {
    async fn start(pair: &Pair, max_lag_ms: u64) -> Self {
        let mut settings = Settings::new(Pair::url(pair.primary_port));
        settings.database_replica_url = Some(Pair::url(pair.replica_port));
        settings.replica_max_lag_ms = max_lag_ms;
        settings.workers = Some(2);
        settings.db_timeout_seconds = 5;
        let backend = Backend::open(&settings).expect("open");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let running = crm_server::build(&settings, backend, listener).expect("build");
        let (handle, auth) = (running.handle.clone(), running.auth.clone());
        let base = format!("http://{}", running.addr);
        actix_web::rt::spawn(running.server);
        let mut tokens = Vec::new();
        for name in ["writer", "reader"] {
            let client = auth
                .create_client(name, "crm:read crm:write")
                .await
                .unwrap();
            tokens.push(
                client_credentials_token(&base, &client.client.id, client.secret.expose()).await,
            );
        }
        let reader = tokens.pop().unwrap();
        let writer = tokens.pop().unwrap();
        Self {
            handle,
            base,
            writer,
            reader,
            http: reqwest::Client::new(),
        }
    }

    async fn create(&self, name: &str) -> i64 {
        let created = self
            .http
            .post(format!("{}/api/crm/customer/", self.base))
            .bearer_auth(&self.writer)
            .json(&json!({ "full_name": name }))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), 201);
        created.json::<Value>().await.unwrap()["id"]
            .as_i64()
            .unwrap()
    }

    /// The status of GET customer `id` for `token`.
    async fn status(&self, token: &str, id: i64) -> u16 {
        self.http
            .get(format!("{}/api/crm/customer/{id}/", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    /// A sample of `/metrics` (with labels), 0 when absent.
    async fn metric(&self, name: &str) -> f64 {
        let text = self
            .http
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or(0.0)
    }

    async fn replica_reads(&self) -> f64 {
        self.metric("db_replica_routed_reads_total{target=\"replica\"}")
            .await
    }

    /// Waits until `/metrics` says the replica is up and caught up.
    async fn wait_replica_serving(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let up = self.metric("db_replica_up").await;
            let lag = self.metric("db_replica_lag_seconds").await;
            if up == 1.0 && (0.0..0.5).contains(&lag) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the replica never served: up {up}, lag {lag}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Polls `f` until it is true, for at most `limit`.
async fn eventually<F, Fut>(limit: Duration, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if f().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[actix_web::test]
async fn reads_go_to_the_replica_but_never_miss_the_clients_own_writes_nor_lag_too_far() {
    let Some(pair) = Pair::start() else {
        eprintln!("SKIPPED: PostgreSQL server binaries (initdb, pg_ctl, pg_basebackup) not found");
        return;
    };
    Backend::migrate(&Settings::new(Pair::url(pair.primary_port))).expect("migrate");

    // A generous lag limit: while replay is paused, the replica keeps
    // answering the clients that did not write.
    let api = Api::start(&pair, 60_000).await;
    api.wait_replica_serving().await;
    let before = api.create("before the pause").await;
    assert!(
        eventually(Duration::from_secs(10), || async {
            api.status(&api.reader, before).await == 200
        })
        .await,
        "the replica never showed a committed customer"
    );
    let served = api.replica_reads().await;
    assert_eq!(api.status(&api.reader, before).await, 200);
    assert_eq!(
        api.replica_reads().await,
        served + 1.0,
        "a reader's GET is answered by the replica"
    );

    pair.on_replica("SELECT pg_wal_replay_pause()");
    let during = api.create("while replay is paused").await;
    assert_eq!(
        api.status(&api.writer, during).await,
        200,
        "the client that wrote reads its write (from the primary)"
    );
    assert_eq!(
        api.status(&api.reader, during).await,
        404,
        "another client reads the paused replica, within the lag limit"
    );
    // Its list comes from the replica too: one customer, not two.
    let page: Value = api
        .http
        .get(format!("{}/api/crm/customer/", api.base))
        .bearer_auth(&api.reader)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["count"], 1, "{page}");

    pair.on_replica("SELECT pg_wal_replay_resume()");
    assert!(
        eventually(Duration::from_secs(10), || async {
            api.status(&api.reader, during).await == 200
        })
        .await,
        "the resumed replica never showed the write"
    );
    // Once the replica holds its write, the writer reads from it again.
    assert!(
        eventually(Duration::from_secs(10), || async {
            let served = api.replica_reads().await;
            api.status(&api.writer, during).await == 200 && api.replica_reads().await > served
        })
        .await,
        "the writer's reads never went back to the replica"
    );
    api.handle.stop(true).await;

    // A tight lag limit: once the paused replica is further behind than
    // that, every read goes to the primary.
    let api = Api::start(&pair, 300).await;
    api.wait_replica_serving().await;
    pair.on_replica("SELECT pg_wal_replay_pause()");
    let lagging = api.create("while the replica lags").await;
    assert!(
        eventually(Duration::from_secs(10), || async {
            api.status(&api.reader, lagging).await == 200
        })
        .await,
        "the reader never read from the primary while the replica lagged"
    );
    assert_eq!(pair.on_replica("SELECT pg_is_wal_replay_paused()"), "t");
    assert!(api.metric("db_replica_lag_seconds").await > 0.3);
    let served = api.replica_reads().await;
    for _ in 0..5 {
        assert_eq!(api.status(&api.reader, lagging).await, 200);
    }
    assert_eq!(
        api.replica_reads().await,
        served,
        "the lagging replica served no read"
    );
    pair.on_replica("SELECT pg_wal_replay_resume()");
    api.wait_replica_serving().await;

    // The replica stopped under a steady stream of reads: not one fails,
    // they go to the primary; started again, it serves again.
    let reads = {
        let (http, base, token) = (api.http.clone(), api.base.clone(), api.reader.clone());
        tokio::spawn(async move {
            let mut statuses = Vec::new();
            let until = Instant::now() + Duration::from_secs(4);
            while Instant::now() < until {
                let status = http
                    .get(format!("{base}/api/crm/customer/{before}/"))
                    .bearer_auth(&token)
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .unwrap_or(0);
                statuses.push(status);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            statuses
        })
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    let fallbacks_before = api.metric("db_replica_fallbacks_total").await;
    pair.stop_replica();
    let statuses = reads.await.unwrap();
    let failed: Vec<_> = statuses.iter().filter(|s| **s != 200).collect();
    assert!(
        failed.is_empty(),
        "{} of {} reads failed while the replica stopped: {failed:?}",
        failed.len(),
        statuses.len()
    );
    assert_eq!(api.metric("db_replica_up").await, 0.0);
    eprintln!(
        "reads across the stop: {}, fell back: {}",
        statuses.len(),
        api.metric("db_replica_fallbacks_total").await - fallbacks_before
    );
    pair.pg_start("replica", pair.replica_port);
    api.wait_replica_serving().await;
    let served = api.replica_reads().await;
    assert_eq!(api.status(&api.reader, lagging).await, 200);
    assert_eq!(
        api.replica_reads().await,
        served + 1.0,
        "the replica serves again"
    );
    api.handle.stop(true).await;
    drop(pair);
}
