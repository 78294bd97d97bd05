//! `POST /api/v1/agents/{kind}/invoke` and `GET /api/v1/invocations/{id}`: one agent
//! attempt outside any workflow, waited for or polled, refused with what to fix, and
//! reachable only by who may run workflows in its project.

use std::time::Duration;

use axum::http::{Method, Request, StatusCode};
use serde_json::{Value, json};

use super::*;
use crate::access_tests::Team;
use troupe_security::auth::permissions::Role;

async fn call(app: &Router, method: Method, uri: &str, body: Value) -> test_node::Reply {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json");
    test_node::send(app, request, test_node::json_body(&body)).await
}

async fn invoke(app: &Router, kind: &str, body: Value) -> test_node::Reply {
    call(
        app,
        Method::POST,
        &format!("/api/v1/agents/{kind}/invoke"),
        body,
    )
    .await
}

/// Polls `location` until the invocation is no longer running.
async fn ended(app: &Router, location: &str) -> Value {
    for _ in 0..500 {
        let reply = call(app, Method::GET, location, Value::Null).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        if reply.body["status"] != "running" {
            return reply.body;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("invocation {location} never ended");
}

#[track_caller]
fn assert_refused(reply: &test_node::Reply, status: StatusCode, code: &str, says: &[&str]) {
    assert_eq!(
        (reply.status, reply.body["error"]["code"].as_str()),
        (status, Some(code)),
        "{}",
        reply.body
    );
    let message = reply.body["error"]["message"].as_str().unwrap_or_default();
    for part in says {
        assert!(message.contains(part), "`{part}` missing from: {message}");
    }
}

#[tokio::test]
async fn an_agent_is_invoked_waited_for_polled_and_audited() {
    let (app, node) = test_node::start(false, |_| {}).await;
    let waited = invoke(&app, "echo", json!({"inputs": {"greeting": "hi", "n": 2}})).await;
    assert_eq!(waited.status, StatusCode::OK, "{}", waited.body);
    assert_eq!(waited.body["status"], "succeeded");
    assert_eq!(waited.body["outputs"], json!({"greeting": "hi", "n": 2}));
    assert_eq!(waited.body["node"], node.node_name());
    assert_eq!(waited.body["project"], "default");
    assert!(waited.body["finished_ms"].is_i64(), "{}", waited.body);

    let accepted = invoke(&app, "echo", json!({"inputs": {"x": 1}, "wait": false})).await;
    assert_eq!(accepted.status, StatusCode::ACCEPTED, "{}", accepted.body);
    let id = accepted.body["id"].as_str().unwrap();
    assert!(id.starts_with("inv-"), "{id}");
    let location = accepted.headers["location"].to_str().unwrap();
    assert_eq!(location, format!("/api/v1/invocations/{id}"));
    let polled = ended(&app, location).await;
    assert_eq!(
        (&polled["status"], &polled["outputs"]),
        (&json!("succeeded"), &json!({"x": 1}))
    );

    // An attempt that fails is an invocation that failed, with the agent's reason.
    let failed = invoke(&app, "planner", json!({"inputs": {"goal": "ship it"}})).await;
    assert_eq!(failed.status, StatusCode::OK, "{}", failed.body);
    assert_eq!(failed.body["status"], "failed");
    let error = failed.body["error"].as_str().unwrap();
    assert!(error.contains("troupe models fetch"), "{error}");

    let audit = call(
        &app,
        Method::GET,
        "/api/v1/audit?action=agent.invoke",
        Value::Null,
    )
    .await;
    let entries = audit.body.as_array().unwrap();
    assert_eq!(entries.len(), 3, "{:#}", audit.body);
    assert!(
        entries.iter().any(|entry| entry["target"] == id),
        "{:#}",
        audit.body
    );
    let details: Value = serde_json::from_str(entries[0]["details"].as_str().unwrap()).unwrap();
    assert_eq!(details, json!({"kind": "echo", "project": "default"}));
}

#[tokio::test]
async fn invocations_refuse_what_is_wrong_and_say_what_to_fix() {
    let (app, _node) = test_node::start(false, |_| {}).await;
    let reply = invoke(&app, "teleport", json!({})).await;
    assert_refused(
        &reply,
        StatusCode::NOT_FOUND,
        "unknown_kind",
        &["`teleport`", "echo"],
    );
    let reply = invoke(&app, "planner", json!({"inputs": {"goal": 3}})).await;
    assert_refused(
        &reply,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        &["planner", "goal"],
    );
    for timeout in [0, 3601] {
        let reply = invoke(&app, "echo", json!({"timeout_secs": timeout})).await;
        assert_refused(
            &reply,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            &["1 to 3600"],
        );
    }
    let reply = invoke(&app, "echo", json!({"inputs": [1, 2]})).await;
    assert_refused(
        &reply,
        StatusCode::BAD_REQUEST,
        "invalid_json",
        &["expected a map"],
    );
    let reply = invoke(&app, "echo", json!({"input": {}})).await;
    assert_refused(
        &reply,
        StatusCode::BAD_REQUEST,
        "invalid_json",
        &["unknown field `input`"],
    );
    let reply = invoke(&app, "echo", json!({"project": "nowhere"})).await;
    assert_refused(&reply, StatusCode::NOT_FOUND, "not_found", &["nowhere"]);
    let reply = invoke(&app, "echo", json!({"runs_on": ["gpu"]})).await;
    assert_eq!(reply.body["status"], "failed", "{}", reply.body);
    assert!(
        reply.body["error"].as_str().unwrap().contains("(gpu)"),
        "{}",
        reply.body
    );
    let missing = "/api/v1/invocations/inv-none";
    let reply = call(&app, Method::GET, missing, Value::Null).await;
    assert_refused(&reply, StatusCode::NOT_FOUND, "not_found", &["inv-none"]);

    // Code that is not ours runs by invocation only where it would in a workflow.
    let reply = invoke(&app, "shell", json!({"inputs": {"command": "id"}})).await;
    assert_refused(
        &reply,
        StatusCode::FORBIDDEN,
        "kind_not_allowed",
        &["`shell`", "troupe projects allow default shell"],
    );
    let gate = json!({"allowed_kinds": ["echo"], "gated_kinds": ["echo"]});
    let reply = call(&app, Method::PUT, "/api/v1/projects/default/policy", gate).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let reply = invoke(&app, "echo", json!({})).await;
    assert_refused(
        &reply,
        StatusCode::FORBIDDEN,
        "gate_required",
        &["not by invocation"],
    );
}

#[tokio::test]
async fn only_who_may_run_workflows_in_its_project_invokes_or_sees_an_invocation() {
    let team = Team::new().await;
    let owner = team.user("owner@example.com", Role::OrgOwner).await;
    let viewer = team.user("vic@example.com", Role::Viewer).await;
    let ada = team.user("ada@example.com", Role::Developer).await;
    let bob = team.user("bob@example.com", Role::Developer).await;
    let (status, body) = team
        .post(&owner, "/api/v1/projects", json!({ "project_id": "shop" }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let member = "/api/v1/projects/shop/members/ada@example.com";
    let (status, body) = team
        .call(&owner, Method::PUT, member, json!({ "role": "developer" }))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");

    let asked = json!({"project": "shop", "inputs": {"a": 1}});
    let (status, refused) = team
        .post(&viewer, "/api/v1/agents/echo/invoke", asked.clone())
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
    let (status, done) = team
        .post(&ada, "/api/v1/agents/echo/invoke", asked.clone())
        .await;
    assert_eq!(
        (status, &done["status"]),
        (StatusCode::OK, &json!("succeeded")),
        "{done}"
    );
    assert_eq!(done["requested_by"], "ada@example.com");
    // Bob is not of the shop: it does not exist for him, as an invocation or a project.
    let (status, hidden) = team.post(&bob, "/api/v1/agents/echo/invoke", asked).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{hidden}");
    let uri = format!("/api/v1/invocations/{}", done["id"].as_str().unwrap());
    let (status, hidden) = team.get(&bob, &uri).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{hidden}");
    let (status, seen) = team.get(&ada, &uri).await;
    assert_eq!(
        (status, &seen["outputs"]),
        (StatusCode::OK, &json!({"a": 1}))
    );
}
