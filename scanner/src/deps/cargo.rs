//! `Cargo.lock`: `[[package]]` tables with `name` and `version`.

use serde::Deserialize;

use super::{Dependency, line_of};

#[derive(Deserialize)]
struct Lockfile {
    #[serde(default)]
    package: Vec<Package>,
}

#[derive(Deserialize)]
pub(super) struct Package {
    pub name: String,
    pub version: String,
}

pub fn parse(file: &str, src: &str) -> Result<Vec<Dependency>, String> {
    let lockfile: Lockfile =
        toml::from_str(src).map_err(|error| format!("not a valid Cargo.lock: {error}"))?;
    Ok(with_lines(
        file,
        src,
        lockfile.package,
        "crates.io",
        |name| name.to_string(),
    ))
}

/// Dependencies from `[[package]]` tables, each at the line of its `name = "..."`.
pub(super) fn with_lines(
    file: &str,
    src: &str,
    packages: Vec<Package>,
    ecosystem: &'static str,
    normalise: impl Fn(&str) -> String,
) -> Vec<Dependency> {
    let mut cursor = 0;
    packages
        .into_iter()
        .map(|package| {
            let line = line_of(src, &format!("name = \"{}\"", package.name), cursor).unwrap_or(0);
            if line > 0 {
                cursor = line;
            }
            Dependency {
                ecosystem,
                name: normalise(&package.name),
                version: package.version,
                file: file.to_string(),
                line,
            }
        })
        .collect()
}
