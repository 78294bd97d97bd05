//! The cost ledger: every model call (local or paid, answered or failed) with its tokens,
//! latency, cost and quality, and the report built from it: totals, the share served
//! locally, and the savings against the same answers priced at the cloud baseline, per
//! day, per agent, per provider and per project. Each call is billed to a project.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::json;
use troupe_agents::Billing;
use troupe_inference::providers::{CallRecord, DaySpend};

use crate::Store;
use crate::error::StoreError;
use crate::ids::ProjectId;

/// One model call in the ledger.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CallRow {
    pub request_id: String,
    pub at_ms: i64,
    pub day: String,
    pub project: String,
    pub provider: String,
    pub model: String,
    pub local: bool,
    pub task_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    pub tokens_in: i64,
    pub tokens_out: i64,
    pub latency_ms: i64,
    pub cost_usd: f64,
    pub baseline_usd: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality: Option<f64>,
    pub escalated: bool,
    pub served: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Why the agent that asked refused the answer served (malformed, or a loop);
    /// `None` when it was used, or when no agent asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
    /// The run and task the call was for; absent outside a run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
}

/// One line of the report (the totals, a day, an agent or a provider).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CostLine {
    pub key: String,
    /// Requests answered (one per served call).
    pub requests: u64,
    /// Provider calls, escalations and failures included.
    pub calls: u64,
    pub escalations: u64,
    pub failures: u64,
    /// Answers served and then refused by the agent that asked for them.
    pub refusals: u64,
    pub tokens_in: u64,
    pub tokens_out: u64,
    pub cost_usd: f64,
    /// The answers served, priced at the cloud baseline.
    pub baseline_usd: f64,
    pub savings_usd: f64,
    /// Share of answered requests served by a local model.
    pub local_share: f64,
    pub mean_latency_ms: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CostReport {
    pub since_ms: i64,
    pub total: CostLine,
    pub by_day: Vec<CostLine>,
    pub by_agent: Vec<CostLine>,
    pub by_provider: Vec<CostLine>,
    pub by_project: Vec<CostLine>,
}

#[derive(Default)]
struct Tally {
    line: CostLine,
    served_local: u64,
    latency_total: u64,
}

impl Tally {
    fn add(&mut self, row: &CallRow) {
        let line = &mut self.line;
        line.calls += 1;
        line.escalations += u64::from(row.escalated);
        line.failures += u64::from(row.error.is_some());
        line.refusals += u64::from(row.refused.is_some());
        line.tokens_in += row.tokens_in.max(0) as u64;
        line.tokens_out += row.tokens_out.max(0) as u64;
        line.cost_usd += row.cost_usd;
        line.baseline_usd += row.baseline_usd;
        self.latency_total += row.latency_ms.max(0) as u64;
        if row.served {
            line.requests += 1;
            self.served_local += u64::from(row.local);
        }
    }

    fn finish(mut self, key: String) -> CostLine {
        let line = &mut self.line;
        line.key = key;
        line.savings_usd = line.baseline_usd - line.cost_usd;
        line.local_share = if line.requests == 0 {
            0.0
        } else {
            self.served_local as f64 / line.requests as f64
        };
        line.mean_latency_ms = if line.calls == 0 {
            0.0
        } else {
            self.latency_total as f64 / line.calls as f64
        };
        self.line
    }
}

fn group(rows: &[CallRow], key: impl Fn(&CallRow) -> String) -> Vec<CostLine> {
    let mut tallies: BTreeMap<String, Tally> = BTreeMap::new();
    for row in rows {
        tallies.entry(key(row)).or_default().add(row);
    }
    tallies
        .into_iter()
        .map(|(key, tally)| tally.finish(key))
        .collect()
}

/// `YYYY-MM-DD` (UTC) of a time in milliseconds.
fn day_of(at_ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(at_ms)
        .map(|time| time.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| "unknown".into())
}

impl Store {
    /// What paid providers cost on the UTC day of `at_ms`: for the whole node, and for
    /// `project`. A range of `at_ms`, so the time index serves it: it runs before every
    /// request to the chain.
    pub async fn paid_spend_on_day_of(
        &self,
        at_ms: i64,
        project: &ProjectId,
    ) -> Result<DaySpend, StoreError> {
        const DAY_MS: i64 = 86_400_000;
        let start = at_ms - at_ms.rem_euclid(DAY_MS);
        let calls: Vec<(f64, String)> = self
            .rows(
                "SELECT VALUE [cost_usd, project] FROM inference_call \
                 WHERE at_ms >= $start AND at_ms < $end AND local = false",
                json!({ "start": start, "end": start + DAY_MS }),
            )
            .await?;
        Ok(DaySpend {
            node_usd: calls.iter().map(|(cost, _)| cost).sum(),
            project_usd: calls
                .iter()
                .filter(|(_, billed)| billed == project.as_str())
                .map(|(cost, _)| cost)
                .sum(),
        })
    }

    /// Writes the calls one request made, together, billed to `project`.
    pub async fn record_calls(
        &self,
        request_id: &str,
        at_ms: i64,
        project: &ProjectId,
        calls: &[CallRecord],
    ) -> Result<(), StoreError> {
        self.insert_calls(request_id, at_ms, project, None, calls, 0.0)
            .await
    }

    /// Writes the calls one request of a run's task made, together, billed to the
    /// run's `project` and to the run and task of `billing`, and lets go of the
    /// `held_usd` the run's budgets held for them, in one transaction.
    pub async fn record_run_calls(
        &self,
        request_id: &str,
        at_ms: i64,
        project: &ProjectId,
        (billing, held_usd): (&Billing, f64),
        calls: &[CallRecord],
    ) -> Result<(), StoreError> {
        self.insert_calls(request_id, at_ms, project, Some(billing), calls, held_usd)
            .await
    }

    async fn insert_calls(
        &self,
        request_id: &str,
        at_ms: i64,
        project: &ProjectId,
        billing: Option<&Billing>,
        calls: &[CallRecord],
        held_usd: f64,
    ) -> Result<(), StoreError> {
        if calls.is_empty() && held_usd == 0.0 {
            return Ok(());
        }
        let rows: Vec<CallRow> = calls
            .iter()
            .map(|call| CallRow {
                request_id: request_id.into(),
                at_ms,
                day: day_of(at_ms),
                project: project.to_string(),
                provider: call.provider.clone(),
                model: call.model.clone(),
                local: call.local,
                task_type: call.task_type.clone(),
                agent: call.agent.clone(),
                tokens_in: call.tokens_in as i64,
                tokens_out: call.tokens_out as i64,
                latency_ms: call.latency_ms as i64,
                cost_usd: call.cost_usd,
                baseline_usd: call.baseline_usd,
                quality: call.quality,
                escalated: call.escalated,
                served: call.served,
                error: call.error.clone(),
                refused: None,
                run_id: billing.map(|billing| billing.run_id.clone()),
                task: billing.map(|billing| billing.task.clone()),
            })
            .collect();
        let release = match billing {
            Some(billing) if held_usd != 0.0 => crate::budgets::release(billing),
            _ => String::new(),
        };
        self.traced(
            "insert inference_call",
            &format!(
                "BEGIN TRANSACTION; INSERT INTO inference_call $rows RETURN NONE; {release} \
                 COMMIT TRANSACTION;"
            ),
            json!({
                "rows": rows,
                "held": held_usd,
                "run": billing.map(|billing| &billing.run_id),
                "task": billing.map(Billing::budget_task),
            }),
        )
        .await
    }

    /// Records that the agent which asked request `request_id` refused the answer it
    /// was served, for `reason` (kept to its first 500 characters).
    pub async fn mark_refused(&self, request_id: &str, reason: &str) -> Result<(), StoreError> {
        let reason: String = reason.chars().take(500).collect();
        self.traced(
            "update inference_call refused",
            "UPDATE inference_call SET refused = $reason \
             WHERE request_id = $request AND served = true RETURN NONE",
            json!({ "request": request_id, "reason": reason }),
        )
        .await
    }

    /// Every call made for run `run_id`, oldest request first.
    pub async fn calls_of_run(&self, run_id: &str) -> Result<Vec<CallRow>, StoreError> {
        self.rows(
            "SELECT * OMIT id FROM inference_call WHERE run_id = $run ORDER BY at_ms",
            json!({ "run": run_id }),
        )
        .await
    }

    /// The report over the calls made since `since_ms`, of `projects` only when given.
    pub async fn cost_report(
        &self,
        since_ms: i64,
        projects: Option<&[ProjectId]>,
    ) -> Result<CostReport, StoreError> {
        let of_projects = if projects.is_some() {
            "AND project IN $projects"
        } else {
            ""
        };
        let rows: Vec<CallRow> = self
            .rows(
                &format!(
                    "SELECT request_id, at_ms, day, project, provider, model, local, task_type,
                            agent, tokens_in, tokens_out, latency_ms, cost_usd, baseline_usd,
                            quality, escalated, served, error, refused
                     FROM inference_call WHERE at_ms >= $since {of_projects} ORDER BY at_ms"
                ),
                json!({ "since": since_ms, "projects": projects }),
            )
            .await?;
        let mut total = Tally::default();
        for row in &rows {
            total.add(row);
        }
        Ok(CostReport {
            since_ms,
            total: total.finish("total".into()),
            by_day: group(&rows, |row| row.day.clone()),
            by_agent: group(&rows, |row| {
                row.agent.clone().unwrap_or_else(|| "(api)".into())
            }),
            by_provider: group(&rows, |row| row.provider.clone()),
            by_project: group(&rows, |row| row.project.clone()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(provider: &str, local: bool, served: bool, cost: f64, baseline: f64) -> CallRecord {
        CallRecord {
            provider: provider.into(),
            model: "m".into(),
            local,
            task_type: "chat".into(),
            agent: Some("reviewer".into()),
            tokens_in: 100,
            tokens_out: 20,
            latency_ms: 50,
            cost_usd: cost,
            baseline_usd: baseline,
            quality: Some(0.5),
            escalated: !served,
            served,
            error: None,
        }
    }

    /// The day's paid spend, which the daily budgets are checked against: paid calls of
    /// that UTC day only, for the node and for the project asked about.
    #[tokio::test]
    async fn the_paid_spend_of_a_day_counts_that_day_s_paid_calls() {
        let store = Store::memory().await.unwrap();
        let day = 1_764_000_000_000; // 2025-11-24
        let (shop, bank) = (ProjectId::from("shop"), ProjectId::from("bank"));
        let paid = |cost| call("cloud", false, true, cost, cost);
        let calls = [call("local", true, false, 0.0, 0.0), paid(0.25)];
        store.record_calls("r1", day, &shop, &calls).await.unwrap();
        store
            .record_calls("r2", day + 60_000, &bank, &[paid(0.5)])
            .await
            .unwrap();
        store
            .record_calls("r3", day + 86_400_000, &shop, &[paid(4.0)])
            .await
            .unwrap();
        let spend = |at, project| store.paid_spend_on_day_of(at, project);
        let today = spend(day, &shop).await.unwrap();
        assert_eq!((today.node_usd, today.project_usd), (0.75, 0.25));
        let tomorrow = spend(day + 86_400_000, &bank).await.unwrap();
        assert_eq!((tomorrow.node_usd, tomorrow.project_usd), (4.0, 0.0));
    }

    #[tokio::test]
    async fn the_report_adds_up_costs_savings_and_the_local_share() {
        let store = Store::memory().await.unwrap();
        let day = 1_764_000_000_000; // 2025-11-24
        // Request 1: served locally. Request 2: local escalated, the cloud served.
        let (shop, bank) = (ProjectId::from("shop"), ProjectId::from("bank"));
        store
            .record_calls("r1", day, &shop, &[call("local", true, true, 0.0, 0.0005)])
            .await
            .unwrap();
        store
            .record_calls(
                "r2",
                day + 86_400_000,
                &bank,
                &[
                    call("local", true, false, 0.0, 0.0),
                    call("cloud", false, true, 0.0002, 0.0005),
                ],
            )
            .await
            .unwrap();
        let report = store.cost_report(0, None).await.unwrap();
        assert_eq!(report.total.requests, 2);
        assert_eq!(report.total.calls, 3);
        assert_eq!(report.total.escalations, 1);
        assert_eq!(report.total.local_share, 0.5);
        assert!((report.total.cost_usd - 0.0002).abs() < 1e-12);
        assert!((report.total.savings_usd - 0.0008).abs() < 1e-12);
        assert_eq!(report.by_day.len(), 2);
        assert_eq!(report.by_day[0].key, "2025-11-24");
        assert_eq!(report.by_agent[0].key, "reviewer");
        assert_eq!(report.by_provider.len(), 2);
        let keys: Vec<&str> = report
            .by_project
            .iter()
            .map(|line| line.key.as_str())
            .collect();
        assert_eq!(keys, ["bank", "shop"]);
        let later = store.cost_report(day + 1, None).await.unwrap();
        assert_eq!(later.total.requests, 1);
        // A report for some projects holds their calls only.
        let shop_only = store.cost_report(0, Some(&[shop])).await.unwrap();
        assert_eq!((shop_only.total.calls, shop_only.by_project.len()), (1, 1));
        let none = store.cost_report(0, Some(&[])).await.unwrap();
        assert_eq!(none.total.calls, 0, "no project: nothing");
    }

    /// An agent's refusal marks the answer it was served, not the calls the chain
    /// escalated past, and is counted per provider; a run's calls are found by its id.
    #[tokio::test]
    async fn a_refusal_marks_the_served_answer_of_its_request() {
        let store = Store::memory().await.unwrap();
        let shop = ProjectId::from("shop");
        let billing = |run: &str| Billing {
            run_id: run.into(),
            task: "code[0]".into(),
            ..Billing::default()
        };
        let calls = [
            call("local", true, false, 0.0, 0.0),
            call("cloud", false, true, 0.0002, 0.0005),
        ];
        let (first, second) = (billing("run-1"), billing("run-2"));
        store
            .record_run_calls("r1", 1, &shop, (&first, 0.0), &calls)
            .await
            .unwrap();
        store
            .record_run_calls("r2", 2, &shop, (&second, 0.0), &calls)
            .await
            .unwrap();
        store
            .mark_refused("r1", "the answer loops: \"ok\" repeats 30 times")
            .await
            .unwrap();

        let run = store.calls_of_run("run-1").await.unwrap();
        // The calls of one request share their time: in no particular order.
        let mut marked: Vec<(&str, Option<&str>)> = run
            .iter()
            .map(|row| (row.provider.as_str(), row.refused.as_deref()))
            .collect();
        marked.sort_unstable();
        assert_eq!(
            marked,
            [
                ("cloud", Some("the answer loops: \"ok\" repeats 30 times")),
                ("local", None)
            ]
        );
        assert!(run.iter().all(|row| row.task.as_deref() == Some("code[0]")));
        let report = store.cost_report(0, None).await.unwrap();
        let refusals: Vec<(&str, u64)> = report
            .by_provider
            .iter()
            .map(|line| (line.key.as_str(), line.refusals))
            .collect();
        assert_eq!(refusals, [("cloud", 1), ("local", 0)]);
        assert_eq!(store.calls_of_run("run-3").await.unwrap().len(), 0);
    }
}
