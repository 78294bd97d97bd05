//! `troupe memory`: search, list and delete what a project's agents remember, on a
//! running node.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde_json::json;
use troupe_config::Settings;
use troupe_store::MemoryEntry;

use super::client::{Client, encode};
use super::runs::user;

#[derive(Debug, Subcommand)]
pub enum MemoryCommand {
    /// The entries nearest to QUERY, with their similarity scores.
    Search {
        query: String,
        #[command(flatten)]
        owner: Owner,
        /// How many entries.
        #[arg(short, long, default_value_t = 5)]
        k: usize,
    },
    /// The newest entries.
    List {
        #[command(flatten)]
        owner: Owner,
        /// short_term, long_term or episodic.
        #[arg(long)]
        kind: Option<String>,
    },
    /// Deletes one entry.
    Delete {
        id: String,
        #[command(flatten)]
        owner: Owner,
    },
}

#[derive(Debug, Args)]
pub struct Owner {
    /// The project (a run's `project` variable, else its workflow id).
    #[arg(long)]
    project: String,
    /// Whose memory; the USER environment variable when absent.
    #[arg(long)]
    user: Option<String>,
    /// A running node (default: server.address).
    #[arg(long)]
    server: Option<String>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub async fn memory(settings: &Settings, command: MemoryCommand) -> anyhow::Result<ExitCode> {
    let (owner, entries) = match command {
        MemoryCommand::Search { query, owner, k } => {
            let client = Client::for_settings(owner.server.as_deref(), settings);
            let body = json!({
                "project": owner.project,
                "user": owner.user.clone().unwrap_or_else(user),
                "query": query,
                "k": k,
            });
            let entries: Vec<MemoryEntry> = client.post("/api/v1/memory/search", &body).await?;
            (owner, entries)
        }
        MemoryCommand::List { owner, kind } => {
            let client = Client::for_settings(owner.server.as_deref(), settings);
            let mut path = format!(
                "/api/v1/memory?project={}&user={}",
                encode(&owner.project),
                encode(&owner.user.clone().unwrap_or_else(user))
            );
            if let Some(kind) = kind {
                path.push_str(&format!("&kind={}", encode(&kind)));
            }
            let entries: Vec<MemoryEntry> = client.get(&path).await?;
            (owner, entries)
        }
        MemoryCommand::Delete { id, owner } => {
            let client = Client::for_settings(owner.server.as_deref(), settings);
            client
                .delete(&format!(
                    "/api/v1/memory/{}?project={}&user={}",
                    encode(&id),
                    encode(&owner.project),
                    encode(&owner.user.unwrap_or_else(user))
                ))
                .await?;
            println!("deleted {id}");
            return Ok(ExitCode::SUCCESS);
        }
    };
    if owner.json {
        println!("{}", serde_json::to_string_pretty(&entries)?);
        return Ok(ExitCode::SUCCESS);
    }
    if entries.is_empty() {
        println!("no memory entries in project `{}`", owner.project);
    }
    for entry in entries {
        let score = entry
            .score
            .map_or(String::new(), |score| format!("{score:.3}  "));
        println!("{score}{:<10}  {}  {}", entry.kind, entry.id, entry.text);
    }
    Ok(ExitCode::SUCCESS)
}
