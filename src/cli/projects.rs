//! `troupe projects allow|disallow|policy`: the agent kinds a project was granted (the
//! execution policy), through a running node with `--server` (as a caller holding
//! `agents.configure` in the project), or else on the store the settings name (an
//! embedded store is opened here, so stop the node first).

use std::process::ExitCode;

use clap::Subcommand;
use serde_json::json;
use troupe_config::Settings;
use troupe_store::{ProjectId, ProjectPolicy};

use super::client::{Client, encode};
use super::runs::user;
use super::users::open_offline;

#[derive(Debug, Subcommand)]
pub enum ProjectsCommand {
    /// Let the project's workflows use these kinds (`default` is the project of
    /// workflows that name none).
    Allow {
        project: ProjectId,
        #[arg(required = true)]
        kinds: Vec<String>,
        #[arg(long)]
        server: Option<String>,
    },
    /// Withdraw kinds: runs that use them no longer start.
    Disallow {
        project: ProjectId,
        #[arg(required = true)]
        kinds: Vec<String>,
        #[arg(long)]
        server: Option<String>,
    },
    /// Show the kinds the project was granted.
    Policy {
        project: ProjectId,
        #[arg(long)]
        server: Option<String>,
    },
}

pub async fn projects(settings: &Settings, command: ProjectsCommand) -> anyhow::Result<ExitCode> {
    let (project, server) = match &command {
        ProjectsCommand::Allow {
            project, server, ..
        }
        | ProjectsCommand::Disallow {
            project, server, ..
        }
        | ProjectsCommand::Policy { project, server } => (project.clone(), server.clone()),
    };
    let policy = match server {
        Some(server) => {
            through_node(
                &Client::for_settings(Some(&server), settings),
                &project,
                command,
            )
            .await?
        }
        None => offline(settings, &project, command).await?,
    };
    let kinds = if policy.allowed_kinds.is_empty() {
        "none".to_string()
    } else {
        policy.allowed_kinds.join(", ")
    };
    println!("project {project} may use, beyond the kinds every project may: {kinds}");
    Ok(ExitCode::SUCCESS)
}

/// The kinds after `command`, from those granted now; `None` for `policy`.
fn changed(granted: &[String], command: &ProjectsCommand) -> Option<Vec<String>> {
    match command {
        ProjectsCommand::Allow { kinds, .. } => {
            Some(granted.iter().chain(kinds).cloned().collect())
        }
        ProjectsCommand::Disallow { kinds, .. } => Some(
            granted
                .iter()
                .filter(|kind| !kinds.contains(kind))
                .cloned()
                .collect(),
        ),
        ProjectsCommand::Policy { .. } => None,
    }
}

async fn through_node(
    client: &Client,
    project: &ProjectId,
    command: ProjectsCommand,
) -> anyhow::Result<ProjectPolicy> {
    let path = format!("/api/v1/projects/{}/policy", encode(project.as_str()));
    let current: ProjectPolicy = client.get(&path).await?;
    match changed(&current.allowed_kinds, &command) {
        Some(kinds) => client.put(&path, &json!({ "allowed_kinds": kinds })).await,
        None => Ok(current),
    }
}

async fn offline(
    settings: &Settings,
    project: &ProjectId,
    command: ProjectsCommand,
) -> anyhow::Result<ProjectPolicy> {
    let (store, audit) = open_offline(settings).await?;
    let current = store.project_policy(project).await?;
    match changed(&current.allowed_kinds, &command) {
        Some(kinds) => {
            let by = format!("cli:{}", user());
            troupe_node::policy::set_project_kinds(&store, &audit, project, kinds, None, &by)
                .await
                .map_err(|error| super::InputError(error.to_string()).into())
        }
        None => Ok(current),
    }
}
