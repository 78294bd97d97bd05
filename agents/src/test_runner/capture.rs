//! Reading a test command's output as it streams: every line goes to the parser (so the
//! counts are right however long the output), and only the last `max_output_bytes` are
//! kept to report.

use tokio::io::{AsyncRead, AsyncReadExt};

use super::parse::OutputParser;

/// Longer lines are cut before they reach the parser; no summary line is this long.
const MAX_LINE_BYTES: usize = 64 * 1024;

pub(crate) struct Captured {
    pub tail: String,
    pub truncated: bool,
    pub parser: Option<Box<dyn OutputParser>>,
}

impl Default for Captured {
    fn default() -> Self {
        Self {
            tail: String::new(),
            truncated: true,
            parser: None,
        }
    }
}

pub(crate) async fn read_lines<R: AsyncRead + Unpin>(
    pipe: Option<R>,
    max_output_bytes: usize,
    mut parser: Option<Box<dyn OutputParser>>,
) -> (Captured, bool) {
    let mut tail: Vec<u8> = Vec::new();
    let mut truncated = false;
    let mut line: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    if let Some(mut pipe) = pipe {
        loop {
            let read = match pipe.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(read) => read,
            };
            for &byte in &chunk[..read] {
                if byte == b'\n' {
                    feed(&mut parser, &line);
                    line.clear();
                } else if line.len() < MAX_LINE_BYTES {
                    line.push(byte);
                }
            }
            tail.extend_from_slice(&chunk[..read]);
            // Trim in batches so the copy is amortised over many reads.
            if tail.len() > 2 * max_output_bytes.max(1) {
                let cut = tail.len() - max_output_bytes;
                tail.drain(..cut);
                truncated = true;
            }
        }
    }
    feed(&mut parser, &line);
    if tail.len() > max_output_bytes {
        tail.drain(..tail.len() - max_output_bytes);
        truncated = true;
    }
    let captured = Captured {
        tail: String::from_utf8_lossy(&tail).into_owned(),
        truncated,
        parser,
    };
    (captured, truncated)
}

fn feed(parser: &mut Option<Box<dyn OutputParser>>, line: &[u8]) {
    if let Some(parser) = parser {
        let text = String::from_utf8_lossy(line);
        parser.line(text.trim_end_matches('\r'));
    }
}
