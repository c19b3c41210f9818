//! Webhook delivery across processes: deliveries survive `kill -9` and are
//! made after a restart, and two servers on one PostgreSQL database deliver
//! each event once. The receiver is a plain HTTP/1.1 listener on 127.0.0.1.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::{new_client, token_for, Server};

mod support;

/// The receiver's "status" for holding requests unanswered.
const HANG: u16 = 0;

/// A receiver that records the `webhook-id` of every request and answers
/// with the status it is set to (or not at all: [`HANG`]).
#[derive(Clone)]
struct Receiver {
    url: String,
    ids: Arc<Mutex<Vec<String>>>,
    status: Arc<Mutex<u16>>,
}

impl Receiver {
    fn start(status: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let receiver = Self {
            url,
            ids: Arc::default(),
            status: Arc::new(Mutex::new(status)),
        };
        let shared = receiver.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let shared = shared.clone();
                std::thread::spawn(move || shared.serve(stream));
            }
        });
        receiver
    }

    fn serve(&self, stream: std::net::TcpStream) {
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        loop {
            let mut length = 0usize;
            let mut id = None;
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            loop {
                line.clear();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    return;
                }
                let header = line.trim_end();
                if header.is_empty() {
                    break;
                }
                let (name, value) = header.split_once(':').unwrap_or((header, ""));
                match name.to_ascii_lowercase().as_str() {
                    "content-length" => length = value.trim().parse().unwrap_or(0),
                    "webhook-id" => id = Some(value.trim().to_string()),
                    _ => {}
                }
            }
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_err() {
                return;
            }
            let status = *self.status.lock().unwrap();
            if let Some(id) = id {
                self.ids.lock().unwrap().push(id);
            }
            if status == HANG {
                // Holds the request without answering, as a stalled
                // receiver does.
                std::thread::sleep(Duration::from_secs(120));
                return;
            }
            let answer = format!("HTTP/1.1 {status} Status\r\ncontent-length: 0\r\n\r\n");
            if (&stream).write_all(answer.as_bytes()).is_err() {
                return;
            }
        }
    }

    fn set_status(&self, status: u16) {
        *self.status.lock().unwrap() = status;
    }

    fn ids(&self) -> Vec<String> {
        self.ids.lock().unwrap().clone()
    }

    /// The ids received once there are at least `n`.
    async fn wait_for(&self, n: usize, within: Duration) -> Vec<String> {
        let started = Instant::now();
        loop {
            let ids = self.ids();
            if ids.len() >= n {
                return ids;
            }
            assert!(
                started.elapsed() < within,
                "{} requests, not {n}",
                ids.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

const WEBHOOK_ENV: [(&str, &str); 4] = [
    ("CRM_WEBHOOK_ALLOW_PRIVATE", "true"),
    ("CRM_WEBHOOK_TIMEOUT_SECONDS", "1"),
    ("CRM_WEBHOOK_RETRY_SCHEDULE", "3"),
    ("CRM_SHUTDOWN_DRAIN_SECONDS", "0"),
];

async fn post(http: &reqwest::Client, url: String, token: &str, body: Value) -> Value {
    let response = http
        .post(url)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    response.json().await.unwrap()
}

async fn deliveries(
    http: &reqwest::Client,
    server: &Server,
    token: &str,
    endpoint: i64,
) -> Vec<Value> {
    let page: Value = http
        .get(server.url(&format!("/api/crm/webhook/{endpoint}/deliveries/")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    page["results"].as_array().unwrap().clone()
}

/// A failed first attempt, then `kill -9`: the restarted server makes the
/// retry, and it succeeds.
async fn delivery_survives_kill_and_restart(database_url: &str) {
    let receiver = Receiver::start(500);
    let server = Server::start_on(database_url, &[], &WEBHOOK_ENV);
    let http = reqwest::Client::new();
    let client = new_client(database_url);
    let token = token_for(&server, &client).await;
    let endpoint = post(
        &http,
        server.url("/api/crm/webhook/"),
        &token,
        json!({"url": receiver.url, "events": ["customer.created"]}),
    )
    .await["id"]
        .as_i64()
        .unwrap();
    post(
        &http,
        server.url("/api/crm/customer/"),
        &token,
        json!({"full_name": "Ann"}),
    )
    .await;
    receiver.wait_for(1, Duration::from_secs(15)).await;
    // Killed once the failed attempt is recorded (a kill during the attempt
    // leaves a claim that lapses only after a minute: another test).
    let started = Instant::now();
    loop {
        let log = deliveries(&http, &server, &token, endpoint).await;
        if log.first().is_some_and(|d| d["attempts"] == 1) {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{log:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.signal("-KILL");
    let (status, _) = server.wait(Duration::from_secs(10));
    assert!(!status.success(), "killed");

    receiver.set_status(200);
    let server = Server::start_on(database_url, &[], &WEBHOOK_ENV);
    let ids = receiver.wait_for(2, Duration::from_secs(20)).await;
    assert_eq!(ids[0], ids[1], "the same event again");
    let token = token_for(&server, &client).await;
    let started = Instant::now();
    loop {
        let log = deliveries(&http, &server, &token, endpoint).await;
        if log[0]["status"] == "delivered" {
            assert_eq!(log.len(), 1);
            assert_eq!(log[0]["attempts"], 2);
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{log:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_succeeds_after_kill_9_and_a_restart_on_sqlite() {
    let db = crm_sqlite::testing::TestDatabase::create();
    delivery_survives_kill_and_restart(db.url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_succeeds_after_kill_9_and_a_restart_on_postgres() {
    if !crm_postgres::testing::server_configured() {
        eprintln!("SKIPPED: set CRM_TEST_DATABASE_URL to run the PostgreSQL restart test");
        return;
    }
    let db = crm_postgres::testing::TestDatabase::create();
    delivery_survives_kill_and_restart(db.url()).await;
}

/// An instance killed during an attempt leaves its claim; it lapses
/// `CRM_WEBHOOK_TIMEOUT_SECONDS` + 60 s after it was made, and the attempt is
/// made again then (by the restarted instance), not before.
async fn a_dead_instances_claim_lapses_and_the_attempt_is_made_again(database_url: &str) {
    let receiver = Receiver::start(HANG);
    let env = [
        ("CRM_WEBHOOK_ALLOW_PRIVATE", "true"),
        ("CRM_WEBHOOK_TIMEOUT_SECONDS", "5"),
        ("CRM_SHUTDOWN_DRAIN_SECONDS", "0"),
    ];
    let server = Server::start_on(database_url, &[], &env);
    let http = reqwest::Client::new();
    let client = new_client(database_url);
    let token = token_for(&server, &client).await;
    post(
        &http,
        server.url("/api/crm/webhook/"),
        &token,
        json!({"url": receiver.url, "events": ["customer.created"]}),
    )
    .await;
    post(
        &http,
        server.url("/api/crm/customer/"),
        &token,
        json!({"full_name": "Ann"}),
    )
    .await;
    receiver.wait_for(1, Duration::from_secs(15)).await;
    let claimed = Instant::now();
    server.signal("-KILL");
    server.wait(Duration::from_secs(10));

    receiver.set_status(204);
    let _server = Server::start_on(database_url, &[], &env);
    let ids = receiver.wait_for(2, Duration::from_secs(100)).await;
    let waited = claimed.elapsed();
    assert_eq!(ids[0], ids[1], "the same event again");
    assert!(
        waited >= Duration::from_secs(64),
        "not before the claim lapsed (timeout + 60 s): {waited:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_instances_claim_lapses_on_sqlite() {
    let db = crm_sqlite::testing::TestDatabase::create();
    a_dead_instances_claim_lapses_and_the_attempt_is_made_again(db.url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_instances_claim_lapses_on_postgres() {
    if !crm_postgres::testing::server_configured() {
        eprintln!("SKIPPED: set CRM_TEST_DATABASE_URL to run the PostgreSQL lease test");
        return;
    }
    let db = crm_postgres::testing::TestDatabase::create();
    a_dead_instances_claim_lapses_and_the_attempt_is_made_again(db.url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_servers_on_one_database_deliver_each_event_once() {
    if !crm_postgres::testing::server_configured() {
        eprintln!("SKIPPED: set CRM_TEST_DATABASE_URL to run the two-instance PostgreSQL test");
        return;
    }
    let db = crm_postgres::testing::TestDatabase::create();
    let receiver = Receiver::start(204);
    // Each server makes at most two attempts at once: both must work for
    // the events to drain.
    let mut env = WEBHOOK_ENV.to_vec();
    env.push(("CRM_WEBHOOK_ENDPOINT_CONCURRENCY", "2"));
    let (a, b) = (
        Server::start_on(db.url(), &[], &env),
        Server::start_on(db.url(), &[], &env),
    );
    let http = reqwest::Client::new();
    let client = new_client(db.url());
    let tokens = [token_for(&a, &client).await, token_for(&b, &client).await];
    post(
        &http,
        a.url("/api/crm/webhook/"),
        &tokens[0],
        json!({"url": receiver.url, "events": ["*"]}),
    )
    .await;
    const CUSTOMERS: usize = 200;
    let mut writes = Vec::new();
    for n in 0..CUSTOMERS {
        let (server, token) = if n % 2 == 0 {
            (&a, &tokens[0])
        } else {
            (&b, &tokens[1])
        };
        writes.push(post(
            &http,
            server.url("/api/crm/customer/"),
            token,
            json!({"full_name": format!("C{n}")}),
        ));
    }
    futures_util::future::join_all(writes).await;

    receiver.wait_for(CUSTOMERS, Duration::from_secs(60)).await;
    // Whatever is still under way ends within the timeout.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let ids = receiver.ids();
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for id in &ids {
        *seen.entry(id.as_str()).or_default() += 1;
    }
    assert_eq!(seen.len(), CUSTOMERS, "every event delivered");
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "delivered more than once: {twice:?}");
    for (server, token) in [(&a, &tokens[0]), (&b, &tokens[1])] {
        let metrics = http
            .get(server.url("/metrics"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            metrics.contains("webhook_attempts_total{result=\"delivered\"}"),
            "both servers delivered some: {metrics}"
        );
    }
}
