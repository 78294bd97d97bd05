//! Retry delays: exponential in the attempt number, capped, with "equal jitter" (half
//! fixed, half random) so retries of many tasks do not arrive in lockstep.

use rand::Rng;

/// Delay before attempt `next_attempt` (2 for the first retry).
pub fn retry_delay_ms(next_attempt: u32, base_ms: u64, max_ms: u64) -> u64 {
    let exponent = next_attempt.saturating_sub(2).min(32);
    let delay = base_ms.saturating_mul(1u64 << exponent).min(max_ms);
    let half = delay / 2;
    half + rand::rng().random_range(0..=half)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_exponentially_within_jitter_and_stops_at_the_cap() {
        for _ in 0..100 {
            let first = retry_delay_ms(2, 100, 10_000);
            assert!((50..=100).contains(&first), "{first}");
            let third = retry_delay_ms(4, 100, 10_000);
            assert!((200..=400).contains(&third), "{third}");
            let capped = retry_delay_ms(60, 100, 10_000);
            assert!((5_000..=10_000).contains(&capped), "{capped}");
        }
    }
}
