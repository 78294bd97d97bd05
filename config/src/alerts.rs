//! `alerts.*`: the rules the node evaluates on its own metrics. They are the rules of
//! `deploy/prometheus/alerts.yaml`, and these defaults are that file's thresholds and
//! `for` durations (a test holds the two together), so a node with no Prometheus still
//! tells its user what needs a person.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::problems::Problems;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertSettings {
    /// Off: the node evaluates nothing (a Prometheus scraping it still may).
    pub enabled: bool,
    /// How often the rules are evaluated on a fresh reading of the node's metrics.
    pub evaluate_every_secs: u64,
    pub webhook: AlertWebhookSettings,
    pub rules: AlertRules,
}

impl Default for AlertSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            evaluate_every_secs: 15,
            webhook: AlertWebhookSettings::default(),
            rules: AlertRules::default(),
        }
    }
}

/// Where firing and resolved alerts are sent, in Alertmanager's webhook format (so any
/// receiver written for Alertmanager takes them). Off while `url` is empty.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertWebhookSettings {
    pub url: String,
    /// Sent with every notification (an `authorization` the receiver asks for).
    pub headers: BTreeMap<String, String>,
    pub timeout_ms: u64,
}

impl Default for AlertWebhookSettings {
    fn default() -> Self {
        Self {
            url: String::new(),
            headers: BTreeMap::new(),
            timeout_ms: 5000,
        }
    }
}

/// One rule: its threshold (in the unit its name gives) and how long its condition must
/// hold before it fires.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertRule {
    pub enabled: bool,
    pub above: f64,
    pub for_secs: u64,
}

impl Default for AlertRule {
    fn default() -> Self {
        rule(0.0, 0)
    }
}

const fn rule(above: f64, for_secs: u64) -> AlertRule {
    AlertRule {
        enabled: true,
        above,
        for_secs,
    }
}

/// Every rule the node evaluates. `TroupeNodeDown` is not among them: a node cannot see
/// itself stop answering (its cluster peers see it as a lost member).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertRules {
    /// A component's health check fails (`above` is unused).
    pub component_unhealthy: AlertRule,
    /// The share of runs that end failed, over 15 minutes.
    pub run_failure_rate: AlertRule,
    /// The share of a provider's model calls that fail, over 10 minutes.
    pub model_error_rate: AlertRule,
    /// A model's 95th percentile answer time in seconds, over 10 minutes.
    pub model_latency_p95_secs: AlertRule,
    /// Actor restarts under one supervisor in 5 minutes.
    pub actor_restarts: AlertRule,
    /// A supervisor gave up on an actor in the last 10 minutes (`above` is unused).
    pub actor_gave_up: AlertRule,
    /// The last hour's spending pace per day, as a share of
    /// `providers.budget_usd_per_day` (1 = the budget).
    pub cost_burn_of_budget: AlertRule,
    /// Tokens per second answered by paid providers, over 15 minutes.
    pub paid_fallback_tokens_per_sec: AlertRule,
    /// Attempts wait in a pool and none of its kind ended in 15 minutes (`above` is
    /// unused).
    pub tasks_stuck: AlertRule,
    /// Fewer live cluster members than in the last 10 minutes (`above` is unused).
    pub cluster_member_lost: AlertRule,
    /// The oldest waiting approval's age in seconds.
    pub approval_waiting_secs: AlertRule,
    /// The audit chain fails verification (`above` is unused).
    pub audit_chain_broken: AlertRule,
    /// Seconds since the audit chain was last verified.
    pub audit_unverified_secs: AlertRule,
}

impl Default for AlertRules {
    fn default() -> Self {
        Self {
            component_unhealthy: rule(0.0, 120),
            run_failure_rate: rule(0.25, 900),
            model_error_rate: rule(0.1, 600),
            model_latency_p95_secs: rule(30.0, 900),
            actor_restarts: rule(5.0, 0),
            actor_gave_up: rule(0.0, 0),
            cost_burn_of_budget: rule(1.0, 900),
            paid_fallback_tokens_per_sec: rule(0.0, 300),
            tasks_stuck: rule(0.0, 900),
            cluster_member_lost: rule(0.0, 0),
            approval_waiting_secs: rule(4.0 * 3600.0, 300),
            audit_chain_broken: rule(0.0, 0),
            audit_unverified_secs: rule(3.0 * 3600.0, 600),
        }
    }
}

impl AlertRules {
    /// Each rule with its key, for validation and listing.
    pub fn keyed(&self) -> [(&'static str, &AlertRule); 13] {
        [
            (
                "alerts.rules.component_unhealthy",
                &self.component_unhealthy,
            ),
            ("alerts.rules.run_failure_rate", &self.run_failure_rate),
            ("alerts.rules.model_error_rate", &self.model_error_rate),
            (
                "alerts.rules.model_latency_p95_secs",
                &self.model_latency_p95_secs,
            ),
            ("alerts.rules.actor_restarts", &self.actor_restarts),
            ("alerts.rules.actor_gave_up", &self.actor_gave_up),
            (
                "alerts.rules.cost_burn_of_budget",
                &self.cost_burn_of_budget,
            ),
            (
                "alerts.rules.paid_fallback_tokens_per_sec",
                &self.paid_fallback_tokens_per_sec,
            ),
            ("alerts.rules.tasks_stuck", &self.tasks_stuck),
            (
                "alerts.rules.cluster_member_lost",
                &self.cluster_member_lost,
            ),
            (
                "alerts.rules.approval_waiting_secs",
                &self.approval_waiting_secs,
            ),
            ("alerts.rules.audit_chain_broken", &self.audit_chain_broken),
            (
                "alerts.rules.audit_unverified_secs",
                &self.audit_unverified_secs,
            ),
        ]
    }
}

/// A week: a condition that must hold longer is no alert anyone would wait for.
const LONGEST_FOR_SECS: u64 = 7 * 24 * 3600;

impl AlertSettings {
    pub(crate) fn problems(&self, problems: &mut Problems) {
        if !(1..=3600).contains(&self.evaluate_every_secs) {
            problems.push((
                "alerts.evaluate_every_secs",
                format!(
                    "{} is out of range: use 1 to 3600",
                    self.evaluate_every_secs
                ),
            ));
        }
        let url = &self.webhook.url;
        if !url.is_empty() && !url.starts_with("http://") && !url.starts_with("https://") {
            problems.push((
                "alerts.webhook.url",
                format!("`{url}` must start with http:// or https:// (or be empty to send none)"),
            ));
        }
        if self.webhook.timeout_ms < 100 {
            problems.push(("alerts.webhook.timeout_ms", "must be at least 100".into()));
        }
        for (key, rule) in self.rules.keyed() {
            if !rule.above.is_finite() || rule.above < 0.0 {
                problems.push((
                    key,
                    format!("`above` is {}: use a number from 0", rule.above),
                ));
            }
            if rule.for_secs > LONGEST_FOR_SECS {
                problems.push((
                    key,
                    format!(
                        "`for_secs` is {}: use at most {LONGEST_FOR_SECS} (a week)",
                        rule.for_secs
                    ),
                ));
            }
        }
        for (key, share) in [
            (
                "alerts.rules.run_failure_rate",
                self.rules.run_failure_rate.above,
            ),
            (
                "alerts.rules.model_error_rate",
                self.rules.model_error_rate.above,
            ),
        ] {
            if share > 1.0 {
                problems.push((key, format!("`above` is {share}, a share: use 0 to 1")));
            }
        }
    }
}
