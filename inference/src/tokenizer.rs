//! The tokenizer of a GGUF model, built from the vocabulary, merges and token types in
//! its own metadata, so a model file is all a user needs (candle's `TokenizerFromGguf`;
//! byte-level BPE, as the default model and most llama-architecture GGUFs use).

use std::path::Path;

use candle_core::quantized::gguf_file::{Content, Value};
use candle_core::quantized::tokenizer::TokenizerFromGguf;
use tokenizers::Tokenizer;
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;

use crate::errors::InferenceError;
use crate::gguf;

pub struct GgufTokenizer {
    inner: Tokenizer,
    eos_token_id: Option<u32>,
}

impl GgufTokenizer {
    /// Reads `path`'s metadata and builds its tokenizer.
    pub fn load(path: &Path) -> Result<Self, InferenceError> {
        let file = gguf::open(path)?;
        Self::from_content(&file.content).map_err(|reason| gguf::invalid(path, reason))
    }

    pub fn from_content(content: &Content) -> Result<Self, String> {
        let mut inner = Tokenizer::from_gguf(content)
            .map_err(|error| format!("cannot build its tokenizer: {error}"))?;
        let pre = match content.metadata.get("tokenizer.ggml.pre") {
            Some(Value::String(pre)) => pre.as_str(),
            _ => "gpt2",
        };
        if let Some(pre_tokenizer) = byte_level_pre_tokenizer(pre) {
            inner.with_pre_tokenizer(Some(pre_tokenizer));
            inner.with_decoder(Some(ByteLevel::new(false, true, true)));
        }
        let eos_token_id = match content.metadata.get("tokenizer.ggml.eos_token_id") {
            Some(Value::U32(id)) => Some(*id),
            Some(other) => other.to_u64().ok().and_then(|id| u32::try_from(id).ok()),
            None => None,
        };
        Ok(Self {
            inner,
            eos_token_id,
        })
    }

    /// Token ids of `text`. Special tokens written in the text (`<|im_start|>`) become
    /// their single ids: prompts are rendered with them by the chat template.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, InferenceError> {
        self.inner
            .encode(text, false)
            .map(|encoding| encoding.get_ids().to_vec())
            .map_err(|error| InferenceError::Tokenizer(error.to_string()))
    }

    /// Text of `ids`, special tokens included as written.
    pub fn decode(&self, ids: &[u32]) -> Result<String, InferenceError> {
        self.inner
            .decode(ids, false)
            .map_err(|error| InferenceError::Tokenizer(error.to_string()))
    }

    pub fn vocabulary_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    pub fn eos_token_id(&self) -> Option<u32> {
        self.eos_token_id
    }
}

/// candle builds GPT-2 style pre-tokenization *with* a prefix space, so "Hello" became
/// " Hello" and every prompt started one token off the model's training. GPT-2 and SmolLM
/// add none (the GGUF says so in `tokenizer.ggml.add_space_prefix`), and SmolLM splits
/// digits one by one, as llama.cpp's `smollm` pre-tokenizer does. The pre-tokenizers that
/// candle builds faithfully (qwen2, llama3 and kin) are left alone.
fn byte_level_pre_tokenizer(pre: &str) -> Option<PreTokenizerWrapper> {
    let byte_level = ByteLevel::new(false, true, true);
    match pre {
        "qwen2" | "smaug-bpe" | "lfm2" | "llama3" => None,
        "smollm" => Some(Sequence::new(vec![Digits::new(true).into(), byte_level.into()]).into()),
        _ => Some(byte_level.into()),
    }
}
