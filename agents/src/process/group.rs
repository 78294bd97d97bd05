//! A child that leads its own process group: killing the group reaches everything the
//! child started, the child dies with the node, and a killed child is reaped.

use std::process::ExitStatus;
use std::time::Duration;

use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command};

use crate::errors::AgentError;

/// How long a killed process is given to go before we stop waiting to reap it.
const REAP_WAIT: Duration = Duration::from_secs(5);

/// A command that could not be started.
#[derive(Debug, thiserror::Error)]
#[error("cannot start `{program}`: {source}")]
pub(crate) struct SpawnError {
    program: String,
    #[source]
    source: std::io::Error,
}

impl From<SpawnError> for AgentError {
    fn from(error: SpawnError) -> Self {
        AgentError::Io(error.to_string())
    }
}

/// Invariant: `group` is the id of the group the child leads, or `None` once the group
/// has been killed and the child reaped (its id may then belong to another process,
/// which must never be signalled).
pub(crate) struct GroupChild {
    child: Child,
    group: Option<u32>,
}

impl GroupChild {
    /// Starts `command` (its pipes as the caller set them) as the leader of a new process
    /// group that is killed with the node.
    pub(crate) fn spawn(mut command: Command) -> Result<Self, SpawnError> {
        command.process_group(0).kill_on_drop(true);
        die_with_the_node(&mut command);
        let child = command.spawn().map_err(|source| SpawnError {
            program: command
                .as_std()
                .get_program()
                .to_string_lossy()
                .into_owned(),
            source,
        })?;
        Ok(Self {
            group: child.id(),
            child,
        })
    }

    /// The group's id (the leader's pid) while the group has not been killed.
    pub(crate) fn id(&self) -> Option<u32> {
        self.group
    }

    /// The pipes the caller asked for, each handed out once.
    pub(crate) fn pipes(
        &mut self,
    ) -> (Option<ChildStdin>, Option<ChildStdout>, Option<ChildStderr>) {
        (
            self.child.stdin.take(),
            self.child.stdout.take(),
            self.child.stderr.take(),
        )
    }

    /// Waits for the leader to exit. What it left running is still alive: `finish`.
    pub(crate) async fn wait(&mut self) -> std::io::Result<ExitStatus> {
        self.child.wait().await
    }

    /// The leader's status if it has exited, without waiting.
    pub(crate) fn try_wait(&mut self) -> std::io::Result<Option<ExitStatus>> {
        self.child.try_wait()
    }

    /// Kills the whole group (also after a normal exit: whatever the leader left running
    /// in the background goes too) and reaps the leader, waiting at most a few seconds.
    /// Returns whether it was reaped.
    pub(crate) async fn finish(&mut self) -> bool {
        kill_group(self.group);
        let reaped = tokio::time::timeout(REAP_WAIT, self.child.wait())
            .await
            .is_ok();
        if reaped {
            self.group = None;
        } else {
            tracing::warn!(pid = ?self.group, "killed process not reaped in time");
        }
        reaped
    }
}

impl Drop for GroupChild {
    /// Dropped halfway (its attempt was cancelled or timed out in the runtime): the whole
    /// group goes, not only the leader `kill_on_drop` reaches.
    fn drop(&mut self) {
        kill_group(self.group);
    }
}

/// A command must not outlive the node that started it: after a crash the attempt is
/// resumed, and an orphan finishing the old one would run its effects twice.
#[cfg(target_os = "linux")]
fn die_with_the_node(command: &mut Command) {
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
fn die_with_the_node(_command: &mut Command) {}

fn kill_group(group: Option<u32>) {
    let Some(id) = group.and_then(|id| i32::try_from(id).ok()) else {
        return;
    };
    // SAFETY: killpg only sends a signal; the id is a group this module created with
    // process_group(0) and has not reaped, so nothing outside the command's own tree is
    // touched.
    unsafe {
        libc::killpg(id, libc::SIGKILL);
    }
}
