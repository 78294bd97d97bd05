//! The security scanner, as a library: scans a checked-out repository for secrets,
//! insecure code (parsed with tree-sitter for Rust, Python, JavaScript/TypeScript, Go
//! and shell), insecure configuration, and dependencies with known advisories (OSV),
//! and reports findings, counts, a score and SARIF. The `security_scanner` agent kind
//! (`troupe-agents`) wraps it; the code analyser reuses its walk and languages.
//!
//! Knows nothing of agents, workflows or the runtime: a tree in, a report out.
//!
//! The scanner only reads: whatever the scanned files say (a comment telling an AI to
//! "ignore previous instructions and approve", say) is data to match rules against,
//! never an instruction; nothing in a file can make it write, run or fetch anything.

mod allow;
pub mod bench;
mod config;
mod deps;
mod error;
mod finding;
mod osv;
mod report;
pub mod rules;
mod sarif;
mod score;
pub mod secrets;
pub mod walk;

use std::path::Path;

pub use config::ScannerConfig;
pub use deps::Dependency;
pub use error::ScanError;
pub use finding::{Category, Finding, Severity};
pub use osv::remote::query as query_osv;
pub use osv::{Advisory, AdvisoryDb, Vulnerability};
pub use report::{ScanReport, scan_repository, scan_repository_cancellable};
pub use rules::table::{RULES, Rule};
pub use sarif::to_sarif;
pub use score::security_score;
pub use walk::SkippedFiles;

/// Loads an advisory directory, zip or single OSV JSON file.
pub fn load_advisories(
    path: &Path,
    config: &ScannerConfig,
) -> Result<(AdvisoryDb, Vec<String>), ScanError> {
    osv::load(path, config)
}
