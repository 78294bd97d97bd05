//! `planner`: a goal → a numbered plan of steps.

use serde_json::{Map, Value, json};

use super::session::Session;
use super::{CrewConfig, extract, required_text, text};
use crate::agent::{Agent, AgentContext, AgentOutput};
use crate::errors::AgentError;
use crate::memory::MemoryKind;
use crate::model::Turn;
use crate::schema::{Field, FieldType, InputSchema};

const MAX_STEPS: usize = 12;

pub struct PlannerAgent {
    config: CrewConfig,
    schema: InputSchema,
}

impl PlannerAgent {
    pub fn new(config: CrewConfig) -> Self {
        Self {
            config,
            schema: InputSchema {
                fields: vec![
                    Field::new("goal", FieldType::String, true, "what is to be achieved"),
                    Field::new(
                        "context",
                        FieldType::String,
                        false,
                        "constraints, existing code",
                    ),
                ],
                open: false,
            },
        }
    }
}

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

#[async_trait::async_trait]
impl Agent for PlannerAgent {
    fn kind(&self) -> &'static str {
        "planner"
    }
    fn description(&self) -> &'static str {
        "Turns a goal into a numbered plan of steps (model-backed)"
    }
    fn input_schema(&self) -> &InputSchema {
        &self.schema
    }

    async fn run(
        &self,
        inputs: Map<String, Value>,
        context: AgentContext,
    ) -> Result<AgentOutput, AgentError> {
        let goal = required_text(&inputs, "goal")?;
        let mut session = Session::begin(self.kind(), &context, &self.config)?;
        let notes = session.recall(goal).await;
        let background = text(&inputs, "context")
            .map(|context| {
                format!(
                    "\nContext: {}",
                    super::quoted(context, self.config.max_quoted_chars)
                )
            })
            .unwrap_or_default();
        let turns = vec![
            Turn::system(format!(
                "You are a planner for a software team. You answer with a numbered list of \
                 3 to 6 short steps and nothing else.{notes}"
            )),
            Turn::user("Goal: a calculator that keeps a history of results."),
            Turn::assistant(
                "1. Parse expressions into numbers and operators\n2. Evaluate the parsed expression\n3. Store each result in a history list\n4. Print the result and the history",
            ),
            Turn::user(format!("Goal: {goal}{background}")),
        ];
        let steps = session.ask(turns, "chat", parse_plan).await?;
        let plan = steps
            .iter()
            .enumerate()
            .map(|(index, step)| format!("{}. {step}", index + 1))
            .collect::<Vec<_>>()
            .join("\n");
        session
            .record(
                MemoryKind::ShortTerm,
                format!("Plan for \"{goal}\":\n{plan}"),
                json!({}),
            )
            .await;
        session
            .record(
                MemoryKind::Episodic,
                format!("Planned \"{goal}\" in {} steps", steps.len()),
                json!({ "steps": steps }),
            )
            .await;
        let mut outputs = Map::new();
        outputs.insert("count".into(), json!(steps.len()));
        outputs.insert("steps".into(), json!(steps));
        outputs.insert("plan".into(), json!(plan));
        Ok(session.finish(outputs))
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
        assert!(parse_plan("I cannot help with that.").is_err());
        assert!(parse_plan("1. 42\n- ...").is_err());
        let long = (1..40)
            .map(|n| format!("{n}. step {n}\n"))
            .collect::<String>();
        assert_eq!(parse_plan(&long).map(|steps| steps.len()), Ok(MAX_STEPS));
    }
}
