//! `/v1/chat/completions` throughput of a real `troupe up`, for `troupe bench engine
//! --telemetry`: the node runs in a process of its own (the exporter is process-wide),
//! with spans sent to a live receiver or not, and a fixed batch of chat requests is sent
//! a few at a time over loopback; what counts is requests per second.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::StreamExt;
use serde_json::json;

/// Requests timed per node, after two that warm it up.
const REQUESTS: usize = 24;
/// How many are in flight at once: the default generation workers' batch fills.
const IN_FLIGHT: usize = 4;

/// Starts a node on the local models in `models_dir`, exporting to `endpoint` if given,
/// and measures its chat throughput in requests per second.
pub async fn throughput(
    models_dir: &Path,
    endpoint: Option<&str>,
    data_dir: &Path,
) -> anyhow::Result<f64> {
    let address = free_address()?;
    let mut node = start(models_dir, endpoint, data_dir, &address)?;
    let measured = measure(&address).await;
    stop(&mut node).await;
    measured.with_context(|| {
        let log = std::fs::read_to_string(data_dir.with_extension("log")).unwrap_or_default();
        format!("the /v1 benchmark's node, whose log says:\n{log}")
    })
}

fn free_address() -> anyhow::Result<String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.to_string())
}

fn start(
    models_dir: &Path,
    endpoint: Option<&str>,
    data_dir: &Path,
    address: &str,
) -> anyhow::Result<tokio::process::Child> {
    let log = std::fs::File::create(data_dir.with_extension("log"))?;
    let mut command = tokio::process::Command::new(std::env::current_exe()?);
    command
        .arg("--set")
        .arg(format!("models.dir={}", models_dir.display()))
        .args([
            "--set",
            "auth.required=false",
            "up",
            "--address",
            address,
            "--data-dir",
        ])
        .arg(data_dir)
        .env_remove("TROUPE_TELEMETRY__OTLP__ENDPOINT")
        .env("TROUPE_TELEMETRY__OTLP__SAMPLE_RATIO", "1.0")
        .stdout(Stdio::null())
        .stderr(log)
        .kill_on_drop(true);
    if let Some(endpoint) = endpoint {
        command.env("TROUPE_TELEMETRY__OTLP__ENDPOINT", endpoint);
    }
    command.spawn().context("starting the /v1 benchmark's node")
}

async fn measure(address: &str) -> anyhow::Result<f64> {
    let client = reqwest::Client::new();
    wait_ready(&client, address).await?;
    for _ in 0..2 {
        chat(&client, address).await?;
    }
    let started = Instant::now();
    let answers: Vec<anyhow::Result<()>> = futures::stream::iter(0..REQUESTS)
        .map(|_| chat(&client, address))
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;
    answers.into_iter().collect::<anyhow::Result<Vec<()>>>()?;
    Ok(REQUESTS as f64 / started.elapsed().as_secs_f64())
}

async fn wait_ready(client: &reqwest::Client, address: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let url = format!("http://{address}/readyz");
    while Instant::now() < deadline {
        if client
            .get(&url)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("the node was not ready in 60 s")
}

async fn chat(client: &reqwest::Client, address: &str) -> anyhow::Result<()> {
    let body = json!({
        "messages": [{"role": "user", "content": "Count from one to five."}],
        "max_tokens": 16,
        "temperature": 0,
    });
    let answer = client
        .post(format!("http://{address}/v1/chat/completions"))
        .json(&body)
        .send()
        .await?;
    if !answer.status().is_success() {
        bail!(
            "a chat request was answered {}: {}",
            answer.status(),
            answer.text().await?
        );
    }
    Ok(())
}

/// SIGTERM, so that the node sends its queued spans and closes its store.
async fn stop(node: &mut tokio::process::Child) {
    if let Some(pid) = node.id() {
        let _ = tokio::process::Command::new("kill")
            .arg(pid.to_string())
            .status()
            .await;
    }
    if tokio::time::timeout(Duration::from_secs(10), node.wait())
        .await
        .is_err()
    {
        let _ = node.kill().await;
    }
}
