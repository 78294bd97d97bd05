//! A notification in Alertmanager's webhook format (version 4), so that whatever a team
//! already points Alertmanager at (a chat bridge, an on-call service) takes the node's
//! alerts too. One notification per change: a group of one alert.

use std::collections::BTreeMap;
use std::hash::Hasher;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::evaluator::{Alert, Transition};
use crate::history::Millis;
use crate::sample::Labels;

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    pub version: &'static str,
    pub group_key: String,
    pub truncated_alerts: u32,
    pub status: &'static str,
    pub receiver: &'static str,
    pub group_labels: Labels,
    pub common_labels: Labels,
    pub common_annotations: BTreeMap<String, String>,
    #[serde(rename = "externalURL")]
    pub external_url: String,
    pub alerts: Vec<NotifiedAlert>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NotifiedAlert {
    pub status: &'static str,
    pub labels: Labels,
    pub annotations: BTreeMap<String, String>,
    pub starts_at: String,
    pub ends_at: String,
    #[serde(rename = "generatorURL")]
    pub generator_url: String,
    pub fingerprint: String,
}

/// Alertmanager's "not ended yet".
const NO_END: &str = "0001-01-01T00:00:00Z";

impl Notification {
    /// The notification of `transition`; `node_url` is where the node's alerts are seen.
    pub fn of(transition: &Transition, node_url: &str) -> Self {
        let (alert, status, ends_at) = match transition {
            Transition::Fired(alert) => (alert, "firing", NO_END.to_owned()),
            Transition::Resolved { alert, at } => (alert, "resolved", rfc3339(*at)),
        };
        let annotations = annotations(alert);
        let group_labels = Labels::from([("alertname".to_owned(), alert.name.to_owned())]);
        Self {
            version: "4",
            group_key: format!("{{}}:{{alertname=\"{}\"}}", alert.name),
            truncated_alerts: 0,
            status,
            receiver: "troupe",
            group_labels,
            common_labels: alert.labels.clone(),
            common_annotations: annotations.clone(),
            external_url: node_url.to_owned(),
            alerts: vec![NotifiedAlert {
                status,
                labels: alert.labels.clone(),
                annotations,
                starts_at: rfc3339(alert.active_at),
                ends_at,
                generator_url: format!("{node_url}/api/v1/alerts"),
                fingerprint: fingerprint(&alert.labels),
            }],
        }
    }
}

fn annotations(alert: &Alert) -> BTreeMap<String, String> {
    let mut annotations = BTreeMap::from([("summary".to_owned(), alert.summary.clone())]);
    if !alert.description.is_empty() {
        annotations.insert("description".into(), alert.description.into());
    }
    annotations
}

pub fn rfc3339(at: Millis) -> String {
    DateTime::<Utc>::from_timestamp_millis(at)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A stable id of a label set (FNV-1a over its names and values), as Alertmanager gives
/// each alert: the same alert firing and resolving has the same fingerprint.
pub fn fingerprint(labels: &Labels) -> String {
    let mut hasher = fnv::FnvHasher::default();
    for (name, value) in labels {
        for part in [name.as_bytes(), &[0xff], value.as_bytes(), &[0xff]] {
            hasher.write(part);
        }
    }
    format!("{:016x}", hasher.finish())
}
