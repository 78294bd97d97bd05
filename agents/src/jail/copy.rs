//! The throw-away copy a command runs in, so that nothing it writes reaches the original
//! repository. Symlinks are never followed: a relative link that stays inside the tree
//! is recreated as a link, any other (absolute, or climbing out) is left out, so the copy
//! cannot be used to reach or write the original, and a link loop cannot make us spin.

use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::errors::AgentError;

#[derive(Debug, Clone)]
pub(crate) struct CopyLimits {
    pub max_copy_bytes: u64,
    pub max_copy_files: u64,
    /// Directory names left out wherever they appear (build outputs, VCS data).
    pub skip_dirs: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct CopyReport {
    pub files: u64,
    pub bytes: u64,
    pub skipped_symlinks: u64,
}

/// Copies `from` into `to` (which must exist). Blocking: run it on a blocking thread.
/// `cancelled` is checked at every entry.
pub(crate) fn copy_tree(
    from: &Path,
    to: &Path,
    limits: &CopyLimits,
    cancelled: &AtomicBool,
) -> Result<CopyReport, AgentError> {
    let mut report = CopyReport::default();
    let walker = walkdir::WalkDir::new(from)
        .follow_links(false)
        .into_iter()
        .filter_entry(|entry| {
            entry.depth() == 0
                || !entry.file_type().is_dir()
                || !limits
                    .skip_dirs
                    .iter()
                    .any(|skip| entry.file_name().to_str() == Some(skip.as_str()))
        });
    for entry in walker {
        if cancelled.load(Ordering::Relaxed) {
            return Err(AgentError::Cancelled);
        }
        let entry =
            entry.map_err(|error| AgentError::Io(format!("reading the repository: {error}")))?;
        let relative = entry.path().strip_prefix(from).map_err(|_| {
            AgentError::Io(format!(
                "{} is outside the repository",
                entry.path().display()
            ))
        })?;
        let target = to.join(relative);
        let file_type = entry.file_type();
        if file_type.is_dir() {
            std::fs::create_dir_all(&target).map_err(|error| io(&target, error))?;
        } else if file_type.is_file() {
            let size = entry.metadata().map(|meta| meta.len()).unwrap_or(0);
            report.files += 1;
            report.bytes += size;
            if report.files > limits.max_copy_files {
                return Err(too_large(format!(
                    "has more than max_copy_files ({}) files outside skipped directories",
                    limits.max_copy_files
                )));
            }
            if report.bytes > limits.max_copy_bytes {
                return Err(too_large(format!(
                    "holds more than max_copy_bytes ({} bytes) outside skipped directories",
                    limits.max_copy_bytes
                )));
            }
            std::fs::copy(entry.path(), &target).map_err(|error| io(entry.path(), error))?;
        } else if file_type.is_symlink() {
            let link = std::fs::read_link(entry.path()).map_err(|error| io(entry.path(), error))?;
            if stays_inside(relative, &link) {
                std::os::unix::fs::symlink(&link, &target).map_err(|error| io(&target, error))?;
            } else {
                report.skipped_symlinks += 1;
            }
        }
        // Sockets, FIFOs and devices are left out: a test suite cannot need them copied.
    }
    Ok(report)
}

/// Whether a relative link at `link_path` (relative to the tree root) pointing to `link`
/// resolves, lexically, inside the tree.
fn stays_inside(link_path: &Path, link: &Path) -> bool {
    if link.is_absolute() {
        return false;
    }
    let mut depth: i64 = 0;
    let parent = link_path.parent().unwrap_or(Path::new(""));
    for component in parent.components().chain(link.components()) {
        match component {
            Component::Normal(_) => depth += 1,
            Component::ParentDir => {
                depth -= 1;
                if depth < 0 {
                    return false;
                }
            }
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => return false,
        }
    }
    true
}

fn too_large(reason: String) -> AgentError {
    AgentError::InvalidInput {
        field: "repository".into(),
        reason: format!(
            "{reason}; add its build outputs to skip_dirs or raise the limit in the agent's \
             settings"
        ),
    }
}

fn io(path: &Path, error: std::io::Error) -> AgentError {
    AgentError::Io(format!(
        "copying {}: {error}",
        PathBuf::from(path).display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> CopyLimits {
        CopyLimits {
            max_copy_bytes: 1 << 20,
            max_copy_files: 100,
            skip_dirs: vec![".git".into(), "target".into()],
        }
    }

    #[test]
    fn copies_files_and_inner_links_but_not_links_out_or_skipped_dirs() {
        let from = tempfile::tempdir().unwrap();
        let to = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(from.path().join("src/deep")).unwrap();
        std::fs::create_dir_all(from.path().join("target/debug")).unwrap();
        std::fs::write(from.path().join("src/deep/a.txt"), "a").unwrap();
        std::fs::write(from.path().join("target/debug/big"), "x").unwrap();
        std::os::unix::fs::symlink("deep/a.txt", from.path().join("src/inner")).unwrap();
        std::os::unix::fs::symlink("../../etc", from.path().join("src/out")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", from.path().join("abs")).unwrap();
        // A loop: never followed, so it cannot hang the walk.
        std::os::unix::fs::symlink("loop", from.path().join("loop")).unwrap();

        let report = copy_tree(from.path(), to.path(), &limits(), &AtomicBool::new(false)).unwrap();
        assert_eq!(report.files, 1);
        assert_eq!(report.skipped_symlinks, 2, "{report:?}");
        assert_eq!(
            std::fs::read_to_string(to.path().join("src/inner")).unwrap(),
            "a"
        );
        assert!(!to.path().join("target").exists());
        let absent = |path: &str| {
            std::fs::symlink_metadata(to.path().join(path))
                .is_err_and(|error| error.kind() == std::io::ErrorKind::NotFound)
        };
        assert!(absent("src/out") && absent("abs"), "links out were copied");
        assert!(std::fs::symlink_metadata(to.path().join("loop")).is_ok());
    }

    #[test]
    fn a_tree_over_the_limits_is_refused_with_the_limit_named() {
        let from = tempfile::tempdir().unwrap();
        let to = tempfile::tempdir().unwrap();
        std::fs::write(from.path().join("big"), vec![0u8; 2 << 20]).unwrap();
        let error =
            copy_tree(from.path(), to.path(), &limits(), &AtomicBool::new(false)).unwrap_err();
        assert!(error.to_string().contains("max_copy_bytes"), "{error}");
        let cancelled = copy_tree(from.path(), to.path(), &limits(), &AtomicBool::new(true));
        assert_eq!(cancelled.unwrap_err(), AgentError::Cancelled);
    }
}
