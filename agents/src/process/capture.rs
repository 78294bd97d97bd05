//! Reading a child's pipe to its end with a bound on what is kept: the head or the tail
//! of the output, and every line (however long the output) to an optional sink.

use tokio::io::{AsyncRead, AsyncReadExt};

/// Longer lines are cut before they reach a sink; no line worth parsing is this long.
const MAX_LINE_BYTES: usize = 64 * 1024;

/// Which end of a long output is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Keep {
    /// The first bytes: what a command printed first (a shell step's answer).
    Head,
    /// The last bytes: where a test run prints its summary and failures.
    Tail,
}

/// How much of one pipe to keep.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Capture {
    pub keep: Keep,
    pub max_bytes: usize,
}

/// Sees each line of a pipe, without its newline.
pub(crate) trait LineSink: Send + 'static {
    fn line(&mut self, line: &str);
}

/// What was kept of a pipe, and whether some of it was cut.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Captured {
    pub text: String,
    pub truncated: bool,
}

/// Reads `pipe` until it closes, draining what is not kept so the child never blocks on
/// a full pipe and never fills our memory.
pub(crate) async fn read<R, S>(
    pipe: Option<R>,
    capture: Capture,
    mut sink: Option<S>,
) -> (Captured, Option<S>)
where
    R: AsyncRead + Unpin,
    S: LineSink,
{
    let mut kept = Kept::new(capture);
    let mut line = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    if let Some(mut pipe) = pipe {
        loop {
            let read = match pipe.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(read) => read,
            };
            if let Some(sink) = &mut sink {
                split_lines(&chunk[..read], &mut line, sink);
            }
            kept.push(&chunk[..read]);
        }
    }
    if let Some(sink) = &mut sink {
        feed(sink, &line);
    }
    (kept.finish(), sink)
}

struct Kept {
    capture: Capture,
    bytes: Vec<u8>,
    truncated: bool,
}

impl Kept {
    fn new(capture: Capture) -> Self {
        Self {
            capture,
            bytes: Vec::new(),
            truncated: false,
        }
    }

    fn push(&mut self, chunk: &[u8]) {
        let limit = self.capture.max_bytes;
        match self.capture.keep {
            Keep::Head => {
                let room = limit.saturating_sub(self.bytes.len());
                self.bytes
                    .extend_from_slice(&chunk[..chunk.len().min(room)]);
                self.truncated |= chunk.len() > room;
            }
            Keep::Tail => {
                self.bytes.extend_from_slice(chunk);
                // Trim in batches so the copy is amortised over many reads.
                if self.bytes.len() > 2 * limit.max(1) {
                    self.trim_to(limit);
                }
            }
        }
    }

    fn trim_to(&mut self, limit: usize) {
        if self.bytes.len() > limit {
            self.bytes.drain(..self.bytes.len() - limit);
            self.truncated = true;
        }
    }

    fn finish(mut self) -> Captured {
        if self.capture.keep == Keep::Tail {
            self.trim_to(self.capture.max_bytes);
        }
        Captured {
            text: String::from_utf8_lossy(&self.bytes).into_owned(),
            truncated: self.truncated,
        }
    }
}

/// Feeds each complete line in `chunk` to `sink`; the unfinished one stays in `line`.
fn split_lines(chunk: &[u8], line: &mut Vec<u8>, sink: &mut impl LineSink) {
    for &byte in chunk {
        if byte == b'\n' {
            feed(sink, line);
            line.clear();
        } else if line.len() < MAX_LINE_BYTES {
            line.push(byte);
        }
    }
}

fn feed(sink: &mut impl LineSink, line: &[u8]) {
    let text = String::from_utf8_lossy(line);
    sink.line(text.trim_end_matches('\r'));
}
