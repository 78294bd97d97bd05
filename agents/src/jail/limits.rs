//! The memory and process limits of one jailed command: a throw-away cgroup where one
//! is writable (see [`cgroup`](super::cgroup)), else RLIMIT_AS for memory. Processes are
//! always contained by the jail's PID namespace (killing its first process kills them
//! all); a cgroup also counts them (`pids.max`), which bounds a fork bomb.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;

use crate::errors::AgentError;

use super::cgroup::Cgroups;

/// The limits one jailed command runs under.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub max_memory_bytes: u64,
    pub max_processes: u64,
}

impl Limits {
    /// A command someone wrote (a `shell` task, a deploy command): enough for a build,
    /// not for a fork bomb.
    pub(crate) const COMMAND: Limits = Limits {
        max_memory_bytes: 4 << 30,
        max_processes: 512,
    };
}

/// The cgroups made for one command, and the address-space cap used where none limits
/// memory.
pub(super) struct Bounded {
    cgroups: Cgroups,
    address_space_limit: Option<u64>,
}

impl Bounded {
    pub(super) async fn create(limits: Limits) -> Result<Self, AgentError> {
        let cgroups = tokio::task::spawn_blocking(move || {
            Cgroups::create(limits.max_memory_bytes, limits.max_processes)
        })
        .await
        .map_err(|error| AgentError::Io(format!("creating cgroups: {error}")))?;
        let address_space_limit = (!cgroups.limits_memory()).then_some(limits.max_memory_bytes);
        Ok(Self {
            cgroups,
            address_space_limit,
        })
    }

    /// `cgroup`, or `rlimit` (address space, which over-counts reserved memory).
    pub(super) fn memory(&self) -> &'static str {
        if self.cgroups.limits_memory() {
            "cgroup"
        } else {
            "rlimit"
        }
    }

    /// `cgroup` (counted by pids.max), else `pid_namespace` (contained and killed
    /// whole, not counted).
    pub(super) fn processes(&self) -> &'static str {
        if self.cgroups.limits_processes() {
            "cgroup"
        } else {
            "pid_namespace"
        }
    }

    /// What the child must do before exec, prepared here where allocating is allowed.
    pub(super) fn entry(&self) -> Result<Entry, AgentError> {
        let procs_files = self
            .cgroups
            .procs_files()
            .into_iter()
            .map(|path| {
                CString::new(path.as_os_str().as_bytes())
                    .map_err(|_| AgentError::Io(format!("cgroup path {path:?} contains NUL")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Entry {
            procs_files,
            address_space_limit: self.address_space_limit,
        })
    }

    /// Kills whatever is left in the cgroups and removes them.
    pub(super) async fn finish(self) {
        let mut cgroups = self.cgroups;
        let _ = tokio::task::spawn_blocking(move || cgroups.remove()).await;
    }
}

/// The cgroups to join and the cap to set, in the child before exec.
pub(super) struct Entry {
    procs_files: Vec<CString>,
    address_space_limit: Option<u64>,
}

impl Entry {
    /// Joins each cgroup, then caps the address space when no memory cgroup could be
    /// made. Runs in the forked child: only async-signal-safe calls (open, write, close,
    /// setrlimit) on data prepared before the fork.
    pub(super) fn enter(&self) -> std::io::Result<()> {
        for file in &self.procs_files {
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
        if let Some(bytes) = self.address_space_limit {
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
}
