//! Builds and runs the CRM server: reads the settings, picks the storage
//! adapter, wires the domain services into the HTTP layer, and serves. No
//! business rule lives here.

pub mod settings;

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::{Server, ServerHandle};
use actix_web::{App, HttpServer};
use crm_domain::auth::{AuthService, ClientStore, TokenStore};
use crm_domain::customer::{
    AddressRepository, CouponRepository, CustomerRepository, CustomerService, HealthCheck,
};
use crm_domain::segment::{SegmentRepository, SegmentService};
use crm_domain::RepoError;
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

/// Every port a backend implements.
trait Store:
    CustomerRepository
    + AddressRepository
    + CouponRepository
    + SegmentRepository
    + ClientStore
    + TokenStore
    + HealthCheck
{
}

impl<T> Store for T where
    T: CustomerRepository
        + AddressRepository
        + CouponRepository
        + SegmentRepository
        + ClientStore
        + TokenStore
        + HealthCheck
{
}

fn services_over<S: Store>(store: Arc<S>, token_ttl: time::Duration) -> Services {
    Services {
        customers: CustomerService::new(store.clone(), store.clone(), store.clone()),
        segments: SegmentService::new(store.clone()),
        auth: AuthService::new(store.clone(), store.clone(), token_ttl),
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
            return Ok(PgStore::migrate(&settings.database_url)?);
        }
        Ok(SqliteStore::migrate(settings.sqlite_path())?)
    }

    /// The domain services over this backend.
    pub fn services(&self, settings: &Settings) -> Services {
        let ttl =
            time::Duration::seconds(i64::try_from(settings.token_ttl_seconds).unwrap_or(i64::MAX));
        match self {
            Self::Postgres(store) => services_over(Arc::new(store.clone()), ttl),
            Self::Sqlite(store) => services_over(Arc::new(store.clone()), ttl),
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

/// Forgets idle clients' rate-limit buckets now and then.
fn spawn_limiter_cleanup(limiter: crm_http::throttle::ClientRateLimiter) {
    actix_web::rt::spawn(async move {
        let mut interval = actix_web::rt::time::interval(Duration::from_secs(60));
        loop {
            interval.tick().await;
            limiter.shrink();
        }
    });
}

/// A server that is listening; await `server` to run it.
pub struct Running {
    pub addr: SocketAddr,
    pub server: Server,
    pub handle: ServerHandle,
}

/// Migrates, binds `settings.bind` and returns the server, not yet awaited.
pub fn start(settings: &Settings) -> Result<Running, StartError> {
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
    let services = backend.services(settings);
    spawn_token_purge(services.auth.clone());
    let rate_limiter = crm_http::throttle::ClientRateLimiter::new(
        settings.rate_limit_per_second,
        settings.rate_limit_burst,
    );
    if let Some(limiter) = rate_limiter.clone() {
        spawn_limiter_cleanup(limiter);
    }
    let api = ApiSettings {
        utc_offset: settings.utc_offset()?,
        trust_proxy: settings.trust_proxy,
        max_body_bytes: settings.max_body_bytes,
        rate_limiter,
        segment_streams: crm_http::segment_stream::StreamLimit::default(),
    };
    let metrics = crm_http::observe::Metrics::new();
    let mut server = HttpServer::new(move || {
        App::new()
            .wrap(crm_http::normalize_path())
            .wrap(actix_web::middleware::from_fn(crm_http::observe::observe))
            .configure(crm_http::configure(
                services.clone(),
                api.clone(),
                metrics.clone(),
            ))
    })
    .shutdown_timeout(settings.shutdown_timeout_seconds)
    .listen(listener)
    .map_err(|source| StartError::Bind {
        addr: addr.to_string(),
        source,
    })?;
    if let Some(workers) = settings.workers {
        server = server.workers(workers);
    }
    let server = server.run();
    let handle = server.handle();
    Ok(Running {
        addr,
        server,
        handle,
    })
}
