//! The node's side of `/metrics`: the process's Prometheus recorder (one per process,
//! as the `metrics` facade is global; the first node to start installs it), the help
//! text of every metric, and what the node itself counts: its build, and each model
//! call as the ledger records it (OpenTelemetry's GenAI client metrics, by provider,
//! model and outcome, and Troupe's tokens and cost).

use std::collections::BTreeMap;
use std::sync::OnceLock;

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use metrics_util::layers::FanoutBuilder;

use crate::openmetrics::{OpenMetrics, OpenMetricsHandle};
use troupe_engine::agent_pool::PoolLoad;
use troupe_inference::providers::CallRecord;
use troupe_store::NodeRecord;

const BUILD_INFO: &str = "troupe_build_info";
const OPERATION_DURATION: &str = "gen_ai_client_operation_duration_seconds";
const TOKEN_USAGE: &str = "gen_ai_client_token_usage";
const MODEL_TOKENS: &str = "troupe_model_tokens_total";
/// A histogram: its `_sum` is the dollars spent (the facade's counters count whole
/// numbers), its `_count` the calls.
const MODEL_COST: &str = "troupe_model_call_cost_usd";
const ESCALATIONS: &str = "troupe_model_escalations_total";
const PAID_BUDGET: &str = "troupe_paid_budget_usd_per_day";
const POOL_TASKS: &str = "troupe_pool_tasks";
const POOL_CAPACITY: &str = "troupe_pool_capacity";
const CLUSTER_MEMBERS: &str = "troupe_cluster_members";

/// Seconds, from a fast HTTP answer to an hour-long task.
const SECONDS_BUCKETS: [f64; 16] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
];
/// Tokens per call: OpenTelemetry's advised boundaries for `gen_ai.client.token.usage`.
const TOKEN_BUCKETS: [f64; 14] = [
    1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0, 4194304.0,
    16777216.0, 67108864.0,
];

/// Dollars per call, from a cheap small model's to a long answer of a large one.
const COST_BUCKETS: [f64; 7] = [0.0, 0.0001, 0.001, 0.01, 0.1, 1.0, 10.0];

/// What renders the process's metrics: Prometheus's classic text, and OpenMetrics with
/// exemplars (see [`crate::openmetrics`]).
pub(crate) struct Recorders {
    pub(crate) classic: PrometheusHandle,
    pub(crate) open: OpenMetricsHandle,
}

static RECORDER: OnceLock<Option<Recorders>> = OnceLock::new();

/// The process's recorder, installed on first use; `None` when the program that embeds
/// the node installed a recorder of its own (its metrics are then its to export).
pub(crate) fn recorder() -> Option<&'static Recorders> {
    RECORDER.get_or_init(install).as_ref()
}

fn install() -> Option<Recorders> {
    let classic = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &SECONDS_BUCKETS)
        .and_then(|builder| {
            builder.set_buckets_for_metric(Matcher::Full(TOKEN_USAGE.into()), &TOKEN_BUCKETS)
        })
        .and_then(|builder| {
            builder.set_buckets_for_metric(Matcher::Full(MODEL_COST.into()), &COST_BUCKETS)
        })
        .map(PrometheusBuilder::build_recorder);
    let classic = match classic {
        Ok(classic) => classic,
        Err(error) => {
            tracing::error!(%error, "no /metrics: the exporter's buckets are refused");
            return None;
        }
    };
    let recorders = Recorders {
        classic: classic.handle(),
        open: OpenMetricsHandle::default(),
    };
    let open = OpenMetrics::new(&recorders.open, buckets);
    let fanout = FanoutBuilder::default()
        .add_recorder(classic)
        .add_recorder(open)
        .build();
    if let Err(error) = metrics::set_global_recorder(fanout) {
        tracing::warn!(%error, "no /metrics: another metrics recorder is installed");
        return None;
    }
    describe();
    Some(recorders)
}

/// A histogram's buckets, by its name: as the classic exporter was told.
fn buckets(name: &str) -> &'static [f64] {
    match name {
        TOKEN_USAGE => &TOKEN_BUCKETS,
        MODEL_COST => &COST_BUCKETS,
        _ => &SECONDS_BUCKETS,
    }
}

fn describe() {
    troupe_engine::metrics::describe();
    troupe_supervision::children::describe();
    troupe_inference::serve::timing::describe();
    troupe_inference::prefix::describe();
    troupe_telemetry::export::describe();
    troupe_cluster::metrics::describe();
    troupe_store::metrics::describe();
    troupe_security::audit::metrics::describe();
    crate::vitals::describe();
    crate::alerting::describe();
    describe_gauge!(
        BUILD_INFO,
        "Always 1, labelled with the running Troupe's version."
    );
    gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    describe_histogram!(
        OPERATION_DURATION,
        metrics::Unit::Seconds,
        "Model calls by operation, provider, model and outcome (OpenTelemetry GenAI)."
    );
    describe_histogram!(
        TOKEN_USAGE,
        "Tokens per model call, by token type (input, output), provider and model (OpenTelemetry GenAI)."
    );
    describe_counter!(
        MODEL_TOKENS,
        "Tokens through model calls, by provider, model, direction and whether local."
    );
    describe_histogram!(
        MODEL_COST,
        "What each model call cost, in US dollars, by provider and model (local calls cost 0)."
    );
    describe_gauge!(
        PAID_BUDGET,
        "What paid providers may cost a day on this node (providers.budget_usd_per_day)."
    );
    describe_gauge!(
        POOL_TASKS,
        "Task attempts in each agent pool now, by kind and state (running, queued)."
    );
    describe_gauge!(
        POOL_CAPACITY,
        "Attempts each agent pool admits at once, by kind."
    );
    describe_gauge!(
        CLUSTER_MEMBERS,
        "Nodes in the cluster's table as this node last read it, by state (live, lapsed)."
    );
    describe_counter!(
        ESCALATIONS,
        "Model calls whose answer the chain passed over for the next provider, by provider."
    );
}

/// The day's budget for paid providers, for the cost-burn alert to compare with.
pub(crate) fn budget(usd_per_day: f64) {
    gauge!(PAID_BUDGET).set(usd_per_day);
}

/// The agent pools' load now (read at each scrape).
pub(crate) fn pools(loads: &BTreeMap<String, PoolLoad>) {
    for (kind, load) in loads {
        let queued = load.admitted.saturating_sub(load.running);
        for (state, tasks) in [("running", load.running), ("queued", queued)] {
            gauge!(POOL_TASKS, "kind" => kind.clone(), "state" => state).set(tasks as f64);
        }
        gauge!(POOL_CAPACITY, "kind" => kind.clone()).set(load.capacity as f64);
    }
}

/// The cluster's members as this node last read them (read at each scrape).
pub(crate) fn members(members: &[NodeRecord]) {
    let live = members.iter().filter(|member| member.live).count();
    gauge!(CLUSTER_MEMBERS, "state" => "live").set(live as f64);
    gauge!(CLUSTER_MEMBERS, "state" => "lapsed").set((members.len() - live) as f64);
}

/// Counts model calls as the ledger records them.
pub(crate) fn count_calls(calls: &[CallRecord]) {
    for call in calls {
        let provider = call.provider.clone();
        let model = call.model.clone();
        let outcome = if call.error.is_some() { "error" } else { "ok" };
        histogram!(OPERATION_DURATION, "gen_ai_operation_name" => "chat",
            "gen_ai_provider_name" => provider.clone(), "gen_ai_request_model" => model.clone(),
            "outcome" => outcome)
        .record(call.latency_ms as f64 / 1e3);
        let local = if call.local { "true" } else { "false" };
        for (direction, tokens) in [("input", call.tokens_in), ("output", call.tokens_out)] {
            histogram!(TOKEN_USAGE, "gen_ai_token_type" => direction,
                "gen_ai_provider_name" => provider.clone(), "gen_ai_request_model" => model.clone())
            .record(tokens as f64);
            counter!(MODEL_TOKENS, "provider" => provider.clone(), "model" => model.clone(),
                "direction" => direction, "local" => local)
            .increment(tokens as u64);
        }
        histogram!(MODEL_COST, "provider" => provider.clone(), "model" => model)
            .record(call.cost_usd);
        if call.escalated {
            counter!(ESCALATIONS, "provider" => provider).increment(1);
        }
    }
}
