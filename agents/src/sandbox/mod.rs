//! Running a command with no network, bounded memory and a bounded number of processes,
//! killed whole on timeout or cancel. What this machine allowed is reported as an
//! [`Isolation`], so a workflow (and a person) can see how strong the walls really were.
//!
//! - Network: a new network namespace (`unshare --net`, as root; else `unshare --user
//!   --map-root-user --net`). It has its own loopback, down, so nothing is reachable, not
//!   even the host's 127.0.0.1.
//! - Processes: a cgroup with `pids.max` when one is writable (see [`cgroup`]); the
//!   command also runs as PID 1 of a new PID namespace where unshare allows it, so
//!   killing it kills every process it started, even those that left its process group.
//! - Memory: the cgroup's memory limit when writable, else RLIMIT_AS.

mod cgroup;
pub(crate) mod copy;

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::process::Command;

use crate::errors::AgentError;

use cgroup::Cgroups;

/// The limits one sandboxed command runs under.
#[derive(Debug, Clone)]
pub(crate) struct SandboxLimits {
    pub max_memory_bytes: u64,
    pub max_processes: u64,
    /// Run without a network namespace when none can be made, instead of failing.
    pub allow_network_fallback: bool,
}

/// What isolation a command actually got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Isolation {
    /// `namespace`, `user_namespace` or `none`.
    pub network: &'static str,
    /// `cgroup` or `rlimit` (address space, which over-counts reserved memory).
    pub memory: &'static str,
    /// `cgroup` (pids.max), `pid_namespace` (contained and killed whole, not counted) or
    /// `none`.
    pub processes: &'static str,
}

impl Isolation {
    pub(crate) fn to_json(&self) -> Value {
        json!({"network": self.network, "memory": self.memory, "processes": self.processes})
    }
}

/// The unshare flags we try, strongest first, and what each gives.
const WRAPPERS: &[(&[&str], &str, bool)] = &[
    (
        &["--net", "--pid", "--fork", "--kill-child"],
        "namespace",
        true,
    ),
    (
        &[
            "--user",
            "--map-root-user",
            "--net",
            "--pid",
            "--fork",
            "--kill-child",
        ],
        "user_namespace",
        true,
    ),
    (&["--net"], "namespace", false),
    (
        &["--user", "--map-root-user", "--net"],
        "user_namespace",
        false,
    ),
];

/// A prepared sandbox: the wrapper that works here and the cgroups made for one command.
pub(crate) struct Sandbox {
    unshare_flags: &'static [&'static str],
    cgroups: Cgroups,
    limits: SandboxLimits,
    pub(crate) isolation: Isolation,
}

impl Sandbox {
    pub(crate) async fn prepare(limits: SandboxLimits) -> Result<Self, AgentError> {
        let mut chosen = None;
        for (flags, network, pid_namespace) in WRAPPERS {
            if unshare_works(flags).await {
                chosen = Some((*flags, *network, *pid_namespace));
                break;
            }
        }
        let (unshare_flags, network, pid_namespace) = match chosen {
            Some(chosen) => chosen,
            None if limits.allow_network_fallback => (&[][..], "none", false),
            None => {
                return Err(AgentError::Failed(
                    "cannot cut the network off: neither `unshare --net` nor `unshare --user \
                     --map-root-user --net` works here (is util-linux installed, and are \
                     namespaces allowed?); run the node as root, allow unprivileged user \
                     namespaces, or set allow_network_fallback to run with the network"
                        .into(),
                ));
            }
        };
        let (max_memory_bytes, max_processes) = (limits.max_memory_bytes, limits.max_processes);
        let cgroups =
            tokio::task::spawn_blocking(move || Cgroups::create(max_memory_bytes, max_processes))
                .await
                .map_err(|error| AgentError::Io(format!("creating cgroups: {error}")))?;
        let isolation = Isolation {
            network,
            memory: if cgroups.limits_memory() {
                "cgroup"
            } else {
                "rlimit"
            },
            processes: if cgroups.limits_processes() {
                "cgroup"
            } else if pid_namespace {
                "pid_namespace"
            } else {
                "none"
            },
        };
        Ok(Self {
            unshare_flags,
            cgroups,
            limits,
            isolation,
        })
    }

    /// `sh -c <script>` inside the sandbox, with an empty environment; run it with
    /// `process::run_bounded`, which gives it its own group and captures its pipes.
    pub(crate) fn shell_command(&self, script: &str) -> Result<Command, AgentError> {
        let mut command = if self.unshare_flags.is_empty() {
            Command::new("sh")
        } else {
            let mut command = Command::new("unshare");
            command.args(self.unshare_flags).arg("--").arg("sh");
            command
        };
        command.arg("-c").arg(script).env_clear();
        let procs_files = self
            .cgroups
            .procs_files()
            .into_iter()
            .map(|path| {
                CString::new(path.as_os_str().as_bytes())
                    .map_err(|_| AgentError::Io(format!("cgroup path {path:?} contains NUL")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let address_space_limit =
            (!self.cgroups.limits_memory()).then_some(self.limits.max_memory_bytes);
        // SAFETY: the closure runs in the forked child before exec and only makes
        // async-signal-safe calls (open, write, close, setrlimit) on data prepared above.
        unsafe {
            command.pre_exec(move || enter_limits(&procs_files, address_space_limit));
        }
        Ok(command)
    }

    /// Kills whatever is left in the cgroups and removes them.
    pub(crate) async fn finish(mut self) {
        let mut cgroups = std::mem::take(&mut self.cgroups);
        let _ = tokio::task::spawn_blocking(move || cgroups.remove()).await;
    }
}

/// In the child, before exec: join each cgroup, then cap the address space when no
/// memory cgroup could be made.
fn enter_limits(procs_files: &[CString], address_space_limit: Option<u64>) -> std::io::Result<()> {
    for file in procs_files {
        // SAFETY: `file` is a valid NUL-terminated path; open/write/close are
        // async-signal-safe. Writing "0" moves the writing process itself.
        unsafe {
            let fd = libc::open(file.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
            if fd < 0 {
                return Err(std::io::Error::last_os_error());
            }
            let written = libc::write(fd, b"0".as_ptr().cast(), 1);
            libc::close(fd);
            if written != 1 {
                return Err(std::io::Error::last_os_error());
            }
        }
    }
    if let Some(bytes) = address_space_limit {
        let limit = libc::rlimit {
            rlim_cur: bytes,
            rlim_max: bytes,
        };
        // SAFETY: setrlimit is async-signal-safe and `limit` lives on this stack.
        if unsafe { libc::setrlimit(libc::RLIMIT_AS, &limit) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

async fn unshare_works(flags: &[&str]) -> bool {
    let probe = Command::new("unshare")
        .args(flags)
        .arg("true")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .status();
    matches!(
        tokio::time::timeout(Duration::from_secs(5), probe).await,
        Ok(Ok(status)) if status.success()
    )
}
