//! SARIF 2.1.0, the format code-scanning services (GitHub, GitLab, Azure) import.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::finding::{Finding, Severity};
use crate::rules::table::RULES;

pub const SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";

pub fn to_sarif(findings: &[Finding]) -> Value {
    let rules: Vec<Value> = RULES
        .iter()
        .map(|rule| {
            json!({
                "id": rule.id,
                "name": rule.name,
                "shortDescription": {"text": rule.message},
                "fullDescription": {"text": format!("{} ({})", rule.message, rule.cwe)},
                "help": {"text": rule.fix},
                "defaultConfiguration": {"level": level(rule.severity)},
                "properties": {
                    "tags": ["security", rule.cwe, rule.category.as_str()],
                    "security-severity": format!("{:.1}", rule.severity.security_severity()),
                    "precision": "high",
                },
            })
        })
        .collect();
    let results: Vec<Value> = findings.iter().map(result).collect();
    json!({
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "troupe-security-scanner",
                "version": env!("CARGO_PKG_VERSION"),
                "informationUri": "https://github.com/troupe-dev/troupe",
                "rules": rules,
            }},
            "columnKind": "unicodeCodePoints",
            "results": results,
        }],
    })
}

fn result(finding: &Finding) -> Value {
    let rule_index = RULES.iter().position(|rule| rule.id == finding.rule);
    // Stable across runs and line moves elsewhere in the file: rule, file and message.
    let fingerprint = Sha256::digest(
        format!("{}\0{}\0{}", finding.rule, finding.file, finding.message).as_bytes(),
    );
    let fingerprint: String = fingerprint
        .iter()
        .take(16)
        .map(|byte| format!("{byte:02x}"))
        .collect();
    json!({
        "ruleId": finding.rule,
        "ruleIndex": rule_index,
        "level": level(finding.severity),
        "message": {"text": format!("{} — {}", finding.message, finding.fix)},
        "locations": [{"physicalLocation": {
            "artifactLocation": {"uri": finding.file, "uriBaseId": "%SRCROOT%"},
            "region": {"startLine": finding.line.max(1), "startColumn": finding.column.max(1)},
        }}],
        "partialFingerprints": {"primaryLocationLineHash": fingerprint},
        "properties": {"severity": finding.severity.as_str(), "category": finding.category.as_str()},
    })
}

fn level(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Info => "note",
    }
}
