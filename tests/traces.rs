//! Traces over OTLP from real nodes to a real (test) collector that decodes the
//! protocol: a run is one trace with the GenAI spans, over HTTP and over gRPC, and a
//! collector that is gone costs the runs nothing.

mod support;

use serde_json::{Value, json};
use support::otlp::{Collector, ReceivedSpan};
use support::{Server, free_address, get_json, http1, post};

const CALLER_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
const CALLER_SPAN: &str = "b7ad6b7169203331";

fn traced_node(scratch: &tempfile::TempDir, endpoint: &str, protocol: &str) -> Server {
    Server::start_with(
        &scratch.path().join("data"),
        &free_address(),
        &[],
        &[
            ("TROUPE_CLUSTER__NODE_NAME", "traced-node"),
            ("TROUPE_TELEMETRY__OTLP__ENDPOINT", endpoint),
            ("TROUPE_TELEMETRY__OTLP__PROTOCOL", protocol),
            ("TROUPE_TELEMETRY__OTLP__TIMEOUT_MS", "500"),
            (
                "TROUPE_TELEMETRY__TRACE_URL",
                "http://traces.example/trace/{trace_id}",
            ),
        ],
    )
}

/// Saves `workflow` and starts it from a caller whose own span is `CALLER_SPAN`.
fn start_traced(server: &Server, workflow: &str) -> String {
    let (status, created) = post(server, "/api/v1/workflows", "application/yaml", workflow);
    assert_eq!(status, 201, "{created}");
    let id = created["workflow_id"].as_str().unwrap();
    let traceparent = format!("traceparent: 00-{CALLER_TRACE}-{CALLER_SPAN}-01");
    let started = http1::request_with(
        "POST",
        &server.url(&format!("/api/v1/workflows/{id}/runs")),
        Some(("application/json", "{}")),
        &[&traceparent],
    )
    .unwrap();
    assert_eq!(started.status, 201, "{}", started.body);
    let started: Value = serde_json::from_str(&started.body).unwrap();
    started["run_id"].as_str().unwrap().to_string()
}

fn named<'a>(spans: &'a [ReceivedSpan], name: &str) -> &'a ReceivedSpan {
    spans
        .iter()
        .find(|span| span.name == name)
        .unwrap_or_else(|| panic!("no span `{name}` in {spans:#?}"))
}

fn has_root(name: impl Into<String>) -> impl Fn(&[ReceivedSpan]) -> bool {
    let name = name.into();
    move |spans| spans.iter().any(|span| span.name == name)
}

#[test]
fn a_run_with_a_model_task_and_a_shell_task_is_one_trace_of_genai_spans() {
    let collector = Collector::start();
    let scratch = tempfile::tempdir().unwrap();
    let server = traced_node(&scratch, &collector.http, "http");
    support::allow_kinds(&server, "default", &["shell"]);
    let workflow = "name: Traced\ntasks:\n  - id: plan\n    name: Plan\n    agent: planner\n    inputs:\n      goal: \"print a greeting\"\n  - { id: greet, name: Greet, agent: shell, depends_on: [plan], inputs: { command: 'echo hello' } }\n";
    let run_id = start_traced(&server, workflow);
    let run = support::wait_for_run(&server, &run_id, 300, |run| run["status"] != "running");
    assert_eq!(run["status"], "completed", "{run:#}");
    assert_eq!(
        run["trace_id"], CALLER_TRACE,
        "the run joins its caller's trace"
    );
    let url = format!("http://traces.example/trace/{CALLER_TRACE}");
    assert_eq!(run["trace_url"], url.as_str());

    let spans = collector.wait_for_trace(CALLER_TRACE, 30, has_root("invoke_workflow Traced"));
    let request = named(&spans, "POST /api/v1/workflows/{id}/runs");
    let root = named(&spans, "invoke_workflow Traced");
    let planner = named(&spans, "invoke_agent planner");
    let shell = named(&spans, "invoke_agent shell");
    assert_eq!(request.parent_span_id, CALLER_SPAN);
    assert_eq!(request.attribute("http.response.status_code"), Some("201"));
    assert_eq!(root.parent_span_id, request.span_id);
    assert_eq!(root.attribute("troupe.run.id"), Some(run_id.as_str()));
    assert_eq!(root.attribute("troupe.run.status"), Some("completed"));
    assert_eq!(
        root.attribute("gen_ai.operation.name"),
        Some("invoke_workflow")
    );
    for attempt in [planner, shell] {
        assert_eq!(attempt.parent_span_id, root.span_id, "{attempt:#?}");
        assert_eq!(
            attempt.attribute("gen_ai.operation.name"),
            Some("invoke_agent")
        );
        assert_eq!(attempt.attribute("troupe.run.id"), Some(run_id.as_str()));
    }
    assert_eq!(shell.attribute("gen_ai.agent.name"), Some("shell"));

    let model = "smollm2-135m-instruct-q4_1";
    let calls: Vec<&ReceivedSpan> = spans
        .iter()
        .filter(|span| span.name == format!("chat {model}"))
        .collect();
    assert!(!calls.is_empty(), "no model call in {spans:#?}");
    for call in calls {
        assert_eq!(call.parent_span_id, planner.span_id, "{call:#?}");
        assert_eq!(call.attribute("gen_ai.operation.name"), Some("chat"));
        assert_eq!(call.attribute("gen_ai.provider.name"), Some("local"));
        assert_eq!(call.attribute("gen_ai.request.model"), Some(model));
        assert_eq!(call.attribute("gen_ai.response.model"), Some(model));
        assert_eq!(call.attribute("troupe.local"), Some("true"));
        assert_eq!(call.attribute("troupe.cost_usd"), Some("0"));
        for tokens in ["gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens"] {
            let count: u64 = call.attribute(tokens).unwrap().parse().unwrap();
            assert!(count > 0, "{tokens} in {call:#?}");
        }
        let first_chunk: f64 = call
            .attribute("gen_ai.response.time_to_first_chunk")
            .unwrap()
            .parse()
            .unwrap();
        assert!(first_chunk > 0.0, "{call:#?}");
        assert!(call.attribute("troupe.quality").is_some(), "{call:#?}");
        assert_eq!(
            call.attribute("gen_ai.input.messages"),
            None,
            "content is off"
        );
    }
    let appends: Vec<&ReceivedSpan> = spans
        .iter()
        .filter(|span| span.name == "append run_log")
        .collect();
    assert!(
        appends
            .iter()
            .any(|append| append.parent_span_id == root.span_id),
        "the run's writes go under its root: {appends:#?}"
    );
    assert_eq!(appends[0].attribute("db.system.name"), Some("surrealdb"));
    for span in &spans {
        assert_eq!(
            (span.service.as_str(), span.node.as_str(), span.via),
            ("troupe", "traced-node", "http"),
            "{span:#?}"
        );
    }

    let shown = support::run_troupe(
        scratch.path(),
        &["runs", "show", &run_id, "--server", &server.url("")],
    );
    let stdout = String::from_utf8_lossy(&shown.stdout);
    assert!(stdout.contains(&format!("Trace {url}")), "{stdout}");
}

#[test]
fn spans_go_over_grpc_and_each_run_without_a_traced_caller_is_its_own_trace() {
    let collector = Collector::start();
    let scratch = tempfile::tempdir().unwrap();
    let server = traced_node(&scratch, &collector.grpc, "grpc");
    let workflow =
        "name: Echoed\ntasks:\n  - { id: greet, name: Greet, agent: echo, inputs: { text: hi } }\n";
    let first = support::save_and_start(&server, workflow, &json!({}));
    let second = support::save_and_start(&server, workflow, &json!({}));
    let mut traces = Vec::new();
    for run_id in [&first, &second] {
        let run = support::wait_for_run(&server, run_id, 30, |run| run["status"] != "running");
        assert_eq!(run["status"], "completed", "{run:#}");
        let trace_id = run["trace_id"].as_str().expect("a trace id").to_string();
        let spans = collector.wait_for_trace(&trace_id, 30, has_root("invoke_workflow Echoed"));
        let root = named(&spans, "invoke_workflow Echoed");
        let request = named(&spans, "POST /api/v1/workflows/{id}/runs");
        assert_eq!(
            request.parent_span_id, "",
            "the request is the trace's root"
        );
        assert_eq!(root.parent_span_id, request.span_id);
        assert_eq!(
            named(&spans, "invoke_agent echo").parent_span_id,
            root.span_id
        );
        assert!(spans.iter().all(|span| span.via == "grpc"), "{spans:#?}");
        traces.push(trace_id);
    }
    assert_ne!(traces[0], traces[1]);
}

#[test]
fn a_collector_that_is_gone_costs_runs_nothing_and_its_losses_are_counted() {
    let scratch = tempfile::tempdir().unwrap();
    // A port nothing listens on: every export is refused.
    let gone = format!("http://{}/v1/traces", free_address());
    let server = traced_node(&scratch, &gone, "http");
    let workflow =
        "name: Unseen\ntasks:\n  - { id: greet, name: Greet, agent: echo, inputs: { text: hi } }\n";
    for _ in 0..3 {
        let run_id = support::save_and_start(&server, workflow, &json!({}));
        let run = support::wait_for_run(&server, &run_id, 30, |run| run["status"] != "running");
        assert_eq!(run["status"], "completed", "{run:#}");
        assert!(run["trace_id"].is_string(), "{run:#}");
    }
    assert_eq!(get_json(&server, "/readyz")["store"], "ok");
    let failed = r#"troupe_otel_spans_total{outcome="failed"}"#;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !support::metric(&server, failed).is_some_and(|count| count > 0.0) {
        assert!(
            std::time::Instant::now() < deadline,
            "no failed export counted"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// The `/v1` endpoints call the local model directly: each call is a `chat {model}`
/// span under its request, in the caller's trace, streamed or not, with the tokens,
/// the finish reason and the time to the first chunk.
#[test]
fn openai_calls_are_chat_spans_in_their_callers_trace() {
    let collector = Collector::start();
    let scratch = tempfile::tempdir().unwrap();
    let server = traced_node(&scratch, &collector.http, "http");
    let model = "smollm2-135m-instruct-q4_1";
    for (trace, stream) in [
        (CALLER_TRACE, false),
        ("1bf7651916cd43dd8448eb211c80319d", true),
    ] {
        let body = json!({
            "messages": [{"role": "user", "content": "Say hello."}],
            "max_tokens": 8, "stream": stream,
        });
        let traceparent = format!("traceparent: 00-{trace}-{CALLER_SPAN}-01");
        let answered = http1::request_with(
            "POST",
            &server.url("/v1/chat/completions"),
            Some(("application/json", &body.to_string())),
            &[&traceparent],
        )
        .unwrap();
        assert_eq!(answered.status, 200, "{}", answered.body);
        let spans = collector.wait_for_trace(trace, 30, has_root(&format!("chat {model}")));
        let request = named(&spans, "POST /v1/chat/completions");
        assert_eq!(request.parent_span_id, CALLER_SPAN, "{request:#?}");
        let call = named(&spans, &format!("chat {model}"));
        assert_eq!(call.parent_span_id, request.span_id, "{call:#?}");
        assert_eq!(call.attribute("gen_ai.provider.name"), Some("local"));
        assert_eq!(call.attribute("gen_ai.response.model"), Some(model));
        let finish = call.attribute("gen_ai.response.finish_reasons").unwrap();
        assert!(
            finish == "[\"length\"]" || finish == "[\"stop\"]",
            "{call:#?}"
        );
        let output: u64 = call
            .attribute("gen_ai.usage.output_tokens")
            .unwrap()
            .parse()
            .unwrap();
        assert!(output > 0, "stream {stream}: {call:#?}");
        let first: f64 = call
            .attribute("gen_ai.response.time_to_first_chunk")
            .unwrap()
            .parse()
            .unwrap();
        assert!(first > 0.0, "stream {stream}: {call:#?}");
    }
}

/// `/metrics` in OpenMetrics for a scraper that asks (Prometheus does): a real
/// Prometheus with exemplar storage scrapes it and keeps, on the HTTP duration buckets,
/// the trace id of a traced caller's request.
#[test]
fn histogram_buckets_carry_trace_ids_that_prometheus_keeps_as_exemplars() {
    let collector = Collector::start();
    let scratch = tempfile::tempdir().unwrap();
    let server = traced_node(&scratch, &collector.http, "http");
    let flags = ["--enable-feature=exemplar-storage"];
    let prometheus = support::prometheus::Daemon::prometheus(
        scratch.path(),
        &server.address,
        None,
        None,
        &flags,
    );
    prometheus.wait_for_scrape();
    let traceparent = format!("traceparent: 00-{CALLER_TRACE}-{CALLER_SPAN}-01");
    let asked = http1::request_with("GET", &server.url("/api/v1/agents"), None, &[&traceparent]);
    assert_eq!(asked.unwrap().status, 200);
    let scrape = http1::request_with(
        "GET",
        &server.url("/metrics"),
        None,
        &["accept: application/openmetrics-text; version=1.0.0"],
    )
    .unwrap();
    assert!(
        scrape.body.ends_with("# EOF\n"),
        "OpenMetrics ends so: {}",
        scrape.body
    );
    let bucket = "troupe_http_request_duration_seconds_bucket";
    let query = format!("/api/v1/query_exemplars?query={bucket}&start=0&end=9999999999");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let kept = prometheus.api(&query);
        let ours = kept["data"].as_array().into_iter().flatten().any(|series| {
            series["seriesLabels"]["route"] == "/api/v1/agents"
                && series["exemplars"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|exemplar| exemplar["labels"]["trace_id"] == CALLER_TRACE)
        });
        if ours {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no exemplar with the caller's trace id: {kept:#}"
        );
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
}
