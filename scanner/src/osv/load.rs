//! Loading OSV JSON from a directory (recursively, `*.json`) or a `.zip` of them, as
//! osv.dev's per-ecosystem `all.zip` downloads are. Every bound is checked against the
//! bytes actually read, not only the sizes an archive declares, so a zip bomb is
//! refused however it lies about itself.

use std::io::Read;
use std::path::Path;

use serde_json::Value;
use walkdir::WalkDir;

use crate::ScanError;
use crate::config::ScannerConfig;
use crate::osv::{Advisory, AdvisoryDb};

fn invalid(reason: String) -> ScanError {
    ScanError::InvalidInput {
        field: "advisories".into(),
        reason,
    }
}

/// Loads advisories; files that are not OSV records are returned as warnings.
pub fn load(path: &Path, config: &ScannerConfig) -> Result<(AdvisoryDb, Vec<String>), ScanError> {
    let mut db = AdvisoryDb::new();
    let mut warnings = Vec::new();
    if path.is_dir() {
        load_dir(path, config, &mut db, &mut warnings)?;
    } else if path.is_file()
        && path
            .extension()
            .is_some_and(|extension| extension.eq_ignore_ascii_case("zip"))
    {
        load_zip(path, config, &mut db, &mut warnings)?;
    } else if path.is_file() {
        let bytes = std::fs::read(path)
            .map_err(|error| invalid(format!("cannot read `{}`: {error}", path.display())))?;
        add(&bytes, &path.display().to_string(), &mut db, &mut warnings);
    } else {
        return Err(invalid(format!(
            "`{}` does not exist; give a directory of OSV JSON files or a .zip of them",
            path.display()
        )));
    }
    Ok((db, warnings))
}

fn load_dir(
    root: &Path,
    config: &ScannerConfig,
    db: &mut AdvisoryDb,
    warnings: &mut Vec<String>,
) -> Result<(), ScanError> {
    let mut files = 0usize;
    let mut total_bytes = 0u64;
    for entry in WalkDir::new(root).follow_links(false).into_iter().flatten() {
        let is_json = entry
            .path()
            .extension()
            .is_some_and(|extension| extension == "json");
        if !entry.file_type().is_file() || !is_json {
            continue;
        }
        files += 1;
        if files > config.max_advisory_files {
            return Err(invalid(format!(
                "`{}` holds more than {} advisory files; point at one ecosystem's directory",
                root.display(),
                config.max_advisory_files
            )));
        }
        let name = entry.path().display().to_string();
        let bytes = read_bounded(
            std::fs::File::open(entry.path()),
            config.max_advisory_file_bytes,
            &name,
        )?;
        total_bytes += bytes.len() as u64;
        if total_bytes > config.max_advisory_total_bytes {
            return Err(too_much(root, config));
        }
        add(&bytes, &name, db, warnings);
    }
    Ok(())
}

fn load_zip(
    path: &Path,
    config: &ScannerConfig,
    db: &mut AdvisoryDb,
    warnings: &mut Vec<String>,
) -> Result<(), ScanError> {
    let file = std::fs::File::open(path)
        .map_err(|error| invalid(format!("cannot open `{}`: {error}", path.display())))?;
    let mut archive = zip::ZipArchive::new(file).map_err(|error| {
        invalid(format!(
            "`{}` is not a readable zip: {error}",
            path.display()
        ))
    })?;
    if archive.len() > config.max_advisory_files {
        return Err(invalid(format!(
            "`{}` has {} entries, more than the {} allowed",
            path.display(),
            archive.len(),
            config.max_advisory_files
        )));
    }
    let mut total_bytes = 0u64;
    for index in 0..archive.len() {
        let entry = archive
            .by_index(index)
            .map_err(|error| invalid(format!("`{}` entry {index}: {error}", path.display())))?;
        let name = entry
            .name()
            .map(|name| name.to_string())
            .unwrap_or_else(|_| format!("entry {index}"));
        if entry.is_dir() || !name.ends_with(".json") {
            continue;
        }
        let label = format!("{}!{name}", path.display());
        let bytes = read_bounded(Ok(entry), config.max_advisory_file_bytes, &label)?;
        total_bytes += bytes.len() as u64;
        if total_bytes > config.max_advisory_total_bytes {
            return Err(too_much(path, config));
        }
        add(&bytes, &label, db, warnings);
    }
    Ok(())
}

fn read_bounded(
    reader: std::io::Result<impl Read>,
    max_bytes: u64,
    name: &str,
) -> Result<Vec<u8>, ScanError> {
    let reader = reader.map_err(|error| invalid(format!("cannot read `{name}`: {error}")))?;
    let mut bytes = Vec::new();
    reader
        .take(max_bytes + 1)
        .read_to_end(&mut bytes)
        .map_err(|error| invalid(format!("cannot read `{name}`: {error}")))?;
    if bytes.len() as u64 > max_bytes {
        return Err(invalid(format!(
            "`{name}` expands beyond {max_bytes} bytes; refusing it (a zip bomb or not an advisory)"
        )));
    }
    Ok(bytes)
}

fn too_much(path: &Path, config: &ScannerConfig) -> ScanError {
    invalid(format!(
        "`{}` expands beyond {} bytes in all; refusing it (a zip bomb, or point at one ecosystem)",
        path.display(),
        config.max_advisory_total_bytes
    ))
}

/// One file: an OSV record, or a list of them (as some exports write).
fn add(bytes: &[u8], name: &str, db: &mut AdvisoryDb, warnings: &mut Vec<String>) {
    let parsed: Result<Value, _> = serde_json::from_slice(bytes);
    let records = match parsed {
        Ok(Value::Array(records)) => records,
        Ok(record) => vec![record],
        Err(error) => {
            warnings.push(format!("{name}: not JSON ({error}); skipped"));
            return;
        }
    };
    for record in records {
        match serde_json::from_value::<Advisory>(record) {
            Ok(advisory) => db.insert(advisory),
            Err(error) => warnings.push(format!("{name}: not an OSV record ({error}); skipped")),
        }
    }
}
