//! Sensitive data never reaches a paid provider: the node sends placeholders (and gives
//! the caller back its own values), or refuses. The "provider" is a real HTTP server
//! speaking the OpenAI protocol on loopback that records what it was sent: a paid cloud
//! API cannot exist on this machine.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use support::{Server, free_address, get_json, post};

/// Answers every chat completion with "You said: <last user message>" and keeps the
/// request bodies.
fn recording_provider() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(value) = line.to_lowercase().strip_prefix("content-length:") {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_err() {
                continue;
            }
            let body = String::from_utf8_lossy(&body).into_owned();
            let request: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
            record.lock().unwrap().push(body);
            let said = request["messages"]
                .as_array()
                .and_then(|messages| messages.last())
                .and_then(|message| message["content"].as_str())
                .unwrap_or_default()
                .to_string();
            let answer = json!({
                "choices": [{"message": {"role": "assistant", "content": format!("You said: {said}")}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 12, "completion_tokens": 8}
            })
            .to_string();
            let mut stream = stream;
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                answer.len()
            );
        }
    });
    (address, seen)
}

fn node_with(scratch: &std::path::Path, name: &str, provider: &str, mode: &str) -> Server {
    let config = scratch.join(format!("{name}.toml"));
    std::fs::write(
        &config,
        format!(
            "[models]\nserve = false\n\n[privacy]\nmode = \"{mode}\"\n\n[[providers.chain]]\nname = \"cloud\"\nkind = \"openai\"\nbase_url = \"http://{provider}/v1\"\nmodel = \"gpt-test\"\ninput_usd_per_mtok = 1.0\noutput_usd_per_mtok = 2.0\n"
        ),
    )
    .unwrap();
    Server::start_with(
        &scratch.join(name),
        &free_address(),
        &["--config", config.to_str().unwrap()],
        &[],
    )
}

const PROMPT: &str = r#"{"messages": [{"role": "user", "content": "Email ada@example.com that card 4111 1111 1111 1111 was charged"}], "max_tokens": 16, "agent": "support_bot"}"#;

#[test]
fn a_paid_provider_sees_placeholders_and_the_caller_gets_its_values_back() {
    let scratch = tempfile::tempdir().unwrap();
    let (provider, seen) = recording_provider();
    let node = node_with(scratch.path(), "redact", &provider, "redact");
    let (status, answer) = post(&node, "/api/v1/complete", "application/json", PROMPT);
    assert_eq!(status, 200, "{answer}");
    let sent = seen.lock().unwrap().join("\n");
    assert!(
        sent.contains("[EMAIL_1]") && sent.contains("[CARD_NUMBER_1]"),
        "{sent}"
    );
    assert!(
        !sent.contains("ada@example.com") && !sent.contains("4111"),
        "leaked: {sent}"
    );
    let text = answer["text"].as_str().unwrap();
    assert!(
        text.contains("ada@example.com") && text.contains("4111 1111 1111 1111"),
        "{text}"
    );

    let audit = get_json(&node, "/api/v1/audit?action=prompt.sensitive_data");
    let entry = &audit[0];
    assert_eq!(entry["actor"], "support_bot");
    assert!(
        entry["details"].as_str().unwrap().contains("card_number"),
        "{entry}"
    );
    assert!(
        !entry.to_string().contains("ada@example.com"),
        "the audit log holds the value: {entry}"
    );
    let paid = get_json(&node, "/api/v1/audit?action=model.paid_call");
    assert_eq!(paid[0]["target"], "cloud", "{paid}");
}

#[test]
fn refuse_mode_sends_nothing_and_names_what_it_found() {
    let scratch = tempfile::tempdir().unwrap();
    let (provider, seen) = recording_provider();
    let node = node_with(scratch.path(), "refuse", &provider, "refuse");
    let (status, answer) = post(&node, "/api/v1/complete", "application/json", PROMPT);
    assert_eq!(status, 400, "{answer}");
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("card_number") && message.contains("email"),
        "{message}"
    );
    assert!(!message.contains("ada@example.com"), "{message}");
    assert!(seen.lock().unwrap().is_empty(), "the provider was called");
}
