//! Placement of model requests: a request for a local model goes to a node that has it
//! loaded. Each node reports its models with its lease ([`ModelLoad`], by queue and
//! capacity, with its free memory and free GPU memory); [`route`] keeps a request here
//! while this node serves the model and has room, and otherwise picks the peer with the
//! emptiest queue (then the most free GPU memory, then the most free memory).
//! [`ClusterModels`] is how the provider chain's `local` link reaches a peer's model,
//! through that node's gateway; the `/v1` endpoints forward over HTTP to the peer's API
//! (the API crate's business).

use std::cmp::Ordering;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use troupe_inference::InferenceError;
use troupe_inference::providers::peers::{PeerAnswer, PeerAsk, PeerCall, PeerModels};

use crate::placement::{ClusterPlacement, gateway};
use crate::wire::{GatewayMsg, Wire};

/// A model a node serves, with the requests its workers hold and can hold.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServedModel {
    pub model: String,
    pub queue: usize,
    pub capacity: usize,
}

impl ServedModel {
    fn has_room(&self) -> bool {
        self.queue < self.capacity
    }

    fn fullness(&self) -> f64 {
        self.queue as f64 / self.capacity.max(1) as f64
    }
}

/// What a node's load report says of its models and memory.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelLoad {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<ServedModel>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embedding: Option<ServedModel>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub free_memory_bytes: Option<u64>,
    /// Free memory of the GPU its models run on, where they run on one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_free_bytes: Option<u64>,
}

/// Which of a node's models a request needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelRole {
    /// Chat and completions.
    Generation,
    Embedding,
}

impl ModelLoad {
    /// A node's model load from its load report; what it does not say is absent.
    pub fn of(report: &serde_json::Value) -> ModelLoad {
        serde_json::from_value(report.clone()).unwrap_or_default()
    }

    fn serving(&self, role: ModelRole) -> Option<&ServedModel> {
        match role {
            ModelRole::Generation => self.generation.as_ref(),
            ModelRole::Embedding => self.embedding.as_ref(),
        }
    }
}

/// Where a model request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelRoute {
    Here,
    Peer(String),
}

/// What a request asks for: a role, and the model it names when some node serves a
/// model of that name (any other name, `gpt-4o` say, takes whatever model serves the
/// role, as the `/v1` endpoints always have).
struct Wanted<'a> {
    role: ModelRole,
    name: Option<&'a str>,
}

impl Wanted<'_> {
    fn served_by<'l>(&self, load: &'l ModelLoad) -> Option<&'l ServedModel> {
        load.serving(self.role)
            .filter(|served| self.name.is_none_or(|name| served.model == name))
    }
}

/// Where a request for `role` (naming `model`) goes: here while this node serves it and
/// has room; else the best placed peer with room; else here if it serves the model at
/// all (its own queue answers), else the best placed peer even if full; else here
/// (which answers that no model is loaded).
pub fn route(
    role: ModelRole,
    model: Option<&str>,
    here: &ModelLoad,
    peers: &[(String, ModelLoad)],
) -> ModelRoute {
    let name = model.filter(|name| {
        let named = |load: &ModelLoad| load.serving(role).is_some_and(|m| m.model == *name);
        named(here) || peers.iter().any(|(_, load)| named(load))
    });
    let wanted = Wanted { role, name };
    let served_here = wanted.served_by(here);
    if served_here.is_some_and(ServedModel::has_room) {
        return ModelRoute::Here;
    }
    match best(&wanted, peers) {
        Some((peer, served)) if served.has_room() || served_here.is_none() => {
            ModelRoute::Peer(peer.to_string())
        }
        _ => ModelRoute::Here,
    }
}

/// The peer best placed to serve `role`, any model, or `None` when no peer serves it.
pub fn best_peer(role: ModelRole, peers: &[(String, ModelLoad)]) -> Option<&str> {
    best(&Wanted { role, name: None }, peers).map(|(peer, _)| peer)
}

fn best<'p>(
    wanted: &Wanted<'_>,
    peers: &'p [(String, ModelLoad)],
) -> Option<(&'p str, &'p ServedModel)> {
    peers
        .iter()
        .filter_map(|(peer, load)| wanted.served_by(load).map(|served| (peer, load, served)))
        .min_by(|(_, a_load, a), (_, b_load, b)| better(a_load, a, b_load, b))
        .map(|(peer, _, served)| (peer.as_str(), served))
}

/// `Less` when `a` is the better placed: room first, then the emptier queue, then more
/// free GPU memory, then more free memory.
fn better(a_load: &ModelLoad, a: &ServedModel, b_load: &ModelLoad, b: &ServedModel) -> Ordering {
    b.has_room()
        .cmp(&a.has_room())
        .then(a.fullness().total_cmp(&b.fullness()))
        .then(b_load.gpu_free_bytes.cmp(&a_load.gpu_free_bytes))
        .then(b_load.free_memory_bytes.cmp(&a_load.free_memory_bytes))
}

/// The other nodes' generation models, asked through their gateways: the provider
/// chain's way to a peer.
pub struct ClusterModels {
    pub placement: Arc<ClusterPlacement>,
    /// How long a peer may take to answer (`providers.timeout_secs`).
    pub timeout: Duration,
}

impl PeerModels for ClusterModels {
    fn complete(&self, ask: PeerAsk) -> Option<PeerCall> {
        let peers = self.placement.peer_models(true);
        let node = best_peer(ModelRole::Generation, &peers)?.to_string();
        let gateway = gateway(&node)?;
        let limit = u64::try_from(self.timeout.as_millis()).unwrap_or(u64::MAX);
        Some(Box::pin(async move {
            let answered = ractor::call_t!(gateway, GatewayMsg::Generate, limit, Wire::new(ask));
            let unreachable = |why: String| InferenceError::Provider {
                provider: format!("local@{node}"),
                reason: why,
            };
            match answered {
                Ok(Wire(Ok(Ok(answered)))) => Ok(PeerAnswer { node, answered }),
                Ok(Wire(Ok(Err(refusal)))) => Err(refusal.into_error(&node)),
                Ok(Wire(Err(why))) => Err(unreachable(why)),
                Err(error) => Err(unreachable(error.to_string())),
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn served(model: &str, queue: usize, capacity: usize) -> Option<ServedModel> {
        Some(ServedModel {
            model: model.into(),
            queue,
            capacity,
        })
    }

    fn generating(model: &str, queue: usize, capacity: usize) -> ModelLoad {
        ModelLoad {
            generation: served(model, queue, capacity),
            ..ModelLoad::default()
        }
    }

    fn peer(name: &str, load: ModelLoad) -> (String, ModelLoad) {
        (name.into(), load)
    }

    fn to(peer: &str) -> ModelRoute {
        ModelRoute::Peer(peer.into())
    }

    #[test]
    fn a_request_stays_here_while_this_node_serves_it_with_room() {
        let here = generating("small", 3, 4);
        let peers = [peer("b", generating("small", 0, 4))];
        assert_eq!(
            route(ModelRole::Generation, None, &here, &peers),
            ModelRoute::Here
        );
        // Any name no node serves takes whatever model serves the role.
        let asked = Some("gpt-4o");
        assert_eq!(
            route(ModelRole::Generation, asked, &here, &peers),
            ModelRoute::Here
        );
    }

    #[test]
    fn a_node_without_the_model_or_without_room_hands_the_request_on() {
        let peers = [
            peer("b", generating("small", 3, 4)),
            peer("c", generating("small", 1, 4)),
            peer("d", ModelLoad::default()),
        ];
        let none = ModelLoad::default();
        assert_eq!(route(ModelRole::Generation, None, &none, &peers), to("c"));
        let full = generating("small", 4, 4);
        assert_eq!(route(ModelRole::Generation, None, &full, &peers), to("c"));
        // No peer has room either: this node's own queue answers.
        let all_full = [peer("b", generating("small", 4, 4))];
        let route_full = route(ModelRole::Generation, None, &full, &all_full);
        assert_eq!(route_full, ModelRoute::Here);
        // ... unless it has no model: then the full peer answers for itself.
        assert_eq!(
            route(ModelRole::Generation, None, &none, &all_full),
            to("b")
        );
        // Nobody serves embeddings: here, which says so.
        assert_eq!(
            route(ModelRole::Embedding, None, &none, &peers),
            ModelRoute::Here
        );
    }

    #[test]
    fn a_model_named_by_a_node_goes_to_a_node_that_serves_it() {
        let here = generating("small", 0, 4);
        let peers = [
            peer("b", generating("big", 3, 4)),
            peer("c", generating("small", 0, 4)),
        ];
        let asked = Some("big");
        assert_eq!(route(ModelRole::Generation, asked, &here, &peers), to("b"));
        let embedder = ModelLoad {
            embedding: served("minilm", 0, 2),
            ..ModelLoad::default()
        };
        let peers = [peer("e", embedder)];
        let asked = Some("minilm");
        assert_eq!(route(ModelRole::Embedding, asked, &here, &peers), to("e"));
    }

    #[test]
    fn among_equal_queues_the_most_free_gpu_memory_then_memory_wins() {
        let with = |gpu: Option<u64>, memory: u64| ModelLoad {
            gpu_free_bytes: gpu,
            free_memory_bytes: Some(memory),
            ..generating("small", 1, 4)
        };
        let peers = [
            peer("cpu", with(None, 64 << 30)),
            peer("gpu-busy", with(Some(1 << 30), 8 << 30)),
            peer("gpu-free", with(Some(20 << 30), 8 << 30)),
        ];
        assert_eq!(best_peer(ModelRole::Generation, &peers), Some("gpu-free"));
        let peers = [
            peer("small-ram", with(None, 2 << 30)),
            peer("big-ram", with(None, 16 << 30)),
        ];
        assert_eq!(best_peer(ModelRole::Generation, &peers), Some("big-ram"));
        assert_eq!(best_peer(ModelRole::Embedding, &peers), None);
    }

    #[test]
    fn a_report_reads_what_it_says_and_ignores_the_rest() {
        let report = serde_json::json!({
            "free_slots": 3,
            "generation": {"model": "small", "queue": 1, "capacity": 4},
            "gpu_free_bytes": 1024,
        });
        let load = ModelLoad::of(&report);
        assert_eq!(load.generation, served("small", 1, 4));
        assert_eq!((load.gpu_free_bytes, load.embedding), (Some(1024), None));
        let garbage = serde_json::json!({"generation": "lots"});
        assert_eq!(ModelLoad::of(&garbage), ModelLoad::default());
    }
}
