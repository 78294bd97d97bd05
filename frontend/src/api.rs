//! The node's HTTP API and event WebSocket, from the browser. Requests go to the page's own
//! origin with its HttpOnly session cookie; an answer of 401 renews the session once
//! (`/api/v1/auth/browser/refresh`, one renewal at a time however many requests found
//! their access expired) and sends the browser to the sign-in page only when the renewal
//! is refused for good (401): a 429 or a fault of the node leaves the session alone.
//!
//! The pages fetch only in the browser (`LocalResource`), so the server renders each page's
//! frame and the browser fills it in: every byte of data passes the API's route guard.

use serde::Serialize;
use serde::de::DeserializeOwned;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum UiError {
    /// The API's own error body: `{"error": {"code", "message"}}`.
    #[error("{message}")]
    Api {
        status: u16,
        code: String,
        message: String,
    },
    #[error("the node could not be reached: {0}")]
    Network(String),
    #[error("the node answered something this page cannot read: {0}")]
    Decode(String),
    #[error("this runs in the browser only")]
    NotInBrowser,
}

#[derive(Debug, Clone, Copy)]
pub enum Method {
    Get,
    Post,
    Delete,
}

pub async fn get<T: DeserializeOwned>(path: &str) -> Result<T, UiError> {
    decode(send(Method::Get, path, None).await?)
}

pub async fn post<T: DeserializeOwned>(path: &str, body: &impl Serialize) -> Result<T, UiError> {
    let body = serde_json::to_string(body).map_err(|error| UiError::Decode(error.to_string()))?;
    decode(send(Method::Post, path, Some(body)).await?)
}

/// A request whose answer has no body worth reading (204).
pub async fn act(
    method: Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> Result<(), UiError> {
    send(method, path, body.map(|body| body.to_string()))
        .await
        .map(|_| ())
}

fn decode<T: DeserializeOwned>(text: String) -> Result<T, UiError> {
    serde_json::from_str(&text).map_err(|error| UiError::Decode(error.to_string()))
}

/// The API's error body as a [`UiError`].
fn api_error(status: u16, text: &str) -> UiError {
    let body: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
    let error = &body["error"];
    UiError::Api {
        status,
        code: error["code"].as_str().unwrap_or("error").to_owned(),
        message: error["message"]
            .as_str()
            .map(String::from)
            .unwrap_or_else(|| format!("the node answered {status}")),
    }
}

const BROWSER_AUTH: &str = "/api/v1/auth/browser/";

/// Sends one request; on 401 renews the session once and repeats it.
pub async fn send(method: Method, path: &str, body: Option<String>) -> Result<String, UiError> {
    let (status, text) = transport::send(method, path, body.clone()).await?;
    if status == 401 && !path.starts_with(BROWSER_AUTH) {
        match transport::renew_session().await? {
            200 => {
                let (status, text) = transport::send(method, path, body).await?;
                return answer(status, text);
            }
            401 => transport::go_to("/login"),
            _ => {}
        }
    }
    answer(status, text)
}

fn answer(status: u16, text: String) -> Result<String, UiError> {
    if (200..300).contains(&status) {
        Ok(text)
    } else {
        Err(api_error(status, &text))
    }
}

/// Sends the browser to `path` (a full page load).
pub fn go_to(path: &str) {
    transport::go_to(path);
}

/// Opens the event WebSocket (`run_id`: only that run's events) and calls `on_event` with
/// each event as JSON until the page goes away. A dropped socket is reopened after a pause.
/// Call it from an effect, whose owner ends the watch when the page is left.
pub fn watch_events(run_id: Option<String>, on_event: impl Fn(serde_json::Value) + 'static) {
    let stopped = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop = stopped.clone();
    leptos::prelude::on_cleanup(move || stop.store(true, std::sync::atomic::Ordering::Relaxed));
    transport::watch_events(run_id, stopped, on_event);
}

#[cfg(feature = "hydrate")]
mod transport {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use std::cell::RefCell;

    use futures::StreamExt;
    use futures::future::{FutureExt, LocalBoxFuture, Shared};
    use gloo_net::http::Request;
    use gloo_net::websocket::Message;
    use gloo_net::websocket::futures::WebSocket;

    use super::{Method, UiError};

    pub async fn send(
        method: Method,
        path: &str,
        body: Option<String>,
    ) -> Result<(u16, String), UiError> {
        let builder = match method {
            Method::Get => Request::get(path),
            Method::Post => Request::post(path),
            Method::Delete => Request::delete(path),
        };
        let network = |error: gloo_net::Error| UiError::Network(error.to_string());
        let request = match body {
            Some(body) => builder
                .header("content-type", "application/json")
                .body(body)
                .map_err(network)?,
            None => builder.build().map_err(network)?,
        };
        let response = request.send().await.map_err(network)?;
        let text = response.text().await.map_err(network)?;
        Ok((response.status(), text))
    }

    /// A renewal's answer (its status), awaited by every request that met a 401.
    type Renewal = Shared<LocalBoxFuture<'static, Result<u16, UiError>>>;

    thread_local! {
        /// The renewal in flight.
        static RENEWAL: RefCell<Option<Renewal>> = const { RefCell::new(None) };
    }

    /// The status of one `POST /api/v1/auth/browser/refresh`, shared by every caller
    /// until it answers: two refreshes with one cookie would look like a stolen token.
    pub async fn renew_session() -> Result<u16, UiError> {
        let renewal = RENEWAL.with(|slot| {
            slot.borrow_mut()
                .get_or_insert_with(|| {
                    async {
                        let renewed = send(Method::Post, "/api/v1/auth/browser/refresh", None)
                            .await
                            .map(|(status, _)| status);
                        RENEWAL.with(|slot| slot.borrow_mut().take());
                        renewed
                    }
                    .boxed_local()
                    .shared()
                })
                .clone()
        });
        renewal.await
    }

    pub fn go_to(path: &str) {
        if let Some(window) = web_sys::window() {
            let _ = window.location().set_href(path);
        }
    }

    fn socket_url(run_id: Option<&str>) -> Option<String> {
        let location = web_sys::window()?.location();
        let scheme = if location.protocol().ok()? == "https:" {
            "wss"
        } else {
            "ws"
        };
        let host = location.host().ok()?;
        let filter = run_id.map(|id| format!("?run_id={id}")).unwrap_or_default();
        Some(format!("{scheme}://{host}/api/v1/events{filter}"))
    }

    pub fn watch_events(
        run_id: Option<String>,
        stopped: Arc<AtomicBool>,
        on_event: impl Fn(serde_json::Value) + 'static,
    ) {
        let is_stopped = move || stopped.load(Ordering::Relaxed);
        leptos::task::spawn_local(async move {
            while !is_stopped() {
                let Some(url) = socket_url(run_id.as_deref()) else {
                    return;
                };
                if let Ok(mut socket) = WebSocket::open(&url) {
                    while let Some(Ok(Message::Text(text))) = socket.next().await {
                        if is_stopped() {
                            return;
                        }
                        if let Ok(event) = serde_json::from_str(&text) {
                            on_event(event);
                        }
                    }
                }
                sleep_ms(2000).await;
            }
        });
    }

    /// A pause without another dependency: a promise resolved by `setTimeout`.
    async fn sleep_ms(ms: i32) {
        let promise = js_sys::Promise::new(&mut |resolve, _| {
            if let Some(window) = web_sys::window() {
                let _ = window.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms);
            }
        });
        let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
    }
}

#[cfg(not(feature = "hydrate"))]
mod transport {
    use super::{Method, UiError};

    pub async fn send(_: Method, _: &str, _: Option<String>) -> Result<(u16, String), UiError> {
        Err(UiError::NotInBrowser)
    }

    pub async fn renew_session() -> Result<u16, UiError> {
        Err(UiError::NotInBrowser)
    }

    pub fn go_to(_: &str) {}

    pub fn watch_events(
        _: Option<String>,
        _: std::sync::Arc<std::sync::atomic::AtomicBool>,
        _: impl Fn(serde_json::Value) + 'static,
    ) {
    }
}
