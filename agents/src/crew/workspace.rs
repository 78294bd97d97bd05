//! The directory a model-backed agent writes into, and the files it reads from it.
//! Paths come from the task or from the model, so every one is checked: the directory
//! under the node's workspace roots, each file relative, without `..` or a `.git`
//! component, bounded in size, never in the node's own data. Files are reached one
//! directory at a time from an open descriptor of the work directory, never following a
//! symlink (`O_NOFOLLOW` at every step): there is no moment between a check and the
//! write in which a swapped-in symlink could send the write elsewhere.

use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use crate::errors::{AgentError, invalid};
use crate::workspace::Workspace;

pub struct WorkDir {
    root: PathBuf,
    /// The work directory, opened once.
    dir: File,
    workspace: Workspace,
}

impl WorkDir {
    /// The directory `path` (input `field`), created when missing; it must lie under the
    /// workspace roots.
    pub fn open(workspace: &Workspace, field: &str, path: &str) -> Result<Self, AgentError> {
        if path.trim().is_empty() {
            return Err(invalid(field, "is empty; give the directory to work in"));
        }
        let root = workspace.place(field, Path::new(path))?;
        std::fs::create_dir_all(&root)
            .map_err(|error| invalid(field, format!("cannot create `{path}`: {error}")))?;
        let dir = open_dir(&root)
            .map_err(|error| invalid(field, format!("cannot open `{path}`: {error}")))?;
        Ok(Self {
            root,
            dir,
            workspace: workspace.clone(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `relative` inside the directory, refusing absolute paths, `..`, `.git` and the
    /// node's own data.
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
        if path
            .components()
            .any(|component| component.as_os_str().eq_ignore_ascii_case(".git"))
        {
            return Err(invalid(
                field,
                format!(
                    "`{relative}` is in a `.git` directory, where a file can make git run \
                     code (hooks, configuration); agents do not write or read there"
                ),
            ));
        }
        let full = self.root.join(path);
        if self.workspace.is_hidden(&full) {
            return Err(invalid(
                field,
                format!("`{relative}` is inside the node's own data (its store or keys)"),
            ));
        }
        Ok(full)
    }

    /// Writes `text` to `relative`, creating parents; refuses a path through a symlink.
    pub fn write(&self, field: &str, relative: &str, text: &str) -> Result<PathBuf, AgentError> {
        let path = self.resolve(field, relative)?;
        let (name, parents) = self.steps(relative)?;
        let mut dir = self.dir.try_clone().map_err(io_error(&path))?;
        for part in parents {
            match mkdir_at(&dir, part) {
                Ok(()) => {}
                Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(error) => return Err(io_error(&path)(error)),
            }
            dir = open_at(&dir, part, libc::O_RDONLY | libc::O_DIRECTORY, 0)
                .map_err(|error| through_symlink(field, relative, &path, error))?;
        }
        let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC;
        let mut file = open_at(&dir, name, flags, 0o644)
            .map_err(|error| through_symlink(field, relative, &path, error))?;
        file.write_all(text.as_bytes())
            .map_err(|error| AgentError::Io(format!("cannot write {}: {error}", path.display())))?;
        Ok(path)
    }

    /// Reads `relative` (at most `max_bytes`, UTF-8) from inside the directory.
    pub fn read(&self, field: &str, relative: &str, max_bytes: u64) -> Result<String, AgentError> {
        let path = self.resolve(field, relative)?;
        let (name, parents) = self.steps(relative)?;
        let cannot = |error: std::io::Error| {
            if met_a_symlink(&path, &error) {
                symlink_refused(field, relative)
            } else {
                invalid(field, format!("cannot read `{relative}`: {error}"))
            }
        };
        let mut dir = self.dir.try_clone().map_err(io_error(&path))?;
        for part in parents {
            dir = open_at(&dir, part, libc::O_RDONLY | libc::O_DIRECTORY, 0).map_err(cannot)?;
        }
        let file = open_at(&dir, name, libc::O_RDONLY, 0).map_err(cannot)?;
        let meta = file.metadata().map_err(cannot)?;
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
        let mut bytes = Vec::new();
        file.take(max_bytes)
            .read_to_end(&mut bytes)
            .map_err(cannot)?;
        String::from_utf8(bytes)
            .map_err(|_| invalid(field, format!("`{relative}` is not UTF-8 text")))
    }

    /// The file's name and the directories on the way to it (`.` left out); `relative`
    /// has passed `resolve`.
    fn steps<'a>(&self, relative: &'a str) -> Result<(&'a OsStr, Vec<&'a OsStr>), AgentError> {
        let mut parts: Vec<&OsStr> = Path::new(relative)
            .components()
            .filter_map(|component| match component {
                Component::Normal(part) => Some(part),
                _ => None,
            })
            .collect();
        let name = parts
            .pop()
            .ok_or_else(|| invalid("path", format!("`{relative}` names no file")))?;
        Ok((name, parts))
    }
}

/// A symlink met on the way refuses the path (`O_NOFOLLOW` gives `ELOOP` for the file,
/// `ENOTDIR` for a directory on the way); other errors are the file system's.
fn through_symlink(field: &str, relative: &str, path: &Path, error: std::io::Error) -> AgentError {
    if met_a_symlink(path, &error) {
        symlink_refused(field, relative)
    } else {
        io_error(path)(error)
    }
}

fn met_a_symlink(path: &Path, error: &std::io::Error) -> bool {
    error.raw_os_error() == Some(libc::ELOOP)
        || path
            .ancestors()
            .any(|step| std::fs::symlink_metadata(step).is_ok_and(|meta| meta.is_symlink()))
}

fn symlink_refused(field: &str, relative: &str) -> AgentError {
    invalid(
        field,
        format!(
            "`{relative}` goes through a symlink; agents reach files through plain \
             directories only"
        ),
    )
}

fn io_error(path: &Path) -> impl Fn(std::io::Error) -> AgentError + '_ {
    move |error| AgentError::Io(format!("{}: {error}", path.display()))
}

fn open_dir(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
        .open(path)
}

fn c_name(name: &OsStr) -> std::io::Result<CString> {
    CString::new(name.as_bytes())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "a NUL in a path"))
}

/// `name` in `dir`, never following a symlink.
fn open_at(
    dir: &File,
    name: &OsStr,
    flags: libc::c_int,
    mode: libc::c_uint,
) -> std::io::Result<File> {
    let name = c_name(name)?;
    let flags = flags | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    // SAFETY: `dir` is an open descriptor and `name` a NUL-terminated string, both alive
    // for the call.
    let fd = unsafe { libc::openat(dir.as_raw_fd(), name.as_ptr(), flags, mode) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` was just opened and is owned by nothing else.
    Ok(unsafe { File::from_raw_fd(fd) })
}

fn mkdir_at(dir: &File, name: &OsStr) -> std::io::Result<()> {
    let name = c_name(name)?;
    // SAFETY: as in `open_at`.
    if unsafe { libc::mkdirat(dir.as_raw_fd(), name.as_ptr(), 0o755) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A work directory in `dir`, with no workspace roots to keep it in.
    fn anywhere(dir: &Path) -> WorkDir {
        WorkDir::open(
            &Workspace::anywhere(),
            "work_dir",
            dir.to_str().expect("utf-8"),
        )
        .expect("open")
    }

    #[test]
    fn paths_stay_inside_the_work_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let work = anywhere(dir.path());
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
                .is_err_and(|error| error.to_string().contains("goes through a symlink")),
            "a write through a link out was accepted"
        );
        assert!(!outside.path().join("x.py").exists());
        // A symlink as the file itself: neither written through nor read.
        std::fs::write(outside.path().join("target"), "outside").expect("write");
        std::os::unix::fs::symlink(outside.path().join("target"), dir.path().join("file"))
            .expect("symlink");
        for outcome in [
            work.write("files", "file", "overwritten")
                .map(|_| String::new()),
            work.read("files", "file", 100),
        ] {
            assert!(
                outcome.is_err_and(|error| error.to_string().contains("goes through a symlink")),
                "a symlinked file was followed"
            );
        }
        assert_eq!(
            std::fs::read_to_string(outside.path().join("target")).expect("read"),
            "outside"
        );
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

    /// The attack: a model's answer names `.git/hooks/pre-commit` (or `.git/config`), which
    /// the next git command in the directory would run.
    #[test]
    fn nothing_is_written_or_read_in_git_s_own_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let work = anywhere(dir.path());
        for bad in [".git/hooks/pre-commit", "sub/.GIT/config", "./.git"] {
            let error = work.write("module", bad, "#!/bin/sh\nid\n").unwrap_err();
            assert_eq!(
                error.to_string(),
                format!(
                    "input `module`: `{bad}` is in a `.git` directory, where a file can make \
                     git run code (hooks, configuration); agents do not write or read there"
                )
            );
            assert!(work.read("files", bad, 100).is_err());
        }
        assert!(!dir.path().join(".git").exists());
    }

    #[test]
    fn the_work_directory_and_its_files_keep_out_of_the_node_s_data() {
        let root = tempfile::tempdir().expect("tempdir");
        let keys = root.path().join(".troupe/data-auth");
        std::fs::create_dir_all(&keys).expect("mkdir");
        let workspace = Workspace::new(&[root.path().to_path_buf()], std::slice::from_ref(&keys));
        let node_dir = root.path().to_str().expect("utf-8");
        let work = WorkDir::open(&workspace, "work_dir", node_dir).expect("open");
        let error = work
            .write("module", ".troupe/data-auth/jwt.key", "forged")
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "input `module`: `.troupe/data-auth/jwt.key` is inside the node's own data (its \
             store or keys)"
        );
        assert!(!keys.join("jwt.key").exists());
        assert!(WorkDir::open(&workspace, "work_dir", keys.to_str().expect("utf-8")).is_err());
        assert!(WorkDir::open(&workspace, "work_dir", "/etc").is_err());
    }
}
