//! Black-box test support: `TestApp` starts the real server on port 0 against
//! a fresh database (PostgreSQL or SQLite) and talks to it over real HTTP,
//! with a bearer token obtained from the server's own token endpoint by the
//! `oauth2` crate.

use std::io::Write;
use std::net::TcpListener;
use std::sync::{Arc, Mutex, OnceLock};

use actix_web::dev::ServerHandle;
use crm_domain::auth::AuthService;
use crm_server::{Backend, Settings};
use oauth2::basic::BasicClient;
use oauth2::{ClientId, ClientSecret, Scope, TokenResponse, TokenUrl};
pub mod receiver;

pub use reqwest::header::HeaderMap;
pub use reqwest::Method;
pub use serde_json::{json, Value};

/// A response, with its body parsed as JSON when it is JSON.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
    pub body: Value,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts the status, printing the body when it differs.
    #[track_caller]
    pub fn expect(self, status: u16) -> Self {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.text
        );
        self
    }
}

/// The keys of a JSON object, in order.
pub fn keys(value: &Value) -> Vec<&str> {
    value
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect()
}

/// Checks `value` is `YYYY-MM-DDTHH:MM:SS.ffffff` followed by `suffix`
/// (`Z`, or an offset such as `+08:00`).
#[track_caller]
pub fn assert_timestamp(value: &Value, suffix: &str) {
    let s = value
        .as_str()
        .unwrap_or_else(|| panic!("timestamp is a string: {value}"));
    let (base, rest) = s.split_at(26.min(s.len()));
    assert_eq!(rest, suffix, "offset of {s}");
    let shape = base
        .chars()
        .map(|c| if c.is_ascii_digit() { '9' } else { c })
        .collect::<String>();
    assert_eq!(shape, "9999-99-99T99:99:99.999999", "shape of {s}");
}

/// Which storage backend a test server runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendKind {
    Postgres,
    Sqlite,
}

/// The per-test database, dropped (and removed) with the app.
enum TestDatabase {
    Postgres(crm_postgres::testing::TestDatabase),
    Sqlite(crm_sqlite::testing::TestDatabase),
}

impl TestDatabase {
    fn create(kind: BackendKind) -> Self {
        match kind {
            BackendKind::Postgres => Self::Postgres(crm_postgres::testing::TestDatabase::create()),
            BackendKind::Sqlite => Self::Sqlite(crm_sqlite::testing::TestDatabase::create()),
        }
    }

    fn url(&self) -> &str {
        match self {
            Self::Postgres(db) => db.url(),
            Self::Sqlite(db) => db.url(),
        }
    }
}

/// An OAuth client registered for a test.
#[derive(Clone, Debug)]
pub struct TestClient {
    pub id: String,
    pub secret: String,
}

/// A running server with its own database.
pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    /// The bearer token sent by default (scopes `crm:read crm:write`).
    pub token: String,
    /// The client `token` was issued to (allowed every scope).
    pub oauth_client: TestClient,
    auth: AuthService,
    handle: ServerHandle,
    db: TestDatabase,
}

impl TestApp {
    /// Starts a server on `kind` with default settings.
    pub async fn spawn_on(kind: BackendKind) -> Self {
        Self::spawn_on_with(kind, |_| {}).await
    }

    /// Starts a server on `kind` after `adjust` has changed its settings.
    pub async fn spawn_on_with(kind: BackendKind, adjust: impl FnOnce(&mut Settings)) -> Self {
        let db = TestDatabase::create(kind);
        let mut settings = Settings::new(db.url());
        settings.workers = Some(1);
        settings.db_pool_size = 4;
        settings.shutdown_timeout_seconds = 1;
        adjust(&mut settings);
        let backend = Backend::open(&settings).expect("open backend");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind port 0");
        let running = crm_server::build(&settings, backend, listener).expect("build server");
        // The server's own service: a client deleted through it leaves its
        // token cache at once, as it does for the operator's CLI.
        let auth = running.auth.clone();
        actix_web::rt::spawn(running.server);
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("http client");
        let mut app = Self {
            base: format!("http://{}", running.addr),
            client,
            token: String::new(),
            oauth_client: TestClient {
                id: String::new(),
                secret: String::new(),
            },
            auth,
            handle: running.handle,
            db,
        };
        app.oauth_client = app
            .register_client("test suite", "read write crm:read crm:write")
            .await;
        app.token = app
            .fetch_token(&app.oauth_client, &["crm:read", "crm:write"])
            .await;
        app
    }

    /// Registers a client as the operator's `client create` does.
    pub async fn register_client(&self, name: &str, scopes: &str) -> TestClient {
        let created = self
            .auth
            .create_client(name, scopes)
            .await
            .expect("create client");
        TestClient {
            id: created.client.id,
            secret: created.secret.expose().to_owned(),
        }
    }

    /// Obtains a token through the real token endpoint with the `oauth2`
    /// crate (client credentials grant, HTTP Basic client authentication).
    pub async fn fetch_token(&self, client: &TestClient, scopes: &[&str]) -> String {
        let oauth = BasicClient::new(ClientId::new(client.id.clone()))
            .set_client_secret(ClientSecret::new(client.secret.clone()))
            .set_token_uri(TokenUrl::new(self.url("/oauth/token/")).expect("token url"));
        let mut request = oauth.exchange_client_credentials();
        for scope in scopes {
            request = request.add_scope(Scope::new((*scope).to_owned()));
        }
        let response = request
            .request_async(&self.client)
            .await
            .expect("token request");
        response.access_token().secret().clone()
    }

    /// The URL of the test database, for checks made behind the API.
    pub fn database_url(&self) -> &str {
        self.db.url()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Deletes a client as the operator's `client delete` does.
    pub async fn delete_client(&self, id: &str) {
        self.auth.delete_client(id).await.expect("delete client");
    }

    /// Runs `sql` (which must return one integer column named `n`) on the
    /// test's database: for checks the API cannot show, such as what is
    /// stored for a token.
    pub fn sql_count(&self, sql: &str) -> i64 {
        use diesel::{Connection, RunQueryDsl};
        #[derive(diesel::QueryableByName)]
        struct Count {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let query = diesel::sql_query(sql);
        let count = match &self.db {
            TestDatabase::Postgres(db) => {
                let mut conn = diesel::PgConnection::establish(db.url()).expect("connect");
                query.get_result::<Count>(&mut conn)
            }
            TestDatabase::Sqlite(db) => {
                let mut conn = diesel::SqliteConnection::establish(db.url()).expect("open");
                query.get_result::<Count>(&mut conn)
            }
        };
        count.expect("count query").n
    }

    /// Runs the statement `sql` on the test's database, behind the API: for
    /// states a test cannot reach through it in reasonable time (events
    /// that retention deleted a month later). Returns the rows affected.
    pub fn sql_execute(&self, sql: &str) -> usize {
        use diesel::{Connection, RunQueryDsl};
        let query = diesel::sql_query(sql);
        let affected = match &self.db {
            TestDatabase::Postgres(db) => {
                let mut conn = diesel::PgConnection::establish(db.url()).expect("connect");
                query.execute(&mut conn)
            }
            TestDatabase::Sqlite(db) => {
                let mut conn = diesel::SqliteConnection::establish(db.url()).expect("open");
                query.execute(&mut conn)
            }
        };
        affected.expect("statement")
    }

    /// A request builder for `path` carrying the default bearer token.
    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.anonymous(method, path).bearer_auth(&self.token)
    }

    /// A request builder for `path` with no credentials.
    pub fn anonymous(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.client.request(method, self.url(path))
    }

    /// Sends `builder` and reads the response.
    pub async fn send(&self, builder: reqwest::RequestBuilder) -> Resp {
        let response = builder.send().await.expect("request failed");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.expect("read body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Resp {
            status,
            headers,
            text,
            body,
        }
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.send(self.request(Method::GET, path)).await
    }

    pub async fn delete(&self, path: &str) -> Resp {
        self.send(self.request(Method::DELETE, path)).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Resp {
        self.send(self.request(Method::POST, path).json(body)).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Resp {
        self.send(self.request(Method::PUT, path).json(body)).await
    }

    pub async fn patch(&self, path: &str, body: &Value) -> Resp {
        self.send(self.request(Method::PATCH, path).json(body))
            .await
    }

    /// Creates a customer, asserting 201, and returns its representation.
    pub async fn create_customer(&self, body: Value) -> Value {
        self.post("/api/crm/customer/", &body)
            .await
            .expect(201)
            .body
    }

    /// Creates a customer and returns its id.
    pub async fn customer_id(&self, body: Value) -> i64 {
        self.create_customer(body).await["id"]
            .as_i64()
            .expect("id is an integer")
    }

    /// Ids of the customers `GET /api/crm/customer/?{query}` lists (one page
    /// of up to 1000), sorted; asserts that `count` is exact.
    pub async fn customers_where(&self, query: &str) -> Vec<i64> {
        let r = self
            .get(&format!("/api/crm/customer/?page_size=1000&{query}"))
            .await
            .expect(200);
        let mut ids: Vec<i64> = r.body["results"]
            .as_array()
            .expect("results is a list")
            .iter()
            .map(|c| c["id"].as_i64().expect("id is an integer"))
            .collect();
        ids.sort_unstable();
        assert_eq!(r.body["count"], ids.len(), "count is exact for {query}");
        ids
    }

    /// Creates a segment and returns its id.
    pub async fn segment_id(&self, title: &str) -> i64 {
        self.post("/api/crm/segment/", &json!({ "title": title }))
            .await
            .expect(201)
            .body["id"]
            .as_i64()
            .expect("id is an integer")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // Sends the stop command at once; the database is dropped after.
        drop(self.handle.stop(false));
    }
}

/// Every log line the test process writes, from the moment of the first call
/// (a global `tracing` subscriber at TRACE level).
#[derive(Clone, Default)]
pub struct LogSink(Arc<Mutex<Vec<u8>>>);

impl LogSink {
    pub fn contents(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("log sink")).into_owned()
    }
}

impl Write for LogSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log sink").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs (once) and returns the process-wide log capture.
pub fn capture_logs() -> LogSink {
    static SINK: OnceLock<LogSink> = OnceLock::new();
    SINK.get_or_init(|| {
        let sink = LogSink::default();
        let writer = sink.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter("trace")
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("one global subscriber");
        sink
    })
    .clone()
}
