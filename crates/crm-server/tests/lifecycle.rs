//! The `crm-server serve` process under the conditions an operator meets:
//! SIGTERM under keep-alive load (no request may go unanswered), and a
//! file-descriptor limit (raised at start; connections capped below it).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crm_sqlite::testing::TestDatabase;
use support::{cli, new_client, token_for, Server};

mod support;

/// Registers a client with the CLI and gets a token from the server.
async fn token(db: &TestDatabase, server: &Server) -> String {
    token_for(server, &new_client(db.url())).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_under_keep_alive_load_leaves_no_request_unanswered() {
    let db = TestDatabase::create();
    let server = Server::start(
        &db,
        &[],
        &[
            ("CRM_SHUTDOWN_DRAIN_SECONDS", "2"),
            ("CRM_SHUTDOWN_TIMEOUT_SECONDS", "10"),
        ],
    );
    let token = token(&db, &server).await;
    // One pool of keep-alive connections, as a busy API client has.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(16)
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    // The load stops opening requests once a load balancer would have
    // taken the instance out: when /readyz says 503. Requests already sent,
    // and those sent until then, must all be answered.
    let out_of_rotation = Arc::new(AtomicBool::new(false));
    let answered_after_signal = Arc::new(AtomicUsize::new(0));
    let unanswered = Arc::new(Mutex::new(Vec::<String>::new()));
    let signalled_at = Arc::new(Mutex::new(None::<Instant>));
    let mut load = Vec::new();
    for _ in 0..8 {
        let (client, token, url) = (
            client.clone(),
            token.clone(),
            server.url("/api/crm/customer/"),
        );
        let out = out_of_rotation.clone();
        let after = answered_after_signal.clone();
        let unanswered = unanswered.clone();
        let signalled_at = signalled_at.clone();
        load.push(tokio::spawn(async move {
            let mut sent = 0usize;
            while !out.load(Ordering::SeqCst) {
                let sent_at = Instant::now();
                match client.get(&url).bearer_auth(&token).send().await {
                    Ok(resp) => {
                        assert_eq!(resp.status(), 200);
                        resp.bytes().await.expect("a whole body");
                        if signalled_at.lock().unwrap().is_some_and(|t| sent_at > t) {
                            after.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    Err(error) => unanswered.lock().unwrap().push(format!("{error:?}")),
                }
                sent += 1;
            }
            sent
        }));
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    *signalled_at.lock().unwrap() = Some(Instant::now());
    server.signal("-TERM");
    // The load balancer's health check, on connections of its own.
    let probe = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let first_probe = probe.get(server.url("/readyz")).send().await.unwrap();
    assert_eq!(first_probe.status(), 503, "readiness fails at once");
    assert_eq!(
        first_probe
            .headers()
            .get("connection")
            .and_then(|v| v.to_str().ok()),
        Some("close")
    );
    // A balancer notices within its check interval; the load goes on meanwhile.
    tokio::time::sleep(Duration::from_millis(300)).await;
    out_of_rotation.store(true, Ordering::SeqCst);
    let mut total = 0;
    for task in load {
        total += task.await.unwrap();
    }
    let (status, logs) = server.wait(Duration::from_secs(20));
    assert!(status.success(), "exit status {status}: {logs}");
    let unanswered = unanswered.lock().unwrap();
    assert!(
        unanswered.is_empty(),
        "{} of {total} requests got no response: {:?}",
        unanswered.len(),
        &unanswered[..unanswered.len().min(3)]
    );
    assert!(
        answered_after_signal.load(Ordering::SeqCst) > 0,
        "requests sent after the signal are served during the drain"
    );
    assert!(logs.contains("draining"), "{logs}");
    assert!(
        !logs.contains('\u{1b}'),
        "no colour codes when logs are not a terminal"
    );
}

fn open_files_limits(pid: u32) -> (u64, u64) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let numbers: Vec<u64> = line
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    (numbers[0], numbers[1])
}

fn has_prlimit() -> bool {
    Command::new("prlimit")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn the_open_files_soft_limit_is_raised_to_the_hard_limit() {
    if !has_prlimit() {
        eprintln!("SKIPPED: prlimit (util-linux) is not installed");
        return;
    }
    let db = TestDatabase::create();
    let server = Server::start(&db, &["prlimit", "--nofile=256:2048", "--"], &[]);
    assert_eq!(open_files_limits(server.child.id()), (2048, 2048));
}

/// Sends a request head announcing a body that never comes.
fn stalled_request(port: u16) -> std::io::Result<TcpStream> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.write_all(
        b"POST /oauth/token/ HTTP/1.1\r\nHost: localhost\r\n\
          Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\n",
    )?;
    Ok(stream)
}

#[test]
fn connections_past_the_descriptor_limit_wait_instead_of_breaking_the_server() {
    if !has_prlimit() {
        eprintln!("SKIPPED: prlimit (util-linux) is not installed");
        return;
    }
    let db = TestDatabase::create();
    let server = Server::start(
        &db,
        &["prlimit", "--nofile=160:160", "--"],
        &[
            ("CRM_WORKERS", "1"),
            ("CRM_DB_POOL_SIZE", "2"),
            ("CRM_BODY_TIMEOUT_SECONDS", "2"),
        ],
    );
    // More stalled connections than the process has descriptors.
    let stalled: Vec<TcpStream> = (0..220)
        .filter_map(|_| stalled_request(server.port).ok())
        .collect();
    assert!(
        stalled.len() > 160,
        "only {} connections opened",
        stalled.len()
    );
    // A plain request is still answered: the stalled ones time out and make
    // room, none of them having made the server run out of descriptors.
    let started = Instant::now();
    let mut healthz = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    healthz
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    healthz
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut answer = String::new();
    healthz.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
    assert!(started.elapsed() < Duration::from_secs(30));
    drop(stalled);
    server.signal("-KILL");
    let (_, logs) = server.wait(Duration::from_secs(10));
    assert!(
        !logs.to_ascii_lowercase().contains("too many open files"),
        "{logs}"
    );
}

/// The status of a bearer GET of the customer list.
async fn list_status(http: &reqwest::Client, server: &Server, token: &str) -> u16 {
    http.get(server.url("/api/crm/customer/"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_on_one_instance_is_refused_by_another_at_once() {
    if std::env::var("CRM_TEST_DATABASE_URL").is_err() {
        eprintln!("SKIPPED: set CRM_TEST_DATABASE_URL to run the two-instance PostgreSQL test");
        return;
    }
    let db = crm_postgres::testing::TestDatabase::create();
    let env = [
        ("CRM_SHUTDOWN_DRAIN_SECONDS", "0"),
        ("CRM_TOKEN_CACHE_SIZE", "1000"),
    ];
    let (a, b) = (
        Server::start_on(db.url(), &[], &env),
        Server::start_on(db.url(), &[], &env),
    );
    let http = reqwest::Client::new();
    let client = new_client(db.url());

    // Revoked through A: refused by B on the very next request, though B
    // had the token cached.
    let token = token_for(&a, &client).await;
    for server in [&a, &b, &b] {
        assert_eq!(list_status(&http, server, &token).await, 200);
    }
    let metrics = http
        .get(b.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"auth_token_cache_lookups_total{result="hit"} 1"#),
        "B's second check came from its cache: {metrics}"
    );
    let revoked = http
        .post(a.url("/oauth/revoke_token/"))
        .basic_auth(&client.0, Some(&client.1))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    assert_eq!(
        list_status(&http, &b, &token).await,
        401,
        "B after revocation on A"
    );
    assert_eq!(
        list_status(&http, &a, &token).await,
        401,
        "A after its own revocation"
    );

    // The client deleted by the CLI (another process): refused everywhere.
    let token = token_for(&b, &client).await;
    for server in [&a, &b] {
        assert_eq!(list_status(&http, server, &token).await, 200);
    }
    cli(db.url(), &["client", "delete", &client.0]);
    for server in [&a, &b] {
        assert_eq!(
            list_status(&http, server, &token).await,
            401,
            "after client delete"
        );
    }

    // B's listening connection lost: B forgets what it cached, so a
    // revocation it could not hear is still refused.
    let client = new_client(db.url());
    let token = token_for(&a, &client).await;
    assert_eq!(list_status(&http, &b, &token).await, 200);
    let mut conn = <diesel::PgConnection as diesel::Connection>::establish(db.url()).unwrap();
    diesel::RunQueryDsl::execute(
        diesel::sql_query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND query LIKE 'LISTEN%'",
        ),
        &mut conn,
    )
    .unwrap();
    diesel::RunQueryDsl::execute(diesel::sql_query("DELETE FROM oauth_tokens"), &mut conn).unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        list_status(&http, &b, &token).await,
        401,
        "after the channel was lost"
    );
    // And B caches again once it listens again.
    let token = token_for(&a, &client).await;
    assert_eq!(list_status(&http, &b, &token).await, 200);
}
