//! Sentence embeddings with a BERT model (all-MiniLM-L6-v2 by default): token embeddings
//! averaged over the real tokens only (the attention mask keeps padding out), then scaled
//! to unit length, as sentence-transformers does. Texts are embedded as one padded batch.

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::{PaddingParams, Tokenizer, TruncationParams};

use crate::errors::InferenceError;

/// Longest input, in tokens; longer texts are cut (the model was trained on 256).
pub const MAX_TOKENS: usize = 256;

/// Unit vectors, one per text, and the tokens (after truncation) they cost.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Embedded {
    pub vectors: Vec<Vec<f32>>,
    pub tokens: usize,
}

pub struct Embedder {
    /// The model's directory name, what APIs call it (`all-minilm-l6-v2`).
    id: String,
    model: BertModel,
    tokenizer: Tokenizer,
    device: Device,
    dimensions: usize,
}

impl Embedder {
    /// Loads `config.json`, `model.safetensors` and `tokenizer.json` from `dir`.
    pub fn load(dir: &Path) -> Result<Self, InferenceError> {
        let file = |name: &str| {
            let path = dir.join(name);
            if path.is_file() {
                Ok(path)
            } else {
                Err(InferenceError::ModelMissing { path })
            }
        };
        let bad = |path: &Path, reason: String| InferenceError::Gguf {
            path: path.to_path_buf(),
            reason,
        };
        let config_path = file("config.json")?;
        let config_text = std::fs::read_to_string(&config_path).map_err(InferenceError::io(
            format!("reading {}", config_path.display()),
        ))?;
        let config: Config = serde_json::from_str(&config_text)
            .map_err(|error| bad(&config_path, error.to_string()))?;
        let dimensions = serde_json::from_str::<serde_json::Value>(&config_text)
            .ok()
            .and_then(|value| value["hidden_size"].as_u64())
            .unwrap_or(0) as usize;
        let weights_path = file("model.safetensors")?;
        let weights = std::fs::read(&weights_path).map_err(InferenceError::io(format!(
            "reading {}",
            weights_path.display()
        )))?;
        let device = Device::Cpu;
        let builder = VarBuilder::from_buffered_safetensors(weights, DType::F32, &device)
            .map_err(|error| bad(&weights_path, error.to_string()))?;
        let model = BertModel::load(builder, &config)
            .map_err(|error| bad(&weights_path, error.to_string()))?;
        let tokenizer_path = file("tokenizer.json")?;
        let mut tokenizer = Tokenizer::from_file(&tokenizer_path)
            .map_err(|error| bad(&tokenizer_path, error.to_string()))?;
        tokenizer.with_padding(Some(PaddingParams::default()));
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: MAX_TOKENS,
                ..Default::default()
            }))
            .map_err(|error| bad(&tokenizer_path, error.to_string()))?;
        let id = dir
            .file_name()
            .and_then(|name| name.to_str())
            .unwrap_or("embedding")
            .to_string();
        Ok(Self {
            id,
            model,
            tokenizer,
            device,
            dimensions,
        })
    }

    /// Tokens `texts` take after truncation, special tokens included.
    pub fn count_tokens(&self, texts: &[String]) -> usize {
        texts
            .iter()
            .filter_map(|text| self.tokenizer.encode(text.as_str(), true).ok())
            .map(|encoding| encoding.get_ids().len().min(MAX_TOKENS))
            .sum()
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn dimensions(&self) -> usize {
        self.dimensions
    }

    /// One unit-length vector per text, in order.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, InferenceError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        if texts.iter().any(|text| text.trim().is_empty()) {
            return Err(InferenceError::InvalidRequest(
                "cannot embed an empty text".into(),
            ));
        }
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|error| InferenceError::Tokenizer(error.to_string()))?;
        let model_error = |error: candle_core::Error| InferenceError::Model(error.to_string());
        let stack = |rows: Vec<&[u32]>| -> Result<Tensor, InferenceError> {
            let rows = rows
                .into_iter()
                .map(|row| Tensor::new(row, &self.device))
                .collect::<Result<Vec<_>, _>>()
                .map_err(model_error)?;
            Tensor::stack(&rows, 0).map_err(model_error)
        };
        let ids = stack(
            encodings
                .iter()
                .map(|encoding| encoding.get_ids())
                .collect(),
        )?;
        let type_ids = stack(
            encodings
                .iter()
                .map(|encoding| encoding.get_type_ids())
                .collect(),
        )?;
        let mask = stack(
            encodings
                .iter()
                .map(|encoding| encoding.get_attention_mask())
                .collect(),
        )?;
        let hidden = self
            .model
            .forward(&ids, &type_ids, Some(&mask))
            .map_err(model_error)?;
        let pooled = mean_pool(&hidden, &mask).map_err(model_error)?;
        let normalised = pooled
            .broadcast_div(
                &pooled
                    .sqr()
                    .and_then(|s| s.sum_keepdim(1))
                    .and_then(|s| s.sqrt())
                    .map_err(model_error)?,
            )
            .map_err(model_error)?;
        normalised.to_vec2::<f32>().map_err(model_error)
    }
}

/// Mean of the hidden states over the positions the mask marks as real tokens.
fn mean_pool(hidden: &Tensor, mask: &Tensor) -> candle_core::Result<Tensor> {
    let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
    let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
    let counts = mask.sum(1)?.clamp(1e-9, f64::MAX)?;
    summed.broadcast_div(&counts)
}

/// Cosine similarity of two unit vectors.
pub fn cosine(left: &[f32], right: &[f32]) -> f32 {
    left.iter().zip(right).map(|(a, b)| a * b).sum()
}
