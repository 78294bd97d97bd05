//! A llama-architecture transformer over GGUF weights that runs many sequences in one
//! forward pass: the continuous-batching core.
//!
//! candle's `quantized_llama` keeps one KV cache per model instance and one position for
//! the whole batch, so sequences of different lengths cannot share a pass. Here the
//! weights are shared and immutable, each sequence owns a [`KvCache`], and a pass takes
//! any mix of sequences, each bringing one or more new tokens (a prompt chunk being
//! prefilled, or the token just sampled). All new tokens of all sequences go through the
//! weight matmuls as one matrix, so the weights are read once per pass rather than once
//! per sequence; only attention is done per sequence, against its own cache.

use candle_core::quantized::gguf_file::Content;
use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{DType, Device, Module, Result, Tensor};
use candle_transformers::quantized_nn::RmsNorm;

use crate::kernels::Q4_1Matrix;

/// Longest sequence (prompt and continuation) a model is run with, whatever its metadata
/// claims: the rotary tables and a full cache are sized by it.
pub const MAX_CONTEXT_TOKENS: usize = 4096;

/// The shape of a llama model, from its GGUF metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct LlamaConfig {
    pub layers: usize,
    pub hidden: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub rms_eps: f64,
    pub rope_base: f32,
    pub context_length: usize,
}

impl LlamaConfig {
    pub fn from_gguf(content: &Content) -> std::result::Result<Self, String> {
        let number = |key: &str| -> std::result::Result<u32, String> {
            content
                .metadata
                .get(key)
                .ok_or_else(|| format!("its metadata has no `{key}`"))?
                .to_u32()
                .map_err(|error| format!("`{key}` is not a number: {error}"))
        };
        let heads = number("llama.attention.head_count")? as usize;
        let kv_heads = number("llama.attention.head_count_kv")? as usize;
        let hidden = number("llama.embedding_length")? as usize;
        let layers = number("llama.block_count")? as usize;
        if heads == 0
            || kv_heads == 0
            || !hidden.is_multiple_of(heads)
            || !heads.is_multiple_of(kv_heads)
        {
            return Err(format!(
                "inconsistent attention shape: {heads} heads, {kv_heads} key/value heads, width {hidden}"
            ));
        }
        let head_dim = hidden / heads;
        let rope_dim = number("llama.rope.dimension_count").map_or(head_dim, |dim| dim as usize);
        if rope_dim != head_dim {
            return Err(format!(
                "partial rotary embeddings ({rope_dim} of {head_dim} dimensions) are not supported"
            ));
        }
        let float = |key: &str| content.metadata.get(key).and_then(|v| v.to_f32().ok());
        let context_length = number("llama.context_length")
            .map_or(MAX_CONTEXT_TOKENS, |length| length as usize)
            .min(MAX_CONTEXT_TOKENS);
        Ok(Self {
            layers,
            hidden,
            heads,
            kv_heads,
            head_dim,
            rms_eps: float("llama.attention.layer_norm_rms_epsilon").unwrap_or(1e-5) as f64,
            rope_base: float("llama.rope.freq_base").unwrap_or(10_000.0),
            context_length,
        })
    }

    fn kv_width(&self) -> usize {
        self.kv_heads * self.head_dim
    }

    /// Bytes of KV cache one token takes over all layers.
    pub fn kv_bytes_per_token(&self) -> usize {
        self.layers * 2 * self.kv_width() * std::mem::size_of::<f32>()
    }
}

/// A weight matrix: Q4_1 on the CPU through our kernel (candle has no SIMD one for it),
/// anything else through candle.
enum Linear {
    Q4_1(Q4_1Matrix),
    Candle(QMatMul),
}

impl Linear {
    fn new(tensor: QTensor) -> std::result::Result<Self, String> {
        if tensor.dtype() == GgmlDType::Q4_1 && tensor.device().is_cpu() {
            let (rows, columns) = tensor.shape().dims2().map_err(|e| e.to_string())?;
            let bytes = tensor.data().map_err(|e| e.to_string())?;
            return Q4_1Matrix::from_bytes(rows, columns, &bytes).map(Linear::Q4_1);
        }
        QMatMul::from_qtensor(tensor)
            .map(Linear::Candle)
            .map_err(|e| e.to_string())
    }

    /// `input` is `[tokens, columns]`.
    fn forward(&self, input: &Tensor) -> Result<Tensor> {
        match self {
            Linear::Candle(matmul) => matmul.forward(input),
            Linear::Q4_1(matrix) => {
                let tokens = input.dim(0)?;
                let values = input.flatten_all()?.to_vec1::<f32>()?;
                Tensor::from_vec(
                    matrix.matmul(&values),
                    (tokens, matrix.rows()),
                    input.device(),
                )
            }
        }
    }
}

struct Layer {
    attention_norm: RmsNorm,
    query: Linear,
    key: Linear,
    value: Linear,
    attention_out: Linear,
    ffn_norm: RmsNorm,
    gate: Linear,
    up: Linear,
    down: Linear,
}

/// One model's weights: loaded once, shared by every sequence a worker runs.
pub struct LlamaWeights {
    config: LlamaConfig,
    embeddings: Tensor,
    layers: Vec<Layer>,
    norm: RmsNorm,
    output: Linear,
    cos: Tensor,
    sin: Tensor,
    device: Device,
}

/// One sequence's keys and values, per layer, for the positions seen so far. Grows by
/// doubling, so a short answer never pays for the whole context.
pub struct KvCache {
    keys: Vec<Tensor>,
    values: Vec<Tensor>,
    len: usize,
    capacity: usize,
}

impl KvCache {
    /// Positions already in the cache: the position of the next token.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

/// One sequence's part of a pass: its new tokens, and its cache.
pub struct BatchItem<'a> {
    pub tokens: &'a [u32],
    pub cache: &'a mut KvCache,
}

impl LlamaWeights {
    pub fn from_gguf<R: std::io::Read + std::io::Seek>(
        content: &Content,
        reader: &mut R,
        device: &Device,
    ) -> std::result::Result<Self, String> {
        let config = LlamaConfig::from_gguf(content)?;
        let text = |error: candle_core::Error| error.to_string();
        let tensor = |reader: &mut R, name: &str| -> std::result::Result<QTensor, String> {
            content
                .tensor(reader, name, device)
                .map_err(|error| format!("tensor `{name}`: {error}"))
        };
        let matmul = |reader: &mut R, name: &str| -> std::result::Result<Linear, String> {
            Linear::new(tensor(reader, name)?)
        };
        let norm = |reader: &mut R, name: &str| -> std::result::Result<RmsNorm, String> {
            RmsNorm::from_qtensor(tensor(reader, name)?, config.rms_eps).map_err(text)
        };
        let embeddings_q = tensor(reader, "token_embd.weight")?;
        let embeddings = embeddings_q.dequantize(device).map_err(text)?;
        // Models with tied embeddings have no output matrix: the embeddings serve as one.
        let output = match content.tensor_infos.contains_key("output.weight") {
            true => matmul(reader, "output.weight")?,
            false => Linear::new(embeddings_q)?,
        };
        let mut layers = Vec::with_capacity(config.layers);
        for index in 0..config.layers {
            let name = |part: &str| format!("blk.{index}.{part}.weight");
            layers.push(Layer {
                attention_norm: norm(reader, &name("attn_norm"))?,
                query: matmul(reader, &name("attn_q"))?,
                key: matmul(reader, &name("attn_k"))?,
                value: matmul(reader, &name("attn_v"))?,
                attention_out: matmul(reader, &name("attn_output"))?,
                ffn_norm: norm(reader, &name("ffn_norm"))?,
                gate: matmul(reader, &name("ffn_gate"))?,
                up: matmul(reader, &name("ffn_up"))?,
                down: matmul(reader, &name("ffn_down"))?,
            });
        }
        let (cos, sin) = rotary_tables(&config, device).map_err(text)?;
        Ok(Self {
            norm: norm(reader, "output_norm.weight")?,
            config,
            embeddings,
            layers,
            output,
            cos,
            sin,
            device: device.clone(),
        })
    }

    pub fn config(&self) -> &LlamaConfig {
        &self.config
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// An empty cache with room for `expected` positions (it grows past that if needed,
    /// up to the context length).
    pub fn new_cache(&self, expected: usize) -> Result<KvCache> {
        let capacity = expected.clamp(1, self.config.context_length);
        let (keys, values) = self.cache_buffers(capacity)?;
        Ok(KvCache {
            keys,
            values,
            len: 0,
            capacity,
        })
    }

    fn cache_buffers(&self, capacity: usize) -> Result<(Vec<Tensor>, Vec<Tensor>)> {
        let shape = (1, self.config.kv_heads, capacity, self.config.head_dim);
        let buffer = || Tensor::zeros(shape, DType::F32, &self.device);
        let keys = (0..self.config.layers)
            .map(|_| buffer())
            .collect::<Result<_>>()?;
        let values = (0..self.config.layers)
            .map(|_| buffer())
            .collect::<Result<_>>()?;
        Ok((keys, values))
    }

    fn reserve(&self, cache: &mut KvCache, needed: usize) -> Result<()> {
        if needed <= cache.capacity {
            return Ok(());
        }
        if needed > self.config.context_length {
            candle_core::bail!(
                "a sequence of {needed} tokens exceeds the context of {}",
                self.config.context_length
            );
        }
        let capacity = (cache.capacity * 2)
            .max(needed)
            .min(self.config.context_length);
        let (keys, values) = self.cache_buffers(capacity)?;
        for (new, old) in keys.iter().zip(&cache.keys) {
            new.slice_set(&old.narrow(2, 0, cache.len)?.contiguous()?, 2, 0)?;
        }
        for (new, old) in values.iter().zip(&cache.values) {
            new.slice_set(&old.narrow(2, 0, cache.len)?.contiguous()?, 2, 0)?;
        }
        cache.keys = keys;
        cache.values = values;
        cache.capacity = capacity;
        Ok(())
    }

    /// Runs one pass over `items` and returns the logits after each item's last new
    /// token, one row per item (`[items, vocabulary]`). Every item's cache advances by
    /// its tokens.
    pub fn forward(&self, items: &mut [BatchItem<'_>]) -> Result<Tensor> {
        if items.is_empty() || items.iter().any(|item| item.tokens.is_empty()) {
            candle_core::bail!("a pass needs at least one token for every sequence");
        }
        for item in items.iter_mut() {
            let needed = item.cache.len + item.tokens.len();
            self.reserve(item.cache, needed)?;
        }
        let ids: Vec<u32> = items.iter().flat_map(|item| item.tokens).copied().collect();
        let mut hidden = self
            .embeddings
            .index_select(&Tensor::new(ids.as_slice(), &self.device)?, 0)?;
        for (index, layer) in self.layers.iter().enumerate() {
            let normed = layer.attention_norm.forward(&hidden)?;
            let queries = layer.query.forward(&normed)?;
            let keys = layer.key.forward(&normed)?;
            let values = layer.value.forward(&normed)?;
            let mut attended = Vec::with_capacity(items.len());
            let mut start = 0;
            for item in items.iter() {
                let count = item.tokens.len();
                attended.push(self.attend(
                    index,
                    &queries.narrow(0, start, count)?,
                    &keys.narrow(0, start, count)?,
                    &values.narrow(0, start, count)?,
                    item.cache,
                )?);
                start += count;
            }
            let attended = Tensor::cat(&attended, 0)?;
            hidden = (layer.attention_out.forward(&attended)? + hidden)?;
            let normed = layer.ffn_norm.forward(&hidden)?;
            let gate = candle_nn::ops::silu(&layer.gate.forward(&normed)?)?;
            let feed_forward = layer.down.forward(&(gate * layer.up.forward(&normed)?)?)?;
            hidden = (feed_forward + hidden)?;
        }
        let mut last_rows = Vec::with_capacity(items.len());
        let mut end = 0u32;
        for item in items.iter_mut() {
            end += item.tokens.len() as u32;
            last_rows.push(end - 1);
            item.cache.len += item.tokens.len();
        }
        let last = hidden.index_select(&Tensor::new(last_rows.as_slice(), &self.device)?, 0)?;
        self.output.forward(&self.norm.forward(&last)?)
    }

    /// Attention of one sequence's `count` new tokens (rows of `queries`, `keys`,
    /// `values`) over its cache plus themselves, in layer `layer`. Writes the new keys and
    /// values into the cache at its current length (which the caller advances after the
    /// last layer).
    fn attend(
        &self,
        layer: usize,
        queries: &Tensor,
        keys: &Tensor,
        values: &Tensor,
        cache: &KvCache,
    ) -> Result<Tensor> {
        let LlamaConfig {
            heads,
            kv_heads,
            head_dim,
            ..
        } = self.config;
        let count = queries.dim(0)?;
        let position = cache.len;
        let heads_first = |tensor: &Tensor, heads: usize| {
            tensor
                .reshape((count, heads, head_dim))?
                .transpose(0, 1)?
                .unsqueeze(0)?
                .contiguous()
        };
        let cos = self.cos.narrow(0, position, count)?;
        let sin = self.sin.narrow(0, position, count)?;
        let queries = candle_nn::rotary_emb::rope_i(&heads_first(queries, heads)?, &cos, &sin)?;
        let keys = candle_nn::rotary_emb::rope_i(&heads_first(keys, kv_heads)?, &cos, &sin)?;
        let values = heads_first(values, kv_heads)?;
        cache.keys[layer].slice_set(&keys, 2, position)?;
        cache.values[layer].slice_set(&values, 2, position)?;
        let seen = position + count;
        let all_keys = cache.keys[layer].narrow(2, 0, seen)?;
        let all_values = cache.values[layer].narrow(2, 0, seen)?;
        // Grouped-query attention without copying keys: the query heads that share a
        // key/value head are laid side by side as extra rows of that head.
        let group = heads / kv_heads;
        let queries = (queries.reshape((1, kv_heads, group * count, head_dim))?
            * (1.0 / (head_dim as f64).sqrt()))?;
        let mut scores = queries.matmul(&all_keys.t()?)?;
        if count > 1 {
            let mask = causal_mask(group, count, position, &self.device)?;
            scores = scores.broadcast_add(&mask)?;
        }
        let weights = candle_nn::ops::softmax_last_dim(&scores)?;
        weights
            .matmul(&all_values)?
            .reshape((heads, count, head_dim))?
            .transpose(0, 1)?
            .reshape((count, heads * head_dim))
    }
}

/// Additive mask for `count` new tokens starting at `position`, for `group` query heads
/// stacked as rows (row r is token r % count): a token sees every cached position and the
/// new tokens up to itself.
fn causal_mask(group: usize, count: usize, position: usize, device: &Device) -> Result<Tensor> {
    let seen = position + count;
    let mask: Vec<f32> = (0..group * count)
        .flat_map(|row| {
            let token = row % count;
            (0..seen).map(move |column| {
                if column > position + token {
                    f32::NEG_INFINITY
                } else {
                    0.0
                }
            })
        })
        .collect();
    Tensor::from_vec(mask, (group * count, seen), device)
}

/// cos and sin of every position's rotation angles, `[context, head_dim / 2]`.
fn rotary_tables(config: &LlamaConfig, device: &Device) -> Result<(Tensor, Tensor)> {
    let inverse: Vec<f32> = (0..config.head_dim)
        .step_by(2)
        .map(|i| 1.0 / config.rope_base.powf(i as f32 / config.head_dim as f32))
        .collect();
    let inverse = Tensor::new(inverse.as_slice(), device)?.unsqueeze(0)?;
    let positions = Tensor::arange(0u32, config.context_length as u32, device)?
        .to_dtype(DType::F32)?
        .unsqueeze(1)?;
    let angles = positions.matmul(&inverse)?;
    Ok((angles.cos()?, angles.sin()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mask_hides_later_new_tokens_only() {
        let mask = causal_mask(2, 2, 1, &Device::Cpu).unwrap();
        let rows: Vec<Vec<f32>> = mask.to_vec2().unwrap();
        let inf = f32::NEG_INFINITY;
        assert_eq!(
            rows,
            vec![
                vec![0.0, 0.0, inf],
                vec![0.0, 0.0, 0.0],
                vec![0.0, 0.0, inf],
                vec![0.0, 0.0, 0.0],
            ]
        );
    }
}
