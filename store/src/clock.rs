//! Time in milliseconds since the Unix epoch: what events and records store, and where
//! it comes from. Code that decides by time (expiry, deadlines) takes a [`Clock`], so its
//! tests can move time instead of waiting for it.

use std::sync::atomic::{AtomicI64, Ordering};

/// The wall clock's time.
pub fn now_ms() -> i64 {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX)
}

/// Where time comes from.
pub trait Clock: Send + Sync + 'static {
    fn now_ms(&self) -> i64;

    fn now_secs(&self) -> u64 {
        u64::try_from(self.now_ms().max(0) / 1000).unwrap_or(0)
    }
}

/// The wall clock: what a node runs on.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        now_ms()
    }
}

/// The wall time when it was made, moved on by tokio's clock since: it keeps in step
/// with timers and sleeps, so under paused tokio time (`start_paused` tests) a run's
/// retries and deadlines come due exactly when its timers fire, without waiting.
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    wall_ms: i64,
    started: tokio::time::Instant,
}

impl TokioClock {
    pub fn new() -> Self {
        Self {
            wall_ms: now_ms(),
            started: tokio::time::Instant::now(),
        }
    }
}

impl Default for TokioClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for TokioClock {
    fn now_ms(&self) -> i64 {
        let elapsed = i64::try_from(self.started.elapsed().as_millis()).unwrap_or(i64::MAX);
        self.wall_ms.saturating_add(elapsed)
    }
}

/// A clock that moves only when told to: for tests and simulations.
#[derive(Debug)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    pub fn starting_at(ms: i64) -> Self {
        Self(AtomicI64::new(ms))
    }

    pub fn advance_secs(&self, secs: i64) {
        self.0.fetch_add(secs * 1000, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}
