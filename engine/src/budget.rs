//! A fan-out's estimate, checked against the run's budget before it expands: the
//! children of a fan-out that cannot fit are never started. Each model call is checked
//! again when it is made (the node's `BudgetGuard`); this is the early, whole-list look.

use troupe_workflow::{OnBudget, Task};

use crate::EngineError;
use crate::context::EngineContext;
use crate::state::{RunState, Step};

/// Each `Expand` step whose estimate does not fit what is left of the budgets, as a
/// `Fail` naming both; unchanged under `on_budget: local_only`, whose children run on
/// local models once the budget is spent.
pub(crate) async fn check_fan_outs(
    context: &EngineContext,
    run: &RunState,
    steps: &mut [Step],
) -> Result<(), EngineError> {
    if run.workflow.on_budget == OnBudget::LocalOnly {
        return Ok(());
    }
    for step in steps.iter_mut() {
        let Step::Expand { task, items } = step else {
            continue;
        };
        let Some(definition) = run.definition(task.as_str()) else {
            continue;
        };
        if run.workflow.budget_usd.is_none() && definition.budget_usd.is_none() {
            continue;
        }
        if let Some(reason) = over_budget(context, run, definition, items.len()).await? {
            *step = Step::Fail {
                task: task.clone(),
                reason,
            };
        }
    }
    Ok(())
}

/// Why `items` children of `definition` do not fit, or `None` when they do (or nothing
/// is known of what they cost).
async fn over_budget(
    context: &EngineContext,
    run: &RunState,
    definition: &Task,
    items: usize,
) -> Result<Option<String>, EngineError> {
    let (each, source) = if definition.estimated_cost > 0.0 {
        (definition.estimated_cost, "its estimated_cost".to_owned())
    } else {
        let now = context.clock.now_ms();
        match context
            .store
            .average_task_cost(&definition.agent, now)
            .await?
        {
            Some(average) => (
                average,
                format!("the ledger's average for `{}`", definition.agent),
            ),
            None => return Ok(None),
        }
    };
    let estimate = each * items as f64;
    let mut left = Vec::new();
    if let Some(budget) = run.workflow.budget_usd {
        let spent = context.store.run_spend(run.run_id.as_str()).await?;
        left.push((
            budget - spent,
            format!("the run's budget of ${budget:.4} (${spent:.4} spent)"),
        ));
    }
    if let Some(budget) = definition.budget_usd {
        left.push((
            budget,
            format!("task `{}`'s budget of ${budget:.4}", definition.id),
        ));
    }
    Ok(left
        .into_iter()
        .find(|(left, _)| estimate > *left)
        .map(|(_, budget)| {
            format!(
                "budget_exceeded: the fan-out's {items} items are estimated at ${estimate:.4} \
                 (${each:.4} each, from {source}), more than is left of {budget}; \
                 nothing was started (raise `budget_usd`, lower `max_items`, or set \
                 `on_budget: local_only`)"
            )
        }))
}
