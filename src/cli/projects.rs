//! `troupe projects allow|disallow|gate|ungate|policy`: the agent kinds a project was
//! granted and those whose tasks must wait for a second person (the execution policy),
//! through a running node with `--server` (as a caller holding
//! `agents.configure` in the project), or else on the store the settings name (an
//! embedded store is opened here, so stop the node first).

use std::process::ExitCode;

use clap::Subcommand;
use serde_json::json;
use troupe_config::Settings;
use troupe_node::policy::PolicyChange;
use troupe_store::{ProjectId, ProjectPolicy};

use super::client::{Client, encode};
use super::runs::user;
use super::users::with_offline;

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
    /// Make every task of these kinds an approval gate a second person decides:
    /// workflows without that gate are refused at save and at start.
    Gate {
        project: ProjectId,
        #[arg(required = true)]
        kinds: Vec<String>,
        #[arg(long)]
        server: Option<String>,
    },
    /// Stop requiring the gate for these kinds.
    Ungate {
        project: ProjectId,
        #[arg(required = true)]
        kinds: Vec<String>,
        #[arg(long)]
        server: Option<String>,
    },
    /// Let the project's `http` and `osv_url` requests reach these private networks
    /// (CIDR, like 10.1.0.0/16) beyond the node's; never loopback or link-local.
    AllowNetwork {
        project: ProjectId,
        #[arg(required = true)]
        networks: Vec<String>,
        #[arg(long)]
        server: Option<String>,
    },
    /// Withdraw networks from the project.
    DisallowNetwork {
        project: ProjectId,
        #[arg(required = true)]
        networks: Vec<String>,
        #[arg(long)]
        server: Option<String>,
    },
    /// Show the kinds the project was granted, those it gates and its networks.
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
        | ProjectsCommand::Gate {
            project, server, ..
        }
        | ProjectsCommand::Ungate {
            project, server, ..
        }
        | ProjectsCommand::AllowNetwork {
            project, server, ..
        }
        | ProjectsCommand::DisallowNetwork {
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
    println!(
        "project {project} may use, beyond the kinds every project may: {}",
        listed(&policy.allowed_kinds)
    );
    println!(
        "tasks that must wait for a second person's approval: {}",
        listed(&policy.gated_kinds)
    );
    println!(
        "private networks its requests may reach: {}",
        listed(&policy.allowed_networks)
    );
    Ok(ExitCode::SUCCESS)
}

fn listed(kinds: &[String]) -> String {
    if kinds.is_empty() {
        "none".into()
    } else {
        kinds.join(", ")
    }
}

/// The change `command` makes to `current`; `None` for `policy`.
fn change(current: &ProjectPolicy, command: &ProjectsCommand) -> Option<PolicyChange> {
    let with = |list: &[String], kinds: &[String]| list.iter().chain(kinds).cloned().collect();
    let without = |list: &[String], kinds: &[String]| {
        list.iter()
            .filter(|kind| !kinds.contains(kind))
            .cloned()
            .collect()
    };
    let mut change = PolicyChange::default();
    match command {
        ProjectsCommand::Allow { kinds, .. } => {
            change.allowed_kinds = Some(with(&current.allowed_kinds, kinds));
        }
        ProjectsCommand::Disallow { kinds, .. } => {
            change.allowed_kinds = Some(without(&current.allowed_kinds, kinds));
        }
        ProjectsCommand::Gate { kinds, .. } => {
            change.gated_kinds = Some(with(&current.gated_kinds, kinds));
        }
        ProjectsCommand::Ungate { kinds, .. } => {
            change.gated_kinds = Some(without(&current.gated_kinds, kinds));
        }
        ProjectsCommand::AllowNetwork { networks, .. } => {
            change.allowed_networks = Some(with(&current.allowed_networks, networks));
        }
        ProjectsCommand::DisallowNetwork { networks, .. } => {
            change.allowed_networks = Some(without(&current.allowed_networks, networks));
        }
        ProjectsCommand::Policy { .. } => return None,
    }
    Some(change)
}

async fn through_node(
    client: &Client,
    project: &ProjectId,
    command: ProjectsCommand,
) -> anyhow::Result<ProjectPolicy> {
    let path = format!("/api/v1/projects/{}/policy", encode(project.as_str()));
    let current: ProjectPolicy = client.get(&path).await?;
    match change(&current, &command) {
        Some(change) => {
            let body = json!({
                "allowed_kinds": change.allowed_kinds,
                "gated_kinds": change.gated_kinds,
                "allowed_networks": change.allowed_networks,
            });
            client.put(&path, &body).await
        }
        None => Ok(current),
    }
}

async fn offline(
    settings: &Settings,
    project: &ProjectId,
    command: ProjectsCommand,
) -> anyhow::Result<ProjectPolicy> {
    with_offline(settings, async move |store, audit| {
        let current = store.project_policy(project).await?;
        match change(&current, &command) {
            Some(change) => {
                let by = format!("cli:{}", user());
                troupe_node::policy::change_project_policy(store, audit, project, change, None, &by)
                    .await
                    .map_err(|error| super::InputError(error.to_string()).into())
            }
            None => Ok(current),
        }
    })
    .await
}
