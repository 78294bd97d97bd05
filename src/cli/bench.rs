//! `troupe bench ...`: the benchmark harness. Results are printed and written as JSON.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Engine overhead per task on 1,000-task workflows (mem:// and surrealkv://).
    Engine {
        #[arg(long, default_value_t = 1000)]
        tasks: usize,
        #[arg(long, default_value = "bench-results/engine.json")]
        out: PathBuf,
    },
}

pub async fn bench(command: BenchCommand) -> anyhow::Result<ExitCode> {
    match command {
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
