//! `troupe runs list|show|cancel|retry|migrate` and `troupe approve|reject`, against a
//! running node.

use std::process::ExitCode;

use clap::Subcommand;
use troupe_api::wire::{
    CancelRequest, DecisionBody, MigrateRequest, Retried, RetryRequest, Verdict,
};
use troupe_config::Settings;
use troupe_engine::state::MigrationPlan;
use troupe_node::RunDetail;
use troupe_store::events::RunStatus;
use troupe_store::{RunId, RunRecord};

use super::client::Client;
use super::progress::print_summary;

#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    List {
        /// running, completed, failed or cancelled.
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        workflow: Option<String>,
        #[arg(long)]
        server: Option<String>,
    },
    Show {
        run_id: RunId,
        #[arg(long)]
        server: Option<String>,
    },
    Cancel {
        run_id: RunId,
        #[arg(long)]
        server: Option<String>,
    },
    /// Continue a failed or cancelled run: its failed and cancelled tasks run again,
    /// completed ones keep their outputs.
    Retry {
        run_id: RunId,
        /// Also run this task again, and everything downstream of it.
        #[arg(long)]
        from: Option<String>,
        #[arg(long)]
        server: Option<String>,
    },
    /// Move an unfinished run to another version of its workflow.
    Migrate {
        run_id: RunId,
        #[arg(long)]
        to_version: u32,
        /// Print the plan and change nothing.
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        server: Option<String>,
    },
}

#[derive(Debug, clap::Args)]
pub struct DecisionArgs {
    run_id: RunId,
    task: String,
    #[arg(long)]
    comment: Option<String>,
    /// Who decides; the USER environment variable when absent.
    #[arg(long = "as")]
    approver: Option<String>,
    /// Only decide if the gate still guards these inputs (the digest shown to reviewers).
    #[arg(long)]
    expected_digest: Option<String>,
    #[arg(long)]
    server: Option<String>,
}

pub async fn runs(settings: &Settings, command: RunsCommand) -> anyhow::Result<ExitCode> {
    match command {
        RunsCommand::List {
            status,
            workflow,
            server,
        } => {
            let client = Client::for_settings(server.as_deref(), settings);
            let mut query = vec![];
            if let Some(status) = status {
                query.push(format!("status={status}"));
            }
            if let Some(workflow) = workflow {
                query.push(format!("workflow_id={workflow}"));
            }
            let runs: Vec<RunRecord> = client
                .get(&format!("/api/v1/runs?{}", query.join("&")))
                .await?;
            println!(
                "{:<38} {:<10} {:<24} STARTED BY",
                "RUN", "STATUS", "WORKFLOW"
            );
            for run in runs {
                println!(
                    "{:<38} {:<10} {:<24} {}",
                    run.run_id,
                    run.status.as_str(),
                    format!("{} v{}", run.workflow_id, run.workflow_version),
                    run.started_by
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        RunsCommand::Show { run_id, server } => {
            let client = Client::for_settings(server.as_deref(), settings);
            let detail: RunDetail = client.get(&format!("/api/v1/runs/{run_id}")).await?;
            print_summary(&detail);
            Ok(exit_for(detail.record.status))
        }
        RunsCommand::Cancel { run_id, server } => {
            let client = Client::for_settings(server.as_deref(), settings);
            let by = Some(user());
            let _: serde_json::Value = client
                .post(
                    &format!("/api/v1/runs/{run_id}/cancel"),
                    &CancelRequest { by },
                )
                .await?;
            println!("cancellation of {run_id} requested");
            Ok(ExitCode::SUCCESS)
        }
        RunsCommand::Retry {
            run_id,
            from,
            server,
        } => {
            let client = Client::for_settings(server.as_deref(), settings);
            let body = RetryRequest {
                from,
                by: Some(user()),
            };
            let retried: Retried = client
                .post(&format!("/api/v1/runs/{run_id}/retry"), &body)
                .await?;
            println!("retrying {run_id}: {}", retried.tasks.join(", "));
            Ok(ExitCode::SUCCESS)
        }
        RunsCommand::Migrate {
            run_id,
            to_version,
            dry_run,
            server,
        } => {
            let client = Client::for_settings(server.as_deref(), settings);
            let body = MigrateRequest {
                to_version,
                dry_run,
                by: Some(user()),
            };
            let plan: MigrationPlan = client
                .post(&format!("/api/v1/runs/{run_id}/migrate"), &body)
                .await?;
            print_plan(&plan, dry_run);
            Ok(if plan.refusals.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            })
        }
    }
}

/// A migration's plan, one line per kind of change.
fn print_plan(plan: &MigrationPlan, dry_run: bool) {
    let verb = if dry_run { "would move" } else { "moved" };
    println!(
        "{verb} from version {} to {}",
        plan.from_version, plan.to_version
    );
    for (what, tasks) in [
        ("added", &plan.added),
        ("removed", &plan.removed),
        ("changed", &plan.changed),
        ("kept", &plan.kept),
    ] {
        if !tasks.is_empty() {
            println!("  {what}: {}", tasks.join(", "));
        }
    }
    for refusal in &plan.refusals {
        println!("  refused: {refusal}");
    }
}

pub async fn decide(
    settings: &Settings,
    args: DecisionArgs,
    approve: bool,
) -> anyhow::Result<ExitCode> {
    let client = Client::for_settings(args.server.as_deref(), settings);
    let body = DecisionBody {
        decision: if approve {
            Verdict::Approve
        } else {
            Verdict::Reject
        },
        approver: args.approver.unwrap_or_else(user),
        comment: args.comment,
        expected_digest: args.expected_digest,
    };
    let _: serde_json::Value = client
        .post(
            &format!("/api/v1/runs/{}/tasks/{}/decision", args.run_id, args.task),
            &body,
        )
        .await?;
    println!(
        "{} {} of run {}",
        if approve { "approved" } else { "rejected" },
        args.task,
        args.run_id
    );
    Ok(ExitCode::SUCCESS)
}

pub fn user() -> String {
    std::env::var("USER")
        .ok()
        .filter(|user| !user.is_empty())
        .unwrap_or_else(|| "cli".into())
}

pub fn exit_for(status: RunStatus) -> ExitCode {
    match status {
        RunStatus::Completed | RunStatus::Running => ExitCode::SUCCESS,
        RunStatus::Failed | RunStatus::Cancelled => ExitCode::from(1),
    }
}
