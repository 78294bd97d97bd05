//! A run's attempts in flight, by task, and the tie that makes them the run's: each
//! attempt's cancellation token is a child of the run's, which is cancelled when this
//! is dropped. The run actor holds it in its state, so however the actor stops (done,
//! failed, killed), its attempts are told to stop with it: a resumed run never races
//! an orphan of its previous actor for the same idempotency key.

use std::collections::HashMap;

use tokio_util::sync::DropGuard;
use troupe_agents::CancellationToken;
use troupe_store::TaskId;

pub struct InFlight {
    run: CancellationToken,
    by_task: HashMap<TaskId, CancellationToken>,
    _cancel_on_drop: DropGuard,
}

impl InFlight {
    pub fn new() -> Self {
        let run = CancellationToken::new();
        Self {
            _cancel_on_drop: run.clone().drop_guard(),
            run,
            by_task: HashMap::new(),
        }
    }

    /// The token of a new attempt of `task`.
    pub fn start(&mut self, task: &TaskId) -> CancellationToken {
        let token = self.run.child_token();
        self.by_task.insert(task.clone(), token.clone());
        token
    }

    /// `task`'s attempt has reported its outcome.
    pub fn finished(&mut self, task: &TaskId) {
        self.by_task.remove(task);
    }

    /// Tells every attempt in flight to stop (the run is being cancelled). Attempts
    /// started later get live tokens: the run decides whether to start any.
    pub fn cancel_all(&self) {
        for token in self.by_task.values() {
            token.cancel();
        }
    }
}

impl Default for InFlight {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropping_it_cancels_every_attempt_and_cancel_all_only_those_in_flight() {
        let mut in_flight = InFlight::new();
        let build = in_flight.start(&"build".into());
        let test = in_flight.start(&"test".into());
        in_flight.finished(&"test".into());
        in_flight.cancel_all();
        assert!(build.is_cancelled());
        assert!(!test.is_cancelled(), "a finished attempt is not in flight");
        let later = in_flight.start(&"deploy".into());
        assert!(!later.is_cancelled());
        drop(in_flight);
        assert!(later.is_cancelled() && test.is_cancelled());
    }
}
