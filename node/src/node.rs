//! A node: the store, the root supervisor and everything under it, and the operations
//! the API and the CLI call. The composition root for one process.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorRef};
use serde::Serialize;
use serde_json::Value;
use serde_json::json;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;
use troupe_agents::Registry;
use troupe_agents::{AgentServices, MemoryKind, MemoryScope};
use troupe_config::{Settings, TamperResponse};
use troupe_inference::providers::{Answered, CallRecord, CompletionRequest, ProviderChain};
use troupe_inference::serve::InferenceService;
use troupe_inference::serve::setup;
use troupe_telemetry::TraceParent;
use troupe_workflow::Workflow;

use crate::NodeError;
use crate::alerting::{AlertBoard, AlertLoop};
use crate::reload::{
    ChainMaker, Reloaded, Reloader, RunningSettings, SettingsSource, follow_cluster,
};
use crate::services::{ChainModel, NodeMemory};
use crate::vitals::{Readiness, Vitals};
use troupe_cluster::links::LinksMsg;
use troupe_cluster::models::ClusterModels;
use troupe_cluster::placement::ClusterPlacement;
use troupe_engine::EngineError;
use troupe_engine::agent_pool::{AgentPool, AgentPoolArgs, OutcomeBook, PoolLoad};
use troupe_engine::command::RunCommand;
use troupe_engine::context::{EngineContext, NodeIdentity};
use troupe_engine::policy::ExecutionPolicy;
use troupe_engine::run_actor::DecisionRequest;
use troupe_engine::run_manager::{RunManager, RunManagerMsg, RunOptions, StartRun};
use troupe_engine::state::{MigrationPlan, RunState, TaskState};
use troupe_security::audit::chain::AuditEntry;
use troupe_security::audit::shipping::Shipping;
use troupe_security::audit::{AuditAction, AuditLog};
use troupe_security::auth::Auth;
use troupe_store::StoreError;
use troupe_store::clock::now_ms;
use troupe_store::events::{Decision, Person, RunEvent, RunStatus, StoredEvent, TaskStatus};
use troupe_store::{
    AuditFilter, MemoryEntry, MemoryFilter, ProjectId, RunFilter, RunId, RunRecord, Store, TaskId,
    WorkflowId, WorkflowRecord, WorkflowVersion, project_of, workflow_id_of,
};
use troupe_supervision::{ChildRef, ChildSpec, RestartPolicy, Supervisor, SupervisorMsg};

mod invocations;
mod models;

pub use models::ModelPeer;

/// How long `shutdown` leaves the embedded store to close its files.
const STORE_CLOSE_GRACE: Duration = Duration::from_millis(300);

pub struct Node {
    context: Arc<EngineContext>,
    inference: Option<InferenceService>,
    model: ChainModel,
    memory: Option<NodeMemory>,
    audit: Arc<AuditLog>,
    /// Verifies the audit chain again and again (`audit.verify_every_secs`).
    audit_watch: Option<JoinHandle<()>>,
    vitals: Vitals,
    /// The alerts now, and the loop that evaluates them (`alerts.enabled`).
    alerts: AlertBoard,
    alert_loop: Option<JoinHandle<()>>,
    /// Fires the workflows' schedules (`triggers.schedule`).
    schedule_loop: Option<JoinHandle<()>>,
    auth: Arc<Auth>,
    /// The first super admin's one-time password, until `troupe up` has shown it.
    bootstrap: std::sync::Mutex<Option<(String, String)>>,
    /// Refused push deliveries, per workflow: past a limit they are not audited one by
    /// one (see `push`).
    push_rejections: troupe_security::auth::limiter::FailureLimiter,
    root: ActorRef<SupervisorMsg>,
    root_handle: JoinHandle<()>,
    /// The settings now, and how to read them again.
    reloader: Arc<Reloader>,
    /// Follows the other nodes' reloads (`cluster.enabled`).
    follow: Option<JoinHandle<()>>,
    /// The links to the other nodes (`cluster.enabled`; never set otherwise).
    links: ChildRef<LinksMsg>,
    /// Where attempts and model requests go in the cluster (`cluster.enabled`).
    cluster: Option<Arc<ClusterPlacement>>,
}

/// A run as the API shows it: its record and every task's state, folded from the log.
#[derive(Debug, Clone, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct RunDetail {
    #[serde(flatten)]
    pub record: RunRecord,
    pub cost_usd: f64,
    /// The run's budget and what the ledger says it spent, when its workflow has one.
    pub budget: Option<RunBudget>,
    pub failure_reason: Option<String>,
    /// The sampling seed its attempts' seeds come from: a run started with it draws
    /// the same answers from the local model.
    pub seed: u64,
    pub tasks: Vec<TaskState>,
    /// The id of the run's trace, when spans were exported as it started.
    pub trace_id: Option<String>,
    /// Where to see that trace (`telemetry.trace_url` with the id in it), if set.
    pub trace_url: Option<String>,
}

/// A run's `budget_usd` against what its model calls cost, as the ledger counts them.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct RunBudget {
    pub budget_usd: f64,
    pub spent_usd: f64,
    /// `fail` or `local_only`: what a call that would go over does.
    pub on_budget: String,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct PendingApproval {
    pub run_id: RunId,
    pub workflow_id: WorkflowId,
    pub project: ProjectId,
    pub task: TaskId,
    pub task_name: String,
    #[schema(value_type = Object)]
    pub inputs: Value,
    pub inputs_digest: String,
    pub requested_at_ms: i64,
    pub expires_at_ms: i64,
}

impl Node {
    /// Starts a node with the given agent kinds ([`crate::NodeBuilder`] is the way in).
    pub(crate) async fn start_with(
        settings: Settings,
        source: Option<SettingsSource>,
        registry: Registry,
        clock: Arc<dyn troupe_store::clock::Clock>,
    ) -> Result<Node, NodeError> {
        crate::metrics::recorder();
        crate::metrics::budget(settings.providers.budget_usd_per_day);
        let store = Store::open(&settings.store).await?;
        let name = settings.node_name();
        // The invocations this node's last process accepted ended with it: no one waits
        // for them any more.
        store
            .abandon_invocations(&name, &invocations::stopped_before_the_end(&name))
            .await?;
        let node_id = EngineContext::new_node_id();
        let audit = open_audit(&store, &settings, &node_id).await?;
        let auth = Arc::new(Auth::from_settings(store.clone(), &settings)?);
        let bootstrap = std::sync::Mutex::new(auth.bootstrap(&audit).await?);
        let policy = restart_policy(&settings);
        let mut children = Vec::new();
        let inference =
            start_inference(&settings, policy, &node_id)
                .await?
                .map(|(service, spec)| {
                    children.push(spec);
                    service
                });
        let execution = ExecutionPolicy::new(&settings.agents.allowed_kinds);
        let (placement, cluster) =
            crate::cluster::placement(&settings, &name, (&registry, &execution)).await;
        let sealed_keys = provider_keys(&store, auth.secrets(), &settings.providers).await?;
        let chains = chain_maker(&inference, &cluster);
        let model = ChainModel::new(
            Arc::new(chains(&settings, &sealed_keys)),
            store.clone(),
            audit.clone(),
            settings.privacy.mode,
        );
        let memory = match &inference {
            Some(inference) => NodeMemory::new(store.clone(), inference.clone()).await?,
            None => None,
        };
        let services = agent_services(&settings, inference.is_some(), &model, &memory, &store);
        let identity = NodeIdentity {
            id: node_id,
            name,
            alone: !settings.cluster.enabled,
            placement,
        };
        let context = EngineContext::new(
            identity,
            store,
            registry,
            settings.engine.clone(),
            services,
            clock,
            execution,
        );
        children.extend(engine_children(&context, &settings));
        let links = ChildRef::default();
        if let Some(placement) = &cluster {
            let parts = (auth.secrets(), inference.clone(), &links);
            let placement = placement.clone();
            children.extend(crate::cluster::children(&context, &settings, placement, parts).await?);
        }
        let (root, root_handle) = spawn_root(policy, children).await?;
        let audit_watch = watch_audit(audit.clone(), settings.audit.verify_every_secs);
        let vitals = Vitals::new(&context, &cluster, &inference, &root);
        let parts = (context.clone(), audit.clone(), auth.clone(), model.clone());
        let reloader = Arc::new(Reloader::new(settings.clone(), source, parts, chains));
        let follow = match settings.cluster.enabled {
            true => Some(follow_cluster(reloader.clone()).await),
            false => None,
        };
        let (alerts, alert_loop) = alert_loop(&settings, &vitals, &audit, &reloader).start();
        let schedule_loop = Some(crate::schedule::spawn(context.clone(), audit.clone()));
        Ok(Node {
            context,
            model,
            memory,
            audit,
            audit_watch,
            vitals,
            alerts,
            alert_loop,
            schedule_loop,
            auth,
            bootstrap,
            push_rejections: crate::push::rejection_limiter(),
            inference,
            root,
            root_handle,
            reloader,
            follow,
            links,
            cluster,
        })
    }

    /// The settings the node runs with now (a reload may change them).
    pub fn settings(&self) -> Arc<Settings> {
        self.reloader.settings()
    }

    /// Reads the settings again and applies what can change live (see
    /// [`crate::reload`]); `by` is who asked.
    pub async fn reload(&self, by: &str) -> Result<Reloaded, NodeError> {
        self.reloader.reload(by).await
    }

    /// The settings now, when they were loaded and what waits for a restart.
    pub fn running_settings(&self) -> watch::Receiver<RunningSettings> {
        self.reloader.running.subscribe()
    }

    /// This node's name among those sharing the store.
    pub fn node_name(&self) -> &str {
        &self.context.node_name
    }

    /// What the engine's actors share: the modules beside this one read it too.
    pub(crate) fn context(&self) -> &EngineContext {
        &self.context
    }

    /// A second schedule loop on this node's store, as another node of its cluster
    /// would run: tests show that a tick still fires once.
    #[cfg(test)]
    pub(crate) fn second_scheduler(&self) -> JoinHandle<()> {
        crate::schedule::spawn(self.context.clone(), self.audit.clone())
    }

    pub(crate) fn push_rejections(&self) -> &troupe_security::auth::limiter::FailureLimiter {
        &self.push_rejections
    }

    pub(crate) fn links(&self) -> &ChildRef<LinksMsg> {
        &self.links
    }

    pub fn store(&self) -> &Store {
        &self.context.store
    }

    /// What the engine's actors share, for a program that embeds a node and runs an
    /// actor of the engine's beside it (the cluster benchmark's peer runs a gateway).
    pub fn engine(&self) -> &Arc<EngineContext> {
        &self.context
    }

    /// Asks the provider chain (local first, paid fallbacks by quality) and writes every
    /// call it took to the cost ledger.
    /// One answer from the provider chain, billed to `project`.
    pub async fn complete(
        &self,
        request: &CompletionRequest,
        project: &ProjectId,
    ) -> Result<Answered, NodeError> {
        Ok(self.model.complete(request, project, None).await?.answer)
    }

    /// Writes model calls made outside the chain (the `/v1` endpoints) to the ledger.
    pub async fn record_calls(
        &self,
        request_id: &str,
        at_ms: i64,
        project: &ProjectId,
        calls: &[CallRecord],
    ) -> Result<(), NodeError> {
        crate::metrics::count_calls(calls);
        self.context
            .store
            .record_calls(request_id, at_ms, project, calls)
            .await
            .map_err(Into::into)
    }

    /// Every metric of this process in Prometheus's text format; `None` when the program
    /// that embeds the node installed a metrics recorder of its own.
    pub async fn metrics_text(&self) -> Option<String> {
        self.vitals.metrics_text().await
    }

    /// The same in OpenMetrics, with the trace ids of observations as exemplars.
    pub async fn metrics_openmetrics(&self) -> Option<String> {
        self.vitals.metrics_openmetrics().await
    }

    /// Each component's state, and whether the node can serve (`/readyz`).
    pub async fn readiness(&self) -> Readiness {
        self.vitals.readiness().await
    }

    /// The alerts pending and firing now; `changed()` on it waits for the next
    /// evaluation.
    pub fn alerts(&self) -> AlertBoard {
        self.alerts.clone()
    }

    /// What model calls cost since `since_ms`, of `projects` only when given.
    pub async fn cost_report(
        &self,
        since_ms: i64,
        projects: Option<&[ProjectId]>,
    ) -> Result<troupe_store::CostReport, NodeError> {
        self.context
            .store
            .cost_report(since_ms, projects)
            .await
            .map_err(Into::into)
    }

    pub fn baseline_usd(&self, tokens_in: usize, tokens_out: usize) -> f64 {
        let settings = self.settings();
        let providers = &settings.providers;
        troupe_inference::providers::price(
            tokens_in,
            tokens_out,
            providers.baseline_input_usd_per_mtok,
            providers.baseline_output_usd_per_mtok,
        )
    }

    /// The local models, when this node serves them (`models.serve`).
    pub fn inference(&self) -> Option<&InferenceService> {
        self.inference.as_ref()
    }

    pub fn registry(&self) -> &Registry {
        &self.context.registry
    }

    pub fn subscribe(&self) -> broadcast::Receiver<StoredEvent> {
        self.context.events.subscribe()
    }

    /// Whether the root supervisor still runs (it stops after a crash loop it could not
    /// contain).
    pub fn is_alive(&self) -> bool {
        !self.root_handle.is_finished()
    }

    /// Whether this node may act now (see `EngineContext::acting`).
    pub fn is_acting(&self) -> bool {
        self.context.is_acting()
    }

    /// Waits until the node's supervision tree ends, which only happens on a crash loop.
    pub async fn wait(&mut self) {
        if let Err(error) = (&mut self.root_handle).await {
            tracing::error!(%error, "root supervisor ended abnormally");
        }
    }

    pub async fn shutdown(mut self) {
        // Awaited, not just aborted: each holds the store, which must close below, while
        // its files still exist, not whenever the task happens to be dropped.
        let watches = [
            self.audit_watch.take(),
            self.alert_loop.take(),
            self.schedule_loop.take(),
            self.follow.take(),
        ];
        for watch in watches.into_iter().flatten() {
            watch.abort();
            let _ = watch.await;
        }
        if let Err(error) = self.audit.checkpoint().await {
            tracing::error!(%error, "the audit checkpoint at shutdown failed");
        }
        self.audit.flush_shipping().await;
        let Node {
            context,
            inference,
            model,
            memory,
            audit,
            auth,
            root,
            root_handle,
            vitals,
            reloader,
            ..
        } = self;
        root.stop(Some("shutdown".into()));
        if tokio::time::timeout(Duration::from_secs(5), root_handle)
            .await
            .is_err()
        {
            tracing::warn!("the supervision tree did not stop within 5 s");
        }
        // Every holder of a store handle, now: the embedded engine closes its files from
        // a task it spawns when the last handle goes away, and that task needs this
        // runtime and the store's directory for the grace below.
        drop((
            context, inference, model, memory, audit, auth, vitals, reloader,
        ));
        tokio::time::sleep(STORE_CLOSE_GRACE).await;
    }

    fn manager(&self) -> Result<ActorRef<RunManagerMsg>, NodeError> {
        self.context.run_manager.get().ok_or_else(|| {
            NodeError::Engine(EngineError::Restarting {
                what: "the run manager".into(),
            })
        })
    }

    // ---- workflows ---------------------------------------------------------------

    /// Checks `source` (every error, with file, line and column) and finds the workflow
    /// it would be a new version of, without storing anything: the API checks who may
    /// write both before `store_workflow`.
    pub async fn prepare_workflow(
        &self,
        source: &str,
        file_name: &str,
    ) -> Result<(Workflow, Option<WorkflowRecord>), NodeError> {
        let workflow = self.context.parse_workflow(source, file_name)?;
        if let Some(problem) = crate::schedule::schedule_problem(&workflow) {
            return Err(NodeError::InvalidRequest(problem));
        }
        let existing = self.store().workflow(&workflow_id_of(&workflow)).await?;
        Ok((workflow, existing))
    }

    /// Validates `source` and stores it as the next version of its workflow.
    pub async fn save_workflow(
        &self,
        source: &str,
        file_name: &str,
        actor: &str,
    ) -> Result<(WorkflowId, u32), NodeError> {
        let (workflow, _) = self.prepare_workflow(source, file_name).await?;
        self.store_workflow(&workflow, source, actor).await
    }

    /// Stores a prepared workflow. Its project must exist, and a new version may not
    /// move a workflow to another project (its runs and permissions stay where they
    /// were): the store refuses that in the transaction that writes.
    pub async fn store_workflow(
        &self,
        workflow: &Workflow,
        source: &str,
        actor: &str,
    ) -> Result<(WorkflowId, u32), NodeError> {
        let project = project_of(workflow);
        if !self.store().project_exists(project.as_str()).await? {
            return Err(StoreError::ProjectNotFound(project.to_string()).into());
        }
        self.context.check_policy(workflow).await?;
        let workflow_id = workflow_id_of(workflow);
        let version = self
            .store()
            .save_workflow(&workflow_id, &workflow.name, &project, source, now_ms())
            .await?;
        self.audit
            .record(
                actor,
                AuditAction::WorkflowCreate {
                    version,
                    project,
                    source_sha256: troupe_store::digest::sha256_hex(source),
                },
                workflow_id.as_str(),
            )
            .await?;
        Ok((workflow_id, version))
    }

    /// The workflow's record, deleted or not.
    pub async fn workflow_record(&self, id: &WorkflowId) -> Result<WorkflowRecord, NodeError> {
        self.store()
            .workflow(id)
            .await?
            .ok_or_else(|| StoreError::WorkflowNotFound(id.clone()).into())
    }

    pub async fn workflows(&self) -> Result<Vec<WorkflowRecord>, NodeError> {
        self.store().workflows().await.map_err(Into::into)
    }

    pub async fn workflow_versions(
        &self,
        id: &WorkflowId,
    ) -> Result<Vec<WorkflowVersion>, NodeError> {
        self.store().workflow_versions(id).await.map_err(Into::into)
    }

    pub async fn delete_workflow(&self, id: &WorkflowId, actor: &str) -> Result<(), NodeError> {
        self.store().delete_workflow(id).await?;
        self.audit
            .record(actor, AuditAction::WorkflowDelete {}, id.as_str())
            .await?;
        Ok(())
    }

    // ---- runs --------------------------------------------------------------------

    pub async fn start_run(
        &self,
        workflow_id: &WorkflowId,
        options: RunOptions,
        started_by: &Person,
    ) -> Result<RunId, NodeError> {
        let version = options.version;
        let request = StartRun {
            workflow_id: workflow_id.clone(),
            options,
            started_by: started_by.clone(),
            trace: TraceParent::current(),
            tick_ms: None,
        };
        let run_id = ractor::call!(self.manager()?, RunManagerMsg::StartRun, request)??;
        self.audit
            .record(
                &started_by.name,
                AuditAction::RunStart {
                    workflow: workflow_id.to_string(),
                    version,
                },
                run_id.as_str(),
            )
            .await?;
        Ok(run_id)
    }

    /// Waits until run `run_id` has finished, then returns it. For programs that embed a
    /// node; the CLI shows progress from `subscribe` instead.
    pub async fn finished_run(&self, run_id: &RunId) -> Result<RunDetail, NodeError> {
        // Subscribed before the status is read: a finish in between is on the bus.
        let mut events = self.subscribe();
        loop {
            let detail = self.run_detail(run_id).await?;
            if detail.record.status != RunStatus::Running {
                return Ok(detail);
            }
            loop {
                match events.recv().await {
                    Ok(event)
                        if event.run_id == *run_id
                            && matches!(event.event, RunEvent::RunFinished { .. }) =>
                    {
                        break;
                    }
                    // A lagging receiver may have missed the finish: read the status again.
                    Err(broadcast::error::RecvError::Lagged(_)) => break,
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Closed) => {
                        return Err(EngineError::Restarting {
                            what: "the node".into(),
                        }
                        .into());
                    }
                }
            }
        }
    }

    pub async fn cancel_run(&self, run_id: &RunId, by: &str) -> Result<(), NodeError> {
        let manager = self.manager()?;
        let command = RunCommand::Cancel {
            run: run_id.clone(),
            by: by.into(),
        };
        ractor::call!(manager, |reply| RunManagerMsg::Command {
            command,
            may_forward: true,
            reply
        })??;
        self.audit
            .record(by, AuditAction::RunCancel {}, run_id.as_str())
            .await?;
        Ok(())
    }

    /// Continues a failed or cancelled run as a new attempt of the same run: its failed,
    /// cancelled and rejected tasks run again, with `from` and everything downstream;
    /// completed tasks keep their outputs. The tasks that run again, in order.
    pub async fn retry_run(
        &self,
        run_id: &RunId,
        from: Option<TaskId>,
        by: &str,
    ) -> Result<Vec<TaskId>, NodeError> {
        let manager = self.manager()?;
        let mut tries = 0;
        let reset = loop {
            tries += 1;
            let from = from.clone();
            let asked = ractor::call!(manager, |reply| RunManagerMsg::Retry {
                run: run_id.clone(),
                from,
                by: by.into(),
                reply
            })?;
            match asked {
                // The run's actor is still stopping after its last event.
                Err(EngineError::Restarting { .. }) if tries < 50 => {
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
                asked => break asked?,
            }
        };
        let tasks: Vec<String> = reset.iter().map(ToString::to_string).collect();
        self.audit
            .record(by, AuditAction::RunRetry { tasks }, run_id.as_str())
            .await?;
        Ok(reset)
    }

    /// The plan that moves an unfinished run to version `to_version` of its workflow;
    /// unless `dry_run`, applied by the run's owner, which checks it again against the
    /// run as it is then. Refused (with every reason) when it would change or remove a
    /// task that started.
    pub async fn migrate_run(
        &self,
        run_id: &RunId,
        to_version: u32,
        dry_run: bool,
        by: &str,
    ) -> Result<MigrationPlan, NodeError> {
        let record = self.store().run(run_id).await?;
        let state = self.fold_run(&record).await?;
        let to = stored_workflow(&self.context, &record.workflow_id, Some(to_version)).await?;
        let plan = state.migration(&to, (record.workflow_version, to_version));
        if dry_run {
            return Ok(plan);
        }
        if !plan.refusals.is_empty() {
            return Err(EngineError::MigrationRefused(plan.refusals.join("; ")).into());
        }
        let command = RunCommand::Migrate {
            run: run_id.clone(),
            to_version,
            by: by.into(),
        };
        let manager = self.manager()?;
        ractor::call!(manager, |reply| RunManagerMsg::Command {
            command,
            may_forward: true,
            reply
        })??;
        let action = AuditAction::RunMigrate {
            from_version: plan.from_version,
            to_version,
        };
        self.audit.record(by, action, run_id.as_str()).await?;
        Ok(plan)
    }

    pub async fn decide(
        &self,
        run_id: &RunId,
        task: &TaskId,
        decision: Decision,
        expected_digest: Option<String>,
    ) -> Result<(), NodeError> {
        let comment = decision
            .comment
            .clone()
            .filter(|comment| !comment.trim().is_empty());
        let (approved, approver) = (decision.approved, decision.approver.clone());
        let request = DecisionRequest {
            task: task.clone(),
            decision,
            expected_digest,
        };
        let manager = self.manager()?;
        let command = RunCommand::Decide {
            run: run_id.clone(),
            request,
        };
        ractor::call!(manager, |reply| RunManagerMsg::Command {
            command,
            may_forward: true,
            reply
        })??;
        self.audit
            .record(
                &approver,
                AuditAction::ApprovalDecide {
                    approved,
                    comment: comment.clone(),
                },
                &format!("{run_id}/{task}"),
            )
            .await?;
        // A reviewer's comment is the human correction later tasks should learn from.
        if let (Some(comment), Some(_)) = (comment, &self.memory) {
            let scope = self.run_state(run_id).await?.memory_scope();
            let verdict = if approved { "approved" } else { "rejected" };
            let text = format!("{approver} {verdict} task `{task}`: {comment}");
            let metadata = json!({"agent": "human", "task": task, "approved": approved});
            self.remember(&scope, MemoryKind::Episodic, &text, &metadata)
                .await?;
        }
        Ok(())
    }

    // ---- accounts ----------------------------------------------------------------

    pub fn auth(&self) -> &Auth {
        &self.auth
    }

    /// The first super admin's email and one-time password, once: the caller shows it.
    pub fn take_bootstrap_password(&self) -> Option<(String, String)> {
        self.bootstrap.lock().ok().and_then(|mut slot| slot.take())
    }

    // ---- audit -------------------------------------------------------------------

    pub fn audit(&self) -> &AuditLog {
        &self.audit
    }

    pub async fn audit_entries(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>, NodeError> {
        self.store().audit_entries(filter).await.map_err(Into::into)
    }

    // ---- memory ------------------------------------------------------------------

    fn node_memory(&self) -> Result<&NodeMemory, NodeError> {
        self.memory.as_ref().ok_or_else(|| {
            NodeError::InvalidRequest(
                "agent memory needs the local embedding model: start the node with \
                 models.serve = true (after `troupe models fetch`)"
                    .into(),
            )
        })
    }

    /// Entries of one project and user, newest first.
    pub async fn memories(&self, filter: &MemoryFilter) -> Result<Vec<MemoryEntry>, NodeError> {
        self.store().memories(filter).await.map_err(Into::into)
    }

    /// The `k` entries of the filter's scope nearest to `query`, with their scores.
    pub async fn search_memory(
        &self,
        filter: &MemoryFilter,
        query: &str,
        k: usize,
    ) -> Result<Vec<MemoryEntry>, NodeError> {
        self.node_memory()?.search(filter, query, k).await
    }

    /// Adds an entry (a fact a person tells the project's agents); returns its id.
    pub async fn remember(
        &self,
        scope: &MemoryScope,
        kind: MemoryKind,
        text: &str,
        metadata: &Value,
    ) -> Result<String, NodeError> {
        self.node_memory()?
            .insert(scope, kind, text, metadata)
            .await
    }

    pub async fn delete_memory(
        &self,
        project: &str,
        user: &str,
        id: &str,
    ) -> Result<bool, NodeError> {
        self.store()
            .delete_memory(project, user, id)
            .await
            .map_err(Into::into)
    }

    pub async fn runs(&self, filter: &RunFilter) -> Result<Vec<RunRecord>, NodeError> {
        self.store().runs(filter).await.map_err(Into::into)
    }

    /// The run folded from its log: always the durable truth, live or finished.
    pub async fn run_state(&self, run_id: &RunId) -> Result<RunState, NodeError> {
        let record = self.store().run(run_id).await?;
        self.fold_run(&record).await
    }

    async fn fold_run(&self, record: &RunRecord) -> Result<RunState, NodeError> {
        let version = Some(record.workflow_version);
        let workflow = stored_workflow(&self.context, &record.workflow_id, version).await?;
        let mut state = RunState::new(&record.run_id, Arc::new(workflow));
        for event in self.store().run_events(&record.run_id).await? {
            state.apply(&event);
        }
        Ok(state)
    }

    pub async fn run_detail(&self, run_id: &RunId) -> Result<RunDetail, NodeError> {
        self.detail_of(self.store().run(run_id).await?).await
    }

    /// The detail of a run whose record the caller already read.
    pub async fn detail_of(&self, record: RunRecord) -> Result<RunDetail, NodeError> {
        let state = self.fold_run(&record).await?;
        let tasks: Vec<TaskState> = state.tasks_in_order().into_iter().cloned().collect();
        let trace_id = TraceParent::parse(&record.trace).map(|root| root.trace_id());
        let settings = self.settings();
        let url = &settings.telemetry.trace_url;
        let trace_url = trace_id
            .as_ref()
            .filter(|_| !url.is_empty())
            .map(|id| url.replace("{trace_id}", id));
        let budget = match state.workflow.budget_usd {
            Some(budget_usd) => Some(RunBudget {
                budget_usd,
                spent_usd: self.store().run_spend(record.run_id.as_str()).await?,
                on_budget: state.workflow.on_budget.as_str().into(),
            }),
            None => None,
        };
        Ok(RunDetail {
            cost_usd: state.cost_usd(),
            budget,
            failure_reason: state.failure_reason.clone(),
            seed: state.seed,
            record,
            tasks,
            trace_id,
            trace_url,
        })
    }

    pub async fn run_events(&self, run_id: &RunId) -> Result<Vec<StoredEvent>, NodeError> {
        self.store().run(run_id).await?;
        self.store().run_events(run_id).await.map_err(Into::into)
    }

    /// Gates waiting for a decision, in runs of `projects` (`None`: every project).
    pub async fn pending_approvals(
        &self,
        projects: Option<Vec<ProjectId>>,
    ) -> Result<Vec<PendingApproval>, NodeError> {
        let running = self
            .store()
            .runs(&RunFilter {
                status: Some(RunStatus::Running),
                workflow_id: None,
                projects,
                limit: None,
            })
            .await?;
        let mut pending = Vec::new();
        for record in running {
            let state = self.fold_run(&record).await?;
            for task in state
                .tasks()
                .values()
                .filter(|task| task.status == TaskStatus::WaitingApproval)
            {
                let Some(approval) = &task.approval else {
                    continue;
                };
                pending.push(PendingApproval {
                    run_id: record.run_id.clone(),
                    workflow_id: record.workflow_id.clone(),
                    project: record.project.clone(),
                    task: task.id.clone(),
                    task_name: state
                        .workflow
                        .task(task.id.as_str())
                        .map(|t| t.name.clone())
                        .unwrap_or_default(),
                    inputs: approval.inputs.clone(),
                    inputs_digest: approval.inputs_digest.clone(),
                    requested_at_ms: approval.requested_at_ms,
                    expires_at_ms: approval.expires_at_ms,
                });
            }
        }
        Ok(pending)
    }

    /// Load of every agent pool, by kind.
    pub async fn pool_loads(&self) -> BTreeMap<String, PoolLoad> {
        self.vitals.pool_loads().await
    }
}

/// What the node lends agents. With no local model and no remote provider there is
/// nothing to ask: the model-backed kinds then fail at once with how to fix it.
fn agent_services(
    settings: &Settings,
    has_local_models: bool,
    model: &ChainModel,
    memory: &Option<NodeMemory>,
    store: &Store,
) -> AgentServices {
    let can_answer = has_local_models
        || settings
            .providers
            .chain
            .iter()
            .any(|entry| entry.kind != troupe_config::ProviderKind::Local);
    AgentServices {
        model: can_answer.then(|| Arc::new(model.clone()) as Arc<dyn troupe_agents::ModelClient>),
        memory: memory
            .clone()
            .map(|memory| Arc::new(memory) as Arc<dyn troupe_agents::Memory>),
        networks: Some(Arc::new(crate::services::PolicyNetworks {
            store: store.clone(),
        })),
    }
}

fn restart_policy(settings: &Settings) -> RestartPolicy {
    RestartPolicy {
        max_restarts: settings.engine.restart_intensity,
        period: Duration::from_secs(settings.engine.restart_period_secs),
    }
}

/// How the provider chain is built, at start and at each reload: with this node's
/// models and its cluster's.
fn chain_maker(
    inference: &Option<InferenceService>,
    cluster: &Option<Arc<ClusterPlacement>>,
) -> ChainMaker {
    let (inference, cluster) = (inference.clone(), cluster.clone());
    Box::new(move |settings, keys| {
        provider_chain(settings, inference.clone(), keys, cluster.clone())
    })
}

async fn spawn_root(
    policy: RestartPolicy,
    children: Vec<ChildSpec>,
) -> Result<(ActorRef<SupervisorMsg>, JoinHandle<()>), NodeError> {
    Actor::spawn(None, Supervisor, Supervisor::args(policy, children))
        .await
        .map_err(|error| NodeError::Start {
            what: "cannot start the node",
            source: error.into(),
        })
}

/// Version `version` of workflow `id` (its latest when `None`), read from the store and
/// parsed as the engine runs it.
pub(crate) async fn stored_workflow(
    context: &EngineContext,
    id: &WorkflowId,
    version: Option<u32>,
) -> Result<Workflow, NodeError> {
    let stored = context.store.workflow_version(id, version).await?;
    Ok(context.parse_workflow(&stored.source, id.as_str())?)
}

/// The alert loop of this node: its own metrics, judged by `alerts.*`.
fn alert_loop(
    settings: &Settings,
    vitals: &Vitals,
    audit: &Arc<AuditLog>,
    reloader: &Reloader,
) -> AlertLoop {
    let scheme = if settings.server.tls.is_some() {
        "https"
    } else {
        "http"
    };
    AlertLoop {
        vitals: vitals.clone(),
        audit: audit.clone(),
        settings: reloader.running.subscribe(),
        instance: settings.node_name(),
        node_url: format!("{scheme}://{}", settings.server.address),
    }
}

/// Verifies the audit chain every `every` after the check at start, so that a chain
/// altered while the node runs is caught (in the log and in `/metrics`) without waiting
/// for a restart.
/// None with `every_secs` 0 (verified at start only).
fn watch_audit(audit: Arc<AuditLog>, every_secs: u64) -> Option<JoinHandle<()>> {
    let every = Duration::from_secs(every_secs);
    (every_secs > 0).then(|| {
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            // The first tick is now: the chain was verified at start.
            ticks.tick().await;
            loop {
                ticks.tick().await;
                match audit.verify().await {
                    Ok(report) if !report.intact => tracing::error!(
                        breach = ?report.first_bad,
                        "the audit chain fails verification: run `troupe audit verify`"
                    ),
                    Ok(_) => {}
                    Err(error) => tracing::warn!(%error, "cannot verify the audit chain"),
                }
            }
        })
    })
}

/// The audit log, verified, with this start recorded and checkpointed: a chain cut
/// short or rewritten while the node was down is caught against the checkpoints before
/// a new one could sign it.
async fn open_audit(
    store: &Store,
    settings: &Settings,
    node_id: &str,
) -> Result<Arc<AuditLog>, NodeError> {
    let checkpoints = troupe_security::audit::checkpoint_dir(settings);
    let shipping = Shipping::start(&settings.audit.ship, node_id).await?;
    let audit = AuditLog::open(
        store.clone(),
        checkpoints.as_deref(),
        settings.audit.checkpoint_every,
    )
    .await?
    .shipped(shipping);
    if let Some(breach) = audit.verify().await?.first_bad {
        match settings.audit.on_tampering {
            TamperResponse::Refuse => {
                return Err(NodeError::AuditTampered {
                    seq: breach.seq,
                    problem: breach.problem,
                    checkpoints: checkpoints
                        .map_or_else(|| "none".into(), |dir| dir.display().to_string()),
                });
            }
            TamperResponse::Warn => tracing::error!(
                seq = breach.seq,
                problem = %breach.problem,
                "the audit log failed verification; starting because audit.on_tampering = warn"
            ),
        }
    }
    audit
        .record(
            "system",
            AuditAction::NodeStart {
                settings_sha256: settings_digest(settings),
            },
            &settings.server.address,
        )
        .await?;
    audit.checkpoint().await?;
    Ok(Arc::new(audit))
}

/// The local models (loaded off the async runtime) and the spec of their router, when
/// `models.serve` is on.
async fn start_inference(
    settings: &Settings,
    policy: RestartPolicy,
    node_id: &str,
) -> Result<Option<(InferenceService, ChildSpec)>, NodeError> {
    if !settings.models.serve {
        return Ok(None);
    }
    let models = settings.models.clone();
    let config = tokio::task::spawn_blocking(move || setup::load(&models, policy))
        .await
        .map_err(|error| NodeError::Start {
            what: "loading models",
            source: error.into(),
        })??;
    Ok(Some(InferenceService::supervised(
        EngineContext::router_name(node_id),
        config,
    )))
}

/// The engine's supervised actors: one agent pool per kind, then the run manager, each
/// reachable through its `ChildRef` in the context.
fn engine_children(context: &Arc<EngineContext>, settings: &Settings) -> Vec<ChildSpec> {
    let capacity = settings.engine.agent_queue_capacity as usize;
    let mut children = Vec::new();
    for agent in context.registry.agents() {
        let (agent, slots) = (agent.clone(), context.node_slots.clone());
        let book = OutcomeBook {
            store: context.store.clone(),
            node: context.node_name.clone(),
        };
        let name = context.pool_name(agent.kind());
        // Invariant: `EngineContext::new` made a ref for every kind of the registry.
        let Some(handle) = context.pools.get(agent.kind()).cloned() else {
            continue;
        };
        children.push(ChildSpec::with_ref(
            name.clone(),
            handle,
            move |supervisor| {
                let args = AgentPoolArgs {
                    agent: agent.clone(),
                    node_slots: slots.clone(),
                    capacity,
                    outcomes: Some(book.clone()),
                };
                let name = name.clone();
                async move {
                    Ok(Actor::spawn_linked(Some(name), AgentPool, args, supervisor)
                        .await?
                        .0)
                }
            },
        ));
    }
    let manager_context = context.clone();
    let manager_name = context.run_manager_name();
    let handle = context.run_manager.clone();
    children.push(ChildSpec::with_ref(
        manager_name.clone(),
        handle,
        move |supervisor| {
            let context = manager_context.clone();
            let name = manager_name.clone();
            async move {
                Ok(
                    Actor::spawn_linked(Some(name), RunManager, context, supervisor)
                        .await?
                        .0,
                )
            }
        },
    ));
    children
}

/// The provider chain: this node's models, and on a cluster node the other nodes'
/// (asked when this node's cannot answer), then the paid providers.
pub(crate) fn provider_chain(
    settings: &Settings,
    inference: Option<InferenceService>,
    sealed_keys: &BTreeMap<String, String>,
    cluster: Option<Arc<ClusterPlacement>>,
) -> ProviderChain {
    let chain = ProviderChain::with_keys(&settings.providers, inference, sealed_keys);
    match cluster {
        Some(placement) => chain.with_peers(Arc::new(ClusterModels {
            placement,
            timeout: Duration::from_secs(settings.providers.timeout_secs.max(1)),
        })),
        None => chain,
    }
}

/// The providers' keys kept as sealed secrets, opened once at start; a provider naming a
/// secret that is not stored stops the start with the command that stores it.
pub(crate) async fn provider_keys(
    store: &Store,
    sealer: &troupe_security::secrets::SecretBox,
    providers: &troupe_config::ProviderSettings,
) -> Result<BTreeMap<String, String>, NodeError> {
    let mut keys = BTreeMap::new();
    for entry in providers
        .chain
        .iter()
        .filter(|e| !e.api_key_secret.is_empty())
    {
        let value = troupe_security::secrets::get(store, sealer, &entry.api_key_secret)
            .await?
            .ok_or_else(|| {
                NodeError::ProviderKey(format!(
                    "provider `{}` takes its key from secret `{}`, which is not stored: \
                     troupe secrets set {} (the key on standard input)",
                    entry.name, entry.api_key_secret, entry.api_key_secret
                ))
            })?;
        let key = String::from_utf8(value).map_err(|_| {
            NodeError::ProviderKey(format!(
                "secret `{}` is not UTF-8 text",
                entry.api_key_secret
            ))
        })?;
        keys.insert(entry.name.clone(), key);
    }
    Ok(keys)
}

/// The effective settings (secrets masked) as a digest: a change between starts shows
/// in the audit log as a different digest.
pub(crate) fn settings_digest(settings: &Settings) -> String {
    troupe_store::digest::sha256_hex(&troupe_config::render_masked(settings))
}
