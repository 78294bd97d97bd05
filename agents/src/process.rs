//! Pieces every agent that starts a child process shares: bounded capture of its pipes,
//! an environment reduced to an allow-list, and the rules that keep a child from
//! outliving its attempt (own process group, killed with the node).

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;

use crate::errors::AgentError;

/// Captured text and whether some of it was cut.
pub(crate) type Captured = (String, bool);

/// The variables of the node's environment named in `allow_list`, then `extra` (the
/// task's `env` input, string values only) on top.
pub(crate) fn environment(
    allow_list: &[String],
    extra: Option<&Value>,
) -> Result<BTreeMap<String, String>, AgentError> {
    let mut environment: BTreeMap<String, String> = allow_list
        .iter()
        .filter_map(|name| std::env::var(name).ok().map(|value| (name.clone(), value)))
        .collect();
    if let Some(Value::Object(extra)) = extra {
        for (name, value) in extra {
            let Value::String(value) = value else {
                return Err(AgentError::InvalidInput {
                    field: format!("env.{name}"),
                    reason: "environment values must be strings".into(),
                });
            };
            environment.insert(name.clone(), value.clone());
        }
    }
    Ok(environment)
}

/// Waits for a reader task. The reader ends when the pipe closes, which the child's exit
/// guarantees unless a grandchild keeps it open: bound that wait too.
pub(crate) async fn join_reader<T: Default>(
    reader: tokio::task::JoinHandle<(T, bool)>,
) -> (T, bool) {
    match tokio::time::timeout(Duration::from_secs(2), reader).await {
        Ok(Ok(captured)) => captured,
        Ok(Err(_)) | Err(_) => (T::default(), true),
    }
}

/// Keeps the first `limit` bytes and drains the rest, so a chatty command neither
/// blocks on a full pipe nor fills our memory.
pub(crate) async fn read_bounded<R: AsyncRead + Unpin>(pipe: Option<R>, limit: usize) -> Captured {
    let Some(mut pipe) = pipe else {
        return (String::new(), false);
    };
    let mut kept = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let mut truncated = false;
    loop {
        match pipe.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(read) => {
                let room = limit.saturating_sub(kept.len());
                kept.extend_from_slice(&chunk[..read.min(room)]);
                truncated |= read > room;
            }
        }
    }
    (String::from_utf8_lossy(&kept).into_owned(), truncated)
}

/// A command must not outlive the node that started it: after a crash the attempt is
/// resumed, and an orphan finishing the old one would run its effects twice.
#[cfg(target_os = "linux")]
pub(crate) fn die_with_the_node(command: &mut Command) {
    // SAFETY: the closure runs in the forked child before exec and only calls prctl,
    // which is async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn die_with_the_node(_command: &mut Command) {}

/// Kills the process group a command was started in with `process_group(0)`.
pub(crate) fn kill_group(process_group: Option<u32>) {
    let Some(id) = process_group.and_then(|id| i32::try_from(id).ok()) else {
        return;
    };
    // SAFETY: killpg only sends a signal; the id is the group this agent created with
    // process_group(0), so nothing outside the command's own tree is touched.
    unsafe {
        libc::killpg(id, libc::SIGKILL);
    }
}

/// The last `max_chars` characters of `text`, for error messages.
pub(crate) fn tail_chars(text: &str, max_chars: usize) -> String {
    let count = text.chars().count();
    text.chars().skip(count.saturating_sub(max_chars)).collect()
}

/// Where `program` would be found on the node's `PATH`, if anywhere: an optional tool
/// (a linter) that is missing is then reported as unavailable instead of failing.
pub(crate) fn find_on_path(program: &str) -> Option<std::path::PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|directory| directory.join(program))
        .find(|candidate| {
            std::fs::metadata(candidate).is_ok_and(|metadata| {
                metadata.is_file() && metadata.permissions().mode() & 0o111 != 0
            })
        })
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

/// Runs `command` (no shell, stdin closed, own process group, dies with the node) until
/// it exits, `timeout` passes (killed, `timed_out`) or `cancel` fires (killed,
/// `Cancelled`), keeping at most `max_output_bytes` of each pipe.
pub(crate) async fn run_bounded(
    mut command: Command,
    cancel: &tokio_util::sync::CancellationToken,
    timeout: Duration,
    max_output_bytes: usize,
) -> Result<Finished, AgentError> {
    let program = command
        .as_std()
        .get_program()
        .to_string_lossy()
        .into_owned();
    command
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    die_with_the_node(&mut command);
    let mut child = command
        .spawn()
        .map_err(|error| AgentError::Io(format!("cannot start `{program}`: {error}")))?;
    let process_group = child.id();
    let stdout = tokio::spawn(read_bounded(child.stdout.take(), max_output_bytes));
    let stderr = tokio::spawn(read_bounded(child.stderr.take(), max_output_bytes));
    let (status, timed_out) = tokio::select! {
        status = child.wait() => (Some(status.map_err(|error| AgentError::Io(error.to_string()))?), false),
        () = cancel.cancelled() => {
            kill_group(process_group);
            let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
            return Err(AgentError::Cancelled);
        }
        () = tokio::time::sleep(timeout) => (None, true),
    };
    // Also after a normal exit: whatever it left running in the background goes too.
    kill_group(process_group);
    if timed_out {
        let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
    }
    let stdout = join_reader(stdout).await;
    let stderr = join_reader(stderr).await;
    Ok(Finished {
        exit_code: status.and_then(|status| status.code()),
        timed_out,
        stdout,
        stderr,
    })
}
