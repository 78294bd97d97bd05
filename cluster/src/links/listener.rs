//! The links' own accept loop. ractor_cluster's listener completes each TLS handshake
//! inline, so one peer that connects and says nothing holds up every connection after
//! it. Here each handshake runs on its own task, bounded in time and in number, and only
//! an established stream reaches the node server.

use std::sync::Arc;
use std::time::Duration;

use ractor::ActorRef;
use ractor_cluster::{NetworkStream, NodeServerMessage};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

use super::identity::Proofs;

/// How long a peer has to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// Handshakes under way at once (each a task and a few KiB); connections beyond wait
/// in the kernel's backlog until one ends, which [`HANDSHAKE_TIMEOUT`] bounds.
const MAX_HANDSHAKES: usize = 1024;

/// Accepts connections until the task is aborted, handing each established stream to
/// `server`, and each peer's certificate to `proofs`.
pub async fn accept_loop(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    server: ActorRef<NodeServerMessage>,
    proofs: Proofs,
) {
    let handshakes = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    loop {
        let Ok(permit) = handshakes.clone().acquire_owned().await else {
            return;
        };
        let (stream, peer_addr) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "could not accept a link");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let tls = tls.clone();
        let (server, proofs) = (server.clone(), proofs.clone());
        tokio::spawn(async move {
            let _permit = permit;
            match establish(stream, tls, &proofs).await {
                Ok(stream) => {
                    let opened = NodeServerMessage::ConnectionOpened {
                        stream: Box::new(stream),
                        is_server: true,
                    };
                    if server.cast(opened).is_err() {
                        tracing::debug!("a link arrived as the node server stopped");
                    }
                }
                Err(why) => tracing::warn!(%peer_addr, why, "refused a link"),
            }
        });
    }
}

async fn establish(
    stream: TcpStream,
    tls: Option<TlsAcceptor>,
    proofs: &Proofs,
) -> Result<NetworkStream, String> {
    stream
        .set_nodelay(true)
        .map_err(|error| error.to_string())?;
    let peer_addr = stream.peer_addr().map_err(|error| error.to_string())?;
    let local_addr = stream.local_addr().map_err(|error| error.to_string())?;
    let Some(acceptor) = tls else {
        return Ok(NetworkStream::Raw {
            peer_addr,
            local_addr,
            stream,
        });
    };
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(stream)) => {
            // Mutual TLS: the handshake succeeded only with a certificate the CA signed.
            if let Some(certificate) = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(<[_]>::first)
            {
                proofs.record(peer_addr, certificate);
            }
            Ok(NetworkStream::TlsServer {
                peer_addr,
                local_addr,
                stream,
            })
        }
        Ok(Err(error)) => Err(format!("TLS handshake failed: {error}")),
        Err(_) => Err("no TLS handshake within 5 s".into()),
    }
}
