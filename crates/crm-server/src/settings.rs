//! Every setting, from a command-line flag or its environment variable.

use clap::Args;
use time::UtcOffset;

use crate::StartError;

#[derive(Args, Clone, Debug)]
pub struct Settings {
    /// Where data is stored: a postgres:// URL, or the path of an embedded SQLite file.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "crm.sqlite3",
        global = true
    )]
    pub database_url: String,

    /// A direct PostgreSQL URL (not through a transaction-mode pooler) for
    /// what needs a session: migrations and their advisory lock, the token
    /// revocation listener; and for the read replica's monitor. Default:
    /// DATABASE_URL.
    #[arg(long, env = "CRM_DATABASE_DIRECT_URL", global = true)]
    pub database_direct_url: Option<String>,

    /// A streaming replica of the PostgreSQL primary (`postgres://...`) that
    /// answers GET and HEAD requests while it holds the requesting client's
    /// writes and lags less than CRM_REPLICA_MAX_LAG_MS. Default: none.
    #[arg(long, env = "CRM_DATABASE_REPLICA_URL", global = true)]
    pub database_replica_url: Option<String>,

    /// How far (in milliseconds) the replica may lag the primary and still
    /// answer reads; further behind, every read goes to the primary.
    #[arg(long, env = "CRM_REPLICA_MAX_LAG_MS", default_value_t = 1_000, value_parser = clap::value_parser!(u64).range(1..=3_600_000), global = true)]
    pub replica_max_lag_ms: u64,

    /// Cache named prepared statements on pooled PostgreSQL connections; set
    /// false behind PgBouncer < 1.21 in transaction pooling mode.
    #[arg(long, env = "CRM_DB_PREPARED_STATEMENTS", default_value_t = true, action = clap::ArgAction::Set, global = true)]
    pub db_prepared_statements: bool,

    /// Address and port to listen on.
    #[arg(
        long,
        env = "CRM_BIND",
        default_value = "127.0.0.1:8000",
        global = true
    )]
    pub bind: String,

    /// Database connections in the pool.
    #[arg(long, env = "CRM_DB_POOL_SIZE", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1000), global = true)]
    pub db_pool_size: u32,

    /// Seconds a request waits for a database connection before failing with 503.
    #[arg(long, env = "CRM_DB_TIMEOUT_SECONDS", default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=600), global = true)]
    pub db_timeout_seconds: u64,

    /// Lifetime of an access token, in seconds.
    #[arg(long, env = "CRM_TOKEN_TTL_SECONDS", default_value_t = 36000, value_parser = clap::value_parser!(u64).range(1..=31_536_000), global = true)]
    pub token_ttl_seconds: u64,

    /// UTC offset timestamps are rendered in, such as +08:00.
    #[arg(long, env = "CRM_UTC_OFFSET", default_value = "+00:00", global = true)]
    pub utc_offset: String,

    /// Largest accepted request body, in bytes.
    #[arg(long, env = "CRM_MAX_BODY_BYTES", default_value_t = 1024 * 1024, global = true)]
    pub max_body_bytes: usize,

    /// Believe X-Forwarded-Proto / X-Forwarded-Host (only behind a proxy you run).
    #[arg(long, env = "CRM_TRUST_PROXY", default_value_t = false, action = clap::ArgAction::Set, global = true)]
    pub trust_proxy: bool,

    /// Requests per second each OAuth client may make (0: no limit).
    #[arg(
        long,
        env = "CRM_RATE_LIMIT_PER_SECOND",
        default_value_t = 0,
        global = true
    )]
    pub rate_limit_per_second: u32,

    /// Requests a client may make at once before the per-second rate applies (0: one second's worth).
    #[arg(long, env = "CRM_RATE_LIMIT_BURST", default_value_t = 0, global = true)]
    pub rate_limit_burst: u32,

    /// HTTP worker threads (default: one per core).
    #[arg(long, env = "CRM_WORKERS", global = true)]
    pub workers: Option<usize>,

    /// Seconds in-flight requests get to finish on shutdown.
    #[arg(
        long,
        env = "CRM_SHUTDOWN_TIMEOUT_SECONDS",
        default_value_t = 30,
        global = true
    )]
    pub shutdown_timeout_seconds: u64,

    /// Seconds the server keeps serving after SIGTERM or SIGINT, with /readyz
    /// answering 503 and every response closing its connection, so a load
    /// balancer stops sending before the server stops accepting.
    #[arg(long, env = "CRM_SHUTDOWN_DRAIN_SECONDS", default_value_t = 5, value_parser = clap::value_parser!(u64).range(0..=3600), global = true)]
    pub shutdown_drain_seconds: u64,

    /// Seconds a client gets to send a whole request body (408 after).
    #[arg(long, env = "CRM_BODY_TIMEOUT_SECONDS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600), global = true)]
    pub body_timeout_seconds: u64,

    /// Open client connections at most (default: what the file-descriptor
    /// limit leaves after the database pool and a reserve).
    #[arg(long, env = "CRM_MAX_CONNECTIONS", value_parser = clap::value_parser!(u64).range(1..=1_000_000), global = true)]
    pub max_connections: Option<u64>,

    /// Validated access tokens kept in memory (PostgreSQL only; revocations
    /// reach every instance through LISTEN/NOTIFY). 0: check every token
    /// against the database. Off behind a transaction-mode pooler
    /// (`CRM_DB_PREPARED_STATEMENTS=false`) unless `CRM_DATABASE_DIRECT_URL`
    /// gives the listener a direct connection.
    #[arg(long, env = "CRM_TOKEN_CACHE_SIZE", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(0..=10_000_000), global = true)]
    pub token_cache_size: u64,

    /// Live access tokens a client may hold; issuing one more revokes its oldest.
    #[arg(long, env = "CRM_MAX_TOKENS_PER_CLIENT", default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=1_000_000), global = true)]
    pub max_tokens_per_client: u64,

    /// Seconds an `Idempotency-Key` lives from its first request; after
    /// that a request with it runs as new.
    #[arg(long, env = "CRM_IDEMPOTENCY_TTL_SECONDS", default_value_t = 86_400, value_parser = clap::value_parser!(u64).range(60..=31_536_000), global = true)]
    pub idempotency_ttl_seconds: u64,

    /// Milliseconds a write may take from reading the clock to committing:
    /// a cursor walk of the customers in `updated_at` order leaves out
    /// those updated more recently than this until they settle. Keep it
    /// above CRM_DB_TIMEOUT_SECONDS.
    #[arg(long, env = "CRM_CURSOR_SETTLE_MS", default_value_t = 5_000, value_parser = clap::value_parser!(u64).range(0..=600_000), global = true)]
    pub cursor_settle_ms: u64,

    /// Days the change feed keeps an event; older ones are deleted in the
    /// background, and reading after a deleted id is a 410.
    #[arg(long, env = "CRM_EVENT_RETENTION_DAYS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=36_500), global = true)]
    pub event_retention_days: u64,

    /// Let webhook endpoints point at private, loopback, link-local, shared
    /// and unspecified addresses (development and tests only).
    #[arg(long, env = "CRM_WEBHOOK_ALLOW_PRIVATE", default_value_t = false, action = clap::ArgAction::Set, global = true)]
    pub webhook_allow_private: bool,

    /// Seconds a webhook attempt may take, from its start to the response
    /// status; a claim of a delivery lapses this plus 60 seconds after it
    /// was made.
    #[arg(long, env = "CRM_WEBHOOK_TIMEOUT_SECONDS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=300), global = true)]
    pub webhook_timeout_seconds: u64,

    /// Seconds to wait between webhook attempts, comma-separated: after the
    /// n-th failed attempt the next is due the n-th number later; past the
    /// end of the list the delivery has failed.
    #[arg(long, env = "CRM_WEBHOOK_RETRY_SCHEDULE", default_value = crm_domain::webhook::RetrySchedule::DEFAULT, global = true)]
    pub webhook_retry_schedule: String,

    /// Webhook attempts this server makes at once, in all.
    #[arg(long, env = "CRM_WEBHOOK_CONCURRENCY", default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..=10_000), global = true)]
    pub webhook_concurrency: u64,

    /// Webhook attempts this server makes at once to one endpoint, so that a
    /// slow receiver holds no more than these.
    #[arg(long, env = "CRM_WEBHOOK_ENDPOINT_CONCURRENCY", default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=10_000), global = true)]
    pub webhook_endpoint_concurrency: u64,

    /// Failed OAuth client authentications allowed per client id and per
    /// remote address each minute before both are refused with 429 (0: no limit).
    #[arg(
        long,
        env = "CRM_OAUTH_FAILURES_PER_MINUTE",
        default_value_t = 10,
        global = true
    )]
    pub oauth_failures_per_minute: u32,

    /// Comma-separated host names the server answers for (as Django's
    /// ALLOWED_HOSTS: `.example.com` matches subdomains, `*` any); other Host
    /// headers get 400. Empty: any host.
    #[arg(
        long,
        env = "CRM_ALLOWED_HOSTS",
        value_delimiter = ',',
        default_value = "",
        global = true
    )]
    pub allowed_hosts: Vec<String>,
}

impl Settings {
    /// Settings with every default and the given database URL.
    pub fn new(database_url: impl Into<String>) -> Self {
        Self {
            database_url: database_url.into(),
            database_direct_url: None,
            database_replica_url: None,
            replica_max_lag_ms: 1_000,
            db_prepared_statements: true,
            bind: "127.0.0.1:0".into(),
            db_pool_size: 10,
            db_timeout_seconds: 2,
            token_ttl_seconds: 36000,
            utc_offset: "+00:00".into(),
            max_body_bytes: 1024 * 1024,
            trust_proxy: false,
            rate_limit_per_second: 0,
            rate_limit_burst: 0,
            workers: None,
            shutdown_timeout_seconds: 30,
            shutdown_drain_seconds: 5,
            body_timeout_seconds: 10,
            max_connections: None,
            max_tokens_per_client: 100,
            event_retention_days: 30,
            idempotency_ttl_seconds: 86_400,
            cursor_settle_ms: 5_000,
            webhook_allow_private: false,
            webhook_timeout_seconds: 10,
            webhook_retry_schedule: crm_domain::webhook::RetrySchedule::DEFAULT.into(),
            webhook_concurrency: 32,
            webhook_endpoint_concurrency: 4,
            token_cache_size: 10_000,
            oauth_failures_per_minute: 10,
            allowed_hosts: Vec::new(),
        }
    }

    pub fn is_postgres(&self) -> bool {
        is_postgres_url(&self.database_url)
    }

    /// The SQLite file path `database_url` names (`sqlite://` prefix optional).
    pub fn sqlite_path(&self) -> &str {
        let url = self.database_url.as_str();
        url.strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .unwrap_or(url)
    }

    /// The URL of what needs a session of its own (migrations and their
    /// advisory lock, the token revocation listener): `database_direct_url`,
    /// else `database_url`.
    pub fn direct_url(&self) -> &str {
        self.given_direct_url().unwrap_or(&self.database_url)
    }

    /// The read replica's URL, if one is configured (an empty one is none).
    pub fn replica_url(&self) -> Option<&str> {
        self.database_replica_url
            .as_deref()
            .filter(|url| !url.is_empty())
    }

    /// Whether a direct URL of its own is configured (an empty
    /// `database_direct_url` is none).
    pub fn has_direct_url(&self) -> bool {
        self.given_direct_url().is_some()
    }

    fn given_direct_url(&self) -> Option<&str> {
        self.database_direct_url
            .as_deref()
            .filter(|url| !url.is_empty())
    }

    /// The validated tokens to keep in memory: `token_cache_size`, except
    /// behind a transaction-mode pooler (unprepared statements) without a
    /// direct URL, where the revocation listener's LISTEN would go through
    /// the pooler, which swallows it: revocations would never arrive, and a
    /// revoked token would be served from the cache until it expired.
    pub fn effective_token_cache_size(&self) -> usize {
        if !self.db_prepared_statements && !self.has_direct_url() {
            return 0;
        }
        usize::try_from(self.token_cache_size).unwrap_or(usize::MAX)
    }

    /// The database URL with any password replaced, for messages and logs.
    pub fn redacted_database_url(&self) -> String {
        redact_url(&self.database_url)
    }

    /// Parses `utc_offset` (`+08:00`, `-05:30`, `Z`).
    pub fn utc_offset(&self) -> Result<UtcOffset, StartError> {
        parse_offset(&self.utc_offset).ok_or_else(|| {
            StartError::Config(format!(
                "CRM_UTC_OFFSET must look like +08:00 or -05:30, got {:?}",
                self.utc_offset
            ))
        })
    }

    /// Checks every value that clap cannot check alone.
    pub fn validate(&self) -> Result<(), StartError> {
        self.utc_offset()?;
        self.webhook_retry_schedule()?;
        if let Some(replica) = self.replica_url() {
            if !self.is_postgres() {
                return Err(StartError::Config(
                    "CRM_DATABASE_REPLICA_URL needs a PostgreSQL DATABASE_URL".into(),
                ));
            }
            if !is_postgres_url(replica) {
                return Err(StartError::Config(
                    "CRM_DATABASE_REPLICA_URL must be a postgres:// URL".into(),
                ));
            }
        }
        if self.max_body_bytes == 0 {
            return Err(StartError::Config(
                "CRM_MAX_BODY_BYTES must be positive".into(),
            ));
        }
        Ok(())
    }
}

fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.split_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{scheme}://{user}:***@{host}")
        }
        None => url.to_owned(),
    }
}

fn parse_offset(raw: &str) -> Option<UtcOffset> {
    let raw = raw.trim();
    if raw == "Z" || raw == "z" {
        return Some(UtcOffset::UTC);
    }
    let (sign, rest) = match raw.as_bytes().first()? {
        b'+' => (1, &raw[1..]),
        b'-' => (-1, &raw[1..]),
        _ => return None,
    };
    let (h, m) = rest.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let h: i8 = h.parse().ok().filter(|h| *h <= 23)?;
    let m: i8 = m.parse().ok().filter(|m| *m <= 59)?;
    UtcOffset::from_hms(sign * h, sign * m, 0).ok()
}

impl Settings {
    /// The parsed `CRM_WEBHOOK_RETRY_SCHEDULE`.
    pub fn webhook_retry_schedule(&self) -> Result<crm_domain::webhook::RetrySchedule, StartError> {
        crm_domain::webhook::RetrySchedule::parse(&self.webhook_retry_schedule)
            .map_err(|e| StartError::Config(format!("CRM_WEBHOOK_RETRY_SCHEDULE: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets() {
        assert_eq!(parse_offset("+00:00"), Some(UtcOffset::UTC));
        assert_eq!(parse_offset("Z"), Some(UtcOffset::UTC));
        assert_eq!(parse_offset("+08:00"), UtcOffset::from_hms(8, 0, 0).ok());
        assert_eq!(parse_offset("-05:30"), UtcOffset::from_hms(-5, -30, 0).ok());
        assert_eq!(parse_offset("8"), None);
        assert_eq!(parse_offset("+25:00"), None);
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("postgres://crm:secret@db:5432/crm"),
            "postgres://crm:***@db:5432/crm"
        );
        assert_eq!(redact_url("crm.sqlite3"), "crm.sqlite3");
    }

    #[test]
    fn the_token_cache_is_off_behind_a_pooler_without_a_direct_url() {
        let mut settings = Settings::new("postgres://app@127.0.0.1:6432/crm");
        assert_eq!(settings.effective_token_cache_size(), 10_000);
        settings.db_prepared_statements = false;
        assert_eq!(settings.effective_token_cache_size(), 0);
        settings.database_direct_url = Some(String::new());
        assert_eq!(
            settings.effective_token_cache_size(),
            0,
            "an empty direct URL leaves the listener on the pooler"
        );
        settings.database_direct_url = Some("postgres://app@127.0.0.1:5432/crm".into());
        assert_eq!(settings.effective_token_cache_size(), 10_000);
        settings.token_cache_size = 0;
        assert_eq!(settings.effective_token_cache_size(), 0);
    }

    #[test]
    fn migrations_use_the_direct_url_when_one_is_set() {
        let mut settings = Settings::new("postgres://app@127.0.0.1:6432/crm");
        assert_eq!(settings.direct_url(), "postgres://app@127.0.0.1:6432/crm");
        settings.database_direct_url = Some(String::new());
        assert_eq!(settings.direct_url(), "postgres://app@127.0.0.1:6432/crm");
        assert!(!settings.has_direct_url(), "an empty direct URL is none");
        settings.database_direct_url = Some("postgres://app@127.0.0.1:5432/crm".into());
        assert_eq!(settings.direct_url(), "postgres://app@127.0.0.1:5432/crm");
        assert!(settings.has_direct_url());
        assert!(
            settings.db_prepared_statements,
            "prepared statements by default"
        );
    }
}
