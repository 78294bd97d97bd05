//! What a reload changes: the keys whose values differ between the running settings and
//! the new ones, split into those a running node applies at once and those that wait
//! for a restart. One list ([`LIVE`]) says which are which.

use std::collections::BTreeMap;

use crate::settings::Settings;

/// The settings (and the tables under them) a running node applies without a restart:
/// alert rules, the provider chain with its prices, budgets and limits, the node's agent
/// policy, the log level and what traces carry and link to.
pub const LIVE: &[&str] = &[
    "alerts",
    "providers",
    "agents.allowed_kinds",
    "log.level",
    "telemetry.otlp.sample_ratio",
    "telemetry.capture_content",
    "telemetry.trace_url",
];

/// The keys that differ, by dotted path, each list sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Changes {
    /// Applied now.
    pub live: Vec<String>,
    /// Kept as they were until the node restarts.
    pub restart: Vec<String>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.live.is_empty() && self.restart.is_empty()
    }
}

/// What changes from `running` to `new`.
pub fn changes(running: &Settings, new: &Settings) -> Changes {
    let (before, after) = (flatten(running), flatten(new));
    let mut changes = Changes::default();
    let keys: std::collections::BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    for key in keys {
        if before.get(key) == after.get(key) {
            continue;
        }
        if is_live(key) {
            changes.live.push(key.clone());
        } else {
            changes.restart.push(key.clone());
        }
    }
    changes
}

/// The settings a node runs with after reloading `new`: `running` with the [`LIVE`]
/// keys taken from `new`; the rest waits for a restart.
pub fn apply_live(running: &Settings, new: &Settings) -> Settings {
    let mut applied = running.clone();
    applied.alerts = new.alerts.clone();
    applied.providers = new.providers.clone();
    applied.agents.allowed_kinds = new.agents.allowed_kinds.clone();
    applied.log.level = new.log.level.clone();
    applied.telemetry.otlp.sample_ratio = new.telemetry.otlp.sample_ratio;
    applied.telemetry.capture_content = new.telemetry.capture_content;
    applied.telemetry.trace_url = new.telemetry.trace_url.clone();
    applied
}

fn is_live(key: &str) -> bool {
    LIVE.iter().any(|live| {
        key == *live
            || key
                .strip_prefix(live)
                .is_some_and(|rest| rest.starts_with('.'))
    })
}

/// Every leaf of the settings by dotted key.
fn flatten(settings: &Settings) -> BTreeMap<String, toml::Value> {
    // Invariant: `Settings` is plain data with string keys, which TOML always encodes.
    let table = toml::Table::try_from(settings).expect("settings encode as TOML");
    crate::layers::leaves(&table)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changed_keys_are_split_into_live_and_restart() {
        let running = Settings::default();
        let mut new = running.clone();
        new.alerts.rules.run_failure_rate.above = 0.5;
        new.log.level = "debug".into();
        new.providers.budget_usd_per_day = 3.0;
        new.server.address = "127.0.0.1:9000".into();
        new.engine.max_concurrent_tasks = 2;
        new.telemetry.otlp.endpoint = "http://collector:4318/v1/traces".into();
        let changes = changes(&running, &new);
        assert_eq!(
            changes.live,
            [
                "alerts.rules.run_failure_rate.above",
                "log.level",
                "providers.budget_usd_per_day"
            ]
        );
        assert_eq!(
            changes.restart,
            [
                "engine.max_concurrent_tasks",
                "server.address",
                "telemetry.otlp.endpoint"
            ]
        );
        assert!(super::changes(&running, &running).is_empty());
    }

    /// `apply_live` takes every live key and nothing else: after it, only the restart
    /// keys still differ.
    #[test]
    fn applying_takes_the_live_keys_and_leaves_the_rest() {
        let running = Settings::default();
        let mut new = running.clone();
        new.alerts.evaluate_every_secs = 5;
        new.providers.chain.clear();
        new.agents.allowed_kinds = vec!["echo".into()];
        new.log.level = "debug".into();
        new.telemetry.otlp.sample_ratio = 0.5;
        new.telemetry.capture_content = true;
        new.telemetry.trace_url = "http://j/{trace_id}".into();
        new.server.address = "127.0.0.1:9000".into();
        let all = changes(&running, &new);
        assert_eq!(all.live.len(), 7, "{all:?}");
        let applied = apply_live(&running, &new);
        let left = changes(&applied, &new);
        assert_eq!(left.live, Vec::<String>::new());
        assert_eq!(left.restart, ["server.address"]);
    }

    #[test]
    fn a_live_prefix_is_a_whole_key_not_the_start_of_a_longer_one() {
        assert!(is_live("log.level"));
        assert!(!is_live("log.levels"));
        assert!(!is_live("log.format"));
        assert!(is_live("providers.chain"));
    }
}
