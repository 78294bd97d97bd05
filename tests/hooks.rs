//! Push webhooks over real HTTP to the real binary: a signed GitHub push and a GitLab
//! push start runs that read the push in `variables.push`; a redelivery starts no second
//! run; a wrong signature is a 401 and audited; a body over `server.max_body_bytes` is
//! refused before anything is checked. `troupe triggers` lists the triggers and pauses
//! them.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;

use serde_json::{Value, json};
use support::http1::{self, Response};
use support::{Server, free_address, get_json, post, run_troupe, troupe_with_input, wait_for_run};
use troupe_security::webhook::sign_github;

const SECRET: &str = "s3cret-for-hooks";

const WORKFLOW: &str = r#"
name: Note pushes
triggers:
  on_push: { branches: [main], secret: hooks.shop }
tasks:
  - id: note
    name: Note the push
    agent: echo
    inputs:
      repository: "{{ variables.push.repository }}"
      branch: "{{ variables.push.branch }}"
      commit: "{{ variables.push.commit }}"
"#;

fn github_push(branch: &str, commit: &str) -> String {
    json!({"ref": format!("refs/heads/{branch}"), "after": commit, "deleted": false,
           "repository": {"full_name": "acme/shop"}})
    .to_string()
}

/// POSTs `body` to the workflow's hook with `headers`.
fn deliver(server: &Server, workflow: &str, body: &str, headers: &[&str]) -> Response {
    let url = server.url(&format!("/api/v1/hooks/{workflow}"));
    http1::request_with("POST", &url, Some(("application/json", body)), headers)
        .expect("the hook answers")
}

fn from_github(
    server: &Server,
    workflow: &str,
    body: &str,
    delivery: &str,
    secret: &str,
) -> Response {
    let signature = format!(
        "X-Hub-Signature-256: {}",
        sign_github(secret.as_bytes(), body.as_bytes())
    );
    let id = format!("X-GitHub-Delivery: {delivery}");
    deliver(
        server,
        workflow,
        body,
        &["X-GitHub-Event: push", &id, &signature],
    )
}

fn body_of(response: &Response) -> Value {
    serde_json::from_str(&response.body).unwrap_or(Value::Null)
}

fn rejections(server: &Server) -> usize {
    let entries = get_json(server, "/api/v1/audit?action=webhook.rejected");
    entries.as_array().expect("entries").len()
}

/// A node whose secret store holds `hooks.shop`, with `workflow` saved; its id.
fn node_with_workflow(scratch: &std::path::Path, workflow: &str) -> (Server, String) {
    let server = node_with_secret(scratch);
    let (status, created) = post(&server, "/api/v1/workflows", "application/yaml", workflow);
    assert_eq!(status, 201, "{created}");
    let id = created["workflow_id"].as_str().unwrap().to_owned();
    (server, id)
}

/// A node on a data directory whose secret store holds `hooks.shop`.
fn node_with_secret(scratch: &std::path::Path) -> Server {
    let data = scratch.join("data");
    let store = format!("store.url=surrealkv://{}", data.display());
    let set = troupe_with_input(
        scratch,
        &["--set", &store, "secrets", "set", "hooks.shop"],
        &format!("{SECRET}\n"),
    );
    assert!(
        set.status.success(),
        "{}",
        String::from_utf8_lossy(&set.stderr)
    );
    Server::start(&data, &free_address())
}

#[test]
fn signed_pushes_start_one_run_each_and_read_the_push() {
    let scratch = tempfile::tempdir().unwrap();
    let (server, workflow) = node_with_workflow(scratch.path(), WORKFLOW);

    let body = github_push("main", "c0ffee1");
    let first = from_github(&server, &workflow, &body, "delivery-1", SECRET);
    assert_eq!(first.status, 201, "{}", first.body);
    let run_id = body_of(&first)["run_id"].as_str().unwrap().to_owned();
    let run = wait_for_run(&server, &run_id, 30, |run| run["status"] != "running");
    assert_eq!(run["status"], "completed", "{run:#}");
    assert_eq!(
        run["tasks"][0]["outputs"],
        json!({"repository": "acme/shop", "branch": "main", "commit": "c0ffee1"})
    );
    assert_eq!(run["started_by"], "github push", "{run:#}");

    // GitHub redelivers the same delivery: the same run, no second one.
    let again = from_github(&server, &workflow, &body, "delivery-1", SECRET);
    assert_eq!(again.status, 201, "{}", again.body);
    assert_eq!(body_of(&again)["run_id"], json!(run_id));
    assert!(
        again
            .head
            .to_lowercase()
            .contains("idempotent-replayed: true"),
        "{}",
        again.head
    );

    let gitlab = json!({"object_kind": "push", "ref": "refs/heads/main", "checkout_sha": "beef42",
                        "project": {"path_with_namespace": "acme/shop"}})
    .to_string();
    let token = format!("X-Gitlab-Token: {SECRET}");
    let from_gitlab = deliver(
        &server,
        &workflow,
        &gitlab,
        &[
            "X-Gitlab-Event: Push Hook",
            "X-Gitlab-Event-UUID: g-1",
            &token,
        ],
    );
    assert_eq!(from_gitlab.status, 201, "{}", from_gitlab.body);
    let second = body_of(&from_gitlab)["run_id"].as_str().unwrap().to_owned();
    let run = wait_for_run(&server, &second, 30, |run| run["status"] != "running");
    assert_eq!(run["tasks"][0]["outputs"]["commit"], "beef42", "{run:#}");

    // Believed, and starting nothing: another branch, a ping.
    let other = from_github(
        &server,
        &workflow,
        &github_push("dev", "abc"),
        "delivery-2",
        SECRET,
    );
    assert_eq!(other.status, 202, "{}", other.body);
    assert_eq!(
        body_of(&other)["reason"],
        "branch `dev` is not in the workflow's on_push.branches (main)"
    );
    let signature = format!(
        "X-Hub-Signature-256: {}",
        sign_github(SECRET.as_bytes(), b"{}")
    );
    let ping = deliver(
        &server,
        &workflow,
        "{}",
        &["X-GitHub-Event: ping", "X-GitHub-Delivery: p-1", &signature],
    );
    assert_eq!(
        (ping.status, body_of(&ping)["reason"].clone()),
        (202, json!("a `ping` event starts nothing"))
    );

    let runs = get_json(&server, &format!("/api/v1/runs?workflow_id={workflow}"));
    assert_eq!(runs.as_array().unwrap().len(), 2, "{runs:#}");
}

#[test]
fn a_wrong_signature_is_refused_and_audited_and_a_huge_body_never_checked() {
    let scratch = tempfile::tempdir().unwrap();
    let (server, workflow) = node_with_workflow(scratch.path(), WORKFLOW);
    let body = github_push("main", "c0ffee1");

    let forged = from_github(&server, &workflow, &body, "delivery-1", "a guess");
    assert_eq!(forged.status, 401, "{}", forged.body);
    assert_eq!(
        body_of(&forged)["error"]["code"],
        "bad_signature",
        "{}",
        forged.body
    );
    assert_eq!(
        body_of(&forged)["error"]["message"],
        "the signature does not match the body under the workflow's secret"
    );
    let token = "X-Gitlab-Token: a guess";
    let guessed = deliver(
        &server,
        &workflow,
        &body,
        &[
            "X-Gitlab-Event: Push Hook",
            "X-Gitlab-Event-UUID: g-1",
            token,
        ],
    );
    assert_eq!(guessed.status, 401, "{}", guessed.body);
    let unsigned = deliver(
        &server,
        &workflow,
        &body,
        &["X-GitHub-Event: push", "X-GitHub-Delivery: d-3"],
    );
    assert_eq!(unsigned.status, 401, "{}", unsigned.body);
    let entries = get_json(&server, "/api/v1/audit?action=webhook.rejected");
    let targets: Vec<&str> = entries
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["target"].as_str().unwrap())
        .collect();
    assert_eq!(
        targets,
        [workflow.as_str(), workflow.as_str()],
        "{entries:#}"
    );

    // The forged delivery's id was not used up: the real one still starts its run.
    let real = from_github(&server, &workflow, &body, "delivery-1", SECRET);
    assert_eq!(real.status, 201, "{}", real.body);

    // 10 MB: refused for its size, before the signature is read.
    let (status, answer) = post_huge(
        &server,
        &format!("/api/v1/hooks/{workflow}"),
        10 * 1024 * 1024,
    );
    assert_eq!(status, 413, "{answer}");
    assert!(answer.contains("body_too_large"), "{answer}");
    assert_eq!(
        rejections(&server),
        2,
        "a refused size is not a rejected signature"
    );

    // A flood of forged deliveries: past 30 a minute, refused without an entry each.
    let mut statuses = Vec::new();
    for n in 0..29 {
        let forged = from_github(&server, &workflow, &body, &format!("flood-{n}"), "a guess");
        statuses.push(forged.status);
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 401).count(),
        28,
        "{statuses:?}"
    );
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
    assert_eq!(rejections(&server), 30, "the audit log stops at the limit");

    let missing = from_github(&server, "no-such-workflow", &body, "d-9", SECRET);
    assert_eq!(missing.status, 404, "{}", missing.body);
    let runs = get_json(&server, &format!("/api/v1/runs?workflow_id={workflow}"));
    assert_eq!(
        runs.as_array().unwrap().len(),
        1,
        "only the real delivery ran: {runs:#}"
    );
}

/// A POST of `size` bytes, written in pieces while the server may already have answered
/// and closed: its status and body.
fn post_huge(server: &Server, path: &str, size: usize) -> (u16, String) {
    let mut stream = TcpStream::connect(&server.address).unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Type: application/json\r\n\
         X-GitHub-Event: push\r\nX-GitHub-Delivery: big\r\nX-Hub-Signature-256: sha256={}\r\n\
         Content-Length: {size}\r\n\r\n",
        server.address,
        "0".repeat(64)
    );
    stream.write_all(head.as_bytes()).unwrap();
    let piece = vec![b' '; 64 * 1024];
    for _ in 0..size / piece.len() {
        if stream.write_all(&piece).is_err() {
            break;
        }
    }
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    (status, answer)
}

#[test]
fn paused_triggers_start_nothing_until_resumed_and_the_list_says_so() {
    let scratch = tempfile::tempdir().unwrap();
    let scheduled = WORKFLOW.replace(
        "  on_push: { branches: [main], secret: hooks.shop }",
        "  on_push: { branches: [main], secret: hooks.shop }\n  schedule: { cron: \"0 3 * * *\", timezone: Europe/Paris }",
    );
    let (server, workflow) = node_with_workflow(scratch.path(), &scheduled);
    let cli = |verb: &str| {
        let output = run_troupe(
            scratch.path(),
            &["triggers", verb, &workflow, "--server", &server.url("")],
        );
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    };

    cli("pause");
    let paused = from_github(
        &server,
        &workflow,
        &github_push("main", "c0ffee1"),
        "d-1",
        SECRET,
    );
    assert_eq!(paused.status, 202, "{}", paused.body);
    assert_eq!(
        body_of(&paused)["reason"],
        format!("the triggers of `{workflow}` are paused: troupe triggers resume {workflow}")
    );
    let listed = get_json(&server, "/api/v1/triggers");
    let view = &listed[0];
    assert_eq!(view["workflow_id"], json!(workflow), "{listed:#}");
    assert_eq!(view["paused"], true);
    assert_eq!(
        view["schedule"]["next_tick_ms"],
        Value::Null,
        "no next tick while paused"
    );
    assert_eq!(view["on_push"]["branches"], json!(["main"]));

    cli("resume");
    let started = from_github(
        &server,
        &workflow,
        &github_push("main", "c0ffee2"),
        "d-2",
        SECRET,
    );
    assert_eq!(started.status, 201, "{}", started.body);
    let listed = get_json(&server, "/api/v1/triggers");
    let next = listed[0]["schedule"]["next_tick_ms"]
        .as_i64()
        .expect("a next tick");
    // 03:00 in Paris is 01:00 or 02:00 UTC: a whole hour, within a day from now.
    assert_eq!(next % 3_600_000, 0, "{listed:#}");
    assert_eq!(
        listed[0]["last_runs"][0]["run_id"],
        body_of(&started)["run_id"]
    );
    let text = run_troupe(
        scratch.path(),
        &["triggers", "list", "--server", &server.url("")],
    );
    let table = String::from_utf8_lossy(&text.stdout);
    assert!(
        table.contains("cron 0 3 * * * Europe/Paris; push main"),
        "{table}"
    );
    let audit = get_json(&server, "/api/v1/audit?action=triggers.pause");
    assert_eq!(audit[0]["target"], json!(workflow), "{audit:#}");
}
