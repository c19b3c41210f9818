//! Builds and runs the CRM server: reads the settings, picks the storage
//! adapter, wires the domain services into the HTTP layer, and serves. No
//! business rule lives here.

mod replica;
pub mod settings;
pub mod webhooks;

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::{Server, ServerHandle};
use actix_web::{App, HttpServer};
use crm_domain::auth::AuthService;
use crm_domain::customer::CustomerService;
use crm_domain::event::EventService;
use crm_domain::segment::SegmentService;
use crm_domain::webhook::WebhookService;
use crm_domain::{RepoError, Storage};
use crm_http::edge::Lifecycle;
use crm_http::{ApiSettings, Services};
use crm_postgres::{PgConfig, PgStore};
use crm_sqlite::{SqliteConfig, SqliteStore};

pub use settings::Settings;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("database: {0}")]
    Database(#[from] RepoError),
    #[error("cannot bind {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
}

/// The storage backend named by a database URL: `postgres://` or
/// `postgresql://` for PostgreSQL; anything else is an embedded SQLite file.
pub enum Backend {
    Postgres(PgStore),
    Sqlite(SqliteStore),
}

fn services_over<S: Storage>(
    store: Arc<S>,
    token_ttl: time::Duration,
    max_tokens: std::num::NonZeroUsize,
    guard: webhooks::DnsGuard,
) -> Services {
    Services {
        webhooks: WebhookService::new(store.clone(), Arc::new(guard)),
        customers: CustomerService::new(store.clone(), store.clone(), store.clone()),
        segments: SegmentService::new(store.clone()),
        events: EventService::new(store.clone()),
        idempotency: store.clone(),
        auth: AuthService::new(store.clone(), store.clone(), token_ttl)
            .with_max_tokens_per_client(max_tokens),
        health: store,
    }
}

impl Backend {
    /// Opens the store `settings.database_url` names. PostgreSQL is not
    /// waited for: connections are made on demand.
    pub fn open(settings: &Settings) -> Result<Self, StartError> {
        let timeout = Duration::from_secs(settings.db_timeout_seconds);
        if settings.is_postgres() {
            let mut config = PgConfig::new(&settings.database_url);
            config.pool_size = settings.db_pool_size;
            config.connect_timeout = timeout;
            config.prepared_statements = settings.db_prepared_statements;
            config.replica_url = settings.replica_url().map(str::to_owned);
            config.replica_max_lag = Duration::from_millis(settings.replica_max_lag_ms);
            config.direct_url = Some(settings.direct_url().to_owned());
            return Ok(Self::Postgres(PgStore::new(&config)?));
        }
        let mut config = SqliteConfig::new(settings.sqlite_path());
        config.pool_size = settings.db_pool_size;
        config.connect_timeout = timeout;
        config.busy_timeout = timeout;
        Ok(Self::Sqlite(SqliteStore::new(&config)?))
    }

    /// Applies pending migrations; returns the versions applied.
    pub fn migrate(settings: &Settings) -> Result<Vec<String>, StartError> {
        if settings.is_postgres() {
            return Ok(PgStore::migrate(settings.direct_url())?);
        }
        Ok(SqliteStore::migrate(settings.sqlite_path())?)
    }

    /// The domain services over this backend.
    pub fn services(&self, settings: &Settings) -> Services {
        let ttl =
            time::Duration::seconds(i64::try_from(settings.token_ttl_seconds).unwrap_or(i64::MAX));
        let max_tokens = usize::try_from(settings.max_tokens_per_client)
            .ok()
            .and_then(std::num::NonZeroUsize::new)
            .unwrap_or(AuthService::DEFAULT_MAX_TOKENS_PER_CLIENT);
        let guard = webhooks::DnsGuard {
            allow_private: settings.webhook_allow_private,
        };
        match self {
            Self::Postgres(store) => services_over(Arc::new(store.clone()), ttl, max_tokens, guard),
            Self::Sqlite(store) => services_over(Arc::new(store.clone()), ttl, max_tokens, guard),
        }
    }

    /// Which backend this is, for logs.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Postgres(_) => "postgresql",
            Self::Sqlite(_) => "sqlite",
        }
    }
}

/// How often expired access tokens are deleted.
const TOKEN_PURGE_INTERVAL: Duration = Duration::from_secs(600);

/// Deletes expired tokens now and then, so they are not kept forever (issuing
/// a token also purges them).
fn spawn_token_purge(auth: AuthService) {
    actix_web::rt::spawn(async move {
        let mut interval = actix_web::rt::time::interval(TOKEN_PURGE_INTERVAL);
        loop {
            interval.tick().await;
            match auth.purge_expired().await {
                Ok(0) => {}
                Ok(count) => tracing::info!(count, "deleted expired access tokens"),
                Err(error) => tracing::warn!(%error, "could not delete expired access tokens"),
            }
        }
    });
}

/// How often each server publishes committed events (where the store
/// numbers them in a separate step), so that their ids are handed out close
/// to their commit whether or not anyone reads the feed.
const EVENT_PUBLISH_INTERVAL: Duration = Duration::from_millis(200);

/// How often events past their retention are deleted.
const EVENT_PURGE_INTERVAL: Duration = Duration::from_secs(600);

/// Publishes committed events now and then, and deletes those older than
/// `retention`. Both are safe on any number of instances at once.
fn spawn_event_maintenance(events: EventService, retention: time::Duration) {
    let publisher = events.clone();
    actix_web::rt::spawn(async move {
        let mut interval = actix_web::rt::time::interval(EVENT_PUBLISH_INTERVAL);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            if let Err(error) = publisher.publish().await {
                tracing::debug!(%error, "could not publish events");
            }
        }
    });
    actix_web::rt::spawn(async move {
        let mut interval = actix_web::rt::time::interval(EVENT_PURGE_INTERVAL);
        loop {
            interval.tick().await;
            let now = time::OffsetDateTime::now_utc();
            match events.purge(retention, now).await {
                Ok(0) => {}
                Ok(count) => tracing::info!(count, "deleted events past their retention"),
                Err(error) => tracing::warn!(%error, "could not delete old events"),
            }
        }
    });
}

/// How often idempotency keys past their lifetime are deleted.
const IDEMPOTENCY_PURGE_INTERVAL: Duration = Duration::from_secs(600);

/// Deletes idempotency keys past their lifetime now and then (a request
/// with an expired key runs as new whether or not it was deleted).
fn spawn_idempotency_purge(store: Arc<dyn crm_domain::idempotency::IdempotencyStore>) {
    actix_web::rt::spawn(async move {
        let mut interval = actix_web::rt::time::interval(IDEMPOTENCY_PURGE_INTERVAL);
        loop {
            interval.tick().await;
            match store
                .purge_idempotency_keys(time::OffsetDateTime::now_utc())
                .await
            {
                Ok(0) => {}
                Ok(count) => tracing::info!(count, "deleted expired idempotency keys"),
                Err(error) => tracing::warn!(%error, "could not delete expired idempotency keys"),
            }
        }
    });
}

/// Forgets idle clients' rate-limit buckets and ended failure windows now
/// and then.
fn spawn_limiter_cleanup(
    limiter: Option<crm_http::throttle::ClientRateLimiter>,
    failures: Option<crm_http::throttle::FailureThrottle>,
) {
    if limiter.is_none() && failures.is_none() {
        return;
    }
    actix_web::rt::spawn(async move {
        let mut interval = actix_web::rt::time::interval(Duration::from_secs(60));
        loop {
            interval.tick().await;
            if let Some(limiter) = &limiter {
                limiter.shrink();
            }
            if let Some(failures) = &failures {
                failures.shrink();
            }
        }
    });
}

/// A server that is listening; await `server` to run it (it does not react
/// to signals), or call [`Running::serve_until_signal`].
pub struct Running {
    pub addr: SocketAddr,
    pub server: Server,
    pub handle: ServerHandle,
    /// Draining state shared with the handlers.
    pub lifecycle: Lifecycle,
    /// How long to keep serving after a stop signal, before stopping.
    pub drain: Duration,
    /// The OAuth service the server uses (with its token cache, if any), for
    /// operator actions in the same process.
    pub auth: AuthService,
}

impl Running {
    /// Serves until SIGTERM or SIGINT, then drains: `/readyz` answers 503 at
    /// once and every response closes its connection, while requests are
    /// still served for the drain time (a second signal cuts it short); then
    /// the server stops accepting and in-flight requests get the shutdown
    /// timeout to finish.
    pub async fn serve_until_signal(self) -> std::io::Result<()> {
        use tokio::signal::unix::{signal, SignalKind};
        let Running {
            server,
            handle,
            lifecycle,
            drain,
            ..
        } = self;
        let mut terminate = signal(SignalKind::terminate())?;
        let mut interrupt = signal(SignalKind::interrupt())?;
        let server = actix_web::rt::spawn(server);
        let signalled = async {
            tokio::select! {
                _ = terminate.recv() => "SIGTERM",
                _ = interrupt.recv() => "SIGINT",
            }
        };
        tokio::select! {
            finished = server => return finished.unwrap_or_else(|e| Err(std::io::Error::other(e))),
            name = signalled => {
                lifecycle.start_draining();
                tracing::info!(signal = name, drain_seconds = drain.as_secs_f64(), "draining before shutdown");
            }
        }
        tokio::select! {
            () = actix_web::rt::time::sleep(drain) => {}
            _ = terminate.recv() => tracing::info!("second signal: drain cut short"),
            _ = interrupt.recv() => tracing::info!("second signal: drain cut short"),
        }
        tracing::info!("no longer accepting connections; finishing in-flight requests");
        handle.stop(true).await;
        Ok(())
    }
}

/// Raises the soft limit on open files to the hard limit, so that the
/// connection cap derived from it is as high as the system allows; returns
/// the soft limit in force.
pub fn raise_open_files_limit() -> Option<u64> {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => Some(limit),
        Err(error) => {
            tracing::warn!(%error, "could not raise the open-files limit");
            open_files_limit()
        }
    }
}

fn open_files_limit() -> Option<u64> {
    rlimit::getrlimit(rlimit::Resource::NOFILE)
        .ok()
        .map(|(soft, _)| soft)
}

/// Descriptors kept free of client connections: database connections (a
/// SQLite connection holds up to three files), the listener, the runtime's
/// own, logs and a margin.
fn reserved_descriptors(settings: &Settings) -> u64 {
    u64::from(settings.db_pool_size) * 3 + 64
}

/// Client connections each worker may hold, so that all of them together
/// stay below the open-files limit: past it, new connections wait in the
/// listen backlog instead of making the server fail to open anything.
fn connections_per_worker(settings: &Settings, workers: usize, fd_limit: Option<u64>) -> usize {
    let workers = workers.max(1) as u64;
    let from_limit = fd_limit.map(|limit| limit.saturating_sub(reserved_descriptors(settings)));
    let total = match (settings.max_connections, from_limit) {
        (Some(set), Some(limit)) => set.min(limit),
        (Some(set), None) => set,
        (None, Some(limit)) => limit,
        (None, None) => 25_000 * workers,
    };
    usize::try_from((total / workers).max(1)).unwrap_or(usize::MAX)
}

/// Migrates, binds `settings.bind` and returns the server, not yet awaited.
pub fn start(settings: &Settings) -> Result<Running, StartError> {
    let fd_limit = raise_open_files_limit();
    tracing::debug!(?fd_limit, "open-files limit");
    let applied = Backend::migrate(settings)?;
    if !applied.is_empty() {
        tracing::info!(migrations = ?applied, "applied migrations");
    }
    let backend = Backend::open(settings)?;
    let listener = TcpListener::bind(&settings.bind).map_err(|source| StartError::Bind {
        addr: settings.bind.clone(),
        source,
    })?;
    build(settings, backend, listener)
}

/// Builds the server on an open backend and a bound listener.
pub fn build(
    settings: &Settings,
    backend: Backend,
    listener: TcpListener,
) -> Result<Running, StartError> {
    let addr = listener.local_addr().map_err(|source| StartError::Bind {
        addr: settings.bind.clone(),
        source,
    })?;
    let mut services = backend.services(settings);
    let cache_size = settings.effective_token_cache_size();
    if cache_size == 0 && settings.token_cache_size > 0 {
        tracing::warn!(
            "token cache off: CRM_DB_PREPARED_STATEMENTS=false without CRM_DATABASE_DIRECT_URL \
             leaves the revocation listener no direct connection"
        );
    }
    if let (Backend::Postgres(_), true) = (&backend, cache_size > 0) {
        // PostgreSQL tells every instance about revocations, so validated
        // tokens can be kept here. (On SQLite a token check is an
        // in-process read already, and another process — the CLI deleting a
        // client — could not tell this one.)
        let cache = Arc::new(
            crm_domain::auth::TokenCache::new(cache_size)
                .with_propagation(crm_postgres::revocations::PROPAGATION),
        );
        // LISTEN is session state: never through a transaction-mode pooler.
        crm_postgres::revocations::spawn_revocation_listener(
            settings.direct_url().to_owned(),
            &cache,
        );
        services.auth = services.auth.with_token_cache(cache);
    }
    spawn_token_purge(services.auth.clone());
    spawn_idempotency_purge(services.idempotency.clone());
    spawn_event_maintenance(
        services.events.clone(),
        time::Duration::days(i64::try_from(settings.event_retention_days).unwrap_or(36_500)),
    );
    let auth = services.auth.clone();
    let rate_limiter = crm_http::throttle::ClientRateLimiter::new(
        settings.rate_limit_per_second,
        settings.rate_limit_burst,
    );
    let oauth_failures = crm_http::throttle::FailureThrottle::new(
        settings.oauth_failures_per_minute,
        Duration::from_secs(60),
    );
    spawn_limiter_cleanup(rate_limiter.clone(), oauth_failures.clone());
    let lifecycle = Lifecycle::default();
    let api = ApiSettings {
        utc_offset: settings.utc_offset()?,
        trust_proxy: settings.trust_proxy,
        max_body_bytes: settings.max_body_bytes,
        rate_limiter,
        oauth_failures,
        body_timeout: Duration::from_secs(settings.body_timeout_seconds),
        allowed_hosts: crm_http::edge::AllowedHosts::new(&settings.allowed_hosts),
        lifecycle: lifecycle.clone(),
        segment_streams: crm_http::segment_stream::StreamLimit::default(),
        idempotency_ttl: Duration::from_secs(settings.idempotency_ttl_seconds),
        cursor_settle: Duration::from_millis(settings.cursor_settle_ms),
    };
    let metrics = crm_http::observe::Metrics::new();
    if let Backend::Postgres(store) = &backend {
        if let Some(monitor) = store.replica_monitor() {
            actix_web::rt::spawn(monitor);
            metrics
                .register(Box::new(replica::ReplicaMetrics::new(store.clone())))
                .expect("the replica's metrics are registered once");
        }
    }
    webhooks::DeliveryWorker::new(
        services.webhooks.clone(),
        services.events.clone(),
        webhooks::WorkerConfig {
            timeout: Duration::from_secs(settings.webhook_timeout_seconds),
            schedule: settings.webhook_retry_schedule()?,
            concurrency: usize::try_from(settings.webhook_concurrency).unwrap_or(usize::MAX),
            per_endpoint: usize::try_from(settings.webhook_endpoint_concurrency)
                .unwrap_or(usize::MAX),
            allow_private: settings.webhook_allow_private,
            render: api.render(),
        },
        webhooks::WebhookMetrics::new(&metrics),
    )
    .spawn();
    let workers = settings.workers.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    let per_worker = connections_per_worker(settings, workers, open_files_limit());
    tracing::debug!(workers, per_worker, "connection cap");
    let server = HttpServer::new(move || {
        App::new()
            .wrap(crm_http::normalize_path())
            .wrap(actix_web::middleware::from_fn(crm_http::edge::guard))
            .wrap(actix_web::middleware::from_fn(crm_http::observe::observe))
            .configure(crm_http::configure(
                services.clone(),
                api.clone(),
                metrics.clone(),
            ))
    })
    .workers(workers)
    .max_connections(per_worker)
    .disable_signals()
    .shutdown_timeout(settings.shutdown_timeout_seconds)
    .listen(listener)
    .map_err(|source| StartError::Bind {
        addr: addr.to_string(),
        source,
    })?;
    let server = server.run();
    let handle = server.handle();
    Ok(Running {
        addr,
        server,
        handle,
        lifecycle,
        drain: Duration::from_secs(settings.shutdown_drain_seconds),
        auth,
    })
}
