//! Finding the files to scan and reading them within the limits. Symlinks are never
//! followed (a link loop cannot hang the walk, a link out of the repository cannot leak
//! another tree into the report); they are counted as skipped.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Serialize;
use walkdir::WalkDir;

use crate::ScanError;
use crate::config::ScannerConfig;

/// Binary files are recognised by a NUL byte in this many leading bytes, as git does.
const BINARY_SNIFF_BYTES: usize = 8192;

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SkippedFiles {
    pub binary: usize,
    pub too_large: usize,
    /// Not valid UTF-8: skipped entirely rather than scanned lossily, so that no
    /// finding ever points at bytes the user's editor would show differently.
    pub not_utf8: usize,
    pub symlink: usize,
    pub unreadable: usize,
    /// Left unread because `max_total_bytes` was reached.
    pub over_total_budget: usize,
}

#[derive(Debug, Clone)]
pub struct Candidate {
    pub path: PathBuf,
    /// Relative to the repository root, `/`-separated.
    pub relative: String,
}

#[derive(Debug, Default)]
pub struct Walk {
    pub candidates: Vec<Candidate>,
    pub skipped: SkippedFiles,
    /// More than `max_files` files were present; the rest were not looked at.
    pub truncated: bool,
}

pub fn check_repository(root: &Path) -> Result<(), ScanError> {
    let invalid = |reason: String| ScanError::InvalidInput {
        field: "repository".into(),
        reason,
    };
    match std::fs::metadata(root) {
        Err(_) => Err(invalid(format!(
            "`{}` does not exist; give the path of a checked-out repository",
            root.display()
        ))),
        Ok(metadata) if !metadata.is_dir() => Err(invalid(format!(
            "`{}` is not a directory; give the path of a checked-out repository",
            root.display()
        ))),
        Ok(_) => Ok(()),
    }
}

pub fn walk(root: &Path, config: &ScannerConfig) -> Result<Walk, ScanError> {
    check_repository(root)?;
    let mut result = Walk::default();
    let entries = WalkDir::new(root)
        .follow_links(false)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|entry| {
            entry.depth() == 0
                || !(entry.file_type().is_dir()
                    && entry
                        .file_name()
                        .to_str()
                        .is_some_and(|name| config.skip_dirs.iter().any(|skip| skip == name)))
        });
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(_) => {
                result.skipped.unreadable += 1;
                continue;
            }
        };
        let file_type = entry.file_type();
        if file_type.is_symlink() {
            result.skipped.symlink += 1;
            continue;
        }
        if !file_type.is_file() {
            continue;
        }
        if result.candidates.len() >= config.max_files {
            result.truncated = true;
            break;
        }
        let relative = entry
            .path()
            .strip_prefix(root)
            .unwrap_or(entry.path())
            .components()
            .map(|part| part.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        result.candidates.push(Candidate {
            path: entry.into_path(),
            relative,
        });
    }
    Ok(result)
}

pub enum FileText {
    Text(String),
    Skipped(SkipReason),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    Binary,
    TooLarge,
    NotUtf8,
    Unreadable,
}

impl SkippedFiles {
    pub fn count(&mut self, reason: SkipReason) {
        match reason {
            SkipReason::Binary => self.binary += 1,
            SkipReason::TooLarge => self.too_large += 1,
            SkipReason::NotUtf8 => self.not_utf8 += 1,
            SkipReason::Unreadable => self.unreadable += 1,
        }
    }

    pub fn add(&mut self, other: &SkippedFiles) {
        self.binary += other.binary;
        self.too_large += other.too_large;
        self.not_utf8 += other.not_utf8;
        self.symlink += other.symlink;
        self.unreadable += other.unreadable;
        self.over_total_budget += other.over_total_budget;
    }

    pub fn total(&self) -> usize {
        self.binary
            + self.too_large
            + self.not_utf8
            + self.symlink
            + self.unreadable
            + self.over_total_budget
    }
}

/// Reads a file as text, never more than `max_file_bytes` (+1 to detect "larger").
pub fn read_text(path: &Path, max_file_bytes: u64) -> FileText {
    let Ok(file) = std::fs::File::open(path) else {
        return FileText::Skipped(SkipReason::Unreadable);
    };
    let mut bytes = Vec::new();
    if file
        .take(max_file_bytes + 1)
        .read_to_end(&mut bytes)
        .is_err()
    {
        return FileText::Skipped(SkipReason::Unreadable);
    }
    if bytes.len() as u64 > max_file_bytes {
        return FileText::Skipped(SkipReason::TooLarge);
    }
    if bytes.iter().take(BINARY_SNIFF_BYTES).any(|byte| *byte == 0) {
        return FileText::Skipped(SkipReason::Binary);
    }
    match String::from_utf8(bytes) {
        Ok(text) => FileText::Text(text),
        Err(_) => FileText::Skipped(SkipReason::NotUtf8),
    }
}
