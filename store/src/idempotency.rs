//! `Idempotency-Key`s of requests that start runs: a client that retries a request (a
//! timeout, a dropped connection) with the same key gets the run the first one started,
//! never a second run. A key is claimed with a `CREATE` of its record, which only one
//! request can win; the winner starts the run and records it.

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::Store;
use crate::error::StoreError;
use crate::ids::RunId;

/// How long a key is remembered.
pub const IDEMPOTENCY_TTL_MS: i64 = 24 * 60 * 60 * 1000;

/// What a claim of a key found.
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// The key is this request's: start the run, then `complete` (or `release` on failure).
    Won,
    /// A request with this key already started this run.
    Started(RunId),
    /// A request with this key is starting its run right now.
    InFlight,
    /// The key was used for a different request.
    Mismatch,
}

#[derive(Debug, Serialize, Deserialize)]
struct KeyRecord {
    fingerprint: String,
    /// Absent (SurrealDB's NONE, not null) until the run has started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    run_id: Option<RunId>,
    created_at_ms: i64,
}

impl Store {
    /// Claims `key` (already scoped to its caller) for a request with `fingerprint`.
    pub async fn claim_idempotency_key(
        &self,
        key: &str,
        fingerprint: &str,
        now_ms: i64,
    ) -> Result<Claim, StoreError> {
        let id = crate::digest::sha256_hex(key);
        // A key older than the TTL is forgotten, then claimed like a new one.
        self.execute(
            "DELETE type::record('idempotency_key', $id) WHERE created_at_ms < $expired",
            json!({ "id": id, "expired": now_ms - IDEMPOTENCY_TTL_MS }),
        )
        .await?;
        let record = KeyRecord {
            fingerprint: fingerprint.into(),
            run_id: None,
            created_at_ms: now_ms,
        };
        let created = self
            .execute(
                "CREATE type::record('idempotency_key', $id) CONTENT $record RETURN NONE",
                json!({ "id": id, "record": record }),
            )
            .await;
        let Err(error) = created else {
            return Ok(Claim::Won);
        };
        // Taken, or lost a write conflict to a request creating it right now.
        let rows: Vec<KeyRecord> = self
            .rows(
                "SELECT fingerprint, run_id, created_at_ms \
                 FROM type::record('idempotency_key', $id)",
                json!({ "id": id }),
            )
            .await?;
        Ok(match rows.into_iter().next() {
            Some(found) if found.fingerprint != fingerprint => Claim::Mismatch,
            Some(KeyRecord {
                run_id: Some(run_id),
                ..
            }) => Claim::Started(run_id),
            Some(_) => Claim::InFlight,
            None if error.is_taken("already exists") || error.is_taken("conflict") => {
                Claim::InFlight
            }
            None => return Err(error),
        })
    }

    /// Records the run the claimed key's request started.
    pub async fn complete_idempotency_key(
        &self,
        key: &str,
        run_id: &RunId,
    ) -> Result<(), StoreError> {
        self.execute(
            "UPDATE type::record('idempotency_key', $id) SET run_id = $run RETURN NONE",
            json!({ "id": crate::digest::sha256_hex(key), "run": run_id }),
        )
        .await
    }

    /// Forgets a claimed key whose request failed, so that a retry can try again.
    pub async fn release_idempotency_key(&self, key: &str) -> Result<(), StoreError> {
        self.execute(
            "DELETE type::record('idempotency_key', $id)",
            json!({ "id": crate::digest::sha256_hex(key) }),
        )
        .await
    }
}
