//! Through PgBouncer in transaction pooling: a private PostgreSQL (never the
//! shared one) behind a private PgBouncer with fewer server connections than
//! the server's pool, so consecutive transactions of one pooled connection
//! land on different server connections. With `db_prepared_statements` off,
//! an API scenario run by several clients at once gets no error; migrations
//! go to the direct URL (their advisory lock needs a session).
//!
//! Needs PostgreSQL's server binaries and `pgbouncer` (`.ci/run` installs
//! them); without them the test says it is skipped.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crm_server::{Backend, Settings};
use support::{as_postgres, free_port, is_root, pg_bin, postgres_dir, serve_with_token};

mod support;

fn pgbouncer_bin() -> Option<PathBuf> {
    ["/usr/sbin/pgbouncer", "/usr/bin/pgbouncer"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

fn check(out: std::process::Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A private PostgreSQL and a PgBouncer in transaction mode in front of it.
struct Cluster {
    dir: PathBuf,
    pg_ctl: PathBuf,
    pg_port: u16,
    bouncer_port: u16,
}

impl Cluster {
    fn start() -> Option<Self> {
        let (initdb, pg_ctl, pgbouncer) = (pg_bin("initdb")?, pg_bin("pg_ctl")?, pgbouncer_bin()?);
        let dir = postgres_dir("crm_pgbouncer");
        let cluster = Self {
            dir: dir.clone(),
            pg_ctl: pg_ctl.clone(),
            pg_port: free_port(),
            bouncer_port: free_port(),
        };
        let data = dir.join("data");
        let data = data.to_str().unwrap();
        check(
            as_postgres(
                &initdb,
                &["-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8"],
            ),
            "initdb",
        );
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            cluster.pg_port,
            dir.display()
        );
        let log = dir.join("log");
        check(
            as_postgres(
                &pg_ctl,
                &[
                    "-D",
                    data,
                    "-l",
                    log.to_str().unwrap(),
                    "-o",
                    &opts,
                    "-w",
                    "start",
                ],
            ),
            "pg_ctl start",
        );
        // Two server connections for a server pool of six: transactions of
        // one pooled connection move between server connections.
        let ini = dir.join("pgbouncer.ini");
        let userlist = dir.join("userlist.txt");
        std::fs::write(&userlist, "\"postgres\" \"\"\n").unwrap();
        std::fs::write(
            &ini,
            format!(
                "[databases]\npostgres = host=127.0.0.1 port={pg} dbname=postgres\n\n\
                 [pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n\
                 auth_type = trust\nauth_file = {userlist}\npool_mode = transaction\n\
                 default_pool_size = 2\nmax_client_conn = 100\n\
                 logfile = {dir}/pgbouncer.log\npidfile = {dir}/pgbouncer.pid\n",
                pg = cluster.pg_port,
                port = cluster.bouncer_port,
                userlist = userlist.display(),
                dir = dir.display(),
            ),
        )
        .unwrap();
        if is_root() {
            Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir)
                .status()
                .unwrap();
        }
        check(
            as_postgres(&pgbouncer, &["-d", ini.to_str().unwrap()]),
            "pgbouncer",
        );
        for _ in 0..50 {
            if std::net::TcpStream::connect(("127.0.0.1", cluster.bouncer_port)).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(cluster)
    }

    fn direct_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.pg_port)
    }

    fn pooled_url(&self) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/postgres",
            self.bouncer_port
        )
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(self.dir.join("pgbouncer.pid")) {
            let _ = Command::new("kill").arg(pid.trim()).status();
        }
        let data = self.dir.join("data");
        let _ = as_postgres(
            &self.pg_ctl,
            &["-D", data.to_str().unwrap(), "-m", "immediate", "stop"],
        );
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[actix_web::test]
async fn an_api_scenario_through_pgbouncer_in_transaction_mode_gets_no_error() {
    let Some(cluster) = Cluster::start() else {
        eprintln!("SKIPPED: PostgreSQL server binaries (initdb, pg_ctl) or pgbouncer not found");
        return;
    };
    let mut settings = Settings::new(cluster.pooled_url());
    settings.database_direct_url = Some(cluster.direct_url());
    settings.db_prepared_statements = false;
    settings.workers = Some(2);
    settings.db_pool_size = 6;
    settings.db_timeout_seconds = 5;
    Backend::migrate(&settings).expect("migrate through the direct URL");
    let (handle, base, token) = serve_with_token(&settings, "pgbouncer").await;
    let http = reqwest::Client::new();

    // Six clients at once, each through the whole scenario several times:
    // writes, reads in read-only transactions, a list page with its count.
    let mut tasks = Vec::new();
    for n in 0..6 {
        let (http, base, token) = (http.clone(), base.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            for k in 0..8 {
                let api = format!("{base}/api/crm/customer/");
                let created = http
                    .post(&api)
                    .bearer_auth(&token)
                    .json(&serde_json::json!({"full_name": format!("c{n}-{k}"), "tags": ["vip"]}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(created.status(), 201, "{:?}", created.text().await);
                let id = created.json::<serde_json::Value>().await.unwrap()["id"]
                    .as_i64()
                    .unwrap();
                let one = format!("{api}{id}/");
                let read = http.get(&one).bearer_auth(&token).send().await.unwrap();
                assert_eq!(read.status(), 200, "{:?}", read.text().await);
                let patched = http
                    .patch(&one)
                    .bearer_auth(&token)
                    .json(&serde_json::json!({"note": "called back"}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(patched.status(), 200, "{:?}", patched.text().await);
                let page = http
                    .get(format!("{api}?tag=vip&page_size=5"))
                    .bearer_auth(&token)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(page.status(), 200, "{:?}", page.text().await);
                let page: serde_json::Value = page.json().await.unwrap();
                assert!(page["count"].as_i64().unwrap() >= 1);
                if k % 2 == 0 {
                    let deleted = http.delete(&one).bearer_auth(&token).send().await.unwrap();
                    assert_eq!(deleted.status(), 204);
                }
            }
        }));
    }
    for task in tasks {
        task.await.expect("a client saw an error");
    }
    handle.stop(false).await;
    drop(cluster);
}
