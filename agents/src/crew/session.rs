//! One model-backed attempt: the model and memory it may use, what it recalled, what its
//! model calls cost; and the outputs every model-backed kind adds to its own.

use serde_json::{Map, Value, json};

use crate::agent::{AgentContext, AgentOutput};
use crate::crew::CrewConfig;
use crate::errors::AgentError;
use crate::memory::{MemoryKind, NewMemory, Recalled};
use crate::model::{CallSummary, Consultation, ModelClient, ModelRequest, Turn, ask_validated};

pub struct Session<'a> {
    agent: &'a str,
    context: &'a AgentContext,
    config: &'a CrewConfig,
    model: &'a dyn ModelClient,
    recalled: Vec<Recalled>,
    memory_problems: Vec<String>,
    calls: Vec<CallSummary>,
    cost_usd: f64,
}

impl<'a> Session<'a> {
    pub fn begin(
        agent: &'a str,
        context: &'a AgentContext,
        config: &'a CrewConfig,
    ) -> Result<Self, AgentError> {
        let model = context.services.model.as_deref().ok_or_else(|| {
            AgentError::Unavailable(format!(
                "`{agent}` needs a model and this node has none: serve the local model \
                 (models.serve = true, after `troupe models fetch`) or configure a provider"
            ))
        })?;
        Ok(Self {
            agent,
            context,
            config,
            model,
            recalled: Vec::new(),
            memory_problems: Vec::new(),
            calls: Vec::new(),
            cost_usd: 0.0,
        })
    }

    /// What memory holds near `query`, as a prompt section (empty when nothing is near
    /// enough). A memory outage does not stop the task; it is reported in the outputs.
    pub async fn recall(&mut self, query: &str) -> String {
        let Some(memory) = &self.context.services.memory else {
            return String::new();
        };
        match memory
            .recall(&self.context.scope, query, self.config.recall_k)
            .await
        {
            Ok(found) => {
                self.recalled = found
                    .into_iter()
                    .filter(|entry| entry.score >= self.config.min_recall_score)
                    .collect();
            }
            Err(error) => self.memory_problems.push(format!("recall: {error}")),
        }
        if self.recalled.is_empty() {
            return String::new();
        }
        let notes: Vec<String> = self
            .recalled
            .iter()
            .map(|entry| format!("- {}", super::quoted(&entry.text, 400)))
            .collect();
        format!(
            "\n\nNotes from earlier work on this project (use them if they help):\n{}",
            notes.join("\n")
        )
    }

    /// Asks the chain until `validate` accepts an answer (see [`ask_validated`]), with
    /// `simpler` (the question without its optional context) used for the calls after
    /// a refused answer.
    pub async fn ask<T>(
        &mut self,
        turns: Vec<Turn>,
        simpler: Option<Vec<Turn>>,
        task_type: &'static str,
        validate: impl Fn(&str) -> Result<T, String>,
    ) -> Result<T, AgentError> {
        let request = ModelRequest {
            turns,
            max_tokens: self.config.max_tokens,
            temperature: self.config.policy.first_temperature(self.context.attempt),
            seed: self.context.seed,
            task_type,
            agent: self.agent.to_string(),
            project: self.context.scope.project.clone(),
            exclude_providers: Vec::new(),
            simpler_turns: simpler,
            billing: self.context.billing.clone(),
        };
        let asked = ask_validated(self.model, request, self.config.policy, validate);
        let Consultation {
            value,
            calls,
            cost_usd,
        } = tokio::select! {
            asked = asked => asked?,
            () = self.context.cancel.cancelled() => return Err(AgentError::Cancelled),
        };
        self.calls.extend(calls);
        self.cost_usd += cost_usd;
        Ok(value)
    }

    /// Records what this attempt did.
    pub async fn record(&mut self, kind: MemoryKind, text: String, details: Value) {
        let Some(memory) = &self.context.services.memory else {
            return;
        };
        let entry = NewMemory {
            kind,
            text,
            metadata: json!({
                "agent": self.agent,
                "task": self.context.idempotency_key,
                "details": details,
            }),
        };
        if let Err(error) = memory.remember(&self.context.scope, entry).await {
            self.memory_problems.push(format!("remember: {error}"));
        }
    }

    /// The kind's own outputs plus `model` (provider, calls) and `recalled`.
    pub fn finish(self, mut outputs: Map<String, Value>) -> AgentOutput {
        let provider = self
            .calls
            .last()
            .map_or(String::new(), |call| call.provider.clone());
        outputs.insert(
            "model".into(),
            json!({ "provider": provider, "calls": self.calls }),
        );
        outputs.insert(
            "recalled".into(),
            Value::Array(
                self.recalled
                    .iter()
                    .map(|entry| json!({"id": entry.id, "text": entry.text, "score": entry.score}))
                    .collect(),
            ),
        );
        if !self.memory_problems.is_empty() {
            outputs.insert("memory_problems".into(), json!(self.memory_problems));
        }
        AgentOutput {
            outputs,
            cost_usd: self.cost_usd,
        }
    }
}
