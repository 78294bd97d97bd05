//! Reading a GGUF file's header and checking that it is whole and of an architecture we
//! can run, before anything tries to load its weights.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use candle_core::quantized::gguf_file::{Content, Value};

use crate::errors::InferenceError;
use crate::llama::ARCHITECTURES;

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct GgufSummary {
    pub path: PathBuf,
    pub size_bytes: u64,
    pub architecture: String,
    pub name: Option<String>,
    pub block_count: Option<u64>,
    pub context_length: Option<u64>,
    pub embedding_length: Option<u64>,
    pub vocabulary_size: usize,
    pub merges: usize,
    /// `gpt2` (byte-level BPE) or `llama` (SentencePiece).
    pub tokenizer_model: Option<String>,
    pub chat_template: Option<String>,
    /// The quantisation most of the 2-D weights use, e.g. `Q4_1`.
    pub quantization: String,
    pub tensor_count: usize,
}

/// An opened GGUF file: its checked header, what it says, and a reader for its weights.
pub struct GgufFile {
    pub content: Content,
    pub reader: BufReader<File>,
    pub summary: GgufSummary,
}

/// Reads and checks `path`: a GGUF header, every tensor inside the file, a supported
/// architecture.
pub fn inspect(path: &Path) -> Result<GgufSummary, InferenceError> {
    open(path).map(|file| file.summary)
}

/// `inspect`, keeping the parsed header and the open file for loading the weights.
pub fn open(path: &Path) -> Result<GgufFile, InferenceError> {
    let bad = |reason: String| invalid(path, reason);
    let file = File::open(path).map_err(|error| match error.kind() {
        std::io::ErrorKind::NotFound => InferenceError::ModelMissing {
            path: path.to_path_buf(),
        },
        _ => bad(error.to_string()),
    })?;
    let size_bytes = file
        .metadata()
        .map_err(|error| bad(error.to_string()))?
        .len();
    let mut reader = BufReader::new(file);
    let content = Content::read(&mut reader).map_err(|error| bad(error.to_string()))?;
    check_tensors_fit(&content, size_bytes).map_err(bad)?;
    let summary = summarize(path, &content, size_bytes)?;
    Ok(GgufFile {
        content,
        reader,
        summary,
    })
}

pub(crate) fn invalid(path: &Path, reason: String) -> InferenceError {
    InferenceError::Gguf {
        path: path.to_path_buf(),
        reason,
    }
}

fn summarize(
    path: &Path,
    content: &Content,
    size_bytes: u64,
) -> Result<GgufSummary, InferenceError> {
    let text = |key: &str| match content.metadata.get(key) {
        Some(Value::String(value)) => Some(value.clone()),
        _ => None,
    };
    let architecture = text("general.architecture")
        .ok_or_else(|| invalid(path, "no general.architecture in its metadata".into()))?;
    if !ARCHITECTURES.contains(&architecture.as_str()) {
        return Err(InferenceError::UnsupportedArchitecture {
            path: path.to_path_buf(),
            architecture,
            supported: ARCHITECTURES.join(", "),
        });
    }
    let number = |key: String| {
        content
            .metadata
            .get(&key)
            .and_then(|value| value.to_u64().ok())
    };
    let array_len = |key: &str| match content.metadata.get(key) {
        Some(Value::Array(items)) => items.len(),
        _ => 0,
    };
    Ok(GgufSummary {
        path: path.to_path_buf(),
        size_bytes,
        name: text("general.name"),
        block_count: number(format!("{architecture}.block_count")),
        context_length: number(format!("{architecture}.context_length")),
        embedding_length: number(format!("{architecture}.embedding_length")),
        vocabulary_size: array_len("tokenizer.ggml.tokens"),
        merges: array_len("tokenizer.ggml.merges"),
        tokenizer_model: text("tokenizer.ggml.model"),
        chat_template: text("tokenizer.chat_template"),
        quantization: dominant_quantization(content),
        tensor_count: content.tensor_infos.len(),
        architecture,
    })
}

/// A truncated download keeps a valid header; the weights it lost are found here, not at
/// the first forward pass.
fn check_tensors_fit(content: &Content, file_size: u64) -> Result<(), String> {
    for (name, info) in &content.tensor_infos {
        let elements = info.shape.elem_count() as u64;
        let block = info.ggml_dtype.block_size() as u64;
        let bytes = elements / block.max(1) * info.ggml_dtype.type_size() as u64;
        let end = content
            .tensor_data_offset
            .saturating_add(info.offset)
            .saturating_add(bytes);
        if end > file_size {
            return Err(format!(
                "truncated: tensor `{name}` ends at byte {end} but the file has {file_size} bytes (fetch it again)"
            ));
        }
    }
    Ok(())
}

fn dominant_quantization(content: &Content) -> String {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for info in content
        .tensor_infos
        .values()
        .filter(|info| info.shape.rank() == 2)
    {
        *counts.entry(format!("{:?}", info.ggml_dtype)).or_default() += 1;
    }
    counts
        .into_iter()
        .max_by_key(|(_, count)| *count)
        .map_or_else(|| "none".into(), |(dtype, _)| dtype)
}
