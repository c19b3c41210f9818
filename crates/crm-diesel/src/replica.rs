//! Whether reads may go to the read replica: how far it has caught up, and
//! the sessions (see `crm_domain::consistency`) whose writes it may not
//! hold yet.
//!
//! Positions are compared by time, not by log position, so that a read
//! needs no database round trip to decide: a monitor samples the primary's
//! log position now and then, each sample stamped with the time it was
//! *asked for*, and reads the replica's replayed position; the replica has
//! then "caught up to" the latest sample it has replayed past, i.e. it holds
//! every transaction committed before that sample's time. A session that
//! wrote (committed) at `w` may read from the replica once it has caught up
//! to a time after `w`; every session reads from the primary while the
//! replica is down, or further behind than the allowed lag.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Sessions remembered at most; past this the oldest caught-up ones are
/// forgotten, and if every one is still pending, all of them are replaced
/// by one barrier (every session reads from the primary until the replica
/// passes it).
const MAX_SESSIONS: usize = 100_000;
/// Samples of the primary's position kept while the replica lags.
const MAX_SAMPLES: usize = 4_096;

/// The routing state of one replica, shared by the store and its monitor.
#[derive(Debug)]
pub struct ReplicaState {
    epoch: Instant,
    max_lag: Duration,
    /// Microseconds since `epoch` + 1 of the latest sample the replica has
    /// replayed past; 0 before the first.
    caught_up_to: AtomicU64,
    up: AtomicBool,
    /// When each session last committed a write (microseconds since
    /// `epoch`).
    sessions: Mutex<Sessions>,
    reads_replica: AtomicU64,
    reads_primary: AtomicU64,
    fallbacks: AtomicU64,
}

#[derive(Debug, Default)]
struct Sessions {
    last_write: HashMap<Arc<str>, u64>,
    /// Every session's reads wait until the replica has caught up past
    /// this (set when the map overflowed).
    barrier: u64,
}

/// What the monitor last saw, for metrics.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ReplicaStatus {
    /// Whether the replica answered its last probe as a replica.
    pub up: bool,
    /// How far behind the primary it is (the time since the latest primary
    /// position it has replayed was sampled); `None` before the first.
    pub lag: Option<Duration>,
    /// Reads served by the replica, and by the primary instead (in a
    /// session that allowed the replica), since start.
    pub reads_replica: u64,
    pub reads_primary: u64,
    /// Reads routed to the replica that could not get a connection there
    /// and went to the primary.
    pub fallbacks: u64,
}

impl ReplicaState {
    /// A replica not yet seen (reads go to the primary until the monitor
    /// has seen it caught up), allowed to lag `max_lag`.
    pub fn new(max_lag: Duration) -> Self {
        Self {
            epoch: Instant::now(),
            max_lag,
            caught_up_to: AtomicU64::new(0),
            up: AtomicBool::new(false),
            sessions: Mutex::new(Sessions::default()),
            reads_replica: AtomicU64::new(0),
            reads_primary: AtomicU64::new(0),
            fallbacks: AtomicU64::new(0),
        }
    }

    /// Microseconds since the epoch, now.
    pub fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    /// `session` committed a write just now.
    pub fn wrote(&self, session: &Arc<str>) {
        let now = self.now();
        let caught_up = self.caught_up_to.load(Ordering::Acquire);
        let mut sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        if sessions.last_write.len() >= MAX_SESSIONS && !sessions.last_write.contains_key(session) {
            // Forget what the replica already holds; if that is not
            // enough, one barrier stands for everyone.
            sessions.last_write.retain(|_, w| *w + 1 >= caught_up);
            if sessions.last_write.len() >= MAX_SESSIONS {
                let newest = sessions.last_write.values().copied().max().unwrap_or(0);
                sessions.barrier = sessions.barrier.max(newest);
                sessions.last_write.clear();
            }
        }
        sessions.last_write.insert(session.clone(), now);
    }

    /// Whether a read of `session` may go to the replica now.
    pub fn serves(&self, session: &str) -> bool {
        if !self.up.load(Ordering::Acquire) {
            return false;
        }
        // Stored as time + 1, so that 0 is "never".
        let Some(caught_up) = self.caught_up_to.load(Ordering::Acquire).checked_sub(1) else {
            return false;
        };
        if self.now().saturating_sub(caught_up) > self.max_lag_micros() {
            return false;
        }
        let sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        let wrote = sessions.last_write.get(session).copied();
        caught_up > sessions.barrier.max(wrote.unwrap_or(0))
            || (wrote.is_none() && sessions.barrier == 0)
    }

    fn max_lag_micros(&self) -> u64 {
        u64::try_from(self.max_lag.as_micros()).unwrap_or(u64::MAX)
    }

    /// Counts a read of a session that allowed the replica.
    pub fn count_read(&self, on_replica: bool) {
        let counter = if on_replica {
            &self.reads_replica
        } else {
            &self.reads_primary
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// A read routed to the replica got no connection there: it goes to
    /// the primary, and so do the others until the monitor sees the
    /// replica again.
    pub fn fell_back(&self) {
        self.fallbacks.fetch_add(1, Ordering::Relaxed);
        self.up.store(false, Ordering::Release);
    }

    /// What the monitor last saw.
    pub fn status(&self) -> ReplicaStatus {
        let caught_up = self.caught_up_to.load(Ordering::Acquire).checked_sub(1);
        ReplicaStatus {
            up: self.up.load(Ordering::Acquire),
            lag: caught_up.map(|t| Duration::from_micros(self.now().saturating_sub(t))),
            reads_replica: self.reads_replica.load(Ordering::Relaxed),
            reads_primary: self.reads_primary.load(Ordering::Relaxed),
            fallbacks: self.fallbacks.load(Ordering::Relaxed),
        }
    }
}

/// The monitor's memory: samples of the primary's position, oldest first.
#[derive(Debug, Default)]
pub struct Samples {
    /// (time asked, log position), both non-decreasing.
    samples: VecDeque<(u64, u64)>,
}

impl Samples {
    /// The primary was at `position` (or later) when asked at `asked`
    /// (from [`ReplicaState::now`], read *before* asking).
    pub fn primary_at(&mut self, asked: u64, position: u64) {
        match self.samples.back_mut() {
            // Nothing written since: the later time says more.
            Some(last) if last.1 >= position => last.0 = last.0.max(asked),
            _ => {
                if self.samples.len() >= MAX_SAMPLES {
                    // Dropping the oldest only makes the answer older:
                    // safe.
                    self.samples.pop_front();
                }
                self.samples.push_back((asked, position));
            }
        }
    }

    /// The replica has replayed up to `position`: records in `state` the
    /// latest sample it has passed, and that it is up.
    pub fn replica_at(&mut self, state: &ReplicaState, position: u64) {
        while self.samples.len() > 1 && self.samples[1].1 <= position {
            self.samples.pop_front();
        }
        if let Some(&(asked, sampled)) = self.samples.front() {
            if sampled <= position {
                state
                    .caught_up_to
                    .fetch_max(asked.saturating_add(1), Ordering::AcqRel);
            }
        }
        state.up.store(true, Ordering::Release);
    }

    /// The replica did not answer as a replica.
    pub fn replica_down(&mut self, state: &ReplicaState) {
        state.up.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(max_lag_ms: u64) -> ReplicaState {
        ReplicaState::new(Duration::from_millis(max_lag_ms))
    }

    #[test]
    fn nothing_goes_to_a_replica_before_it_is_seen_caught_up() {
        let state = state(1_000);
        assert!(!state.serves("a"));
        let mut samples = Samples::default();
        samples.primary_at(state.now(), 100);
        assert!(!state.serves("a"), "sampled, but the replica not seen");
        samples.replica_at(&state, 99);
        assert!(!state.serves("a"), "the replica is behind the only sample");
        samples.replica_at(&state, 100);
        assert!(state.serves("a"));
    }

    #[test]
    fn a_session_that_wrote_waits_for_a_sample_taken_after_its_write() {
        let state = state(60_000);
        let mut samples = Samples::default();
        samples.primary_at(state.now(), 100);
        samples.replica_at(&state, 100);
        let writer: Arc<str> = Arc::from("writer");
        std::thread::sleep(Duration::from_millis(2));
        state.wrote(&writer);
        assert!(!state.serves("writer"));
        assert!(state.serves("other"), "others are not held back");
        // The next sample shows the write's position; the replica has not
        // replayed it.
        std::thread::sleep(Duration::from_millis(2));
        samples.primary_at(state.now(), 200);
        samples.replica_at(&state, 150);
        assert!(!state.serves("writer"));
        samples.replica_at(&state, 200);
        assert!(state.serves("writer"));
    }

    #[test]
    fn a_replica_further_behind_than_the_limit_serves_no_one() {
        let state = state(20);
        let mut samples = Samples::default();
        samples.primary_at(state.now(), 100);
        samples.replica_at(&state, 100);
        assert!(state.serves("a"));
        // The primary moves on; the replica stays.
        std::thread::sleep(Duration::from_millis(30));
        samples.primary_at(state.now(), 200);
        samples.replica_at(&state, 100);
        assert!(!state.serves("a"), "lag {:?}", state.status().lag);
        samples.primary_at(state.now(), 200);
        samples.replica_at(&state, 200);
        assert!(state.serves("a"));
    }

    #[test]
    fn an_idle_primary_keeps_a_replica_current() {
        let state = state(20);
        let mut samples = Samples::default();
        for _ in 0..3 {
            std::thread::sleep(Duration::from_millis(15));
            samples.primary_at(state.now(), 100);
            samples.replica_at(&state, 100);
        }
        assert!(state.serves("a"));
        assert_eq!(samples.samples.len(), 1, "one sample per position");
    }

    #[test]
    fn a_replica_down_or_failing_serves_no_one() {
        let state = state(1_000);
        let mut samples = Samples::default();
        samples.primary_at(state.now(), 100);
        samples.replica_at(&state, 100);
        samples.replica_down(&state);
        assert!(!state.serves("a"));
        samples.replica_at(&state, 100);
        assert!(state.serves("a"));
        state.fell_back();
        assert!(!state.serves("a"));
        assert_eq!(state.status().fallbacks, 1);
    }

    #[test]
    fn overflowing_sessions_become_one_barrier() {
        let state = state(60_000);
        let mut samples = Samples::default();
        samples.primary_at(state.now(), 1);
        samples.replica_at(&state, 1);
        for n in 0..MAX_SESSIONS + 1 {
            state.wrote(&Arc::from(format!("s{n}").as_str()));
        }
        assert!(
            state.sessions.lock().unwrap().last_write.len() <= MAX_SESSIONS,
            "bounded"
        );
        assert!(!state.serves("s0"), "forgotten, but behind the barrier");
        assert!(!state.serves("never-wrote"), "the barrier holds everyone");
        std::thread::sleep(Duration::from_millis(1));
        samples.primary_at(state.now(), 2);
        samples.replica_at(&state, 2);
        assert!(state.serves("s0"));
        assert!(state.serves("never-wrote"));
    }
}
