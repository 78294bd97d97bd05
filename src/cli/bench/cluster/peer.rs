//! `troupe bench cluster-peer`: the other end of `troupe bench cluster`, until killed. A
//! node on an in-memory store (its own: a peer needs no shared one to answer) with the
//! real gateway, reached over the links with mutual TLS and the cookie, and a plain TCP
//! echo beside it.

use ractor::Actor;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use troupe_cluster::gateway::{Gateway, GatewayArgs};
use troupe_cluster::links::{self, Links, LinksArgs};
use troupe_config::Settings;
use troupe_node::NodeBuilder;

use super::{COOKIE, ECHO_BYTES, PEER, tls};

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
    let node = NodeBuilder::new(peer_settings()).start().await?;
    let gateway = GatewayArgs {
        context: node.engine().clone(),
        inference: None,
    };
    let (_gateway, _) = Actor::spawn(None, Gateway, gateway).await?;
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

/// A node named like the peer, on memory, without models or accounts: what the
/// benchmark measures is the gateway, the pool and the outcome's record.
fn peer_settings() -> Settings {
    let mut settings = Settings::defaults_with_store("mem://");
    settings.cluster.node_name = PEER.into();
    settings.models.serve = false;
    settings.auth.required = false;
    settings
}
