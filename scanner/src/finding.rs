//! What the scanner reports: one finding per problem, at a file, line and column.

use serde::Serialize;

/// Ordered from most to least severe, so sorting findings puts the worst first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Critical,
    High,
    Medium,
    Low,
    Info,
}

impl Severity {
    pub const ALL: [Severity; 5] = [
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
        Severity::Info,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::High => "high",
            Severity::Medium => "medium",
            Severity::Low => "low",
            Severity::Info => "info",
        }
    }

    /// The CVSS-style number SARIF viewers (GitHub code scanning) sort by.
    pub fn security_severity(self) -> f64 {
        match self {
            Severity::Critical => 9.5,
            Severity::High => 8.0,
            Severity::Medium => 5.5,
            Severity::Low => 3.0,
            Severity::Info => 0.0,
        }
    }

    /// OSV and CVSS bands: critical ≥ 9, high ≥ 7, medium ≥ 4, low > 0.
    pub fn from_cvss_score(score: f64) -> Severity {
        if score >= 9.0 {
            Severity::Critical
        } else if score >= 7.0 {
            Severity::High
        } else if score >= 4.0 {
            Severity::Medium
        } else if score > 0.0 {
            Severity::Low
        } else {
            Severity::Info
        }
    }

    /// Reads the words advisories use (`CRITICAL`, `High`, `moderate`, ...).
    pub fn from_label(label: &str) -> Option<Severity> {
        match label.trim().to_ascii_lowercase().as_str() {
            "critical" => Some(Severity::Critical),
            "high" | "important" => Some(Severity::High),
            "medium" | "moderate" => Some(Severity::Medium),
            "low" => Some(Severity::Low),
            "info" | "informational" | "none" => Some(Severity::Info),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    Secret,
    Injection,
    PathTraversal,
    Deserialization,
    CodeExecution,
    WeakCrypto,
    InsecureRandomness,
    Tls,
    Configuration,
    Dependency,
}

impl Category {
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Secret => "secret",
            Category::Injection => "injection",
            Category::PathTraversal => "path_traversal",
            Category::Deserialization => "deserialization",
            Category::CodeExecution => "code_execution",
            Category::WeakCrypto => "weak_crypto",
            Category::InsecureRandomness => "insecure_randomness",
            Category::Tls => "tls",
            Category::Configuration => "configuration",
            Category::Dependency => "dependency",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// Relative to the scanned repository, with `/` separators.
    pub file: String,
    /// 1-based.
    pub line: usize,
    /// 1-based, in characters of the line.
    pub column: usize,
    pub rule: String,
    pub severity: Severity,
    pub message: String,
    pub fix: String,
    pub category: Category,
}
