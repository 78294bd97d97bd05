//! The `settings_reload` table: one record, the latest settings reload any node of the
//! cluster made, numbered, so that every other node reloads its own settings too.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::Store;
use crate::error::StoreError;

/// The latest reload announced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReloadAnnouncement {
    /// One more at each announcement.
    pub seq: u64,
    /// The node that reloaded first.
    pub node: String,
}

impl Store {
    /// Announces that `node` reloaded its settings; the announcement's number.
    pub async fn announce_reload(&self, node: &str) -> Result<u64, StoreError> {
        let mut response = self
            .db
            .query(
                "UPSERT settings_reload:latest SET seq += 1, node = $node,
                    at_ms = time::millis(time::now()) RETURN VALUE seq",
            )
            .bind(json!({ "node": node }))
            .await?
            .check()?;
        let seq: Vec<Value> = response.take(0)?;
        seq.first()
            .and_then(Value::as_u64)
            .ok_or_else(|| StoreError::Corrupt("the reload was not announced".into()))
    }

    /// The latest announcement, if any node ever made one.
    pub async fn latest_reload(&self) -> Result<Option<ReloadAnnouncement>, StoreError> {
        let mut response = self
            .db
            .query("SELECT seq, node FROM settings_reload:latest")
            .await?
            .check()?;
        let rows: Vec<Value> = response.take(0)?;
        rows.into_iter()
            .next()
            .map(|row| {
                serde_json::from_value(row)
                    .map_err(|error| StoreError::Corrupt(format!("settings_reload: {error}")))
            })
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn announcements_are_numbered_from_one_and_name_their_node() {
        let store = Store::memory().await.unwrap();
        assert_eq!(store.latest_reload().await.unwrap(), None);
        assert_eq!(store.announce_reload("a").await.unwrap(), 1);
        assert_eq!(store.announce_reload("b").await.unwrap(), 2);
        let latest = store.latest_reload().await.unwrap();
        assert_eq!(
            latest,
            Some(ReloadAnnouncement {
                seq: 2,
                node: "b".into()
            })
        );
    }
}
