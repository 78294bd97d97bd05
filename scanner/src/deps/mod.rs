//! Dependencies read from lockfiles. A malformed lockfile becomes a warning; it never
//! aborts the scan.

mod cargo;
mod go;
mod npm;
mod python;

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Dependency {
    /// OSV's ecosystem names: `crates.io`, `npm`, `PyPI`, `Go`.
    pub ecosystem: &'static str,
    pub name: String,
    pub version: String,
    pub file: String,
    /// 1-based; 0 where the format gives no cheap line (JSON lockfiles).
    pub line: usize,
}

/// Whether a file is a lockfile this scanner reads, by its name.
pub fn is_lockfile(file: &str) -> bool {
    let name = file.rsplit('/').next().unwrap_or(file);
    matches!(
        name,
        "Cargo.lock" | "package-lock.json" | "npm-shrinkwrap.json" | "poetry.lock" | "go.sum"
    ) || (name.starts_with("requirements") && name.ends_with(".txt"))
}

/// The dependencies in one lockfile, or why it could not be read.
pub fn parse(file: &str, src: &str) -> Result<Vec<Dependency>, String> {
    let name = file.rsplit('/').next().unwrap_or(file);
    let mut dependencies = match name {
        "Cargo.lock" => cargo::parse(file, src),
        "package-lock.json" | "npm-shrinkwrap.json" => npm::parse(file, src),
        "poetry.lock" => python::parse_poetry(file, src),
        "go.sum" => Ok(go::parse(file, src)),
        _ => Ok(python::parse_requirements(file, src)),
    }
    .map_err(|reason| format!("{file}: {reason}"))?;
    dependencies.sort();
    dependencies
        .dedup_by(|a, b| a.ecosystem == b.ecosystem && a.name == b.name && a.version == b.version);
    Ok(dependencies)
}

/// The line (1-based) of the first line at or after `from` that contains `needle`.
fn line_of(src: &str, needle: &str, from: usize) -> Option<usize> {
    src.lines()
        .enumerate()
        .skip(from)
        .find(|(_, line)| line.contains(needle))
        .map(|(index, _)| index + 1)
}

/// PEP 503: lowercase, runs of `-`, `_`, `.` become one `-`.
pub fn normalise_pypi_name(name: &str) -> String {
    let mut normalised = String::with_capacity(name.len());
    let mut last_was_separator = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !last_was_separator {
                normalised.push('-');
            }
            last_was_separator = true;
        } else {
            normalised.push(c.to_ascii_lowercase());
            last_was_separator = false;
        }
    }
    normalised
}
