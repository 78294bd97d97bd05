//! The one in-process harness the API's tests share: a node on `mem://` with its router,
//! throw-away passwords hashed cheaply, and requests sent through the router as a client
//! would send them.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::request::Builder;
use axum::http::{HeaderMap, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;
use troupe_config::Settings;
use troupe_node::{Node, NodeBuilder};

use crate::router;

/// A node without local models; `accounts` turns `auth.required` on; `adjust` changes
/// anything else before it starts.
pub(crate) async fn start(
    accounts: bool,
    adjust: impl FnOnce(&mut Settings),
) -> (Router, Arc<Node>) {
    let mut settings = Settings::defaults_with_store("mem://");
    settings.models.serve = false;
    settings.auth.required = accounts;
    settings.auth.hash_throwaway_passwords();
    adjust(&mut settings);
    let node = Arc::new(NodeBuilder::new(settings).start().await.unwrap());
    (router(node.clone()), node)
}

/// Serves `app` over real TCP on a free loopback port (for WebSocket clients); its
/// address.
pub(crate) async fn serve(app: Router) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    address
}

/// What came back: the status, the headers, and the body as JSON (`Null` when empty, a
/// string when it is not JSON).
pub(crate) struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

/// Sends `request` with `body` through `app`.
pub(crate) async fn send(app: &Router, request: Builder, body: impl Into<Body>) -> Reply {
    let response = app
        .clone()
        .oneshot(request.body(body.into()).unwrap())
        .await
        .unwrap();
    let (status, headers) = (response.status(), response.headers().clone());
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    Reply {
        status,
        headers,
        body,
    }
}

/// `value` as a request body: none for `Null`, else its JSON text.
pub(crate) fn json_body(value: &Value) -> Body {
    if value.is_null() {
        Body::empty()
    } else {
        Body::from(value.to_string())
    }
}
