//! `cargo bench --bench engine [-- --tasks N]`: the engine benchmark in a release build.
//! It runs `troupe bench engine` (src/cli/bench/engine.rs), the one implementation, from
//! the binary cargo built for this bench. Results go to `bench-results/engine.json`.

use std::process::Command;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let tasks = args
        .iter()
        .position(|arg| arg == "--tasks")
        .and_then(|at| args.get(at + 1))
        .cloned()
        .unwrap_or_else(|| "1000".into());
    let status = Command::new(env!("CARGO_BIN_EXE_troupe"))
        .args(["bench", "engine", "--tasks", &tasks])
        .status()
        .expect("the troupe binary runs");
    assert!(status.success(), "troupe bench engine failed: {status}");
}
