//! `troupe cluster status`: the nodes sharing a node's store, with their leases.

use std::process::ExitCode;

use clap::Subcommand;
use troupe_config::Settings;
use troupe_store::NodeRecord;

use super::client::Client;

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Members, whether each is live, how long since it renewed its lease, its load.
    Status {
        /// A running node (default: server.address).
        #[arg(long)]
        server: Option<String>,
        /// Print the members as JSON.
        #[arg(long)]
        json: bool,
    },
}

pub async fn cluster(settings: &Settings, command: ClusterCommand) -> anyhow::Result<ExitCode> {
    let ClusterCommand::Status { server, json } = command;
    let client = Client::for_settings(server.as_deref(), settings);
    let nodes: Vec<NodeRecord> = client.get("/api/v1/cluster").await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&nodes)?);
        return Ok(ExitCode::SUCCESS);
    }
    if nodes.is_empty() {
        println!("no node has joined: start nodes with cluster.enabled = true on a shared store");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<24} {:<6} {:>11} {:>13} {:<22} LOAD",
        "NODE", "STATE", "INCARNATION", "LEASE AGE ms", "API"
    );
    for node in &nodes {
        let state = if node.live { "live" } else { "gone" };
        println!(
            "{:<24} {state:<6} {:>11} {:>13} {:<22} {}",
            node.name, node.incarnation, node.lease_age_ms, node.api_address, node.load
        );
    }
    Ok(ExitCode::SUCCESS)
}
