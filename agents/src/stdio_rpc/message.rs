//! JSON-RPC 2.0 messages as one line each: what we write, and what a line we read is.

use serde_json::{Map, Value, json};

/// A line read from the process, classified.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Incoming {
    /// An answer to one of our requests.
    Response {
        id: Value,
        outcome: Result<Value, RemoteError>,
    },
    /// The process asks us something (MCP servers may `ping`).
    Request { id: Value, method: String },
    /// Logs and progress: read and dropped.
    Notification { method: String },
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RemoteError {
    pub code: i64,
    pub message: String,
}

/// Why a line is not a message we can use.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Malformed {
    NotJson { excerpt: String },
    NotRpc { excerpt: String },
}

/// How much of a bad line an error message quotes.
const EXCERPT_CHARS: usize = 120;

pub(crate) fn request(id: u64, method: &str, params: &Value) -> String {
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string()
}

pub(crate) fn notification(method: &str, params: &Value) -> String {
    json!({"jsonrpc": "2.0", "method": method, "params": params}).to_string()
}

pub(crate) fn result_reply(id: &Value, result: Value) -> String {
    json!({"jsonrpc": "2.0", "id": id, "result": result}).to_string()
}

pub(crate) fn error_reply(id: &Value, code: i64, message: &str) -> String {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}}).to_string()
}

pub(crate) fn parse(line: &[u8]) -> Result<Incoming, Malformed> {
    let Ok(value) = serde_json::from_slice::<Value>(line) else {
        return Err(Malformed::NotJson {
            excerpt: excerpt(line),
        });
    };
    let not_rpc = || Malformed::NotRpc {
        excerpt: excerpt(line),
    };
    let Value::Object(mut message) = value else {
        return Err(not_rpc());
    };
    if message.get("jsonrpc") != Some(&Value::String("2.0".into())) {
        return Err(not_rpc());
    }
    let id = message.remove("id");
    match (message.remove("method"), id) {
        (Some(Value::String(method)), None) => Ok(Incoming::Notification { method }),
        (Some(Value::String(method)), Some(id)) => Ok(Incoming::Request { id, method }),
        (Some(_), _) => Err(not_rpc()),
        (None, Some(id)) => response(id, message).ok_or_else(not_rpc),
        (None, None) => Err(not_rpc()),
    }
}

fn response(id: Value, mut message: Map<String, Value>) -> Option<Incoming> {
    let outcome = match (message.remove("result"), message.remove("error")) {
        (Some(result), None) => Ok(result),
        (None, Some(Value::Object(error))) => Err(RemoteError {
            code: error.get("code").and_then(Value::as_i64)?,
            message: error
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("(no message)")
                .chars()
                .take(2000)
                .collect(),
        }),
        _ => return None,
    };
    Some(Incoming::Response { id, outcome })
}

fn excerpt(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(line);
    let mut excerpt: String = text.chars().take(EXCERPT_CHARS).collect();
    if text.chars().nth(EXCERPT_CHARS).is_some() {
        excerpt.push('…');
    }
    excerpt
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_requests_and_notifications_are_told_apart() {
        assert_eq!(
            parse(br#"{"jsonrpc":"2.0","id":3,"result":{"a":1}}"#),
            Ok(Incoming::Response {
                id: json!(3),
                outcome: Ok(json!({"a": 1}))
            })
        );
        assert_eq!(
            parse(br#"{"jsonrpc":"2.0","id":3,"error":{"code":-32602,"message":"bad"}}"#),
            Ok(Incoming::Response {
                id: json!(3),
                outcome: Err(RemoteError {
                    code: -32602,
                    message: "bad".into()
                })
            })
        );
        assert_eq!(
            parse(br#"{"jsonrpc":"2.0","id":"x","method":"ping"}"#),
            Ok(Incoming::Request {
                id: json!("x"),
                method: "ping".into()
            })
        );
        assert_eq!(
            parse(br#"{"jsonrpc":"2.0","method":"notifications/message","params":{}}"#),
            Ok(Incoming::Notification {
                method: "notifications/message".into()
            })
        );
    }

    #[test]
    fn hostile_lines_are_refused_with_an_excerpt() {
        let long = "x".repeat(500);
        for line in [
            "hello world",
            "[1,2]",
            r#"{"id":1,"result":1}"#,
            r#"{"jsonrpc":"2.0","id":1}"#,
            r#"{"jsonrpc":"2.0","id":1,"result":1,"error":{"code":1}}"#,
            r#"{"jsonrpc":"2.0","id":1,"error":{"message":"no code"}}"#,
            r#"{"jsonrpc":"2.0","method":7}"#,
            long.as_str(),
        ] {
            let error = parse(line.as_bytes()).expect_err(line);
            let (Malformed::NotJson { excerpt } | Malformed::NotRpc { excerpt }) = error;
            assert!(excerpt.chars().count() <= EXCERPT_CHARS + 1, "{excerpt}");
        }
        assert_eq!(
            parse(b"\xff\xfe not utf-8"),
            Err(Malformed::NotJson {
                excerpt: "\u{fffd}\u{fffd} not utf-8".into()
            })
        );
    }
}
