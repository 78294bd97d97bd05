//! `troupe triggers list|pause|resume`: what starts workflows besides people (their
//! schedules, with the next tick, and push triggers), and stopping it for a while.

use std::process::ExitCode;

use clap::Subcommand;
use troupe_config::Settings;
use troupe_node::TriggerView;

use super::client::Client;

#[derive(Debug, Subcommand)]
pub enum TriggersCommand {
    /// Each workflow's schedule (its next tick) and push trigger, whether they are
    /// paused, and its last runs.
    List {
        /// A running node (default: server.address).
        #[arg(long)]
        server: Option<String>,
        /// Print them as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Stop a workflow's schedule and push trigger from starting runs.
    Pause {
        workflow: String,
        #[arg(long)]
        server: Option<String>,
    },
    /// Let them start runs again; ticks from the pause are not caught up.
    Resume {
        workflow: String,
        #[arg(long)]
        server: Option<String>,
    },
}

pub async fn triggers(settings: &Settings, command: TriggersCommand) -> anyhow::Result<ExitCode> {
    match command {
        TriggersCommand::List { server, json } => {
            let client = Client::for_settings(server.as_deref(), settings);
            let views: Vec<TriggerView> = client.get("/api/v1/triggers").await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&views)?);
            } else {
                print!("{}", table(&views));
            }
        }
        TriggersCommand::Pause { workflow, server } => {
            set_paused(settings, server, &workflow, "pause").await?;
            println!("the triggers of {workflow} are paused");
        }
        TriggersCommand::Resume { workflow, server } => {
            set_paused(settings, server, &workflow, "resume").await?;
            println!("the triggers of {workflow} are on again");
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn set_paused(
    settings: &Settings,
    server: Option<String>,
    workflow: &str,
    verb: &str,
) -> anyhow::Result<()> {
    let client = Client::for_settings(server.as_deref(), settings);
    let path = format!("/api/v1/workflows/{workflow}/triggers/{verb}");
    client
        .post::<_, serde_json::Value>(&path, &serde_json::json!({}))
        .await?;
    Ok(())
}

fn table(views: &[TriggerView]) -> String {
    if views.is_empty() {
        return "No workflow has a schedule or a push trigger.\n".into();
    }
    let mut out = format!(
        "{:<24} {:<7} {:<34} {:<24} LAST RUN\n",
        "WORKFLOW", "STATE", "TRIGGERS", "NEXT TICK"
    );
    for view in views {
        let mut triggers = Vec::new();
        if let Some(schedule) = &view.schedule {
            let zone = schedule.timezone.as_deref().unwrap_or("UTC");
            triggers.push(format!("cron {} {zone}", schedule.cron));
        }
        if let Some(push) = &view.on_push {
            triggers.push(format!("push {}", push.branches.join(",")));
        }
        let next = view
            .schedule
            .as_ref()
            .and_then(|schedule| schedule.next_tick_ms)
            .map_or_else(|| "-".to_owned(), troupe_alerts::rfc3339);
        let last = view.last_runs.first().map_or_else(
            || "-".to_owned(),
            |run| {
                format!(
                    "{} {} ({})",
                    run.run_id,
                    run.status.as_str(),
                    run.started_by
                )
            },
        );
        let state = if view.paused { "paused" } else { "on" };
        out.push_str(&format!(
            "{:<24} {:<7} {:<34} {:<24} {last}\n",
            view.workflow_id,
            state,
            triggers.join("; "),
            next
        ));
    }
    out
}
