//! What the node lends its agents: the provider chain as a [`ModelClient`] (every call
//! written to the cost ledger) and agent memory as a [`Memory`] (embedded by the local
//! embedding model, kept in SurrealDB).

use std::sync::{Arc, PoisonError, RwLock};

use troupe_agents::privacy::Redactions;
use troupe_agents::{
    AgentError, Billing, Memory, MemoryScope, ModelClient, ModelReply, ModelRequest, NewMemory,
    ProjectNetworks, Recalled,
};
use troupe_config::PrivacyMode;
use troupe_inference::InferenceError;
use troupe_inference::chat::ChatMessage;
use troupe_inference::generation::Priority;
use troupe_inference::providers::{
    Answered, ChainOutcome, CompletionRequest, Guard, ProviderChain,
};
use troupe_inference::quality::TaskType;
use troupe_inference::serve::InferenceService;

use crate::NodeError;
use crate::budget::BudgetGuard;
use troupe_security::audit::{AuditAction, AuditLog};
use troupe_store::clock::now_ms;
use troupe_store::{MemoryFilter, ProjectId, Store};

/// The provider chain with its ledger: the one way model calls leave the runtime.
/// Clones share the chain, which a reload of `providers.*` replaces for all of them.
#[derive(Clone)]
pub struct ChainModel {
    chain: Arc<RwLock<Arc<ProviderChain>>>,
    store: Store,
    audit: Arc<AuditLog>,
    privacy: PrivacyMode,
}

impl ChainModel {
    pub fn new(
        chain: Arc<ProviderChain>,
        store: Store,
        audit: Arc<AuditLog>,
        privacy: PrivacyMode,
    ) -> Self {
        Self {
            chain: Arc::new(RwLock::new(chain)),
            store,
            audit,
            privacy,
        }
    }

    /// The chain now; a call under way keeps the one it started with.
    fn chain(&self) -> Arc<ProviderChain> {
        self.chain
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Puts `chain` in place for the calls that start from now on.
    pub(crate) fn replace_chain(&self, chain: ProviderChain) {
        *self.chain.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(chain);
    }

    /// The request with sensitive values swapped for placeholders, and the mapping;
    /// refused outright in `refuse` mode. Logs and audits the kinds found, never a value.
    async fn screen(
        &self,
        request: &CompletionRequest,
    ) -> Result<(CompletionRequest, Redactions), NodeError> {
        let mut redactions = Redactions::default();
        if self.privacy == PrivacyMode::Off {
            return Ok((request.clone(), redactions));
        }
        let mut screened = request.clone();
        for message in &mut screened.messages {
            message.content = redactions.redact(&message.content);
        }
        if redactions.is_empty() {
            return Ok((screened, redactions));
        }
        let kinds: Vec<&str> = redactions.counts().keys().map(|kind| kind.name()).collect();
        let refused = self.privacy == PrivacyMode::Refuse;
        tracing::warn!(?kinds, refused, agent = ?request.agent, "sensitive data in a prompt");
        self.audit
            .record(
                &request.caller,
                AuditAction::PromptSensitiveData {
                    kinds: redactions
                        .counts()
                        .iter()
                        .map(|(kind, n)| (kind.name().to_string(), *n))
                        .collect(),
                },
                if refused { "refused" } else { "redacted" },
            )
            .await?;
        if refused {
            return Err(NodeError::InvalidRequest(format!(
                "the prompt holds sensitive data ({}); it was not sent to any model. \
                 Remove it, or set privacy.mode = \"redact\" to send placeholders instead",
                kinds.join(", ")
            )));
        }
        Ok((screened, redactions))
    }

    /// Asks the chain and writes every call it took to the ledger, billed to
    /// `project` (and to the run and task of `billing`, whose budgets each paid call
    /// must fit); returns the answer, what all of the calls cost, and the request's id
    /// in the ledger.
    pub async fn complete(
        &self,
        request: &CompletionRequest,
        project: &ProjectId,
        billing: Option<&Billing>,
    ) -> Result<Completed, NodeError> {
        let (mut request, redactions) = self.screen(request).await?;
        let started = now_ms();
        let chain = self.chain();
        // Only a chain with paid providers has a budget to look up.
        if chain.has_paid_providers() {
            let spent = self.store.paid_spend_on_day_of(started, project).await?;
            request.paid_budget_left_usd = Some(chain.paid_budget_left(project.as_str(), spent));
        }
        let guard = billing
            .filter(|billing| billing.has_budget())
            .map(|billing| Arc::new(BudgetGuard::new(self.store.clone(), billing.clone())));
        request.spend_guard = guard.clone().map(|guard| Guard(guard));
        let ChainOutcome { answer, calls } = chain.complete(&request).await;
        let request_id = uuid::Uuid::now_v7().to_string();
        crate::metrics::count_calls(&calls);
        match billing {
            Some(billing) => {
                let held = guard.map_or(0.0, |guard| guard.held_usd());
                self.store
                    .record_run_calls(&request_id, started, project, (billing, held), &calls)
                    .await?
            }
            None => {
                self.store
                    .record_calls(&request_id, started, project, &calls)
                    .await?
            }
        }
        // A call that left the machine for a paid provider is a security-relevant event:
        // the prompt went to a third party.
        for call in calls.iter().filter(|call| !call.local) {
            self.audit
                .record(
                    &request.caller,
                    AuditAction::ModelPaidCall {
                        request_id: request_id.clone(),
                        model: call.model.clone(),
                        tokens_in: call.tokens_in,
                        tokens_out: call.tokens_out,
                        cost_usd: call.cost_usd,
                        served: call.served,
                        error: call.error.clone(),
                    },
                    &call.provider,
                )
                .await?;
        }
        let cost_usd = calls.iter().map(|call| call.cost_usd).sum();
        let mut answer = answer?;
        answer.text = redactions.restore(&answer.text);
        Ok(Completed {
            answer,
            cost_usd,
            request_id,
        })
    }
}

/// The chain's answer to one request, as [`ChainModel::complete`] returns it.
pub struct Completed {
    pub answer: Answered,
    /// What all of the request's calls cost.
    pub cost_usd: f64,
    /// The request's id in the cost ledger.
    pub request_id: String,
}

#[async_trait::async_trait]
impl ModelClient for ChainModel {
    fn providers(&self, task_type: &str) -> Vec<String> {
        TaskType::parse(task_type)
            .map(|task| self.chain().provider_names(task))
            .unwrap_or_default()
    }

    async fn complete(&self, request: &ModelRequest) -> Result<ModelReply, AgentError> {
        let task_type = TaskType::parse(request.task_type).map_err(AgentError::Failed)?;
        let completion = CompletionRequest {
            messages: request
                .turns
                .iter()
                .map(|turn| ChatMessage::new(turn.role, &turn.content))
                .collect(),
            max_tokens: request.max_tokens,
            temperature: request.temperature,
            seed: Some(request.seed),
            task_type,
            min_quality: None,
            agent: Some(request.agent.clone()),
            caller: format!("agent:{}", request.agent),
            exclude_providers: request.exclude_providers.clone(),
            escalate_local_failures: false,
            // Filled in from the ledger by `ChainModel::complete`.
            paid_budget_left_usd: None,
            // Set from the billing by `ChainModel::complete`.
            spend_guard: None,
            // An agent's task: a person asking the same model goes first.
            priority: Priority::Background,
        };
        let project = ProjectId::from(request.project.as_str());
        let Completed {
            answer,
            cost_usd,
            request_id,
        } = ChainModel::complete(self, &completion, &project, request.billing.as_ref())
            .await
            .map_err(|error| match error {
                NodeError::Models(InferenceError::BudgetExceeded(reason)) => {
                    AgentError::BudgetExceeded(reason)
                }
                error => AgentError::Failed(format!("model: {error}")),
            })?;
        Ok(ModelReply {
            text: answer.text,
            provider: answer.provider,
            quality: answer.quality.score,
            degenerate: answer.quality.degenerate,
            cost_usd,
            request_id,
        })
    }

    async fn refused(&self, reply: &ModelReply, reason: &str) {
        if let Err(error) = self.store.mark_refused(&reply.request_id, reason).await {
            tracing::warn!(%error, request = %reply.request_id, "the ledger did not take a refusal");
        }
    }
}

/// Each project's private networks, from its policy in the store.
pub struct PolicyNetworks {
    pub store: Store,
}

#[async_trait::async_trait]
impl ProjectNetworks for PolicyNetworks {
    async fn allowed_networks(&self, project: &str) -> Vec<String> {
        match self.store.project_policy(&project.into()).await {
            Ok(policy) => policy.allowed_networks,
            Err(error) => {
                tracing::warn!(%error, project, "project policy unreadable; no extra networks");
                Vec::new()
            }
        }
    }
}

/// Agent memory: entries embedded by the node's embedding model.
#[derive(Clone)]
pub struct NodeMemory {
    store: Store,
    embedder: InferenceService,
}

impl NodeMemory {
    /// Memory over `store`, defining its HNSW index for the embedding model's dimension;
    /// `None` when the node serves no embedding model.
    pub async fn new(store: Store, embedder: InferenceService) -> Result<Option<Self>, NodeError> {
        let Some(dimensions) = embedder.embedding_dimensions() else {
            return Ok(None);
        };
        store.ensure_memory_index(dimensions).await?;
        Ok(Some(Self { store, embedder }))
    }

    async fn embed(&self, text: &str) -> Result<Vec<f32>, NodeError> {
        if text.trim().is_empty() {
            return Err(NodeError::InvalidRequest("memory text is empty".into()));
        }
        let mut embedded = self.embedder.embed(vec![text.to_string()]).await?;
        embedded.vectors.pop().ok_or(NodeError::NoEmbedding)
    }

    /// The `k` entries of the filter's scope nearest to `query`, best first.
    pub async fn search(
        &self,
        filter: &MemoryFilter,
        query: &str,
        k: usize,
    ) -> Result<Vec<troupe_store::MemoryEntry>, NodeError> {
        let embedding = self.embed(query).await?;
        self.store
            .search_memory(filter, &embedding, k)
            .await
            .map_err(Into::into)
    }

    /// Embeds and stores one entry; returns its id.
    pub async fn insert(
        &self,
        scope: &MemoryScope,
        kind: troupe_agents::MemoryKind,
        text: &str,
        metadata: &serde_json::Value,
    ) -> Result<String, NodeError> {
        let embedding = self.embed(text).await?;
        self.store
            .insert_memory(scope, kind, text, metadata, &embedding)
            .await
            .map_err(Into::into)
    }
}

fn agent_error(error: NodeError) -> AgentError {
    AgentError::Failed(format!("memory: {error}"))
}

#[async_trait::async_trait]
impl Memory for NodeMemory {
    async fn recall(
        &self,
        scope: &MemoryScope,
        query: &str,
        k: usize,
    ) -> Result<Vec<Recalled>, AgentError> {
        let found = self
            .search(&MemoryFilter::from(scope), query, k)
            .await
            .map_err(agent_error)?;
        found
            .into_iter()
            .map(|entry| {
                Ok(Recalled {
                    kind: troupe_agents::MemoryKind::parse(&entry.kind)
                        .map_err(AgentError::Failed)?,
                    id: entry.id,
                    text: entry.text,
                    score: entry.score.unwrap_or(0.0),
                    metadata: entry.metadata,
                    created_at_ms: entry.created_at_ms,
                })
            })
            .collect()
    }

    async fn remember(&self, scope: &MemoryScope, entry: NewMemory) -> Result<String, AgentError> {
        self.insert(scope, entry.kind, &entry.text, &entry.metadata)
            .await
            .map_err(agent_error)
    }
}
