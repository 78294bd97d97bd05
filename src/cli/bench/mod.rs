//! `troupe bench ...`: the benchmark harness. Results are printed and written as JSON.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use troupe_config::Settings;
use troupe_inference::bench::SharedPrefixShape;

mod auth;
mod cluster;
mod engine;
mod quality;
mod stats;
mod telemetry;
mod v1_load;

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Engine overhead per task on 1,000-task workflows (mem:// and surrealkv://).
    Engine {
        #[arg(long, default_value_t = 1000)]
        tasks: usize,
        /// Default: `bench-results/engine.json`, or `bench-results/engine-telemetry.json`
        /// with `--telemetry`.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Compare the benchmark, and a node's `/v1/chat/completions` throughput on the
        /// local model, with traces exported to a live OTLP receiver against them
        /// without (each in a process of its own).
        #[arg(long)]
        telemetry: bool,
        /// With `--telemetry`: how many times each way, alternated; medians compared.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
    },
    /// Requests per second of an authenticated read with a JWT and with an API key,
    /// against the same route on a node without accounts, over loopback.
    Auth {
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
        #[arg(long, default_value_t = 16)]
        connections: usize,
        #[arg(long, default_value = "bench-results/auth.json")]
        out: PathBuf,
    },
    /// The links between nodes: a gateway round trip over mutual TLS on loopback (p50,
    /// p99, calls per second) beside a plain TCP echo measured in the same run.
    Cluster {
        #[arg(long, default_value_t = 2000)]
        round_trips: usize,
        #[arg(long, default_value_t = 3.0)]
        seconds: f64,
        /// Calls in flight at once for the throughput figure.
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        /// A SurrealDB server (`ws://HOST:PORT`, with store.username and
        /// store.password) to time failover on: two nodes are started on it and killed
        /// in turn. Use a scratch database: the benchmark leaves its runs there.
        #[arg(long, value_name = "URL")]
        failover_store: Option<String>,
        #[arg(long, default_value_t = 10)]
        failover_trials: usize,
        #[arg(long, default_value = "bench-results/cluster.json")]
        out: PathBuf,
    },
    /// The other end of `troupe bench cluster` (started by it).
    #[command(hide = true)]
    ClusterPeer {
        #[arg(long)]
        certs: PathBuf,
    },
    /// Prefill, single-stream and batched decode speed of the default generation model,
    /// beside llama.cpp's on the same file when `--llama-cpp` names a Python with
    /// llama-cpp-python (see benches/reference/); then the quality figure: the share of
    /// answers the crew's agents can use, and of generated modules whose tests pass.
    Inference {
        #[arg(long, default_value_t = 128)]
        prompt_tokens: usize,
        #[arg(long, default_value_t = 64)]
        tokens: usize,
        /// Concurrent streams to measure aggregate decode speed at.
        #[arg(long, value_delimiter = ',', default_value = "1,4,16")]
        streams: Vec<usize>,
        /// The shared-prefix workload: requests arriving together...
        #[arg(long, default_value_t = 16)]
        shared_streams: usize,
        /// ...that share a system prompt of this many tokens...
        #[arg(long, default_value_t = 1500)]
        shared_prefix_tokens: usize,
        /// ...each with a question of its own of this many...
        #[arg(long, default_value_t = 100)]
        question_tokens: usize,
        /// ...and up to this many tokens out, sampled at temperature 0.7 and top-p 0.9.
        #[arg(long, default_value_t = 128)]
        shared_output_tokens: usize,
        /// A Python interpreter with llama-cpp-python, to measure llama.cpp in the same run.
        #[arg(long)]
        llama_cpp: Option<PathBuf>,
        /// The quality figure, after the speed figures: the crew's delivery pipeline on
        /// this many of its fixed specifications (at most 4; 0 leaves it out), with the
        /// configured provider chain (a paid fallback is paid for).
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(0..=4))]
        quality_specs: u8,
        #[arg(long, default_value = "bench-results/inference.json")]
        out: PathBuf,
    },
}

pub async fn bench(settings: &Settings, command: BenchCommand) -> anyhow::Result<ExitCode> {
    match command {
        BenchCommand::Inference {
            prompt_tokens,
            tokens,
            streams,
            shared_streams,
            shared_prefix_tokens,
            question_tokens,
            shared_output_tokens,
            llama_cpp,
            quality_specs,
            out,
        } => {
            let workload = Workload {
                prompt_tokens,
                tokens,
                streams,
                shared: SharedPrefixShape {
                    streams: shared_streams,
                    prefix_tokens: shared_prefix_tokens,
                    question_tokens,
                    max_output_tokens: shared_output_tokens,
                    max_step_tokens: settings.models.max_step_tokens as usize,
                    prefix_cache_mb: settings.models.prefix_cache_mb as usize,
                },
            };
            let mut report = inference_bench(settings, workload, llama_cpp).await?;
            if quality_specs > 0 {
                let scratch = tempfile::tempdir()?;
                let specs = usize::from(quality_specs);
                let figures = quality::quality(settings, specs, scratch.path()).await?;
                println!("{}", figures.table());
                report["quality"] = serde_json::to_value(&figures)?;
            }
            write_report(&out, &report)?;
            Ok(ExitCode::SUCCESS)
        }
        BenchCommand::Auth {
            seconds,
            connections,
            out,
        } => {
            let report = auth::auth(seconds, connections).await?;
            println!("{}", report.table());
            write_report(&out, &report)?;
            Ok(ExitCode::SUCCESS)
        }
        BenchCommand::Cluster {
            round_trips,
            seconds,
            concurrency,
            failover_store,
            failover_trials,
            out,
        } => {
            let scratch = tempfile::tempdir()?;
            let failover = failover_store.map(|store_url| cluster::FailoverPlan {
                store_url,
                username: settings.store.username.clone(),
                password: settings.store.password.clone(),
                trials: failover_trials.max(1),
                heartbeat_ms: settings.cluster.heartbeat_ms,
                lease_ms: settings.cluster.lease_ms,
            });
            let report =
                cluster::cluster(round_trips, seconds, concurrency, scratch.path(), failover)
                    .await?;
            println!("{}", report.table());
            write_report(&out, &report)?;
            Ok(ExitCode::SUCCESS)
        }
        BenchCommand::ClusterPeer { certs } => {
            cluster::peer(&certs).await?;
            Ok(ExitCode::SUCCESS)
        }
        BenchCommand::Engine {
            tasks,
            out,
            telemetry,
            rounds,
        } => engine_bench(settings, tasks, out, telemetry, rounds).await,
    }
}

/// What `bench inference` runs: one stream and `streams` at once on a prompt of
/// `prompt_tokens` for `tokens` tokens, and the shared-prefix workload.
struct Workload {
    prompt_tokens: usize,
    tokens: usize,
    streams: Vec<usize>,
    shared: SharedPrefixShape,
}

/// `bench inference`'s speed figures: ours, and llama.cpp's beside them when
/// `llama_cpp` names a Python.
async fn inference_bench(
    settings: &Settings,
    workload: Workload,
    llama_cpp: Option<PathBuf>,
) -> anyhow::Result<serde_json::Value> {
    let model = &troupe_inference::catalog::SMOLLM2;
    let path =
        troupe_inference::fetch::require(Path::new(&settings.models.dir), model, &model.files[0])?;
    let ours = {
        let path = path.clone();
        let (prompt, tokens, streams, shared) = (
            workload.prompt_tokens,
            workload.tokens,
            workload.streams.clone(),
            workload.shared,
        );
        let drafts = settings.models.draft_tokens as usize;
        tokio::task::spawn_blocking(move || {
            troupe_inference::bench::measure(&path, prompt, tokens, &streams, &shared, drafts)
        })
        .await??
    };
    println!("{}", describe("troupe", &serde_json::to_value(&ours)?));
    println!("batching gain over one stream: {:?}", ours.batching_gain);
    let (cached, gain) = (&ours.shared_prefix_cached, &ours.prefix_cache_gain);
    println!(
        "with the prefix cache: first token p50 {:.0} ms ({:.1}× sooner), {:.1} tok/s ({:.1}×)",
        cached.time_to_first_token_ms_p50,
        gain.time_to_first_token_p50,
        cached.aggregate_tokens_per_s,
        gain.aggregate_tokens_per_s
    );
    let drafting = &ours.drafting;
    println!(
        "with drafts of up to {} tokens: {:.1} tok/s against {:.1} ({:.2}×), {:.2} tokens a pass, same output: {}",
        drafting.max_draft_tokens,
        drafting.drafted_tokens_per_s,
        drafting.plain_tokens_per_s,
        drafting.gain,
        drafting.tokens_per_pass,
        drafting.same_output
    );
    let mut report = serde_json::json!({ "troupe": ours });
    if let Some(python) = llama_cpp {
        let reference = llama_cpp_figures(&python, &path, ours.threads, &workload)?;
        println!("{}", describe("llama.cpp", &reference));
        report["llama_cpp"] = reference.clone();
        report["ratios_troupe_over_llama_cpp"] = ratios(&serde_json::to_value(&ours)?, &reference);
        println!(
            "troupe / llama.cpp: {}",
            report["ratios_troupe_over_llama_cpp"]
        );
    }
    Ok(report)
}

/// `bench engine`, or with `telemetry` the same with traces exported against without.
async fn engine_bench(
    settings: &Settings,
    tasks: usize,
    out: Option<PathBuf>,
    telemetry: bool,
    rounds: usize,
) -> anyhow::Result<ExitCode> {
    let scratch = tempfile::tempdir()?;
    if telemetry {
        let models = Path::new(&settings.models.dir);
        let report = telemetry::engine_overhead(tasks, rounds, scratch.path(), models).await?;
        println!("{}", report.table());
        let out = out.unwrap_or_else(|| "bench-results/engine-telemetry.json".into());
        write_report(&out, &report)?;
    } else {
        let report = engine::engine(tasks, scratch.path()).await?;
        println!("{}", report.table());
        write_report(
            &out.unwrap_or_else(|| "bench-results/engine.json".into()),
            &report,
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes a report as pretty JSON to `path`, creating its directory.
fn write_report(path: &Path, report: &impl serde::Serialize) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(path, serde_json::to_string_pretty(report)?)
        .with_context(|| format!("writing {}", path.display()))?;
    println!("written to {}", path.display());
    Ok(())
}

/// One line of figures from a report (ours or llama.cpp's, same field names).
fn describe(name: &str, figures: &serde_json::Value) -> String {
    let number = |key: &str| figures[key].as_f64().unwrap_or(f64::NAN);
    let aggregate = figures["aggregate_decode_tokens_per_s"]
        .as_object()
        .map(|streams| {
            streams
                .iter()
                .map(|(count, rate)| format!("{count}: {:.1}", rate.as_f64().unwrap_or(f64::NAN)))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    let shared = |key: &str| figures["shared_prefix"][key].as_f64().unwrap_or(f64::NAN);
    format!(
        "{name}: prefill {:.1} tok/s, first token {:.0} ms, decode {:.1} tok/s, aggregate decode by streams {{{aggregate}}} tok/s, peak {:.0} MB\n\
         {name}, shared prefix: first token p50 {:.0} ms, p95 {:.0} ms, {:.1} tok/s over all streams",
        number("prefill_tokens_per_s"),
        number("time_to_first_token_ms"),
        number("decode_tokens_per_s"),
        number("peak_memory_mb"),
        shared("time_to_first_token_ms_p50"),
        shared("time_to_first_token_ms_p95"),
        shared("aggregate_tokens_per_s"),
    )
}

/// Runs benches/reference/llama_cpp_bench.py with `python` on the same file, prompt
/// length, token count, streams and threads, and returns its figures.
fn llama_cpp_figures(
    python: &Path,
    model: &Path,
    threads: usize,
    workload: &Workload,
) -> anyhow::Result<serde_json::Value> {
    let shared = &workload.shared;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/reference/llama_cpp_bench.py");
    let out = tempfile::NamedTempFile::new()?;
    let streams: Vec<String> = workload.streams.iter().map(usize::to_string).collect();
    let status = std::process::Command::new(python)
        .arg(&script)
        .arg("--gguf")
        .arg(model)
        .args(["--threads", &threads.to_string()])
        .args(["--prompt-tokens", &workload.prompt_tokens.to_string()])
        .args(["--decode-tokens", &workload.tokens.to_string()])
        .args(["--streams", &streams.join(",")])
        .args(["--shared-streams", &shared.streams.to_string()])
        .args(["--shared-prefix-tokens", &shared.prefix_tokens.to_string()])
        .args(["--question-tokens", &shared.question_tokens.to_string()])
        .args([
            "--shared-output-tokens",
            &shared.max_output_tokens.to_string(),
        ])
        .args(["--step-tokens", &shared.max_step_tokens.to_string()])
        .arg("--out")
        .arg(out.path())
        .status()
        .map_err(|error| anyhow::anyhow!("cannot run {}: {error}", python.display()))?;
    anyhow::ensure!(
        status.success(),
        "{} {} failed ({status}); set it up with `bash benches/reference/setup.sh`",
        python.display(),
        script.display()
    );
    let mut figures: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.path())?)?;
    // The reference script names time to first token `ttft_ms` and peak memory `peak_rss_mb`.
    if figures.get("time_to_first_token_ms").is_none() {
        figures["time_to_first_token_ms"] = figures["ttft_ms"].clone();
    }
    if figures.get("peak_memory_mb").is_none() {
        figures["peak_memory_mb"] = figures["peak_rss_mb"].clone();
    }
    Ok(figures)
}

/// Ours divided by the reference's, for every figure where more is better (and time to
/// first token, where less is).
fn ratios(ours: &serde_json::Value, reference: &serde_json::Value) -> serde_json::Value {
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => serde_json::json!((a / b * 100.0).round() / 100.0),
        _ => serde_json::Value::Null,
    };
    let mut result = serde_json::Map::new();
    for key in [
        "prefill_tokens_per_s",
        "decode_tokens_per_s",
        "time_to_first_token_ms",
    ] {
        result.insert(
            key.into(),
            ratio(ours[key].as_f64(), reference[key].as_f64()),
        );
    }
    if let Some(streams) = ours["aggregate_decode_tokens_per_s"].as_object() {
        let mut by_streams = serde_json::Map::new();
        for (count, rate) in streams {
            let theirs = reference["aggregate_decode_tokens_per_s"][count].as_f64();
            by_streams.insert(count.clone(), ratio(rate.as_f64(), theirs));
        }
        result.insert("aggregate_decode_tokens_per_s".into(), by_streams.into());
    }
    let mut shared = serde_json::Map::new();
    for key in [
        "aggregate_tokens_per_s",
        "time_to_first_token_ms_p50",
        "time_to_first_token_ms_p95",
    ] {
        let (ours, theirs) = (
            &ours["shared_prefix"][key],
            &reference["shared_prefix"][key],
        );
        shared.insert(key.into(), ratio(ours.as_f64(), theirs.as_f64()));
    }
    result.insert("shared_prefix".into(), shared.into());
    result.into()
}
