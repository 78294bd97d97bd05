//! Where a request for a local model is best served: here, or on the peer whose load
//! report shows it serves the model with the emptiest queue (`troupe_cluster::models`).

use troupe_cluster::models::{self, ModelRole, ModelRoute};

use super::Node;

/// A peer that serves a model request better than this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelPeer {
    pub node: String,
    /// Where its API listens (`http://host:port`).
    pub api: String,
}

impl Node {
    /// The peer a request for `role`'s model (named `model`) should go to, or `None` to
    /// serve it here: always here on a node alone.
    pub async fn model_peer(&self, role: ModelRole, model: Option<&str>) -> Option<ModelPeer> {
        let cluster = self.cluster.as_ref()?;
        let here = crate::load::served_models(self.inference.as_ref()).await;
        let peers = cluster.peer_models(false);
        match models::route(role, model, &here, &peers) {
            ModelRoute::Here => None,
            ModelRoute::Peer(node) => {
                let api = cluster.api_address(&node)?;
                Some(ModelPeer { node, api })
            }
        }
    }
}
