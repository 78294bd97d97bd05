//! The rules, one function each, in the order and with the names, severities and
//! expressions of `deploy/prometheus/alerts.yaml` (the comment above each is its PromQL).
//! Thresholds and `for` durations come from `alerts.rules.*`, whose defaults are the
//! file's. `TroupeNodeDown` has no counterpart: a node cannot see itself stop.

use troupe_config::{AlertRule, AlertRules};

use crate::promql::{
    Query, Vector, above, divide, equal, greater, histogram_quantile, sum_by, unless,
};
use crate::sample::Labels;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Critical,
    Warning,
    Info,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}

type Expression = Box<dyn Fn(&Query) -> Vector + Send + Sync>;

pub struct Rule {
    pub name: &'static str,
    pub severity: Severity,
    pub for_secs: u64,
    /// The metrics the expression reads (the history keeps only these).
    pub reads: &'static [&'static str],
    expression: Expression,
    summary: Box<dyn Fn(&Labels) -> String + Send + Sync>,
    pub description: &'static str,
}

impl Rule {
    pub fn evaluate(&self, query: &Query) -> Vector {
        (self.expression)(query)
    }

    pub fn summary(&self, labels: &Labels) -> String {
        (self.summary)(labels)
    }
}

const RUNS_FINISHED: &str = "troupe_runs_finished_total";
const MODEL_CALLS: &str = "gen_ai_client_operation_duration_seconds_count";
const MODEL_BUCKETS: &str = "gen_ai_client_operation_duration_seconds_bucket";
const COST_SUM: &str = "troupe_model_call_cost_usd_sum";
const BUDGET: &str = "troupe_paid_budget_usd_per_day";
const MODEL_TOKENS: &str = "troupe_model_tokens_total";
const POOL_TASKS: &str = "troupe_pool_tasks";
const ATTEMPTS: &str = "troupe_task_attempts_total";
const MEMBERS: &str = "troupe_cluster_members";

fn label<'a>(labels: &'a Labels, name: &str) -> &'a str {
    labels.get(name).map_or("", String::as_str)
}

/// The rules enabled in `settings`.
pub fn rules(settings: &AlertRules) -> Vec<Rule> {
    let all = [
        (
            settings.component_unhealthy,
            component_unhealthy as fn(AlertRule) -> Rule,
        ),
        (settings.run_failure_rate, run_failure_rate),
        (settings.model_error_rate, model_error_rate),
        (settings.model_latency_p95_secs, model_latency),
        (settings.actor_restarts, actor_restart_storm),
        (settings.actor_gave_up, actor_gave_up),
        (settings.cost_burn_of_budget, cost_burn),
        (settings.paid_fallback_tokens_per_sec, paid_fallback),
        (settings.tasks_stuck, tasks_stuck),
        (settings.cluster_member_lost, cluster_member_lost),
        (settings.approval_waiting_secs, approval_waiting),
        (settings.audit_chain_broken, audit_chain_broken),
        (settings.audit_unverified_secs, audit_not_verified),
    ];
    all.into_iter()
        .filter(|(rule, _)| rule.enabled)
        .map(|(rule, make)| make(rule))
        .collect()
}

fn percent(share: f64) -> String {
    format!("{}%", (share * 1000.0).round() / 10.0)
}

/// `14400` as "4 hours", `600` as "10 minutes": as the YAML's summaries say it.
fn duration(secs: f64) -> String {
    let whole = secs as u64;
    match whole {
        _ if whole as f64 != secs => format!("{secs} s"),
        3600 => "1 hour".into(),
        _ if whole.is_multiple_of(3600) => format!("{} hours", whole / 3600),
        _ if whole.is_multiple_of(60) => format!("{} minutes", whole / 60),
        _ => format!("{whole} s"),
    }
}

/// `troupe_component_up == 0`
fn component_unhealthy(rule: AlertRule) -> Rule {
    Rule {
        name: "TroupeComponentUnhealthy",
        severity: Severity::Critical,
        for_secs: rule.for_secs,
        reads: &["troupe_component_up"],
        expression: Box::new(|q| equal(q.instant(("troupe_component_up", &[])), 0.0)),
        summary: Box::new(|l| {
            format!(
                "{} is unhealthy on {}",
                label(l, "component"),
                label(l, "instance")
            )
        }),
        description: "See /readyz and the node's log for why.",
    }
}

/// `sum by (instance) (rate(troupe_runs_finished_total{status="failed"}[15m]))
///  / sum by (instance) (rate(troupe_runs_finished_total[15m])) > 0.25`
fn run_failure_rate(rule: AlertRule) -> Rule {
    let failed: &[(&str, &str)] = &[("status", "failed")];
    Rule {
        name: "TroupeRunFailureRate",
        severity: Severity::Warning,
        for_secs: rule.for_secs,
        reads: &[RUNS_FINISHED],
        expression: Box::new(move |q| {
            let by = ["instance"];
            let failed = sum_by(q.rate((RUNS_FINISHED, failed), 900), &by);
            let all = sum_by(q.rate((RUNS_FINISHED, &[]), 900), &by);
            above(divide(failed, &all), rule.above)
        }),
        summary: Box::new(move |l| {
            format!(
                "More than {} of the runs on {} fail",
                percent(rule.above),
                label(l, "instance")
            )
        }),
        description: "",
    }
}

/// `sum by (instance, gen_ai_provider_name) (rate(..._count{outcome="error"}[10m]))
///  / sum by (instance, gen_ai_provider_name) (rate(..._count[10m])) > 0.1`
fn model_error_rate(rule: AlertRule) -> Rule {
    let errors: &[(&str, &str)] = &[("outcome", "error")];
    Rule {
        name: "TroupeModelErrorRate",
        severity: Severity::Warning,
        for_secs: rule.for_secs,
        reads: &[MODEL_CALLS],
        expression: Box::new(move |q| {
            let by = ["instance", "gen_ai_provider_name"];
            let failed = sum_by(q.rate((MODEL_CALLS, errors), 600), &by);
            let all = sum_by(q.rate((MODEL_CALLS, &[]), 600), &by);
            above(divide(failed, &all), rule.above)
        }),
        summary: Box::new(move |l| {
            format!(
                "More than {} of calls to {} fail on {}",
                percent(rule.above),
                label(l, "gen_ai_provider_name"),
                label(l, "instance")
            )
        }),
        description: "",
    }
}

/// `histogram_quantile(0.95, sum by (le, instance, gen_ai_request_model)
///  (rate(gen_ai_client_operation_duration_seconds_bucket[10m]))) > 30`
fn model_latency(rule: AlertRule) -> Rule {
    Rule {
        name: "TroupeModelLatencyHigh",
        severity: Severity::Warning,
        for_secs: rule.for_secs,
        reads: &[MODEL_BUCKETS],
        expression: Box::new(move |q| {
            let by = ["le", "instance", "gen_ai_request_model"];
            let buckets = sum_by(q.rate((MODEL_BUCKETS, &[]), 600), &by);
            above(histogram_quantile(0.95, buckets), rule.above)
        }),
        summary: Box::new(move |l| {
            format!(
                "Model {} answers in over {} s at p95 on {}",
                label(l, "gen_ai_request_model"),
                rule.above,
                label(l, "instance")
            )
        }),
        description: "",
    }
}

/// `sum by (instance, supervisor) (increase(troupe_actor_restarts_total[5m])) > 5`
fn actor_restart_storm(rule: AlertRule) -> Rule {
    const RESTARTS: &str = "troupe_actor_restarts_total";
    Rule {
        name: "TroupeActorRestartStorm",
        severity: Severity::Warning,
        for_secs: rule.for_secs,
        reads: &[RESTARTS],
        expression: Box::new(move |q| {
            let restarts = q.increase((RESTARTS, &[]), 300);
            above(sum_by(restarts, &["instance", "supervisor"]), rule.above)
        }),
        summary: Box::new(|l| {
            format!(
                "Actors under {} restart again and again on {}",
                label(l, "supervisor"),
                label(l, "instance")
            )
        }),
        description: "",
    }
}

/// `sum by (instance, supervisor) (increase(troupe_actor_give_ups_total[10m])) > 0`
fn actor_gave_up(rule: AlertRule) -> Rule {
    const GIVE_UPS: &str = "troupe_actor_give_ups_total";
    Rule {
        name: "TroupeActorGaveUp",
        severity: Severity::Critical,
        for_secs: rule.for_secs,
        reads: &[GIVE_UPS],
        expression: Box::new(|q| {
            let give_ups = q.increase((GIVE_UPS, &[]), 600);
            above(sum_by(give_ups, &["instance", "supervisor"]), 0.0)
        }),
        summary: Box::new(|l| {
            format!(
                "{} gave up on an actor on {}",
                label(l, "supervisor"),
                label(l, "instance")
            )
        }),
        description: "It failed more often than the restart policy allows; what it ran ended failed.",
    }
}

/// `sum by (instance) (rate(troupe_model_call_cost_usd_sum[1h])) * 86400
///  > on (instance) troupe_paid_budget_usd_per_day`
fn cost_burn(rule: AlertRule) -> Rule {
    Rule {
        name: "TroupeCostBurnOverBudget",
        severity: Severity::Warning,
        for_secs: rule.for_secs,
        reads: &[COST_SUM, BUDGET],
        expression: Box::new(move |q| {
            let per_day = sum_by(q.rate((COST_SUM, &[]), 3600), &["instance"]);
            let per_day = per_day.into_iter().map(|(l, v)| (l, v * 86400.0)).collect();
            let budget = sum_by(q.instant((BUDGET, &[])), &["instance"]);
            let budget = budget
                .into_iter()
                .map(|(l, v)| (l, v * rule.above))
                .collect();
            greater(per_day, &budget)
        }),
        summary: Box::new(|l| {
            format!(
                "{} spends on models at a pace beyond its daily budget",
                label(l, "instance")
            )
        }),
        description: "At the last hour's pace the day costs more than providers.budget_usd_per_day; past the budget, paid providers are no longer asked.",
    }
}

/// `sum by (instance) (rate(troupe_model_tokens_total{local="false"}[15m])) > 0`
fn paid_fallback(rule: AlertRule) -> Rule {
    let paid: &[(&str, &str)] = &[("local", "false")];
    Rule {
        name: "TroupePaidFallbackActive",
        severity: Severity::Info,
        for_secs: rule.for_secs,
        reads: &[MODEL_TOKENS],
        expression: Box::new(move |q| {
            let tokens = sum_by(q.rate((MODEL_TOKENS, paid), 900), &["instance"]);
            above(tokens, rule.above)
        }),
        summary: Box::new(|l| {
            format!(
                "Model calls on {} go to paid providers",
                label(l, "instance")
            )
        }),
        description: "",
    }
}

/// `sum by (instance, kind) (troupe_pool_tasks{state="queued"}) > 0
///  unless sum by (instance, kind) (rate(troupe_task_attempts_total[15m])) > 0`
fn tasks_stuck(rule: AlertRule) -> Rule {
    let queued: &[(&str, &str)] = &[("state", "queued")];
    Rule {
        name: "TroupeTasksStuck",
        severity: Severity::Warning,
        for_secs: rule.for_secs,
        reads: &[POOL_TASKS, ATTEMPTS],
        expression: Box::new(move |q| {
            let by = ["instance", "kind"];
            let waiting = above(sum_by(q.instant((POOL_TASKS, queued)), &by), 0.0);
            let ending = above(sum_by(q.rate((ATTEMPTS, &[]), 900), &by), 0.0);
            unless(waiting, &ending)
        }),
        summary: Box::new(|l| {
            format!(
                "{} attempts wait on {} and none has ended in 15 minutes",
                label(l, "kind"),
                label(l, "instance")
            )
        }),
        description: "",
    }
}

/// `max_over_time(troupe_cluster_members{state="live"}[10m])
///  > troupe_cluster_members{state="live"}`
fn cluster_member_lost(rule: AlertRule) -> Rule {
    let live: &[(&str, &str)] = &[("state", "live")];
    Rule {
        name: "TroupeClusterMemberLost",
        severity: Severity::Warning,
        for_secs: rule.for_secs,
        reads: &[MEMBERS],
        expression: Box::new(move |q| {
            greater(
                q.max_over_time((MEMBERS, live), 600),
                &q.instant((MEMBERS, live)),
            )
        }),
        summary: Box::new(|l| {
            format!(
                "{} sees fewer live cluster members than in the last 10 minutes",
                label(l, "instance")
            )
        }),
        description: "",
    }
}

/// `troupe_approval_oldest_wait_seconds > 4 * 3600`
fn approval_waiting(rule: AlertRule) -> Rule {
    const OLDEST: &str = "troupe_approval_oldest_wait_seconds";
    Rule {
        name: "TroupeApprovalWaitingLong",
        severity: Severity::Warning,
        for_secs: rule.for_secs,
        reads: &[OLDEST],
        expression: Box::new(move |q| above(q.instant((OLDEST, &[])), rule.above)),
        summary: Box::new(move |l| {
            format!(
                "An approval on {} has waited more than {}",
                label(l, "instance"),
                duration(rule.above)
            )
        }),
        description: "Its run stands still until someone decides (the approvals page, or `troupe approve`).",
    }
}

/// `troupe_audit_chain_intact == 0`
fn audit_chain_broken(rule: AlertRule) -> Rule {
    const INTACT: &str = "troupe_audit_chain_intact";
    Rule {
        name: "TroupeAuditChainBroken",
        severity: Severity::Critical,
        for_secs: rule.for_secs,
        reads: &[INTACT],
        expression: Box::new(|q| equal(q.instant((INTACT, &[])), 0.0)),
        summary: Box::new(|l| {
            format!(
                "The audit chain fails verification on {}",
                label(l, "instance")
            )
        }),
        description: "The log may have been altered: `troupe audit verify` names the first bad entry.",
    }
}

/// `time() - troupe_audit_last_verification_timestamp_seconds > 3 * 3600`
fn audit_not_verified(rule: AlertRule) -> Rule {
    const VERIFIED: &str = "troupe_audit_last_verification_timestamp_seconds";
    Rule {
        name: "TroupeAuditNotVerified",
        severity: Severity::Warning,
        for_secs: rule.for_secs,
        reads: &[VERIFIED],
        expression: Box::new(move |q| {
            let now = q.at as f64 / 1000.0;
            let since = q.instant((VERIFIED, &[])).into_iter();
            let since = since.map(|(l, v)| (crate::promql::without_name(&l), now - v));
            above(since.collect(), rule.above)
        }),
        summary: Box::new(move |l| {
            format!(
                "The audit chain on {} has not been verified for {}",
                label(l, "instance"),
                duration(rule.above)
            )
        }),
        description: "Verification runs every audit.verify_every_secs; see the node's log for why it stopped.",
    }
}
