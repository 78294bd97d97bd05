//! The synchronous scan: walk, read, analyse each file on a few threads, match the
//! dependencies, and gather one report.

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use serde_json::{Map, Value, json};

use crate::ScanError;
use crate::config::ScannerConfig;
use crate::deps::{self, Dependency};
use crate::finding::{Category, Finding, Severity};
use crate::osv::{AdvisoryDb, Vulnerability};
use crate::rules::{self, Lang, config_files, table::rule_by_id};
use crate::walk::{self, Candidate, FileText, SkippedFiles};
use crate::{allow, score, secrets};

#[derive(Debug, Clone, Default)]
pub struct ScanReport {
    /// Worst first, at most `max_findings`.
    pub findings: Vec<Finding>,
    /// All findings by severity (`Severity::ALL` order), listed or not.
    pub counts: [usize; 5],
    pub files_scanned: usize,
    pub bytes_scanned: u64,
    pub skipped: SkippedFiles,
    pub dependencies: Vec<Dependency>,
    pub vulnerable_dependencies: Vec<Vulnerability>,
    pub warnings: Vec<String>,
    /// Files, bytes or findings were cut at a limit.
    pub truncated: bool,
    /// Findings an allow-list comment removed.
    pub suppressed: usize,
    code_findings: Vec<Finding>,
    code_counts: [usize; 5],
    max_findings: usize,
}

/// Scans `repository` with no way to cancel; see [`scan_repository_cancellable`].
pub fn scan_repository(
    repository: &Path,
    config: &ScannerConfig,
    advisories: &AdvisoryDb,
) -> Result<ScanReport, ScanError> {
    scan_repository_cancellable(repository, config, advisories, &|| false)
}

/// Scans `repository`; `cancelled` is asked between files.
pub fn scan_repository_cancellable(
    repository: &Path,
    config: &ScannerConfig,
    advisories: &AdvisoryDb,
    cancelled: &(dyn Fn() -> bool + Sync),
) -> Result<ScanReport, ScanError> {
    let walked = walk::walk(repository, config)?;
    let threads = match config.threads {
        0 => std::thread::available_parallelism().map_or(1, usize::from),
        threads => threads,
    }
    .clamp(1, walked.candidates.len().max(1));
    let shared = Shared {
        next: AtomicUsize::new(0),
        bytes: AtomicU64::new(0),
        over_budget: AtomicBool::new(false),
        stopped: AtomicBool::new(false),
    };
    let parts = Mutex::new(Vec::with_capacity(threads));
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                let part = worker(&walked.candidates, config, &shared, cancelled);
                // A worker that panicked poisons the lock; the others' parts still count.
                match parts.lock() {
                    Ok(mut parts) => parts.push(part),
                    Err(poisoned) => poisoned.into_inner().push(part),
                }
            });
        }
    });
    if shared.stopped.load(Ordering::Relaxed) {
        return Err(ScanError::Cancelled);
    }
    let parts = parts
        .into_inner()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut report = ScanReport {
        skipped: walked.skipped,
        truncated: walked.truncated || shared.over_budget.load(Ordering::Relaxed),
        max_findings: config.max_findings,
        ..ScanReport::default()
    };
    for part in parts {
        report.files_scanned += part.files;
        report.bytes_scanned += part.bytes;
        report.skipped.add(&part.skipped);
        report.dependencies.extend(part.dependencies);
        report.warnings.extend(part.warnings);
        report.suppressed += part.suppressed;
        for (total, count) in report.code_counts.iter_mut().zip(part.counts) {
            *total += count;
        }
        report.code_findings.extend(part.findings);
    }
    sort_worst_first(&mut report.code_findings);
    report.code_findings.truncate(config.max_findings);
    report.dependencies.sort();
    report.warnings.sort();
    report.apply_advisories(advisories);
    Ok(report)
}

struct Shared {
    next: AtomicUsize,
    bytes: AtomicU64,
    over_budget: AtomicBool,
    stopped: AtomicBool,
}

#[derive(Default)]
struct Part {
    files: usize,
    bytes: u64,
    skipped: SkippedFiles,
    findings: Vec<Finding>,
    counts: [usize; 5],
    dependencies: Vec<Dependency>,
    warnings: Vec<String>,
    suppressed: usize,
}

fn worker(
    candidates: &[Candidate],
    config: &ScannerConfig,
    shared: &Shared,
    cancelled: &(dyn Fn() -> bool + Sync),
) -> Part {
    let mut part = Part::default();
    loop {
        if shared.stopped.load(Ordering::Relaxed) {
            break;
        }
        if cancelled() {
            shared.stopped.store(true, Ordering::Relaxed);
            break;
        }
        let index = shared.next.fetch_add(1, Ordering::Relaxed);
        let Some(candidate) = candidates.get(index) else {
            break;
        };
        let text = match walk::read_text(&candidate.path, config.max_file_bytes) {
            FileText::Text(text) => text,
            FileText::Skipped(reason) => {
                part.skipped.count(reason);
                continue;
            }
        };
        let length = text.len() as u64;
        if shared.bytes.fetch_add(length, Ordering::Relaxed) + length > config.max_total_bytes {
            shared.over_budget.store(true, Ordering::Relaxed);
            part.skipped.over_total_budget += 1;
            continue;
        }
        part.files += 1;
        part.bytes += length;
        // A bug in one rule must cost one file's findings, not the whole scan.
        let scanned = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut file_part = Part::default();
            scan_text(&candidate.relative, &text, &mut file_part);
            file_part
        }));
        match scanned {
            Ok(file_part) => part.absorb(file_part),
            Err(_) => part.warnings.push(format!(
                "{}: analysis failed; its findings are missing",
                candidate.relative
            )),
        }
        // Keep memory bounded on a repository with findings on every line.
        if part.findings.len() > config.max_findings.saturating_mul(2).max(64) {
            sort_worst_first(&mut part.findings);
            part.findings.truncate(config.max_findings);
        }
    }
    part
}

impl Part {
    /// Adds one file's results (only findings, counts, dependencies, warnings and
    /// suppressions; file and byte counts are kept by the caller).
    fn absorb(&mut self, other: Part) {
        self.findings.extend(other.findings);
        for (total, count) in self.counts.iter_mut().zip(other.counts) {
            *total += count;
        }
        self.dependencies.extend(other.dependencies);
        self.warnings.extend(other.warnings);
        self.suppressed += other.suppressed;
    }
}

fn scan_text(file: &str, text: &str, part: &mut Part) {
    if deps::is_lockfile(file) {
        match deps::parse(file, text) {
            Ok(found) => part.dependencies.extend(found),
            Err(warning) => part.warnings.push(warning),
        }
        return;
    }
    let mut findings = Vec::new();
    secrets::scan(file, text, &mut findings);
    if let Some(lang) = Lang::of(file, text.get(..text.len().min(128)).unwrap_or("")) {
        findings.extend(rules::scan_source(lang, file, text));
    }
    if config_files::is_config_file(file) {
        config_files::scan(file, text, &mut findings);
    }
    part.suppressed += allow::apply(text, &mut findings);
    // One finding per rule and line: `DES.new(k, DES.MODE_ECB)` is one weak cipher.
    findings.sort_by(|a, b| (a.line, &a.rule, a.column).cmp(&(b.line, &b.rule, b.column)));
    findings.dedup_by(|a, b| a.line == b.line && a.rule == b.rule);
    for finding in &findings {
        part.counts[finding.severity as usize] += 1;
    }
    part.findings.extend(findings);
}

fn sort_worst_first(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        (a.severity, &a.file, a.line, &a.rule).cmp(&(b.severity, &b.file, b.line, &b.rule))
    });
}

impl ScanReport {
    /// (Re)computes the vulnerable dependencies and the final finding list from
    /// `advisories`; called again when an OSV endpoint adds advisories.
    pub fn apply_advisories(&mut self, advisories: &AdvisoryDb) {
        self.vulnerable_dependencies = self
            .dependencies
            .iter()
            .flat_map(|dependency| advisories.vulnerabilities(dependency))
            .collect();
        let dependency_findings: Vec<Finding> = self
            .vulnerable_dependencies
            .iter()
            .map(dependency_finding)
            .collect();
        self.counts = self.code_counts;
        for finding in &dependency_findings {
            self.counts[finding.severity as usize] += 1;
        }
        let mut findings = self.code_findings.clone();
        findings.extend(dependency_findings);
        sort_worst_first(&mut findings);
        let total: usize = self.counts.iter().sum();
        if total > self.max_findings {
            self.truncated = true;
        }
        findings.truncate(self.max_findings);
        self.findings = findings;
    }

    pub fn security_score(&self) -> f64 {
        score::security_score(&self.counts)
    }

    pub fn count(&self, severity: Severity) -> usize {
        self.counts[severity as usize]
    }

    /// The agent's outputs.
    /// The files the listed findings are in, each once, in the findings' order (worst
    /// first): what a reviewer should open.
    pub fn files_with_findings(&self) -> Vec<&str> {
        let mut files: Vec<&str> = Vec::new();
        for finding in &self.findings {
            if !files.contains(&finding.file.as_str()) {
                files.push(&finding.file);
            }
        }
        files
    }

    pub fn to_outputs(&self) -> Map<String, Value> {
        let mut outputs = Map::new();
        let counts: Map<String, Value> = Severity::ALL
            .iter()
            .map(|severity| (severity.as_str().to_string(), json!(self.count(*severity))))
            .collect();
        for severity in Severity::ALL {
            outputs.insert(
                format!("{}_count", severity.as_str()),
                json!(self.count(severity)),
            );
        }
        let mut by_ecosystem = Map::new();
        for dependency in &self.dependencies {
            let count = by_ecosystem.entry(dependency.ecosystem).or_insert(json!(0));
            *count = json!(count.as_u64().unwrap_or(0) + 1);
        }
        outputs.insert("findings".into(), json!(self.findings));
        outputs.insert(
            "files_with_findings".into(),
            json!(self.files_with_findings()),
        );
        outputs.insert("security_score".into(), json!(self.security_score()));
        outputs.insert("counts".into(), Value::Object(counts));
        outputs.insert("files_scanned".into(), json!(self.files_scanned));
        outputs.insert("bytes_scanned".into(), json!(self.bytes_scanned));
        outputs.insert("files_skipped".into(), json!(self.skipped));
        outputs.insert("dependencies".into(), Value::Object(by_ecosystem));
        outputs.insert(
            "vulnerable_dependencies".into(),
            json!(self.vulnerable_dependencies),
        );
        outputs.insert("warnings".into(), json!(self.warnings));
        outputs.insert("suppressed".into(), json!(self.suppressed));
        outputs.insert("truncated".into(), json!(self.truncated));
        outputs
    }
}

fn dependency_finding(vulnerability: &Vulnerability) -> Finding {
    let fallback = "Upgrade to a fixed version";
    let rule = rule_by_id("dep.vulnerable-dependency");
    let fix = if vulnerability.fixed.is_empty() {
        "No fixed version is published; consider replacing the dependency".to_string()
    } else {
        format!(
            "Upgrade {} to {}",
            vulnerability.name,
            vulnerability.fixed.join(" or ")
        )
    };
    let summary = if vulnerability.summary.is_empty() {
        rule.map_or(fallback, |rule| rule.message)
    } else {
        &vulnerability.summary
    };
    Finding {
        file: vulnerability.file.clone(),
        line: vulnerability.line.max(1),
        column: 1,
        rule: "dep.vulnerable-dependency".into(),
        severity: vulnerability.severity,
        message: format!(
            "{} {}@{} ({}): {summary}",
            vulnerability.ecosystem, vulnerability.name, vulnerability.version, vulnerability.id
        ),
        fix,
        category: Category::Dependency,
    }
}
