//! `troupe config show` and `troupe config reload`: the settings read here, and those a
//! running node runs with.

use std::process::ExitCode;

use clap::Subcommand;
use troupe_config::Settings;
use troupe_node::Reloaded;

use super::client::Client;

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the effective settings, secrets masked, and when the node running at
    /// server.address loaded its own (and what of them waits for a restart).
    Show {
        /// A running node (default: server.address).
        #[arg(long)]
        server: Option<String>,
    },
    /// Make a running node read its settings again and apply what changes live
    /// (alert rules, providers and their prices and budgets, the agent policy, the log
    /// level, trace sampling); every node of a cluster follows. Same as SIGHUP.
    Reload {
        /// A running node (default: server.address).
        #[arg(long)]
        server: Option<String>,
    },
}

/// What `GET /api/v1/config` says of a running node.
#[derive(serde::Deserialize)]
struct ConfigNow {
    node: String,
    loaded_at_ms: i64,
    settings_sha256: String,
    waiting_for_restart: Vec<String>,
}

pub async fn config(settings: &Settings, command: ConfigCommand) -> anyhow::Result<ExitCode> {
    match command {
        ConfigCommand::Show { server } => {
            print!("{}", troupe_config::render_masked(settings));
            println!("{}", running(settings, server.as_deref()).await);
        }
        ConfigCommand::Reload { server } => {
            let client = Client::for_settings(server.as_deref(), settings);
            let reloaded: Reloaded = client.post("/api/v1/config/reload", &()).await?;
            print!("{}", reload_report(&reloaded));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A comment on the node running at the server address: when it loaded its settings.
async fn running(settings: &Settings, server: Option<&str>) -> String {
    let client = Client::for_settings(server, settings);
    match client.get::<ConfigNow>("/api/v1/config").await {
        Ok(now) => {
            let mut line = format!(
                "# The node {} at {} runs settings loaded {} (sha256 {}).",
                now.node,
                client.base(),
                troupe_alerts::rfc3339(now.loaded_at_ms),
                &now.settings_sha256[..now.settings_sha256.len().min(12)]
            );
            if !now.waiting_for_restart.is_empty() {
                let keys = now.waiting_for_restart.join(", ");
                line.push_str(&format!("\n# Waiting for its restart: {keys}."));
            }
            line
        }
        Err(error) => format!("# No word from a node at {}: {error:#}", client.base()),
    }
}

fn reload_report(reloaded: &Reloaded) -> String {
    let list = |keys: &[String]| {
        if keys.is_empty() {
            "nothing".to_owned()
        } else {
            keys.join(", ")
        }
    };
    format!(
        "Reloaded {} at {} (sha256 {}).\nApplied: {}\nWaiting for a restart: {}\n",
        reloaded.node,
        troupe_alerts::rfc3339(reloaded.loaded_at_ms),
        reloaded.settings_sha256,
        list(&reloaded.applied),
        list(&reloaded.needs_restart)
    )
}
