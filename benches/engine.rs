//! `cargo bench --bench engine [-- --tasks N]`: the engine benchmark in a release build
//! (see `troupe_runtime::bench`). Results go to `bench-results/engine.json`.

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let tasks = args
        .iter()
        .position(|arg| arg == "--tasks")
        .and_then(|at| args.get(at + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(1000);
    let scratch = tempfile::tempdir().expect("scratch directory");
    let report = troupe_runtime::bench::engine(tasks, scratch.path())
        .await
        .expect("benchmark runs");
    println!("{}", report.table());
    let path = std::path::Path::new("bench-results/engine.json");
    report.write_json(path).expect("results written");
    println!("written to {}", path.display());
}
