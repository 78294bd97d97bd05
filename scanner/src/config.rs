//! The scanner's limits and defaults.

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct ScannerConfig {
    /// Files looked at before the scan stops and reports `truncated`.
    pub max_files: usize,
    /// Larger files are skipped (counted as `too_large`).
    pub max_file_bytes: u64,
    /// Bytes read over the whole scan; files past it are skipped and the scan reports
    /// `truncated`.
    pub max_total_bytes: u64,
    /// Findings kept (worst first); the rest are counted but not listed.
    pub max_findings: usize,
    /// Directory names never entered.
    pub skip_dirs: Vec<String>,
    /// Threads that scan files; 0 means one per available CPU.
    pub threads: usize,
    /// Bounds on an advisory zip or directory (a zip bomb is refused).
    pub max_advisory_files: usize,
    pub max_advisory_file_bytes: u64,
    pub max_advisory_total_bytes: u64,
    /// The OSV endpoint: per request, and the most bytes read from one answer.
    pub osv_timeout: Duration,
    pub max_osv_response_bytes: usize,
    /// Dependencies per `querybatch` request, and advisories fetched in all.
    pub osv_batch_size: usize,
    pub max_osv_advisories: usize,
}

impl Default for ScannerConfig {
    fn default() -> Self {
        Self {
            max_files: 200_000,
            max_file_bytes: 1024 * 1024,
            max_total_bytes: 2 * 1024 * 1024 * 1024,
            max_findings: 10_000,
            skip_dirs: [
                ".git",
                "target",
                "node_modules",
                ".venv",
                "venv",
                "__pycache__",
                ".hg",
                ".svn",
            ]
            .into_iter()
            .map(String::from)
            .collect(),
            threads: 0,
            max_advisory_files: 100_000,
            max_advisory_file_bytes: 16 * 1024 * 1024,
            max_advisory_total_bytes: 1024 * 1024 * 1024,
            osv_timeout: Duration::from_secs(30),
            max_osv_response_bytes: 32 * 1024 * 1024,
            osv_batch_size: 500,
            max_osv_advisories: 2_000,
        }
    }
}
