//! Everything that crosses between nodes, in one place. ractor_cluster encodes a
//! message's variant by name and its fields with `BytesConvertable`, and drops what it
//! cannot decode without a word; so each payload here is versioned JSON in a [`Wire`],
//! which decodes to an error the receiver answers rather than to nothing, and every
//! call is made with a timeout. Renaming a variant of [`GatewayMsg`] is a protocol
//! break: add a new one instead.

use ractor::BytesConvertable;
use ractor::RpcReplyPort;
use ractor_cluster::RactorClusterMessage;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use troupe_engine::outcome::AttemptOutcome;
use troupe_engine::placement::RemoteAttempt;

/// Bumped when a payload changes in a way an older node would misread.
pub const WIRE_VERSION: u32 = 1;

/// The process group of `node`'s gateway.
pub fn gateway_group(node: &str) -> String {
    format!("troupe.gateway.{node}")
}

/// A payload as it crossed: the value, or why it could not be read.
#[derive(Debug, Clone, PartialEq)]
pub struct Wire<T>(pub Result<T, String>);

impl<T> Wire<T> {
    pub fn new(value: T) -> Wire<T> {
        Wire(Ok(value))
    }
}

#[derive(Serialize, Deserialize)]
struct Envelope<T> {
    version: u32,
    body: T,
}

impl<T: Serialize + DeserializeOwned> BytesConvertable for Wire<T> {
    fn into_bytes(self) -> Vec<u8> {
        let body = match self.0 {
            Ok(body) => body,
            // A payload that failed to decode is never sent on; an empty frame decodes
            // to an error at the other end.
            Err(_) => return Vec::new(),
        };
        serde_json::to_vec(&Envelope {
            version: WIRE_VERSION,
            body,
        })
        .unwrap_or_default()
    }

    fn from_bytes(bytes: Vec<u8>) -> Self {
        Wire(decode(&bytes))
    }
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    #[derive(Deserialize)]
    struct Version {
        version: u32,
    }
    let version = serde_json::from_slice::<Version>(bytes)
        .map_err(|error| format!("an unreadable cluster message: {error}"))?
        .version;
    if version != WIRE_VERSION {
        return Err(format!(
            "a cluster message of wire version {version}; this node speaks {WIRE_VERSION}: \
             run one Troupe version across the cluster"
        ));
    }
    serde_json::from_slice::<Envelope<T>>(bytes)
        .map(|envelope| envelope.body)
        .map_err(|error| format!("an unreadable cluster message: {error}"))
}

/// What a gateway answers about an attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttemptReply {
    /// The node that ran it (or refused it).
    pub node: String,
    pub outcome: AttemptOutcome,
}

/// A round trip, for the links' benchmark and health.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ping {
    pub sent_by: String,
}

/// Messages to a node's gateway, from any node.
#[derive(RactorClusterMessage)]
pub enum GatewayMsg {
    /// Run an attempt here, and answer with its outcome once recorded. The same
    /// attempt asked again while it runs joins it (boxed: it is far larger than the rest).
    #[rpc]
    RunAttempt(Wire<Box<RemoteAttempt>>, RpcReplyPort<Wire<AttemptReply>>),
    /// Cancel the attempt with this idempotency key, if it runs here.
    CancelAttempt(Wire<String>),
    #[rpc]
    Ping(Wire<Ping>, RpcReplyPort<Wire<Ping>>),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_payload_survives_the_wire_and_garbage_or_another_version_is_an_error() {
        let sent = Wire::new(Ping {
            sent_by: "a".into(),
        });
        let back = Wire::<Ping>::from_bytes(sent.clone().into_bytes());
        assert_eq!(back, sent);
        for garbage in [Vec::new(), b"{".to_vec(), vec![0xff; 64], b"[1,2]".to_vec()] {
            let Wire(decoded) = Wire::<Ping>::from_bytes(garbage.clone());
            let error = decoded.unwrap_err();
            assert!(
                error.starts_with("an unreadable cluster message"),
                "{garbage:?}: {error}"
            );
        }
        let future = br#"{"version": 2, "body": {"sent_by": "z", "more": true}}"#.to_vec();
        let Wire(decoded) = Wire::<Ping>::from_bytes(future);
        assert!(decoded.unwrap_err().contains("wire version 2"));
        let wrong_shape = br#"{"version": 1, "body": {"sent": 1}}"#.to_vec();
        assert!(Wire::<Ping>::from_bytes(wrong_shape).0.is_err());
    }
}
