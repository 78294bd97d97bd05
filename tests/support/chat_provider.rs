//! A chat-completions server that speaks the OpenAI protocol over real HTTP, standing in
//! for a paid provider, which cannot exist on this machine.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

/// Serves on a free loopback port, answering each chat completion with `answer` of the
/// last message's content; returns its address and the request bodies it was sent, each
/// after the `authorization` header it came with.
pub fn start(
    answer: impl Fn(&str) -> String + Send + 'static,
) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let Some((authorization, body)) = read_request(&stream) else {
                continue;
            };
            let request: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
            record
                .lock()
                .unwrap()
                .push(format!("{authorization}\n{body}"));
            let said = request["messages"]
                .as_array()
                .and_then(|messages| messages.last())
                .and_then(|message| message["content"].as_str())
                .unwrap_or_default();
            let reply = json!({
                "choices": [{"message": {"role": "assistant", "content": answer(said)}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 12, "completion_tokens": 8}
            })
            .to_string();
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{reply}",
                reply.len()
            );
        }
    });
    (address, seen)
}

/// The `authorization` header line and the body of one request.
fn read_request(stream: &std::net::TcpStream) -> Option<(String, String)> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut length = 0;
    let mut authorization = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some(value) = line.to_lowercase().strip_prefix("content-length:") {
            length = value.trim().parse().unwrap_or(0);
        }
        if line.to_lowercase().starts_with("authorization:") {
            authorization = line.trim().to_string();
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some((authorization, String::from_utf8_lossy(&body).into_owned()))
}
