//! Clients for paid providers: any OpenAI-compatible `/chat/completions` endpoint and
//! Anthropic's `/v1/messages`. Both return the text and the provider's own token counts.

use std::time::Duration;

use serde_json::{Value, json};
use troupe_config::ProviderEntry;

use crate::chat::ChatMessage;
use crate::errors::InferenceError;
use crate::providers::ProviderAnswer;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    OpenAi,
    Anthropic,
}

pub struct RemoteProvider {
    pub protocol: Protocol,
    pub entry: ProviderEntry,
    /// The key opened from the secret `entry.api_key_secret` names, when it names one.
    sealed_key: Option<String>,
    client: reqwest::Client,
}

impl RemoteProvider {
    pub fn new(
        protocol: Protocol,
        entry: ProviderEntry,
        sealed_key: Option<String>,
        timeout: Duration,
    ) -> Self {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Self {
            protocol,
            entry,
            sealed_key,
            client,
        }
    }

    fn failure(&self, reason: impl Into<String>) -> InferenceError {
        InferenceError::Provider {
            provider: self.entry.name.clone(),
            reason: reason.into(),
        }
    }

    /// The key from the environment variable the settings name, else the sealed one;
    /// none when neither is named (a local server that needs no key).
    fn key(&self) -> Result<Option<String>, InferenceError> {
        let from_env = Some(&self.entry.api_key_env)
            .filter(|name| !name.is_empty())
            .and_then(|name| std::env::var(name).ok())
            .filter(|key| !key.is_empty());
        if let Some(key) = from_env.or_else(|| self.sealed_key.clone()) {
            return Ok(Some(key));
        }
        match (
            self.entry.api_key_env.as_str(),
            self.entry.api_key_secret.as_str(),
        ) {
            ("", "") => Ok(None),
            (variable, "") => {
                Err(self.failure(format!("its API key is not set: export {variable}")))
            }
            (_, secret) => Err(self.failure(format!(
                "its API key is not stored: troupe secrets set {secret}"
            ))),
        }
    }

    pub async fn complete(
        &self,
        messages: &[ChatMessage],
        max_tokens: usize,
        temperature: f64,
    ) -> Result<ProviderAnswer, InferenceError> {
        let key = self.key()?;
        let base = self.entry.base_url.trim_end_matches('/');
        let request = match self.protocol {
            Protocol::OpenAi => {
                let body = json!({
                    "model": self.entry.model,
                    "messages": messages.iter().map(|m| json!({"role": m.role, "content": m.content})).collect::<Vec<_>>(),
                    "max_tokens": max_tokens,
                    "temperature": temperature,
                });
                let request = self
                    .client
                    .post(format!("{base}/chat/completions"))
                    .json(&body);
                match key {
                    Some(key) => request.bearer_auth(key),
                    None => request,
                }
            }
            Protocol::Anthropic => {
                let system: Vec<&str> = messages
                    .iter()
                    .filter(|m| m.role == "system")
                    .map(|m| m.content.as_str())
                    .collect();
                let turns: Vec<Value> = messages
                    .iter()
                    .filter(|m| m.role != "system")
                    .map(|m| json!({"role": m.role, "content": m.content}))
                    .collect();
                let mut body = json!({
                    "model": self.entry.model,
                    "max_tokens": max_tokens,
                    "temperature": temperature.min(1.0),
                    "messages": turns,
                });
                if !system.is_empty() {
                    body["system"] = json!(system.join("\n\n"));
                }
                let request = self
                    .client
                    .post(format!("{base}/v1/messages"))
                    .header("anthropic-version", "2023-06-01")
                    .json(&body);
                match key {
                    Some(key) => request.header("x-api-key", key),
                    None => request,
                }
            }
        };
        let response = request
            .send()
            .await
            .map_err(|error| self.failure(format!("request failed: {error}")))?;
        let status = response.status();
        let body: Value = response.json().await.map_err(|error| {
            self.failure(format!(
                "answered {status} with a body that is not JSON: {error}"
            ))
        })?;
        if !status.is_success() {
            let message = body["error"]["message"].as_str().unwrap_or("no message");
            return Err(self.failure(format!("answered {status}: {message}")));
        }
        self.parse(&body)
    }

    fn parse(&self, body: &Value) -> Result<ProviderAnswer, InferenceError> {
        let count = |value: &Value| value.as_u64().map(|n| n as usize);
        let (text, finish, tokens_in, tokens_out) = match self.protocol {
            Protocol::OpenAi => (
                body["choices"][0]["message"]["content"].as_str(),
                body["choices"][0]["finish_reason"].as_str(),
                count(&body["usage"]["prompt_tokens"]),
                count(&body["usage"]["completion_tokens"]),
            ),
            Protocol::Anthropic => (
                body["content"][0]["text"].as_str(),
                body["stop_reason"].as_str(),
                count(&body["usage"]["input_tokens"]),
                count(&body["usage"]["output_tokens"]),
            ),
        };
        let text = text.ok_or_else(|| self.failure("the answer has no text"))?;
        Ok(ProviderAnswer {
            text: text.to_string(),
            cut_at_limit: matches!(finish, Some("length" | "max_tokens")),
            stopped_in_loop: false,
            tokens_in: tokens_in.ok_or_else(|| self.failure("the answer has no token usage"))?,
            tokens_out: tokens_out.ok_or_else(|| self.failure("the answer has no token usage"))?,
        })
    }
}
