//! Refresh-token rotation that two tabs (or a retried request) can share. A refresh
//! token is used up by its refresh; presented again after that, it means theft and its
//! whole session ends. But a browser with two tabs, or a request retried after a lost
//! response, presents it again within moments and innocently: within the grace period
//! every presentation waits for the one rotation and gets the same new pair.
//!
//! Kept in this process only: behind a load balancer without sticky sessions a second
//! node sees plain reuse. Bounded: entries live for the grace period, and a flood of
//! made-up tokens past the limiter's bound on entries drops the live ones' grace, never a
//! session.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;

use super::TokenPair;
use super::limiter::{current_entry, lock};

/// One rotation, shared by every presentation of its token: the pair it gave, once it
/// has run (empty while it runs, or when it failed).
type Rotation = Arc<OnceCell<TokenPair>>;

pub(super) struct Rotations {
    grace_ms: i64,
    /// By the hash of the token presented: when it was first presented (on the auth
    /// clock), and its rotation.
    entries: Mutex<HashMap<String, (i64, Rotation)>>,
}

impl Rotations {
    pub(super) fn new(grace_secs: u64) -> Self {
        Self {
            grace_ms: i64::try_from(grace_secs.saturating_mul(1000)).unwrap_or(i64::MAX),
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The rotation of the token whose hash is `token_hash`: the same one for every
    /// presentation within the grace period since the first, at `now_ms`.
    pub(super) fn of(&self, token_hash: &str, now_ms: i64) -> Rotation {
        let mut entries = lock(&self.entries);
        let grace_ms = self.grace_ms;
        let (_, rotation) = current_entry(
            &mut entries,
            token_hash,
            |(first, _)| now_ms - *first < grace_ms,
            || (now_ms, Arc::new(OnceCell::new())),
        );
        rotation.clone()
    }
}
