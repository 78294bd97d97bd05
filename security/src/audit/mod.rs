//! The tamper-evident audit log: every security-relevant action appended to a hash
//! chain in SurrealDB (`chain`), with signed checkpoints of its head written outside the
//! database (`checkpoint`). `AuditLog::verify` walks the whole chain against the latest
//! checkpoint and names the first bad entry.

mod action;
pub mod chain;
pub mod checkpoint;
pub mod metrics;
pub mod shipping;

use std::path::Path;

use serde::Serialize;
use tokio::sync::Mutex;

use crate::SecurityError;
use chain::{AuditEntry, Breach, GENESIS, Head, NewEntry};
use checkpoint::{Checkpoint, Checkpoints};
use shipping::Shipping;
use troupe_store::Store;
use troupe_store::clock::now_ms;

pub use action::{AuditAction, SecondFactor};

/// Entries read per page while verifying.
const VERIFY_PAGE: u64 = 1000;
/// Another node appending at the same moment takes our sequence number: re-read the
/// head and try again, at most this often.
const APPEND_ATTEMPTS: usize = 5;

/// Where the signed checkpoints go: `audit.dir`, else beside an embedded store
/// (`<data dir>-audit`); `None` for a `mem://` or `ws://` store with no `audit.dir`
/// (checkpoints then reach the process log only).
pub fn checkpoint_dir(settings: &troupe_config::Settings) -> Option<std::path::PathBuf> {
    troupe_store::key_file::dir_beside_store(&settings.audit.dir, &settings.store.url, "audit")
}

pub struct AuditLog {
    store: Store,
    head: Mutex<Head>,
    checkpoints: Option<Checkpoints>,
    checkpoint_every: u64,
    /// Sinks off the host each new checkpoint is also sent to.
    shipping: Option<Shipping>,
}

#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct VerifyReport {
    pub entries: u64,
    pub intact: bool,
    pub first_bad: Option<Breach>,
    /// The signed checkpoints the chain was checked against.
    pub checkpoints: u64,
    /// The latest of them, if any.
    pub checkpoint: Option<Checkpoint>,
}

/// How long a stopping process waits for its last checkpoints to leave the host.
pub const SHIPPING_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

impl AuditLog {
    /// The log over `store`; checkpoints go to `checkpoint_dir` when there is one.
    pub async fn open(
        store: Store,
        checkpoint_dir: Option<&Path>,
        checkpoint_every: u64,
    ) -> Result<Self, SecurityError> {
        let head = match store.audit_head().await? {
            Some(entry) => Head {
                seq: entry.seq,
                hash: entry.hash,
            },
            None => Head {
                seq: 0,
                hash: GENESIS.into(),
            },
        };
        let checkpoints = checkpoint_dir.map(Checkpoints::open).transpose()?;
        Ok(Self {
            store,
            head: Mutex::new(head),
            checkpoints,
            checkpoint_every: checkpoint_every.max(1),
            shipping: None,
        })
    }

    /// Also sends each new checkpoint to `shipping`'s sinks.
    pub fn shipped(mut self, shipping: Option<Shipping>) -> Self {
        self.shipping = shipping;
        self
    }

    /// Waits, at most [`SHIPPING_WAIT`], until the checkpoints made so far have left
    /// the host: what a node does when it stops, and an offline command before it exits.
    pub async fn flush_shipping(&self) {
        if let Some(shipping) = &self.shipping {
            shipping.flush(SHIPPING_WAIT).await;
        }
    }

    /// Appends one action to the chain.
    pub async fn record(
        &self,
        actor: &str,
        action: AuditAction,
        target: &str,
    ) -> Result<AuditEntry, SecurityError> {
        let details = action.details().to_string();
        let mut head = self.head.lock().await;
        let mut attempt = 1;
        loop {
            let entry = chain::chain(
                head.seq + 1,
                &head.hash,
                NewEntry {
                    at_ms: now_ms(),
                    actor: actor.into(),
                    action: action.name().into(),
                    target: target.into(),
                    details: details.clone(),
                },
            );
            match self.store.insert_audit_entry(&entry).await {
                Ok(()) => {
                    *head = Head {
                        seq: entry.seq,
                        hash: entry.hash.clone(),
                    };
                    metrics::appended(entry.seq);
                    if entry.seq.is_multiple_of(self.checkpoint_every) {
                        self.checkpoint_locked(&head)?;
                    }
                    return Ok(entry);
                }
                // Another writer took the next sequence number: chain on its entry.
                Err(error) if attempt == APPEND_ATTEMPTS => return Err(error.into()),
                Err(_) => {
                    attempt += 1;
                    if let Some(latest) = self.store.audit_head().await? {
                        *head = Head {
                            seq: latest.seq,
                            hash: latest.hash,
                        };
                    }
                }
            }
        }
    }

    fn checkpoint_locked(&self, head: &Head) -> Result<Option<Checkpoint>, SecurityError> {
        let checkpoint = match &self.checkpoints {
            Some(checkpoints) if head.seq > 0 => checkpoints.write(head, now_ms())?,
            _ => return Ok(None),
        };
        if let Some(shipping) = &self.shipping {
            shipping.offer(&checkpoint);
        }
        Ok(Some(checkpoint))
    }

    /// Signs the current head now (at start-up and shutdown, and from the CLI).
    pub async fn checkpoint(&self) -> Result<Option<Checkpoint>, SecurityError> {
        let head = self.head.lock().await;
        self.checkpoint_locked(&head)
    }

    /// Walks the whole chain, page by page, against every signed checkpoint, and checks
    /// the checkpoint file itself (see [`chain::trail_breach`]).
    pub async fn verify(&self) -> Result<VerifyReport, SecurityError> {
        let signed = match &self.checkpoints {
            Some(checkpoints) => checkpoints.all()?,
            None => Vec::new(),
        };
        let heads: Vec<Head> = signed
            .iter()
            .map(|c| Head {
                seq: c.seq,
                hash: c.hash.clone(),
            })
            .collect();
        let mut entries = Vec::new();
        let mut after = 0;
        loop {
            let page = self.store.audit_after(after, VERIFY_PAGE).await?;
            let Some(last) = page.last() else { break };
            after = last.seq;
            entries.extend(page);
        }
        let length = entries.len() as u64;
        let first_bad = chain::first_breach(&entries, &heads).or_else(|| {
            self.checkpoints
                .as_ref()
                .and_then(|_| chain::trail_breach(&heads, length, self.checkpoint_every))
        });
        metrics::verified(length, first_bad.is_none(), now_ms());
        Ok(VerifyReport {
            entries: length,
            intact: first_bad.is_none(),
            first_bad,
            checkpoints: signed.len() as u64,
            checkpoint: signed.into_iter().max_by_key(|c| c.seq),
        })
    }
}

#[cfg(test)]
mod tests;
