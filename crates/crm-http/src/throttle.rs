//! Per-client rate limits: a token bucket per OAuth client (GCRA, from the
//! `governor` crate), shared by every worker. Off unless configured. And the
//! throttle on failed OAuth client authentication, per client id and per
//! remote address.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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

/// What a failed-authentication counter is kept for.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum FailureKey {
    /// The client id that was presented.
    Client(String),
    /// The remote address the attempt came from.
    Address(String),
}

/// Failures counted in one fixed window.
#[derive(Clone, Copy, Debug)]
struct Window {
    started: Instant,
    failures: u32,
}

/// Counts failed OAuth client authentications per client id and per remote
/// address in fixed windows; once a key has failed `max_failures` times in
/// its window, every attempt for it is refused (429) until the window ends,
/// before the credentials are even checked, so a correct guess after the
/// limit gains nothing.
///
/// `governor` (used for the per-client request rate) cannot express this: it
/// has no way to ask whether a key is exhausted without spending a cell, and
/// successful attempts must not count here.
///
/// Memory is bounded: at most `MAX_KEYS` keys are tracked; when full, expired
/// windows are dropped first, then the oldest window.
#[derive(Clone, Debug)]
pub struct FailureThrottle {
    max_failures: u32,
    window: Duration,
    keys: Arc<Mutex<HashMap<FailureKey, Window>>>,
}

impl FailureThrottle {
    /// Keys tracked at most; each costs well under 200 bytes.
    pub const MAX_KEYS: usize = 100_000;

    /// `None` when `max_failures` is 0 (no throttle).
    pub fn new(max_failures: u32, window: Duration) -> Option<Self> {
        (max_failures > 0 && !window.is_zero()).then(|| Self {
            max_failures,
            window,
            keys: Arc::default(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<FailureKey, Window>> {
        // A panic while holding the lock leaves only counters behind.
        self.keys.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `Err(wait)` when any of `keys` has used up its failures in the current
    /// window; `wait` is how long until the last of them ends.
    pub fn check(&self, keys: &[FailureKey]) -> Result<(), Duration> {
        let now = Instant::now();
        let map = self.lock();
        let wait = keys
            .iter()
            .filter_map(|key| map.get(key))
            .filter(|w| w.failures >= self.max_failures)
            .filter_map(|w| (w.started + self.window).checked_duration_since(now))
            .filter(|left| !left.is_zero())
            .max();
        wait.map_or(Ok(()), Err)
    }

    /// Counts one failed attempt against each of `keys`.
    pub fn record_failure(&self, keys: &[FailureKey]) {
        let now = Instant::now();
        let mut map = self.lock();
        for key in keys {
            if !map.contains_key(key) && map.len() >= Self::MAX_KEYS {
                self.make_room(&mut map, now);
            }
            let window = map.entry(key.clone()).or_insert(Window {
                started: now,
                failures: 0,
            });
            if now.duration_since(window.started) >= self.window {
                *window = Window {
                    started: now,
                    failures: 0,
                };
            }
            window.failures = window.failures.saturating_add(1);
        }
    }

    fn make_room(&self, map: &mut HashMap<FailureKey, Window>, now: Instant) {
        map.retain(|_, w| now.duration_since(w.started) < self.window);
        if map.len() >= Self::MAX_KEYS {
            if let Some(oldest) = map
                .iter()
                .min_by_key(|(_, w)| w.started)
                .map(|(k, _)| k.clone())
            {
                map.remove(&oldest);
            }
        }
    }

    /// Drops windows that have ended.
    pub fn shrink(&self) {
        let now = Instant::now();
        self.lock()
            .retain(|_, w| now.duration_since(w.started) < self.window);
    }

    /// Keys currently tracked.
    pub fn tracked(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_lock_a_key_until_its_window_ends() {
        let throttle = FailureThrottle::new(2, Duration::from_millis(200)).unwrap();
        let a = [
            FailureKey::Client("a".into()),
            FailureKey::Address("1".into()),
        ];
        assert!(throttle.check(&a).is_ok());
        throttle.record_failure(&a);
        assert!(throttle.check(&a).is_ok(), "one failure is allowed");
        throttle.record_failure(&a);
        let wait = throttle.check(&a).unwrap_err();
        assert!(wait <= Duration::from_millis(200));
        // The address is locked for every client id, and the id from any address.
        assert!(throttle
            .check(&[
                FailureKey::Client("b".into()),
                FailureKey::Address("1".into())
            ])
            .is_err());
        assert!(throttle
            .check(&[
                FailureKey::Client("a".into()),
                FailureKey::Address("2".into())
            ])
            .is_err());
        assert!(throttle
            .check(&[
                FailureKey::Client("b".into()),
                FailureKey::Address("2".into())
            ])
            .is_ok());
        std::thread::sleep(Duration::from_millis(250));
        assert!(throttle.check(&a).is_ok(), "a new window");
        throttle.shrink();
        assert_eq!(throttle.tracked(), 0);
    }

    #[test]
    fn zero_means_no_failure_throttle() {
        assert!(FailureThrottle::new(0, Duration::from_secs(60)).is_none());
    }

    #[test]
    fn tracked_keys_are_bounded() {
        let throttle = FailureThrottle::new(1, Duration::from_secs(60)).unwrap();
        for i in 0..FailureThrottle::MAX_KEYS + 10 {
            throttle.record_failure(&[FailureKey::Address(i.to_string())]);
        }
        assert_eq!(throttle.tracked(), FailureThrottle::MAX_KEYS);
    }

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
