//! `troupe bench cluster`: the links between two nodes, measured in one run. A peer
//! process (`troupe bench cluster-peer`, this binary) serves a gateway that answers
//! pings over ractor_cluster with mutual TLS and the cookie, and a plain TCP echo on
//! loopback beside it; this process links to it like a node and measures the round trip
//! and the calls per second of both. The figures are compared as ratios: the links'
//! cost over the network's own.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use serde::Serialize;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use troupe_cluster::links::{self, LinkTls, Links, LinksArgs, LinksMsg};
use troupe_cluster::wire::{GatewayMsg, Ping, Wire, gateway_group};
use troupe_store::NodeRecord;

const COOKIE: &str = "the-cluster-benchmark-cookie";
const PEER: &str = "peer";
/// The size of one echoed message: a small attempt's reply.
const ECHO_BYTES: usize = 256;

#[derive(Debug, Serialize)]
pub struct ClusterReport {
    pub round_trips: usize,
    pub seconds: f64,
    pub concurrency: usize,
    pub links: Figures,
    pub echo: Figures,
    /// links ÷ echo.
    pub rtt_p50_ratio: f64,
    pub rtt_p99_ratio: f64,
    pub throughput_ratio: f64,
    /// What the benchmark asks for that this one does not measure yet.
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
        format!(
            "{}\n{}\nlinks over echo: p50 ×{:.2}, p99 ×{:.2}, throughput ×{:.2}",
            line("gateway ping (mTLS links)", &self.links),
            line("plain TCP echo", &self.echo),
            self.rtt_p50_ratio,
            self.rtt_p99_ratio,
            self.throughput_ratio
        )
    }
}

pub async fn cluster(
    round_trips: usize,
    seconds: f64,
    concurrency: usize,
    scratch: &std::path::Path,
) -> anyhow::Result<ClusterReport> {
    let certs = troupe_cluster::links::certs::make_certs(&["bench".into(), PEER.into()], &[])?;
    certs.write(scratch)?;
    let mut peer = start_peer(scratch)?;
    let (links_address, echo_address) = peer_addresses(&mut peer)?;
    let gateway = link_to_peer(scratch, &links_address).await?;
    let links = measure(round_trips, seconds, concurrency, move || {
        let gateway = gateway.clone();
        async move { ping(&gateway).await }
    })
    .await?;
    let echo = measure_echo(&echo_address, round_trips, seconds, concurrency).await?;
    let _ = peer.kill();
    let _ = peer.wait();
    Ok(ClusterReport {
        round_trips,
        seconds,
        concurrency,
        rtt_p50_ratio: links.rtt_p50_us / echo.rtt_p50_us,
        rtt_p99_ratio: links.rtt_p99_us / echo.rtt_p99_us,
        throughput_ratio: links.calls_per_sec / echo.calls_per_sec,
        links,
        echo,
        not_measured: vec![
            "remote attempt submissions per second",
            "failover time over 10 trials",
        ],
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

/// `troupe bench cluster-peer`: the other end of the benchmark, until killed.
pub async fn peer(certs: &std::path::Path) -> anyhow::Result<()> {
    let listener = links::bind("127.0.0.1:0")?;
    let links_address = listener.local_addr()?;
    let args = LinksArgs {
        node_name: PEER.into(),
        cookie: COOKIE.into(),
        listener,
        tls: Some(tls(certs, PEER)?),
        seeds: Vec::new(),
    };
    let (_links, _) = Actor::spawn(None, Links, args).await?;
    let (_pong, _) = Actor::spawn(None, Pong, ()).await?;
    let echo = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("READY {links_address} {}", echo.local_addr()?);
    loop {
        let (mut stream, _) = echo.accept().await?;
        stream.set_nodelay(true)?;
        tokio::spawn(async move {
            let mut buffer = [0u8; ECHO_BYTES];
            while stream.read_exact(&mut buffer).await.is_ok() {
                if stream.write_all(&buffer).await.is_err() {
                    break;
                }
            }
        });
    }
}

/// A gateway that only answers pings.
struct Pong;

impl Actor for Pong {
    type Msg = GatewayMsg;
    type State = ();
    type Arguments = ();

    async fn pre_start(
        &self,
        myself: ActorRef<GatewayMsg>,
        _: (),
    ) -> Result<(), ActorProcessingErr> {
        ractor::pg::join(gateway_group(PEER), vec![myself.get_cell()]);
        Ok(())
    }

    async fn handle(
        &self,
        _: ActorRef<GatewayMsg>,
        message: GatewayMsg,
        _: &mut (),
    ) -> Result<(), ActorProcessingErr> {
        if let GatewayMsg::Ping(_, reply) = message {
            let _caller_left = reply.send(Wire::new(Ping {
                sent_by: PEER.into(),
            }));
        }
        Ok(())
    }
}
