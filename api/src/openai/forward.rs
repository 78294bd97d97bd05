//! On a cluster node, a `/v1` request goes to the node that should serve it: this one
//! while it serves the model with room, else the peer the cluster's model placement
//! picks (it serves the model, with the emptiest queue). The peer gets the request over
//! HTTP as the caller sent it (its token too: the peer checks it against the same
//! store), marked with who forwarded it so that it is never forwarded again, and its
//! answer, streamed or not, is passed back as it comes. Every answer names the node
//! that gave it (for `/v1`, the node whose model did).

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header, request::Parts};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use troupe_node::{ModelPeer, ModelRole, Node};
use troupe_telemetry::{TRACEPARENT_HEADER, TraceParent};

use crate::body::read_bytes;
use crate::error::ApiError;

/// Set on a request one node hands to another, to the forwarding node's name.
pub const FORWARDED_BY: HeaderName = HeaderName::from_static("x-troupe-forwarded-by");
/// Set on every `/v1` answer, to the node whose model gave it.
pub const SERVED_BY: HeaderName = HeaderName::from_static("x-troupe-node");

/// What a request carries on to the peer: its credentials and what says how to read it.
const CARRIED: [HeaderName; 5] = [
    header::AUTHORIZATION,
    header::CONTENT_TYPE,
    header::ACCEPT,
    HeaderName::from_static("traceparent"),
    HeaderName::from_static("anthropic-version"),
];
/// What an answer carries back.
const CARRIED_BACK: [HeaderName; 4] = [
    header::CONTENT_TYPE,
    header::CACHE_CONTROL,
    header::RETRY_AFTER,
    SERVED_BY,
];

#[derive(Clone)]
pub struct Forwarding {
    node: Arc<Node>,
    client: reqwest::Client,
}

impl Forwarding {
    pub fn new(node: Arc<Node>) -> Forwarding {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            // Between two chunks of a stream: a generation that stalls this long is gone.
            .read_timeout(Duration::from_secs(
                node.settings().providers.timeout_secs.max(1),
            ))
            .build()
            // Invariant: a builder with only timeouts set builds (no TLS files to read).
            .expect("an HTTP client with timeouts builds");
        Forwarding { node, client }
    }
}

/// The model a `/v1` route needs; `None` for every other route.
fn role_of(method: &Method, path: &str) -> Option<ModelRole> {
    if method != Method::POST {
        return None;
    }
    match path {
        "/v1/chat/completions" | "/v1/messages" => Some(ModelRole::Generation),
        "/v1/embeddings" => Some(ModelRole::Embedding),
        _ => None,
    }
}

/// The `model` a request body names, if it is JSON and names one.
fn named_model(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Named {
        model: Option<String>,
    }
    serde_json::from_slice::<Named>(body).ok()?.model
}

/// Serves a `/v1` request here or hands it to the peer that should (see the module).
pub async fn to_the_model(
    State(forwarding): State<Forwarding>,
    request: Request,
    next: Next,
) -> Response {
    let node = forwarding.node.clone();
    let placed = node.settings().cluster.enabled && !request.headers().contains_key(FORWARDED_BY);
    let role = role_of(request.method(), request.uri().path());
    let Some(role) = role.filter(|_| placed) else {
        return served_here(&node, next.run(request).await);
    };
    // Read as a handler would, under the same body limit and with the same errors.
    let (parts, body) = request.into_parts();
    let body = match read_bytes(Request::from_parts(parts.clone(), body), &()).await {
        Ok(body) => body,
        Err(error) => return error.into_response(),
    };
    match node.model_peer(role, named_model(&body).as_deref()).await {
        Some(peer) => forwarding.forward(peer, parts, body).await,
        None => {
            let request = Request::from_parts(parts, Body::from(body));
            served_here(&node, next.run(request).await)
        }
    }
}

fn served_here(node: &Node, mut response: Response) -> Response {
    if let Ok(name) = HeaderValue::from_str(node.node_name()) {
        response.headers_mut().insert(SERVED_BY, name);
    }
    response
}

impl Forwarding {
    async fn forward(&self, peer: ModelPeer, parts: Parts, body: Bytes) -> Response {
        let path = parts.uri.path_and_query().map_or("/", |path| path.as_str());
        let mut request = self
            .client
            .post(format!("{}{path}", peer.api))
            .header(FORWARDED_BY, self.node.node_name())
            .body(body);
        // The peer's spans join this request's trace.
        if let Some(parent) = TraceParent::current() {
            request = request.header(TRACEPARENT_HEADER, parent.to_string());
        }
        for name in CARRIED {
            if let Some(value) = parts.headers.get(&name) {
                request = request.header(name, value);
            }
        }
        tracing::debug!(peer = %peer.node, path, "a model request handed to a peer");
        match request.send().await {
            Ok(answer) => passed_back(answer),
            Err(error) => ApiError::new(
                StatusCode::BAD_GATEWAY,
                "model_node_unreachable",
                format!(
                    "node `{}` serves the model but cannot be reached at {}: {error}; retry",
                    peer.node, peer.api
                ),
            )
            .into_response(),
        }
    }
}

/// The peer's answer as this node's: its status, the headers that say how to read it,
/// and its body as it streams in.
fn passed_back(answer: reqwest::Response) -> Response {
    let mut response = Response::builder().status(answer.status().as_u16());
    for name in CARRIED_BACK {
        if let Some(value) = answer.headers().get(&name) {
            response = response.header(name, value);
        }
    }
    response
        .body(Body::from_stream(answer.bytes_stream()))
        .unwrap_or_else(|error| {
            let message = format!("the model node's answer could not be passed on: {error}");
            ApiError::new(StatusCode::BAD_GATEWAY, "model_node_answer", message).into_response()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_model_routes_are_placed() {
        let post = Method::POST;
        let generation = Some(ModelRole::Generation);
        assert_eq!(role_of(&post, "/v1/chat/completions"), generation);
        assert_eq!(role_of(&post, "/v1/messages"), generation);
        assert_eq!(role_of(&post, "/v1/embeddings"), Some(ModelRole::Embedding));
        assert_eq!(role_of(&Method::GET, "/v1/models"), None);
        assert_eq!(role_of(&post, "/api/v1/complete"), None);
    }

    #[test]
    fn the_model_named_is_read_from_any_body_without_failing() {
        assert_eq!(
            named_model(br#"{"model": "m", "messages": []}"#),
            Some("m".into())
        );
        assert_eq!(named_model(br#"{"messages": []}"#), None);
        for hostile in [&b"not json"[..], b"", b"{\"model\": 7}", b"[1]", &[0xff; 9]] {
            assert_eq!(named_model(hostile), None);
        }
    }
}
