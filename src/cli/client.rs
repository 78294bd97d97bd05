//! A client of a running node's API, using the same wire types the server does.

use anyhow::{Context, anyhow};
use reqwest::StatusCode;
use serde::Serialize;
use serde::de::DeserializeOwned;

use std::path::PathBuf;

use super::InputError;
use super::credentials::{self, Stored};

pub struct Client {
    base: String,
    http: reqwest::Client,
    /// `client.token` from the settings, else the session `troupe login` stored.
    token: std::sync::Mutex<Option<String>>,
    /// Where a stored session came from, so an expired one can be refreshed and saved.
    stored: Option<(PathBuf, Stored)>,
}

/// What a request carries.
enum Body<'a> {
    Empty,
    Json(serde_json::Value),
    Yaml(&'a str),
}

impl Client {
    pub fn new(server: &str) -> Self {
        Self {
            base: server.trim_end_matches('/').to_string(),
            http: reqwest::Client::new(),
            token: std::sync::Mutex::new(None),
            stored: None,
        }
    }

    /// The URL of the node at `--server`, or at this machine's configured address.
    pub fn base_for(server: Option<&str>, settings: &troupe_config::Settings) -> String {
        match server {
            Some(server) => server.trim_end_matches('/').to_string(),
            None => format!("http://{}", settings.server.address),
        }
    }

    /// A client that sends `token`.
    pub fn with_token(server: &str, token: &str) -> Self {
        let client = Client::new(server);
        if let Ok(mut slot) = client.token.lock() {
            *slot = Some(token.to_string());
        }
        client
    }

    /// The node at `--server`, or at this machine's configured address, with the
    /// `client.token` the settings hold, else the session `troupe login` stored for it.
    pub fn for_settings(server: Option<&str>, settings: &troupe_config::Settings) -> Self {
        let mut client = Client::new(&Client::base_for(server, settings));
        let configured = settings
            .client
            .token
            .clone()
            .filter(|token| !token.is_empty());
        if configured.is_some() {
            client.token = std::sync::Mutex::new(configured);
            return client;
        }
        let path = credentials::path(settings);
        if let Some(session) = credentials::load(&path)
            .ok()
            .and_then(|mut all| all.remove(&client.base))
        {
            client.token = std::sync::Mutex::new(Some(session.access_token.clone()));
            client.stored = Some((path, session));
        }
        client
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    fn current_token(&self) -> Option<String> {
        self.token.lock().ok().and_then(|token| token.clone())
    }

    async fn send_once(
        &self,
        method: &reqwest::Method,
        path: &str,
        body: &Body<'_>,
    ) -> anyhow::Result<reqwest::Response> {
        let mut request = self.http.request(method.clone(), self.url(path));
        if let Some(token) = self.current_token() {
            request = request.bearer_auth(token);
        }
        request = match body {
            Body::Empty => request,
            Body::Json(value) => request.json(value),
            Body::Yaml(text) => request
                .header("content-type", "application/yaml")
                .body(text.to_string()),
        };
        request.send().await.with_context(|| self.unreachable())
    }

    /// Sends, and when a stored session's access token was refused, refreshes it once
    /// (saving the new pair) and sends again.
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Body<'_>,
    ) -> anyhow::Result<reqwest::Response> {
        let response = self.send_once(&method, path, &body).await?;
        let Some((file, session)) = &self.stored else {
            return Ok(response);
        };
        if response.status() != StatusCode::UNAUTHORIZED {
            return Ok(response);
        }
        let refreshed = self
            .http
            .post(self.url("/api/v1/auth/refresh"))
            .json(&serde_json::json!({"refresh_token": session.refresh_token}))
            .send()
            .await
            .with_context(|| self.unreachable())?;
        if !refreshed.status().is_success() {
            return Err(InputError(format!(
                "your session on {} has ended: run `troupe login --server {}` again",
                self.base, self.base
            ))
            .into());
        }
        let pair: serde_json::Value = refreshed.json().await.context("reading the refresh")?;
        let (Some(access), Some(refresh)) = (
            pair["access_token"].as_str(),
            pair["refresh_token"].as_str(),
        ) else {
            return Err(anyhow!("unexpected refresh answer: {pair}"));
        };
        credentials::save(
            file,
            &self.base,
            Some(Stored {
                email: session.email.clone(),
                access_token: access.into(),
                refresh_token: refresh.into(),
            }),
        )?;
        if let Ok(mut token) = self.token.lock() {
            *token = Some(access.into());
        }
        self.send_once(&method, path, &body).await
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        decode(self.send(reqwest::Method::GET, path, Body::Empty).await?).await
    }

    pub async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> anyhow::Result<T> {
        let body = Body::Json(serde_json::to_value(body)?);
        decode(self.send(reqwest::Method::POST, path, body).await?).await
    }

    pub async fn put<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> anyhow::Result<T> {
        let body = Body::Json(serde_json::to_value(body)?);
        decode(self.send(reqwest::Method::PUT, path, body).await?).await
    }

    pub async fn post_text<T: DeserializeOwned>(
        &self,
        path: &str,
        text: String,
    ) -> anyhow::Result<T> {
        decode(
            self.send(reqwest::Method::POST, path, Body::Yaml(&text))
                .await?,
        )
        .await
    }

    pub async fn delete(&self, path: &str) -> anyhow::Result<()> {
        let response = self
            .send(reqwest::Method::DELETE, path, Body::Empty)
            .await?;
        decode::<serde_json::Value>(response).await.map(drop)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn unreachable(&self) -> String {
        format!(
            "cannot reach a Troupe node at {} (start one with `troupe up`, or pass --server URL)",
            self.base
        )
    }
}

/// `text` percent-encoded for a query string or a path segment.
pub fn encode(text: &str) -> String {
    // A constant, valid URL: parsing it cannot fail.
    let mut url = reqwest::Url::parse("http://localhost/").expect("a valid URL");
    url.query_pairs_mut().append_pair("v", text);
    url.query()
        .unwrap_or("v=")
        .trim_start_matches("v=")
        .to_string()
}

/// Decodes a success body, or turns the API's JSON error into an error: client mistakes
/// (4xx) become `InputError` so the CLI exits 2.
async fn decode<T: DeserializeOwned>(response: reqwest::Response) -> anyhow::Result<T> {
    let status = response.status();
    let text = response.text().await.context("reading the response")?;
    if status.is_success() {
        let text = if text.is_empty() {
            "null"
        } else {
            text.as_str()
        };
        return serde_json::from_str(text).with_context(|| format!("unexpected response: {text}"));
    }
    let message = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|body| body["error"]["message"].as_str().map(str::to_string))
        .unwrap_or(text);
    if status.is_client_error() && status != StatusCode::TOO_MANY_REQUESTS {
        Err(InputError(message).into())
    } else {
        Err(anyhow!("the server answered {status}: {message}"))
    }
}
