//! `troupe bench cluster`: the links between two nodes, measured in one run. A peer
//! process (`troupe bench cluster-peer`, this binary: [`peer`]) serves a node's gateway
//! over ractor_cluster with mutual TLS and the cookie, and a plain TCP echo on loopback
//! beside it; this process links to it like a node and measures the round trip and the
//! calls per second of a ping, of a whole remote attempt (the gateway, the peer's agent
//! pool and the outcome's record) and of the echo. The figures are compared as ratios:
//! the links' cost over the network's own. With a shared store, [`failover`] also
//! times how long a run waits after its owner is killed.

mod failover;
mod peer;

pub use failover::{FailoverFigures, FailoverPlan};
pub use peer::peer;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use ractor::{Actor, ActorRef};
use serde::Serialize;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use troupe_agents::MemoryScope;
use troupe_cluster::links::{self, LinkTls, Links, LinksArgs, LinksMsg};
use troupe_cluster::wire::{GatewayMsg, Ping, Wire, gateway_group};
use troupe_engine::outcome::AttemptOutcome;
use troupe_engine::placement::RemoteAttempt;
use troupe_store::{NodeRecord, RunId};

const COOKIE: &str = "the-cluster-benchmark-cookie";
const PEER: &str = "peer";
/// The size of one echoed message: a small attempt's reply.
const ECHO_BYTES: usize = 256;

#[derive(Debug, Serialize)]
pub struct ClusterReport {
    pub round_trips: usize,
    pub seconds: f64,
    pub concurrency: usize,
    /// A gateway ping.
    pub links: Figures,
    /// An `echo` attempt run on the peer: submitted, run, recorded, answered.
    pub remote_attempts: Figures,
    pub echo: Figures,
    /// links ÷ echo.
    pub rtt_p50_ratio: f64,
    pub rtt_p99_ratio: f64,
    pub throughput_ratio: f64,
    /// remote attempts ÷ echo.
    pub attempt_throughput_ratio: f64,
    /// Kill → run moving on, when a shared store was given (`--failover-store`).
    pub failover: Option<FailoverFigures>,
    /// What the benchmark asks for that this run did not measure, and why.
    pub not_measured: Vec<&'static str>,
}

#[derive(Debug, Serialize)]
pub struct Figures {
    pub rtt_p50_us: f64,
    pub rtt_p99_us: f64,
    pub calls_per_sec: f64,
}

impl ClusterReport {
    pub fn table(&self) -> String {
        let line = |name: &str, f: &Figures| {
            format!(
                "{name:<28} p50 {:>8.1} µs   p99 {:>8.1} µs   {:>9.0} calls/s",
                f.rtt_p50_us, f.rtt_p99_us, f.calls_per_sec
            )
        };
        let mut table = format!(
            "{}\n{}\n{}\nlinks over echo: p50 ×{:.2}, p99 ×{:.2}, throughput ×{:.2}; remote attempts ×{:.2}",
            line("gateway ping (mTLS links)", &self.links),
            line("remote echo attempt", &self.remote_attempts),
            line("plain TCP echo", &self.echo),
            self.rtt_p50_ratio,
            self.rtt_p99_ratio,
            self.throughput_ratio,
            self.attempt_throughput_ratio,
        );
        if let Some(failover) = &self.failover {
            table.push('\n');
            table.push_str(&failover.line());
        }
        table
    }
}

pub async fn cluster(
    round_trips: usize,
    seconds: f64,
    concurrency: usize,
    scratch: &std::path::Path,
    failover: Option<FailoverPlan>,
) -> anyhow::Result<ClusterReport> {
    let certs = troupe_cluster::links::certs::make_certs(&["bench".into(), PEER.into()], &[])?;
    certs.write(scratch)?;
    let mut peer = start_peer(scratch)?;
    let (links_address, echo_address) = peer_addresses(&mut peer)?;
    let gateway = link_to_peer(scratch, &links_address).await?;
    let pinged = gateway.clone();
    let links = measure(round_trips, seconds, concurrency, move || {
        let gateway = pinged.clone();
        async move { ping(&gateway).await }
    })
    .await?;
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let remote_attempts = measure(round_trips, seconds, concurrency, move || {
        let (gateway, number) = (
            gateway.clone(),
            sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        );
        async move { remote_attempt(&gateway, number).await }
    })
    .await?;
    let echo = measure_echo(&echo_address, round_trips, seconds, concurrency).await?;
    let _ = peer.kill();
    let _ = peer.wait();
    let measured_failover = match &failover {
        Some(plan) => Some(failover::failover(plan, scratch).await?),
        None => None,
    };
    Ok(ClusterReport {
        round_trips,
        seconds,
        concurrency,
        rtt_p50_ratio: links.rtt_p50_us / echo.rtt_p50_us,
        rtt_p99_ratio: links.rtt_p99_us / echo.rtt_p99_us,
        throughput_ratio: links.calls_per_sec / echo.calls_per_sec,
        attempt_throughput_ratio: remote_attempts.calls_per_sec / echo.calls_per_sec,
        links,
        remote_attempts,
        echo,
        not_measured: match measured_failover {
            Some(_) => Vec::new(),
            None => vec!["failover: give --failover-store ws://HOST:PORT (a SurrealDB server)"],
        },
        failover: measured_failover,
    })
}

fn start_peer(certs: &std::path::Path) -> anyhow::Result<Child> {
    Command::new(std::env::current_exe()?)
        .args(["bench", "cluster-peer", "--certs"])
        .arg(certs)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting the benchmark's peer process")
}

/// The peer's first line: `READY LINKS_ADDRESS ECHO_ADDRESS`.
fn peer_addresses(peer: &mut Child) -> anyhow::Result<(String, String)> {
    let stdout = peer.stdout.take().context("the peer's output")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    match line.split_whitespace().collect::<Vec<_>>()[..] {
        ["READY", links, echo] => Ok((links.into(), echo.into())),
        _ => bail!("the benchmark's peer did not start: {line:?}"),
    }
}

fn tls(certs: &std::path::Path, name: &str) -> anyhow::Result<LinkTls> {
    Ok(LinkTls::from_files(
        &certs.join("ca.pem"),
        &certs.join(format!("{name}.pem")),
        &certs.join(format!("{name}.key")),
    )?)
}

/// Links this process to the peer as node `bench` and waits for its gateway.
async fn link_to_peer(
    certs: &std::path::Path,
    address: &str,
) -> anyhow::Result<ActorRef<GatewayMsg>> {
    let args = LinksArgs {
        node_name: "bench".into(),
        cookie: COOKIE.into(),
        listener: links::bind("127.0.0.1:0")?,
        tls: Some(tls(certs, "bench")?),
        seeds: Vec::new(),
    };
    let (links, _) = Actor::spawn(None, Links, args).await?;
    let peer = NodeRecord {
        name: PEER.into(),
        incarnation: 1,
        api_address: String::new(),
        cluster_address: address.into(),
        labels: Vec::new(),
        load: json!({}),
        joined_ms: 0,
        lease_age_ms: 0,
        live: true,
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        links.cast(LinksMsg::Members(vec![peer.clone()]))?;
        if let Some(cell) = ractor::pg::get_members(&gateway_group(PEER))
            .into_iter()
            .next()
        {
            return Ok(ActorRef::from(cell));
        }
        if Instant::now() > deadline {
            bail!("no link to the benchmark's peer within 10 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn ping(gateway: &ActorRef<GatewayMsg>) -> anyhow::Result<()> {
    let sent = Wire::new(Ping {
        sent_by: "bench".into(),
    });
    match ractor::call_t!(gateway, GatewayMsg::Ping, 5_000, sent)? {
        Wire(Ok(_)) => Ok(()),
        Wire(Err(why)) => bail!("a ping came back unreadable: {why}"),
    }
}

/// One `echo` attempt run on the peer to its recorded outcome.
async fn remote_attempt(gateway: &ActorRef<GatewayMsg>, number: u64) -> anyhow::Result<()> {
    let attempt = RemoteAttempt {
        owner: "bench".into(),
        run_id: RunId::from(format!("bench-{number}")),
        epoch: 1,
        task: "echo".into(),
        attempt: 1,
        seed: number,
        kind: "echo".into(),
        inputs: serde_json::Map::from_iter([("n".to_string(), json!(number))]),
        timeout_secs: Some(10),
        approval: None,
        scope: MemoryScope::default(),
        billing: None,
        resumed: false,
        trace: None,
    };
    let asked = Wire::new(Box::new(attempt));
    match ractor::call_t!(gateway, GatewayMsg::RunAttempt, 10_000, asked)? {
        Wire(Ok(reply)) => match reply.outcome {
            AttemptOutcome::Succeeded(_) => Ok(()),
            other => bail!("a remote attempt did not succeed: {other:?}"),
        },
        Wire(Err(why)) => bail!("a remote attempt's answer came back unreadable: {why}"),
    }
}

/// Round trips one at a time (latency), then `concurrency` at once for `seconds`
/// (throughput).
async fn measure<F, Fut>(
    round_trips: usize,
    seconds: f64,
    concurrency: usize,
    call: F,
) -> anyhow::Result<Figures>
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    for _ in 0..round_trips / 10 {
        call().await?;
    }
    let mut latencies = Vec::with_capacity(round_trips);
    for _ in 0..round_trips {
        let started = Instant::now();
        call().await?;
        latencies.push(started.elapsed().as_secs_f64() * 1e6);
    }
    latencies.sort_by(f64::total_cmp);
    let percentile = |p: f64| latencies[((latencies.len() - 1) as f64 * p) as usize];
    let until = Instant::now() + Duration::from_secs_f64(seconds);
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let call = call.clone();
        workers.spawn(async move {
            let mut calls = 0u64;
            while Instant::now() < until {
                call().await?;
                calls += 1;
            }
            anyhow::Ok(calls)
        });
    }
    let mut calls = 0;
    while let Some(done) = workers.join_next().await {
        calls += done??;
    }
    Ok(Figures {
        rtt_p50_us: percentile(0.5),
        rtt_p99_us: percentile(0.99),
        calls_per_sec: calls as f64 / seconds,
    })
}

/// The same over plain TCP: one connection per concurrent caller.
async fn measure_echo(
    address: &str,
    round_trips: usize,
    seconds: f64,
    concurrency: usize,
) -> anyhow::Result<Figures> {
    let mut connections = Vec::new();
    for _ in 0..concurrency.max(1) {
        let stream = tokio::net::TcpStream::connect(address).await?;
        stream.set_nodelay(true)?;
        connections.push(std::sync::Arc::new(tokio::sync::Mutex::new(stream)));
    }
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    measure(round_trips, seconds, concurrency, move || {
        let index = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % connections.len();
        let connection = connections[index].clone();
        async move {
            let mut stream = connection.lock().await;
            let mut buffer = [7u8; ECHO_BYTES];
            stream.write_all(&buffer).await?;
            stream.read_exact(&mut buffer).await?;
            Ok(())
        }
    })
    .await
}
