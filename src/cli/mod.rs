//! Command-line arguments and the dispatch to each command.

mod agents;
mod alerts;
mod audit;
mod bench;
mod client;
mod cluster;
mod config;
mod costs;
mod credentials;
mod login;
mod memory;
mod models;
mod progress;
mod projects;
mod run;
mod runs;
mod secrets;
mod serve;
mod settings;
mod telemetry;
mod tls;
mod triggers;
mod users;
mod workflow;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use troupe_config::Settings;

#[derive(Debug, Parser)]
#[command(
    name = "troupe",
    version,
    about = "An actor-based runtime for AI agents that do software work"
)]
pub struct Args {
    /// Settings file (TOML); `troupe.toml` in the working directory when absent.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Any setting, as `section.key=value` (repeatable); wins over file and environment.
    #[arg(long = "set", global = true, value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Log format: text or json.
    #[arg(long, global = true)]
    log_format: Option<String>,
    /// Log filter, e.g. `info` or `troupe_engine=debug`.
    #[arg(long, global = true)]
    log_level: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start a node on the configured (by default embedded) store and serve the API.
    Up {
        /// Listen address (loopback only until authentication exists).
        #[arg(long)]
        address: Option<String>,
        /// Directory of the embedded store (sets store.url to surrealkv://DIR).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Join a cluster through this node's links (HOST:PORT, repeatable): sets
        /// cluster.enabled and cluster.seeds.
        #[arg(long, value_name = "HOST:PORT")]
        join: Vec<String>,
    },
    /// Run a workflow file and show its progress; in this process unless --server.
    Run(run::RunArgs),
    /// Run one agent attempt outside any workflow on a running node, or show one.
    Agents {
        #[command(subcommand)]
        command: agents::AgentsCommand,
    },
    /// List, show or cancel runs on a running node.
    Runs {
        #[command(subcommand)]
        command: runs::RunsCommand,
    },
    /// Sign in to a node (password, then a code when MFA is on, from standard input) and
    /// keep the session for the other commands.
    Login(login::LoginArgs),
    /// End the stored session with a node.
    Logout {
        #[arg(long)]
        server: Option<String>,
    },
    /// Approve a task waiting at its approval gate.
    Approve(runs::DecisionArgs),
    /// Reject a task waiting at its approval gate.
    Reject(runs::DecisionArgs),
    /// Validate or list workflows.
    Workflow {
        #[command(subcommand)]
        command: workflow::WorkflowCommand,
    },
    /// Create, list or disable user accounts.
    Users {
        #[command(subcommand)]
        command: users::UsersCommand,
    },
    /// Grant or withdraw agent kinds that run code or reach the network (shell, http,
    /// ...) for a project's workflows, or show what it was granted.
    Projects {
        #[command(subcommand)]
        command: projects::ProjectsCommand,
    },
    /// Seal, list or rotate secrets kept at rest (provider keys, MFA secrets).
    Secrets {
        #[command(subcommand)]
        command: secrets::SecretsCommand,
    },
    /// Verify or export the tamper-evident audit log.
    Audit {
        #[command(subcommand)]
        command: audit::AuditCommand,
    },
    /// Search, list or delete what agents remember.
    Memory {
        #[command(subcommand)]
        command: memory::MemoryCommand,
    },
    /// Fetch or list the local models.
    Models {
        #[command(subcommand)]
        command: models::ModelsCommand,
    },
    /// What model calls cost, the share served locally and the savings, from the ledger.
    Costs {
        /// Report the last this many days.
        #[arg(long, default_value_t = 30)]
        days: u32,
        /// A running node (default: server.address).
        #[arg(long)]
        server: Option<String>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// The alerts a running node's own rules raise now (the rules of
    /// deploy/prometheus/alerts.yaml, `alerts.*`); exits 1 while any fires.
    Alerts {
        /// A running node (default: server.address).
        #[arg(long)]
        server: Option<String>,
        /// Print them as JSON.
        #[arg(long)]
        json: bool,
    },
    /// What starts workflows besides people: schedules and push triggers.
    Triggers {
        #[command(subcommand)]
        command: triggers::TriggersCommand,
    },
    /// The nodes sharing a store (`cluster.enabled`).
    Cluster {
        #[command(subcommand)]
        command: cluster::ClusterCommand,
    },
    /// Benchmarks; results are printed and written as JSON.
    Bench {
        #[command(subcommand)]
        command: bench::BenchCommand,
    },
    /// Show settings, or make a running node read its own again.
    Config {
        #[command(subcommand)]
        command: config::ConfigCommand,
    },
}

pub async fn dispatch(args: Args) -> ExitCode {
    let settings = match load_settings(&args) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    let serve = matches!(args.command, Command::Up { .. });
    // A benchmark exports too, when an endpoint is set: `bench engine --telemetry`
    // measures what that costs.
    let export = serve || matches!(args.command, Command::Bench { .. });
    let (exporting, live) = match telemetry::init(&settings, serve, export) {
        Ok(telemetry) => telemetry,
        Err(error) => {
            eprintln!("error: cannot set up logging and traces: {error}");
            return ExitCode::from(2);
        }
    };
    let sources = settings::Sources::of(&args);
    let result = match args.command {
        Command::Up { .. } => serve::up(settings, sources, live).await,
        Command::Run(run_args) => run::run(settings, run_args).await,
        Command::Agents { command } => agents::agents(&settings, command).await,
        Command::Runs { command } => runs::runs(&settings, command).await,
        Command::Approve(decision) => runs::decide(&settings, decision, true).await,
        Command::Reject(decision) => runs::decide(&settings, decision, false).await,
        Command::Workflow { command } => workflow::workflow(&settings, command).await,
        Command::Bench { command } => bench::bench(&settings, command).await,
        Command::Costs { days, server, json } => {
            costs::costs(&settings, server.as_deref(), days, json).await
        }
        Command::Models { command } => models::models(&settings, command).await,
        Command::Cluster { command } => cluster::cluster(&settings, command).await,
        Command::Triggers { command } => triggers::triggers(&settings, command).await,
        Command::Alerts { server, json } => {
            alerts::alerts(&settings, server.as_deref(), json).await
        }
        Command::Memory { command } => memory::memory(&settings, command).await,
        Command::Audit { command } => audit::audit(&settings, command).await,
        Command::Users { command } => users::users(&settings, command).await,
        Command::Projects { command } => projects::projects(&settings, command).await,
        Command::Secrets { command } => secrets::secrets(&settings, command).await,
        Command::Login(args) => login::login(&settings, args).await,
        Command::Logout { server } => login::logout(&settings, server).await,
        Command::Config { command } => config::config(&settings, command).await,
    };
    telemetry::shutdown(exporting).await;
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(error_code(&error))
        }
    }
}

/// Input problems exit 2; everything else (unreachable server, store, actors) exits 3.
fn error_code(error: &anyhow::Error) -> u8 {
    if error.downcast_ref::<InputError>().is_some() {
        2
    } else {
        3
    }
}

fn load_settings(args: &Args) -> Result<Settings, troupe_config::ConfigError> {
    settings::Sources::of(args).load()
}

/// A problem with what the user gave us (exit code 2), as opposed to a failure of the
/// system (exit code 3).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InputError(pub String);
