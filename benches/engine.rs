//! Engine overhead per task: 1,000-task workflows of `echo` tasks (which do nothing), wide
//! (one root, 999 children) and deep (a chain), with the event log on `mem://` and on
//! `surrealkv://`. Results go to `bench-results/engine.json` and to stdout.
//!
//! Targets (issue 2): under 100 µs of engine overhead per task on mem://; a 1,000-task
//! chain under 1 s on surrealkv:// on the 2-core reference machine.
//!
//! Run: `cargo bench --bench engine` (add `-- --tasks 200` for a quick look).

use std::time::{Duration, Instant};

use serde_json::json;
use troupe_config::Settings;
use troupe_runtime::Node;
use troupe_runtime::engine::events::RunStatus;

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

async fn measure(store_url: &str, shape: &str, tasks: usize) -> Duration {
    let mut settings = Settings::defaults_with_store(store_url);
    settings.engine.max_concurrent_tasks = 64;
    let node = Node::start(settings).await.expect("node starts");
    let (id, _) = node
        .save_workflow(&workflow(shape, tasks), "bench.yaml")
        .await
        .expect("valid workflow");
    let started = Instant::now();
    let run = node
        .start_run(&id, None, Default::default(), "bench")
        .await
        .expect("run starts");
    loop {
        let record = node.store().run(&run).await.expect("run exists");
        if record.status != RunStatus::Running {
            assert_eq!(record.status, RunStatus::Completed);
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let elapsed = started.elapsed();
    node.shutdown().await;
    elapsed
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let tasks = args
        .iter()
        .position(|arg| arg == "--tasks")
        .and_then(|at| args.get(at + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(1000);
    let dir = tempfile::tempdir().expect("temp dir");
    let mut results = Vec::new();
    for (store, url) in [
        ("mem", "mem://".to_string()),
        (
            "surrealkv",
            format!("surrealkv://{}", dir.path().join("db").display()),
        ),
    ] {
        for shape in ["wide", "deep"] {
            let elapsed = measure(&url, shape, tasks).await;
            let per_task_us = elapsed.as_secs_f64() * 1e6 / tasks as f64;
            println!(
                "{store:<10} {shape:<5} {tasks} tasks: {:>8.1} ms total, {per_task_us:>8.1} µs/task",
                elapsed.as_secs_f64() * 1e3
            );
            results.push(json!({"store": store, "shape": shape, "tasks": tasks, "total_ms": elapsed.as_secs_f64() * 1e3, "per_task_us": per_task_us}));
        }
    }
    let report = json!({
        "benchmark": "engine",
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "targets": {"mem_per_task_us_max": 100.0, "surrealkv_deep_total_ms_max": 1000.0},
        "results": results,
    });
    std::fs::create_dir_all("bench-results").expect("results dir");
    std::fs::write(
        "bench-results/engine.json",
        serde_json::to_string_pretty(&report).expect("json"),
    )
    .expect("write results");
    println!("written to bench-results/engine.json");
}
