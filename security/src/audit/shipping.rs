//! Signed checkpoints shipped off the host as they are made (`audit.ship`): to an HTTP
//! sink (`POST`, JSON) and to syslog (RFC 5424 over UDP). Whoever controls this host can
//! rewrite the database and the checkpoint file together; a copy held elsewhere still
//! says how long the chain was and what its head was.
//!
//! Shipping is a task fed by a bounded queue: a sink that is slow or down never delays
//! or fails an audit write. A checkpoint that finds the queue full is dropped (and
//! logged); an HTTP delivery is retried with backoff, then given up (and logged).

use std::time::Duration;

use serde_json::json;
use tokio::sync::{mpsc, oneshot};

use crate::SecurityError;
use crate::audit::checkpoint::Checkpoint;

/// Checkpoints waiting to be shipped, at most.
const QUEUE: usize = 1024;
/// HTTP tries per checkpoint; the waits between them double from the first.
const HTTP_ATTEMPTS: u32 = 5;
const FIRST_RETRY: Duration = Duration::from_millis(500);
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
/// syslog's `authpriv` facility (10), severity `info` (6): 10 × 8 + 6.
const SYSLOG_PRIORITY: u8 = 86;

enum Message {
    Ship(Checkpoint),
    /// Answered once everything queued before it was shipped (or given up).
    Flush(oneshot::Sender<()>),
}

/// The sending side; the task ends when it is dropped.
pub struct Shipping {
    queue: mpsc::Sender<Message>,
}

struct Sinks {
    node: String,
    http: Option<(reqwest::Client, String)>,
    syslog: Option<(tokio::net::UdpSocket, String)>,
}

impl Shipping {
    /// Starts shipping to the sinks `settings` names, as node `node`; `None` when it
    /// names none.
    pub async fn start(
        settings: &troupe_config::AuditShipSettings,
        node: &str,
    ) -> Result<Option<Self>, SecurityError> {
        let invalid = |message: String| SecurityError::InvalidRequest(message);
        let http = match settings.http_url.as_str() {
            "" => None,
            url => {
                reqwest::Url::parse(url)
                    .map_err(|error| invalid(format!("audit.ship.http_url `{url}`: {error}")))?;
                let client = reqwest::Client::builder()
                    .timeout(HTTP_TIMEOUT)
                    .build()
                    .map_err(|error| invalid(format!("audit.ship.http_url: {error}")))?;
                Some((client, url.to_owned()))
            }
        };
        let syslog = match settings.syslog_udp.as_str() {
            "" => None,
            target => Some((udp_socket(target).await?, target.to_owned())),
        };
        if http.is_none() && syslog.is_none() {
            return Ok(None);
        }
        let (queue, received) = mpsc::channel(QUEUE);
        let sinks = Sinks {
            node: node.to_owned(),
            http,
            syslog,
        };
        tokio::spawn(sinks.run(received));
        Ok(Some(Self { queue }))
    }

    /// Queues `checkpoint`; never waits.
    pub fn offer(&self, checkpoint: &Checkpoint) {
        if self
            .queue
            .try_send(Message::Ship(checkpoint.clone()))
            .is_err()
        {
            tracing::error!(
                seq = checkpoint.seq,
                "audit shipping queue full: checkpoint not shipped"
            );
        }
    }

    /// Waits (at most `within`) until everything offered so far was shipped or given up.
    pub async fn flush(&self, within: Duration) {
        let (done, shipped) = oneshot::channel();
        let flushed = async {
            self.queue.send(Message::Flush(done)).await.ok()?;
            shipped.await.ok()
        };
        if tokio::time::timeout(within, flushed).await.is_err() {
            tracing::warn!("audit checkpoints still unshipped after {within:?}");
        }
    }
}

/// A UDP socket for `target` (`host:port`), bound to the matching address family.
async fn udp_socket(target: &str) -> Result<tokio::net::UdpSocket, SecurityError> {
    let invalid = |why: String| {
        SecurityError::InvalidRequest(format!("audit.ship.syslog_udp `{target}`: {why}"))
    };
    let address = tokio::net::lookup_host(target)
        .await
        .map_err(|error| invalid(error.to_string()))?
        .next()
        .ok_or_else(|| invalid("resolves to no address".into()))?;
    let local = if address.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    };
    let socket = tokio::net::UdpSocket::bind(local)
        .await
        .map_err(|error| invalid(error.to_string()))?;
    socket
        .connect(address)
        .await
        .map_err(|error| invalid(error.to_string()))?;
    Ok(socket)
}

impl Sinks {
    async fn run(self, mut received: mpsc::Receiver<Message>) {
        while let Some(message) = received.recv().await {
            match message {
                Message::Ship(checkpoint) => {
                    if let Some((socket, target)) = &self.syslog {
                        let line = syslog_line(&self.node, &checkpoint);
                        if let Err(error) = socket.send(line.as_bytes()).await {
                            tracing::error!(%error, target, seq = checkpoint.seq, "audit checkpoint not sent to syslog");
                        }
                    }
                    if let Some((client, url)) = &self.http {
                        self.post(client, url, &checkpoint).await;
                    }
                }
                Message::Flush(done) => {
                    let _asker_gone = done.send(());
                }
            }
        }
    }

    async fn post(&self, client: &reqwest::Client, url: &str, checkpoint: &Checkpoint) {
        let body = json!({ "node": self.node, "checkpoint": checkpoint });
        let mut wait = FIRST_RETRY;
        for attempt in 1..=HTTP_ATTEMPTS {
            let outcome = client.post(url).json(&body).send().await;
            let failure = match outcome {
                Ok(response) if response.status().is_success() => return,
                Ok(response) => format!("answered {}", response.status()),
                Err(error) => error.to_string(),
            };
            if attempt == HTTP_ATTEMPTS {
                tracing::error!(url, seq = checkpoint.seq, %failure, "audit checkpoint not shipped; giving up");
                return;
            }
            tracing::warn!(url, seq = checkpoint.seq, %failure, attempt, "audit checkpoint not shipped; retrying");
            tokio::time::sleep(wait).await;
            wait *= 2;
        }
    }
}

/// An RFC 5424 message: `<PRI>1 TIMESTAMP HOST APP PROCID MSGID SD MSG`.
fn syslog_line(node: &str, checkpoint: &Checkpoint) -> String {
    let at = chrono::DateTime::from_timestamp_millis(checkpoint.at_ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let host: String = node
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(255)
        .collect();
    let host = if host.is_empty() { "-".into() } else { host };
    let message = json!({ "node": node, "checkpoint": checkpoint });
    format!(
        "<{SYSLOG_PRIORITY}>1 {at} {host} troupe {} audit-checkpoint - {message}",
        std::process::id()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_syslog_line_is_rfc_5424_with_the_checkpoint_as_its_message() {
        let checkpoint = Checkpoint {
            seq: 7,
            hash: "abc".into(),
            at_ms: 1_765_000_000_123,
            mac: "m".into(),
        };
        let line = syslog_line("node a", &checkpoint);
        let (head, message) = line.split_once(" - ").unwrap();
        let fields: Vec<&str> = head.split(' ').collect();
        assert_eq!(fields[0], "<86>1");
        assert_eq!(fields[1], "2025-12-06T05:46:40.123Z");
        assert_eq!(fields[2], "nodea", "a host name holds no spaces");
        assert_eq!((fields[3], fields[5]), ("troupe", "audit-checkpoint"));
        let sent: serde_json::Value = serde_json::from_str(message).unwrap();
        assert_eq!(sent["checkpoint"]["seq"], 7);
        assert_eq!(sent["node"], "node a");
    }
}
