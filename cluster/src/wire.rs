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
use troupe_engine::EngineError;
use troupe_engine::command::RunCommand;
use troupe_engine::outcome::AttemptOutcome;
use troupe_engine::placement::RemoteAttempt;
use troupe_inference::InferenceError;
use troupe_inference::providers::peers::{ModelAnswer, PeerAsk};
use troupe_store::RunId;

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
    /// A command for a run this node owns, handed on by the node that received it.
    #[rpc]
    Command(Wire<RunCommand>, RpcReplyPort<Wire<CommandAnswer>>),
    /// A completion for this node's generation model, from a node whose own cannot
    /// answer.
    #[rpc]
    Generate(Wire<PeerAsk>, RpcReplyPort<Wire<GenerateAnswer>>),
}

/// A local model's answer, or why it gave none.
pub type GenerateAnswer = Result<ModelAnswer, ModelRefusal>;

/// Why a node's model did not answer a peer's ask, in the terms the asking chain acts on
/// (a busy model or an overlong prompt stays local unless the request says otherwise).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelRefusal {
    NoModel,
    Overloaded {
        retry_after_ms: u64,
    },
    Restarting,
    PromptTooLong {
        prompt_tokens: usize,
        context_tokens: usize,
    },
    InvalidRequest(String),
    Failed(String),
}

impl ModelRefusal {
    pub fn from_error(error: InferenceError) -> ModelRefusal {
        match error {
            InferenceError::NoWorkers { .. } | InferenceError::ModelMissing { .. } => {
                ModelRefusal::NoModel
            }
            InferenceError::Overloaded { retry_after_ms } => {
                ModelRefusal::Overloaded { retry_after_ms }
            }
            InferenceError::WorkerStopped => ModelRefusal::Restarting,
            InferenceError::PromptTooLong {
                prompt_tokens,
                context_tokens,
            } => ModelRefusal::PromptTooLong {
                prompt_tokens,
                context_tokens,
            },
            InferenceError::InvalidRequest(why) => ModelRefusal::InvalidRequest(why),
            other => ModelRefusal::Failed(other.to_string()),
        }
    }

    /// The error the asking node's chain sees, for a refusal by `node`.
    pub fn into_error(self, node: &str) -> InferenceError {
        match self {
            ModelRefusal::NoModel => InferenceError::NoWorkers { kind: "generation" },
            ModelRefusal::Overloaded { retry_after_ms } => {
                InferenceError::Overloaded { retry_after_ms }
            }
            ModelRefusal::Restarting => InferenceError::WorkerStopped,
            ModelRefusal::PromptTooLong {
                prompt_tokens,
                context_tokens,
            } => InferenceError::PromptTooLong {
                prompt_tokens,
                context_tokens,
            },
            ModelRefusal::InvalidRequest(why) => InferenceError::InvalidRequest(why),
            ModelRefusal::Failed(why) => InferenceError::Provider {
                provider: format!("local@{node}"),
                reason: why,
            },
        }
    }
}

/// The owner's answer to a command: done, or why not, in the terms the API answers in.
pub type CommandAnswer = Result<(), CommandRefusal>;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommandRefusal {
    RunFinished {
        status: String,
    },
    NotWaitingForApproval {
        task: String,
        status: String,
    },
    ApprovalRefused(String),
    Restarting(String),
    /// Anything else, by its text.
    Failed(String),
}

impl CommandRefusal {
    pub fn from_error(error: EngineError) -> CommandRefusal {
        match error {
            EngineError::RunFinished { status, .. } => CommandRefusal::RunFinished { status },
            EngineError::NotWaitingForApproval { task, status, .. } => {
                CommandRefusal::NotWaitingForApproval {
                    task: task.to_string(),
                    status,
                }
            }
            EngineError::ApprovalRefused(why) => CommandRefusal::ApprovalRefused(why),
            EngineError::Restarting { what } => CommandRefusal::Restarting(what),
            other => CommandRefusal::Failed(other.to_string()),
        }
    }

    /// The error the forwarding node answers with, for the command on `run`.
    pub fn into_error(self, run: &RunId, owner: &str) -> EngineError {
        match self {
            CommandRefusal::RunFinished { status } => EngineError::RunFinished {
                run: run.clone(),
                status,
            },
            CommandRefusal::NotWaitingForApproval { task, status } => {
                EngineError::NotWaitingForApproval {
                    run: run.clone(),
                    task: task.into(),
                    status,
                }
            }
            CommandRefusal::ApprovalRefused(why) => EngineError::ApprovalRefused(why),
            CommandRefusal::Restarting(what) => EngineError::Restarting { what },
            CommandRefusal::Failed(why) => {
                EngineError::Actor(format!("node `{owner}`, which runs the run: {why}"))
            }
        }
    }
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

    #[test]
    fn an_owner_s_refusal_comes_back_as_the_same_error() {
        let run: RunId = "r1".into();
        let errors = [
            EngineError::RunFinished {
                run: run.clone(),
                status: "completed".into(),
            },
            EngineError::NotWaitingForApproval {
                run: run.clone(),
                task: "sign_off".into(),
                status: "completed".into(),
            },
            EngineError::ApprovalRefused("digest differs".into()),
            EngineError::Restarting {
                what: "the run manager".into(),
            },
        ];
        for error in errors {
            let text = error.to_string();
            let sent = Wire::new(Err::<(), _>(CommandRefusal::from_error(error)));
            let Wire(Ok(answer)) = Wire::<CommandAnswer>::from_bytes(sent.into_bytes()) else {
                panic!("undecodable");
            };
            let back = answer.unwrap_err().into_error(&run, "b");
            assert_eq!(back.to_string(), text);
        }
        let other = CommandRefusal::from_error(EngineError::InvalidRequest("no".into()));
        assert_eq!(
            other.into_error(&run, "b").to_string(),
            "actor system: node `b`, which runs the run: no"
        );
    }

    #[test]
    fn a_model_s_refusal_comes_back_as_the_error_the_chain_acts_on() {
        let errors = [
            InferenceError::Overloaded {
                retry_after_ms: 250,
            },
            InferenceError::PromptTooLong {
                prompt_tokens: 9000,
                context_tokens: 8192,
            },
            InferenceError::NoWorkers { kind: "generation" },
            InferenceError::WorkerStopped,
            InferenceError::InvalidRequest("no messages".into()),
        ];
        for error in errors {
            let text = error.to_string();
            let sent = Wire::new(Err::<ModelAnswer, _>(ModelRefusal::from_error(error)));
            let Wire(Ok(Err(refusal))) = Wire::<GenerateAnswer>::from_bytes(sent.into_bytes())
            else {
                panic!("undecodable");
            };
            assert_eq!(refusal.into_error("b").to_string(), text);
        }
        let other = ModelRefusal::from_error(InferenceError::Model("NaN in logits".into()));
        assert_eq!(
            other.into_error("b").to_string(),
            "provider `local@b`: model computation failed: NaN in logits"
        );
    }

    proptest::proptest! {
        /// Whatever a peer sends, reading it ends in a value or an error, never a panic.
        #[test]
        fn any_bytes_read_as_a_payload_or_an_error(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let _ = Wire::<Box<RemoteAttempt>>::from_bytes(bytes.clone());
            let _ = Wire::<RunCommand>::from_bytes(bytes.clone());
            let _ = Wire::<AttemptReply>::from_bytes(bytes.clone());
            let _ = Wire::<PeerAsk>::from_bytes(bytes.clone());
            let _ = Wire::<GenerateAnswer>::from_bytes(bytes);
        }

        #[test]
        fn a_well_formed_envelope_with_any_body_is_read_or_refused(body in "\\PC{0,64}") {
            let quoted = serde_json::to_string(&body).unwrap();
            let bytes = format!(r#"{{"version": 1, "body": {quoted}}}"#).into_bytes();
            let Wire(read) = Wire::<String>::from_bytes(bytes);
            proptest::prop_assert_eq!(read, Ok(body));
        }
    }
}
