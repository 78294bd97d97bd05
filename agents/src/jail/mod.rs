//! The one jail everything that runs code that is not ours goes through: `shell`,
//! `test_runner`, the deploy command, the code analyser's linters and git.
//!
//! A jailed command runs under bubblewrap (`bwrap`) in fresh mount, PID, IPC, UTS and
//! (unless its cell allows the network) network namespaces. It sees the system and the
//! toolchain read-only, its cell's directories, a private `/tmp`, `/proc` and `/dev` and
//! an empty `HOME`; never the node's store, keys or configuration (see [`bwrap`] for the
//! exact view). It has no capabilities, `no_new_privs`, a seccomp deny-list
//! ([`seccomp`]), and:
//!
//! - when the node runs as root, a separate unprivileged uid and gid (65534 by
//!   default), so a file it can reach is guarded by the host's own permissions;
//! - otherwise the node's user inside a user namespace, which cannot make another.
//!
//! There is no unjailed fallback: where bubblewrap is missing or cannot set up (no user
//! namespaces for a non-root node), the jailed kinds fail saying what to install or
//! allow. Time and output limits stay with `process::run_bounded`; memory and process
//! limits are the cell's [`Limits`].

mod bwrap;
mod cgroup;
pub(crate) mod copy;
mod limits;
mod seccomp;

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::process::Command;
use tokio::sync::OnceCell;
use tokio_util::sync::CancellationToken;

use crate::errors::AgentError;
use crate::process::{Bounds, Finished, run_bounded};

pub(crate) use bwrap::JAIL_HOME;
use bwrap::{Identity, Plan, SystemRoot};
use limits::Bounded;
pub(crate) use limits::Limits;

/// The uid and gid jailed code runs as on a node running as root: `nobody`.
pub const DEFAULT_JAIL_ID: u32 = 65534;

/// How long setting up an empty jail may take before it counts as broken.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// The node-wide part of the jail: what every jailed command may read, and what it must
/// never see.
#[derive(Debug, Clone, PartialEq)]
pub struct JailConfig {
    /// Read-only directories beside `/usr` that toolchains live in (rustup's, pyenv's).
    pub toolchain_dirs: Vec<PathBuf>,
    /// Variables that tell the toolchains where they live, since `HOME` is not the
    /// node's: `RUSTUP_HOME`, `CARGO_HOME`, `PYENV_ROOT` as found.
    pub toolchain_env: BTreeMap<String, String>,
    /// Covered by an empty directory wherever a bound directory contains them: the
    /// store, the key directories.
    pub hidden_dirs: Vec<PathBuf>,
    /// The uid and gid jailed code runs as when the node runs as root.
    pub user: u32,
    pub group: u32,
}

impl JailConfig {
    /// The toolchains this node's environment uses: each `PATH` directory outside
    /// `/usr`, and the homes of rustup, cargo and pyenv (from their variables, else
    /// their usual place in the node's home when it exists), then `extra_toolchain_dirs`.
    pub fn from_environment(extra_toolchain_dirs: Vec<PathBuf>, hidden_dirs: Vec<PathBuf>) -> Self {
        let home = std::env::var_os("HOME").map(PathBuf::from);
        let mut toolchain_env = BTreeMap::new();
        let mut toolchain_dirs: Vec<PathBuf> = std::env::var_os("PATH")
            .map(|path| std::env::split_paths(&path).collect())
            .unwrap_or_default();
        for (variable, usual) in TOOLCHAIN_HOMES {
            let place = std::env::var_os(variable)
                .map(PathBuf::from)
                .or_else(|| home.as_ref().map(|home| home.join(usual)))
                .filter(|place| place.is_dir());
            if let Some(place) = place {
                toolchain_env.insert(variable.to_string(), place.display().to_string());
                toolchain_dirs.push(place);
            }
        }
        toolchain_dirs.extend(extra_toolchain_dirs);
        Self {
            toolchain_dirs: outermost(toolchain_dirs),
            toolchain_env,
            hidden_dirs,
            user: DEFAULT_JAIL_ID,
            group: DEFAULT_JAIL_ID,
        }
    }
}

impl Default for JailConfig {
    fn default() -> Self {
        Self::from_environment(Vec::new(), Vec::new())
    }
}

/// Toolchain managers whose home must be visible, with its usual place under `HOME`.
const TOOLCHAIN_HOMES: [(&str, &str); 3] = [
    ("RUSTUP_HOME", ".rustup"),
    ("CARGO_HOME", ".cargo"),
    ("PYENV_ROOT", ".pyenv"),
];

/// Absolute existing directories outside the system ones, without those inside another
/// of them (bound once, through their outermost directory).
fn outermost(mut dirs: Vec<PathBuf>) -> Vec<PathBuf> {
    dirs.retain(|dir| {
        dir.is_absolute()
            && dir.is_dir()
            && ![
                "/usr", "/bin", "/sbin", "/lib", "/lib64", "/etc", "/proc", "/dev",
            ]
            .iter()
            .any(|system| dir.starts_with(system))
    });
    dirs.sort();
    dirs.dedup();
    let all = dirs.clone();
    dirs.retain(|dir| {
        !all.iter()
            .any(|other| other != dir && dir.starts_with(other))
    });
    dirs
}

/// Whether the jailed command may reach the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Network {
    Off,
    On,
}

/// What one jailed command may touch.
#[derive(Debug, Clone)]
pub(crate) struct Cell {
    pub readable: Vec<PathBuf>,
    pub writable: Vec<PathBuf>,
    /// Where it starts; one of the directories above.
    pub cwd: PathBuf,
    pub network: Network,
    /// Memory and processes; `None` for short tools (git, linters) bounded by time.
    pub limits: Option<Limits>,
}

/// The jail, shared by the agent kinds of a node. Checks once, on first use, that
/// bubblewrap can set up a jail here.
#[derive(Clone)]
pub struct Jail {
    config: Arc<JailConfig>,
    identity: Identity,
    system: Arc<Vec<SystemRoot>>,
    ready: Arc<OnceCell<Result<(), String>>>,
}

impl std::fmt::Debug for Jail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jail")
            .field("config", &self.config)
            .field("identity", &self.identity)
            .finish()
    }
}

impl Default for Jail {
    fn default() -> Self {
        Self::new(JailConfig::default())
    }
}

impl Jail {
    pub fn new(config: JailConfig) -> Self {
        // SAFETY: geteuid cannot fail and has no preconditions.
        let identity = if unsafe { libc::geteuid() } == 0 {
            Identity::Unprivileged {
                user: config.user,
                group: config.group,
            }
        } else {
            Identity::NodeUser
        };
        Self {
            config: Arc::new(config),
            identity,
            system: Arc::new(bwrap::system_roots()),
            ready: Arc::new(OnceCell::new()),
        }
    }

    /// Prepares `cell`: checks the jail works here and creates its limits.
    pub(crate) async fn enter(&self, cell: Cell) -> Result<Entered, AgentError> {
        self.check().await?;
        if let Identity::Unprivileged { user, group } = self.identity {
            for dir in cell.readable.iter().chain(&cell.writable) {
                reachable_by(dir, user, group)?;
            }
        }
        let bounded = match cell.limits {
            Some(limits) => Some(Bounded::create(limits).await?),
            None => None,
        };
        Ok(Entered {
            jail: self.clone(),
            cell,
            bounded,
        })
    }

    /// Gives `dir` (which Troupe made: a scratch directory, a copy) to the jail's user,
    /// so that jailed code may write in it; nothing to do for a node that is not root.
    /// Never follows a symlink.
    pub(crate) async fn hand_over(&self, dir: &Path) -> Result<(), AgentError> {
        let Identity::Unprivileged { user, group } = self.identity else {
            return Ok(());
        };
        let dir = dir.to_path_buf();
        tokio::task::spawn_blocking(move || {
            for entry in walkdir::WalkDir::new(&dir).follow_links(false) {
                let entry =
                    entry.map_err(|error| AgentError::Io(format!("handing over: {error}")))?;
                std::os::unix::fs::lchown(entry.path(), Some(user), Some(group)).map_err(
                    |error| {
                        AgentError::Io(format!(
                            "giving {} to the jail's user {user}: {error}",
                            entry.path().display()
                        ))
                    },
                )?;
            }
            Ok(())
        })
        .await
        .map_err(|error| AgentError::Io(format!("handing over: {error}")))?
    }

    async fn check(&self) -> Result<(), AgentError> {
        self.works().await.map_err(AgentError::Unavailable)
    }

    /// Whether a jail can be set up on this machine; else why not, and how to fix it.
    /// Probed once (an empty jail running `true`), then remembered.
    pub async fn works(&self) -> Result<(), String> {
        let ready = self
            .ready
            .get_or_init(|| async { self.probe().await })
            .await;
        ready.clone()
    }

    /// Runs `true` in an empty jail; the reason it could not, with how to fix it.
    async fn probe(&self) -> Result<(), String> {
        let scratch = tempfile::tempdir().map_err(|error| error.to_string())?;
        let cell = Cell {
            readable: Vec::new(),
            writable: vec![scratch.path().to_path_buf()],
            cwd: scratch.path().to_path_buf(),
            network: Network::Off,
            limits: None,
        };
        let entered = Entered {
            jail: self.clone(),
            cell,
            bounded: None,
        };
        let mut command = entered
            .command(["true"], &BTreeMap::new())
            .map_err(|error| error.to_string())?;
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let output = match tokio::time::timeout(PROBE_TIMEOUT, command.output()).await {
            Err(_) => return Err("setting up an empty jail did not finish in 10 s".into()),
            Ok(Err(error)) if error.kind() == std::io::ErrorKind::NotFound => {
                return Err(format!(
                    "code that is not Troupe's runs only in a jail, and bubblewrap (`bwrap`) \
                     is not installed: install it (Debian and Ubuntu: `apt-get install \
                     bubblewrap`) and restart the node ({error})"
                ));
            }
            Ok(Err(error)) => return Err(format!("cannot start bubblewrap: {error}")),
            Ok(Ok(output)) => output,
        };
        if output.status.success() {
            return Ok(());
        }
        let said = String::from_utf8_lossy(&output.stderr).trim().to_string();
        Err(match self.identity {
            Identity::NodeUser => format!(
                "bubblewrap cannot set up a jail ({said}); a node that is not root needs \
                 unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1, or \
                 an AppArmor profile allowing them for bwrap)"
            ),
            Identity::Unprivileged { .. } => {
                format!("bubblewrap cannot set up a jail as root: {said}")
            }
        })
    }
}

/// Refuses, saying which directory is in the way, a `dir` the jail's unprivileged user
/// could not enter: jailed code would fail on it in ways that are hard to read.
fn reachable_by(dir: &Path, user: u32, group: u32) -> Result<(), AgentError> {
    use std::os::unix::fs::MetadataExt;
    for step in dir.ancestors() {
        let Ok(metadata) = std::fs::metadata(step) else {
            continue;
        };
        let mode = metadata.mode();
        let search = if metadata.uid() == user {
            mode & 0o100
        } else if metadata.gid() == group {
            mode & 0o010
        } else {
            mode & 0o001
        };
        if search == 0 {
            return Err(AgentError::Unavailable(format!(
                "the node runs as root, so jailed code runs as {user}:{group}, which cannot \
                 enter `{}` (on the way to `{}`): let others enter it (chmod o+rx), or run \
                 the node as a user of its own",
                step.display(),
                dir.display()
            )));
        }
    }
    Ok(())
}

/// A prepared cell: the commands to run in it, and what isolation they get.
pub(crate) struct Entered {
    jail: Jail,
    cell: Cell,
    bounded: Option<Bounded>,
}

impl Entered {
    /// `argv` in the jail with exactly `env` (and `HOME` and the toolchain's variables
    /// where `env` does not set them); run it with `process::run_bounded` or as a
    /// `GroupChild`.
    pub(crate) fn command<I, S>(
        &self,
        argv: I,
        env: &BTreeMap<String, String>,
    ) -> Result<Command, AgentError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let seccomp = seccomp::program_pipe()?;
        let plan = Plan {
            identity: self.jail.identity,
            toolchain_dirs: &self.jail.config.toolchain_dirs,
            hidden_dirs: &self.jail.config.hidden_dirs,
            cell: &self.cell,
            seccomp_fd: seccomp.as_raw_fd(),
        };
        let mut command = Command::new("bwrap");
        command
            .args(bwrap::arguments(&plan, &self.jail.system))
            .args(argv)
            .current_dir("/")
            .env_clear()
            .envs(&self.jail.config.toolchain_env)
            .env("HOME", JAIL_HOME)
            .envs(env.iter().filter(|(name, _)| *name != "HOME"));
        let entry = match &self.bounded {
            Some(bounded) => Some(bounded.entry()?),
            None => None,
        };
        // SAFETY: the closure runs in the forked child before exec and only makes
        // async-signal-safe calls (fcntl, prctl, and `Entry::enter`'s) on data prepared
        // above.
        unsafe {
            command.pre_exec(move || child_setup(&seccomp, entry.as_ref()));
        }
        Ok(command)
    }

    /// What the commands of this cell get, for the task's outputs.
    pub(crate) fn isolation(&self) -> Value {
        let user = match self.jail.identity {
            Identity::Unprivileged { user, group } => format!("{user}:{group}"),
            Identity::NodeUser => "the node's user, in a user namespace".into(),
        };
        let network = match self.cell.network {
            Network::Off => "off",
            Network::On => "on",
        };
        json!({
            "jail": "bubblewrap",
            "user": user,
            "network": network,
            "writable": self.cell.writable,
            "seccomp": "deny-list",
            "memory": self.bounded.as_ref().map_or("unbounded", Bounded::memory),
            "processes": self.bounded.as_ref().map_or("pid_namespace", Bounded::processes),
        })
    }

    /// Runs `argv` with `env` once, within `bounds`, and then finishes the cell: how it
    /// ended, as a step reports it, with the isolation it had. A timeout is an error;
    /// a non-zero exit is the caller's to judge.
    pub(crate) async fn run_once<I, S>(
        self,
        argv: I,
        env: &BTreeMap<String, String>,
        bounds: &Bounds,
        cancel: &CancellationToken,
    ) -> Result<RanOnce, AgentError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let command = self.command(argv, env)?;
        let isolation = self.isolation();
        let started = Instant::now();
        let ran = run_bounded(command, cancel, bounds).await;
        self.finish().await;
        Ok(RanOnce {
            finished: ran?.unless_timed_out(bounds)?,
            took: started.elapsed(),
            isolation,
        })
    }

    /// Kills whatever is left in the cell's cgroups and removes them.
    pub(crate) async fn finish(self) {
        if let Some(bounded) = self.bounded {
            bounded.finish().await;
        }
    }
}

/// A command run once in a cell.
pub(crate) struct RanOnce {
    pub finished: Finished,
    took: Duration,
    isolation: Value,
}

impl RanOnce {
    /// Exit code, both pipes, how long it ran, and `isolation`.
    pub(crate) fn report(self) -> serde_json::Map<String, Value> {
        let mut report = self.finished.report(self.took);
        report.insert("isolation".into(), self.isolation);
        report
    }
}

/// In the child, before exec: keep the seccomp program open across exec for bubblewrap,
/// set `no_new_privs` (nothing started in the jail may gain privileges through a setuid
/// file), join the cell's limits.
fn child_setup(seccomp: &OwnedFd, entry: Option<&limits::Entry>) -> std::io::Result<()> {
    // SAFETY: fcntl and prctl are async-signal-safe; the descriptor is open (owned by
    // the closure) and only this child's copy loses close-on-exec.
    unsafe {
        if libc::fcntl(seccomp.as_raw_fd(), libc::F_SETFD, 0) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    match entry {
        Some(entry) => entry.enter(),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests;

/// Directories and cells for the tests of the kinds that use the jail.
#[cfg(test)]
pub(crate) mod testing {
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;

    use super::{Cell, Entered, Jail, Network};

    /// A directory the jail's user may read (and, with `0o777`, write), as an operator
    /// of a node running as root would leave a repository.
    pub(crate) fn open_dir(mode: u32) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(mode)).unwrap();
        dir
    }

    /// A cell started in `readable`, where jailed code may also write in `writable`.
    pub(crate) async fn cell(readable: &Path, writable: &[&Path]) -> Entered {
        Jail::default()
            .enter(Cell {
                readable: vec![readable.to_path_buf()],
                writable: writable.iter().map(|dir| dir.to_path_buf()).collect(),
                cwd: readable.to_path_buf(),
                network: Network::Off,
                limits: None,
            })
            .await
            .expect("bubblewrap sets up a jail here (scripts/setup installs it)")
    }
}
