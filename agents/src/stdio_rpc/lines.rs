//! Reading the process's pipes within bounds: stdout one line at a time up to a limit,
//! stderr as a tail of its last bytes for error messages.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncReadExt};

#[derive(Debug, PartialEq)]
pub(crate) enum Line {
    /// A whole line, without its `\n`, in the caller's buffer.
    Complete,
    /// The pipe closed (a partial last line is dropped: it cannot be a whole message).
    Closed,
    /// The line grew past the limit before its end was seen.
    TooLong,
}

/// Reads up to the next `\n` into `line`, refusing lines longer than `max_bytes`.
///
/// Cancel safe: bytes are moved from the reader into `line` with no await in between,
/// so a caller that drops this future (a timeout) and calls again loses nothing.
/// `line` must be empty at the start of each line; the caller clears it after use.
pub(crate) async fn read_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    line: &mut Vec<u8>,
    max_bytes: usize,
) -> std::io::Result<Line> {
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(Line::Closed);
        }
        let (taken, complete) = match available.iter().position(|byte| *byte == b'\n') {
            Some(end) => (end, true),
            None => (available.len(), false),
        };
        if line.len() + taken > max_bytes {
            return Ok(Line::TooLong);
        }
        line.extend_from_slice(&available[..taken]);
        reader.consume(taken + usize::from(complete));
        if complete {
            return Ok(Line::Complete);
        }
    }
}

/// The last bytes a process wrote to stderr, shared with the task that reads them.
#[derive(Debug, Clone, Default)]
pub(crate) struct Tail {
    bytes: Arc<Mutex<VecDeque<u8>>>,
}

/// Kept per process: enough for a Python traceback's last frames.
pub(crate) const STDERR_TAIL_BYTES: usize = 4096;

impl Tail {
    /// Reads `pipe` until it closes, keeping the last [`STDERR_TAIL_BYTES`].
    pub(crate) async fn collect<R: AsyncRead + Unpin>(self, mut pipe: R) {
        let mut chunk = vec![0u8; 8192];
        while let Ok(read) = pipe.read(&mut chunk).await {
            if read == 0 {
                break;
            }
            let Ok(mut bytes) = self.bytes.lock() else {
                break;
            };
            bytes.extend(&chunk[..read]);
            let excess = bytes.len().saturating_sub(STDERR_TAIL_BYTES);
            bytes.drain(..excess);
        }
    }

    /// The tail as text, trimmed; empty when nothing was written.
    pub(crate) fn text(&self) -> String {
        let Ok(bytes) = self.bytes.lock() else {
            return String::new();
        };
        let (front, back) = bytes.as_slices();
        let joined = [front, back].concat();
        String::from_utf8_lossy(&joined).trim().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn lines(input: &[u8], max_bytes: usize) -> Vec<(Line, String)> {
        let mut reader = tokio::io::BufReader::with_capacity(4, input);
        let mut read = Vec::new();
        for _ in 0..10 {
            let mut line = Vec::new();
            let outcome = read_line(&mut reader, &mut line, max_bytes).await.unwrap();
            let done = outcome != Line::Complete;
            read.push((outcome, String::from_utf8(line).unwrap()));
            if done {
                break;
            }
        }
        read
    }

    #[tokio::test]
    async fn lines_are_split_across_reads_and_cut_at_the_limit() {
        assert_eq!(
            lines(b"abcdefgh\n\nxy\npartial", 16).await,
            [
                (Line::Complete, "abcdefgh".into()),
                (Line::Complete, String::new()),
                (Line::Complete, "xy".into()),
                (Line::Closed, "partial".into()),
            ]
        );
        assert_eq!(
            lines(b"abcdefgh\n", 8).await,
            [
                (Line::Complete, "abcdefgh".into()),
                (Line::Closed, String::new())
            ]
        );
        let refused = lines(b"abcdefghi\n", 8).await;
        assert_eq!(refused.last().map(|(line, _)| line), Some(&Line::TooLong));
    }

    #[tokio::test]
    async fn the_stderr_tail_keeps_the_last_bytes() {
        let tail = Tail::default();
        let mut written = vec![b'a'; 10_000];
        written.extend_from_slice(b"the end\n");
        tail.clone().collect(written.as_slice()).await;
        let text = tail.text();
        assert!(text.ends_with("the end"), "{text}");
        assert!(text.len() <= STDERR_TAIL_BYTES, "{}", text.len());
    }
}
