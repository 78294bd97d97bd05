//! The directory a model-backed agent writes into, and the files it reads from it.
//! Paths come from the task or from the model, so every one is checked: relative,
//! no `..`, no symlink on the way out of the directory, bounded in size.

use std::path::{Component, Path, PathBuf};

use crate::errors::{AgentError, invalid};

pub struct WorkDir {
    root: PathBuf,
}

impl WorkDir {
    /// The directory `path`, created when missing.
    pub fn open(field: &str, path: &str) -> Result<Self, AgentError> {
        if path.trim().is_empty() {
            return Err(invalid(field, "is empty; give the directory to work in"));
        }
        std::fs::create_dir_all(path)
            .map_err(|error| invalid(field, format!("cannot create `{path}`: {error}")))?;
        let root = std::fs::canonicalize(path)
            .map_err(|error| invalid(field, format!("cannot open `{path}`: {error}")))?;
        if !root.is_dir() {
            return Err(invalid(field, format!("`{path}` is not a directory")));
        }
        Ok(Self { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `relative` inside the directory, refusing absolute paths and `..`.
    pub fn resolve(&self, field: &str, relative: &str) -> Result<PathBuf, AgentError> {
        let path = Path::new(relative);
        let plain = !relative.is_empty()
            && path
                .components()
                .all(|component| matches!(component, Component::Normal(_) | Component::CurDir));
        if !plain {
            return Err(invalid(
                field,
                format!(
                    "`{relative}` must be a relative path inside the work directory, without `..`"
                ),
            ));
        }
        Ok(self.root.join(path))
    }

    /// Writes `text` to `relative`, creating parents; refuses a path whose real location
    /// (after symlinks) is outside the directory.
    pub fn write(&self, field: &str, relative: &str, text: &str) -> Result<PathBuf, AgentError> {
        let path = self.resolve(field, relative)?;
        let parent = path.parent().unwrap_or(&self.root);
        std::fs::create_dir_all(parent).map_err(|error| {
            AgentError::Io(format!("cannot create {}: {error}", parent.display()))
        })?;
        let real_parent = std::fs::canonicalize(parent)
            .map_err(|error| AgentError::Io(format!("{}: {error}", parent.display())))?;
        let is_link =
            std::fs::symlink_metadata(&path).is_ok_and(|meta| meta.file_type().is_symlink());
        if !real_parent.starts_with(&self.root) || is_link {
            return Err(invalid(
                field,
                format!("`{relative}` leads outside the work directory through a symlink"),
            ));
        }
        std::fs::write(&path, text)
            .map_err(|error| AgentError::Io(format!("cannot write {}: {error}", path.display())))?;
        Ok(path)
    }

    /// Reads `relative` (at most `max_bytes`, UTF-8) from inside the directory.
    pub fn read(&self, field: &str, relative: &str, max_bytes: u64) -> Result<String, AgentError> {
        let path = self.resolve(field, relative)?;
        let real = std::fs::canonicalize(&path)
            .map_err(|error| invalid(field, format!("cannot read `{relative}`: {error}")))?;
        if !real.starts_with(&self.root) {
            return Err(invalid(
                field,
                format!("`{relative}` leads outside the work directory"),
            ));
        }
        let meta = std::fs::metadata(&real)
            .map_err(|error| invalid(field, format!("cannot read `{relative}`: {error}")))?;
        if !meta.is_file() {
            return Err(invalid(field, format!("`{relative}` is not a file")));
        }
        if meta.len() > max_bytes {
            return Err(invalid(
                field,
                format!(
                    "`{relative}` is {} bytes; the limit is {max_bytes}",
                    meta.len()
                ),
            ));
        }
        let bytes = std::fs::read(&real)
            .map_err(|error| invalid(field, format!("cannot read `{relative}`: {error}")))?;
        String::from_utf8(bytes)
            .map_err(|_| invalid(field, format!("`{relative}` is not UTF-8 text")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_inside_the_work_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let work = WorkDir::open("work_dir", dir.path().to_str().expect("utf-8")).expect("open");
        assert!(work.write("files", "pkg/a.py", "x = 1\n").is_ok());
        assert_eq!(
            work.read("files", "pkg/a.py", 100).as_deref(),
            Ok("x = 1\n")
        );
        for bad in ["../escape.py", "/etc/passwd", "", "a/../../b"] {
            assert!(
                work.write("files", bad, "x").is_err_and(|error| error
                    .to_string()
                    .contains("must be a relative path inside the work directory")),
                "{bad} was accepted"
            );
        }
        let outside = tempfile::tempdir().expect("tempdir");
        std::os::unix::fs::symlink(outside.path(), dir.path().join("link")).expect("symlink");
        assert!(
            work.write("files", "link/x.py", "x")
                .is_err_and(|error| error
                    .to_string()
                    .contains("leads outside the work directory through a symlink")),
            "a write through a link out was accepted"
        );
        assert!(!outside.path().join("x.py").exists());
        assert!(
            work.read("files", "pkg/a.py", 2)
                .is_err_and(|e| e.to_string().contains("limit"))
        );
        std::fs::write(dir.path().join("bin"), [0xff, 0xfe]).expect("write");
        assert!(
            work.read("files", "bin", 100)
                .is_err_and(|e| e.to_string().contains("UTF-8"))
        );
    }
}
