//! The model-backed kinds: `planner`, `architect`, `code_generator`, `test_generator`,
//! `code_review`, `debugging`, `documentation`.
//!
//! Each one is a [`CrewKind`] run by [`Crew`]: it recalls what the project's memory holds
//! about its task, asks the provider chain with a prompt in a fixed answer format,
//! checks the answer (parses, applies, names what was asked for) and asks again, or
//! escalates to the next provider, when it does not; then records what it did as an
//! episodic memory. Text from files and logs is
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
mod inputs;
mod patch_check;
mod planner;
#[cfg(test)]
mod prompts;
mod session;
pub(crate) mod source;
mod test_generator;
mod workspace;

pub use architect::Architect;
pub use code_generator::CodeGenerator;
pub use code_review::CodeReview;
pub use debugging::Debugging;
pub use documentation::Documentation;
pub use planner::Planner;
pub use test_generator::TestGenerator;

use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::agent::{AgentContext, AgentOutput, TypedAgent};
use crate::errors::{AgentError, invalid};
use crate::jail::Jail;
use crate::memory::MemoryKind;
use crate::model::{AskPolicy, Turn};
use crate::workspace::Workspace;
use session::Session;

/// What makes one model-backed kind itself: what it makes of its inputs, what it asks,
/// how it reads an answer, and what it does with the answers. The attempt around these
/// (recall from memory, ask the chain until an answer parses, record, report the calls
/// and their cost) is [`Crew`]'s, the same for every kind.
pub trait CrewKind: Default + Send + Sync + 'static {
    const KIND: &'static str;
    const DESCRIPTION: &'static str;
    /// Whether it checks its answers in the jail (see `Agent::jailed`).
    const JAILED: bool = false;
    type Inputs: DeserializeOwned + JsonSchema + Send;
    /// The inputs checked, and the files they name read.
    type Task: Send + Sync;
    /// One answer, parsed and checked.
    type Answer: Send;

    fn prepare(&self, inputs: Self::Inputs, config: &CrewConfig) -> Result<Self::Task, AgentError>;
    /// What preparing needs that is asynchronous (entering the jail a check of the
    /// answers runs in), after [`prepare`](Self::prepare) and before any question. Most
    /// kinds need nothing.
    fn set_up(
        &self,
        task: &mut Self::Task,
        config: &CrewConfig,
    ) -> impl Future<Output = Result<(), AgentError>> + Send {
        let _ = (task, config);
        async { Ok(()) }
    }
    /// The questions to ask, in order: most kinds ask one.
    fn questions(&self, task: &Self::Task, config: &CrewConfig) -> Vec<Question>;
    /// The answer to one question, or what is wrong with it (told to the model when it
    /// is asked again).
    fn parse(&self, task: &Self::Task, answer: &str) -> Result<Self::Answer, String>;
    /// Acts on the answers (writes files inside the work directory) and says what to
    /// return and what to remember.
    fn conclude(
        &self,
        task: Self::Task,
        answers: Vec<Self::Answer>,
    ) -> Result<Conclusion, AgentError>;
}

/// One question to the model.
#[derive(Debug, Clone, PartialEq)]
pub struct Question {
    /// What the project's memory is searched for.
    pub recall: String,
    /// The model task type the chain routes by (`chat`, `code`, `diff`).
    pub task_type: &'static str,
    /// The prompt. What memory recalls is added to the end of its first (system) turn.
    pub turns: Vec<Turn>,
    /// The prompt for the calls after a refused answer: without the recalled notes and
    /// the optional context that a small model gets lost in.
    pub simpler: Option<Vec<Turn>>,
}

/// What an attempt returns and remembers.
#[derive(Debug, Default)]
pub struct Conclusion {
    pub outputs: Map<String, Value>,
    /// Episodic for every task; short-term as well when later tasks of the run should
    /// find it.
    pub memories: Vec<(MemoryKind, String, Value)>,
}

/// A model-backed kind with the crew's limits: the agent a registry holds.
pub struct Crew<K> {
    kind: K,
    config: CrewConfig,
}

impl<K: CrewKind> Crew<K> {
    pub fn new(config: CrewConfig) -> Self {
        Self {
            kind: K::default(),
            config,
        }
    }
}

#[async_trait::async_trait]
impl<K: CrewKind> TypedAgent for Crew<K> {
    const KIND: &'static str = K::KIND;
    const JAILED: bool = K::JAILED;
    const DESCRIPTION: &'static str = K::DESCRIPTION;
    type Inputs = K::Inputs;

    async fn attempt(
        &self,
        inputs: K::Inputs,
        context: AgentContext,
    ) -> Result<AgentOutput, AgentError> {
        let mut task = self.kind.prepare(inputs, &self.config)?;
        self.kind.set_up(&mut task, &self.config).await?;
        let mut session = Session::begin(K::KIND, &context, &self.config)?;
        let mut answers = Vec::new();
        for question in self.kind.questions(&task, &self.config) {
            let notes = session.recall(&question.recall).await;
            let parse = |answer: &str| self.kind.parse(&task, answer);
            let turns = with_notes(question.turns, &notes);
            let answer = session
                .ask(turns, question.simpler, question.task_type, parse)
                .await?;
            answers.push(answer);
        }
        let conclusion = self.kind.conclude(task, answers)?;
        for (kind, text, details) in conclusion.memories {
            session.record(kind, text, details).await;
        }
        Ok(session.finish(conclusion.outputs))
    }
}

/// The one answer of a kind that asks one question.
fn only<T>(answers: Vec<T>) -> Result<T, AgentError> {
    answers
        .into_iter()
        .next()
        .ok_or_else(|| AgentError::Failed("the model was asked nothing".into()))
}

/// `turns` with `notes` added to the end of the first turn (the system's).
fn with_notes(mut turns: Vec<Turn>, notes: &str) -> Vec<Turn> {
    if let Some(first) = turns.first_mut() {
        first.content.push_str(notes);
    }
    turns
}

/// Limits shared by the model-backed kinds (`agents.model` in troupe.toml).
#[derive(Debug, Clone)]
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
    /// Where a task's `work_dir` may be.
    pub workspace: Workspace,
    /// Where the checks of answers that run a program (`git apply --check`) run.
    pub jail: Jail,
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
            // The node always gives its roots; a default config is for tests.
            workspace: Workspace::anywhere(),
            jail: Jail::default(),
        }
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
