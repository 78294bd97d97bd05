//! `cargo bench --bench ui`: the web UI in headless Chromium against the real binary.
//! Measures the browser bundle's gzipped size, time to first render (first contentful
//! paint) and to interactive (hydrated with its data on screen) of the dashboard and of a
//! 200-task run page, and the update latency from a task's state change in the engine to
//! the screen. Results go to `bench-results/ui.json`, each beside its goal as a ratio.
//!
//! Needs what the UI tests need: `cargo xtask ui`, chromium and chromium-driver.

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::PathBuf;
use std::time::Duration;

use serde_json::json;
use support::webdriver::{Browser, Driver};
use support::{Server, free_address, get_json, save_and_start};

const SAMPLES: usize = 5;
const WASM_GOAL_BYTES: f64 = 1024.0 * 1024.0;
const LATENCY_GOAL_MS: f64 = 100.0;

fn wide_workflow(tasks: usize) -> String {
    let mut yaml = String::from("name: Bench wide\ntasks:\n");
    for i in 0..tasks {
        // Twenty layers of ten: each task waits for one task of the layer before.
        let needs = if i < 10 {
            String::new()
        } else {
            format!(", depends_on: [t{}]", i - 10)
        };
        yaml.push_str(&format!("  - {{ id: t{i}, name: Task {i}, agent: shell{needs}, inputs: {{ command: \"true\" }} }}\n"));
    }
    yaml
}

fn chain_workflow(tasks: usize) -> String {
    let mut yaml = String::from("name: Bench chain\ntasks:\n");
    for i in 0..tasks {
        let needs = if i == 0 {
            String::new()
        } else {
            format!(", depends_on: [c{}]", i - 1)
        };
        yaml.push_str(&format!("  - {{ id: c{i}, name: Step {i}, agent: shell{needs}, inputs: {{ command: \"sleep 0.1\" }} }}\n"));
    }
    yaml
}

fn wait_done(server: &Server, run_id: &str) {
    support::wait_for_run(server, run_id, 300, |run| run["status"] != "running");
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

fn percentile(mut values: Vec<f64>, p: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    let at = ((values.len() as f64 - 1.0) * p).round() as usize;
    values.get(at).copied().unwrap_or(f64::NAN)
}

/// First contentful paint and time to interactive (hydrated, and `ready` on screen), in
/// ms since navigation, for a fresh load of `url`.
fn load_times(browser: &Browser, url: &str, ready: &str) -> (f64, f64) {
    browser.go("about:blank");
    browser.go(url);
    let shown = browser.run_async(
        "const [ready, done] = arguments; \
         (function check() { \
           const hydrated = document.documentElement.dataset.hydratedAt; \
           if (hydrated && document.querySelector(ready)) { done(Math.max(Number(hydrated), performance.now())); } \
           else { requestAnimationFrame(check); } })();",
        vec![json!(ready)],
    );
    let paint = browser.run(
        "const p = performance.getEntriesByName('first-contentful-paint')[0]; return p ? p.startTime : null;",
        vec![],
    );
    (
        paint.as_f64().unwrap_or(f64::NAN),
        shown.as_f64().unwrap_or(f64::NAN),
    )
}

fn gzipped_size(path: &PathBuf) -> u64 {
    let output = std::process::Command::new("gzip")
        .args(["-9", "-c"])
        .arg(path)
        .output()
        .expect("gzip runs");
    output.stdout.len() as u64
}

fn main() {
    let wasm = support::target_dir().join("site/pkg/troupe_bg.wasm");
    assert!(
        wasm.is_file(),
        "no UI bundle at {}: run `cargo xtask ui`",
        wasm.display()
    );
    let wasm_bytes = std::fs::metadata(&wasm).expect("bundle").len();
    let wasm_gzip = gzipped_size(&wasm);

    let scratch = tempfile::tempdir().expect("scratch directory");
    let server = Server::start(&scratch.path().join("data"), &free_address());
    let driver = Driver::start();
    let browser = driver.session(1280, 900);

    let wide = save_and_start(&server, &wide_workflow(200), &json!({}));
    wait_done(&server, &wide);
    let (mut dashboard_paint, mut dashboard_ready, mut run_paint, mut run_ready) =
        (vec![], vec![], vec![], vec![]);
    for _ in 0..SAMPLES {
        let (paint, ready) = load_times(
            &browser,
            &server.url("/"),
            "[data-testid=run-stats] .stat-value",
        );
        dashboard_paint.push(paint);
        dashboard_ready.push(ready);
        let (paint, ready) = load_times(
            &browser,
            &server.url(&format!("/runs/{wide}")),
            "[data-testid=dag] [data-task=t199][data-state=completed]",
        );
        run_paint.push(paint);
        run_ready.push(ready);
    }

    // Update latency: every state change of a running chain, from the event's time in the
    // store to the moment the DAG node's state changed on screen (one machine, one clock).
    let chain = save_and_start(&server, &chain_workflow(30), &json!({}));
    browser.go(&server.url(&format!("/runs/{chain}")));
    browser.wait_hydrated();
    browser.wait_for(
        "the run page's DAG",
        30,
        "return !!document.querySelector('[data-testid=dag]')",
    );
    browser.run(
        "window.__changes = []; \
         new MutationObserver(records => { for (const r of records) { \
           window.__changes.push([r.target.getAttribute('data-task'), r.target.getAttribute('data-state'), performance.timeOrigin + performance.now()]); } }) \
           .observe(document.querySelector('[data-testid=dag]'), { subtree: true, attributes: true, attributeFilter: ['data-state'] });",
        vec![],
    );
    wait_done(&server, &chain);
    std::thread::sleep(Duration::from_millis(500));
    let changes = browser.run("return window.__changes", vec![]);
    let events = get_json(&server, &format!("/api/v1/runs/{chain}/events"));
    let state_of = |kind: &str| match kind {
        "attempt_started" => Some("running"),
        "attempt_succeeded" => Some("completed"),
        _ => None,
    };
    let mut latencies = Vec::new();
    for change in changes.as_array().cloned().unwrap_or_default() {
        let (task, state, at) = (
            change[0].as_str().unwrap_or(""),
            change[1].as_str().unwrap_or(""),
            change[2].as_f64().unwrap_or(0.0),
        );
        let written = events.as_array().into_iter().flatten().find(|event| {
            event["event"]["task"] == task
                && state_of(event["event"]["kind"].as_str().unwrap_or("")) == Some(state)
        });
        if let Some(written) = written.and_then(|event| event["at_ms"].as_f64()) {
            latencies.push(at - written);
        }
    }
    assert!(
        !latencies.is_empty(),
        "no state change reached the screen: {changes}"
    );

    let p95 = percentile(latencies.clone(), 0.95);
    let report = json!({
        "measured_at_ms": now_ms(),
        "samples": SAMPLES,
        "wasm": { "bytes": wasm_bytes, "gzip_bytes": wasm_gzip, "goal_gzip_bytes": WASM_GOAL_BYTES, "ratio_to_goal": wasm_gzip as f64 / WASM_GOAL_BYTES },
        "dashboard": { "first_render_ms": median(dashboard_paint), "interactive_ms": median(dashboard_ready) },
        "run_page_200_tasks": { "first_render_ms": median(run_paint), "interactive_ms": median(run_ready) },
        "update_latency_ms": {
            "changes": latencies.len(),
            "p50": percentile(latencies.clone(), 0.5),
            "p95": p95,
            "max": percentile(latencies, 1.0),
            "goal_ms": LATENCY_GOAL_MS,
            "p95_ratio_to_goal": p95 / LATENCY_GOAL_MS,
        },
    });
    let text = serde_json::to_string_pretty(&report).expect("json");
    println!("{text}");
    std::fs::create_dir_all("bench-results").expect("bench-results");
    std::fs::write("bench-results/ui.json", text + "\n").expect("results written");
    println!("written to bench-results/ui.json");
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as u64)
}
