//! Signed checkpoints of the chain head, kept outside the database: one JSON line per
//! checkpoint in a file, and the same line in the process log. The signature is
//! HMAC-SHA256 under a key in a file beside the checkpoints (created with mode 0600 on
//! first start), so whoever can rewrite the database cannot also forge a checkpoint
//! without that file. Put the directory on another volume or machine for more.

use std::io::Write;
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::SecurityError;
use crate::audit::chain::Head;

const KEY_FILE: &str = "checkpoint.key";
const CHECKPOINT_FILE: &str = "checkpoints.jsonl";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Checkpoint {
    pub seq: u64,
    pub hash: String,
    pub at_ms: i64,
    /// HMAC-SHA256 of `seq:hash:at_ms`, hex.
    pub mac: String,
}

pub struct Checkpoints {
    dir: PathBuf,
    key: Vec<u8>,
}

fn io(action: &'static str, path: &Path, source: std::io::Error) -> SecurityError {
    SecurityError::File {
        action,
        path: path.to_path_buf(),
        source,
    }
}

impl Checkpoints {
    /// The checkpoints in `dir`, creating it and its key when missing.
    pub fn open(dir: &Path) -> Result<Self, SecurityError> {
        std::fs::create_dir_all(dir).map_err(|error| io("create", dir, error))?;
        let key = troupe_store::key_file::load_or_create(&dir.join(KEY_FILE))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            key,
        })
    }

    fn mac(&self, seq: u64, hash: &str, at_ms: i64) -> String {
        // HMAC takes a key of any length: `new_from_slice` cannot fail for it.
        let mut mac = <Hmac<Sha256>>::new_from_slice(&self.key).expect("HMAC accepts any key");
        mac.update(format!("{seq}:{hash}:{at_ms}").as_bytes());
        troupe_store::digest::hex(&mac.finalize().into_bytes())
    }

    /// Appends a signed checkpoint of `head` to the file and the log.
    pub fn write(&self, head: &Head, at_ms: i64) -> Result<Checkpoint, SecurityError> {
        let checkpoint = Checkpoint {
            seq: head.seq,
            hash: head.hash.clone(),
            at_ms,
            mac: self.mac(head.seq, &head.hash, at_ms),
        };
        let line =
            serde_json::to_string(&checkpoint).map_err(|source| SecurityError::Encoding {
                what: "a checkpoint",
                source,
            })?;
        let path = self.dir.join(CHECKPOINT_FILE);
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|error| io("open", &path, error))?;
        writeln!(file, "{line}").map_err(|error| io("write", &path, error))?;
        file.sync_data().map_err(|error| io("sync", &path, error))?;
        tracing::info!(target: "troupe::audit", checkpoint = %line, "audit checkpoint");
        Ok(checkpoint)
    }

    /// Every checkpoint, in file order, each with its signature checked; a line whose
    /// signature does not hold is an error (the file was tampered with), not something
    /// to skip. No file: none.
    pub fn all(&self) -> Result<Vec<Checkpoint>, SecurityError> {
        let path = self.dir.join(CHECKPOINT_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(error) => return Err(io("read", &path, error)),
        };
        let mut all = Vec::new();
        for (number, line) in text
            .lines()
            .enumerate()
            .filter(|(_, line)| !line.trim().is_empty())
        {
            let checkpoint: Checkpoint = serde_json::from_str(line).map_err(|source| {
                SecurityError::CheckpointUnreadable {
                    path: path.clone(),
                    line: number + 1,
                    source,
                }
            })?;
            if checkpoint.mac != self.mac(checkpoint.seq, &checkpoint.hash, checkpoint.at_ms) {
                return Err(SecurityError::CheckpointAltered {
                    path: path.clone(),
                    line: number + 1,
                });
            }
            all.push(checkpoint);
        }
        Ok(all)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoints_are_signed_and_a_forged_line_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let checkpoints = Checkpoints::open(dir.path()).unwrap();
        assert_eq!(checkpoints.all().unwrap(), []);
        let head = Head {
            seq: 7,
            hash: "ab".repeat(32),
        };
        checkpoints.write(&head, 1000).unwrap();
        checkpoints
            .write(
                &Head {
                    seq: 9,
                    hash: "cd".repeat(32),
                },
                2000,
            )
            .unwrap();
        let seqs = |all: Vec<Checkpoint>| all.iter().map(|c| c.seq).collect::<Vec<_>>();
        assert_eq!(seqs(checkpoints.all().unwrap()), [7, 9]);
        // Reopening uses the same key.
        let reopened = Checkpoints::open(dir.path()).unwrap();
        assert_eq!(seqs(reopened.all().unwrap()), [7, 9]);
        let path = dir.path().join(CHECKPOINT_FILE);
        let forged = std::fs::read_to_string(&path)
            .unwrap()
            .replace("\"seq\":9", "\"seq\":3");
        std::fs::write(&path, forged).unwrap();
        let error = reopened.all().unwrap_err().to_string();
        assert!(
            error.contains("line 2") && error.contains("signature"),
            "{error}"
        );
    }
}
