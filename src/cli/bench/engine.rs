//! The engine benchmark, shared by `troupe bench engine` and `cargo bench --bench engine`:
//! 1,000-task workflows of `echo` tasks (which do nothing), wide (one root, 999 children)
//! and deep (a chain), with the event log on `mem://` and on `surrealkv://`. What it
//! measures is the engine's own overhead per task: scheduling, logging, dispatch.
//!
//! Targets (issue 2): under 100 µs per task on mem://; a 1,000-task chain under 1 s on
//! surrealkv://, on the 2-core reference machine.

use std::path::Path;
use std::time::{Duration, Instant};

use serde::Serialize;
use troupe_config::Settings;

use anyhow::bail;
use troupe_node::{Node, NodeBuilder, RunOptions};
use troupe_store::events::{Person, RunEvent, RunStatus};

#[derive(Debug, Clone, Serialize)]
pub struct EngineResult {
    pub store: &'static str,
    pub shape: &'static str,
    pub tasks: usize,
    pub total_ms: f64,
    pub per_task_us: f64,
    /// CPU time of the whole process (every thread, the store's and an exporter's
    /// included) while the run ran: the work done, apart from waiting.
    pub cpu_ms: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct EngineReport {
    pub benchmark: &'static str,
    pub cpus: usize,
    pub build: &'static str,
    pub target_mem_per_task_us_max: f64,
    pub target_surrealkv_deep_total_ms_max: f64,
    pub results: Vec<EngineResult>,
}

/// Runs every combination with `tasks` tasks, keeping a scratch store under `scratch`.
pub async fn engine(tasks: usize, scratch: &Path) -> anyhow::Result<EngineReport> {
    let mut results = Vec::new();
    let stores = [
        ("mem", "mem://".to_string()),
        (
            "surrealkv",
            format!("surrealkv://{}", scratch.join("bench-store").display()),
        ),
    ];
    for (store, url) in stores {
        for shape in ["wide", "deep"] {
            let (elapsed, cpu) = measure(&url, shape, tasks).await?;
            results.push(EngineResult {
                store,
                shape,
                tasks,
                total_ms: elapsed.as_secs_f64() * 1e3,
                per_task_us: elapsed.as_secs_f64() * 1e6 / tasks as f64,
                cpu_ms: cpu.as_secs_f64() * 1e3,
            });
        }
    }
    Ok(EngineReport {
        benchmark: "engine",
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        build: if cfg!(debug_assertions) {
            "debug (dependencies optimised)"
        } else {
            "release"
        },
        target_mem_per_task_us_max: 100.0,
        target_surrealkv_deep_total_ms_max: 1000.0,
        results,
    })
}

fn workflow(shape: &str, tasks: usize) -> String {
    let mut yaml =
        format!("name: bench-{shape}\ntasks:\n  - {{ id: t0, name: T0, agent: echo }}\n");
    for index in 1..tasks {
        let parent = if shape == "wide" { 0 } else { index - 1 };
        yaml.push_str(&format!(
            "  - {{ id: t{index}, name: T{index}, agent: echo, depends_on: [t{parent}] }}\n"
        ));
    }
    yaml
}

/// The run's wall-clock time, and the process's CPU time over it.
async fn measure(
    store_url: &str,
    shape: &str,
    tasks: usize,
) -> anyhow::Result<(Duration, Duration)> {
    let mut settings = Settings::defaults_with_store(store_url);
    settings.models.serve = false;
    settings.engine.max_concurrent_tasks = 64;
    let node = open_node(settings).await?;
    let (id, _) = node
        .save_workflow(&workflow(shape, tasks), "bench.yaml", "bench")
        .await?;
    let mut finished = node.subscribe();
    let (started, cpu_started) = (Instant::now(), process_cpu_time()?);
    let run = node
        .start_run(&id, RunOptions::default(), &Person::named("bench"))
        .await?;
    loop {
        match finished.recv().await {
            Ok(event)
                if event.run_id == run && matches!(event.event, RunEvent::RunFinished { .. }) =>
            {
                break;
            }
            Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
            Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                bail!("the node stopped");
            }
        }
    }
    let elapsed = started.elapsed();
    let cpu = process_cpu_time()?.saturating_sub(cpu_started);
    let status = node.store().run(&run).await?.status;
    node.shutdown().await;
    if status != RunStatus::Completed {
        bail!("the benchmark run ended {}", status.as_str());
    }
    Ok((elapsed, cpu))
}

/// CPU time used so far by every thread of this process.
fn process_cpu_time() -> anyhow::Result<Duration> {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid, writable timespec for the duration of the call, and
    // CLOCK_PROCESS_CPUTIME_ID is a clock every Linux kernel has.
    let failed = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut now) } != 0;
    if failed {
        bail!(
            "cannot read the process's CPU time: {}",
            std::io::Error::last_os_error()
        );
    }
    let nanos = u32::try_from(now.tv_nsec).unwrap_or(0);
    Ok(Duration::new(u64::try_from(now.tv_sec).unwrap_or(0), nanos))
}

/// The previous measurement's store may still be closing: wait for its lock.
async fn open_node(settings: Settings) -> anyhow::Result<Node> {
    let mut tries = 0;
    loop {
        match NodeBuilder::new(settings.clone()).start().await {
            Err(error) if error.to_string().contains("locked") && tries < 100 => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            result => return Ok(result?),
        }
    }
}

impl EngineReport {
    /// One line per measurement, for people.
    pub fn table(&self) -> String {
        let mut lines = vec![format!(
            "engine benchmark ({} cpus, {} build)",
            self.cpus, self.build
        )];
        for result in &self.results {
            lines.push(format!(
                "{:<10} {:<5} {} tasks: {:>9.1} ms total, {:>8.1} µs/task, {:>9.1} ms of CPU",
                result.store,
                result.shape,
                result.tasks,
                result.total_ms,
                result.per_task_us,
                result.cpu_ms
            ));
        }
        lines.join("\n")
    }
}
