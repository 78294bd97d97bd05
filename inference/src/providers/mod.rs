//! The provider chain: local workers first, paid providers after, each answer scored by
//! the quality gate; below the request's threshold the next provider is tried. Every
//! call, failed or not, comes back as a [`CallRecord`] for the cost ledger.

pub mod peers;
pub mod remote;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use troupe_config::{ProviderEntry, ProviderKind, ProviderSettings};
use troupe_telemetry::spans;

use crate::chat::ChatMessage;
use crate::embedding::cosine;
use crate::errors::InferenceError;
use crate::quality::{self, QualityReport, TaskType};
use crate::sequence::Priority;
use crate::serve::InferenceService;
use peers::{ModelAnswer, PeerAsk, PeerModels};
use remote::{Protocol, RemoteProvider};

/// Whether an answer scored `report` is good enough to stop at. One scored 0 (empty,
/// looping, malformed) never is, whatever the threshold: a threshold of 0 asks for any
/// answer, not for junk.
fn meets(report: &QualityReport, threshold: f64) -> bool {
    report.score > 0.0 && report.score >= threshold
}

/// A completion asked of the chain.
#[derive(Debug, Clone)]
pub struct CompletionRequest {
    pub messages: Vec<ChatMessage>,
    pub max_tokens: usize,
    pub temperature: f64,
    /// The local model's sampling seed; `None`: a fresh one.
    pub seed: Option<u64>,
    pub task_type: TaskType,
    /// Overrides the chain's default threshold.
    pub min_quality: Option<f64>,
    /// Who asked, for the per-agent report.
    pub agent: Option<String>,
    /// Who asked, for the audit log of paid calls: the caller's account (or the agent
    /// acting for a run), never a name the request gives.
    pub caller: String,
    /// Providers to leave out (an agent escalating past one whose answer it refused).
    pub exclude_providers: Vec<String>,
    /// Whether a local model that is overloaded or whose context the prompt overflows
    /// may hand the request to a paid provider. Off: those failures are the answer, so
    /// a busy laptop or an oversized prompt never spends money unasked.
    pub escalate_local_failures: bool,
    /// What paid providers may still cost today (the node fills it in from its ledger
    /// and `providers.budget_usd_per_day`); `None`: no cap.
    pub paid_budget_left_usd: Option<f64>,
    /// Holds a run's budget for each paid call before it is made; `None`: no run budget.
    pub spend_guard: Option<Guard>,
    /// A person waiting, or an agent's task: the local model serves people first.
    pub priority: Priority,
}

/// A [`SpendGuard`]'s answer, to come.
pub type Holding<'a> = std::pin::Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;

/// What a budget says to a paid call about to be made.
pub trait SpendGuard: Send + Sync {
    /// `Ok` when a call to `provider` costing at most `worst_usd` fits (that much is then
    /// held until the call is recorded), else why it does not.
    fn hold<'a>(&'a self, provider: &'a str, worst_usd: f64) -> Holding<'a>;
    /// Whether a refused call ends the request (`false`: the chain goes on without it,
    /// with its free local links only).
    fn refusal_fails(&self) -> bool;
}

/// A [`SpendGuard`] in a request.
#[derive(Clone)]
pub struct Guard(pub Arc<dyn SpendGuard>);

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Guard")
    }
}

/// Tokens a chat template may add around each message, and once for the answer's start:
/// more than any template we know adds.
const TEMPLATE_TOKENS_PER_MESSAGE: usize = 16;

/// The most a call to `link` can cost: every byte of the prompt a token (no tokenizer
/// makes fewer bytes into more tokens), and `max_tokens` out. Budgets hold this much
/// before the call, so that no answer can take a run past its budget.
fn worst_case_cost(link: &Link, request: &CompletionRequest) -> f64 {
    let tokens_in = request
        .messages
        .iter()
        .map(|message| message.content.len() + TEMPLATE_TOKENS_PER_MESSAGE)
        .sum::<usize>()
        + TEMPLATE_TOKENS_PER_MESSAGE;
    price(
        tokens_in,
        request.max_tokens,
        link.entry.input_usd_per_mtok,
        link.entry.output_usd_per_mtok,
    )
}

/// Whether `link` may be asked under the day's budget (`day_left`) and the request's
/// run budget: `Ok(true)` yes, `Ok(false)` skip it (why is in `failures`), `Err` the
/// request ends.
async fn may_ask(
    link: &Link,
    request: &CompletionRequest,
    day_left: Option<f64>,
    failures: &mut Vec<String>,
) -> Result<bool, InferenceError> {
    if let Some(skipped) = over_budget(link, day_left) {
        failures.push(skipped);
        return Ok(false);
    }
    let Some(Guard(guard)) = request.spend_guard.as_ref().filter(|_| link.is_paid()) else {
        return Ok(true);
    };
    match guard
        .hold(&link.entry.name, worst_case_cost(link, request))
        .await
    {
        Ok(()) => Ok(true),
        Err(reason) if guard.refusal_fails() => Err(InferenceError::BudgetExceeded(reason)),
        Err(reason) => {
            failures.push(format!("{}: not asked, {reason}", link.entry.name));
            Ok(false)
        }
    }
}

/// Paid spend of one UTC day, as the ledger counts it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct DaySpend {
    pub node_usd: f64,
    /// The part billed to the project a request is for.
    pub project_usd: f64,
}

/// What one provider answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProviderAnswer {
    pub text: String,
    pub cut_at_limit: bool,
    /// The local engine stopped it where it began to repeat itself; `cut_at_limit` is
    /// set too, for nodes that predate this field.
    #[serde(default)]
    pub stopped_in_loop: bool,
    pub tokens_in: usize,
    pub tokens_out: usize,
}

impl ProviderAnswer {
    pub fn ending(&self) -> quality::Ending {
        match (self.stopped_in_loop, self.cut_at_limit) {
            (true, _) => quality::Ending::InLoop,
            (false, true) => quality::Ending::AtTokenLimit,
            (false, false) => quality::Ending::Finished,
        }
    }
}

/// One provider call, as the ledger keeps it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallRecord {
    pub provider: String,
    pub model: String,
    pub local: bool,
    pub task_type: String,
    pub agent: Option<String>,
    pub tokens_in: usize,
    pub tokens_out: usize,
    pub latency_ms: u64,
    pub cost_usd: f64,
    /// What the cloud baseline would have charged for the same tokens.
    pub baseline_usd: f64,
    pub quality: Option<f64>,
    /// The chain went on to another provider after this call.
    pub escalated: bool,
    /// This call's answer is the one returned.
    pub served: bool,
    pub error: Option<String>,
}

/// The answer the chain returns.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Answered {
    pub text: String,
    pub provider: String,
    pub quality: QualityReport,
    /// False when no provider reached the threshold and the best answer is returned.
    pub met_threshold: bool,
}

/// The chain's answer (or why there is none) and every call it took, for the ledger.
#[derive(Debug)]
pub struct ChainOutcome {
    pub answer: Result<Answered, InferenceError>,
    pub calls: Vec<CallRecord>,
}

impl ChainOutcome {
    fn failed(error: InferenceError, calls: Vec<CallRecord>) -> Self {
        Self {
            answer: Err(error),
            calls,
        }
    }
}

enum Provider {
    Local,
    Remote(RemoteProvider),
}

struct Link {
    entry: ProviderEntry,
    provider: Provider,
}

impl Link {
    /// A remote provider, which bills its calls.
    fn is_paid(&self) -> bool {
        matches!(self.provider, Provider::Remote(_))
    }
}

pub struct ProviderChain {
    links: Vec<Link>,
    settings: ProviderSettings,
    local: Option<InferenceService>,
    /// The other nodes' local models, on a cluster node.
    peers: Option<Arc<dyn PeerModels>>,
}

/// Why `link` is not asked: it is a paid provider and the day's budget is spent.
fn over_budget(link: &Link, budget_left: Option<f64>) -> Option<String> {
    (link.is_paid() && budget_left.is_some_and(|left| left <= 0.0)).then(|| {
        format!(
            "{}: not asked, the day's budget for paid providers is spent \
             (providers.budget_usd_per_day, or the project's \
             providers.project_budgets_usd_per_day)",
            link.entry.name
        )
    })
}

/// A local failure that ends the chain unless the request opted in to escalation: the
/// local model is busy, or the prompt overflows its context (a cloud model's would take
/// it, at a price nobody agreed to).
fn stays_local(error: &InferenceError, request: &CompletionRequest) -> bool {
    !request.escalate_local_failures
        && matches!(
            error,
            InferenceError::Overloaded { .. } | InferenceError::PromptTooLong { .. }
        )
}

impl ProviderChain {
    /// The chain the settings describe; `local` serves the `local` entries (and the
    /// embeddings the relevance score needs).
    pub fn new(settings: &ProviderSettings, local: Option<InferenceService>) -> Self {
        Self::with_keys(settings, local, &std::collections::BTreeMap::new())
    }

    /// As `new`, with the keys opened from sealed secrets, by provider name.
    pub fn with_keys(
        settings: &ProviderSettings,
        local: Option<InferenceService>,
        sealed_keys: &std::collections::BTreeMap<String, String>,
    ) -> Self {
        let timeout = Duration::from_secs(settings.timeout_secs.max(1));
        let links = settings
            .chain
            .iter()
            .map(|entry| {
                let provider = match entry.kind {
                    ProviderKind::Openai => Provider::Remote(RemoteProvider::new(
                        Protocol::OpenAi,
                        entry.clone(),
                        sealed_keys.get(&entry.name).cloned(),
                        timeout,
                    )),
                    ProviderKind::Anthropic => Provider::Remote(RemoteProvider::new(
                        Protocol::Anthropic,
                        entry.clone(),
                        sealed_keys.get(&entry.name).cloned(),
                        timeout,
                    )),
                    ProviderKind::Local => Provider::Local,
                };
                Link {
                    entry: entry.clone(),
                    provider,
                }
            })
            .collect();
        Self {
            links,
            settings: settings.clone(),
            local,
            peers: None,
        }
    }

    /// The chain with `peers` behind its `local` links: asked when this node's own
    /// model cannot answer (see [`peers::a_peer_may_answer`]).
    pub fn with_peers(self, peers: Arc<dyn PeerModels>) -> Self {
        Self {
            peers: Some(peers),
            ..self
        }
    }

    /// The providers a task type goes to, in order.
    fn route(&self, task: TaskType) -> Vec<&Link> {
        match self.settings.routes.get(task.name()) {
            Some(names) => names
                .iter()
                .filter_map(|name| self.links.iter().find(|link| &link.entry.name == name))
                .collect(),
            None => self.links.iter().collect(),
        }
    }

    /// Whether any provider of the chain is a remote (paid) one.
    pub fn has_paid_providers(&self) -> bool {
        self.links.iter().any(Link::is_paid)
    }

    /// What paid providers may still cost today: the node's cap and, when it has one,
    /// `project`'s, less what each spent already (`spent`, from the ledger).
    pub fn paid_budget_left(&self, project: &str, spent: DaySpend) -> f64 {
        let node_left = self.settings.budget_usd_per_day - spent.node_usd;
        match self.settings.project_budgets_usd_per_day.get(project) {
            Some(cap) => node_left.min(cap - spent.project_usd),
            None => node_left,
        }
    }

    /// The names of the providers a task type goes to, in order.
    pub fn provider_names(&self, task: TaskType) -> Vec<String> {
        self.route(task)
            .into_iter()
            .map(|link| link.entry.name.clone())
            .collect()
    }

    pub async fn complete(&self, request: &CompletionRequest) -> ChainOutcome {
        if request.messages.is_empty() {
            let empty = InferenceError::InvalidRequest("no messages to answer".into());
            return ChainOutcome::failed(empty, Vec::new());
        }
        let threshold = request.min_quality.unwrap_or(self.settings.min_quality);
        let question = request
            .messages
            .iter()
            .rev()
            .find(|message| message.role == "user")
            .map_or(String::new(), |message| message.content.clone());
        let mut calls: Vec<CallRecord> = Vec::new();
        let mut best: Option<(usize, String, String, QualityReport)> = None;
        let mut failures = Vec::new();
        let route = self
            .route(request.task_type)
            .into_iter()
            .filter(|link| !request.exclude_providers.contains(&link.entry.name));
        let mut budget_left = request.paid_budget_left_usd;
        for link in route {
            match may_ask(link, request, budget_left, &mut failures).await {
                Ok(true) => {}
                Ok(false) => continue,
                Err(error) => return ChainOutcome::failed(error, calls),
            }
            let started = Instant::now();
            let span = self.call_span(link);
            let answer =
                tracing::Instrument::instrument(self.ask(link, request), span.clone()).await;
            let mut record = self.call_record(link, request, started.elapsed());
            answered_span(&span, request, &answer);
            match answer {
                Err(error) if record.local && stays_local(&error, request) => {
                    record.error = Some(error.to_string());
                    record.escalated = false;
                    calls.push(record);
                    return ChainOutcome::failed(error, calls);
                }
                Err(error) => {
                    failures.push(format!("{}: {error}", link.entry.name));
                    record.error = Some(error.to_string());
                    calls.push(record);
                }
                Ok(ModelAnswer { model, answer }) => {
                    record.model = model;
                    record.tokens_in = answer.tokens_in;
                    record.tokens_out = answer.tokens_out;
                    record.cost_usd = price(
                        answer.tokens_in,
                        answer.tokens_out,
                        link.entry.input_usd_per_mtok,
                        link.entry.output_usd_per_mtok,
                    );
                    let report = self.assess(request.task_type, &question, &answer).await;
                    record.quality = Some(report.score);
                    if let Some(left) = budget_left.as_mut() {
                        *left -= record.cost_usd;
                    }
                    let met = meets(&report, threshold);
                    record.escalated = !met;
                    usage_span(&span, &record, answer.cut_at_limit);
                    calls.push(record);
                    let index = calls.len() - 1;
                    if best
                        .as_ref()
                        .is_none_or(|(_, _, _, seen)| report.score > seen.score)
                    {
                        best = Some((index, link.entry.name.clone(), answer.text, report));
                    }
                    if met {
                        break;
                    }
                }
            }
        }
        let Some((index, provider, text, quality)) = best else {
            let failed = InferenceError::AllProvidersFailed(failures.join("; "));
            return ChainOutcome::failed(failed, calls);
        };
        let met_threshold = meets(&quality, threshold);
        self.mark_served(&mut calls[index]);
        ChainOutcome {
            answer: Ok(Answered {
                text,
                provider,
                quality,
                met_threshold,
            }),
            calls,
        }
    }

    /// Marks the call whose answer is returned, priced at the cloud baseline (what the
    /// cloud would have charged for the answer served).
    fn mark_served(&self, served: &mut CallRecord) {
        served.served = true;
        served.escalated = false;
        served.baseline_usd = price(
            served.tokens_in,
            served.tokens_out,
            self.settings.baseline_input_usd_per_mtok,
            self.settings.baseline_output_usd_per_mtok,
        );
    }

    /// A call to `link` that took `latency`, before its outcome is known: escalated and
    /// not served until an answer says otherwise.
    fn call_record(
        &self,
        link: &Link,
        request: &CompletionRequest,
        latency: Duration,
    ) -> CallRecord {
        CallRecord {
            provider: link.entry.name.clone(),
            model: self.model_name(link),
            local: matches!(link.provider, Provider::Local),
            task_type: request.task_type.name().into(),
            agent: request.agent.clone(),
            tokens_in: 0,
            tokens_out: 0,
            latency_ms: u64::try_from(latency.as_millis()).unwrap_or(u64::MAX),
            cost_usd: 0.0,
            baseline_usd: 0.0,
            quality: None,
            escalated: true,
            served: false,
            error: None,
        }
    }

    /// The span of one call to `link`'s provider.
    fn call_span(&self, link: &Link) -> tracing::Span {
        let local = matches!(link.provider, Provider::Local);
        spans::model_call("chat", &link.entry.name, &self.model_name(link), local)
    }

    fn model_name(&self, link: &Link) -> String {
        match &link.provider {
            Provider::Remote(remote) => remote.entry.model.clone(),
            Provider::Local => self
                .local
                .as_ref()
                .and_then(|local| local.generation_model())
                .map_or_else(|| "local".into(), |model| model.id()),
        }
    }

    async fn ask(
        &self,
        link: &Link,
        request: &CompletionRequest,
    ) -> Result<ModelAnswer, InferenceError> {
        match &link.provider {
            Provider::Remote(remote) => Ok(ModelAnswer {
                model: remote.entry.model.clone(),
                answer: remote
                    .complete(&request.messages, request.max_tokens, request.temperature)
                    .await?,
            }),
            Provider::Local => self.ask_local(request).await,
        }
    }

    /// This node's model, or when it cannot answer, a peer's.
    async fn ask_local(&self, request: &CompletionRequest) -> Result<ModelAnswer, InferenceError> {
        let ask = PeerAsk {
            messages: request.messages.clone(),
            max_tokens: request.max_tokens,
            temperature: request.temperature,
            seed: request.seed,
            trace: troupe_telemetry::TraceParent::current(),
            priority: request.priority,
        };
        let here = match &self.local {
            Some(local) => peers::answer_locally(local, &ask).await,
            None => Err(InferenceError::NoWorkers { kind: "generation" }),
        };
        let error = match here {
            Err(error) if peers::a_peer_may_answer(&error) => error,
            answered => return answered,
        };
        let Some(call) = self.peers.as_ref().and_then(|peers| peers.complete(ask)) else {
            return Err(error);
        };
        let answered = call.await?;
        tracing::info!(node = %answered.node, model = %answered.answered.model, "a peer's model answered");
        Ok(answered.answered)
    }

    /// Scores an answer; relevance needs the local embedding model and is left out
    /// without it.
    async fn assess(
        &self,
        task: TaskType,
        question: &str,
        answer: &ProviderAnswer,
    ) -> QualityReport {
        let similarity = match &self.local {
            Some(local)
                if local.embedding_dimensions().is_some()
                    && !question.trim().is_empty()
                    && !answer.text.trim().is_empty() =>
            {
                let model = local.embedding_model_id().unwrap_or("local");
                let span = spans::model_call("embeddings", "local", model, true);
                let embedded = local.embed(vec![question.to_string(), answer.text.clone()]);
                match tracing::Instrument::instrument(embedded, span).await {
                    Ok(embedded) if embedded.vectors.len() == 2 => {
                        Some(cosine(&embedded.vectors[0], &embedded.vectors[1]))
                    }
                    _ => None,
                }
            }
            _ => None,
        };
        quality::assess(task, &answer.text, answer.ending(), similarity)
    }
}

/// A call's span once it answered: the prompt and answer when content is captured,
/// or how it failed.
fn answered_span(
    span: &tracing::Span,
    request: &CompletionRequest,
    answer: &Result<ModelAnswer, InferenceError>,
) {
    match answer {
        Ok(ModelAnswer { answer, .. }) => {
            let messages: Vec<(&str, &str)> = request
                .messages
                .iter()
                .map(|message| (message.role.as_str(), message.content.as_str()))
                .collect();
            spans::model_content(span, &messages, &answer.text);
        }
        Err(error) => spans::failed(span, error.kind(), &error.to_string()),
    }
}

/// A call's span once its answer was priced and scored, as the ledger records it.
fn usage_span(span: &tracing::Span, record: &CallRecord, cut_at_limit: bool) {
    let usage = spans::ModelUsage {
        response_model: &record.model,
        input_tokens: record.tokens_in,
        output_tokens: record.tokens_out,
        finish_reason: if cut_at_limit { "length" } else { "stop" },
        cost_usd: record.cost_usd,
        escalated: record.escalated,
        quality: record.quality,
    };
    spans::model_answered(span, &usage);
}

/// What `tokens_in` and `tokens_out` cost at prices per million tokens.
pub fn price(
    tokens_in: usize,
    tokens_out: usize,
    input_per_mtok: f64,
    output_per_mtok: f64,
) -> f64 {
    (tokens_in as f64 * input_per_mtok + tokens_out as f64 * output_per_mtok) / 1e6
}

#[cfg(test)]
mod tests {
    use troupe_config::{ProviderEntry, ProviderKind, ProviderSettings};

    use std::sync::Arc;

    use super::peers::{ModelAnswer, PeerAnswer, PeerAsk, PeerCall, PeerModels};
    use super::{
        CompletionRequest, DaySpend, Guard, Holding, ProviderAnswer, ProviderChain, SpendGuard,
    };
    use crate::chat::ChatMessage;
    use crate::errors::InferenceError;
    use crate::quality::TaskType;
    use crate::sequence::Priority;

    /// A chain of one paid provider that nothing answers (port 9, discard).
    fn paid_only() -> ProviderChain {
        let settings = ProviderSettings {
            chain: vec![ProviderEntry {
                name: "paid".into(),
                kind: ProviderKind::Openai,
                base_url: "http://127.0.0.1:9/v1".into(),
                model: "m".into(),
                api_key_env: String::new(),
                api_key_secret: String::new(),
                input_usd_per_mtok: 1.0,
                output_usd_per_mtok: 1.0,
            }],
            timeout_secs: 2,
            ..ProviderSettings::default()
        };
        ProviderChain::new(&settings, None)
    }

    fn request(budget_left: Option<f64>) -> CompletionRequest {
        CompletionRequest {
            messages: vec![ChatMessage::new("user", "hello")],
            max_tokens: 8,
            temperature: 0.0,
            seed: None,
            task_type: TaskType::Chat,
            min_quality: None,
            agent: None,
            caller: "ada@example.com".into(),
            exclude_providers: Vec::new(),
            escalate_local_failures: false,
            paid_budget_left_usd: budget_left,
            spend_guard: None,
            priority: Priority::Interactive,
        }
    }

    /// Once the day's budget is spent, a paid provider is not even asked.
    #[tokio::test]
    async fn a_spent_budget_keeps_requests_away_from_paid_providers() {
        let chain = paid_only();
        let spent = chain.complete(&request(Some(0.0))).await;
        assert!(spent.calls.is_empty(), "{:?}", spent.calls);
        match spent.answer {
            Err(InferenceError::AllProvidersFailed(reason)) => {
                assert!(reason.contains("providers.budget_usd_per_day"), "{reason}")
            }
            other => panic!("answered past the budget: {other:?}"),
        }
        let within = chain.complete(&request(Some(0.5))).await;
        assert_eq!(within.calls.len(), 1, "asked while budget was left");
    }

    /// A budget that refuses every call, and keeps what it was asked.
    struct Spent {
        fails: bool,
        asked: std::sync::Mutex<Vec<(String, f64)>>,
    }

    impl SpendGuard for Spent {
        fn hold<'a>(&'a self, provider: &'a str, worst_usd: f64) -> Holding<'a> {
            self.asked
                .lock()
                .unwrap()
                .push((provider.into(), worst_usd));
            Box::pin(async { Err("the run's budget is spent".to_owned()) })
        }
        fn refusal_fails(&self) -> bool {
            self.fails
        }
    }

    /// A run budget is asked before a paid call with the call's worst case, and a
    /// refusal means the call is not made: the request fails, or goes on without it.
    #[tokio::test]
    async fn a_refused_hold_means_the_paid_call_is_not_made() {
        let chain = paid_only();
        for fails in [true, false] {
            let guard = Arc::new(Spent {
                fails,
                asked: Default::default(),
            });
            let mut asked = request(None);
            asked.spend_guard = Some(Guard(guard.clone()));
            let outcome = chain.complete(&asked).await;
            assert!(outcome.calls.is_empty(), "{:?}", outcome.calls);
            match (fails, outcome.answer) {
                (true, Err(InferenceError::BudgetExceeded(reason))) => {
                    assert_eq!(reason, "the run's budget is spent")
                }
                (false, Err(InferenceError::AllProvidersFailed(reason))) => {
                    assert_eq!(reason, "paid: not asked, the run's budget is spent")
                }
                (_, other) => panic!("fails {fails}: {other:?}"),
            }
            // "hello" is 5 bytes; with the template's allowance, 37 tokens in at most,
            // and max_tokens 8 out, at $1 per million each.
            let worst = (5.0 + 16.0 + 16.0 + 8.0) / 1e6;
            let asked = guard.asked.lock().unwrap().clone();
            assert_eq!(asked.len(), 1);
            assert_eq!(asked[0].0, "paid");
            assert!((asked[0].1 - worst).abs() < 1e-15, "{asked:?}");
        }
    }

    /// A peer that serves `peer-model` and answers every ask with the question's length.
    struct OnePeer;

    impl PeerModels for OnePeer {
        fn complete(&self, ask: PeerAsk) -> Option<PeerCall> {
            let text = format!("{} words", ask.messages[0].content.split(' ').count());
            Some(Box::pin(async move {
                Ok(PeerAnswer {
                    node: "b".into(),
                    answered: ModelAnswer {
                        model: "peer-model".into(),
                        answer: ProviderAnswer {
                            text,
                            cut_at_limit: false,
                            stopped_in_loop: false,
                            tokens_in: 7,
                            tokens_out: 2,
                        },
                    },
                })
            }))
        }
    }

    /// No peer serves a model.
    struct NoPeer;

    impl PeerModels for NoPeer {
        fn complete(&self, _: PeerAsk) -> Option<PeerCall> {
            None
        }
    }

    /// A node with no model of its own gets its `local` answers from a peer's model, free
    /// and billed as local under the peer's model; with no peer, the local error stands.
    #[tokio::test]
    async fn a_chain_without_a_model_asks_a_peer_s_and_bills_it_as_local() {
        let settings = ProviderSettings::default();
        let chain = ProviderChain::new(&settings, None).with_peers(Arc::new(OnePeer));
        let outcome = chain.complete(&request(None)).await;
        let answer = outcome.answer.expect("the peer answered");
        assert_eq!(
            (answer.text.as_str(), answer.provider.as_str()),
            ("1 words", "local")
        );
        let [call] = outcome.calls.as_slice() else {
            panic!("{:?}", outcome.calls);
        };
        assert_eq!(call.model, "peer-model");
        assert!(
            call.local && call.served && call.error.is_none(),
            "{call:?}"
        );
        assert_eq!(
            (call.tokens_in, call.tokens_out, call.cost_usd),
            (7, 2, 0.0)
        );

        let alone = ProviderChain::new(&settings, None).with_peers(Arc::new(NoPeer));
        match alone.complete(&request(None)).await.answer {
            Err(InferenceError::AllProvidersFailed(why)) => {
                assert!(why.contains("no generation model is loaded"), "{why}")
            }
            other => panic!("answered with no model anywhere: {other:?}"),
        }
    }

    /// A project with a cap of its own may spend what is left of both caps.
    #[test]
    fn a_project_s_cap_and_the_node_s_both_bound_what_is_left() {
        let settings = ProviderSettings {
            budget_usd_per_day: 10.0,
            project_budgets_usd_per_day: [("shop".to_string(), 2.0)].into(),
            ..ProviderSettings::default()
        };
        let chain = ProviderChain::new(&settings, None);
        let spent = |node_usd, project_usd| DaySpend {
            node_usd,
            project_usd,
        };
        assert_eq!(chain.paid_budget_left("shop", spent(3.0, 1.5)), 0.5);
        assert_eq!(chain.paid_budget_left("shop", spent(9.5, 0.0)), 0.5);
        assert_eq!(
            chain.paid_budget_left("bank", spent(3.0, 3.0)),
            7.0,
            "no cap of its own"
        );
    }
}
