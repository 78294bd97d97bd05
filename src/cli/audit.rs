//! `troupe audit verify|export`: check the hash chain of the audit log against every
//! signed checkpoint, and export entries for compliance.

use std::process::ExitCode;

use clap::Subcommand;
use troupe_config::Settings;
use troupe_security::audit::chain::AuditEntry;
use troupe_security::audit::{AuditLog, VerifyReport};
use troupe_store::Store;

use super::client::Client;

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Walk the whole chain; exits 1 and names the first bad entry when it was tampered with.
    Verify {
        /// Ask a running node instead of opening the store here.
        #[arg(long)]
        server: Option<String>,
    },
    /// Export entries as JSON lines (default) or CSV.
    Export {
        #[arg(long, default_value = "jsonl")]
        format: String,
        /// Entries at or after this time (ms since the epoch).
        #[arg(long)]
        since_ms: Option<i64>,
        /// Entries before this time (ms since the epoch).
        #[arg(long)]
        until_ms: Option<i64>,
        #[arg(long)]
        actor: Option<String>,
        #[arg(long)]
        action: Option<String>,
        /// A running node (default: server.address).
        #[arg(long)]
        server: Option<String>,
    },
}

pub async fn audit(settings: &Settings, command: AuditCommand) -> anyhow::Result<ExitCode> {
    match command {
        AuditCommand::Verify { server } => {
            let report: VerifyReport = match server {
                Some(server) => {
                    Client::for_settings(Some(&server), settings)
                        .get("/api/v1/audit/verify")
                        .await?
                }
                None => {
                    let store = Store::open(&settings.store).await?;
                    let dir = troupe_security::audit::checkpoint_dir(settings);
                    let log =
                        AuditLog::open(store, dir.as_deref(), settings.audit.checkpoint_every)
                            .await?;
                    log.verify().await?
                }
            };
            let checkpoint = report.checkpoint.as_ref().map_or_else(
                || "no signed checkpoint".to_string(),
                |c| {
                    format!(
                        "{} signed checkpoints, the latest at entry {}",
                        report.checkpoints, c.seq
                    )
                },
            );
            match &report.first_bad {
                None => {
                    println!("audit log intact: {} entries, {checkpoint}", report.entries);
                    Ok(ExitCode::SUCCESS)
                }
                Some(breach) => {
                    println!(
                        "audit log TAMPERED: entry {}: {} ({} entries, {checkpoint})",
                        breach.seq, breach.problem, report.entries
                    );
                    Ok(ExitCode::from(1))
                }
            }
        }
        AuditCommand::Export {
            format,
            since_ms,
            until_ms,
            actor,
            action,
            server,
        } => {
            if !["jsonl", "csv"].contains(&format.as_str()) {
                return Err(
                    super::InputError(format!("--format `{format}`: use jsonl or csv")).into(),
                );
            }
            let client = Client::for_settings(server.as_deref(), settings);
            let mut query = vec![];
            for (name, value) in [
                ("since_ms", since_ms.map(|v| v.to_string())),
                ("until_ms", until_ms.map(|v| v.to_string())),
                ("actor", actor),
                ("action", action),
            ] {
                if let Some(value) = value {
                    query.push(format!("{name}={}", super::client::encode(&value)));
                }
            }
            query.push("format=json".into());
            let entries: Vec<AuditEntry> = client
                .get(&format!("/api/v1/audit?{}", query.join("&")))
                .await?;
            if format == "csv" {
                print!("{}", troupe_api::audit_csv(&entries));
            } else {
                for entry in &entries {
                    println!("{}", serde_json::to_string(entry)?);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
