//! The API through its router (`oneshot`, no socket), plus the WebSocket over a real
//! loopback socket.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use futures_util::StreamExt;
use serde_json::{Value, json};

use super::*;
use troupe_node::{Person, RunOptions};

const HELLO: &str =
    "name: Hello API\ntasks:\n  - { id: greet, name: Greet, agent: echo, inputs: { text: hi } }\n";

/// The kinds of event a run of [`HELLO`] records, in order: its one task succeeds first time.
const HELLO_EVENTS: [&str; 4] = [
    "run_started",
    "attempt_started",
    "attempt_succeeded",
    "run_finished",
];

/// These tests are of the routes themselves (no accounts); access_tests.rs is of who
/// may call them.
async fn app() -> (Router, Arc<Node>) {
    test_node::start(false, |settings| settings.server.max_body_bytes = 64 * 1024).await
}

async fn send(
    app: &Router,
    method: Method,
    uri: &str,
    content_type: &str,
    body: impl Into<Body>,
) -> (StatusCode, Value) {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", content_type);
    let reply = test_node::send(app, request, body).await;
    (reply.status, reply.body)
}

async fn get(app: &Router, uri: &str) -> (StatusCode, Value) {
    send(app, Method::GET, uri, "application/json", Body::empty()).await
}

async fn post_json(app: &Router, uri: &str, body: Value) -> (StatusCode, Value) {
    send(app, Method::POST, uri, "application/json", body.to_string()).await
}

/// A workflow's YAML source, or bytes that claim to be one, posted to `uri`.
async fn post_yaml(app: &Router, uri: &str, yaml: impl Into<Body>) -> (StatusCode, Value) {
    send(app, Method::POST, uri, "application/yaml", yaml).await
}

async fn delete(app: &Router, uri: &str) -> (StatusCode, Value) {
    send(app, Method::DELETE, uri, "application/json", Body::empty()).await
}

/// Fails unless the reply is the JSON error `code` with `status`.
#[track_caller]
fn assert_error((status, body): (StatusCode, Value), expected: StatusCode, code: &str) {
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (expected, Some(code)),
        "{body}"
    );
}

async fn finished_run(app: &Router, run_id: &str) -> Value {
    for _ in 0..500 {
        let (_, run) = get(app, &format!("/api/v1/runs/{run_id}")).await;
        if run["status"] != "running" {
            return run;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("run {run_id} did not finish");
}

#[tokio::test]
async fn a_workflow_is_created_versioned_run_and_inspected() {
    let (app, _node) = app().await;
    let (status, created) = post_yaml(&app, "/api/v1/workflows", HELLO).await;
    assert_eq!(
        (status, &created),
        (
            StatusCode::CREATED,
            &json!({"workflow_id": "hello-api", "version": 1})
        )
    );
    let (status, created) = post_json(
        &app,
        "/api/v1/workflows",
        json!({"source": HELLO.replace("hi", "hello")}),
    )
    .await;
    assert_eq!(
        (status, created["version"].clone()),
        (StatusCode::CREATED, json!(2))
    );

    let (_, listed) = get(&app, "/api/v1/workflows").await;
    assert_eq!(listed[0]["latest_version"], json!(2));
    let (_, versions) = get(&app, "/api/v1/workflows/hello-api").await;
    assert_eq!(versions["versions"].as_array().unwrap().len(), 2);

    let (status, started) = post_json(
        &app,
        "/api/v1/workflows/hello-api/runs",
        json!({"version": 1, "started_by": "ada"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let run_id = started["run_id"].as_str().unwrap().to_string();
    let run = finished_run(&app, &run_id).await;
    assert_eq!(run["status"], "completed");
    assert_eq!(run["started_by"], "ada");
    assert_eq!(
        run["tasks"][0]["outputs"],
        json!({"text": "hi"}),
        "version 1 ran, not the latest"
    );

    let (_, events) = get(&app, &format!("/api/v1/runs/{run_id}/events")).await;
    let kinds: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["event"]["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, HELLO_EVENTS);
    let (_, runs) = get(&app, "/api/v1/runs?status=completed&workflow_id=hello-api").await;
    assert_eq!(runs.as_array().unwrap().len(), 1);

    let (status, _) = delete(&app, "/api/v1/workflows/hello-api").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = get(&app, &format!("/api/v1/runs/{run_id}")).await;
    assert_eq!(status, StatusCode::OK, "deleting a workflow keeps its runs");
}

#[tokio::test]
async fn an_invalid_workflow_gets_every_error_with_its_position() {
    let (app, _node) = app().await;
    let yaml = "name: Broken\ntasks:\n  - { id: a, name: A, agent: nope }\n  - { id: b, name: B, agent: echo, depends-on: [a] }\n";
    let (status, body) = post_yaml(&app, "/api/v1/workflows", yaml).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["code"], "invalid_workflow");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("request:3:"), "{message}");
    assert!(message.contains("nope"), "{message}");
    assert!(message.contains("request:4:"), "{message}");
    assert!(message.contains("depends_on"), "{message}");
    let (_, listed) = get(&app, "/api/v1/workflows").await;
    assert_eq!(listed, json!([]), "nothing stored");
}

#[tokio::test]
async fn hostile_bodies_get_clear_json_errors() {
    let (app, _node) = app().await;
    let reply = post_json(&app, "/api/v1/workflows", json!({"nope": 1})).await;
    assert_error(reply, StatusCode::BAD_REQUEST, "invalid_json");
    let runs = "/api/v1/workflows/x/runs";
    let reply = send(&app, Method::POST, runs, "application/json", "{not json").await;
    assert_error(reply, StatusCode::BAD_REQUEST, "invalid_json");
    let huge = "x".repeat(100 * 1024);
    let reply = post_yaml(&app, "/api/v1/workflows", huge).await;
    assert_error(reply, StatusCode::PAYLOAD_TOO_LARGE, "body_too_large");
    let reply = post_yaml(&app, "/api/v1/workflows", vec![0xff, 0xfe, 0x00]).await;
    assert_error(reply, StatusCode::BAD_REQUEST, "invalid_utf8");
    let reply = get(&app, "/api/v1/runs?status=bogus").await;
    assert_error(reply, StatusCode::BAD_REQUEST, "invalid_request");
    let reply = get(&app, "/api/v1/runs/does-not-exist").await;
    assert_error(reply, StatusCode::NOT_FOUND, "not_found");
    let reply = get(&app, "/nowhere").await;
    assert_error(reply, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn decisions_on_tasks_that_do_not_wait_are_refused() {
    let (app, _node) = app().await;
    post_yaml(&app, "/api/v1/workflows", HELLO).await;
    let (_, started) = post_json(&app, "/api/v1/workflows/hello-api/runs", json!({})).await;
    let run_id = started["run_id"].as_str().unwrap();
    finished_run(&app, run_id).await;
    let decide = format!("/api/v1/runs/{run_id}/tasks/greet/decision");
    let decision = json!({"decision": "approve", "approver": "bob"});
    let reply = post_json(&app, &decide, decision.clone()).await;
    assert_error(reply, StatusCode::CONFLICT, "run_finished");
    let (status, _) = post_json(&app, "/api/v1/runs/none/tasks/greet/decision", decision).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let reply = post_json(&app, &decide, json!({"decision": "maybe", "approver": "x"})).await;
    assert_error(reply, StatusCode::BAD_REQUEST, "invalid_json");
}

#[tokio::test]
async fn health_readiness_and_the_api_description_are_served() {
    let (app, _node) = app().await;
    assert_eq!(get(&app, "/livez").await, (StatusCode::OK, json!("ok")));
    let (status, ready) = get(&app, "/readyz").await;
    assert_eq!(
        (status, ready["ready"].clone()),
        (StatusCode::OK, json!(true))
    );
    let (_, spec) = get(&app, "/openapi.json").await;
    for path in [
        "/api/v1/workflows",
        "/api/v1/runs/{id}",
        "/api/v1/runs/{id}/tasks/{task}/decision",
        "/api/v1/approvals",
        "/api/v1/memory",
        "/api/v1/memory/search",
        "/api/v1/memory/{id}",
        "/api/v1/models",
        "/api/v1/complete",
        "/api/v1/costs",
        "/v1/models",
        "/v1/chat/completions",
        "/v1/embeddings",
        "/v1/messages",
    ] {
        assert!(
            spec["paths"].get(path).is_some(),
            "{path} missing from the OpenAPI document"
        );
    }
    let chat = &spec["paths"]["/v1/chat/completions"]["post"]["responses"]["200"]["content"];
    assert_eq!(
        chat["application/json"]["schema"]["$ref"],
        "#/components/schemas/ChatCompletion"
    );
    assert_eq!(
        chat["text/event-stream"]["schema"]["$ref"],
        "#/components/schemas/ChatCompletionChunk"
    );
    let (status, page) = get(&app, "/docs").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.as_str().unwrap().contains("/openapi.json"));
    let (_, agents) = get(&app, "/api/v1/agents").await;
    let kinds: Vec<&str> = agents
        .as_array()
        .unwrap()
        .iter()
        .map(|agent| agent["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "architect",
            "code_analyzer",
            "code_generator",
            "code_review",
            "debugging",
            "deployment_agent",
            "documentation",
            "echo",
            "http",
            "human_review",
            "mcp_tool",
            "planner",
            "security_scanner",
            "shell",
            "test_generator",
            "test_runner"
        ]
    );
    // Every kind has a pool; an idle node runs and queues nothing.
    let (status, pools) = get(&app, "/api/v1/pools").await;
    assert_eq!(status, StatusCode::OK, "{pools}");
    let pools = pools.as_object().unwrap();
    assert_eq!(pools.len(), kinds.len(), "{pools:?}");
    for (kind, load) in pools {
        assert!(load["capacity"].as_u64().unwrap() > 0, "{kind}: {load}");
        assert_eq!(
            (load["admitted"].as_u64(), load["running"].as_u64()),
            (Some(0), Some(0)),
            "{kind}"
        );
    }
}

#[test]
fn only_loopback_addresses_may_be_bound_without_authentication() {
    assert!(check_bind_address("127.0.0.1:7700", false).is_ok());
    assert!(check_bind_address("[::1]:7700", false).is_ok());
    let error = check_bind_address("0.0.0.0:7700", false)
        .unwrap_err()
        .to_string();
    assert!(error.contains("auth.required = true"), "{error}");
    let error = check_bind_address("localhost", false)
        .unwrap_err()
        .to_string();
    assert_eq!(error, "`localhost` is not an address like 127.0.0.1:7700");
    assert!(
        check_bind_address("0.0.0.0:7700", true).is_ok(),
        "allowed with authentication"
    );
}

#[tokio::test]
async fn a_websocket_from_a_foreign_origin_is_refused() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let (app, _node) = app().await;
    let address = test_node::serve(app).await;
    let url = format!("ws://{address}/api/v1/events");
    let mut foreign = url.as_str().into_client_request().unwrap();
    foreign
        .headers_mut()
        .insert("Origin", "http://evil.example".parse().unwrap());
    match tokio_tungstenite::connect_async(foreign).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 403);
        }
        other => panic!("a foreign origin was let in: {:?}", other.map(|_| ())),
    }
    let mut own = url.as_str().into_client_request().unwrap();
    own.headers_mut()
        .insert("Origin", format!("http://{address}").parse().unwrap());
    assert!(
        tokio_tungstenite::connect_async(own).await.is_ok(),
        "its own origin"
    );
}

#[tokio::test]
async fn the_websocket_streams_a_runs_events_as_they_happen() {
    let (app, node) = app().await;
    let address = test_node::serve(app).await;
    let (mut socket, _) = tokio_tungstenite::connect_async(format!("ws://{address}/api/v1/events"))
        .await
        .unwrap();
    let (id, _) = node
        .save_workflow(HELLO, "hello.yaml", "test")
        .await
        .unwrap();
    let run_id = node
        .start_run(&id, RunOptions::default(), &Person::named("ada"))
        .await
        .unwrap();
    let mut kinds = Vec::new();
    while let Some(Ok(message)) = tokio::time::timeout(Duration::from_secs(10), socket.next())
        .await
        .unwrap()
    {
        let event: Value = serde_json::from_str(message.to_text().unwrap()).unwrap();
        assert_eq!(event["run_id"], json!(run_id));
        kinds.push(event["event"]["kind"].as_str().unwrap().to_string());
        if kinds.last().map(String::as_str) == Some("run_finished") {
            break;
        }
    }
    assert_eq!(kinds, HELLO_EVENTS);
}

/// Any node streams any run: a run another node of the cluster runs (its events
/// appended to the shared store, never published on this node's bus) reaches a
/// WebSocket on this node that asked for it, in order, from the store.
#[tokio::test]
async fn the_websocket_streams_a_run_another_node_runs_from_the_store() {
    use troupe_store::events::{RunEvent, RunStatus, StoredEvent};
    let (app, node) = app().await;
    let address = test_node::serve(app).await;
    let store = node.store();
    let run_id = troupe_store::RunId::from("elsewhere");
    let event = |seq: u64, event: RunEvent| StoredEvent {
        run_id: run_id.clone(),
        seq,
        at_ms: 1_000 + seq as i64,
        event,
    };
    let record = troupe_store::RunRecord {
        run_id: run_id.clone(),
        workflow_id: "w".into(),
        workflow_version: 1,
        workflow_name: "W".into(),
        status: RunStatus::Running,
        started_by: "ada".into(),
        created_at_ms: 1_000,
        finished_at_ms: 0,
        project: "default".into(),
        owner: "node-b".into(),
        epoch: 1,
        trace: String::new(),
        trace_parent: String::new(),
        tick_ms: None,
    };
    let cancel = |seq| event(seq, RunEvent::RunCancelRequested { by: "bob".into() });
    store.create_run(&record, &cancel(0)).await.unwrap();
    let url = format!("ws://{address}/api/v1/events?run_id=elsewhere");
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    store
        .append_events(&[cancel(1), cancel(2)], 1)
        .await
        .unwrap();
    let finished = RunEvent::RunFinished {
        status: RunStatus::Cancelled,
        reason: None,
    };
    store.append_events(&[event(3, finished)], 1).await.unwrap();
    let mut seqs = Vec::new();
    while seqs.last() != Some(&3) {
        let message = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("the store's events arrive")
            .unwrap()
            .unwrap();
        let streamed: Value = serde_json::from_str(message.to_text().unwrap()).unwrap();
        assert_eq!(streamed["run_id"], "elsewhere");
        seqs.push(streamed["seq"].as_u64().unwrap());
    }
    assert_eq!(
        seqs,
        [1, 2, 3],
        "from the subscription on, in order, once each"
    );
}

#[tokio::test]
async fn memory_endpoints_refuse_what_is_wrong_and_say_what_to_do() {
    let (app, _node) = app().await;
    let (status, body) = get(&app, "/api/v1/memory?project=shop").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = get(&app, "/api/v1/memory?project=shop&user=ada&kind=forever").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body.to_string()
            .contains("short_term, long_term or episodic"),
        "{body}"
    );
    let (status, listed) = get(&app, "/api/v1/memory?project=shop&user=ada").await;
    assert_eq!((status, listed), (StatusCode::OK, json!([])));
    let search = json!({"project": "shop", "user": "ada", "query": "prices", "k": 0});
    let (status, body) = post_json(&app, "/api/v1/memory/search", search).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.to_string().contains("`k` must be 1 to 100"), "{body}");
    // This node serves no models: memory search says how to get the embedding model.
    let search = json!({"project": "shop", "user": "ada", "query": "prices"});
    let (status, body) = post_json(&app, "/api/v1/memory/search", search).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.to_string().contains("models.serve"), "{body}");
    let entry = json!({"project": "shop", "user": "ada", "text": "x", "kind": "short_term"});
    let (status, _) = post_json(&app, "/api/v1/memory", entry).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = delete(&app, "/api/v1/memory/nope?project=shop&user=ada").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = post_json(&app, "/api/v1/memory/search", json!({"query": 7})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.to_string().contains("expected a string"), "{body}");
}

#[tokio::test]
async fn a_model_backed_kind_on_a_node_without_a_model_fails_with_how_to_fix_it() {
    let (app, _node) = app().await;
    let workflow = "name: Plan without a model\ntasks:\n  - id: plan\n    name: Plan\n    agent: planner\n    inputs: { goal: ship it }\n";
    let (status, created) = post_yaml(&app, "/api/v1/workflows", workflow).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["workflow_id"].as_str().unwrap();
    let (status, started) =
        post_json(&app, &format!("/api/v1/workflows/{id}/runs"), json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{started}");
    let run = finished_run(&app, started["run_id"].as_str().unwrap()).await;
    assert_eq!(run["status"], "failed", "{run:#}");
    let error = run["tasks"][0]["error"].as_str().unwrap();
    assert!(error.contains("troupe models fetch"), "{error}");
    assert_eq!(
        run["tasks"][0]["attempts"], 1,
        "an unavailable model is not retried"
    );
}

#[tokio::test]
async fn a_deeply_nested_body_is_refused_not_recursed_into() {
    let (app, _node) = app().await;
    let deep = format!("{}{}", "[".repeat(20_000), "]".repeat(20_000));
    for uri in [
        "/api/v1/auth/login",
        "/api/v1/memory/search",
        "/api/v1/complete",
    ] {
        let (status, body) = send(&app, Method::POST, uri, "application/json", deep.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {body}");
        assert_eq!(body["error"]["code"], "invalid_json", "{uri}: {body}");
    }
    let (status, body) = post_json(
        &app,
        "/api/v1/auth/login",
        json!({"email": "ada@example.com' OR true --", "password": "x"}),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
}

/// A request to the chain asks for no more tokens than `providers.max_tokens`: a paid
/// provider bills what it generates, so a million-token request is refused before any
/// provider sees it.
#[tokio::test]
async fn a_completion_asking_for_more_than_max_tokens_is_refused() {
    let (app, _node) = app().await;
    let body = json!({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 1_000_000});
    let (status, refused) = post_json(&app, "/api/v1/complete", body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert_eq!(
        refused["error"]["message"],
        "max_tokens is 1000000; a request may ask for at most 4096 (providers.max_tokens)"
    );
}

/// A start with `Idempotency-Key: key` and `body`: the status, the body and whether the
/// node said it replayed an earlier start.
async fn start_with_key(app: &Router, key: &str, body: Value) -> (StatusCode, Value, bool) {
    let request = Request::builder()
        .method(Method::POST)
        .uri("/api/v1/workflows/hello-api/runs")
        .header("content-type", "application/json")
        .header("idempotency-key", key);
    let reply = test_node::send(app, request, body.to_string()).await;
    let replayed = reply.headers.get("idempotent-replayed").is_some();
    (reply.status, reply.body, replayed)
}

/// The failure the key guards against: a client that retries a start whose answer it
/// lost, several times and at once, gets one run, not one per try.
#[tokio::test]
async fn retried_starts_with_one_idempotency_key_start_one_run() {
    let (app, node) = app().await;
    post_yaml(&app, "/api/v1/workflows", HELLO).await;
    let body = json!({"variables": {}, "started_by": "ada"});
    let tries = futures_util::future::join_all(
        (0..8).map(|_| start_with_key(&app, "retry-7f3a", body.clone())),
    )
    .await;
    let started: Vec<&(StatusCode, Value, bool)> = tries
        .iter()
        .filter(|(status, _, _)| *status == StatusCode::CREATED)
        .collect();
    for (status, reply, _) in &tries {
        assert!(
            *status == StatusCode::CREATED
                || (*status == StatusCode::CONFLICT
                    && reply["error"]["code"] == "idempotency_key_in_use"),
            "{status} {reply}"
        );
    }
    let (_, first, _) = started[0];
    let (status, again, replayed) = start_with_key(&app, "retry-7f3a", body.clone()).await;
    assert_eq!((status, replayed), (StatusCode::CREATED, true));
    assert_eq!(again["run_id"], first["run_id"]);
    assert!(
        started
            .iter()
            .all(|(_, reply, _)| reply["run_id"] == first["run_id"])
    );
    let runs = node
        .runs(&troupe_store::RunFilter::default())
        .await
        .unwrap();
    assert_eq!(runs.len(), 1, "{runs:?}");

    let (status, reused, _) =
        start_with_key(&app, "retry-7f3a", json!({"started_by": "bob"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{reused}");
    assert_eq!(reused["error"]["code"], "idempotency_key_reused");
    let (status, other, replayed) = start_with_key(&app, "another", body).await;
    assert_eq!((status, replayed), (StatusCode::CREATED, false));
    assert_ne!(other["run_id"], first["run_id"]);
    let (status, _, _) = start_with_key(&app, &"k".repeat(256), json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}
