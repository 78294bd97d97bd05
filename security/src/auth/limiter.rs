//! Events counted per key in a fixed window. Logins and codes, per account and per
//! client address: each attempt counts as a failure *before* it is checked (`begin`)
//! and is taken back when it succeeds (`forgive`), so that guesses sent in parallel are
//! all counted before any is verified; past the limit every attempt is refused with the
//! seconds to wait, before any password is checked, so a brute force learns nothing and
//! costs no Argon2 work. Requests per API key, each key with its own limit (`admit`).

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// Entries kept at most; expired ones are dropped first when it is reached, so a flood
/// of made-up accounts cannot grow the map without bound.
const MAX_ENTRIES: usize = 100_000;

/// A map of per-key state, however a panic elsewhere left its lock: every update is one
/// statement, so what it holds is sound, and a panic must not turn limiting off.
pub(super) fn lock<T>(entries: &Mutex<T>) -> MutexGuard<'_, T> {
    entries.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The entry of `key` in a map of per-key state that expires: `fresh()` when there is
/// none or it is no longer `live`. At `MAX_ENTRIES`, entries no longer live go first
/// and, were all of them live, the map starts over.
pub(super) fn current_entry<'a, V>(
    entries: &'a mut HashMap<String, V>,
    key: &str,
    live: impl Fn(&V) -> bool,
    fresh: impl Fn() -> V,
) -> &'a mut V {
    if entries.len() >= MAX_ENTRIES && !entries.contains_key(key) {
        entries.retain(|_, value| live(value));
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
    }
    let entry = entries.entry(key.to_owned()).or_insert_with(&fresh);
    if !live(entry) {
        *entry = fresh();
    }
    entry
}

pub struct FailureLimiter {
    max_failures: u32,
    window: Duration,
    entries: Mutex<HashMap<String, (Instant, u32)>>,
}

impl FailureLimiter {
    pub fn new(max_failures: u32, window: Duration) -> Self {
        Self {
            max_failures: max_failures.max(1),
            window,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// Counts an attempt of `key` as failed until [`forgive`](Self::forgive) takes it
    /// back; `Err(seconds to wait)` when `key` has used up its failures in this window.
    pub fn begin(&self, key: &str) -> Result<(), u64> {
        self.admit(key, self.max_failures)
    }

    /// Takes back an attempt `begin` counted: it succeeded.
    pub fn forgive(&self, key: &str) {
        let mut entries = lock(&self.entries);
        if let Some((started, count)) = entries.get_mut(key)
            && started.elapsed() < self.window
        {
            *count = count.saturating_sub(1);
        }
    }

    /// Counts one event of `key`, refused with the seconds to wait once `limit` events
    /// happened in this window.
    pub fn admit(&self, key: &str, limit: u32) -> Result<(), u64> {
        let mut entries = lock(&self.entries);
        let window = self.window;
        let entry = current_entry(
            &mut entries,
            key,
            |(started, _)| started.elapsed() < window,
            || (Instant::now(), 0),
        );
        if entry.1 >= limit {
            return Err((window.saturating_sub(entry.0.elapsed())).as_secs().max(1));
        }
        entry.1 += 1;
        Ok(())
    }
}

/// Failures of one account, spaced out instead of locked: past `free` failures, each
/// attempt must come twice as long after the last as the one before it did, up to
/// `max_wait`. Whoever keeps failing on purpose slows the account's sign-ins to one per
/// `max_wait`; they can never lock its owner out. Quiet for `window`, it starts over;
/// a success clears it. Like `FailureLimiter::begin`, an attempt counts before it is
/// checked, so parallel guesses wait their turn.
pub struct Backoff {
    free: u32,
    max_wait: Duration,
    window: Duration,
    /// By key: failures counted, and when the last attempt was let through.
    entries: Mutex<HashMap<String, (u32, Instant)>>,
}

impl Backoff {
    pub fn new(free: u32, max_wait: Duration, window: Duration) -> Self {
        Self {
            free: free.max(1),
            max_wait,
            window,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// Counts an attempt of `key`; `Err(seconds to wait)` while its back-off lasts.
    pub fn begin(&self, key: &str) -> Result<(), u64> {
        let mut entries = lock(&self.entries);
        let window = self.window;
        let entry = current_entry(
            &mut entries,
            key,
            |(_, last)| last.elapsed() < window,
            || (0, Instant::now()),
        );
        if let Some(beyond) = entry.0.checked_sub(self.free) {
            let wait = Duration::from_secs(1u64 << beyond.min(16)).min(self.max_wait);
            let since = entry.1.elapsed();
            if since < wait {
                return Err((wait - since).as_secs().max(1));
            }
        }
        *entry = (entry.0 + 1, Instant::now());
        Ok(())
    }

    /// The attempt succeeded: the account starts over.
    pub fn forgive(&self, key: &str) {
        let mut entries = lock(&self.entries);
        entries.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_past_its_free_failures_backs_off_and_is_never_locked_for_long() {
        let backoff = Backoff::new(2, Duration::from_secs(60), Duration::from_secs(300));
        assert_eq!(backoff.begin("admin"), Ok(()));
        assert_eq!(backoff.begin("admin"), Ok(()));
        // Third attempt: one second after the last; a guess in parallel waits too.
        assert_eq!(backoff.begin("admin"), Err(1));
        assert_eq!(backoff.begin("bob"), Ok(()), "other accounts are untouched");
        backoff.forgive("admin");
        assert_eq!(backoff.begin("admin"), Ok(()), "a success starts over");
        // The wait doubles per failure but stops at `max_wait`.
        let capped = Backoff::new(1, Duration::from_secs(4), Duration::from_secs(300));
        capped
            .entries
            .lock()
            .unwrap()
            .insert("x".into(), (40, Instant::now() - Duration::from_secs(5)));
        assert_eq!(capped.begin("x"), Ok(()), "never more than max_wait");
        assert!(capped.begin("x").is_err_and(|wait| wait <= 4));
    }

    #[test]
    fn past_the_limit_a_key_waits_and_others_do_not() {
        let limiter = FailureLimiter::new(3, Duration::from_secs(60));
        for _ in 0..3 {
            assert_eq!(limiter.begin("ada"), Ok(()));
        }
        let wait = limiter.begin("ada").unwrap_err();
        assert!((1..=60).contains(&wait), "{wait}");
        assert_eq!(limiter.begin("bob"), Ok(()));
        let short = FailureLimiter::new(1, Duration::from_millis(50));
        assert_eq!(short.begin("x"), Ok(()));
        assert!(
            short.begin("x").is_err_and(|wait| wait <= 1),
            "refused for the window"
        );
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(short.begin("x"), Ok(()), "the window passed");
    }

    #[test]
    fn attempts_count_before_they_are_checked_and_successes_are_taken_back() {
        let limiter = FailureLimiter::new(2, Duration::from_secs(60));
        // Two guesses in flight at once: both counted, so a third is refused before
        // either was verified.
        assert_eq!(limiter.begin("ada"), Ok(()));
        assert_eq!(limiter.begin("ada"), Ok(()));
        assert!(limiter.begin("ada").is_err());
        // One of them was the right password.
        limiter.forgive("ada");
        assert_eq!(limiter.begin("ada"), Ok(()));
    }

    #[test]
    fn each_key_is_admitted_up_to_its_own_limit() {
        let limiter = FailureLimiter::new(1, Duration::from_secs(60));
        for _ in 0..3 {
            assert!(limiter.admit("key-a", 3).is_ok());
        }
        assert!(
            limiter
                .admit("key-a", 3)
                .is_err_and(|wait| (1..=60).contains(&wait)),
            "the fourth failure of key-a is refused until the window passes"
        );
        assert!(
            limiter.admit("key-b", 10).is_ok(),
            "another key has its own count"
        );
    }
}
