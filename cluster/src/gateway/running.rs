//! The attempts a gateway runs for other nodes' runs, and the watch that cancels those
//! their run no longer wants. A run taken over by a new owner (a newer epoch) resumes
//! its attempt: sent here again, that submission joins the running one and keeps it.
//! One that no submission of the newer epoch joined (the new owner sent it elsewhere,
//! not reaching this node) or whose run ended is cancelled, so it does not run on
//! beside its replacement. A newer epoch is given a grace first: the new owner's
//! submission may be on its way.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use troupe_agents::CancellationToken;
use troupe_store::events::RunStatus;
use troupe_store::{RunId, Store, StoreError};

/// How often the watch reads the runs of the attempts running here.
const WATCH_PERIOD: Duration = Duration::from_secs(1);
/// How long an attempt may run on after its run moved to a newer epoch without it.
const GRACE: Duration = Duration::from_secs(2);

struct RunningAttempt {
    cancel: CancellationToken,
    run_id: RunId,
    /// The newest epoch of the run that submitted it.
    epoch: u64,
    /// Since when the run has been seen past that epoch, or ended.
    superseded_since: Option<Instant>,
}

/// A run as the watch last read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RunNow {
    Going { epoch: u64 },
    Ended,
}

/// The attempts running here for other nodes, by idempotency key: shared with the tasks
/// that wait for their outcomes and with the watch.
#[derive(Default, Clone)]
pub(super) struct Running(Arc<Mutex<HashMap<String, RunningAttempt>>>);

impl Running {
    fn with<R>(&self, f: impl FnOnce(&mut HashMap<String, RunningAttempt>) -> R) -> R {
        // A panic while the lock is held leaves the map as it was: nothing to repair.
        f(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// The cancellation of attempt `key`, submitted by `run` in `epoch`: the running
    /// one's if it runs (a submission of a newer epoch joins it and keeps it wanted),
    /// else a new one's.
    pub(super) fn enter(&self, key: &str, run_id: &RunId, epoch: u64) -> CancellationToken {
        self.with(|running| {
            let attempt = running
                .entry(key.to_string())
                .or_insert_with(|| RunningAttempt {
                    cancel: CancellationToken::new(),
                    run_id: run_id.clone(),
                    epoch,
                    superseded_since: None,
                });
            if epoch >= attempt.epoch {
                attempt.epoch = epoch;
                attempt.superseded_since = None;
            }
            attempt.cancel.clone()
        })
    }

    pub(super) fn cancel(&self, key: &str) {
        self.with(|running| {
            if let Some(attempt) = running.get(key) {
                attempt.cancel.cancel();
            }
        });
    }

    pub(super) fn cancel_all(&self) {
        self.with(|running| running.values().for_each(|attempt| attempt.cancel.cancel()));
    }

    pub(super) fn remove(&self, key: &str) {
        self.with(|running| running.remove(key));
    }

    fn runs(&self) -> BTreeSet<RunId> {
        self.with(|running| running.values().map(|a| a.run_id.clone()).collect())
    }

    /// Marks the attempts whose run is past their epoch or ended, and cancels those
    /// marked for longer than the grace; the keys it cancelled.
    fn sweep(&self, runs: &HashMap<RunId, RunNow>, now: Instant) -> Vec<String> {
        self.with(|running| {
            let mut cancelled = Vec::new();
            for (key, attempt) in running.iter_mut() {
                let superseded = match runs.get(&attempt.run_id) {
                    Some(RunNow::Going { epoch }) => *epoch > attempt.epoch,
                    Some(RunNow::Ended) => true,
                    // Not read this time (not a run, or the store did not answer).
                    None => continue,
                };
                if !superseded {
                    attempt.superseded_since = None;
                    continue;
                }
                let since = *attempt.superseded_since.get_or_insert(now);
                if now.duration_since(since) >= GRACE && !attempt.cancel.is_cancelled() {
                    attempt.cancel.cancel();
                    cancelled.push(key.clone());
                }
            }
            cancelled
        })
    }
}

/// Reads, every period, the runs of the attempts running here, and cancels those their
/// run no longer wants. Runs until aborted (the gateway's `post_stop`).
pub(super) async fn watch(running: Running, store: Store) {
    loop {
        tokio::time::sleep(WATCH_PERIOD).await;
        let mut runs = HashMap::new();
        for run_id in running.runs() {
            let now = match store.run(&run_id).await {
                Ok(record) if record.status == RunStatus::Running => RunNow::Going {
                    epoch: record.epoch,
                },
                Ok(_) => RunNow::Ended,
                // An invocation's attempt: there is no run, and no epoch to pass it.
                Err(StoreError::RunNotFound(_)) => continue,
                Err(error) => {
                    tracing::debug!(%error, %run_id, "cannot read a run's epoch; its attempt runs on");
                    continue;
                }
            };
            runs.insert(run_id, now);
        }
        for key in running.sweep(&runs, Instant::now()) {
            tracing::warn!(%key, "cancelled an attempt its run no longer wants: a newer owner did not resume it here");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runs(entries: &[(&str, RunNow)]) -> HashMap<RunId, RunNow> {
        entries
            .iter()
            .map(|(run, now)| (RunId::from(*run), *now))
            .collect()
    }

    #[test]
    fn an_attempt_a_newer_epoch_did_not_join_is_cancelled_after_the_grace() {
        let running = Running::default();
        let (r1, r2) = (RunId::from("r1"), RunId::from("r2"));
        let left = running.enter("r1:t:1", &r1, 3);
        let joined = running.enter("r2:t:1", &r2, 3);
        let now = Instant::now();
        let moved_on = runs(&[
            ("r1", RunNow::Going { epoch: 4 }),
            ("r2", RunNow::Going { epoch: 4 }),
        ]);
        assert!(running.sweep(&moved_on, now).is_empty(), "a grace first");
        // r2's new owner resumes its attempt here: the submission joins it.
        assert!(!running.enter("r2:t:1", &r2, 4).is_cancelled());
        let later = now + GRACE;
        assert_eq!(running.sweep(&moved_on, later), vec!["r1:t:1".to_string()]);
        assert!(left.is_cancelled());
        assert!(!joined.is_cancelled());
        assert!(running.sweep(&moved_on, later + GRACE).is_empty(), "once");
    }

    #[test]
    fn an_ended_run_cancels_and_an_unread_or_current_one_does_not() {
        let running = Running::default();
        let ended = running.enter("e:t:1", &RunId::from("e"), 1);
        let current = running.enter("c:t:1", &RunId::from("c"), 2);
        let unread = running.enter("inv-1:invoke:1", &RunId::from("inv-1"), 0);
        let now = Instant::now();
        let read = runs(&[("e", RunNow::Ended), ("c", RunNow::Going { epoch: 2 })]);
        running.sweep(&read, now);
        assert_eq!(running.sweep(&read, now + GRACE), vec!["e:t:1".to_string()]);
        assert!(ended.is_cancelled() && !current.is_cancelled() && !unread.is_cancelled());
        // A submission of an older epoch (a late message) does not lift a mark.
        let stale = Running::default();
        let token = stale.enter("s:t:1", &RunId::from("s"), 5);
        let moved = runs(&[("s", RunNow::Going { epoch: 6 })]);
        stale.sweep(&moved, now);
        stale.enter("s:t:1", &RunId::from("s"), 4);
        assert_eq!(stale.sweep(&moved, now + GRACE), vec!["s:t:1".to_string()]);
        assert!(token.is_cancelled());
    }
}
