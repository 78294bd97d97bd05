//! Where on the host a task may point an agent: the directories and files named in its
//! inputs (`work_dir`, `repository`, `working_dir`, `output_dir`, `sarif_path`) must lie
//! under one of the node's workspace roots (`agents.workspace_roots`), and never in the
//! node's own store or key directories. Without this, a workflow author could have
//! `code_generator` write into `~/.ssh` or `security_scanner` read `/etc`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::errors::{AgentError, invalid};

/// The node's workspace roots and the directories no task may name.
#[derive(Debug, Clone, PartialEq)]
pub struct Workspace {
    inner: Arc<Places>,
}

#[derive(Debug, PartialEq)]
struct Places {
    /// Canonical: compared with canonical task paths.
    roots: Vec<PathBuf>,
    hidden: Vec<PathBuf>,
}

impl Workspace {
    /// Paths under `roots` (made absolute from the node's directory, symlinks resolved),
    /// except those in `hidden`.
    pub fn new(roots: &[PathBuf], hidden: &[PathBuf]) -> Self {
        let real = |dirs: &[PathBuf]| -> Vec<PathBuf> {
            dirs.iter().filter_map(|dir| resolve(dir).ok()).collect()
        };
        Self {
            inner: Arc::new(Places {
                roots: real(roots),
                hidden: real(hidden),
            }),
        }
    }

    /// Anywhere on the host: for tests and embedders that decide paths themselves.
    pub fn anywhere() -> Self {
        Self::new(&[PathBuf::from("/")], &[])
    }

    /// The real location of `given` (input `field`), which need not exist yet: refused
    /// outside every root or inside a hidden directory, naming the setting to change.
    pub(crate) fn place(&self, field: &str, given: &Path) -> Result<PathBuf, AgentError> {
        if given.as_os_str().is_empty() {
            return Err(invalid(field, "is empty; give a path"));
        }
        let real = resolve(given).map_err(|reason| invalid(field, reason))?;
        if self.is_hidden(&real) {
            return Err(invalid(
                field,
                format!(
                    "`{}` is inside the node's own data (its store or keys); no task may \
                     name it",
                    given.display()
                ),
            ));
        }
        if !self.inner.roots.iter().any(|root| real.starts_with(root)) {
            return Err(invalid(
                field,
                format!(
                    "`{}` is outside the workspace roots ({}); use a path under one, or add \
                     a root to `agents.workspace_roots`",
                    given.display(),
                    self.roots_list()
                ),
            ));
        }
        Ok(real)
    }

    /// Whether `path` (real, absolute) is one of the hidden directories or inside one.
    pub(crate) fn is_hidden(&self, path: &Path) -> bool {
        self.inner
            .hidden
            .iter()
            .any(|hidden| path.starts_with(hidden))
    }

    fn roots_list(&self) -> String {
        let roots: Vec<String> = self
            .inner
            .roots
            .iter()
            .map(|root| root.display().to_string())
            .collect();
        if roots.is_empty() {
            "none".into()
        } else {
            roots.join(", ")
        }
    }
}

/// `path` made absolute, with the symlinks of its longest existing ancestor resolved and
/// the rest (which does not exist yet) appended. A `..` in the part that does not exist
/// cannot be resolved, and is refused.
fn resolve(path: &Path) -> Result<PathBuf, String> {
    let absolute = std::path::absolute(path)
        .map_err(|error| format!("`{}` cannot be made absolute: {error}", path.display()))?;
    let mut existing = absolute.as_path();
    let mut rest = Vec::new();
    let real = loop {
        if let Ok(real) = std::fs::canonicalize(existing) {
            break real;
        }
        // `file_name` is `None` for a path ending in `..`.
        let (Some(parent), Some(name)) = (existing.parent(), existing.file_name()) else {
            return Err(format!(
                "`{}` has `..` in a part that does not exist",
                path.display()
            ));
        };
        rest.push(name.to_owned());
        existing = parent;
    };
    Ok(rest.iter().rev().fold(real, |path, part| path.join(part)))
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::Workspace;

    #[test]
    fn paths_outside_the_roots_or_inside_hidden_dirs_are_refused_by_name() {
        let root = tempfile::tempdir().unwrap();
        let keys = root.path().join(".troupe/data-auth");
        std::fs::create_dir_all(&keys).unwrap();
        let workspace = Workspace::new(&[root.path().to_path_buf()], std::slice::from_ref(&keys));
        let real_root = std::fs::canonicalize(root.path()).unwrap();

        let inside = workspace
            .place("work_dir", &root.path().join("feature/new"))
            .unwrap();
        assert_eq!(inside, real_root.join("feature/new"), "need not exist yet");

        let error = workspace.place("work_dir", Path::new("/etc")).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "input `work_dir`: `/etc` is outside the workspace roots ({}); use a path \
                 under one, or add a root to `agents.workspace_roots`",
                real_root.display()
            )
        );
        let error = workspace
            .place("repository", &keys.join("jwt.key"))
            .unwrap_err();
        assert!(
            error.to_string().contains("is inside the node's own data"),
            "{error}"
        );
        assert!(workspace.place("work_dir", Path::new("")).is_err());
    }

    /// The attacks: `..` and a symlink out of a root name the place they lead to.
    #[test]
    fn dot_dot_and_symlinks_out_of_a_root_are_outside_it() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), root.path().join("link")).unwrap();
        let workspace = Workspace::new(&[root.path().to_path_buf()], &[]);
        for escape in [
            root.path().join("link/new"),
            root.path().join("../"),
            root.path().join("missing/../../x"),
        ] {
            assert!(
                workspace.place("work_dir", &escape).is_err(),
                "{} was allowed",
                escape.display()
            );
        }
        assert!(
            Workspace::new(&[], &[])
                .place("w", Path::new("/tmp"))
                .is_err()
        );
        assert!(
            Workspace::anywhere()
                .place("w", &PathBuf::from("/tmp"))
                .is_ok()
        );
    }
}
