//! The one way an agent runs a command to its end: stdin closed, both pipes captured
//! within bounds, cancelled or timed out by killing its whole group, always reaped.

use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::capture::{self, Capture, Captured, Keep, LineSink};
use super::group::GroupChild;
use crate::errors::AgentError;

/// How long the command may run and what is kept of its output.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bounds {
    pub timeout: Duration,
    pub stdout: Capture,
    pub stderr: Capture,
}

impl Bounds {
    /// Keeps the first `max_bytes` of each pipe.
    pub(crate) fn head(timeout: Duration, max_bytes: usize) -> Self {
        Self::keeping(Keep::Head, timeout, max_bytes)
    }

    /// Keeps the last `max_bytes` of each pipe.
    pub(crate) fn tail(timeout: Duration, max_bytes: usize) -> Self {
        Self::keeping(Keep::Tail, timeout, max_bytes)
    }

    fn keeping(keep: Keep, timeout: Duration, max_bytes: usize) -> Self {
        let capture = Capture { keep, max_bytes };
        Self {
            timeout,
            stdout: capture,
            stderr: capture,
        }
    }
}

/// How a bounded command ended.
#[derive(Debug)]
pub(crate) struct Finished {
    /// `None` when it was killed (by the timeout or a signal).
    pub exit_code: Option<i32>,
    pub timed_out: bool,
    pub stdout: Captured,
    pub stderr: Captured,
}

impl Finished {
    /// `TimedOut` when the timeout killed it; itself otherwise.
    pub(crate) fn unless_timed_out(self, bounds: &Bounds) -> Result<Self, AgentError> {
        if self.timed_out {
            Err(AgentError::TimedOut {
                secs: bounds.timeout.as_secs(),
            })
        } else {
            Ok(self)
        }
    }

    /// What it said about how it ended: stderr, or stdout when stderr is empty.
    pub(crate) fn output(&self) -> &str {
        if self.stderr.text.trim().is_empty() {
            &self.stdout.text
        } else {
            &self.stderr.text
        }
    }

    /// The failure of `what` when it exited non-zero, with the end of its stderr.
    pub(crate) fn failure_unless_success(&self, what: &str) -> Result<(), AgentError> {
        if self.exit_code == Some(0) {
            return Ok(());
        }
        Err(AgentError::Failed(format!(
            "{what} exited with {}: {}",
            self.exit_code
                .map_or("a signal".to_string(), |code| code.to_string()),
            super::tail_chars(&self.stderr.text, 2000).trim()
        )))
    }

    /// How a step reports it: exit code, both pipes (and whether they were cut) and how
    /// long it ran.
    pub(crate) fn report(self, took: Duration) -> serde_json::Map<String, serde_json::Value> {
        let mut report = serde_json::Map::new();
        report.insert("exit_code".into(), self.exit_code.into());
        report.insert("stdout".into(), self.stdout.text.into());
        report.insert("stderr".into(), self.stderr.text.into());
        report.insert("stdout_truncated".into(), self.stdout.truncated.into());
        report.insert("stderr_truncated".into(), self.stderr.truncated.into());
        let took_ms = u64::try_from(took.as_millis()).unwrap_or(u64::MAX);
        report.insert("duration_ms".into(), took_ms.into());
        report
    }
}

/// Runs `command` until it exits, `bounds.timeout` passes (killed, `timed_out`) or
/// `cancel` fires (killed, `Cancelled`).
pub(crate) async fn run_bounded(
    command: Command,
    cancel: &CancellationToken,
    bounds: &Bounds,
) -> Result<Finished, AgentError> {
    let (finished, _) = run_bounded_with_lines(command, cancel, bounds, None::<NoLines>).await?;
    Ok(finished)
}

/// `run_bounded`, with every line of stdout also given to `lines`, which comes back
/// (unless its reader never ended: a grandchild outside the group kept the pipe open).
pub(crate) async fn run_bounded_with_lines<S: LineSink>(
    mut command: Command,
    cancel: &CancellationToken,
    bounds: &Bounds,
    lines: Option<S>,
) -> Result<(Finished, Option<S>), AgentError> {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = GroupChild::spawn(command)?;
    let (_, stdout, stderr) = child.pipes();
    let stdout = tokio::spawn(capture::read(stdout, bounds.stdout, lines));
    let stderr = tokio::spawn(capture::read(stderr, bounds.stderr, None::<NoLines>));
    let status = tokio::select! {
        status = child.wait() => Some(status.map_err(|error| AgentError::Io(error.to_string()))?),
        () = cancel.cancelled() => {
            child.finish().await;
            stdout.abort();
            stderr.abort();
            return Err(AgentError::Cancelled);
        }
        () = tokio::time::sleep(bounds.timeout) => None,
    };
    child.finish().await;
    let ((stdout, lines), (stderr, _)) = (join_reader(stdout).await, join_reader(stderr).await);
    let finished = Finished {
        exit_code: status.and_then(|status| status.code()),
        timed_out: status.is_none(),
        stdout,
        stderr,
    };
    Ok((finished, lines))
}

/// A sink for pipes whose lines nobody reads.
struct NoLines;

impl LineSink for NoLines {
    fn line(&mut self, _line: &str) {}
}

/// Waits for a reader. It ends when the pipe closes, which killing the group guarantees
/// unless a process outside it holds the pipe open: bound that wait too, and call what
/// was lost cut.
async fn join_reader<S>(reader: JoinHandle<(Captured, Option<S>)>) -> (Captured, Option<S>) {
    match tokio::time::timeout(Duration::from_secs(2), reader).await {
        Ok(Ok(read)) => read,
        Ok(Err(_)) | Err(_) => (
            Captured {
                text: String::new(),
                truncated: true,
            },
            None,
        ),
    }
}
