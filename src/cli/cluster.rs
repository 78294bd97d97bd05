//! `troupe cluster status`: the nodes sharing a node's store, with their leases.
//! `troupe cluster certs`: a CA and node certificates for the links' mutual TLS.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use troupe_config::Settings;
use troupe_node::ClusterView;

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
    /// Make a CA and a certificate per node for the links' mutual TLS (a test or small
    /// cluster): DIR/ca.pem, DIR/NAME.pem and DIR/NAME.key per node, and DIR/ca.key,
    /// which signs more nodes and belongs offline.
    Certs {
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// The nodes' names (cluster.node_name), comma-separated: each certificate
        /// names its node, which is how peers dial it.
        #[arg(long, value_delimiter = ',', required = true)]
        nodes: Vec<String>,
        /// Other names every node is also reached by (a seed's host), comma-separated.
        #[arg(long, value_delimiter = ',')]
        hosts: Vec<String>,
    },
}

pub async fn cluster(settings: &Settings, command: ClusterCommand) -> anyhow::Result<ExitCode> {
    match command {
        ClusterCommand::Status { server, json } => status(settings, server, json).await,
        ClusterCommand::Certs { out, nodes, hosts } => certs(&out, &nodes, &hosts),
    }
}

fn certs(out: &std::path::Path, nodes: &[String], hosts: &[String]) -> anyhow::Result<ExitCode> {
    let certs = troupe_cluster::links::certs::make_certs(nodes, hosts)?;
    for path in certs.write(out)? {
        println!("wrote {}", path.display());
    }
    println!("each node: cluster.tls.ca_file = ca.pem, cert_file = NAME.pem, key_file = NAME.key");
    Ok(ExitCode::SUCCESS)
}

async fn status(
    settings: &Settings,
    server: Option<String>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let client = Client::for_settings(server.as_deref(), settings);
    let view: ClusterView = client.get("/api/v1/cluster").await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&view)?);
        return Ok(ExitCode::SUCCESS);
    }
    let nodes = &view.members;
    if nodes.is_empty() {
        println!("no node has joined: start nodes with cluster.enabled = true on a shared store");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<20} {:<6} {:<7} {:>11} {:>13} {:<22} {:<22} {:<12} LOAD",
        "NODE", "STATE", "LINK", "INCARNATION", "LEASE AGE ms", "API", "LINKS AT", "LABELS"
    );
    for node in nodes {
        let state = if node.live { "live" } else { "gone" };
        let link = if node.name == view.node {
            "self"
        } else if view.linked.contains(&node.name) {
            "linked"
        } else {
            "-"
        };
        println!(
            "{:<20} {state:<6} {link:<7} {:>11} {:>13} {:<22} {:<22} {:<12} {}",
            node.name,
            node.incarnation,
            node.lease_age_ms,
            node.api_address,
            node.cluster_address,
            node.labels.join(","),
            node.load
        );
    }
    Ok(ExitCode::SUCCESS)
}
