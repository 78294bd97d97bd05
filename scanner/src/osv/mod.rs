//! OSV advisories: loading them (a directory or zip of OSV JSON, or an OSV-compatible
//! endpoint) and matching dependencies against them.

pub mod cvss;
mod load;
pub mod remote;
pub mod version;

use std::cmp::Ordering;
use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::deps::{Dependency, normalise_pypi_name};
use crate::finding::Severity;

pub use load::load;

/// One OSV record, with only the fields the scanner uses.
#[derive(Debug, Clone, Deserialize)]
pub struct Advisory {
    pub id: String,
    #[serde(default)]
    pub summary: Option<String>,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub severity: Vec<SeverityEntry>,
    #[serde(default)]
    pub database_specific: Option<Value>,
    #[serde(default)]
    pub affected: Vec<Affected>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SeverityEntry {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub score: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Affected {
    #[serde(default)]
    pub package: Option<Package>,
    #[serde(default)]
    pub ranges: Vec<Range>,
    #[serde(default)]
    pub versions: Vec<String>,
    #[serde(default)]
    pub database_specific: Option<Value>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Package {
    #[serde(default)]
    pub ecosystem: String,
    #[serde(default)]
    pub name: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Range {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub events: Vec<Event>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Event {
    pub introduced: Option<String>,
    pub fixed: Option<String>,
    pub last_affected: Option<String>,
    pub limit: Option<String>,
}

impl Advisory {
    /// `database_specific.severity` (the label GitHub and others publish), else a
    /// numeric CVSS score, else the base score computed from a CVSS v3 vector.
    pub fn severity_level(&self) -> Severity {
        let label = self
            .database_specific
            .as_ref()
            .and_then(|specific| specific.get("severity"))
            .and_then(Value::as_str)
            .and_then(Severity::from_label);
        if let Some(label) = label {
            return label;
        }
        let score = self.severity.iter().find_map(|entry| {
            let score = entry.score.trim();
            score.parse::<f64>().ok().or_else(|| {
                (entry.kind.starts_with("CVSS_V3") || score.starts_with("CVSS:3"))
                    .then(|| cvss::base_score(score))
                    .flatten()
            })
        });
        // An advisory without any severity is still a known vulnerability.
        score.map_or(Severity::Medium, Severity::from_cvss_score)
    }
}

/// A dependency that an advisory affects.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Vulnerability {
    pub ecosystem: &'static str,
    pub name: String,
    pub version: String,
    pub file: String,
    pub line: usize,
    pub id: String,
    pub aliases: Vec<String>,
    pub severity: Severity,
    pub summary: String,
    pub fixed: Vec<String>,
}

/// Advisories indexed by (ecosystem, package name).
#[derive(Debug, Clone, Default)]
pub struct AdvisoryDb {
    by_package: HashMap<(String, String), Vec<Advisory>>,
    ids: std::collections::HashSet<String>,
}

fn key(ecosystem: &str, name: &str) -> (String, String) {
    let ecosystem = ecosystem
        .split(':')
        .next()
        .unwrap_or(ecosystem)
        .to_ascii_lowercase();
    let name = if ecosystem == "pypi" {
        normalise_pypi_name(name)
    } else {
        name.to_string()
    };
    (ecosystem, name)
}

impl AdvisoryDb {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Adds an advisory under every package it affects; a second copy of the same id
    /// (from a directory and an endpoint, say) is ignored.
    pub fn insert(&mut self, advisory: Advisory) {
        if !self.ids.insert(advisory.id.clone()) {
            return;
        }
        let mut packages: Vec<(String, String)> = advisory
            .affected
            .iter()
            .filter_map(|affected| affected.package.as_ref())
            .map(|package| key(&package.ecosystem, &package.name))
            .collect();
        packages.sort();
        packages.dedup();
        for package in packages {
            self.by_package
                .entry(package)
                .or_default()
                .push(advisory.clone());
        }
    }

    /// Every advisory that affects this dependency at its version.
    pub fn vulnerabilities(&self, dependency: &Dependency) -> Vec<Vulnerability> {
        let package_key = key(dependency.ecosystem, &dependency.name);
        let Some(advisories) = self.by_package.get(&package_key) else {
            return Vec::new();
        };
        advisories
            .iter()
            .filter_map(|advisory| {
                let entries: Vec<&Affected> = advisory
                    .affected
                    .iter()
                    .filter(|affected| {
                        affected.package.as_ref().is_some_and(|package| {
                            key(&package.ecosystem, &package.name) == package_key
                        })
                    })
                    .collect();
                if !entries
                    .iter()
                    .any(|affected| is_affected(affected, &dependency.version))
                {
                    return None;
                }
                let mut fixed: Vec<String> = entries
                    .iter()
                    .flat_map(|affected| &affected.ranges)
                    .flat_map(|range| &range.events)
                    .filter_map(|event| event.fixed.clone())
                    .collect();
                fixed.sort_by(|a, b| version::compare(a, b));
                fixed.dedup();
                Some(Vulnerability {
                    ecosystem: dependency.ecosystem,
                    name: dependency.name.clone(),
                    version: dependency.version.clone(),
                    file: dependency.file.clone(),
                    line: dependency.line,
                    id: advisory.id.clone(),
                    aliases: advisory.aliases.clone(),
                    severity: advisory.severity_level(),
                    summary: advisory.summary.clone().unwrap_or_default(),
                    fixed,
                })
            })
            .collect()
    }
}

/// OSV's rule: listed in `versions`, or inside a range. A range's events are taken in
/// version order; `introduced` opens it, `fixed` and `limit` close it at that version,
/// `last_affected` after it. `GIT` ranges name commits, which a lockfile does not
/// have, so they are not evaluated.
pub fn is_affected(affected: &Affected, version: &str) -> bool {
    if affected.versions.iter().any(|listed| listed == version) {
        return true;
    }
    affected
        .ranges
        .iter()
        .filter(|range| range.kind != "GIT")
        .any(|range| in_range(&range.events, version))
}

fn in_range(events: &[Event], version: &str) -> bool {
    let event_version = |event: &Event| {
        event
            .introduced
            .clone()
            .or_else(|| event.fixed.clone())
            .or_else(|| event.last_affected.clone())
            .or_else(|| event.limit.clone())
            .unwrap_or_default()
    };
    let mut ordered: Vec<&Event> = events.iter().collect();
    ordered.sort_by(|a, b| {
        let (a, b) = (event_version(a), event_version(b));
        match (a == "0", b == "0") {
            (true, false) => Ordering::Less,
            (false, true) => Ordering::Greater,
            _ => version::compare(&a, &b),
        }
    });
    let mut affected = false;
    for event in ordered {
        if let Some(introduced) = &event.introduced {
            if introduced == "0" || version::compare(version, introduced) != Ordering::Less {
                affected = true;
            }
        } else if let Some(fixed) = &event.fixed {
            if version::compare(version, fixed) != Ordering::Less {
                affected = false;
            }
        } else if let Some(last) = &event.last_affected {
            if version::compare(version, last) == Ordering::Greater {
                affected = false;
            }
        } else if let Some(limit) = &event.limit
            && version::compare(version, limit) != Ordering::Less
        {
            return false;
        }
    }
    affected
}

#[cfg(test)]
mod tests {
    use super::*;

    fn advisory(json: &str) -> Advisory {
        serde_json::from_str(json).expect("test advisory is valid JSON")
    }

    #[test]
    fn ranges_versions_and_severity() {
        let record = advisory(
            r#"{"id":"GHSA-1","database_specific":{"severity":"HIGH"},
                "affected":[{"package":{"ecosystem":"PyPI","name":"Django"},
                  "ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"4.0"},{"fixed":"4.2.10"},{"introduced":"5.0"},{"fixed":"5.0.2"}]}],
                  "versions":["3.2.1"]}]}"#,
        );
        let affected = &record.affected[0];
        assert!(is_affected(affected, "4.2.9"));
        assert!(!is_affected(affected, "4.2.10"));
        assert!(is_affected(affected, "5.0.1"));
        assert!(!is_affected(affected, "3.9"));
        assert!(is_affected(affected, "3.2.1"));
        assert_eq!(record.severity_level(), Severity::High);

        let vector = advisory(
            r#"{"id":"X","severity":[{"type":"CVSS_V3","score":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}]}"#,
        );
        assert_eq!(vector.severity_level(), Severity::Critical);
        let last = advisory(
            r#"{"id":"Y","affected":[{"package":{"ecosystem":"npm","name":"x"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"last_affected":"1.2.0"}]}]}]}"#,
        );
        assert!(is_affected(&last.affected[0], "1.2.0"));
        assert!(!is_affected(&last.affected[0], "1.2.1"));
    }
}
