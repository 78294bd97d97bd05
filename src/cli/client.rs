//! A client of a running node's API, using the same wire types the server does.

use anyhow::{Context, anyhow};
use reqwest::StatusCode;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::InputError;

pub struct Client {
    base: String,
    http: reqwest::Client,
    token: Option<String>,
}

impl Client {
    pub fn new(server: &str) -> Self {
        Self {
            base: server.trim_end_matches('/').to_string(),
            http: reqwest::Client::new(),
            token: None,
        }
    }

    /// The node at `--server`, or at this machine's configured address.
    /// The node at `--server`, or at this machine's configured address, with the
    /// `client.token` the settings hold.
    pub fn for_settings(server: Option<&str>, settings: &troupe_config::Settings) -> Self {
        let mut client = match server {
            Some(server) => Client::new(server),
            None => Client::new(&format!("http://{}", settings.server.address)),
        };
        client.token = settings
            .client
            .token
            .clone()
            .filter(|token| !token.is_empty());
        client
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let request = self.http.request(method, self.url(path));
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        let response = self
            .request(reqwest::Method::GET, path)
            .send()
            .await
            .with_context(|| self.unreachable())?;
        decode(response).await
    }

    pub async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> anyhow::Result<T> {
        let response = self
            .request(reqwest::Method::POST, path)
            .json(body)
            .send()
            .await
            .with_context(|| self.unreachable())?;
        decode(response).await
    }

    pub async fn post_text<T: DeserializeOwned>(
        &self,
        path: &str,
        text: String,
    ) -> anyhow::Result<T> {
        let response = self
            .request(reqwest::Method::POST, path)
            .header("content-type", "application/yaml")
            .body(text)
            .send()
            .await
            .with_context(|| self.unreachable())?;
        decode(response).await
    }

    pub async fn delete(&self, path: &str) -> anyhow::Result<()> {
        let response = self
            .request(reqwest::Method::DELETE, path)
            .send()
            .await
            .with_context(|| self.unreachable())?;
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
