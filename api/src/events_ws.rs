//! `GET /api/v1/events[?run_id=...]`: a WebSocket that sends each appended run event as
//! a JSON text frame. A client that falls behind gets `{"lagged": n}` and can re-read
//! the log from `/api/v1/runs/{id}/events`; the engine never waits for it. A caller
//! only receives the events of runs in projects where it holds `workflows.view`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;

use crate::guard::Access;
use troupe_node::Node;
use troupe_security::auth::permissions::Permission;
use troupe_store::RunId;

#[derive(Debug, Deserialize)]
pub struct EventFilter {
    pub run_id: Option<RunId>,
}

/// A browser page may open the socket only from this node's own origin or one listed in
/// `server.allowed_origins`: otherwise any site the user visits could read the events
/// with the user's credentials. Clients that send no `Origin` (programs) are not
/// browsers and pass (and are authenticated when `auth.required` is on).
fn origin_allowed(headers: &HeaderMap, allowed: &[String]) -> bool {
    headers.get(header::ORIGIN).is_none() || crate::guard::from_own_origin(headers, allowed)
}

pub async fn subscribe(
    State(node): State<Arc<Node>>,
    access: Access,
    Query(filter): Query<EventFilter>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    if !origin_allowed(&headers, &node.settings().server.allowed_origins) {
        return crate::error::ApiError::new(
            StatusCode::FORBIDDEN,
            "origin_not_allowed",
            "this origin may not open the event stream; add it to server.allowed_origins",
        )
        .into_response();
    }
    let events = node.subscribe();
    upgrade
        .max_message_size(64 * 1024)
        .on_upgrade(move |socket| stream_events(socket, events, filter, node, access))
}

/// Which runs the caller may watch, looked up once per run.
struct Visibility {
    node: Arc<Node>,
    access: Access,
    known: HashMap<RunId, bool>,
}

impl Visibility {
    async fn may_see(&mut self, run_id: &RunId) -> bool {
        if self.access.0.is_none() {
            return true;
        }
        if let Some(visible) = self.known.get(run_id) {
            return *visible;
        }
        let visible = match self.node.store().run(run_id).await {
            Ok(record) => self
                .access
                .require(Permission::WorkflowsView, &record.project, || {
                    troupe_store::StoreError::RunNotFound(run_id.clone())
                })
                .is_ok(),
            Err(_) => false,
        };
        self.known.insert(run_id.clone(), visible);
        visible
    }
}

async fn stream_events(
    mut socket: WebSocket,
    mut events: tokio::sync::broadcast::Receiver<troupe_store::events::StoredEvent>,
    filter: EventFilter,
    node: Arc<Node>,
    access: Access,
) {
    let mut visibility = Visibility {
        node,
        access,
        known: HashMap::new(),
    };
    loop {
        let frame = tokio::select! {
            received = events.recv() => match received {
                Ok(event) if filter.run_id.as_ref().is_none_or(|run| *run == event.run_id)
                    && visibility.may_see(&event.run_id).await => {
                    serde_json::to_string(&event).unwrap_or_default()
                }
                Ok(_) => continue,
                Err(RecvError::Lagged(missed)) => format!("{{\"lagged\":{missed}}}"),
                Err(RecvError::Closed) => break,
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => continue,
            },
        };
        if socket.send(Message::Text(frame.into())).await.is_err() {
            break;
        }
    }
}
