//! The model-backed kinds: `planner`, `architect`, `code_generator`, `test_generator`,
//! `code_review`, `debugging`, `documentation`.
//!
//! Each one recalls what the project's memory holds about its task, asks the provider
//! chain with a prompt in a fixed answer format, checks the answer (parses, applies,
//! names what was asked for) and asks again, or escalates to the next provider, when it
//! does not; then records what it did as an episodic memory. Text from files and logs is
//! quoted to the model as data and nothing the model says is executed: the only effects
//! are files written inside the task's work directory.

mod architect;
mod code_generator;
mod code_review;
mod debugging;
mod documentation;
pub(crate) mod extract;
#[cfg(test)]
mod hostile_answers;
mod planner;
mod session;
pub(crate) mod source;
mod test_generator;
mod workspace;

pub use architect::ArchitectAgent;
pub use code_generator::CodeGeneratorAgent;
pub use code_review::CodeReviewAgent;
pub use debugging::DebuggingAgent;
pub use documentation::DocumentationAgent;
pub use planner::PlannerAgent;
pub use test_generator::TestGeneratorAgent;

use serde_json::{Map, Value};

use crate::errors::AgentError;
use crate::model::AskPolicy;

/// Limits shared by the model-backed kinds (`agents.model` in troupe.toml).
#[derive(Debug, Clone, PartialEq)]
pub struct CrewConfig {
    pub policy: AskPolicy,
    /// Memories put into a prompt, at most.
    pub recall_k: usize,
    /// Memories scoring below this (cosine) stay out of the prompt.
    pub min_recall_score: f64,
    /// Tokens one answer may take.
    pub max_tokens: usize,
    /// Per file read into a prompt.
    pub max_file_bytes: u64,
    /// Characters of files, logs and diffs quoted in one prompt; the rest is cut.
    pub max_quoted_chars: usize,
}

impl Default for CrewConfig {
    fn default() -> Self {
        Self {
            policy: AskPolicy::default(),
            recall_k: 3,
            min_recall_score: 0.35,
            max_tokens: 384,
            max_file_bytes: 256 * 1024,
            max_quoted_chars: 6_000,
        }
    }
}

fn invalid(field: &str, reason: impl Into<String>) -> AgentError {
    AgentError::InvalidInput {
        field: field.into(),
        reason: reason.into(),
    }
}

fn text<'a>(inputs: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    inputs
        .get(name)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|text| !text.is_empty())
}

fn required_text<'a>(inputs: &'a Map<String, Value>, name: &str) -> Result<&'a str, AgentError> {
    text(inputs, name).ok_or_else(|| invalid(name, "is required and must not be empty"))
}

/// A list of strings, also accepted as one string (so `{{ tasks.x.outputs.file }}` and
/// `{{ tasks.x.outputs.files }}` both work). Nulls are left out: a skipped task's
/// outputs read as null.
fn string_list(inputs: &Map<String, Value>, name: &str) -> Result<Vec<String>, AgentError> {
    match inputs.get(name) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(one)) => Ok(vec![one.clone()]),
        Some(Value::Array(items)) => items
            .iter()
            .filter(|item| !item.is_null())
            .map(|item| {
                item.as_str()
                    .map(String::from)
                    .ok_or_else(|| invalid(name, "must be a list of strings"))
            })
            .collect(),
        Some(_) => Err(invalid(name, "must be a string or a list of strings")),
    }
}

/// `text` cut to `max_chars` characters, saying so.
fn quoted(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_string();
    }
    let cut: String = text.chars().take(max_chars).collect();
    format!("{cut}\n[... cut at {max_chars} characters]")
}
