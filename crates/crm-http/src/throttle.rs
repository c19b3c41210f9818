//! Per-client rate limits: a token bucket per OAuth client (GCRA, from the
//! `governor` crate), shared by every worker. Off unless configured.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Refills `per_second` requests a second, up to `burst` at once.
#[derive(Clone)]
pub struct ClientRateLimiter {
    limiter: Arc<DefaultKeyedRateLimiter<String>>,
    clock: DefaultClock,
    per_second: u32,
    burst: u32,
}

impl std::fmt::Debug for ClientRateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientRateLimiter")
            .field("per_second", &self.per_second)
            .field("burst", &self.burst)
            .finish()
    }
}

impl ClientRateLimiter {
    /// `None` when `per_second` is 0 (no limit). A burst of 0 means one
    /// second's worth.
    pub fn new(per_second: u32, burst: u32) -> Option<Self> {
        let rate = NonZeroU32::new(per_second)?;
        let burst = NonZeroU32::new(burst).unwrap_or(rate);
        let quota = Quota::per_second(rate).allow_burst(burst);
        Some(Self {
            limiter: Arc::new(RateLimiter::keyed(quota)),
            clock: DefaultClock::default(),
            per_second: rate.get(),
            burst: burst.get(),
        })
    }

    /// `Ok` when `client` may make a request now; otherwise how long until
    /// it may.
    pub fn check(&self, client: &str) -> Result<(), Duration> {
        self.limiter
            .check_key(&client.to_owned())
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    /// Forgets clients whose buckets are full again (bounded memory).
    pub fn shrink(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_means_no_limit() {
        assert!(ClientRateLimiter::new(0, 10).is_none());
    }

    #[test]
    fn burst_then_refusal_per_client() {
        let limiter = ClientRateLimiter::new(1, 2).unwrap();
        assert!(limiter.check("a").is_ok());
        assert!(limiter.check("a").is_ok());
        let wait = limiter.check("a").unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(1));
        // Another client has its own bucket.
        assert!(limiter.check("b").is_ok());
    }
}
