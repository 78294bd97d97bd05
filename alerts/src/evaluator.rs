//! The rules' states over time, as Prometheus keeps them: an alert is pending from the
//! first evaluation its condition holds, firing once it has held for the rule's `for`,
//! and resolved at the first evaluation it no longer holds (a pending alert just goes).

use std::collections::BTreeMap;

use serde::Serialize;
use troupe_config::AlertSettings;

use crate::history::{History, Millis};
use crate::promql::{Query, without_name};
use crate::rules::{Rule, Severity, rules};
use crate::sample::{Labels, Sample};

/// An hour (the longest window a rule reads) and the instant lookback before it.
const RETENTION_MS: Millis = (3600 + 300) * 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    Pending,
    Firing,
}

/// One alert: a rule and the labels of one series its condition holds for.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    pub name: &'static str,
    pub severity: Severity,
    pub state: AlertState,
    /// The series' labels with `alertname` and `severity`, as Prometheus labels alerts.
    pub labels: Labels,
    pub summary: String,
    pub description: &'static str,
    /// The expression's value at the last evaluation.
    pub value: f64,
    pub active_at: Millis,
    pub fired_at: Option<Millis>,
}

/// A change worth telling someone of.
#[derive(Debug, Clone, PartialEq)]
pub enum Transition {
    Fired(Alert),
    Resolved { alert: Alert, at: Millis },
}

pub struct Evaluator {
    rules: Vec<Rule>,
    history: History,
    /// Pending and firing alerts, by rule name and labels.
    active: BTreeMap<(&'static str, Labels), Alert>,
}

impl Evaluator {
    pub fn new(settings: &AlertSettings) -> Self {
        let mut evaluator = Self {
            history: History::new([], RETENTION_MS),
            rules: Vec::new(),
            active: BTreeMap::new(),
        };
        evaluator.reconfigure(settings);
        evaluator
    }

    /// Takes new thresholds, waits and enabled rules, keeping what was read so far and
    /// the alerts of the rules still on (a rule turned off resolves its alerts).
    pub fn reconfigure(&mut self, settings: &AlertSettings) {
        self.rules = rules(&settings.rules);
        let reads = self.rules.iter().flat_map(|r| r.reads.iter().copied());
        self.history.read_also(reads);
    }

    /// Records a reading of the metrics taken at `at`.
    pub fn observe(&mut self, at: Millis, samples: Vec<Sample>) {
        self.history.observe(at, samples);
    }

    /// Evaluates every rule at `at`; returns what fired and what resolved.
    pub fn evaluate(&mut self, at: Millis) -> Vec<Transition> {
        let query = Query {
            history: &self.history,
            at,
        };
        let mut transitions = Vec::new();
        let mut holding = BTreeMap::new();
        for rule in &self.rules {
            for (series, value) in rule.evaluate(&query) {
                let labels = alert_labels(rule, &series);
                holding.insert((rule.name, labels.clone()), ());
                let alert = self
                    .active
                    .entry((rule.name, labels.clone()))
                    .or_insert_with(|| Alert {
                        name: rule.name,
                        severity: rule.severity,
                        state: AlertState::Pending,
                        summary: rule.summary(&labels),
                        description: rule.description,
                        labels,
                        value,
                        active_at: at,
                        fired_at: None,
                    });
                alert.value = value;
                // The threshold in it may have changed with a reload.
                alert.summary = rule.summary(&alert.labels);
                let held_ms = at - alert.active_at;
                if alert.state == AlertState::Pending && held_ms >= rule.for_secs as Millis * 1000 {
                    alert.state = AlertState::Firing;
                    alert.fired_at = Some(at);
                    transitions.push(Transition::Fired(alert.clone()));
                }
            }
        }
        let ended: Vec<_> = self
            .active
            .keys()
            .filter(|key| !holding.contains_key(*key))
            .cloned()
            .collect();
        for key in ended {
            if let Some(alert) = self.active.remove(&key)
                && alert.state == AlertState::Firing
            {
                transitions.push(Transition::Resolved { alert, at });
            }
        }
        transitions
    }

    /// The pending and firing alerts, firing and most severe first.
    pub fn alerts(&self) -> Vec<Alert> {
        let mut alerts: Vec<Alert> = self.active.values().cloned().collect();
        alerts.sort_by_key(|a| (a.state != AlertState::Firing, a.severity, a.active_at));
        alerts
    }

    /// The names of the rules evaluated (those enabled).
    pub fn rule_names(&self) -> Vec<&'static str> {
        self.rules.iter().map(|rule| rule.name).collect()
    }

    /// Each rule's name, severity and `for` in seconds.
    pub fn rule_defaults(&self) -> Vec<(&'static str, &'static str, u64)> {
        let rules = self.rules.iter();
        rules
            .map(|r| (r.name, r.severity.as_str(), r.for_secs))
            .collect()
    }
}

fn alert_labels(rule: &Rule, series: &Labels) -> Labels {
    let mut labels = without_name(series);
    labels.insert("alertname".into(), rule.name.into());
    labels.insert("severity".into(), rule.severity.as_str().into());
    labels
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failures(count: f64) -> Vec<Sample> {
        let labels = [
            ("__name__", "troupe_runs_finished_total"),
            ("status", "failed"),
        ];
        let labels = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        vec![Sample {
            labels,
            value: count,
        }]
    }

    /// A reload keeps what was read and the alerts of the rules still on: a firing alert
    /// stays firing (no second notification) under a new threshold it still crosses,
    /// and resolves when its rule is turned off.
    #[test]
    fn reconfiguring_keeps_history_and_alerts_and_turning_a_rule_off_resolves_it() {
        let mut settings = AlertSettings::default();
        settings.rules.run_failure_rate.for_secs = 0;
        let mut evaluator = Evaluator::new(&settings);
        evaluator.observe(0, failures(1.0));
        evaluator.observe(60_000, failures(3.0));
        let fired = evaluator.evaluate(60_000);
        assert!(matches!(&fired[..], [Transition::Fired(a)] if a.name == "TroupeRunFailureRate"));

        settings.rules.run_failure_rate.above = 0.99;
        evaluator.reconfigure(&settings);
        evaluator.observe(120_000, failures(5.0));
        assert_eq!(evaluator.evaluate(120_000), []);
        let alerts = evaluator.alerts();
        assert_eq!(alerts.len(), 1);
        assert!(
            alerts[0].summary.contains("More than 99%"),
            "{}",
            alerts[0].summary
        );

        settings.rules.run_failure_rate.enabled = false;
        evaluator.reconfigure(&settings);
        evaluator.observe(180_000, failures(7.0));
        let resolved = evaluator.evaluate(180_000);
        assert!(matches!(
            &resolved[..],
            [Transition::Resolved { at: 180_000, .. }]
        ));
        assert!(!evaluator.rule_names().contains(&"TroupeRunFailureRate"));
    }
}
