//! The `node` table: each node's membership lease, kept by the **database's** clock
//! (`time::now()`), so that nodes whose clocks disagree still agree on who is live.
//! A node is live while its lease has not expired; one that leaves cleanly ends its
//! lease at once, so that its runs are taken over without waiting.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::Store;
use crate::error::StoreError;

/// A node as the table holds it, with its lease read against the store's clock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NodeRecord {
    pub name: String,
    /// One more each time the node registers (a restart, or after fencing itself).
    pub incarnation: u64,
    /// Where its API listens, for operators and the other nodes.
    pub api_address: String,
    /// Where the other nodes dial its links (empty before it listened).
    pub cluster_address: String,
    /// What it offers for placement (`gpu`).
    pub labels: Vec<String>,
    /// What it said about its load at its last renewal (JSON).
    pub load: Value,
    /// When this incarnation registered, ms since the epoch by the store's clock.
    pub joined_ms: i64,
    /// How long ago its lease was last renewed, by the store's clock.
    pub lease_age_ms: i64,
    /// Whether its lease still runs.
    pub live: bool,
}

/// What a node tells the others when it registers.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct NodeAdvert {
    pub api_address: String,
    pub cluster_address: String,
    pub labels: Vec<String>,
}

impl Store {
    /// Registers `name` under a new incarnation with a lease of `lease_ms`: the
    /// incarnation. An earlier incarnation of the same name can renew no more.
    pub async fn register_node(
        &self,
        name: &str,
        advert: &NodeAdvert,
        lease_ms: u64,
    ) -> Result<u64, StoreError> {
        let mut response = self
            .db
            .query(
                "BEGIN TRANSACTION;
                 LET $now = time::millis(time::now());
                 IF array::len(SELECT name FROM node WHERE name = $name) = 0 {
                    CREATE node CONTENT { name: $name, incarnation: 1, api_address: $api,
                        cluster_address: $links, labels: $labels,
                        load: '{}', joined_ms: $now, heartbeat_ms: $now,
                        lease_expires_ms: $now + $lease };
                 } ELSE {
                    UPDATE node SET incarnation = incarnation + 1, api_address = $api,
                        cluster_address = $links, labels = $labels,
                        load = '{}', joined_ms = $now, heartbeat_ms = $now,
                        lease_expires_ms = $now + $lease WHERE name = $name;
                 };
                 SELECT VALUE incarnation FROM node WHERE name = $name;
                 COMMIT TRANSACTION;",
            )
            .bind(json!({"name": name, "api": advert.api_address,
                "links": advert.cluster_address, "labels": advert.labels, "lease": lease_ms}))
            .await?
            .check()?;
        // The SELECT, before the COMMIT the response also counts.
        let incarnations: Vec<Value> = response.take(response.num_statements() - 2)?;
        incarnations
            .first()
            .and_then(Value::as_u64)
            .ok_or_else(|| StoreError::Corrupt(format!("node `{name}` did not register")))
    }

    /// Renews the lease of `name`'s `incarnation` for `lease_ms` and records its load,
    /// if that lease still runs: `false` when it lapsed or a newer incarnation
    /// registered (the node must fence itself).
    pub async fn renew_node_lease(
        &self,
        name: &str,
        incarnation: u64,
        lease_ms: u64,
        load: &Value,
    ) -> Result<bool, StoreError> {
        let renewed: Vec<Value> = self
            .rows(
                "LET $now = time::millis(time::now());
                 UPDATE node SET heartbeat_ms = $now, lease_expires_ms = $now + $lease,
                     load = $load
                 WHERE name = $name AND incarnation = $incarnation AND lease_expires_ms > $now
                 RETURN VALUE name;",
                json!({"name": name, "incarnation": incarnation, "lease": lease_ms,
                       "load": load.to_string()}),
            )
            .await?;
        Ok(!renewed.is_empty())
    }

    /// Ends the lease of `name`'s `incarnation` now (a clean shutdown).
    pub async fn leave_cluster(&self, name: &str, incarnation: u64) -> Result<(), StoreError> {
        self.execute(
            "UPDATE node SET lease_expires_ms = 0 WHERE name = $name AND incarnation = $incarnation",
            json!({"name": name, "incarnation": incarnation}),
        )
        .await
    }

    /// Ends the lease of `name`'s `incarnation` now, if that node has not renewed for
    /// `silent_ms` by the store's clock (it missed its renewals): another node declares
    /// it dead. `false` when it renewed meanwhile, or another incarnation or declaration
    /// came first. Its next renewal finds the lease ended, and it fences itself.
    pub async fn declare_dead(
        &self,
        name: &str,
        incarnation: u64,
        silent_ms: u64,
    ) -> Result<bool, StoreError> {
        let declared: Vec<Value> = self
            .rows(
                "LET $now = time::millis(time::now());
                 UPDATE node SET lease_expires_ms = $now
                 WHERE name = $name AND incarnation = $incarnation AND lease_expires_ms > $now
                     AND $now - heartbeat_ms >= $silent
                 RETURN VALUE name;",
                json!({"name": name, "incarnation": incarnation, "silent": silent_ms}),
            )
            .await?;
        Ok(!declared.is_empty())
    }

    /// Every node that ever registered, by name.
    pub async fn nodes(&self) -> Result<Vec<NodeRecord>, StoreError> {
        let rows: Vec<Value> = self
            .rows(
                "LET $now = time::millis(time::now());
                 SELECT name, incarnation, api_address, cluster_address, labels, load,
                     joined_ms,
                     $now - heartbeat_ms AS lease_age_ms, lease_expires_ms > $now AS live
                 FROM node ORDER BY name;",
                json!({}),
            )
            .await?;
        rows.into_iter().map(node_record).collect()
    }
}

/// A row with its load parsed from the JSON text it is kept as.
fn node_record(mut row: Value) -> Result<NodeRecord, StoreError> {
    if let Some(load) = row.get_mut("load") {
        let text = load.as_str().unwrap_or("{}");
        *load = serde_json::from_str(text).unwrap_or(Value::Null);
    }
    serde_json::from_value(row)
        .map_err(|error| StoreError::Corrupt(format!("unexpected node row: {error}")))
}
