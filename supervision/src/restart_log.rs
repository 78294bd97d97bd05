//! The restart-intensity rule: at most `max_restarts` within any window of `period`.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartPolicy {
    pub max_restarts: u32,
    pub period: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Restart,
    /// Too many failures in the period: stop restarting and tell the parent.
    Escalate,
}

/// Failure times of one child within the current window.
#[derive(Debug, Clone, Default)]
pub struct RestartLog {
    failures: VecDeque<Instant>,
}

impl RestartLog {
    pub fn record_failure(&mut self, now: Instant, policy: RestartPolicy) -> Verdict {
        while self
            .failures
            .front()
            .is_some_and(|failed| now.duration_since(*failed) >= policy.period)
        {
            self.failures.pop_front();
        }
        self.failures.push_back(now);
        if self.failures.len() > policy.max_restarts as usize {
            Verdict::Escalate
        } else {
            Verdict::Restart
        }
    }

    pub fn recent_failures(&self) -> usize {
        self.failures.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: RestartPolicy = RestartPolicy {
        max_restarts: 2,
        period: Duration::from_secs(10),
    };

    #[test]
    fn restarts_up_to_the_intensity_then_escalates() {
        let start = Instant::now();
        let mut log = RestartLog::default();
        assert_eq!(log.record_failure(start, POLICY), Verdict::Restart);
        assert_eq!(
            log.record_failure(start + Duration::from_secs(1), POLICY),
            Verdict::Restart
        );
        assert_eq!(
            log.record_failure(start + Duration::from_secs(2), POLICY),
            Verdict::Escalate
        );
    }

    #[test]
    fn failures_older_than_the_period_are_forgotten() {
        let start = Instant::now();
        let mut log = RestartLog::default();
        for second in [0, 1, 11, 12] {
            assert_eq!(
                log.record_failure(start + Duration::from_secs(second), POLICY),
                Verdict::Restart,
                "failure at {second}s"
            );
        }
        assert_eq!(log.recent_failures(), 2);
    }
}
