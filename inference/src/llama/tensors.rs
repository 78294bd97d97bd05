//! The batched forward pass in candle tensors: the path for GPUs (the `cuda` feature),
//! and on the CPU the independent implementation the fast path is checked against. It
//! uses candle's own quantised matmuls and attention ops throughout.

use candle_core::quantized::gguf_file::Content;
use candle_core::quantized::{QMatMul, QTensor};
use candle_core::{DType, Device, Module, Result, Tensor};
use candle_transformers::quantized_nn::RmsNorm;

use super::{LlamaConfig, Pass, Rotation};

struct Layer {
    attention_norm: RmsNorm,
    query: QMatMul,
    key: QMatMul,
    value: QMatMul,
    /// Added to the query, key and value projections, where the file has them (qwen2).
    qkv_bias: [Option<Tensor>; 3],
    /// Norms over each query head and each key head, where the file has them (qwen3).
    head_norms: Option<[RmsNorm; 2]>,
    attention_out: QMatMul,
    ffn_norm: RmsNorm,
    gate: QMatMul,
    up: QMatMul,
    down: QMatMul,
}

/// One model's weights: loaded once, shared by every sequence a worker runs.
pub(super) struct TensorModel {
    config: LlamaConfig,
    embeddings: Tensor,
    layers: Vec<Layer>,
    norm: RmsNorm,
    output: QMatMul,
    cos: Tensor,
    sin: Tensor,
    device: Device,
}

/// One sequence's keys and values, per layer, `[1, kv_heads, capacity, head_dim]`. Grows
/// by doubling, so a short answer never pays for the whole context.
pub(super) struct TensorCache {
    keys: Vec<Tensor>,
    values: Vec<Tensor>,
    capacity: usize,
}

impl TensorModel {
    pub(super) fn from_gguf<R: std::io::Read + std::io::Seek>(
        config: LlamaConfig,
        content: &Content,
        reader: &mut R,
        device: &Device,
    ) -> std::result::Result<Self, String> {
        let text = |error: candle_core::Error| error.to_string();
        let tensor = |reader: &mut R, name: &str| -> std::result::Result<QTensor, String> {
            content
                .tensor(reader, name, device)
                .map_err(|error| format!("tensor `{name}`: {error}"))
        };
        let matmul = |reader: &mut R, name: &str| -> std::result::Result<QMatMul, String> {
            QMatMul::from_qtensor(tensor(reader, name)?).map_err(text)
        };
        let norm = |reader: &mut R, name: &str| -> std::result::Result<RmsNorm, String> {
            RmsNorm::from_qtensor(tensor(reader, name)?, config.rms_eps).map_err(text)
        };
        let embeddings_q = tensor(reader, "token_embd.weight")?;
        let embeddings = embeddings_q.dequantize(device).map_err(text)?;
        // Models with tied embeddings have no output matrix: the embeddings serve as one.
        let output = match content.tensor_infos.contains_key("output.weight") {
            true => matmul(reader, "output.weight")?,
            false => QMatMul::from_qtensor(embeddings_q).map_err(text)?,
        };
        let present = |name: &str| content.tensor_infos.contains_key(name);
        let bias = |reader: &mut R, name: &str| -> std::result::Result<Option<Tensor>, String> {
            match present(name) {
                true => Ok(Some(
                    tensor(reader, name)?.dequantize(device).map_err(text)?,
                )),
                false => Ok(None),
            }
        };
        let mut layers = Vec::with_capacity(config.layers);
        for index in 0..config.layers {
            let name = |part: &str| format!("blk.{index}.{part}.weight");
            let (query_norm, key_norm) = (name("attn_q_norm"), name("attn_k_norm"));
            let head_norms = match (present(&query_norm), present(&key_norm)) {
                (true, true) => Some([norm(reader, &query_norm)?, norm(reader, &key_norm)?]),
                (false, false) => None,
                _ => {
                    return Err(format!(
                        "layer {index}: a norm for one of query and key heads but not the other"
                    ));
                }
            };
            let biases = |part: &str| format!("blk.{index}.{part}.bias");
            layers.push(Layer {
                attention_norm: norm(reader, &name("attn_norm"))?,
                query: matmul(reader, &name("attn_q"))?,
                key: matmul(reader, &name("attn_k"))?,
                value: matmul(reader, &name("attn_v"))?,
                qkv_bias: [
                    bias(reader, &biases("attn_q"))?,
                    bias(reader, &biases("attn_k"))?,
                    bias(reader, &biases("attn_v"))?,
                ],
                head_norms,
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

    /// An empty cache with room for `capacity` positions (it grows past that if needed).
    pub(super) fn new_cache(&self, capacity: usize) -> Result<TensorCache> {
        let (keys, values) = self.cache_buffers(capacity)?;
        Ok(TensorCache {
            keys,
            values,
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

    fn reserve(&self, cache: &mut TensorCache, len: usize, needed: usize) -> Result<()> {
        if needed <= cache.capacity {
            return Ok(());
        }
        let capacity = (cache.capacity * 2)
            .max(needed)
            .min(self.config.context_length);
        let (keys, values) = self.cache_buffers(capacity)?;
        for (new, old) in keys.iter().zip(&cache.keys) {
            new.slice_set(&old.narrow(2, 0, len)?.contiguous()?, 2, 0)?;
        }
        for (new, old) in values.iter().zip(&cache.values) {
            new.slice_set(&old.narrow(2, 0, len)?.contiguous()?, 2, 0)?;
        }
        cache.keys = keys;
        cache.values = values;
        cache.capacity = capacity;
        Ok(())
    }

    /// One pass over `items`: the logits after each item's last `outputs` new tokens
    /// (`[Σ outputs, vocabulary]`).
    pub(super) fn forward(&self, items: &mut [Pass<'_, TensorCache>]) -> Result<Tensor> {
        for item in items.iter_mut() {
            let needed = item.position + item.tokens.len();
            self.reserve(item.cache, item.position, needed)?;
        }
        let ids: Vec<u32> = items.iter().flat_map(|item| item.tokens).copied().collect();
        let mut hidden = self
            .embeddings
            .index_select(&Tensor::new(ids.as_slice(), &self.device)?, 0)?;
        for (index, layer) in self.layers.iter().enumerate() {
            let normed = layer.attention_norm.forward(&hidden)?;
            let [queries, keys, values] =
                layer.queries_keys_values(&normed, self.config.head_dim)?;
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
                    item.position,
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
        let rows: Vec<u32> = Pass::output_rows(items)
            .into_iter()
            .map(|row| row as u32)
            .collect();
        let last = hidden.index_select(&Tensor::new(rows.as_slice(), &self.device)?, 0)?;
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
        cache: &TensorCache,
        position: usize,
    ) -> Result<Tensor> {
        let LlamaConfig {
            heads,
            kv_heads,
            head_dim,
            ..
        } = self.config;
        let count = queries.dim(0)?;
        let heads_first = |tensor: &Tensor, heads: usize| {
            tensor
                .reshape((count, heads, head_dim))?
                .transpose(0, 1)?
                .unsqueeze(0)?
                .contiguous()
        };
        let cos = self.cos.narrow(0, position, count)?;
        let sin = self.sin.narrow(0, position, count)?;
        let rotate = |tensor: &Tensor| match self.config.rotation {
            Rotation::Adjacent => candle_nn::rotary_emb::rope_i(tensor, &cos, &sin),
            Rotation::Halves => candle_nn::rotary_emb::rope(tensor, &cos, &sin),
        };
        let queries = rotate(&heads_first(queries, heads)?)?;
        let keys = rotate(&heads_first(keys, kv_heads)?)?;
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

impl Layer {
    /// The query, key and value projections of `normed`, with their biases added and
    /// their heads normed where the model has them.
    fn queries_keys_values(&self, normed: &Tensor, head_dim: usize) -> Result<[Tensor; 3]> {
        let mut projected = [
            self.query.forward(normed)?,
            self.key.forward(normed)?,
            self.value.forward(normed)?,
        ];
        for (output, bias) in projected.iter_mut().zip(&self.qkv_bias) {
            if let Some(bias) = bias {
                *output = output.broadcast_add(bias)?;
            }
        }
        if let Some(norms) = &self.head_norms {
            for (output, norm) in projected.iter_mut().zip(norms) {
                let (rows, width) = output.dims2()?;
                *output = norm
                    .forward(&output.reshape((rows, width / head_dim, head_dim))?)?
                    .reshape((rows, width))?;
            }
        }
        Ok(projected)
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
