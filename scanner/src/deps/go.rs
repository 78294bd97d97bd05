//! `go.sum`: `module version h1:hash` lines, one module twice (its tree and its
//! `go.mod`); both collapse to one dependency.

use super::Dependency;

pub fn parse(file: &str, src: &str) -> Vec<Dependency> {
    src.lines()
        .enumerate()
        .filter_map(|(index, line)| {
            let mut fields = line.split_whitespace();
            let (module, version) = (fields.next()?, fields.next()?);
            let version = version.strip_suffix("/go.mod").unwrap_or(version);
            let version = version.strip_suffix("+incompatible").unwrap_or(version);
            Some(Dependency {
                ecosystem: "Go",
                name: module.to_string(),
                version: version.to_string(),
                file: file.to_string(),
                line: index + 1,
            })
        })
        .collect()
}
