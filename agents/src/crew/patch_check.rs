//! `git apply --check` of a proposed patch, in the jail.
//!
//! git reads the work directory read-only from inside a jail cell, with no network, as
//! the jail's user, and reads none of the repository's configuration: it runs against
//! an empty git directory of our own (made in the cell's scratch directory), with no
//! system or global configuration, so the repository's filters (which `apply` would run
//! on the files it reads) and hooks never run.
//!
//! The check is synchronous because a model's answer is checked synchronously (see
//! [`super::CrewKind::parse`]): it reads a patch of a few kilobytes, bounded by the
//! model's token limit, and is stopped after [`CHECK_TIMEOUT`].

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::analysis::git::git_environment;
use crate::errors::AgentError;
use crate::jail::{Cell, Entered, Jail, Network};

/// How long one git call in the check may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(10);

/// How often a running check is looked at.
const POLL: Duration = Duration::from_millis(5);

/// What git says about a patch is cut to this many characters.
const MAX_REASON_CHARS: usize = 300;

/// A jail cell over one work directory, ready to check patches against it.
pub struct PatchCheck {
    cell: Entered,
    /// Ours, writable in the cell: the empty git directory, the patch, git's stderr.
    scratch: tempfile::TempDir,
    work_tree: PathBuf,
}

impl PatchCheck {
    /// Enters a cell that reads `work_tree` and makes the empty git directory in it.
    pub async fn enter(jail: &Jail, work_tree: &Path) -> Result<Self, AgentError> {
        let io = |what: &str, error: std::io::Error| AgentError::Io(format!("{what}: {error}"));
        let scratch = tempfile::tempdir().map_err(|error| io("scratch directory", error))?;
        jail.hand_over(scratch.path()).await?;
        let work_tree =
            std::path::absolute(work_tree).map_err(|error| io("work directory", error))?;
        let cell = jail
            .enter(Cell {
                readable: vec![work_tree.clone()],
                writable: vec![scratch.path().to_path_buf()],
                cwd: work_tree.clone(),
                network: Network::Off,
                limits: None,
            })
            .await?;
        let check = Self {
            cell,
            scratch,
            work_tree,
        };
        let git_dir = check.git_dir().into_os_string();
        check
            .git(
                &["init".into(), "--bare".into(), "-q".into(), git_dir],
                false,
            )?
            .map_err(|said| {
                AgentError::Failed(format!("cannot make an empty git directory: {said}"))
            })?;
        Ok(check)
    }

    /// Whether `patch` applies to the work tree as it is; what git says when not.
    pub fn applies(&self, patch: &str) -> Result<(), String> {
        let file = self.scratch.path().join("proposed.patch");
        std::fs::write(&file, patch).map_err(|error| format!("writing the patch: {error}"))?;
        let args = ["apply", "--check", "--recount"].map(OsString::from);
        let checked = self
            .git(&[&args[..], &[file.into_os_string()]].concat(), true)
            .map_err(|error| error.to_string())?;
        checked.map_err(|said| {
            let said: String = said.chars().take(MAX_REASON_CHARS).collect();
            format!("the diff does not apply: {said}")
        })
    }

    fn git_dir(&self) -> PathBuf {
        self.scratch.path().join("git")
    }

    /// Runs git with `args` in the cell: `Ok(Ok(()))` when it succeeds, `Ok(Err(stderr))`
    /// when it ran and refused.
    fn git(
        &self,
        args: &[OsString],
        in_our_repository: bool,
    ) -> Result<Result<(), String>, AgentError> {
        let mut env = git_environment();
        if in_our_repository {
            env.insert("GIT_DIR".into(), self.git_dir().display().to_string());
            env.insert("GIT_WORK_TREE".into(), self.work_tree.display().to_string());
        }
        let argv = std::iter::once(OsString::from("git")).chain(args.iter().cloned());
        self.run(argv, &env)
    }

    /// Runs `argv` in the cell, synchronously, stopping it after [`CHECK_TIMEOUT`].
    fn run(
        &self,
        argv: impl Iterator<Item = OsString>,
        env: &BTreeMap<String, String>,
    ) -> Result<Result<(), String>, AgentError> {
        let io = |what: &str, error: std::io::Error| AgentError::Io(format!("{what}: {error}"));
        let stderr_path = self.scratch.path().join("git.stderr");
        let stderr =
            std::fs::File::create(&stderr_path).map_err(|error| io("git's stderr", error))?;
        let mut command = self.cell.command(argv, env)?;
        let command = command
            .as_std_mut()
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        let mut child = command
            .spawn()
            .map_err(|error| io("starting git in the jail", error))?;
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().map_err(|error| io("git", error))? {
                break status;
            }
            if started.elapsed() > CHECK_TIMEOUT {
                // Killing bubblewrap ends its PID namespace, and git with it.
                let _ = child.kill();
                let _ = child.wait();
                return Ok(Err(format!("git did not finish in {CHECK_TIMEOUT:?}")));
            }
            std::thread::sleep(POLL);
        };
        if status.success() {
            return Ok(Ok(()));
        }
        let said = std::fs::read(&stderr_path).map_err(|error| io("git's stderr", error))?;
        Ok(Err(String::from_utf8_lossy(&said).trim().to_string()))
    }
}
