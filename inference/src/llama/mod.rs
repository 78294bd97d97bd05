//! A llama-architecture transformer over GGUF weights that runs many sequences in one
//! forward pass: the continuous-batching core. The qwen2 and qwen3 families are the same
//! shape with three differences, read from the file ([`LlamaConfig`]): biases on the
//! query, key and value projections (qwen2), a norm over each query and key head before
//! the rotation (qwen3), and the rotation's pairs taken from the two halves of a head
//! rather than side by side (both; their GGUF converters leave the weights unpermuted).
//!
//! candle's `quantized_llama` keeps one KV cache per model instance and one position for
//! the whole batch, so sequences of different lengths cannot share a pass. Here the
//! weights are shared and immutable, each sequence owns a [`KvCache`], and a pass takes
//! any mix of sequences, each bringing one or more new tokens (a prompt slice being
//! prefilled, or the token just sampled). All new tokens of all sequences go through the
//! weight matrices as one matrix, so the weights are read once per pass rather than once
//! per sequence; only attention is done per sequence, against its own cache.
//!
//! Two implementations of the same pass: [`cpu`], plain Rust over our own quantised
//! kernels (the default on the CPU: candle's CPU path has no SIMD Q4_1 kernel and spends
//! more time in per-op overhead than in arithmetic at this model size), and [`tensors`],
//! candle tensor ops throughout (the GPU path, and on the CPU the reference the fast
//! path is tested against).

mod attention;
mod cpu;
mod tensors;

use candle_core::quantized::gguf_file::Content;
use candle_core::{Device, Result, Tensor};

/// Longest sequence (prompt and continuation) a model is run with, whatever its metadata
/// claims: the rotary tables and a full cache are sized by it.
pub const MAX_CONTEXT_TOKENS: usize = 4096;

/// The architectures (`general.architecture`) served, each one's metadata under its
/// own name.
pub const ARCHITECTURES: &[&str] = &["llama", "qwen2", "qwen3"];

/// Which dimensions of a head the rotary embedding turns together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotation {
    /// `2i` with `2i + 1`: llama's GGUF layout (its converter permutes the weights).
    Adjacent,
    /// `i` with `i + head_dim / 2`: the Hugging Face layout, which qwen's GGUFs keep.
    Halves,
}

/// The shape of a model, from its GGUF metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct LlamaConfig {
    pub layers: usize,
    pub hidden: usize,
    pub heads: usize,
    pub kv_heads: usize,
    /// Width of one attention head: `hidden / heads` unless the file says otherwise
    /// (qwen3's heads are wider).
    pub head_dim: usize,
    pub rms_eps: f64,
    pub rope_base: f32,
    pub rotation: Rotation,
    pub context_length: usize,
}

impl LlamaConfig {
    pub fn from_gguf(content: &Content) -> std::result::Result<Self, String> {
        let architecture = match content.metadata.get("general.architecture") {
            Some(candle_core::quantized::gguf_file::Value::String(name))
                if ARCHITECTURES.contains(&name.as_str()) =>
            {
                name.as_str()
            }
            other => {
                return Err(format!(
                    "architecture {other:?} is not one of {}",
                    ARCHITECTURES.join(", ")
                ));
            }
        };
        let key = |name: &str| format!("{architecture}.{name}");
        let number = |name: &str| -> std::result::Result<usize, String> {
            let key = key(name);
            content
                .metadata
                .get(&key)
                .ok_or_else(|| format!("its metadata has no `{key}`"))?
                .to_u32()
                .map(|value| value as usize)
                .map_err(|error| format!("`{key}` is not a number: {error}"))
        };
        let heads = number("attention.head_count")?;
        let kv_heads = number("attention.head_count_kv")?;
        let hidden = number("embedding_length")?;
        let layers = number("block_count")?;
        if heads == 0 || kv_heads == 0 || !heads.is_multiple_of(kv_heads) {
            return Err(format!(
                "inconsistent attention shape: {heads} heads, {kv_heads} key/value heads"
            ));
        }
        let head_dim = match number("attention.key_length") {
            Ok(width) => width,
            Err(_) if hidden.is_multiple_of(heads) => hidden / heads,
            Err(_) => {
                return Err(format!(
                    "inconsistent attention shape: width {hidden} in {heads} heads"
                ));
            }
        };
        let value_dim = number("attention.value_length").unwrap_or(head_dim);
        let rope_dim = number("rope.dimension_count").unwrap_or(head_dim);
        if value_dim != head_dim || rope_dim != head_dim || head_dim == 0 || head_dim % 2 == 1 {
            return Err(format!(
                "unsupported heads: keys {head_dim} wide, values {value_dim}, rotated {rope_dim} \
                 (they must be equal and even)"
            ));
        }
        let float = |name: &str| {
            content
                .metadata
                .get(&key(name))
                .and_then(|v| v.to_f32().ok())
        };
        let context_length = number("context_length")
            .unwrap_or(MAX_CONTEXT_TOKENS)
            .min(MAX_CONTEXT_TOKENS);
        Ok(Self {
            layers,
            hidden,
            heads,
            kv_heads,
            head_dim,
            rms_eps: float("attention.layer_norm_rms_epsilon").unwrap_or(1e-5) as f64,
            rope_base: float("rope.freq_base").unwrap_or(10_000.0),
            rotation: match architecture {
                "llama" => Rotation::Adjacent,
                _ => Rotation::Halves,
            },
            context_length,
        })
    }

    /// Values per position of the queries (and of attention's output): every head's.
    fn query_width(&self) -> usize {
        self.heads * self.head_dim
    }

    fn kv_width(&self) -> usize {
        self.kv_heads * self.head_dim
    }
}

/// What one token costs a pass in weights, whatever the batch: the figures the
/// benchmark divides by the machine's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct PassCost {
    /// Bytes of every weight matrix, each read once per pass (the embedding table
    /// counted once more as the output layer when the two are tied, since a pass
    /// reads all of it for the logits).
    pub weight_bytes: usize,
    /// Multiply-adds of the weight products for one token.
    pub multiply_adds: usize,
}

impl PassCost {
    pub fn of(content: &Content) -> Self {
        let matrices = content.tensor_infos.iter().filter(|(name, info)| {
            info.shape.dims().len() == 2 && name.as_str() != "token_embd.weight"
        });
        let output = (!content.tensor_infos.contains_key("output.weight"))
            .then(|| content.tensor_infos.get("token_embd.weight"))
            .flatten();
        let mut cost = Self {
            weight_bytes: 0,
            multiply_adds: 0,
        };
        for info in matrices.map(|(_, info)| info).chain(output) {
            let elements = info.shape.elem_count();
            let dtype = info.ggml_dtype;
            cost.weight_bytes += elements / dtype.block_size() * dtype.type_size();
            cost.multiply_adds += elements;
        }
        cost
    }
}

/// Which implementation runs the passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForwardPath {
    /// Ours on the CPU, candle tensors elsewhere.
    Auto,
    /// candle tensor ops on any device.
    Tensors,
}

enum Backend {
    Cpu(cpu::CpuModel),
    Tensors(tensors::TensorModel),
}

/// One model's weights: loaded once, shared by every sequence a worker runs.
pub struct LlamaWeights {
    config: LlamaConfig,
    cost: PassCost,
    device: Device,
    backend: Backend,
}

enum CacheStore {
    Cpu(cpu::CpuCache),
    Tensors(tensors::TensorCache),
}

/// One sequence's keys and values, per layer, for the positions seen so far.
pub struct KvCache {
    len: usize,
    store: CacheStore,
}

impl KvCache {
    /// Positions already in the cache: the position of the next token.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Positions `range` of every layer, copied out for another sequence of the same
    /// model to start from ([`crate::prefix`]). `None` on candle's path, whose cache
    /// lives on the device, and past the positions held.
    pub fn copy(&self, range: std::ops::Range<usize>) -> Option<Positions> {
        match &self.store {
            CacheStore::Cpu(cache) if range.end <= self.len => Some(cache.copy(range)),
            _ => None,
        }
    }

    /// Drops the positions from `len` on (a draft's tokens the sampler did not take);
    /// the next pass writes from there.
    pub fn truncate(&mut self, len: usize) {
        if len >= self.len {
            return;
        }
        if let CacheStore::Cpu(cache) = &mut self.store {
            cache.truncate(len);
        }
        self.len = len;
    }

    /// Appends positions another sequence computed for the same tokens at the same
    /// places: what the cache holds must end where they begin. False (and nothing
    /// appended) on candle's path.
    pub fn append(&mut self, positions: &Positions) -> bool {
        match &mut self.store {
            CacheStore::Cpu(cache) => {
                cache.append(positions);
                self.len += positions.count;
                true
            }
            CacheStore::Tensors(_) => false,
        }
    }
}

/// Keys and values of consecutive positions, per layer, at half precision.
#[derive(Debug, Clone, PartialEq)]
pub struct Positions {
    count: usize,
    keys: Vec<Vec<half::f16>>,
    values: Vec<Vec<half::f16>>,
}

impl Positions {
    /// Bytes held.
    pub fn bytes(&self) -> usize {
        let values: usize = self.keys.iter().chain(&self.values).map(Vec::len).sum();
        values * std::mem::size_of::<half::f16>()
    }

    /// `count` positions of zeros, `width` values each in `layers` layers.
    #[cfg(test)]
    pub(crate) fn zeros(count: usize, layers: usize, width: usize) -> Self {
        let layer = || vec![half::f16::ZERO; count * width];
        Self {
            count,
            keys: (0..layers).map(|_| layer()).collect(),
            values: (0..layers).map(|_| layer()).collect(),
        }
    }
}

/// One sequence's part of a pass: its new tokens, and its cache.
pub struct BatchItem<'a> {
    pub tokens: &'a [u32],
    pub cache: &'a mut KvCache,
    /// How many of the last tokens get logits: 1, or every token of a draft being
    /// verified.
    pub outputs: usize,
}

/// What a backend sees of an item: the tokens, where they start, its own cache, and how
/// many of the last tokens get logits.
struct Pass<'a, C> {
    tokens: &'a [u32],
    position: usize,
    cache: &'a mut C,
    outputs: usize,
}

impl<C> Pass<'_, C> {
    /// The rows of the pass's hidden states that get logits, for items starting at
    /// row 0 one after another.
    fn output_rows(items: &[Self]) -> Vec<usize> {
        let mut rows = Vec::new();
        let mut end = 0;
        for item in items {
            end += item.tokens.len();
            rows.extend(end - item.outputs..end);
        }
        rows
    }
}

impl LlamaWeights {
    pub fn from_gguf<R: std::io::Read + std::io::Seek>(
        content: &Content,
        reader: &mut R,
        device: &Device,
    ) -> std::result::Result<Self, String> {
        Self::from_gguf_with(content, reader, device, ForwardPath::Auto)
    }

    pub fn from_gguf_with<R: std::io::Read + std::io::Seek>(
        content: &Content,
        reader: &mut R,
        device: &Device,
        path: ForwardPath,
    ) -> std::result::Result<Self, String> {
        let config = LlamaConfig::from_gguf(content)?;
        let backend = match (path, device) {
            (ForwardPath::Auto, Device::Cpu) => {
                Backend::Cpu(cpu::CpuModel::from_gguf(config.clone(), content, reader)?)
            }
            _ => Backend::Tensors(tensors::TensorModel::from_gguf(
                config.clone(),
                content,
                reader,
                device,
            )?),
        };
        Ok(Self {
            config,
            cost: PassCost::of(content),
            device: device.clone(),
            backend,
        })
    }

    pub fn config(&self) -> &LlamaConfig {
        &self.config
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    pub fn pass_cost(&self) -> PassCost {
        self.cost
    }

    /// Bytes of cache one position takes over all layers: keys and values at half
    /// precision on our CPU path, at single precision on candle's.
    pub fn kv_bytes_per_token(&self) -> usize {
        let element = match self.backend {
            Backend::Cpu(_) => std::mem::size_of::<half::f16>(),
            Backend::Tensors(_) => std::mem::size_of::<f32>(),
        };
        self.config.layers * 2 * self.config.kv_width() * element
    }

    /// An empty cache with room for `expected` positions (it grows past that if needed,
    /// up to the context length).
    pub fn new_cache(&self, expected: usize) -> Result<KvCache> {
        let capacity = expected.clamp(1, self.config.context_length);
        let store = match &self.backend {
            Backend::Cpu(model) => CacheStore::Cpu(model.new_cache(capacity)),
            Backend::Tensors(model) => CacheStore::Tensors(model.new_cache(capacity)?),
        };
        Ok(KvCache { len: 0, store })
    }

    /// Runs one pass over `items` and returns the logits after each of each item's
    /// last `outputs` new tokens, items in order (`[Σ outputs, vocabulary]`). Every
    /// item's cache advances by its tokens.
    pub fn forward(&self, items: &mut [BatchItem<'_>]) -> Result<Tensor> {
        if items.is_empty() || items.iter().any(|item| item.tokens.is_empty()) {
            candle_core::bail!("a pass needs at least one token for every sequence");
        }
        if let Some(item) = items
            .iter()
            .find(|item| item.outputs == 0 || item.outputs > item.tokens.len())
        {
            candle_core::bail!(
                "a sequence asked for logits of {} of its {} tokens",
                item.outputs,
                item.tokens.len()
            );
        }
        for item in items.iter() {
            let needed = item.cache.len + item.tokens.len();
            if needed > self.config.context_length {
                candle_core::bail!(
                    "a sequence of {needed} tokens exceeds the context of {}",
                    self.config.context_length
                );
            }
        }
        let logits = match &self.backend {
            Backend::Cpu(model) => model.forward(&mut passes(items, |store| match store {
                CacheStore::Cpu(cache) => Some(cache),
                _ => None,
            })?)?,
            Backend::Tensors(model) => model.forward(&mut passes(items, |store| match store {
                CacheStore::Tensors(cache) => Some(cache),
                _ => None,
            })?)?,
        };
        for item in items.iter_mut() {
            item.cache.len += item.tokens.len();
        }
        Ok(logits)
    }
}

/// The backend's view of `items`: each one's tokens, position and own kind of cache
/// (`pick` refuses a cache made by a model on the other path).
fn passes<'a, C>(
    items: &'a mut [BatchItem<'_>],
    pick: impl Fn(&mut CacheStore) -> Option<&mut C>,
) -> Result<Vec<Pass<'a, C>>> {
    let mut passes = Vec::with_capacity(items.len());
    for item in items.iter_mut() {
        let position = item.cache.len;
        let Some(cache) = pick(&mut item.cache.store) else {
            candle_core::bail!("a cache from another model was passed");
        };
        passes.push(Pass {
            tokens: item.tokens,
            position,
            cache,
            outputs: item.outputs,
        });
    }
    Ok(passes)
}
