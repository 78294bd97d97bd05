//! `troupe workflow validate|list`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use troupe_config::Settings;
use troupe_store::WorkflowRecord;

use super::client::Client;

#[derive(Debug, Subcommand)]
pub enum WorkflowCommand {
    /// Check workflow files; print every error with file, line and column.
    Validate {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// List the workflows stored on a running node.
    List {
        #[arg(long)]
        server: Option<String>,
    },
}

pub async fn workflow(settings: &Settings, command: WorkflowCommand) -> anyhow::Result<ExitCode> {
    match command {
        WorkflowCommand::Validate { files } => Ok(validate(settings, &files)),
        WorkflowCommand::List { server } => {
            let client = Client::for_settings(server.as_deref(), settings);
            let workflows: Vec<WorkflowRecord> = client.get("/api/v1/workflows").await?;
            println!("{:<32} {:>7}  NAME", "ID", "VERSION");
            for workflow in workflows {
                println!(
                    "{:<32} {:>7}  {}",
                    workflow.workflow_id, workflow.latest_version, workflow.name
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn validate(settings: &Settings, files: &[PathBuf]) -> ExitCode {
    let registry = match troupe_node::builtin_registry(settings) {
        Ok(registry) => registry,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::from(2);
        }
    };
    let known = registry.kind_names();
    let mut failed = false;
    for file in files {
        let name = file.display().to_string();
        match std::fs::read_to_string(file) {
            Err(error) => {
                eprintln!("{name}: cannot read: {error}");
                failed = true;
            }
            Ok(source) => match troupe_workflow::parse_workflow(&source, &name, &known) {
                Ok(workflow) => match troupe_node::schedule_problem(&workflow) {
                    Some(problem) => {
                        eprintln!("{name}: {problem}");
                        failed = true;
                    }
                    None => println!(
                        "{name}: ok ({} tasks, estimated cost ${:.2})",
                        workflow.tasks.len(),
                        workflow.estimated_cost()
                    ),
                },
                Err(diagnostics) => {
                    eprintln!("{diagnostics}");
                    eprintln!("{name}: {} error(s)", diagnostics.0.len());
                    failed = true;
                }
            },
        }
    }
    if failed {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    }
}
