//! Sensitive data never reaches a paid provider: the node sends placeholders (and gives
//! the caller back its own values), or refuses. The "provider" is a real HTTP server
//! speaking the OpenAI protocol on loopback that records what it was sent: a paid cloud
//! API cannot exist on this machine.

mod support;

use support::{Server, chat_provider, free_address, get_json, post};

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
    let (provider, seen) = chat_provider::start(|said| format!("You said: {said}"));
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
    // The caller (no accounts here), never the `agent` name the request gave.
    assert_eq!(entry["actor"], "anonymous");
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
    let (provider, seen) = chat_provider::start(|said| format!("You said: {said}"));
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

/// Every byte of the files under `dir`.
fn bytes_under(dir: &std::path::Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            bytes.extend(bytes_under(&path));
        } else if let Ok(content) = std::fs::read(&path) {
            bytes.extend(content);
        }
    }
    bytes
}

#[test]
fn a_provider_key_sealed_at_rest_reaches_the_provider_and_nothing_on_disk_holds_it() {
    use std::io::Write;
    let scratch = tempfile::tempdir().unwrap();
    let (provider, seen) = chat_provider::start(|said| format!("You said: {said}"));
    let data = scratch.path().join("sealed");
    let store = format!("store.url=surrealkv://{}", data.display());
    let key = "sk-sealed-0123456789abcdef";
    let mut set = support::troupe()
        .args(["--set", &store, "secrets", "set", "providers.cloud"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    set.stdin.take().unwrap().write_all(key.as_bytes()).unwrap();
    let set = set.wait_with_output().unwrap();
    assert!(
        set.status.success(),
        "{}",
        String::from_utf8_lossy(&set.stderr)
    );

    let config = scratch.path().join("sealed.toml");
    std::fs::write(
        &config,
        format!(
            "[models]\nserve = false\n\n[[providers.chain]]\nname = \"cloud\"\nkind = \"openai\"\nbase_url = \"http://{provider}/v1\"\nmodel = \"gpt-test\"\napi_key_secret = \"providers.cloud\"\n"
        ),
    )
    .unwrap();
    let node = Server::start_with(
        &data,
        &free_address(),
        &["--config", config.to_str().unwrap()],
        &[],
    );
    let prompt = r#"{"messages": [{"role": "user", "content": "Say hi"}], "max_tokens": 8}"#;
    let (status, answer) = post(&node, "/api/v1/complete", "application/json", prompt);
    assert_eq!(status, 200, "{answer}");
    let sent = seen.lock().unwrap().join("\n");
    assert!(
        sent.contains(&format!("authorization: Bearer {key}")),
        "{sent}"
    );
    node.kill();
    let on_disk = bytes_under(scratch.path());
    assert!(
        !on_disk
            .windows(key.len())
            .any(|window| window == key.as_bytes()),
        "the key is on disk in the clear"
    );
}
