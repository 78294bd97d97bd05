//! The files changed against a base ref, when the repository is a git work tree.
//!
//! git runs without a shell, with `--` / `--end-of-options` before anything taken from
//! the inputs, with the toolchain's environment only, and with the repository's own
//! configuration kept from running programs (`core.fsmonitor`, hooks, external diff
//! drivers, textconv, clean/smudge/process filters): the repository is data, never code.
//! It runs in the analysis's jail cell, where the repository is read-only.

use std::path::Path;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::errors::AgentError;
use crate::jail::Entered;
use crate::process::{Bounds, Captured, find_on_path, run_bounded, toolchain_environment};

/// Longest base ref accepted; real refs and object names are far shorter.
const MAX_BASE_REF_CHARS: usize = 256;

/// The modified files, or why there are none to report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Modified {
    /// Relative to the analysed directory, sorted, at most the configured number.
    Files { files: Vec<String>, truncated: bool },
    /// Not a git repository, git missing, ...: said in words.
    Unavailable(String),
}

/// Refuses a base ref that could be read as an option (`--output=/tmp/x`), a range or
/// a `rev:path` lookup (`..`, `:`), or that carries whitespace or control characters.
pub fn check_base_ref(base_ref: &str) -> Result<(), AgentError> {
    let refuse = |reason: &str| {
        Err(AgentError::InvalidInput {
            field: "base_ref".into(),
            reason: format!("`{base_ref}` {reason}"),
        })
    };
    if base_ref.is_empty() {
        return refuse("is empty; give a branch, tag or commit, e.g. HEAD or main");
    }
    if base_ref.chars().count() > MAX_BASE_REF_CHARS {
        return refuse("is too long to be a ref");
    }
    if base_ref.starts_with('-') {
        return refuse("starts with `-` and could be read as an option");
    }
    if base_ref
        .chars()
        .any(|c| c.is_whitespace() || c.is_control())
    {
        return refuse("contains whitespace or control characters");
    }
    if base_ref.contains("..") || base_ref.contains(':') || base_ref.contains('\\') {
        return refuse("is not a single ref (no ranges `..`, `:` paths or backslashes)");
    }
    Ok(())
}

/// Tracked files that differ from `base_ref` (staged or not) plus untracked files that
/// are not ignored, relative to `repository`.
pub async fn modified_files(
    cell: &Entered,
    repository: &Path,
    base_ref: &str,
    timeout: Duration,
    max_files: usize,
    cancel: &CancellationToken,
) -> Result<Modified, AgentError> {
    check_base_ref(base_ref)?;
    if find_on_path("git").is_none() {
        return Ok(Modified::Unavailable(
            "git is not installed on this node".into(),
        ));
    }
    let git = Git::new(cell, repository, timeout, cancel).await?;
    let inside = git.run(&["rev-parse", "--is-inside-work-tree"]).await?;
    if !inside.as_ref().is_ok_and(|out| out.trim() == "true") {
        return Ok(Modified::Unavailable(format!(
            "`{}` is not a git work tree",
            repository.display()
        )));
    }
    let spec = format!("{base_ref}^{{commit}}");
    let resolved = git
        .run(&[
            "rev-parse",
            "--verify",
            "--quiet",
            "--end-of-options",
            &spec,
        ])
        .await?;
    let commit = match resolved {
        Ok(commit) if !commit.trim().is_empty() => commit.trim().to_string(),
        _ => {
            return Err(AgentError::InvalidInput {
                field: "base_ref".into(),
                reason: format!(
                    "`{base_ref}` is not a commit in this repository (a repository without commits has no HEAD)"
                ),
            });
        }
    };
    let changed = git
        .run(&[
            "diff",
            "--name-only",
            "-z",
            "--relative",
            "--no-ext-diff",
            "--no-textconv",
            &commit,
            "--",
        ])
        .await?
        .map_err(AgentError::Failed)?;
    let untracked = git
        .run(&["ls-files", "-z", "--others", "--exclude-standard", "--"])
        .await?
        .map_err(AgentError::Failed)?;
    let mut files: Vec<String> = changed
        .split('\0')
        .chain(untracked.split('\0'))
        .filter(|name| !name.is_empty())
        .map(str::to_string)
        .collect();
    files.sort();
    files.dedup();
    let truncated = files.len() > max_files;
    files.truncate(max_files);
    Ok(Modified::Files { files, truncated })
}

/// The environment of every git Troupe runs over code that is not its own: the
/// toolchain's, with no system or global configuration, no prompt, no optional locks,
/// no pager and messages in English.
pub(crate) fn git_environment() -> std::collections::BTreeMap<String, String> {
    let mut env = toolchain_environment();
    for (name, value) in [
        ("GIT_CONFIG_NOSYSTEM", "1"),
        ("GIT_CONFIG_GLOBAL", "/dev/null"),
        ("GIT_TERMINAL_PROMPT", "0"),
        ("GIT_OPTIONAL_LOCKS", "0"),
        ("GIT_PAGER", "cat"),
        ("LC_ALL", "C"),
    ] {
        env.insert(name.into(), value.into());
    }
    env
}

/// Output git may print for a changed-file list; more is cut (and then reported as a
/// failure rather than a silently short list).
const MAX_GIT_OUTPUT_BYTES: usize = 4 * 1024 * 1024;

/// git over one repository, with everything in the repository's configuration that
/// could run a program switched off.
struct Git<'a> {
    cell: &'a Entered,
    repository: &'a Path,
    timeout: Duration,
    cancel: &'a CancellationToken,
    /// `-c` settings for every call: hooks, fsmonitor, and every filter driver the
    /// repository's configuration defines, emptied (a `clean` filter runs on `git diff`
    /// against the work tree).
    settings: Vec<String>,
}

impl<'a> Git<'a> {
    async fn new(
        cell: &'a Entered,
        repository: &'a Path,
        timeout: Duration,
        cancel: &'a CancellationToken,
    ) -> Result<Git<'a>, AgentError> {
        let mut git = Git {
            cell,
            repository,
            timeout,
            cancel,
            settings: [
                "core.fsmonitor=false",
                "core.hooksPath=/dev/null",
                "core.quotePath=false",
                // The jail's user does not own the repository when the node is root.
                "safe.directory=*",
            ]
            .map(String::from)
            .into(),
        };
        // Reading configuration runs nothing. Exit code 1 (no filter defined) is no error.
        let defined = git
            .run(&["config", "--name-only", "--get-regexp", r"^filter\."])
            .await?
            .unwrap_or_default();
        let mut drivers: Vec<&str> = defined
            .lines()
            .filter_map(|key| key.strip_prefix("filter."))
            .filter_map(|rest| rest.rsplit_once('.').map(|(driver, _)| driver))
            .collect();
        drivers.dedup();
        for driver in drivers {
            for program in ["clean", "smudge", "process"] {
                git.settings.push(format!("filter.{driver}.{program}="));
            }
        }
        Ok(git)
    }

    /// Runs `git -C repository <args>`: `Ok(Ok(stdout))` on success, `Ok(Err(message))`
    /// when git ran and failed.
    async fn run(&self, args: &[&str]) -> Result<Result<String, String>, AgentError> {
        let mut argv: Vec<std::ffi::OsString> = vec!["git".into(), "-C".into()];
        argv.push(self.repository.into());
        for setting in &self.settings {
            argv.push("-c".into());
            argv.push(setting.into());
        }
        argv.extend(args.iter().map(Into::into));
        let command = self.cell.command(argv, &git_environment())?;
        let bounds = Bounds::head(self.timeout, MAX_GIT_OUTPUT_BYTES);
        let finished = run_bounded(command, self.cancel, &bounds).await?;
        let Captured {
            text: stdout,
            truncated: stdout_cut,
        } = finished.stdout;
        let name = args.first().copied().unwrap_or_default();
        if finished.timed_out {
            return Ok(Err(format!("git {} timed out", args.join(" "))));
        }
        if finished.exit_code != Some(0) {
            return Ok(Err(format!(
                "git {name} failed: {}",
                finished.stderr.text.trim()
            )));
        }
        if stdout_cut {
            return Ok(Err(format!(
                "git {name} printed more than {MAX_GIT_OUTPUT_BYTES} bytes"
            )));
        }
        Ok(Ok(stdout))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs_that_could_be_options_or_tricks_are_refused() {
        for hostile in [
            "--output=/tmp/x",
            "-p",
            "",
            "HEAD main",
            "a\nb",
            "main..evil",
            "HEAD:secret.txt",
            "a\\b",
        ] {
            assert!(
                matches!(
                    check_base_ref(hostile),
                    Err(AgentError::InvalidInput { ref field, .. }) if field == "base_ref"
                ),
                "{hostile:?} was accepted"
            );
        }
        for fine in ["HEAD", "HEAD~1", "HEAD^", "origin/main", "v1.2.3", "abc123"] {
            assert_eq!(check_base_ref(fine), Ok(()), "{fine:?} was refused");
        }
    }
}
