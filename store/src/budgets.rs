//! Run budgets. A paid call is made only after its worst case is *held* against each
//! budget that applies (the run's, its task's): the hold succeeds where what the ledger
//! says the run (or task) spent, plus what calls under way hold, plus this call's worst
//! case stays within the budget. The hold is a write to one `run_budget` row per
//! budget, in one transaction with the ledger read, so two calls racing for the last
//! dollar (on one node or two) conflict and one of them reads again; and the calls are
//! written to the ledger in the transaction that lets go of their hold, so a reader
//! never sees a call neither spent nor held.

use serde_json::{Value, json};
use troupe_agents::Billing;

use crate::Store;
use crate::error::StoreError;

/// Thrown by a hold that would go over: the text the refusal is found by.
const OVER_BUDGET: &str = "troupe-over-budget";

/// How many times a hold that lost a write conflict is tried again.
const HOLD_TRIES: usize = 8;

/// A budget a call did not fit in, for the error that says so.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    /// `the run` or `task `code``.
    pub scope: String,
    pub budget_usd: f64,
    pub spent_usd: f64,
    pub held_usd: f64,
}

/// The budgets that apply to `billing`'s calls: the `run_budget` row's key (the task,
/// or `""` for the run) and the limit.
fn limits(billing: &Billing) -> Vec<(&str, f64)> {
    let run = billing.run_budget_usd.map(|usd| ("", usd));
    let task = billing
        .task_budget_usd
        .map(|usd| (billing.budget_task(), usd));
    run.into_iter().chain(task).collect()
}

/// The ledger's spend for `key` (`""`: the whole run): SurrealQL over `$run`.
fn spent_query(key: &str, name: &str) -> String {
    let of_task = if key.is_empty() {
        String::new()
    } else {
        format!("AND (task = ${name} OR string::starts_with(task ?? '', ${name} + '['))")
    };
    format!("math::sum(SELECT VALUE cost_usd FROM inference_call WHERE run_id = $run {of_task})")
}

/// SurrealQL that lets go of `$held` on every budget of `billing` (over `$run` and
/// `$task`), for the transaction that records the calls it was held for.
pub(crate) fn release(billing: &Billing) -> String {
    limits(billing)
        .iter()
        .map(|(key, _)| {
            let key = if key.is_empty() { "''" } else { "$task" };
            format!(
                "UPDATE type::record('run_budget', [$run, {key}]) SET held_usd -= $held RETURN NONE;"
            )
        })
        .collect()
}

/// Whether a hold failed because another write to its rows won: a conflict, or the
/// transaction failing whole at its commit, which SurrealDB may report without naming
/// the conflict.
fn lost_a_race(error: &StoreError) -> bool {
    error.is_taken("conflict") || error.is_taken("failed transaction")
}

impl Store {
    /// Holds `worst_usd` against every budget of `billing`, all or none: `Some` names
    /// the budget it would have gone over, and nothing is held.
    pub async fn hold_budget(
        &self,
        billing: &Billing,
        worst_usd: f64,
    ) -> Result<Option<Refusal>, StoreError> {
        let limits = limits(billing);
        let mut statements = String::from("BEGIN TRANSACTION;\n");
        let mut vars = json!({ "run": billing.run_id, "w": worst_usd });
        for (index, (key, limit)) in limits.iter().enumerate() {
            let spent = spent_query(key, &format!("k{index}"));
            statements.push_str(&format!(
                "LET $held{index} = (UPSERT type::record('run_budget', [$run, $k{index}])
                     SET held_usd = (held_usd OR 0) + $w RETURN VALUE held_usd)[0];
                 IF {spent} + $held{index} > $l{index} {{ THROW '{OVER_BUDGET}:{index}' }};\n"
            ));
            vars[format!("k{index}")] = json!(key);
            vars[format!("l{index}")] = json!(limit);
        }
        statements.push_str("COMMIT TRANSACTION;");
        let mut tries = 0;
        loop {
            tries += 1;
            let answered = self.db.query(&statements).bind(vars.clone()).await;
            match crate::thrown_by(&mut answered?, OVER_BUDGET) {
                Ok(None) => return Ok(None),
                Ok(Some(thrown)) => {
                    let index = usize::from(thrown.contains(&format!("{OVER_BUDGET}:1")));
                    let (key, limit) = limits[index];
                    return self.refusal(billing, key, limit).await.map(Some);
                }
                // Another hold (or a release) wrote the row first, and the transaction
                // failed whole (nothing held): read again.
                Err(error) if lost_a_race(&error) && tries < HOLD_TRIES => continue,
                Err(error) => return Err(error),
            }
        }
    }

    /// What `key`'s budget has spent and holds now.
    async fn refusal(
        &self,
        billing: &Billing,
        key: &str,
        limit: f64,
    ) -> Result<Refusal, StoreError> {
        // A returned array comes back as its items: spent, then held.
        let now: Vec<f64> = self
            .rows(
                &format!(
                    "RETURN [{}, (SELECT VALUE held_usd FROM type::record('run_budget', [$run, $k0]))[0] ?? 0]",
                    spent_query(key, "k0")
                ),
                json!({ "run": billing.run_id, "k0": key }),
            )
            .await?;
        let (spent_usd, held_usd) = match now[..] {
            [spent, held] => (spent, held),
            _ => return Err(StoreError::Corrupt(format!("a budget read as {now:?}"))),
        };
        Ok(Refusal {
            scope: if key.is_empty() {
                "the run".into()
            } else {
                format!("task `{key}`")
            },
            budget_usd: limit,
            spent_usd,
            held_usd,
        })
    }

    /// What the ledger says `run` spent, every task together.
    pub async fn run_spend(&self, run: &str) -> Result<f64, StoreError> {
        let spent: Vec<Value> = self
            .rows(
                &format!("RETURN {}", spent_query("", "")),
                json!({ "run": run }),
            )
            .await?;
        Ok(spent.first().and_then(Value::as_f64).unwrap_or(0.0))
    }

    /// What a task of agent `kind` cost on average, over the runs' tasks of the last
    /// 30 days the ledger has calls of; `None` when it has none.
    pub async fn average_task_cost(
        &self,
        kind: &str,
        now_ms: i64,
    ) -> Result<Option<f64>, StoreError> {
        const WINDOW_MS: i64 = 30 * 86_400_000;
        let costs: Vec<f64> = self
            .rows(
                "SELECT VALUE cost FROM (
                     SELECT run_id, task, math::sum(cost_usd) AS cost FROM inference_call
                     WHERE at_ms >= $since AND agent = $kind AND run_id != NONE
                     GROUP BY run_id, task)",
                json!({ "since": now_ms - WINDOW_MS, "kind": kind }),
            )
            .await?;
        Ok((!costs.is_empty()).then(|| costs.iter().sum::<f64>() / costs.len() as f64))
    }
}

#[cfg(test)]
mod tests {
    use troupe_inference::providers::CallRecord;

    use super::*;
    use crate::ProjectId;

    fn billing(task: &str, run_usd: Option<f64>, task_usd: Option<f64>) -> Billing {
        Billing {
            run_id: "run-1".into(),
            task: task.into(),
            run_budget_usd: run_usd,
            task_budget_usd: task_usd,
            local_only: false,
        }
    }

    fn paid(cost_usd: f64) -> CallRecord {
        CallRecord {
            provider: "cloud".into(),
            model: "m".into(),
            local: false,
            task_type: "code".into(),
            agent: Some("coder".into()),
            tokens_in: 100,
            tokens_out: 20,
            latency_ms: 50,
            cost_usd,
            baseline_usd: cost_usd,
            quality: Some(0.9),
            escalated: false,
            served: true,
            error: None,
        }
    }

    async fn record(store: &Store, billing: &Billing, held: f64, cost: f64) {
        let project = ProjectId::from("default");
        let id = uuid::Uuid::now_v7().to_string();
        store
            .record_run_calls(&id, 1_000, &project, (billing, held), &[paid(cost)])
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_hold_fits_what_the_ledger_and_other_holds_leave() {
        let store = Store::memory().await.unwrap();
        let code = billing("code", Some(1.0), None);
        assert_eq!(store.hold_budget(&code, 0.6).await.unwrap(), None);
        let refused = store.hold_budget(&code, 0.5).await.unwrap();
        assert_eq!(
            refused,
            Some(Refusal {
                scope: "the run".into(),
                budget_usd: 1.0,
                spent_usd: 0.0,
                held_usd: 0.6,
            }),
            "0.6 held and 0.5 more would pass 1.0"
        );
        // The call cost less than its worst case: recording it lets go of the hold.
        record(&store, &code, 0.6, 0.2).await;
        assert_eq!(store.run_spend("run-1").await.unwrap(), 0.2);
        assert_eq!(store.hold_budget(&code, 0.8).await.unwrap(), None);
        let refused = store.hold_budget(&code, 0.01).await.unwrap().unwrap();
        assert_eq!((refused.spent_usd, refused.held_usd), (0.2, 0.8));
    }

    #[tokio::test]
    async fn a_task_budget_counts_its_fan_out_children_together() {
        let store = Store::memory().await.unwrap();
        let first = billing("code[0]", Some(10.0), Some(0.5));
        record(&store, &first, 0.0, 0.3).await;
        let second = billing("code[1]", Some(10.0), Some(0.5));
        let refused = store.hold_budget(&second, 0.3).await.unwrap().unwrap();
        assert_eq!(refused.scope, "task `code`");
        assert_eq!(refused.spent_usd, 0.3, "code[0]'s call counts for code[1]");
        // Another task of the run has its own budget; the run's has room.
        let other = billing("coder", Some(10.0), Some(0.5));
        assert_eq!(store.hold_budget(&other, 0.4).await.unwrap(), None);
        // Nothing was held by the refusal: the run's row holds the one hold that fit.
        let run_only = billing("review", Some(0.75), None);
        assert_eq!(store.hold_budget(&run_only, 0.0).await.unwrap(), None);
        let refused = store.hold_budget(&run_only, 0.1).await.unwrap().unwrap();
        assert_eq!((refused.spent_usd, refused.held_usd), (0.3, 0.4));
    }

    #[tokio::test]
    async fn racing_holds_never_pass_the_budget_together() {
        let store = Store::memory().await.unwrap();
        let holds = (0..20).map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .hold_budget(&billing("code", Some(1.0), None), 0.1)
                    .await
            })
        });
        let mut granted = 0;
        for hold in holds {
            match hold.await.unwrap() {
                Ok(None) => granted += 1,
                Ok(Some(_)) => {}
                Err(error) => assert!(lost_a_race(&error), "{error}"),
            }
        }
        assert!(granted <= 10, "{granted} holds of 0.1 fit in 1.0");
        assert!(granted >= 1);
    }

    #[tokio::test]
    async fn the_average_task_cost_of_a_kind_comes_from_the_ledger() {
        let store = Store::memory().await.unwrap();
        assert_eq!(store.average_task_cost("coder", 2_000).await.unwrap(), None);
        let one = billing("code[0]", None, None);
        record(&store, &one, 0.0, 0.1).await;
        record(&store, &one, 0.0, 0.2).await;
        record(&store, &billing("code[1]", None, None), 0.0, 0.1).await;
        let average = store
            .average_task_cost("coder", 2_000)
            .await
            .unwrap()
            .unwrap();
        assert!(
            (average - 0.2).abs() < 1e-9,
            "(0.3 + 0.1) / 2 tasks, not 3 calls: {average}"
        );
    }
}
