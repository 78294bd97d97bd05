//! What keeps a node without accounts (`auth.required = false`) to the programs and pages
//! of its own machine. Such a node trusts every caller, and a web page the user visits is
//! a caller too: its scripts can send requests to `127.0.0.1`. So, on every request:
//!
//! - `Host` must be one of the node's names (the loopback names, the host of
//!   `server.address`, the hosts of `server.allowed_origins`): a page on a DNS name
//!   rebound to 127.0.0.1 is same-origin to the browser, but names its own host;
//! - a write that carries an `Origin` (browsers send one with every write) must come from
//!   the node's own pages or `server.allowed_origins`;
//! - a write's body must be JSON or YAML: without a CORS preflight, which the node never
//!   grants, a page of another origin can only send `text/plain`, form and multipart
//!   bodies.
//!
//! Programs (the CLI, curl) send no `Origin` and are let through: they are the node's
//! users. A node with accounts needs none of this: a page cannot present the user's
//! token, and the cookie's writes are held to the node's origin by the guard.

use axum::extract::Request;
use axum::http::{HeaderMap, Method, StatusCode, header};

use crate::error::ApiError;
use crate::guard::from_own_origin;
use troupe_config::Settings;

/// The body types a write may carry.
const BODY_TYPES: [&str; 5] = [
    "application/json",
    "application/yaml",
    "application/x-yaml",
    "text/yaml",
    "text/x-yaml",
];

/// The node's side of the checks, read from settings once, when the router is built.
#[derive(Debug)]
pub struct LocalOnly {
    /// The names a request may give as its `Host`, lower case and without ports.
    names: Vec<String>,
    allowed_origins: Vec<String>,
}

impl LocalOnly {
    /// `None` on a node with accounts, which needs none of this.
    pub fn for_node(settings: &Settings) -> Option<LocalOnly> {
        (!settings.auth.required).then(|| LocalOnly {
            names: node_names(settings),
            allowed_origins: settings.server.allowed_origins.clone(),
        })
    }

    /// `Err` (403 or 415, naming what was wrong) unless `request` may reach the node.
    pub fn check(&self, request: &Request) -> Result<(), ApiError> {
        let headers = request.headers();
        check_host(&self.names, headers)?;
        if matches!(
            *request.method(),
            Method::GET | Method::HEAD | Method::OPTIONS
        ) {
            return Ok(());
        }
        check_write(&self.allowed_origins, headers)
    }
}

fn check_host(names: &[String], headers: &HeaderMap) -> Result<(), ApiError> {
    if let Some(host) = header_text(headers, header::HOST)
        && !names.contains(&host_name(host))
    {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "host_not_allowed",
            format!(
                "`{host}` is not a name of this node: a node without accounts answers only to \
                 localhost, its server.address and the hosts of server.allowed_origins"
            ),
        ));
    }
    Ok(())
}

fn check_write(allowed_origins: &[String], headers: &HeaderMap) -> Result<(), ApiError> {
    if headers.contains_key(header::ORIGIN) && !from_own_origin(headers, allowed_origins) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "origin_not_allowed",
            "a write to a node without accounts must come from its own pages (or an origin \
             in server.allowed_origins), or from a program that sends no Origin",
        ));
    }
    if has_body(headers) && !is_json_or_yaml(header_text(headers, header::CONTENT_TYPE)) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!(
                "a body must be sent as one of {}: a node without accounts takes no other \
                 kind, which any web page could send it",
                BODY_TYPES.join(", ")
            ),
        ));
    }
    Ok(())
}

fn header_text(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

/// The names a request may give as its `Host`, lower case and without ports.
fn node_names(settings: &Settings) -> Vec<String> {
    let mut names: Vec<String> = ["localhost", "127.0.0.1", "[::1]"].map(String::from).into();
    names.push(host_name(&settings.server.address));
    for origin in &settings.server.allowed_origins {
        let authority = origin
            .split_once("://")
            .map_or(origin.as_str(), |(_, rest)| rest);
        names.push(host_name(authority));
    }
    names
}

/// `host[:port]` (or `[v6]:port`) without its port, in lower case.
fn host_name(authority: &str) -> String {
    let host = match authority.rfind(']') {
        Some(end) => &authority[..=end],
        None => authority.split(':').next().unwrap_or(authority),
    };
    host.to_ascii_lowercase()
}

fn has_body(headers: &HeaderMap) -> bool {
    let length = header_text(headers, header::CONTENT_LENGTH)
        .and_then(|length| length.trim().parse::<u64>().ok());
    length.is_some_and(|length| length > 0) || headers.contains_key(header::TRANSFER_ENCODING)
}

fn is_json_or_yaml(content_type: Option<&str>) -> bool {
    content_type
        .and_then(|value| value.split(';').next())
        .map(|kind| kind.trim().to_ascii_lowercase())
        .is_some_and(|kind| BODY_TYPES.contains(&kind.as_str()))
}

#[cfg(test)]
mod tests {
    use axum::http::{Method, Request, StatusCode, header};
    use serde_json::json;

    use crate::test_node;

    const SHELL_WORKFLOW: &str =
        "name: pwn\ntasks:\n  - { id: x, name: X, agent: shell, inputs: { command: id } }\n";
    const ECHO_WORKFLOW: &str =
        "name: hello\ntasks:\n  - { id: x, name: X, agent: echo, inputs: { said: hi } }\n";

    /// A workflow posted as a browser sends it to the node from a page at `origin`.
    fn from_page(
        origin: &str,
        host: &str,
        content_type: &str,
        workflow: &str,
    ) -> axum::http::request::Builder {
        Request::builder()
            .method(Method::POST)
            .uri("/api/v1/workflows")
            .header(header::HOST, host)
            .header(header::ORIGIN, origin)
            .header(header::CONTENT_TYPE, content_type)
            .header(header::CONTENT_LENGTH, workflow.len())
    }

    async fn workflows(app: &axum::Router) -> serde_json::Value {
        let list = Request::builder()
            .uri("/api/v1/workflows")
            .header(header::HOST, "127.0.0.1:7700");
        test_node::send(app, list, "").await.body
    }

    /// The attack: a page of another site posts a shell workflow to the laptop's node,
    /// as a CORS-simple request (text/plain, no preflight), or after rebinding its own
    /// DNS name to 127.0.0.1 so that the browser thinks it is same-origin.
    #[tokio::test]
    async fn a_web_page_cannot_create_a_workflow_on_a_node_without_accounts() {
        let (app, _node) = test_node::start(false, |_| {}).await;
        let simple = from_page(
            "https://evil.test",
            "127.0.0.1:7700",
            "text/plain",
            SHELL_WORKFLOW,
        );
        let reply = test_node::send(&app, simple, SHELL_WORKFLOW).await;
        assert_eq!(
            (reply.status, reply.body["error"]["code"].clone()),
            (StatusCode::FORBIDDEN, json!("origin_not_allowed"))
        );
        let rebound = from_page(
            "http://evil.test:7700",
            "evil.test:7700",
            "application/yaml",
            SHELL_WORKFLOW,
        );
        let reply = test_node::send(&app, rebound, SHELL_WORKFLOW).await;
        assert_eq!(
            (reply.status, reply.body["error"]["code"].clone()),
            (StatusCode::FORBIDDEN, json!("host_not_allowed"))
        );
        // Origin stripped (an old browser, a privacy extension): the body type still
        // gives a simple request away.
        let stripped = Request::builder()
            .method(Method::POST)
            .uri("/api/v1/workflows")
            .header(header::HOST, "127.0.0.1:7700")
            .header(header::CONTENT_TYPE, "text/plain")
            .header(header::CONTENT_LENGTH, SHELL_WORKFLOW.len());
        let reply = test_node::send(&app, stripped, SHELL_WORKFLOW).await;
        assert_eq!(reply.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert_eq!(workflows(&app).await, json!([]), "nothing was created");
    }

    #[tokio::test]
    async fn the_nodes_own_pages_and_programs_may_write() {
        let (app, _node) = test_node::start(false, |_| {}).await;
        let own = from_page(
            "http://localhost:7700",
            "localhost:7700",
            "application/yaml",
            ECHO_WORKFLOW,
        );
        assert_eq!(
            test_node::send(&app, own, ECHO_WORKFLOW).await.status,
            StatusCode::CREATED
        );
        let cli = Request::builder()
            .method(Method::POST)
            .uri("/api/v1/workflows")
            .header(header::HOST, "127.0.0.1:7700")
            .header(header::CONTENT_TYPE, "application/yaml; charset=utf-8")
            .header(header::CONTENT_LENGTH, ECHO_WORKFLOW.len());
        let reply = test_node::send(&app, cli, ECHO_WORKFLOW).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    }

    #[test]
    fn host_names_lose_their_ports_and_case() {
        assert_eq!(super::host_name("LocalHost:7700"), "localhost");
        assert_eq!(super::host_name("[::1]:7700"), "[::1]");
        assert_eq!(super::host_name("127.0.0.1"), "127.0.0.1");
    }
}
