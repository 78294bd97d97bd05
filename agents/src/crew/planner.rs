//! `planner`: a goal → a numbered plan of steps.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, json};

use super::inputs::{Text, given};
use super::{Conclusion, CrewConfig, CrewKind, Question, extract, only};
use crate::errors::AgentError;
use crate::memory::MemoryKind;
use crate::model::Turn;

const MAX_STEPS: usize = 12;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlannerInputs {
    /// What is to be achieved.
    goal: Text,
    /// Constraints, existing code.
    context: Option<String>,
}

#[derive(Default)]
pub struct Planner;

/// The steps of a plan: numbered or bulleted lines, at least one, at most [`MAX_STEPS`].
pub fn parse_plan(answer: &str) -> Result<Vec<String>, String> {
    let steps: Vec<String> = extract::list_items(answer)
        .into_iter()
        .filter(|step| step.chars().any(char::is_alphabetic))
        .map(|step| step.chars().take(300).collect())
        .take(MAX_STEPS)
        .collect();
    if steps.is_empty() {
        return Err("it has no numbered steps".into());
    }
    Ok(steps)
}

impl CrewKind for Planner {
    const KIND: &'static str = "planner";
    const DESCRIPTION: &'static str = "Turns a goal into a numbered plan of steps (model-backed)";
    type Inputs = PlannerInputs;
    type Task = PlannerInputs;
    type Answer = Vec<String>;

    fn prepare(&self, inputs: PlannerInputs, _: &CrewConfig) -> Result<PlannerInputs, AgentError> {
        Ok(inputs)
    }

    fn questions(&self, task: &PlannerInputs, config: &CrewConfig) -> Vec<Question> {
        let goal = task.goal.as_str();
        let background = given(&task.context)
            .map(|context| {
                format!(
                    "\nContext: {}",
                    super::quoted(context, config.max_quoted_chars)
                )
            })
            .unwrap_or_default();
        let turns = vec![
            Turn::system(
                "You are a planner for a software team. You answer with a numbered list of \
                 3 to 6 short steps and nothing else.",
            ),
            Turn::user("Goal: a calculator that keeps a history of results."),
            Turn::assistant(
                "1. Parse expressions into numbers and operators\n2. Evaluate the parsed expression\n3. Store each result in a history list\n4. Print the result and the history",
            ),
            Turn::user(format!("Goal: {goal}{background}")),
        ];
        vec![Question {
            recall: goal.to_string(),
            task_type: "chat",
            turns,
            simpler: None,
        }]
    }

    fn parse(&self, _: &PlannerInputs, answer: &str) -> Result<Vec<String>, String> {
        parse_plan(answer)
    }

    fn conclude(
        &self,
        task: PlannerInputs,
        answers: Vec<Vec<String>>,
    ) -> Result<Conclusion, AgentError> {
        let steps = only(answers)?;
        let goal = task.goal.as_str();
        let plan = steps
            .iter()
            .enumerate()
            .map(|(index, step)| format!("{}. {step}", index + 1))
            .collect::<Vec<_>>()
            .join("\n");
        let memories = vec![
            (
                MemoryKind::ShortTerm,
                format!("Plan for \"{goal}\":\n{plan}"),
                json!({}),
            ),
            (
                MemoryKind::Episodic,
                format!("Planned \"{goal}\" in {} steps", steps.len()),
                json!({ "steps": steps }),
            ),
        ];
        let mut outputs = Map::new();
        outputs.insert("count".into(), json!(steps.len()));
        outputs.insert("steps".into(), json!(steps));
        outputs.insert("plan".into(), json!(plan));
        Ok(Conclusion { outputs, memories })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_need_steps() {
        assert_eq!(
            parse_plan("1. Parse\n2. Store\n"),
            Ok(vec!["Parse".to_string(), "Store".to_string()])
        );
        let no_steps = Err("it has no numbered steps".to_string());
        assert_eq!(parse_plan("I cannot help with that."), no_steps);
        assert_eq!(parse_plan("1. 42\n- ..."), no_steps);
        let long = (1..40)
            .map(|n| format!("{n}. step {n}\n"))
            .collect::<String>();
        assert_eq!(parse_plan(&long).map(|steps| steps.len()), Ok(MAX_STEPS));
    }
}
