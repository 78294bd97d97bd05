//! `troupe run FILE`: validate, start and follow a run, in this process (with the API
//! served alongside, so approvals can be given from another terminal) or on `--server`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, anyhow};
use futures::StreamExt;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;
use troupe_api::wire::{RunStarted, StartRunRequest, WorkflowCreated};
use troupe_config::Settings;
use troupe_node::{Node, NodeBuilder, Person, RunDetail, RunOptions};
use troupe_store::events::StoredEvent;
use troupe_workflow::Workflow;

use super::InputError;
use super::client::Client;
use super::progress::{Progress, print_summary};
use super::runs::{exit_for, user};

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    file: PathBuf,
    /// Override a variable (repeatable); the value is read as the variable's type.
    #[arg(long = "var", value_name = "NAME=VALUE")]
    vars: Vec<String>,
    /// Run on this node (e.g. http://127.0.0.1:7700) instead of in this process.
    #[arg(long)]
    server: Option<String>,
    /// Who starts the run; the USER environment variable when absent.
    #[arg(long = "as")]
    started_by: Option<String>,
    /// The run's sampling seed: the same seed draws the same answers from the local
    /// model again. The run's id gives one when absent (`troupe runs show` prints it).
    #[arg(long)]
    seed: Option<u64>,
}

pub async fn run(settings: Settings, args: RunArgs) -> anyhow::Result<ExitCode> {
    let name = args.file.display().to_string();
    let source = std::fs::read_to_string(&args.file)
        .map_err(|error| InputError(format!("cannot read {name}: {error}")))?;
    let registry =
        troupe_node::builtin_registry(&settings).map_err(|error| InputError(error.to_string()))?;
    let workflow = troupe_workflow::parse_workflow(&source, &name, &registry.kind_names())
        .map_err(|diagnostics| InputError(diagnostics.to_string()))?;
    let options = RunOptions {
        version: None,
        variables: parse_vars(&workflow, &args.vars)?,
        seed: args.seed,
    };
    let started_by = args.started_by.clone().unwrap_or_else(user);
    match &args.server {
        Some(server) => {
            run_remote(
                &Client::for_settings(Some(server), &settings),
                &workflow,
                source,
                options,
                started_by,
            )
            .await
        }
        None => run_local(settings, &workflow, &source, &name, options, started_by).await,
    }
}

fn parse_vars(
    workflow: &Workflow,
    assignments: &[String],
) -> anyhow::Result<BTreeMap<String, Value>> {
    let mut variables = BTreeMap::new();
    for assignment in assignments {
        let (name, text) = assignment
            .split_once('=')
            .ok_or_else(|| InputError(format!("--var `{assignment}` must look like NAME=VALUE")))?;
        let default = workflow.variables.get(name).ok_or_else(|| {
            let known: Vec<&str> = workflow.variables.keys().map(String::as_str).collect();
            InputError(format!(
                "--var {name}: the workflow has no variable `{name}` (it has: {})",
                known.join(", ")
            ))
        })?;
        let value = troupe_workflow::coerce_variable_text(default, text)
            .map_err(|error| InputError(format!("--var {name}: {error}")))?;
        variables.insert(name.to_string(), value);
    }
    Ok(variables)
}

async fn run_local(
    settings: Settings,
    workflow: &Workflow,
    source: &str,
    name: &str,
    options: RunOptions,
    started_by: String,
) -> anyhow::Result<ExitCode> {
    // An in-process run loads the local models only for a workflow that has a
    // model-backed task, fetching them first when they are missing.
    let mut settings = settings;
    settings.models.serve = workflow
        .tasks
        .iter()
        .any(|task| troupe_agents::CREW_KINDS.contains(&task.agent.as_str()));
    if settings.models.serve {
        let fetching = settings.clone();
        tokio::task::spawn_blocking(move || super::models::fetch_defaults(&fetching))
            .await?
            .context("fetching the default models")?;
    }
    let node = NodeBuilder::new(settings.clone())
        .start()
        .await
        .with_context(|| {
            format!(
                "starting a node on {} (if `troupe up` already runs there, add --server http://{})",
                settings.store.url, settings.server.address
            )
        })?;
    let node = Arc::new(node);
    if let Some((email, password)) = node.take_bootstrap_password() {
        // The first start of this store made the first account: say so once, as `up` does.
        eprintln!(
            "First account: {email}  one-time password: {password}  (troupe login --email {email})"
        );
    }
    let api = serve_api_alongside(node.clone(), &settings).await;
    if api.is_some() {
        eprintln!(
            "Watch it in the web UI: http://{}/ (while the run lasts; `troupe up` keeps it)",
            settings.server.address
        );
    }
    let mut events = node.subscribe();
    let (workflow_id, _) = node.save_workflow(source, name, &started_by).await?;
    let run_id = node
        .start_run(&workflow_id, options, &Person::named(&started_by))
        .await?;
    let progress = Progress::new(workflow);
    // Events written before we read the log arrive on the bus too: show each seq once.
    let mut next_seq = 0;
    let mut finished = false;
    for event in node.run_events(&run_id).await? {
        next_seq = event.seq + 1;
        finished |= progress.show(&event);
    }
    while !finished {
        match events.recv().await {
            Ok(event) if event.run_id == run_id && event.seq >= next_seq => {
                next_seq = event.seq + 1;
                finished = progress.show(&event);
            }
            Ok(_) => {}
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
            Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                return Err(anyhow!("the node stopped"));
            }
        }
    }
    let detail = node.run_detail(&run_id).await?;
    print_summary(&detail);
    if let Some(api) = api {
        api.abort();
    }
    if let Ok(node) = Arc::try_unwrap(node) {
        node.shutdown().await;
    }
    Ok(exit_for(detail.record.status))
}

/// Serves the API while an in-process run goes on, so `troupe approve` works from another
/// terminal. A busy address is not an error: the run just has no API.
async fn serve_api_alongside(
    node: Arc<Node>,
    settings: &Settings,
) -> Option<tokio::task::JoinHandle<()>> {
    let address =
        troupe_api::check_bind_address(&settings.server.address, settings.auth.required).ok()?;
    let tls = match settings
        .server
        .tls
        .as_ref()
        .map(super::tls::config)
        .transpose()
    {
        Ok(tls) => tls,
        Err(error) => {
            eprintln!("note: not serving the API: {error}");
            return None;
        }
    };
    match tokio::net::TcpListener::bind(address).await {
        Ok(listener) => {
            let app = troupe_api::router(node);
            let forever = std::future::pending();
            Some(tokio::spawn(async move {
                if let Err(error) = super::serve::serve(listener, app, tls, forever).await {
                    tracing::warn!(%error, "the API alongside the run stopped");
                }
            }))
        }
        Err(error) => {
            eprintln!(
                "note: not serving the API on {address} ({error}); approvals need `troupe up`"
            );
            None
        }
    }
}

async fn run_remote(
    client: &Client,
    workflow: &Workflow,
    source: String,
    options: RunOptions,
    started_by: String,
) -> anyhow::Result<ExitCode> {
    let ws_url = format!("{}/api/v1/events", client.base().replacen("http", "ws", 1));
    // Subscribe before starting, so no event of the new run is missed.
    let (mut socket, _) = tokio_tungstenite::connect_async(&ws_url)
        .await
        .with_context(|| format!("cannot open the event stream at {ws_url}"))?;
    let created: WorkflowCreated = client.post_text("/api/v1/workflows", source).await?;
    let request = StartRunRequest {
        variables: options.variables,
        version: Some(created.version),
        started_by: Some(started_by),
        seed: options.seed,
    };
    let started: RunStarted = client
        .post(
            &format!("/api/v1/workflows/{}/runs", created.workflow_id),
            &request,
        )
        .await?;
    let progress = Progress::new(workflow);
    while let Some(message) = socket.next().await {
        let Message::Text(text) = message.context("event stream")? else {
            continue;
        };
        let Ok(event) = serde_json::from_str::<StoredEvent>(&text) else {
            continue;
        };
        if event.run_id == started.run_id && progress.show(&event) {
            break;
        }
    }
    let detail: RunDetail = client
        .get(&format!("/api/v1/runs/{}", started.run_id))
        .await?;
    print_summary(&detail);
    Ok(exit_for(detail.record.status))
}
