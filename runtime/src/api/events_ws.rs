//! `GET /api/v1/events[?run_id=...]`: a WebSocket that sends each appended run event as
//! a JSON text frame. A client that falls behind gets `{"lagged": n}` and can re-read
//! the log from `/api/v1/runs/{id}/events`; the engine never waits for it.

use std::sync::Arc;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::response::Response;
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;

use crate::node::Node;

#[derive(Debug, Deserialize)]
pub struct EventFilter {
    pub run_id: Option<String>,
}

pub async fn subscribe(
    State(node): State<Arc<Node>>,
    Query(filter): Query<EventFilter>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let events = node.subscribe();
    upgrade
        .max_message_size(64 * 1024)
        .on_upgrade(move |socket| stream_events(socket, events, filter))
}

async fn stream_events(
    mut socket: WebSocket,
    mut events: tokio::sync::broadcast::Receiver<crate::engine::events::StoredEvent>,
    filter: EventFilter,
) {
    loop {
        let frame = tokio::select! {
            received = events.recv() => match received {
                Ok(event) if filter.run_id.as_ref().is_none_or(|run| *run == event.run_id) => {
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
