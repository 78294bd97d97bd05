//! Events counted per key in a fixed window. Failed logins and codes, per account and
//! per client address: past the limit every attempt is refused with the seconds to
//! wait, before any password is checked, so a brute force learns nothing and costs no
//! Argon2 work. Requests per API key, each key with its own limit (`admit`).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Entries kept at most; expired ones are dropped first when it is reached, so a flood
/// of made-up accounts cannot grow the map without bound.
const MAX_ENTRIES: usize = 100_000;

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

    /// `Err(seconds to wait)` when `key` has used up its failures in this window.
    pub fn check(&self, key: &str) -> Result<(), u64> {
        let Ok(entries) = self.entries.lock() else {
            return Ok(());
        };
        match entries.get(key) {
            Some((started, failures)) if *failures >= self.max_failures => {
                let elapsed = started.elapsed();
                if elapsed < self.window {
                    Err((self.window - elapsed).as_secs().max(1))
                } else {
                    Ok(())
                }
            }
            _ => Ok(()),
        }
    }

    pub fn fail(&self, key: &str) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        Self::current(&mut entries, key, self.window).1 += 1;
    }

    /// Counts one event of `key`, refused with the seconds to wait once `limit` events
    /// happened in this window.
    pub fn admit(&self, key: &str, limit: u32) -> Result<(), u64> {
        let Ok(mut entries) = self.entries.lock() else {
            return Ok(());
        };
        let window = self.window;
        let entry = Self::current(&mut entries, key, window);
        if entry.1 >= limit {
            return Err((window.saturating_sub(entry.0.elapsed())).as_secs().max(1));
        }
        entry.1 += 1;
        Ok(())
    }

    /// The entry of `key` in the current window (a fresh one when its window passed).
    fn current<'a>(
        entries: &'a mut HashMap<String, (Instant, u32)>,
        key: &str,
        window: Duration,
    ) -> &'a mut (Instant, u32) {
        if entries.len() >= MAX_ENTRIES && !entries.contains_key(key) {
            entries.retain(|_, (started, _)| started.elapsed() < window);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        let now = Instant::now();
        let entry = entries.entry(key.to_string()).or_insert((now, 0));
        if entry.0.elapsed() >= window {
            *entry = (now, 0);
        }
        entry
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn past_the_limit_a_key_waits_and_others_do_not() {
        let limiter = FailureLimiter::new(3, Duration::from_secs(60));
        for _ in 0..3 {
            assert!(limiter.check("ada").is_ok());
            limiter.fail("ada");
        }
        let wait = limiter.check("ada").unwrap_err();
        assert!((1..=60).contains(&wait), "{wait}");
        assert!(limiter.check("bob").is_ok());
        let short = FailureLimiter::new(1, Duration::from_millis(50));
        short.fail("x");
        assert!(
            short.check("x").is_err_and(|wait| wait <= 1),
            "refused for the window"
        );
        std::thread::sleep(Duration::from_millis(60));
        assert!(short.check("x").is_ok(), "the window passed");
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
