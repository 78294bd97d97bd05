//! Secret keys kept in files outside the database: read, or made on first use (32
//! random bytes, readable by the owner only). Used for the token signing key and the
//! audit checkpoint key.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::StoreError;

/// Where files that must live outside the database go: `configured` when set, else
/// beside an embedded store (`<data dir>-<suffix>`); `None` for a `mem://` or `ws://`
/// store with nothing configured.
pub fn dir_beside_store(configured: &str, store_url: &str, suffix: &str) -> Option<PathBuf> {
    if !configured.is_empty() {
        return Some(configured.into());
    }
    let data = store_url.strip_prefix("surrealkv://")?;
    Some(format!("{}-{suffix}", data.trim_end_matches('/')).into())
}

fn failure(action: &'static str, path: &Path, source: std::io::Error) -> StoreError {
    StoreError::KeyFile {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// The key in `path`, created when the file does not exist. A key shorter than 32
/// bytes is refused (restore it from a backup: a new key cannot check what the old one
/// signed).
pub fn load_or_create(path: &Path) -> Result<Vec<u8>, StoreError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|error| failure("cannot create", dir, error))?;
    }
    match std::fs::read(path) {
        Ok(key) if key.len() >= 32 => Ok(key),
        Ok(_) => Err(StoreError::KeyTooShort {
            path: path.to_path_buf(),
        }),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => create_key(path),
        Err(error) => Err(failure("cannot read", path, error)),
    }
}

/// A new key at `path`, written aside and linked into place: processes starting at the
/// same moment on one directory (the nodes of a cluster sharing `auth.dir`) see no key
/// or a whole one, never half, and all end up with the one that was linked first.
fn create_key(path: &Path) -> Result<Vec<u8>, StoreError> {
    let key = crate::digest::random_bytes::<32>().to_vec();
    let suffix: String = crate::digest::random_bytes::<8>()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    let aside = path.with_extension(format!("new-{suffix}"));
    write_private(&aside, &key)?;
    let linked = std::fs::hard_link(&aside, path);
    let _removed = std::fs::remove_file(&aside);
    match linked {
        Ok(()) => Ok(key),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
            match std::fs::read(path) {
                Ok(key) if key.len() >= 32 => Ok(key),
                Ok(_) => Err(StoreError::KeyTooShort {
                    path: path.to_path_buf(),
                }),
                Err(error) => Err(failure("cannot read", path, error)),
            }
        }
        Err(error) => Err(failure("cannot create", path, error)),
    }
}

/// Creates `path` (and its directory) readable by its owner only; an existing file is
/// never overwritten.
pub fn write_new_private(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|error| failure("cannot create", dir, error))?;
    }
    write_private(path, bytes)
}

/// Appends to a private file written by `write_new_private`, synced before returning.
pub fn append_private(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .map_err(|error| failure("cannot open", path, error))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|error| failure("cannot write", path, error))
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .create_new(true)
        .write(true)
        .mode(0o600)
        .open(path)
        .map_err(|error| failure("cannot create", path, error))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|error| failure("cannot write", path, error))
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    std::fs::write(path, bytes).map_err(|error| failure("cannot write", path, error))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Nodes of a cluster starting together on one key directory all get one key.
    #[test]
    fn processes_creating_the_key_at_once_all_end_up_with_the_same_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jwt.key");
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(8));
        let racers: Vec<_> = (0..8)
            .map(|_| {
                let (path, barrier) = (path.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    load_or_create(&path).unwrap()
                })
            })
            .collect();
        let keys: Vec<Vec<u8>> = racers.into_iter().map(|r| r.join().unwrap()).collect();
        assert!(keys.iter().all(|key| *key == keys[0]), "one key for all");
        assert_eq!(std::fs::read(&path).unwrap(), keys[0]);
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 1, "nothing left aside: {left:?}");
    }

    #[test]
    fn a_key_is_made_once_private_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("k.key");
        let first = load_or_create(&path).unwrap();
        assert_eq!(first.len(), 32);
        assert_eq!(load_or_create(&path).unwrap(), first);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        std::fs::write(&path, b"short").unwrap();
        assert!(load_or_create(&path).is_err_and(|e| e.to_string().contains("shorter")));
    }
}
