//! `security_scanner` throughput on a generated tree: files/s and MB/s over three
//! scans, written to `bench-results/scanner.json` at the workspace root. With
//! `-- --semgrep PATH` it also runs semgrep (offline, with the equivalent rules in
//! `benches/reference/semgrep-rules.yaml`) on the same tree and records it beside ours.
//!
//! cargo bench -p troupe-scanner --bench scanner -- [--files N] [--semgrep PATH]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use serde_json::{Value, json};
use troupe_scanner::bench::generate_tree;
use troupe_scanner::{AdvisoryDb, ScannerConfig, scan_repository};

const RUNS: usize = 3;

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().collect();
    let value_of = |flag: &str| {
        args.iter()
            .position(|arg| arg == flag)
            .and_then(|index| args.get(index + 1))
            .cloned()
    };
    let files: usize = match value_of("--files") {
        Some(text) => text
            .parse()
            .map_err(|_| format!("--files wants a number, got `{text}`"))?,
        None => 20_000,
    };
    let semgrep = value_of("--semgrep").map(PathBuf::from);

    let tree = tempfile::tempdir()
        .map_err(|error| format!("cannot create a temporary directory: {error}"))?;
    let bytes = generate_tree(tree.path(), files)
        .map_err(|error| format!("cannot generate the tree: {error}"))?;
    let config = ScannerConfig::default();
    let advisories = AdvisoryDb::new();
    let mut seconds = Vec::new();
    let mut findings = 0;
    for _ in 0..RUNS {
        let started = Instant::now();
        let report = scan_repository(tree.path(), &config, &advisories)
            .map_err(|error| error.to_string())?;
        seconds.push(started.elapsed().as_secs_f64());
        findings = report.counts.iter().sum::<usize>();
    }
    seconds.sort_by(f64::total_cmp);
    let median = seconds[RUNS / 2];
    let ours = rates("troupe security_scanner", files, bytes, median);
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    println!(
        "security_scanner: {files} files, {bytes} bytes, median {median:.3} s over {RUNS} runs, {threads} threads, {findings} findings"
    );
    println!(
        "  {:.0} files/s, {:.1} MB/s",
        ours["files_per_s"].as_f64().unwrap_or(0.0),
        ours["mb_per_s"].as_f64().unwrap_or(0.0)
    );

    let mut result = json!({
        "benchmark": "security_scanner throughput",
        "tree": {"files": files, "bytes": bytes, "generator": "troupe_scanner::bench::generate_tree"},
        "runs": RUNS,
        "threads": threads,
        "seconds": seconds,
        "findings": findings,
        "troupe": ours,
    });
    if let Some(semgrep) = semgrep {
        let reference = run_semgrep(&semgrep, tree.path(), files, bytes)?;
        let ratio = ours["files_per_s"].as_f64().unwrap_or(0.0)
            / reference["files_per_s"].as_f64().unwrap_or(f64::NAN);
        println!(
            "semgrep: {:.0} files/s; troupe is {ratio:.1}× its rate",
            reference["files_per_s"].as_f64().unwrap_or(0.0)
        );
        result["semgrep"] = reference;
        result["troupe_over_semgrep"] = json!(ratio);
    }
    let out_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench-results");
    std::fs::create_dir_all(&out_dir)
        .map_err(|error| format!("cannot create {}: {error}", out_dir.display()))?;
    let out = out_dir.join("scanner.json");
    let text = serde_json::to_string_pretty(&result).map_err(|error| error.to_string())?;
    std::fs::write(&out, text)
        .map_err(|error| format!("cannot write {}: {error}", out.display()))?;
    println!("wrote {}", out.display());
    Ok(())
}

fn rates(name: &str, files: usize, bytes: u64, seconds: f64) -> Value {
    json!({
        "name": name,
        "seconds": seconds,
        "files_per_s": files as f64 / seconds,
        "mb_per_s": bytes as f64 / 1e6 / seconds,
    })
}

/// One semgrep run (its start-up is part of what a user waits for, so it is included).
fn run_semgrep(semgrep: &Path, tree: &Path, files: usize, bytes: u64) -> Result<Value, String> {
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/reference/semgrep-rules.yaml");
    let started = Instant::now();
    let output = Command::new(semgrep)
        .args(["scan", "--config"])
        .arg(&rules)
        .args([
            "--metrics",
            "off",
            "--disable-version-check",
            "--json",
            "--quiet",
        ])
        .arg(tree)
        .output()
        .map_err(|error| format!("cannot run {}: {error}", semgrep.display()))?;
    let seconds = started.elapsed().as_secs_f64();
    if !output.status.success() && output.status.code() != Some(1) {
        return Err(format!(
            "semgrep failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
                .chars()
                .take(2000)
                .collect::<String>()
        ));
    }
    let report: Value = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
    let findings = report
        .get("results")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    let scanned = report
        .pointer("/paths/scanned")
        .and_then(Value::as_array)
        .map_or(files, Vec::len);
    let mut rates = rates("semgrep", scanned, bytes, seconds);
    rates["findings"] = json!(findings);
    rates["version"] = json!(
        Command::new(semgrep)
            .arg("--version")
            .output()
            .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_string())
            .unwrap_or_default()
    );
    Ok(rates)
}
