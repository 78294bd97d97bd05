//! The audit log end to end: the real binary records what is done over HTTP, `troupe
//! audit verify` checks the chain on the persistent store after the node is gone, a
//! forged checkpoint file is refused, and a node does not start on a log that lost its
//! entries.

mod support;

use support::{Server, free_address, get_json, post, run_troupe, troupe};

const WORKFLOW: &str =
    "name: Audited\ntasks:\n  - { id: greet, name: Greet, agent: echo, inputs: { text: hi } }\n";

#[test]
fn actions_are_chained_verified_offline_and_exported() {
    let scratch = tempfile::tempdir().unwrap();
    let data = scratch.path().join("data");
    let server = Server::start(&data, &free_address());
    let (status, _) = post(&server, "/api/v1/workflows", "application/yaml", WORKFLOW);
    assert_eq!(status, 201);
    let (status, started) = post(
        &server,
        "/api/v1/workflows/audited/runs",
        "application/json",
        r#"{"started_by": "ada"}"#,
    );
    assert_eq!(status, 201, "{started}");
    let entries = get_json(&server, "/api/v1/audit");
    let actions: Vec<&str> = entries
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["node.start", "user.create", "workflow.create", "run.start"],
        "{entries:#}"
    );
    assert_eq!(entries[3]["actor"], "ada");
    let verified = get_json(&server, "/api/v1/audit/verify");
    assert_eq!(verified["intact"], true, "{verified:#}");
    let csv =
        support::http1::blocking_get(&server.url("/api/v1/audit?format=csv&actor=ada")).unwrap();
    assert!(csv.body.starts_with("seq,at_ms,actor"), "{}", csv.body);
    assert_eq!(csv.body.lines().count(), 2, "{}", csv.body);
    server.kill();

    let store = format!("store.url=surrealkv://{}", data.display());
    let output = run_troupe(scratch.path(), &["--set", &store, "audit", "verify"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("intact") && stdout.contains("4 entries"),
        "{stdout}"
    );

    // The checkpoints live beside the store; a forged one is refused, not skipped.
    let checkpoints = scratch.path().join("data-audit").join("checkpoints.jsonl");
    let text = std::fs::read_to_string(&checkpoints).unwrap();
    std::fs::write(&checkpoints, text.replacen("\"seq\":", "\"seq\":9", 1)).unwrap();
    let output = run_troupe(scratch.path(), &["--set", &store, "audit", "verify"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("signature does not match"), "{stderr}");
}

/// An HTTP sink on a real socket: it answers 503 to its first request and 204 to the
/// rest, keeping the body of each request it accepted.
fn http_sink() -> (
    String,
    std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>,
) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let accepted = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let kept = accepted.clone();
    std::thread::spawn(move || {
        for (number, stream) in listener.incoming().enumerate() {
            let mut stream = stream.unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if line.trim().is_empty() {
                    break;
                }
                if let Some((name, value)) = line.split_once(':')
                    && name.eq_ignore_ascii_case("content-length")
                {
                    length = value.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let status = if number == 0 {
                "503 Service Unavailable"
            } else {
                kept.lock()
                    .unwrap()
                    .push(serde_json::from_slice(&body).unwrap());
                "204 No Content"
            };
            let reply =
                format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            stream.write_all(reply.as_bytes()).unwrap();
        }
    });
    (address, accepted)
}

/// The checkpoints written beside the store in `scratch` (`data-audit/`), in order.
fn written_checkpoints(scratch: &std::path::Path) -> Vec<serde_json::Value> {
    let file = scratch.join("data-audit").join("checkpoints.jsonl");
    std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// The checkpoints the HTTP sink accepted, in order.
fn shipped_checkpoints(
    shipped: &std::sync::Mutex<Vec<serde_json::Value>>,
) -> Vec<serde_json::Value> {
    shipped
        .lock()
        .unwrap()
        .iter()
        .map(|body| body["checkpoint"].clone())
        .collect()
}

/// Checkpoints leave the host as they are signed: the HTTP sink gets each one (the
/// first after a retry), syslog gets each as an RFC 5424 line, and both match the
/// checkpoint file.
#[test]
fn checkpoints_are_shipped_to_an_http_sink_and_to_syslog() {
    let scratch = tempfile::tempdir().unwrap();
    let data = scratch.path().join("data");
    let (http, shipped) = http_sink();
    let syslog = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    syslog
        .set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    let flags = [
        "audit.checkpoint_every=1".to_string(),
        format!("audit.ship.http_url=http://{http}/checkpoints"),
        format!("audit.ship.syslog_udp={}", syslog.local_addr().unwrap()),
    ];
    let flags: Vec<&str> = flags
        .iter()
        .flat_map(|flag| ["--set", flag.as_str()])
        .collect();
    let server = Server::start_with(&data, &free_address(), &flags, &[]);
    let (status, _) = post(&server, "/api/v1/workflows", "application/yaml", WORKFLOW);
    assert_eq!(status, 201);
    let written = || written_checkpoints(scratch.path());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while shipped.lock().unwrap().len() < written().len() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let written = written();
    assert!(
        written.len() >= 3,
        "node.start, user.create, workflow.create: {written:?}"
    );
    let by_http = shipped_checkpoints(&shipped);
    assert_eq!(
        by_http, written,
        "the refused first delivery came again, in order"
    );
    for checkpoint in &written {
        let mut datagram = [0; 4096];
        let length = syslog.recv(&mut datagram).unwrap();
        let line = std::str::from_utf8(&datagram[..length]).unwrap();
        assert!(line.starts_with("<86>1 "), "{line}");
        let (_, message) = line.split_once(" audit-checkpoint - ").unwrap();
        let message: serde_json::Value = serde_json::from_str(message).unwrap();
        assert_eq!(message["checkpoint"], *checkpoint, "{line}");
    }
    drop(server);
}

/// What is done offline on a stopped node's store (the operator's way back in) leaves
/// the host too: `troupe users create` signs a checkpoint and ships it before it exits,
/// through the sink's refusal of the first delivery.
#[test]
fn an_offline_command_ships_the_checkpoints_it_signs_before_it_exits() {
    let scratch = tempfile::tempdir().unwrap();
    let (http, shipped) = http_sink();
    let settings = [
        format!(
            "store.url=surrealkv://{}",
            scratch.path().join("data").display()
        ),
        "audit.checkpoint_every=1".to_string(),
        format!("audit.ship.http_url=http://{http}/checkpoints"),
    ];
    let mut args: Vec<&str> = settings
        .iter()
        .flat_map(|setting| ["--set", setting.as_str()])
        .collect();
    args.extend([
        "users",
        "create",
        "--email",
        "ops@example.com",
        "--role",
        "viewer",
    ]);
    let output = run_troupe(scratch.path(), &args);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let written = written_checkpoints(scratch.path());
    assert_eq!(written.len(), 1, "user.create: {written:?}");
    let by_http = shipped_checkpoints(&shipped);
    assert_eq!(by_http, written, "shipped before the command exited");
}

/// The attack: the audit entries are wiped from the store while the node is down (here
/// the whole store, as an attacker with the disk could). The next start verifies the
/// chain against the signed checkpoints before signing anything, and refuses, saying
/// what happened and how to go on; `audit.on_tampering = "warn"` starts anyway.
#[test]
fn a_node_does_not_start_on_an_audit_log_that_lost_its_entries() {
    let scratch = tempfile::tempdir().unwrap();
    let data = scratch.path().join("data");
    let server = Server::start(&data, &free_address());
    let (status, _) = post(&server, "/api/v1/workflows", "application/yaml", WORKFLOW);
    assert_eq!(status, 201);
    server.kill();
    std::fs::remove_dir_all(&data).unwrap();

    let output = troupe()
        .args(["up", "--address", &free_address()])
        .args(["--data-dir", data.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("the audit log failed verification at entry 1: the chain ends at entry 0 but a signed checkpoint records entry"),
        "{stderr}"
    );
    assert!(stderr.contains("data-audit) aside"), "{stderr}");

    let server = Server::start_with(
        &data,
        &free_address(),
        &["--set", "audit.on_tampering=warn"],
        &[],
    );
    let verified = get_json(&server, "/api/v1/audit/verify");
    assert_eq!(verified["intact"], false, "{verified:#}");
    server.kill();
}
