//! One running process and the calls made to it, one at a time.

use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::process::{ChildStdin, ChildStdout};
use tokio_util::sync::CancellationToken;

use super::lines::{Line, Tail, read_line};
use super::message::{self, Incoming, Malformed};
use super::{Fault, ProcessAccess, ProcessConfig};
use crate::jail::{Cell, Entered, JAIL_HOME, Limits, Network};
use crate::process::{GroupChild, environment};

/// Messages that are not the awaited answer (logs, pings) one call may bring before the
/// answer: past this the process is taken to be looping.
const MAX_MESSAGES_PER_CALL: usize = 10_000;
/// How long an exited process is given to report its status.
const EXIT_WAIT: Duration = Duration::from_secs(2);

/// A call's request and the limits it runs under.
pub(crate) struct Call<'a> {
    pub method: &'a str,
    pub params: &'a Value,
    pub timeout: Duration,
    pub cancel: &'a CancellationToken,
}

/// How to tell the process that we gave up on a request, and how long to wait for it to
/// answer before it is killed.
#[derive(Clone, Copy)]
pub(crate) struct CancelNotice {
    pub notification: fn(request_id: u64) -> (&'static str, Value),
    pub grace: Duration,
}

/// Dropping it kills the process's whole group (`GroupChild`): a call dropped halfway
/// (its attempt timed out in the runtime) takes the process with it.
pub(crate) struct RpcChild {
    child: GroupChild,
    /// The jail cell the process runs in; its limits go when the process is killed (or,
    /// dropped, with the cgroups' own `Drop`).
    cell: Option<Entered>,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    /// The line being read; kept across a dropped read so no bytes are lost.
    line: Vec<u8>,
    /// False while a write is under way: a write cut short by a timeout leaves half a
    /// message in the pipe, after which nothing more may be sent.
    stdin_clean: bool,
    stderr: Tail,
    stderr_reader: tokio::task::JoinHandle<()>,
    next_id: u64,
    max_line_bytes: usize,
}

impl RpcChild {
    /// Starts the process in its jail cell (`config.access`), bounded like a command
    /// someone wrote.
    pub(crate) async fn spawn(config: &ProcessConfig) -> Result<Self, Fault> {
        if config.command.is_empty() {
            return Err(Fault::Spawn("no command configured".into()));
        }
        let cell = cell(&config.access);
        let cell = config
            .jail
            .enter(cell)
            .await
            .map_err(|error| Fault::Spawn(error.to_string()))?;
        let mut env = environment(&config.env_allow_list, None);
        // The node's temporary directory is not in the jail, which has a private `/tmp`.
        env.remove("TMPDIR");
        let mut command = cell
            .command(&config.command, &env)
            .map_err(|error| Fault::Spawn(error.to_string()))?;
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = match GroupChild::spawn(command) {
            Ok(child) => child,
            Err(error) => {
                cell.finish().await;
                return Err(Fault::Spawn(error.to_string()));
            }
        };
        let (Some(stdin), Some(stdout), Some(stderr_pipe)) = child.pipes() else {
            child.finish().await;
            cell.finish().await;
            return Err(Fault::Spawn("the process's pipes were not opened".into()));
        };
        let stderr = Tail::default();
        let stderr_reader = tokio::spawn(stderr.clone().collect(stderr_pipe));
        Ok(Self {
            child,
            cell: Some(cell),
            stdin,
            stdout: BufReader::new(stdout),
            line: Vec::new(),
            stdin_clean: true,
            stderr,
            stderr_reader,
            next_id: 1,
            max_line_bytes: config.max_output_bytes,
        })
    }

    pub(crate) fn id(&self) -> Option<u32> {
        self.child.id()
    }

    /// Whether the process has exited since it was last used.
    pub(crate) fn has_exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(status.to_string()),
            Ok(None) => None,
            Err(error) => Some(format!("cannot be waited for: {error}")),
        }
    }

    /// Sends a request and waits for its answer, at most `call.timeout`. On cancellation
    /// the `notice` (if any) is sent and the answer awaited for its grace: `Cancelled {
    /// clean: true }` means the process answered and can be used again.
    pub(crate) async fn call(
        &mut self,
        call: &Call<'_>,
        notice: Option<CancelNotice>,
    ) -> Result<Value, Fault> {
        let id = self.next_id;
        self.next_id += 1;
        let outcome = tokio::select! {
            outcome = self.exchange(id, call.method, call.params) => outcome,
            () = tokio::time::sleep(call.timeout) => Err(Fault::TimedOut { secs: call.timeout.as_secs() }),
            () = call.cancel.cancelled() => Err(Fault::Cancelled { clean: false }),
        };
        match (outcome, notice) {
            (Err(Fault::Cancelled { .. }), Some(notice)) if self.stdin_clean => {
                Err(self.cancel_gracefully(id, notice).await)
            }
            (outcome, _) => outcome,
        }
    }

    /// Sends a notification; it has no answer.
    pub(crate) async fn notify(&mut self, method: &str, params: &Value) -> Result<(), Fault> {
        self.write_line(&message::notification(method, params))
            .await
    }

    /// Kills the process group and reaps the process, within a bound; returns the end
    /// of its stderr, read to the end once the pipe has closed.
    pub(crate) async fn kill(mut self) -> String {
        self.child.finish().await;
        if let Some(cell) = self.cell.take() {
            cell.finish().await;
        }
        if tokio::time::timeout(EXIT_WAIT, &mut self.stderr_reader)
            .await
            .is_err()
        {
            tracing::debug!("stderr still open after the kill (a process outside the group?)");
        }
        self.stderr.text()
    }

    /// After the pipe closed: the exit status, once the process has gone.
    async fn exit_status(&mut self) -> String {
        match tokio::time::timeout(EXIT_WAIT, self.child.wait()).await {
            Ok(Ok(status)) => status.to_string(),
            Ok(Err(error)) => format!("cannot be waited for: {error}"),
            Err(_) => "closed its stdout but is still running".into(),
        }
    }

    async fn cancel_gracefully(&mut self, id: u64, notice: CancelNotice) -> Fault {
        let (method, params) = (notice.notification)(id);
        if self.notify(method, &params).await.is_err() {
            return Fault::Cancelled { clean: false };
        }
        let answered = tokio::time::timeout(notice.grace, self.read_answer(id)).await;
        Fault::Cancelled {
            clean: matches!(answered, Ok(Ok(_) | Err(Fault::Remote { .. }))),
        }
    }

    async fn exchange(&mut self, id: u64, method: &str, params: &Value) -> Result<Value, Fault> {
        self.write_line(&message::request(id, method, params))
            .await?;
        self.read_answer(id).await
    }

    /// Reads messages until the answer to `id`: answers pings, drops notifications.
    async fn read_answer(&mut self, id: u64) -> Result<Value, Fault> {
        for _ in 0..MAX_MESSAGES_PER_CALL {
            match self.read_message().await? {
                Incoming::Response {
                    id: answered,
                    outcome,
                } if answered == json!(id) => {
                    return outcome.map_err(|error| Fault::Remote {
                        code: error.code,
                        message: error.message,
                    });
                }
                Incoming::Response { id: answered, .. } => {
                    return Err(Fault::Protocol(format!(
                        "answered id {answered} while request {id} was waiting"
                    )));
                }
                Incoming::Request { id: asked, method } => {
                    self.answer_request(&asked, &method).await?
                }
                Incoming::Notification { method } => {
                    tracing::trace!(%method, "notification from an external process dropped");
                }
            }
        }
        Err(Fault::Protocol(format!(
            "sent {MAX_MESSAGES_PER_CALL} messages without answering request {id}"
        )))
    }

    /// We offer the process nothing to call but `ping`.
    async fn answer_request(&mut self, id: &Value, method: &str) -> Result<(), Fault> {
        let reply = if method == "ping" {
            message::result_reply(id, json!({}))
        } else {
            message::error_reply(id, -32601, &format!("method `{method}` is not offered"))
        };
        self.write_line(&reply).await
    }

    async fn read_message(&mut self) -> Result<Incoming, Fault> {
        loop {
            let read = read_line(&mut self.stdout, &mut self.line, self.max_line_bytes).await;
            match read {
                Ok(Line::Complete) => {}
                Ok(Line::TooLong) => {
                    return Err(Fault::LineTooLong {
                        limit: self.max_line_bytes,
                    });
                }
                Ok(Line::Closed) | Err(_) => {
                    return Err(Fault::Exited {
                        status: self.exit_status().await,
                    });
                }
            }
            let line = std::mem::take(&mut self.line);
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            return message::parse(&line).map_err(|malformed| match malformed {
                Malformed::NotJson { excerpt } => Fault::NotJson { excerpt },
                Malformed::NotRpc { excerpt } => Fault::Protocol(format!(
                    "wrote a line that is not a JSON-RPC 2.0 message: `{excerpt}`"
                )),
            });
        }
    }

    async fn write_line(&mut self, text: &str) -> Result<(), Fault> {
        if !self.stdin_clean {
            return Err(Fault::Protocol("an earlier write was cut short".into()));
        }
        self.stdin_clean = false;
        let mut bytes = Vec::with_capacity(text.len() + 1);
        bytes.extend_from_slice(text.as_bytes());
        bytes.push(b'\n');
        let written = async {
            self.stdin.write_all(&bytes).await?;
            self.stdin.flush().await
        }
        .await;
        match written {
            Ok(()) => {
                self.stdin_clean = true;
                Ok(())
            }
            Err(_) => Err(Fault::Exited {
                status: self.exit_status().await,
            }),
        }
    }
}

/// The cell of an external process: its own directories, the network if allowed, and
/// the limits of a command someone wrote.
fn cell(access: &ProcessAccess) -> Cell {
    let cwd = access
        .readable_dirs
        .first()
        .or(access.writable_dirs.first())
        .cloned()
        .unwrap_or_else(|| JAIL_HOME.into());
    Cell {
        readable: access.readable_dirs.clone(),
        writable: access.writable_dirs.clone(),
        cwd,
        network: if access.network {
            Network::On
        } else {
            Network::Off
        },
        limits: Some(Limits::COMMAND),
    }
}

impl Drop for RpcChild {
    /// The group goes with `child`; the stderr reader must not outlive it.
    fn drop(&mut self) {
        self.stderr_reader.abort();
    }
}
