//! `troupe bench ...`: the benchmark harness. Results are printed and written as JSON.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;
use troupe_config::Settings;

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Engine overhead per task on 1,000-task workflows (mem:// and surrealkv://).
    Engine {
        #[arg(long, default_value_t = 1000)]
        tasks: usize,
        #[arg(long, default_value = "bench-results/engine.json")]
        out: PathBuf,
    },
    /// Single-stream prefill and decode speed of the default generation model.
    Inference {
        #[arg(long, default_value_t = 128)]
        prompt_tokens: usize,
        #[arg(long, default_value_t = 64)]
        tokens: usize,
        #[arg(long, default_value = "bench-results/inference.json")]
        out: PathBuf,
    },
}

pub async fn bench(settings: &Settings, command: BenchCommand) -> anyhow::Result<ExitCode> {
    match command {
        BenchCommand::Inference {
            prompt_tokens,
            tokens,
            out,
        } => {
            let model = &troupe_inference::catalog::SMOLLM2;
            let path = troupe_inference::fetch::require(
                Path::new(&settings.models.dir),
                model,
                &model.files[0],
            )?;
            let report = tokio::task::spawn_blocking(move || {
                troupe_inference::bench::single_stream(&path, prompt_tokens, tokens)
            })
            .await??;
            println!(
                "{} ({}), {} threads, SIMD {}: prefill {:.1} tok/s ({} tokens, first token after {:.0} ms), decode {:.1} tok/s ({} tokens), peak {:.0} MB",
                report.model,
                report.quantization,
                report.threads,
                report.simd_compiled.join("+"),
                report.prefill_tokens_per_s,
                report.prompt_tokens,
                report.time_to_first_token_ms,
                report.decode_tokens_per_s,
                report.generated_tokens,
                report.peak_memory_mb.unwrap_or(0.0)
            );
            if let Some(dir) = out.parent().filter(|dir| !dir.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::write(&out, serde_json::to_string_pretty(&report)?)?;
            println!("written to {}", out.display());
            Ok(ExitCode::SUCCESS)
        }
        BenchCommand::Engine { tasks, out } => {
            let scratch = tempfile::tempdir()?;
            let report = troupe_runtime::bench::engine(tasks, scratch.path()).await?;
            println!("{}", report.table());
            report.write_json(&out)?;
            println!("written to {}", out.display());
            Ok(ExitCode::SUCCESS)
        }
    }
}
