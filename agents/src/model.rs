//! What model-backed agents need from the node: a way to ask the provider chain, and the
//! loop that checks each answer and asks again (or escalates) when it is malformed.
//!
//! The crate knows nothing of the chain itself; the runtime implements [`ModelClient`]
//! over it (local workers first, paid providers after, every call in the cost ledger).

use serde::{Deserialize, Serialize};

use crate::errors::AgentError;

/// One turn of a conversation with the model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Turn {
    pub role: &'static str,
    pub content: String,
}

impl Turn {
    pub fn system(content: impl Into<String>) -> Self {
        Self {
            role: "system",
            content: content.into(),
        }
    }
    pub fn user(content: impl Into<String>) -> Self {
        Self {
            role: "user",
            content: content.into(),
        }
    }
    pub fn assistant(content: impl Into<String>) -> Self {
        Self {
            role: "assistant",
            content: content.into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ModelRequest {
    pub turns: Vec<Turn>,
    pub max_tokens: usize,
    pub temperature: f64,
    /// The local model's sampling seed for the first call; each later call of a
    /// consultation adds one. Derived from the attempt, so that an attempt replayed
    /// after a crash asks the same and a retried attempt asks anew.
    pub seed: u64,
    /// What the quality gate checks: `code`, `json`, `diff`, `chat`, ...
    pub task_type: &'static str,
    /// The agent kind asking, for the cost report.
    pub agent: String,
    /// The project the call is billed to (the run's): its spend cap applies.
    pub project: String,
    /// Providers not to ask (they already gave an answer that failed validation).
    pub exclude_providers: Vec<String>,
    /// The same question without its optional context (plan, notes, long quotes), asked
    /// after a refused answer: small models lose the answer format in long prompts.
    pub simpler_turns: Option<Vec<Turn>>,
    /// The run and task the call is for, and their budgets; `None` outside a run.
    pub billing: Option<Billing>,
}

/// Whose run a task's model calls are for, and what they may cost. The node checks
/// every call against the ledger before making it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Billing {
    pub run_id: String,
    /// The task (`code[2]` for a fan-out's child): its calls count against
    /// `task_budget_usd` together with its siblings'.
    pub task: String,
    /// USD the run may spend on paid calls; `None`: no cap.
    pub run_budget_usd: Option<f64>,
    /// USD the task (its children together) may spend; `None`: no cap.
    pub task_budget_usd: Option<f64>,
    /// A call that would go over goes to local models only, instead of failing the task.
    pub local_only: bool,
}

impl Billing {
    /// The task whose budget a call counts against: a fan-out child's parent.
    pub fn budget_task(&self) -> &str {
        // Children are `parent[index]`, and task ids never hold `[`.
        self.task.split('[').next().unwrap_or(&self.task)
    }

    pub fn has_budget(&self) -> bool {
        self.run_budget_usd.is_some() || self.task_budget_usd.is_some()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ModelReply {
    pub text: String,
    pub provider: String,
    pub quality: f64,
    /// Why the quality gate found the answer degenerate (a loop), if it did.
    pub degenerate: Option<String>,
    pub cost_usd: f64,
    /// The ledger's id of the request that gave this answer, so that a refusal of it
    /// can be recorded there (see [`ModelClient::refused`]).
    pub request_id: String,
}

#[async_trait::async_trait]
pub trait ModelClient: Send + Sync + 'static {
    /// The providers of the chain for a task type, in the order they are tried.
    fn providers(&self, task_type: &str) -> Vec<String>;
    async fn complete(&self, request: &ModelRequest) -> Result<ModelReply, AgentError>;
    /// Records that the agent refused `reply` for `reason`: the ledger then tells, per
    /// provider and model, how many of the answers served were usable. A failure to
    /// record is the client's to report; it never fails the task.
    async fn refused(&self, reply: &ModelReply, reason: &str);
}

/// How hard to try before giving up on malformed answers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AskPolicy {
    /// Model calls per agent attempt, at least 1.
    pub max_calls: u32,
    /// Added to the temperature on each retry with the same provider, so that the same
    /// prompt does not get the same refused answer again.
    pub temperature_step: f64,
}

impl Default for AskPolicy {
    fn default() -> Self {
        Self {
            max_calls: 3,
            temperature_step: 0.3,
        }
    }
}

impl AskPolicy {
    /// The first call's temperature in attempt number `attempt`: greedy in the first,
    /// a step warmer in each one after. A retried attempt that began greedy again would
    /// get the answer that failed its predecessor back, whatever its seed.
    pub fn first_temperature(&self, attempt: u32) -> f64 {
        (self.temperature_step * f64::from(attempt.saturating_sub(1))).min(1.0)
    }
}

/// One model call of a consultation, as the agent's outputs report it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallSummary {
    pub provider: String,
    pub quality: f64,
    pub temperature: f64,
    /// Why the answer was refused; `None` for the answer used.
    pub refused: Option<String>,
}

/// An accepted answer and how it was reached.
#[derive(Debug, Clone, PartialEq)]
pub struct Consultation<T> {
    pub value: T,
    pub calls: Vec<CallSummary>,
    pub cost_usd: f64,
}

impl<T> Consultation<T> {
    /// The provider whose answer was accepted.
    pub fn provider(&self) -> &str {
        self.calls.last().map_or("", |call| call.provider.as_str())
    }
}

/// The quality gate's refusal of `reply`, if it found it degenerate: the chain returns
/// its best answer even when every provider's was junk, and junk must not be built on.
fn gate(reply: &ModelReply) -> Result<(), String> {
    match &reply.degenerate {
        None => Ok(()),
        Some(why) => Err(format!("the quality gate refused it: {why}")),
    }
}

/// Asks until `validate` accepts an answer or `policy.max_calls` calls were made.
///
/// An answer the quality gate found degenerate (one phrase over and over) is refused
/// before `validate` sees it, whatever else it holds; whether an answer is well formed
/// is `validate`'s to judge, since it may keep the part of a cut answer that is. A
/// refused answer is fed back (in the system turn, so that a small model does not copy
/// its own bad answer), and the next call changes: the request's simpler prompt
/// replaces the full one, a little warmer, when it has one; else it skips the provider
/// that answered, when the chain has another one left; with none left it asks the same
/// provider again at a higher temperature. Each call samples with the next seed.
pub async fn ask_validated<T>(
    client: &dyn ModelClient,
    mut request: ModelRequest,
    policy: AskPolicy,
    validate: impl Fn(&str) -> Result<T, String>,
) -> Result<Consultation<T>, AgentError> {
    let chain = client.providers(request.task_type);
    let mut base_system = request
        .turns
        .first()
        .filter(|turn| turn.role == "system")
        .map(|turn| turn.content.clone());
    let mut calls = Vec::new();
    let mut cost_usd = 0.0;
    for call in 1..=policy.max_calls.max(1) {
        let reply = client.complete(&request).await?;
        cost_usd += reply.cost_usd;
        let mut summary = CallSummary {
            provider: reply.provider.clone(),
            quality: reply.quality,
            temperature: request.temperature,
            refused: None,
        };
        match gate(&reply).and_then(|()| validate(&reply.text)) {
            Ok(value) => {
                calls.push(summary);
                return Ok(Consultation {
                    value,
                    calls,
                    cost_usd,
                });
            }
            Err(problem) => {
                tracing::info!(agent = %request.agent, call, provider = %reply.provider, %problem, "model answer refused");
                summary.refused = Some(problem.clone());
                calls.push(summary);
                client.refused(&reply, &problem).await;
                if call == policy.max_calls.max(1) {
                    let excerpt: String = reply.text.chars().take(160).collect();
                    return Err(AgentError::ModelOutput {
                        agent: request.agent.clone(),
                        calls: calls.len() as u32,
                        problem: format!("{problem}; the last answer began {excerpt:?}"),
                    });
                }
                request.seed = request.seed.wrapping_add(1);
                // What changes for the next call: a simpler prompt if there is one,
                // else another provider if the chain has one left. Whenever the same
                // provider answers again it is asked a little warmer: a small model's
                // greedy answer, even to the shorter prompt, is often the refused one.
                let same_provider = if let Some(simpler) = request.simpler_turns.take() {
                    base_system = simpler
                        .first()
                        .filter(|turn| turn.role == "system")
                        .map(|turn| turn.content.clone());
                    request.turns = simpler;
                    true
                } else if chain.iter().any(|name| {
                    *name != reply.provider && !request.exclude_providers.contains(name)
                }) {
                    request.exclude_providers.push(reply.provider.clone());
                    false
                } else {
                    true
                };
                if same_provider {
                    request.temperature = (request.temperature + policy.temperature_step).min(1.0);
                }
                let note = format!(
                    "\n\nA previous answer was refused because {problem}. Follow the format exactly."
                );
                match (&base_system, request.turns.first_mut()) {
                    (Some(system), Some(first)) => first.content = format!("{system}{note}"),
                    _ => request.turns.insert(0, Turn::system(note.trim_start())),
                }
            }
        }
    }
    // `max_calls.max(1)` iterations always return from inside the loop.
    Err(AgentError::Failed("no model call was made".into()))
}

#[cfg(test)]
mod tests {
    use super::AskPolicy;

    #[test]
    fn each_retried_attempt_begins_a_step_warmer_up_to_one() {
        let policy = AskPolicy::default();
        let firsts: Vec<f64> = (1..=5).map(|n| policy.first_temperature(n)).collect();
        assert_eq!(firsts[0], 0.0, "the first attempt is greedy");
        assert!((firsts[1] - 0.3).abs() < 1e-9, "{firsts:?}");
        assert!((firsts[2] - 0.6).abs() < 1e-9, "{firsts:?}");
        assert_eq!(firsts[4], 1.0, "capped at 1: {firsts:?}");
        assert_eq!(policy.first_temperature(0), 0.0);
    }
}
