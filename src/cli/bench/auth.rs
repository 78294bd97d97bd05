//! `troupe bench auth`: what authentication costs. One authenticated read
//! (`GET /api/v1/workflows`) is driven over loopback HTTP/1.1 keep-alive connections for
//! a fixed time against a node without accounts, then with a JWT, then with an API key,
//! then without accounts again (the baseline is the mean of both, so drift in the
//! machine shows as a gap between them). Goal (issue 5): each authenticated mode keeps
//! at least 90% of the baseline's requests per second.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use anyhow::anyhow;
use troupe_node::{Node, NodeBuilder};
use troupe_security::auth::permissions::{Permission, Role};
use troupe_security::auth::{KeySpec, StepUp};

const ROUTE: &str = "/api/v1/workflows";
const PASSWORD: &str = "a benchmark's long password";

#[derive(Debug, Clone, Serialize)]
pub struct ModeResult {
    pub mode: &'static str,
    pub requests: u64,
    pub errors: u64,
    pub requests_per_s: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct AuthReport {
    pub benchmark: &'static str,
    pub route: &'static str,
    pub cpus: usize,
    pub connections: usize,
    pub seconds_per_mode: f64,
    pub results: Vec<ModeResult>,
    /// Requests per second with a JWT over the baseline's (goal: at least 0.9).
    pub jwt_over_none: f64,
    pub api_key_over_none: f64,
    /// The two baseline runs' ratio: how much the machine itself drifted.
    pub baseline_drift: f64,
}

fn failure(error: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("auth benchmark: {error}")
}

/// A node on mem:// serving its API on a loopback port.
async fn serve(auth_required: bool) -> anyhow::Result<(Arc<Node>, std::net::SocketAddr)> {
    let mut settings = troupe_config::Settings::defaults_with_store("mem://");
    settings.models.serve = false;
    settings.auth.required = auth_required;
    let node = Arc::new(NodeBuilder::new(settings).start().await?);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(failure)?;
    let address = listener.local_addr().map_err(failure)?;
    let app = troupe_api::router(node.clone());
    tokio::spawn(async move {
        let _ = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await;
    });
    Ok((node, address))
}

/// One keep-alive connection sending the request until `stop`; counts answers.
async fn connection(
    address: std::net::SocketAddr,
    request: Arc<Vec<u8>>,
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    errors: Arc<AtomicU64>,
) {
    let Ok(mut stream) = TcpStream::connect(address).await else {
        errors.fetch_add(1, Ordering::Relaxed);
        return;
    };
    let _ = stream.set_nodelay(true);
    let mut buffer = Vec::with_capacity(8192);
    while !stop.load(Ordering::Relaxed) {
        if stream.write_all(&request).await.is_err() {
            errors.fetch_add(1, Ordering::Relaxed);
            return;
        }
        match read_response(&mut stream, &mut buffer).await {
            Some(200) => ok.fetch_add(1, Ordering::Relaxed),
            Some(_) => errors.fetch_add(1, Ordering::Relaxed),
            None => {
                errors.fetch_add(1, Ordering::Relaxed);
                return;
            }
        };
    }
}

/// Reads one response (headers and a `content-length` body); its status.
async fn read_response(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> Option<u16> {
    buffer.clear();
    let mut chunk = [0u8; 4096];
    let header_end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let read = stream.read(&mut chunk).await.ok().filter(|n| *n > 0)?;
        buffer.extend_from_slice(&chunk[..read]);
    };
    let head = std::str::from_utf8(&buffer[..header_end]).ok()?;
    let status = head.get(9..12)?.parse().ok()?;
    let length: usize = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())
                .flatten()
        })
        .unwrap_or(0);
    while buffer.len() < header_end + length {
        let read = stream.read(&mut chunk).await.ok().filter(|n| *n > 0)?;
        buffer.extend_from_slice(&chunk[..read]);
    }
    Some(status)
}

async fn drive(
    mode: &'static str,
    address: std::net::SocketAddr,
    bearer: Option<&str>,
    connections: usize,
    seconds: f64,
) -> ModeResult {
    let authorization = bearer.map_or(String::new(), |token| {
        format!("authorization: Bearer {token}\r\n")
    });
    let request = Arc::new(
        format!("GET {ROUTE} HTTP/1.1\r\nhost: {address}\r\n{authorization}\r\n").into_bytes(),
    );
    let (stop, ok, errors) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let started = Instant::now();
    let workers: Vec<_> = (0..connections)
        .map(|_| {
            tokio::spawn(connection(
                address,
                request.clone(),
                stop.clone(),
                ok.clone(),
                errors.clone(),
            ))
        })
        .collect();
    tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        let _ = worker.await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let requests = ok.load(Ordering::Relaxed);
    ModeResult {
        mode,
        requests,
        errors: errors.load(Ordering::Relaxed),
        requests_per_s: requests as f64 / elapsed,
    }
}

pub async fn auth(seconds: f64, connections: usize) -> anyhow::Result<AuthReport> {
    let (_open_node, open) = serve(false).await?;
    let (node, guarded) = serve(true).await?;
    let user = node
        .auth()
        .create_user("bench@example.com", Role::Developer, PASSWORD, false)
        .await?;
    let session = node
        .auth()
        .login("bench@example.com", PASSWORD, None, node.audit())
        .await?
        .into_session()
        .ok_or_else(|| failure("the benchmark account asked for a second factor"))?;
    let spec = KeySpec {
        name: "bench".into(),
        scopes: vec![Permission::WorkflowsView],
        ..KeySpec::default()
    };
    let proof = StepUp {
        password: Some(PASSWORD.into()),
        code: None,
    };
    let owner = node
        .auth()
        .step_up(&user, &proof, None, node.audit())
        .await?;
    let (key, _) = node
        .auth()
        .create_api_key(&owner, &spec, node.audit())
        .await?;
    let connections = connections.max(1);
    let mut results = vec![drive("none", open, None, connections, seconds).await];
    results.push(
        drive(
            "jwt",
            guarded,
            Some(&session.access_token),
            connections,
            seconds,
        )
        .await,
    );
    results.push(drive("api_key", guarded, Some(&key), connections, seconds).await);
    results.push(drive("none_again", open, None, connections, seconds).await);
    if let Some(bad) = results.iter().find(|r| r.errors > 0 || r.requests == 0) {
        return Err(failure(format!(
            "mode {} answered {} errors and {} successes: the setup is wrong",
            bad.mode, bad.errors, bad.requests
        )));
    }
    let rate = |mode: &str| {
        results
            .iter()
            .find(|r| r.mode == mode)
            .map_or(f64::NAN, |r| r.requests_per_s)
    };
    let baseline = (rate("none") + rate("none_again")) / 2.0;
    Ok(AuthReport {
        benchmark: "auth",
        route: ROUTE,
        cpus: std::thread::available_parallelism().map_or(1, usize::from),
        connections,
        seconds_per_mode: seconds,
        jwt_over_none: rate("jwt") / baseline,
        api_key_over_none: rate("api_key") / baseline,
        baseline_drift: rate("none_again") / rate("none"),
        results,
    })
}

impl AuthReport {
    pub fn table(&self) -> String {
        let mut lines = vec![format!(
            "auth benchmark: GET {} over {} connections, {:.0} s per mode, {} cpus",
            self.route, self.connections, self.seconds_per_mode, self.cpus
        )];
        for result in &self.results {
            lines.push(format!(
                "{:<11} {:>9.0} requests/s ({} requests)",
                result.mode, result.requests_per_s, result.requests
            ));
        }
        lines.push(format!(
            "jwt / none {:.3}, api key / none {:.3} (goal ≥ 0.9); baseline drift {:.3}",
            self.jwt_over_none, self.api_key_over_none, self.baseline_drift
        ));
        lines.join("\n")
    }
}
