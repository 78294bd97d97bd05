//! `http`: one HTTP request with a timeout and a bounded response body, to where the
//! node's egress policy allows.

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::StreamExt;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::agent::{AgentContext, AgentOutput, TypedAgent};
use crate::egress::{Egress, Guarded};
use crate::errors::{AgentError, invalid};

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpInputs {
    /// http:// or https:// URL.
    url: String,
    /// GET (default), POST, PUT, PATCH, DELETE, HEAD.
    method: Option<String>,
    /// Request headers.
    headers: Option<BTreeMap<String, String>>,
    /// A string is sent as text; anything else as JSON.
    body: Option<Value>,
    /// Fail the attempt on a 4xx/5xx status (default true).
    fail_on_status: Option<bool>,
}

#[derive(Debug, Clone)]
pub struct HttpAgentConfig {
    pub max_response_bytes: usize,
    pub default_timeout_secs: u64,
    /// Where requests may go.
    pub egress: Egress,
}

pub struct HttpAgent {
    config: HttpAgentConfig,
}

impl HttpAgent {
    pub fn new(config: HttpAgentConfig) -> Self {
        Self { config }
    }

    fn request(
        &self,
        egress: &Egress,
        client: &Guarded,
        inputs: &HttpInputs,
    ) -> Result<reqwest::RequestBuilder, AgentError> {
        let parsed = egress.check_url("url", &inputs.url)?;
        let method_name = inputs.method.as_deref().unwrap_or("GET").to_uppercase();
        let method = match method_name.as_str() {
            "GET" | "POST" | "PUT" | "PATCH" | "DELETE" | "HEAD" => {
                reqwest::Method::from_bytes(method_name.as_bytes())
                    .map_err(|error| invalid("method", error.to_string()))?
            }
            other => {
                return Err(invalid(
                    "method",
                    format!("`{other}` is not one of GET, POST, PUT, PATCH, DELETE, HEAD"),
                ));
            }
        };
        let mut request = client.client.request(method, parsed);
        for (name, value) in inputs.headers.iter().flatten() {
            request = request.header(name.as_str(), value.as_str());
        }
        request = match &inputs.body {
            None => request,
            Some(Value::String(text)) => request.body(text.clone()),
            Some(other) => request.json(other),
        };
        Ok(request)
    }
}

#[async_trait::async_trait]
impl TypedAgent for HttpAgent {
    const KIND: &'static str = "http";
    const DESCRIPTION: &'static str = "Sends one HTTP request; outputs status, headers and body.";
    type Inputs = HttpInputs;

    fn needs_grant(_: &std::collections::BTreeMap<String, Value>) -> Option<&'static str> {
        Some("reaches the network")
    }

    async fn attempt(
        &self,
        inputs: HttpInputs,
        context: AgentContext,
    ) -> Result<AgentOutput, AgentError> {
        let timeout_secs = context
            .timeout_secs
            .unwrap_or(self.config.default_timeout_secs);
        let egress = self
            .config
            .egress
            .widened(&context.project_networks().await)?;
        let client = egress.client(Some(Duration::from_secs(timeout_secs)))?;
        let request = self.request(&egress, &client, &inputs)?;
        let exchange = async {
            let response = request
                .header("Idempotency-Key", &context.idempotency_key)
                .send()
                .await
                .map_err(|error| match client.refusal() {
                    Some(refused) => invalid("url", refused),
                    None => AgentError::Failed(format!("request failed: {error}")),
                })?;
            read_response(response, self.config.max_response_bytes).await
        };
        let outputs = tokio::select! {
            outputs = exchange => outputs?,
            () = context.cancel.cancelled() => return Err(AgentError::Cancelled),
        };
        let status = outputs
            .get("status")
            .and_then(Value::as_u64)
            .unwrap_or_default();
        if inputs.fail_on_status.unwrap_or(true) && status >= 400 {
            return Err(AgentError::Failed(format!("the server answered {status}")));
        }
        Ok(AgentOutput {
            outputs,
            cost_usd: 0.0,
        })
    }
}

async fn read_response(
    response: reqwest::Response,
    limit: usize,
) -> Result<Map<String, Value>, AgentError> {
    let status = response.status().as_u16();
    let headers: Map<String, Value> = response
        .headers()
        .iter()
        .filter_map(|(name, value)| {
            Some((
                name.to_string(),
                Value::String(value.to_str().ok()?.to_string()),
            ))
        })
        .collect();
    let is_json = headers
        .get("content-type")
        .and_then(Value::as_str)
        .is_some_and(|kind| kind.contains("json"));
    let mut body = Vec::new();
    let mut truncated = false;
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|error| AgentError::Failed(format!("reading the response: {error}")))?;
        let room = limit.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if chunk.len() > room {
            truncated = true;
            break;
        }
    }
    let text = String::from_utf8_lossy(&body).into_owned();
    let body = match serde_json::from_str::<Value>(&text) {
        Ok(value) if is_json && !truncated => value,
        _ => Value::String(text),
    };
    let mut outputs = Map::new();
    outputs.insert("status".into(), json!(status));
    outputs.insert("headers".into(), Value::Object(headers));
    outputs.insert("body".into(), body);
    outputs.insert("truncated".into(), Value::Bool(truncated));
    Ok(outputs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::Agent;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// A real HTTP/1.1 server on loopback that answers every request with `response`
    /// and hands back what it received.
    async fn serve_once(response: String) -> (String, tokio::task::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let handle = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut received = vec![0u8; 16 * 1024];
            let read = socket.read(&mut received).await.unwrap();
            socket.write_all(response.as_bytes()).await.unwrap();
            socket.shutdown().await.unwrap();
            String::from_utf8_lossy(&received[..read]).into_owned()
        });
        (format!("http://{address}/hook"), handle)
    }

    /// An agent that may reach the test servers on 127.0.0.1, and only them.
    fn agent(max_response_bytes: usize) -> HttpAgent {
        HttpAgent::new(HttpAgentConfig {
            max_response_bytes,
            default_timeout_secs: 10,
            egress: Egress::new(&["127.0.0.1/32".into()]).unwrap(),
        })
    }

    /// A listener on another loopback address, which the agent may not reach; true if
    /// nothing connected to it within `wait`.
    async fn untouched(listener: TcpListener, wait: std::time::Duration) -> bool {
        tokio::time::timeout(wait, listener.accept()).await.is_err()
    }

    fn inputs(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => panic!("inputs must be a map"),
        }
    }

    #[tokio::test]
    async fn sends_json_and_parses_a_json_answer() {
        let body = r#"{"ok":true,"n":3}"#;
        let (url, server) = serve_once(format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        ))
        .await;
        let output = agent(1024)
            .run(
                inputs(json!({"url": url, "method": "post", "body": {"a": 1}})),
                AgentContext::detached("r:t:1"),
            )
            .await
            .unwrap();
        assert_eq!(output.outputs["status"], json!(200));
        assert_eq!(output.outputs["body"], json!({"ok": true, "n": 3}));
        let request = server.await.unwrap();
        assert!(request.starts_with("POST /hook"), "{request}");
        assert!(
            request.to_lowercase().contains("idempotency-key: r:t:1"),
            "{request}"
        );
        assert!(request.ends_with(r#"{"a":1}"#), "{request}");
    }

    #[tokio::test]
    async fn error_status_fails_the_attempt_and_big_bodies_are_cut() {
        let (url, _server) =
            serve_once("HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n".into())
                .await;
        let error = agent(1024)
            .run(inputs(json!({"url": url})), AgentContext::detached("k"))
            .await
            .unwrap_err();
        assert_eq!(error, AgentError::Failed("the server answered 503".into()));

        let big = "x".repeat(5000);
        let (url, _server) = serve_once(format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{big}",
            big.len()
        ))
        .await;
        let output = agent(100)
            .run(inputs(json!({"url": url})), AgentContext::detached("k"))
            .await
            .unwrap();
        assert_eq!(output.outputs["body"].as_str().unwrap().len(), 100);
        assert_eq!(output.outputs["truncated"], json!(true));
    }

    #[tokio::test]
    async fn refuses_bad_urls_and_methods() {
        let error = agent(10)
            .run(
                inputs(json!({"url": "file:///etc/passwd"})),
                AgentContext::detached("k"),
            )
            .await
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "input `url`: only http:// and https:// URLs may be requested, not `file:`"
        );
        let error = agent(10)
            .run(
                inputs(json!({"url": "http://127.0.0.1:9/", "method": "TRACE"})),
                AgentContext::detached("k"),
            )
            .await
            .unwrap_err();
        assert!(error.to_string().starts_with("input `method`"), "{error}");
    }

    /// The attacks: the cloud metadata service, the node's own loopback by name, and a
    /// redirect from an allowed server to a refused address. None is reached.
    #[tokio::test]
    async fn non_public_addresses_are_refused_by_address_by_name_and_after_a_redirect() {
        let hidden = TcpListener::bind("127.0.0.2:0").await.unwrap();
        let port = hidden.local_addr().unwrap().port();
        let error = agent(10)
            .run(
                inputs(json!({"url": "http://169.254.169.254/latest/meta-data/"})),
                AgentContext::detached("k"),
            )
            .await
            .unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("input `url`: `169.254.169.254` is a non-public address"),
            "{error}"
        );
        assert!(!error.is_retryable());

        // With the node's default policy, which allows no loopback address.
        let closed = HttpAgent::new(HttpAgentConfig {
            max_response_bytes: 10,
            default_timeout_secs: 10,
            egress: Egress::default(),
        });
        let error = closed
            .run(
                inputs(json!({"url": format!("http://localhost:{port}/")})),
                AgentContext::detached("k"),
            )
            .await
            .unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("input `url`: `localhost` is a non-public address ("),
            "{error}"
        );

        let (url, served) = serve_once(format!(
            "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.2:{port}/\r\nContent-Length: 0\r\n\r\n"
        ))
        .await;
        let error = agent(10)
            .run(inputs(json!({"url": url})), AgentContext::detached("k"))
            .await
            .unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("input `url`: `127.0.0.2` is a non-public address"),
            "{error}"
        );
        assert!(served.await.unwrap().starts_with("GET /hook"));
        assert!(untouched(hidden, std::time::Duration::from_millis(300)).await);
    }
}
