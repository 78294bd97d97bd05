//! `GET /api/v1/events[?run_id=...]`: a WebSocket that sends each appended run event as
//! a JSON text frame. A client that falls behind gets `{"lagged": n}` and can re-read
//! the log from `/api/v1/runs/{id}/events`; the engine never waits for it. A caller
//! only receives the events of runs in projects where it holds `workflows.view`.
//!
//! A stream of one run (`?run_id=`) reads the run's events from the store, in order,
//! so any node streams any run: this node's bus only says when to look (at once, for a
//! run this node runs), and every [`TAIL`] it looks anyway (for a run another node of
//! the cluster runs).
//!
//! The caller is checked again every [`RECHECK`]: a logout, a disabled account, a
//! revoked key or a removed membership ends the stream (close code 1008) or narrows it;
//! the access token's own expiry does not (it was valid when the stream opened). A
//! caller may hold at most [`MAX_SOCKETS_PER_CALLER`] streams at once.

use std::collections::HashMap;
use std::sync::Arc;

use std::sync::Mutex;
use std::time::Duration;

use axum::Extension;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;

use crate::guard::Access;
use troupe_node::Node;
use troupe_security::auth::permissions::Permission;
use troupe_store::RunId;

/// How often an open stream checks its caller again.
const RECHECK: Duration = Duration::from_secs(2);
/// How often a stream of one run looks in the store for events this node did not see.
const TAIL: Duration = Duration::from_millis(500);
/// Streams one caller (an account, or everyone on a node without accounts) may hold.
pub const MAX_SOCKETS_PER_CALLER: usize = 16;

/// The streams open per caller, shared by the node's routes.
#[derive(Default)]
pub struct OpenStreams(Mutex<HashMap<String, usize>>);

/// One open stream, counted until dropped.
struct StreamSlot {
    streams: Arc<OpenStreams>,
    caller: String,
}

impl OpenStreams {
    fn open(self: &Arc<Self>, caller: &str) -> Option<StreamSlot> {
        let mut open = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let count = open.entry(caller.to_owned()).or_default();
        if *count >= MAX_SOCKETS_PER_CALLER {
            return None;
        }
        *count += 1;
        Some(StreamSlot {
            streams: Arc::clone(self),
            caller: caller.to_owned(),
        })
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self
            .streams
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.caller) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.caller);
            }
        }
    }
}

/// The credential a stream was opened with, to check its caller again.
struct Credential {
    token: String,
    opened_at_secs: u64,
}

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
    Extension(streams): Extension<Arc<OpenStreams>>,
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
    let caller = access
        .0
        .as_ref()
        .map_or_else(|| "anonymous".to_owned(), |p| p.user.user_id.to_string());
    let Some(slot) = streams.open(&caller) else {
        return crate::error::ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_streams",
            format!("at most {MAX_SOCKETS_PER_CALLER} event streams per caller; close one first"),
        )
        .into_response();
    };
    let credential = access
        .0
        .as_ref()
        .and(crate::guard::access_token(
            &headers,
            &crate::guard::Cookies::of(&node),
        ))
        .map(|token| Credential {
            token: token.to_owned(),
            opened_at_secs: node.auth().now_secs(),
        });
    let events = node.subscribe();
    let tail = match &filter.run_id {
        Some(run_id) => Some(RunTail::start(&node, run_id.clone()).await),
        None => None,
    };
    let visibility = Visibility {
        node,
        access,
        known: HashMap::new(),
    };
    upgrade
        .max_message_size(64 * 1024)
        .on_upgrade(move |socket| async move {
            let _slot = slot;
            stream_events(socket, events, tail, visibility, credential).await;
        })
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

impl Visibility {
    /// The caller as it is now; `false` when it may no longer watch anything.
    async fn recheck(&mut self, credential: &Credential) -> bool {
        let checked = self
            .node
            .auth()
            .principal_as_of(&credential.token, credential.opened_at_secs)
            .await;
        match checked {
            Ok(principal) => {
                if self
                    .access
                    .0
                    .as_ref()
                    .is_none_or(|was| was.memberships != principal.memberships)
                {
                    self.known.clear();
                }
                self.access = Access(Some(principal));
                true
            }
            Err(_) => false,
        }
    }
}

/// A stream of one run: the next event to send, read from the store.
struct RunTail {
    run_id: RunId,
    next: u64,
}

impl RunTail {
    /// From the events appended after now.
    async fn start(node: &Node, run_id: RunId) -> RunTail {
        let next = node
            .store()
            .run_events(&run_id)
            .await
            .map_or(0, |events| events.len() as u64);
        RunTail { run_id, next }
    }

    /// The run's events from `next` on, as frames, in order.
    async fn catch_up(&mut self, visibility: &mut Visibility) -> Vec<String> {
        if !visibility.may_see(&self.run_id).await {
            return Vec::new();
        }
        let Ok(events) = visibility.node.store().run_events(&self.run_id).await else {
            return Vec::new();
        };
        let fresh: Vec<String> = events
            .iter()
            .filter(|event| event.seq >= self.next)
            .map(|event| serde_json::to_string(event).unwrap_or_default())
            .collect();
        self.next = self.next.max(events.len() as u64);
        fresh
    }
}

/// What the bus's next event means for this stream: frames to send, none, or the end.
async fn from_bus(
    received: Result<troupe_store::events::StoredEvent, RecvError>,
    tail: &mut Option<RunTail>,
    visibility: &mut Visibility,
) -> Option<Vec<String>> {
    match (received, tail) {
        (Err(RecvError::Closed), _) => None,
        (Ok(event), Some(tail)) if event.run_id == tail.run_id && event.seq >= tail.next => {
            Some(tail.catch_up(visibility).await)
        }
        (_, Some(_)) => Some(Vec::new()),
        (Ok(event), None) if visibility.may_see(&event.run_id).await => {
            Some(vec![serde_json::to_string(&event).unwrap_or_default()])
        }
        (Ok(_), None) => Some(Vec::new()),
        (Err(RecvError::Lagged(missed)), None) => Some(vec![format!("{{\"lagged\":{missed}}}")]),
    }
}

async fn stream_events(
    mut socket: WebSocket,
    mut events: tokio::sync::broadcast::Receiver<troupe_store::events::StoredEvent>,
    mut tail: Option<RunTail>,
    mut visibility: Visibility,
    credential: Option<Credential>,
) {
    let mut recheck = tokio::time::interval(RECHECK);
    recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut look = tokio::time::interval(TAIL);
    look.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let frames = tokio::select! {
            _ = recheck.tick() => match &credential {
                Some(credential) if !visibility.recheck(credential).await => {
                    let close = CloseFrame {
                        code: close_code::POLICY,
                        reason: "the caller's session or access ended".into(),
                    };
                    let _ = socket.send(Message::Close(Some(close))).await;
                    break;
                }
                _ => continue,
            },
            _ = look.tick() => match &mut tail {
                Some(tail) => tail.catch_up(&mut visibility).await,
                None => continue,
            },
            received = events.recv() => match from_bus(received, &mut tail, &mut visibility).await {
                Some(frames) => frames,
                None => break,
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => continue,
            },
        };
        for frame in frames {
            if socket.send(Message::Text(frame.into())).await.is_err() {
                return;
            }
        }
    }
}
