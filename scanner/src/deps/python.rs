//! `requirements*.txt` (pinned `name==version` lines) and `poetry.lock`.

use serde::Deserialize;

use super::cargo::{Package, with_lines};
use super::{Dependency, normalise_pypi_name};

/// Only exact pins are dependencies with a version; ranges (`>=`), options (`-r`,
/// `--hash`), URLs and comments are skipped, since no single version can be matched.
pub fn parse_requirements(file: &str, src: &str) -> Vec<Dependency> {
    src.lines()
        .enumerate()
        .filter_map(|(index, line)| {
            let line = line.split(" #").next().unwrap_or(line).trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with('-') {
                return None;
            }
            let requirement = line.split(';').next().unwrap_or(line).trim();
            let (name, version) = requirement.split_once("==")?;
            let name = name.split('[').next().unwrap_or(name).trim();
            let version = version
                .split_whitespace()
                .next()
                .unwrap_or("")
                .trim_end_matches('\\');
            if name.is_empty() || version.is_empty() || version.contains('*') {
                return None;
            }
            Some(Dependency {
                ecosystem: "PyPI",
                name: normalise_pypi_name(name),
                version: version.to_string(),
                file: file.to_string(),
                line: index + 1,
            })
        })
        .collect()
}

#[derive(Deserialize)]
struct PoetryLock {
    #[serde(default)]
    package: Vec<Package>,
}

pub fn parse_poetry(file: &str, src: &str) -> Result<Vec<Dependency>, String> {
    let lock: PoetryLock =
        toml::from_str(src).map_err(|error| format!("not a valid poetry.lock: {error}"))?;
    Ok(with_lines(
        file,
        src,
        lock.package,
        "PyPI",
        normalise_pypi_name,
    ))
}
