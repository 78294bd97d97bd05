//! The OpenAI- and Anthropic-compatible endpoints of a real `troupe up`, over real HTTP,
//! with the real default models.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{Server, free_address, get_json, post};

fn server() -> (tempfile::TempDir, Server) {
    let scratch = tempfile::tempdir().unwrap();
    let server = Server::start(&scratch.path().join("data"), &free_address());
    (scratch, server)
}

/// What `troupe models list` prints about the node `server`.
fn models_list(scratch: &std::path::Path, server: &Server) -> String {
    let address = format!("server.address={}", server.address);
    let listing = support::run_troupe(scratch, &["--set", &address, "models", "list"]);
    String::from_utf8_lossy(&listing.stdout).into_owned()
}

fn chat_body(question: &str, extra: Value) -> String {
    let mut body = json!({
        "messages": [{"role": "user", "content": question}],
        "max_tokens": 16,
        "temperature": 0,
    });
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    body.to_string()
}

/// The `data:` payloads of a server-sent event stream, in order.
fn sse_payloads(body: &str) -> Vec<String> {
    body.lines()
        .filter_map(|line| line.strip_prefix("data: ").or(line.strip_prefix("data:")))
        .map(|data| data.trim().to_string())
        .collect()
}

#[test]
fn local_models_are_served_over_the_openai_and_anthropic_protocols() {
    let (scratch, server) = server();
    let models = get_json(&server, "/v1/models");
    let ids: Vec<&str> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|model| model["id"].as_str())
        .collect();
    assert_eq!(
        ids,
        ["smollm2-135m-instruct-q4_1", "all-minilm-l6-v2"],
        "{models}"
    );

    let question = "What is the capital of France?";
    let (status, answer) = post(
        &server,
        "/v1/chat/completions",
        "application/json",
        &chat_body(question, json!({})),
    );
    assert_eq!(status, 200, "{answer}");
    let text = answer["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(!text.is_empty());
    assert!(["stop", "length"].contains(&answer["choices"][0]["finish_reason"].as_str().unwrap()));
    assert!(answer["usage"]["prompt_tokens"].as_u64().unwrap() > 5);
    let completion_tokens = answer["usage"]["completion_tokens"].as_u64().unwrap();
    assert!((1..=16).contains(&completion_tokens));

    // The same greedy request streamed: the deltas add up to the same text.
    let body = chat_body(
        question,
        json!({"stream": true, "stream_options": {"include_usage": true}}),
    );
    let response = support::http1::request(
        "POST",
        &server.url("/v1/chat/completions"),
        Some(("application/json", &body)),
    )
    .unwrap();
    assert_eq!(response.status, 200, "{}", response.body);
    let payloads = sse_payloads(&response.body);
    assert_eq!(payloads.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<Value> = payloads[..payloads.len() - 1]
        .iter()
        .map(|payload| serde_json::from_str(payload).unwrap())
        .collect();
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let streamed: String = chunks
        .iter()
        .filter_map(|chunk| chunk["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(streamed, text);
    let usage = chunks.last().unwrap();
    assert_eq!(
        usage["usage"]["completion_tokens"].as_u64(),
        Some(completion_tokens)
    );

    let (status, embedded) = post(
        &server,
        "/v1/embeddings",
        "application/json",
        &json!({"input": ["a failing test", "a broken build"]}).to_string(),
    );
    assert_eq!(status, 200, "{embedded}");
    for item in embedded["data"].as_array().unwrap() {
        let vector: Vec<f64> = serde_json::from_value(item["embedding"].clone()).unwrap();
        assert_eq!(vector.len(), 384);
        let norm: f64 = vector.iter().map(|x| x * x).sum::<f64>().sqrt();
        assert!((norm - 1.0).abs() < 1e-3, "{norm}");
    }
    assert!(embedded["usage"]["prompt_tokens"].as_u64().unwrap() >= 4);

    let (status, message) = post(
        &server,
        "/v1/messages",
        "application/json",
        &json!({
            "max_tokens": 12, "temperature": 0, "system": "Answer briefly.",
            "messages": [{"role": "user", "content": [{"type": "text", "text": question}]}],
        })
        .to_string(),
    );
    assert_eq!(status, 200, "{message}");
    assert_eq!(message["type"], "message");
    assert!(!message["content"][0]["text"].as_str().unwrap().is_empty());
    assert!(message["usage"]["output_tokens"].as_u64().unwrap() >= 1);

    let listing = models_list(scratch.path(), &server);
    assert_eq!(listing.matches("yes (1 worker)").count(), 2, "{listing}");

    let loaded = get_json(&server, "/api/v1/models");
    assert_eq!(loaded["serving"], true);
    assert_eq!(loaded["models"][0]["quantization"], "Q4_1");
    assert_eq!(loaded["models"][0]["device"], "cpu");
}

/// Two chats with one long system prompt: the second takes the prompt's start from the
/// prefix cache, which a node keeps by default, and `troupe models list` says so.
#[test]
fn a_repeated_system_prompt_is_served_from_the_prefix_cache() {
    let (scratch, server) = server();
    let system = "You review pull requests for a build system, briefly. ".repeat(8);
    for question in ["Did build 7 add tests?", "What broke in build 9?"] {
        let messages = json!([
            {"role": "system", "content": system},
            {"role": "user", "content": question},
        ]);
        let body = json!({"max_tokens": 4, "temperature": 0, "messages": messages});
        let (status, answer) = post(
            &server,
            "/v1/chat/completions",
            "application/json",
            &body.to_string(),
        );
        assert_eq!(status, 200, "{answer}");
    }
    let loaded = get_json(&server, "/api/v1/models");
    let cache = &loaded["models"][0]["prefix_cache"];
    // The system prompt is some 90 tokens: at least two whole blocks of 32.
    let reused = cache["hit_tokens"].as_u64().unwrap();
    assert!(reused >= 64, "{cache}");
    let counted = support::metric(&server, "troupe_inference_prefix_cache_hit_tokens_total");
    assert_eq!(counted, Some(reused as f64), "what /metrics counts");
    let held = support::metric(&server, "troupe_inference_prefix_cache_bytes");
    assert_eq!(held, cache["bytes"].as_f64());
    assert_eq!(
        cache["capacity_bytes"],
        256 << 20,
        "models.prefix_cache_mb's default"
    );

    let listing = models_list(scratch.path(), &server);
    let line = listing
        .lines()
        .find(|line| line.starts_with("prefix cache: "));
    assert!(
        line.is_some_and(|line| line.contains(&format!("{reused} prompt tokens reused"))),
        "{listing}"
    );
}

#[test]
fn bad_requests_get_clear_errors_and_the_models_keep_serving() {
    let (_scratch, server) = server();
    let long_prompt = "word ".repeat(5000);
    let cases: Vec<(String, &str)> = vec![
        ("{not json".into(), "JSON"),
        (json!({"messages": []}).to_string(), "messages"),
        (chat_body("hi", json!({"max_tokens": 0})), "max_tokens"),
        (chat_body("hi", json!({"temperature": -1})), "temperature"),
        (chat_body(&long_prompt, json!({})), "shorten"),
        (
            json!({"messages": [{"role": "tool", "content": "x"}]}).to_string(),
            "role",
        ),
        (chat_body("hi", json!({"n": 2})), "n = 1"),
    ];
    for (body, expected) in cases {
        let (status, error) = post(&server, "/v1/chat/completions", "application/json", &body);
        assert_eq!(status, 400, "{body:.80}: {error}");
        let message = error["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(expected),
            "{expected:?} not in {message:?}"
        );
    }
    let (status, error) = post(
        &server,
        "/v1/embeddings",
        "application/json",
        r#"{"input": []}"#,
    );
    assert_eq!(status, 400, "{error}");

    // Invalid UTF-8 inside a JSON string.
    let address = server.address.clone();
    let mut stream = TcpStream::connect(&address).unwrap();
    let mut body = br#"{"messages":[{"role":"user","content":""#.to_vec();
    body.extend([0xff, 0xfe]);
    body.extend(br#""}]}"#);
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(&body).unwrap();
    let mut status_line = String::new();
    BufReader::new(stream).read_line(&mut status_line).unwrap();
    assert!(status_line.contains(" 400 "), "{status_line}");

    let (status, answer) = post(
        &server,
        "/v1/chat/completions",
        "application/json",
        &chat_body("Hello", json!({"max_tokens": 2})),
    );
    assert_eq!(status, 200, "{answer}");
}

#[test]
fn a_client_that_disconnects_mid_stream_frees_its_sequence() {
    let (_scratch, server) = server();
    let body = chat_body(
        "Tell me a very long story.",
        json!({"stream": true, "max_tokens": 3000}),
    );
    let mut stream = TcpStream::connect(&server.address).unwrap();
    write!(
        stream,
        "POST /v1/chat/completions HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        server.address,
        body.len()
    )
    .unwrap();
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    let mut contents = 0;
    while contents < 3 {
        line.clear();
        assert!(
            reader.read_line(&mut line).unwrap() > 0,
            "stream ended early"
        );
        if line.contains("\"content\":\"") && !line.contains("\"content\":\"\"") {
            contents += 1;
        }
    }
    let busy = get_json(&server, "/api/v1/models");
    let load = |models: &Value| -> u64 {
        models["workers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|worker| worker["load"].as_u64().unwrap())
            .sum()
    };
    assert_eq!(load(&busy), 1, "{busy}");
    drop(reader);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let models = get_json(&server, "/api/v1/models");
        if load(&models) == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the sequence was never freed: {models}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The abandoned call is in the ledger: not served, with the tokens it streamed.
    let deadline = Instant::now() + Duration::from_secs(5);
    let costs = loop {
        let costs = get_json(&server, "/api/v1/costs");
        if costs["total"]["calls"] == 1 || Instant::now() > deadline {
            break costs;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(costs["total"]["calls"], 1, "{costs:#}");
    assert_eq!(costs["total"]["requests"], 0, "{costs:#}");
    assert_eq!(costs["total"]["failures"], 1, "{costs:#}");
    assert!(
        costs["total"]["tokens_out"].as_u64().unwrap() >= 3,
        "{costs:#}"
    );
}

#[test]
fn a_thousand_concurrent_requests_are_each_answered_or_refused_with_a_retry_time() {
    let (_scratch, server) = server();
    let url = server.url("/v1/chat/completions");
    let body = chat_body("Hi", json!({"max_tokens": 1}));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (served, refused) = runtime.block_on(async move {
        let client = reqwest::Client::new();
        let requests: Vec<_> = (0..1000)
            .map(|_| {
                let request = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body.clone());
                tokio::spawn(request.send())
            })
            .collect();
        let (mut served, mut refused) = (0, 0);
        for request in requests {
            let response = request
                .await
                .unwrap()
                .expect("every request gets an answer");
            match response.status().as_u16() {
                200 => served += 1,
                429 => {
                    assert!(response.headers().contains_key("retry-after"));
                    refused += 1;
                }
                other => panic!(
                    "status {other}: {}",
                    response.text().await.unwrap_or_default()
                ),
            }
        }
        (served, refused)
    });
    assert_eq!(served + refused, 1000);
    // At least a full batch and queue (16 + 64 by default) were served.
    assert!(served >= 80, "served {served}, refused {refused}");
    let (status, answer) = post(
        &server,
        "/v1/chat/completions",
        "application/json",
        &chat_body("Hello", json!({"max_tokens": 2})),
    );
    assert_eq!(status, 200, "the node still serves: {answer}");
}

/// A busy node's `/metrics`: a run, a model call and a request for nothing show up by
/// route, kind and outcome, and Prometheus's own linter accepts the scrape.
#[test]
fn a_busy_node_s_metrics_are_counted_and_pass_promtool() {
    let (_scratch, server) = server();
    let workflow = "name: Counted\ntasks:\n  - { id: greet, name: Greet, agent: echo, inputs: { text: hi } }\n";
    let run_id = support::save_and_start(&server, workflow, &json!({}));
    let run = support::wait_for_run(&server, &run_id, 30, |run| run["status"] != "running");
    assert_eq!(run["status"], "completed", "{run:#}");
    let (status, answer) = post(
        &server,
        "/v1/chat/completions",
        "application/json",
        &chat_body(
            "Name a colour.",
            json!({"model": "smollm2-135m-instruct-q4_1"}),
        ),
    );
    assert_eq!(status, 200, "{answer}");
    let missing = support::http1::blocking_get(&server.url("/no/such/page")).unwrap();
    assert_eq!(missing.status, 404);

    assert_eq!(get_json(&server, "/readyz")["models"], "ok");
    let scrape = support::http1::blocking_get(&server.url("/metrics")).unwrap();
    assert_eq!(scrape.status, 200, "{}", scrape.body);
    let text = &scrape.body;
    for series in [
        "troupe_runs_started_total 1",
        r#"troupe_runs_finished_total{status="completed"} 1"#,
        r#"troupe_task_attempts_total{kind="echo",outcome="succeeded"} 1"#,
        r#"gen_ai_client_operation_duration_seconds_count{gen_ai_operation_name="chat",gen_ai_provider_name="local",gen_ai_request_model="smollm2-135m-instruct-q4_1",outcome="ok"} 1"#,
        r#"troupe_http_requests_total{method="POST",route="/api/v1/workflows/{id}/runs",status="201"} 1"#,
        r#"troupe_http_requests_total{method="GET",route="unmatched",status="404"} 1"#,
        r#"troupe_pool_tasks{kind="echo",state="running"} 0"#,
        r#"troupe_pool_tasks{kind="echo",state="queued"} 0"#,
        r#"gen_ai_server_time_to_first_token_seconds_count{gen_ai_request_model="smollm2-135m-instruct-q4_1"} 1"#,
        r#"troupe_component_up{component="store"} 1"#,
        r#"troupe_component_up{component="models"} 1"#,
        "troupe_approvals_waiting 0",
        "troupe_approval_oldest_wait_seconds 0",
        "troupe_audit_chain_intact 1",
    ] {
        assert!(
            text.lines().any(|line| line == series),
            "no `{series}` in\n{text}"
        );
    }
    for prefix in [
        r#"troupe_store_operation_duration_seconds_count{operation="append"} "#,
        r#"troupe_store_operation_duration_seconds_count{operation="read"} "#,
        "troupe_audit_chain_entries ",
        "troupe_audit_last_verification_timestamp_seconds ",
    ] {
        let value = text
            .lines()
            .find_map(|line| line.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no `{prefix}` in\n{text}"));
        assert!(value.parse::<f64>().unwrap() > 0.0, "{prefix}{value}");
    }
    // Time per output token needs a second token.
    if answer["usage"]["completion_tokens"].as_u64().unwrap() > 1 {
        let per_token = r#"gen_ai_server_time_per_output_token_seconds_count{gen_ai_request_model="smollm2-135m-instruct-q4_1"} 1"#;
        assert!(text.lines().any(|line| line == per_token), "{text}");
    }
    let budget = text
        .lines()
        .find_map(|line| line.strip_prefix("troupe_paid_budget_usd_per_day "))
        .map(|value| value.parse::<f64>().unwrap());
    assert_eq!(budget, Some(10.0), "providers.budget_usd_per_day's default");
    let promtool = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool is missing: run ./scripts/setup (it installs Debian's prometheus)");
    promtool
        .stdin
        .as_ref()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let checked = promtool.wait_with_output().unwrap();
    assert!(
        checked.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
}
