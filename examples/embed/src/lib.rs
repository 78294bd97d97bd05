//! Troupe as a library: a program starts a node of its own with `NodeBuilder`, adds an
//! agent kind written in Rust (`word_count`), and runs a workflow that uses it beside a
//! built-in kind. `cargo run -p troupe-example-embed` runs it; the tests below check it.

use std::collections::BTreeMap;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, json};
use troupe_agents::{AgentContext, AgentError, AgentOutput, TypedAgent};
use troupe_config::Settings;
use troupe_node::{NodeBuilder, NodeError, Person, RunDetail, RunOptions};

/// The workflow the example runs: the custom kind counts, the built-in `echo` reports.
pub const WORKFLOW: &str = r#"
name: Count words
tasks:
  - id: count
    name: Count the words
    agent: word_count
    inputs:
      text: "{{ variables.text }}"
  - id: report
    name: Report the count
    agent: echo
    depends_on: [count]
    inputs:
      words: "{{ tasks.count.outputs.words }}"
variables:
  text: "the quick brown fox"
"#;

/// `word_count`'s inputs: what a task gives it is checked against this struct before
/// the kind runs, and the API lists the kind's inputs from it.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WordCountInputs {
    /// The text whose words are counted.
    text: String,
}

/// An agent kind of the embedding program's own: counts the words of `text`.
pub struct WordCount;

#[async_trait::async_trait]
impl TypedAgent for WordCount {
    const KIND: &'static str = "word_count";
    const DESCRIPTION: &'static str = "Counts the words of a text.";
    type Inputs = WordCountInputs;

    async fn attempt(
        &self,
        inputs: WordCountInputs,
        context: AgentContext,
    ) -> Result<AgentOutput, AgentError> {
        if context.cancel.is_cancelled() {
            return Err(AgentError::Cancelled);
        }
        let mut outputs = Map::new();
        outputs.insert(
            "words".into(),
            json!(inputs.text.split_whitespace().count()),
        );
        Ok(AgentOutput {
            outputs,
            cost_usd: 0.0,
        })
    }
}

/// Starts a node on `settings` with `word_count` added, runs [`WORKFLOW`] on `text`
/// and returns the finished run.
pub async fn count_words(settings: Settings, text: &str) -> Result<RunDetail, NodeError> {
    let node = NodeBuilder::new(settings)
        .agent_kind(Arc::new(WordCount))
        .start()
        .await?;
    let (workflow_id, _) = node
        .save_workflow(WORKFLOW, "count-words.yaml", "embed")
        .await?;
    let options = RunOptions {
        variables: BTreeMap::from([("text".to_string(), json!(text))]),
        ..RunOptions::default()
    };
    let run_id = node
        .start_run(&workflow_id, options, &Person::named("embed"))
        .await?;
    let finished = node.finished_run(&run_id).await;
    node.shutdown().await;
    finished
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        let mut settings = Settings::defaults_with_store("mem://");
        settings.models.serve = false;
        settings
    }

    #[tokio::test]
    async fn a_workflow_runs_the_embedding_programs_own_kind() {
        let run = count_words(settings(), "one two three four five")
            .await
            .expect("the run finishes");
        assert_eq!(run.record.status.as_str(), "completed", "{run:?}");
        let report = run
            .tasks
            .iter()
            .find(|task| task.id == "report")
            .expect("the report task");
        assert_eq!(
            report
                .outputs
                .as_ref()
                .and_then(|outputs| outputs.get("words")),
            Some(&json!(5)),
            "the echo task reports the custom kind's count"
        );
    }

    #[tokio::test]
    async fn a_kind_may_not_take_a_built_in_name() {
        struct Impostor;
        #[async_trait::async_trait]
        impl TypedAgent for Impostor {
            const KIND: &'static str = "shell";
            const DESCRIPTION: &'static str = "not the real shell";
            type Inputs = WordCountInputs;
            async fn attempt(
                &self,
                _: WordCountInputs,
                _: AgentContext,
            ) -> Result<AgentOutput, AgentError> {
                Err(AgentError::Cancelled)
            }
        }
        let refused = NodeBuilder::new(settings())
            .agent_kind(Arc::new(Impostor))
            .start()
            .await
            .err()
            .expect("a node with two `shell` kinds is refused");
        assert!(
            matches!(&refused, NodeError::AgentKinds(message) if message.contains("`shell` is taken")),
            "{refused}"
        );
    }
}
