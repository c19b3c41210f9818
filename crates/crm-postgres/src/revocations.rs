//! Hearing token revocations: a dedicated connection LISTENs on the channel
//! a trigger on `oauth_tokens` notifies at commit whenever a token that has
//! not expired is deleted (a revocation, its client's deletion, the
//! per-client cap), from any server instance or the CLI, and forgets that
//! token in this instance's [`TokenCache`].
//!
//! The cache is live only while the connection is: when it fails, the cache
//! is emptied and bypassed, and when it is back the cache starts empty, so a
//! revocation missed while the channel was down can never be served. The
//! connection is made directly to PostgreSQL (LISTEN is session state, which
//! a transaction-mode pooler does not keep).

use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crm_domain::auth::TokenCache;
use diesel::pg::PgConnection;
use diesel::{Connection, RunQueryDsl};

/// The channel the trigger of migration `2026-12-03-000005` notifies.
pub const REVOCATION_CHANNEL: &str = "crm_token_revoked";

/// How often pending notifications are read. LISTEN needs no round trip:
/// reading what the server already sent costs one non-blocking system call.
pub const POLL_INTERVAL: Duration = Duration::from_millis(5);

/// How long a committed revocation is given to be acted on by every
/// listening instance before the revoking call answers: PostgreSQL sends the
/// notification to all listeners at commit and each reads it within one poll
/// interval; the rest is margin for a listener thread scheduled late on a
/// busy machine. Revocations are rare, so the wait costs little.
pub const PROPAGATION: Duration = Duration::from_millis(50);

/// How often the connection is checked with a query when nothing arrives.
const HEALTH_CHECK_INTERVAL: Duration = Duration::from_secs(1);
/// The longest wait between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Starts the listener thread for `cache`. It runs until the cache is
/// dropped (the server that used it has stopped).
pub fn spawn_revocation_listener(url: String, cache: &Arc<TokenCache>) -> JoinHandle<()> {
    let cache = Arc::downgrade(cache);
    std::thread::Builder::new()
        .name("token-revocations".into())
        .spawn(move || listen(&url, &cache))
        .expect("spawn the token revocation listener")
}

fn connect(url: &str) -> Result<PgConnection, String> {
    let mut conn = PgConnection::establish(url).map_err(|e| e.to_string())?;
    diesel::sql_query(format!("LISTEN {REVOCATION_CHANNEL}"))
        .execute(&mut conn)
        .map_err(|e| e.to_string())?;
    Ok(conn)
}

fn one_line(text: &str) -> String {
    text.replace(|c: char| c.is_control(), " ")
}

fn listen(url: &str, cache: &Weak<TokenCache>) {
    let mut backoff = Duration::from_millis(50);
    let mut failures_unlogged = 0u64;
    loop {
        let Some(live) = cache.upgrade() else { return };
        let mut conn = match connect(url) {
            Ok(conn) => conn,
            Err(error) => {
                live.set_live(false);
                drop(live);
                // One line per streak of failures, then every 30 attempts.
                if failures_unlogged.is_multiple_of(30) {
                    let error = one_line(&error);
                    tracing::warn!(%error, "token revocation channel unavailable; checking every token against the database");
                }
                failures_unlogged += 1;
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        // Listening before going live: nothing revoked from here on is missed.
        live.set_live(true);
        drop(live);
        if failures_unlogged > 0 {
            tracing::info!("token revocation channel back; caching validated tokens again");
        }
        backoff = Duration::from_millis(50);
        let mut checked = Instant::now();
        let error = loop {
            std::thread::sleep(POLL_INTERVAL);
            let Some(live) = cache.upgrade() else { return };
            let mut failed = None;
            for notification in conn.notifications_iter() {
                match notification {
                    Ok(n) => live.invalidate(&n.payload),
                    Err(e) => {
                        failed = Some(e.to_string());
                        break;
                    }
                }
            }
            if failed.is_none() && checked.elapsed() >= HEALTH_CHECK_INTERVAL {
                checked = Instant::now();
                if let Err(e) = diesel::sql_query("SELECT 1").execute(&mut conn) {
                    failed = Some(e.to_string());
                }
            }
            if let Some(error) = failed {
                live.set_live(false);
                break error;
            }
        };
        let error = one_line(&error);
        tracing::warn!(%error, "token revocation channel lost; checking every token against the database until it is back");
        failures_unlogged = 1;
    }
}
