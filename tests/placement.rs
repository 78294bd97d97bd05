//! Placement across the cluster, end to end: three `troupe up` processes on a real
//! SurrealDB server, linked over ractor_cluster. The parallel tasks of one run are
//! spread over the nodes by their free slots, a task that names a label runs only on
//! the node that has it, and the run record says which node ran each attempt. An agent
//! invoked outside any workflow is placed by the same rules.

mod support;

use std::collections::BTreeSet;

use support::*;

fn spread_workflow(lanes: usize) -> String {
    let mut yaml = String::from("name: Spread\ntasks:\n");
    for lane in 0..lanes {
        yaml.push_str(&format!(
            "  - {{ id: lane{lane}, name: Lane {lane}, agent: shell, inputs: {{ command: \"sleep 1; echo lane{lane} >> marks.txt\", working_dir: \"{{{{ variables.shared }}}}\" }} }}\n"
        ));
    }
    yaml.push_str(
        "  - { id: on_gpu, name: On a GPU, agent: shell, runs_on: [gpu], inputs: { command: \"echo gpu >> marks.txt\", working_dir: \"{{ variables.shared }}\" } }\n",
    );
    yaml.push_str("variables:\n  shared: \"\"\n");
    yaml
}

/// Cluster node `name` on `surreal`, its log in `dir`, with more `--set` settings.
fn node(surreal: &SurrealServer, dir: &std::path::Path, name: &str, extra: &[&str]) -> Server {
    start_cluster_node_with(
        surreal,
        &surreal.address,
        name,
        LeaseLength::Default,
        &dir.join(name),
        &free_address(),
        extra,
    )
}

#[test]
fn parallel_tasks_run_on_several_nodes_and_a_labelled_task_where_its_label_is() {
    let dir = tempfile::tempdir().unwrap();
    let surreal = SurrealServer::start(&dir.path().join("surreal.log"));
    let shared = shared_dir(dir.path());
    let collector = otlp::Collector::start();
    let traced = format!("telemetry.otlp.endpoint={}", collector.http);
    let start = |name: &str, extra: &[&str]| {
        let mut extra = extra.to_vec();
        extra.push(&traced);
        node(&surreal, dir.path(), name, &extra)
    };
    let a = start("a", &[]);
    let b = start("b", &[]);
    let c = start("c", &["cluster.labels=[\"gpu\"]"]);
    wait_for_links(&a, &["b", "c"]);
    wait_for_links(&b, &["a", "c"]);
    wait_for_links(&c, &["a", "b"]);
    allow_kinds(&a, "default", &["shell"]);
    wait_for_load_reports(&a);

    let lanes = 12;
    let body = serde_json::json!({"variables": {"shared": shared.display().to_string()}, "started_by": "ada"});
    let run_id = save_and_start(&a, &spread_workflow(lanes), &body);
    let run = wait_for_run(&a, &run_id, 60, |run| run["status"] != "running");
    assert_eq!(run["status"], "completed", "{run:#}");

    let node_of = |task: &str| {
        run["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == task)
            .and_then(|t| t["node"].as_str())
            .unwrap_or_else(|| panic!("{task} has no node: {run:#}"))
            .to_string()
    };
    let lane_nodes: BTreeSet<String> = (0..lanes)
        .map(|lane| node_of(&format!("lane{lane}")))
        .collect();
    assert!(
        lane_nodes.len() >= 2,
        "all {lanes} lanes ran on {lane_nodes:?}"
    );
    assert_eq!(node_of("on_gpu"), "c", "only c has the label");

    let marks = std::fs::read_to_string(shared.join("marks.txt")).unwrap();
    for lane in 0..lanes {
        assert_eq!(count_marks(&marks, &format!("lane{lane}")), 1, "{marks}");
    }
    let events = get_json(&a, &format!("/api/v1/runs/{run_id}/events"));
    let finished_elsewhere = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"]["kind"] == "attempt_succeeded" && e["event"]["node"] != "a")
        .count();
    assert!(finished_elsewhere >= 2, "{events:#}");

    assert_one_trace(&collector, &run, lanes, &lane_nodes);

    // One attempt outside any workflow is placed the same way, and any node answers
    // for it: asked at a, it runs on c, the node with the label, and b shows it.
    let asked = r#"{"inputs": {"lane": "alone"}, "runs_on": ["gpu"]}"#;
    let (status, invoked) = post(&a, "/api/v1/agents/echo/invoke", "application/json", asked);
    assert_eq!(status, 200, "{invoked}");
    assert_eq!(
        (
            &invoked["status"],
            &invoked["node"],
            &invoked["accepted_by"]
        ),
        (&"succeeded".into(), &"c".into(), &"a".into()),
        "{invoked}"
    );
    let seen = get_json(
        &b,
        &format!("/api/v1/invocations/{}", invoked["id"].as_str().unwrap()),
    );
    assert_eq!(
        seen["outputs"],
        serde_json::json!({"lane": "alone"}),
        "{seen}"
    );
}

/// Waits until each node reports its memory and local models with its lease (from its
/// first renewal on), beside its slots.
fn wait_for_load_reports(server: &Server) {
    let reported = |member: &serde_json::Value| {
        let load = &member["load"];
        load["free_memory_bytes"]
            .as_u64()
            .is_some_and(|bytes| bytes > 0)
            && load["models"].is_array()
            && load["free_slots"].is_u64()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let view = get_json(server, "/api/v1/cluster");
        if view["members"].as_array().unwrap().iter().all(reported) {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "{view}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// However many nodes ran `run`, it is one trace: every attempt's span, sent by the
/// node that ran it, is a child of the root its owner (a) sent.
fn assert_one_trace(
    collector: &otlp::Collector,
    run: &serde_json::Value,
    lanes: usize,
    lane_nodes: &BTreeSet<String>,
) {
    let trace_id = run["trace_id"].as_str().expect("a trace id");
    let spans = collector.wait_for_trace(trace_id, 30, |spans| {
        spans
            .iter()
            .any(|span| span.name == "invoke_workflow Spread")
            && spans
                .iter()
                .filter(|span| span.name == "invoke_agent shell")
                .count()
                > lanes
    });
    let root = spans
        .iter()
        .find(|span| span.name == "invoke_workflow Spread")
        .unwrap();
    assert_eq!(root.node, "a", "the owner ends the run and sends its root");
    let attempts: Vec<_> = spans
        .iter()
        .filter(|span| span.name == "invoke_agent shell")
        .collect();
    assert!(
        attempts
            .iter()
            .all(|span| span.parent_span_id == root.span_id),
        "{attempts:#?}"
    );
    let traced_nodes: BTreeSet<&str> = attempts.iter().map(|span| span.node.as_str()).collect();
    assert_eq!(
        traced_nodes,
        lane_nodes.iter().map(String::as_str).chain(["c"]).collect(),
        "each attempt's span comes from the node that ran it"
    );
}

/// A worker that sees its attempt's run taken over in a newer epoch, and no submission
/// of that epoch join the attempt (the new owner ran it elsewhere), cancels it: it does
/// not run on beside its replacement.
#[test]
fn an_attempt_whose_run_moved_on_without_it_is_cancelled_where_it_runs() {
    let dir = tempfile::tempdir().unwrap();
    let surreal = SurrealServer::start(&dir.path().join("surreal.log"));
    let shared = shared_dir(dir.path());
    let start = |name: &str, extra: &[&str]| node(&surreal, dir.path(), name, extra);
    let a = start("a", &[]);
    let b = start("b", &["cluster.labels=[\"gpu\"]"]);
    wait_for_links(&a, &["b"]);
    wait_for_links(&b, &["a"]);
    allow_kinds(&a, "default", &["shell"]);
    let workflow = "name: Long on b\ntasks:\n  - { id: long, name: Long, agent: shell, runs_on: [gpu], inputs: { command: \"echo start >> marks.txt; sleep 8; echo end >> marks.txt\", working_dir: \"{{ variables.shared }}\" } }\nvariables:\n  shared: \"\"\n";
    let body = serde_json::json!({"variables": {"shared": shared.display().to_string()}});
    let run_id = save_and_start(&a, workflow, &body);
    let marks = shared.join("marks.txt");
    wait_for_mark(&marks, "start");
    let started = std::time::Instant::now();

    // Another owner takes the run over in the store, as a node that lost its link to b
    // would, and does not send the attempt to b again.
    let store = troupe_config::StoreSettings {
        url: format!("ws://{}", surreal.address),
        username: Some("root".into()),
        password: Some("root".into()),
        ..Default::default()
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let taken = runtime.block_on(async {
        let store = troupe_store::Store::open(&store).await.unwrap();
        let run = store.run(&run_id.as_str().into()).await.unwrap();
        store
            .take_over_run(&run.run_id, run.epoch, "b")
            .await
            .unwrap()
    });
    assert!(taken.is_some(), "the take-over's compare-and-set won");

    std::thread::sleep(std::time::Duration::from_secs(10).saturating_sub(started.elapsed()));
    let written = std::fs::read_to_string(&marks).unwrap();
    assert_eq!(count_marks(&written, "start"), 1, "{written}");
    assert_eq!(
        count_marks(&written, "end"),
        0,
        "the attempt ran on: {written}"
    );
    let log = std::fs::read_to_string(dir.path().join("b.log")).unwrap();
    assert!(
        log.contains("cancelled an attempt its run no longer wants"),
        "{log}"
    );
}

/// Waits until `server`'s placement sees `peer` report a generation model with its lease.
fn wait_for_model(server: &Server, peer: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let view = get_json(server, "/api/v1/cluster");
        let serves = view["members"].as_array().unwrap().iter().any(|member| {
            member["name"] == peer && member["load"]["generation"]["model"].is_string()
        });
        if serves {
            // The placement reads the node table once a heartbeat (1 s by default).
            std::thread::sleep(std::time::Duration::from_millis(2_000));
            return;
        }
        assert!(std::time::Instant::now() < deadline, "{view}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// POST `body` as JSON to `server`, keeping the response's head.
fn post_head(server: &Server, path: &str, body: &serde_json::Value) -> http1::Response {
    let body = body.to_string();
    http1::request("POST", &server.url(path), Some(("application/json", &body))).unwrap()
}

/// A node that serves no model (`models.serve = false`) answers `/v1`, streamed or not,
/// and its provider chain's `local` link with a peer's model; each answer names the node
/// whose model gave it.
#[test]
fn a_node_without_models_is_answered_by_a_peer_s_model() {
    let dir = tempfile::tempdir().unwrap();
    let surreal = SurrealServer::start(&dir.path().join("surreal.log"));
    let a = node(&surreal, dir.path(), "a", &["models.serve=false"]);
    let b = node(&surreal, dir.path(), "b", &[]);
    wait_for_links(&a, &["b"]);
    wait_for_model(&a, "b");
    let chat = |stream: bool| {
        serde_json::json!({
            "model": "smollm2-135m-instruct-q4_1", "max_tokens": 8, "temperature": 0,
            "stream": stream, "messages": [{"role": "user", "content": "Name a colour."}],
        })
    };

    let answered = post_head(&a, "/v1/chat/completions", &chat(false));
    assert_eq!(answered.status, 200, "{}", answered.body);
    assert_eq!(answered.header("x-troupe-node"), Some("b"));
    let answer: serde_json::Value = serde_json::from_str(&answered.body).unwrap();
    let text = answer["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(!text.is_empty(), "{answer}");
    // The same request at b is answered by b's own model, word for word (greedy).
    let at_b = post_head(&b, "/v1/chat/completions", &chat(false));
    assert_eq!(at_b.header("x-troupe-node"), Some("b"));
    let at_b: serde_json::Value = serde_json::from_str(&at_b.body).unwrap();
    assert_eq!(at_b["choices"][0]["message"]["content"], text);

    // Streamed, the events pass through as they come.
    let streamed = post_head(&a, "/v1/chat/completions", &chat(true));
    assert_eq!(streamed.status, 200, "{}", streamed.body);
    assert_eq!(streamed.header("x-troupe-node"), Some("b"));
    assert!(
        streamed
            .header("content-type")
            .unwrap()
            .starts_with("text/event-stream")
    );
    assert!(
        streamed.body.trim_end().ends_with("data: [DONE]"),
        "{}",
        streamed.body
    );

    let embed = serde_json::json!({"input": ["a failing test"]});
    let embedded = post_head(&a, "/v1/embeddings", &embed);
    assert_eq!(embedded.status, 200, "{}", embedded.body);
    assert_eq!(embedded.header("x-troupe-node"), Some("b"));

    // The provider chain's `local` link on a asks b's model through b's gateway.
    let completion = serde_json::json!({
        "messages": [{"role": "user", "content": "Name a colour."}], "max_tokens": 8,
    });
    let (status, completed) = post(
        &a,
        "/api/v1/complete",
        "application/json",
        &completion.to_string(),
    );
    assert_eq!(status, 200, "{completed}");
    assert_eq!(completed["provider"], "local", "{completed}");
    assert!(
        !completed["text"].as_str().unwrap().is_empty(),
        "{completed}"
    );
}
