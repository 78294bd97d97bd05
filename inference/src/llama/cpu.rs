//! The batched forward pass in plain Rust on the CPU: our quantised kernels for the
//! weight products, and attention, rotary embeddings, norms and activations as loops
//! over slices. At this model size a pass is hundreds of small operations per layer, and
//! a tensor library's per-op overhead (allocation, shape checks, dispatch) outweighed
//! the arithmetic; here nothing is allocated per head and attention runs in parallel
//! over sequences and heads.

use candle_core::quantized::gguf_file::Content;
use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{Device, Module, Result, Tensor};
use half::f16;
use half::slice::HalfFloatSliceExt;
use rayon::prelude::*;

use super::{LlamaConfig, Pass, Rotation, attention};
use crate::kernels::{Q4_1Matrix, Q8_0Matrix};

/// A weight matrix with our kernel where we have one, candle's otherwise.
enum Matrix {
    Q4_1(Q4_1Matrix),
    Q8_0(Q8_0Matrix),
    Other { matmul: QMatMul, rows: usize },
}

impl Matrix {
    fn new(tensor: QTensor) -> std::result::Result<Self, String> {
        let (rows, columns) = tensor.shape().dims2().map_err(|e| e.to_string())?;
        match tensor.dtype() {
            GgmlDType::Q4_1 => {
                let bytes = tensor.data().map_err(|e| e.to_string())?;
                Q4_1Matrix::from_bytes(rows, columns, &bytes).map(Matrix::Q4_1)
            }
            GgmlDType::Q8_0 => {
                let bytes = tensor.data().map_err(|e| e.to_string())?;
                Q8_0Matrix::from_bytes(rows, columns, &bytes).map(Matrix::Q8_0)
            }
            _ => QMatMul::from_qtensor(tensor)
                .map(|matmul| Matrix::Other { matmul, rows })
                .map_err(|e| e.to_string()),
        }
    }

    fn rows(&self) -> usize {
        match self {
            Matrix::Q4_1(matrix) => matrix.rows(),
            Matrix::Q8_0(matrix) => matrix.rows(),
            Matrix::Other { rows, .. } => *rows,
        }
    }

    /// `input` is `tokens × columns`; returns `tokens × rows`.
    fn matmul(&self, input: &[f32], tokens: usize) -> Result<Vec<f32>> {
        match self {
            Matrix::Q4_1(matrix) => Ok(matrix.matmul(input)),
            Matrix::Q8_0(matrix) => Ok(matrix.matmul(input)),
            Matrix::Other { matmul, .. } => {
                let columns = input.len() / tokens.max(1);
                let input = Tensor::from_slice(input, (tokens, columns), &Device::Cpu)?;
                matmul.forward(&input)?.flatten_all()?.to_vec1()
            }
        }
    }
}

/// Projections of the same input. Stacked into one matrix when their types allow, so
/// the input is quantised once and the pool is dispatched once (at one token per pass,
/// dispatch and quantisation are a good part of a small product's cost).
enum Projections {
    Stacked { matrix: Matrix, rows: Vec<usize> },
    Separate(Vec<Matrix>),
}

impl Projections {
    fn new(parts: Vec<Matrix>) -> std::result::Result<Self, String> {
        let rows: Vec<usize> = parts.iter().map(Matrix::rows).collect();
        if parts.iter().all(|part| matches!(part, Matrix::Q4_1(_))) && Q4_1Matrix::stackable(&rows)
        {
            let q4: Vec<Q4_1Matrix> = parts
                .into_iter()
                .filter_map(|part| match part {
                    Matrix::Q4_1(matrix) => Some(matrix),
                    _ => None,
                })
                .collect();
            Ok(Projections::Stacked {
                matrix: Matrix::Q4_1(Q4_1Matrix::stack(q4)?),
                rows,
            })
        } else {
            Ok(Projections::Separate(parts))
        }
    }

    /// Each projection's output width.
    fn rows(&self) -> Vec<usize> {
        match self {
            Projections::Stacked { rows, .. } => rows.clone(),
            Projections::Separate(parts) => parts.iter().map(Matrix::rows).collect(),
        }
    }

    /// One output per projection, each `tokens × its rows`.
    fn matmul(&self, input: &[f32], tokens: usize) -> Result<Vec<Vec<f32>>> {
        match self {
            Projections::Separate(parts) => {
                if parts.is_empty() {
                    candle_core::bail!("a layer's projections have different input widths");
                }
                parts
                    .iter()
                    .map(|part| part.matmul(input, tokens))
                    .collect()
            }
            Projections::Stacked { matrix, rows } => {
                let all = matrix.matmul(input, tokens)?;
                let width: usize = rows.iter().sum();
                let mut outputs: Vec<Vec<f32>> = rows
                    .iter()
                    .map(|r| Vec::with_capacity(r * tokens))
                    .collect();
                for token in all.chunks_exact(width) {
                    let mut start = 0;
                    for (output, r) in outputs.iter_mut().zip(rows) {
                        output.extend_from_slice(&token[start..start + r]);
                        start += r;
                    }
                }
                Ok(outputs)
            }
        }
    }
}

struct Layer {
    attention_norm: Vec<f32>,
    /// Query, key and value.
    qkv: Projections,
    /// Added to the query, key and value projections, where the file has them (qwen2).
    qkv_bias: [Option<Vec<f32>>; 3],
    /// The weights of the norms over each query head and each key head, where the file
    /// has them (qwen3).
    head_norms: Option<[Vec<f32>; 2]>,
    attention_out: Matrix,
    ffn_norm: Vec<f32>,
    /// Gate and up.
    gate_up: Projections,
    down: Matrix,
}

impl Layer {
    /// The widths a pass relies on, so that a file with a wrong one is refused at load
    /// rather than failing (or reading out of bounds) in a pass.
    fn check(&self, config: &LlamaConfig) -> std::result::Result<(), String> {
        let (query, kv) = (config.query_width(), config.kv_width());
        let projections = self.qkv.rows();
        if projections != [query, kv, kv] {
            return Err(format!(
                "query, key and value project to {projections:?} values; the heads need [{query}, {kv}, {kv}]"
            ));
        }
        let biases = self.qkv_bias.iter().zip([query, kv, kv]);
        if let Some((bias, width)) = biases
            .filter_map(|(bias, width)| Some((bias.as_ref()?, width)))
            .find(|(bias, width)| bias.len() != *width)
        {
            return Err(format!(
                "a projection bias has {} values for {width} outputs",
                bias.len()
            ));
        }
        if let Some(norm) = self
            .head_norms
            .iter()
            .flatten()
            .find(|norm| norm.len() != config.head_dim)
        {
            return Err(format!(
                "a head norm has {} weights for heads {} wide",
                norm.len(),
                config.head_dim
            ));
        }
        if self.attention_out.rows() != config.hidden {
            return Err(format!(
                "attn_output projects to {} values; the model is {} wide",
                self.attention_out.rows(),
                config.hidden
            ));
        }
        Ok(())
    }
}

pub(super) struct CpuModel {
    config: LlamaConfig,
    /// Token embeddings. Rows are decoded on demand from the quantised table (the
    /// default model's is Q8_0: 30 MB, not 113 MB of floats); `dense_embeddings` holds
    /// them as floats for types our kernels do not read.
    embeddings: Matrix,
    dense_embeddings: Option<Vec<f32>>,
    layers: Vec<Layer>,
    norm: Vec<f32>,
    /// `None`: the embeddings serve as the output layer (tied weights).
    output: Option<Matrix>,
    /// cos and sin of each position's rotation angles, `[context][head_dim / 2]`.
    cos: Vec<f32>,
    sin: Vec<f32>,
}

/// One sequence's keys and values per layer, `[position][kv_heads × head_dim]`, at half
/// precision (as llama.cpp keeps them): half the memory per sequence, and half the bytes
/// attention reads. Appending a token is an `extend`; the vector grows as it needs.
pub(super) struct CpuCache {
    keys: Vec<Vec<f16>>,
    values: Vec<Vec<f16>>,
    /// Values per position in one layer: key/value heads × head width.
    width: usize,
}

impl CpuCache {
    /// Positions `range` of every layer, copied: the caller ([`super::KvCache::copy`])
    /// holds `range` to the positions the cache has.
    pub(super) fn copy(&self, range: std::ops::Range<usize>) -> super::Positions {
        let span = range.start * self.width..range.end * self.width;
        let copy = |layers: &[Vec<f16>]| -> Vec<Vec<f16>> {
            layers
                .iter()
                .map(|layer| layer[span.clone()].to_vec())
                .collect()
        };
        super::Positions {
            count: range.len(),
            keys: copy(&self.keys),
            values: copy(&self.values),
        }
    }

    /// Keeps the first `len` positions.
    pub(super) fn truncate(&mut self, len: usize) {
        for layer in self.keys.iter_mut().chain(&mut self.values) {
            layer.truncate(len * self.width);
        }
    }

    /// Appends copied positions after those held.
    pub(super) fn append(&mut self, positions: &super::Positions) {
        for (layer, copied) in self.keys.iter_mut().zip(&positions.keys) {
            layer.extend_from_slice(copied);
        }
        for (layer, copied) in self.values.iter_mut().zip(&positions.values) {
            layer.extend_from_slice(copied);
        }
    }
}

/// Reads a GGUF file's tensors as the CPU path keeps them.
struct Reader<'a, R> {
    content: &'a Content,
    reader: &'a mut R,
}

impl<R: std::io::Read + std::io::Seek> Reader<'_, R> {
    fn tensor(&mut self, name: &str) -> std::result::Result<QTensor, String> {
        self.content
            .tensor(self.reader, name, &Device::Cpu)
            .map_err(|error| format!("tensor `{name}`: {error}"))
    }

    fn vector(&mut self, name: &str) -> std::result::Result<Vec<f32>, String> {
        dense(&self.tensor(name)?).map_err(|error| format!("tensor `{name}`: {error}"))
    }

    fn matrix(&mut self, name: &str) -> std::result::Result<Matrix, String> {
        Matrix::new(self.tensor(name)?).map_err(|error| format!("tensor `{name}`: {error}"))
    }

    /// `name` as a vector, where the file has it.
    fn optional(&mut self, name: &str) -> std::result::Result<Option<Vec<f32>>, String> {
        match self.content.tensor_infos.contains_key(name) {
            true => self.vector(name).map(Some),
            false => Ok(None),
        }
    }

    /// Layer `index`, checked against `config`.
    fn layer(&mut self, index: usize, config: &LlamaConfig) -> std::result::Result<Layer, String> {
        let name = |part: &str| format!("blk.{index}.{part}.weight");
        let bias = |part: &str| format!("blk.{index}.{part}.bias");
        let head_norms = match (
            self.optional(&name("attn_q_norm"))?,
            self.optional(&name("attn_k_norm"))?,
        ) {
            (Some(query), Some(key)) => Some([query, key]),
            (None, None) => None,
            _ => return Err("a norm for one of query and key heads but not the other".into()),
        };
        let layer = Layer {
            attention_norm: self.vector(&name("attn_norm"))?,
            qkv: Projections::new(vec![
                self.matrix(&name("attn_q"))?,
                self.matrix(&name("attn_k"))?,
                self.matrix(&name("attn_v"))?,
            ])?,
            qkv_bias: [
                self.optional(&bias("attn_q"))?,
                self.optional(&bias("attn_k"))?,
                self.optional(&bias("attn_v"))?,
            ],
            head_norms,
            attention_out: self.matrix(&name("attn_output"))?,
            ffn_norm: self.vector(&name("ffn_norm"))?,
            gate_up: Projections::new(vec![
                self.matrix(&name("ffn_gate"))?,
                self.matrix(&name("ffn_up"))?,
            ])?,
            down: self.matrix(&name("ffn_down"))?,
        };
        layer.check(config)?;
        Ok(layer)
    }
}

/// Every value of `tensor` as `f32`s.
fn dense(tensor: &QTensor) -> Result<Vec<f32>> {
    tensor.dequantize(&Device::Cpu)?.flatten_all()?.to_vec1()
}

impl CpuModel {
    pub(super) fn from_gguf<R: std::io::Read + std::io::Seek>(
        config: LlamaConfig,
        content: &Content,
        reader: &mut R,
    ) -> std::result::Result<Self, String> {
        let mut file = Reader { content, reader };
        let table = file.tensor("token_embd.weight")?;
        let (_, width) = table.shape().dims2().map_err(|e| e.to_string())?;
        if width != config.hidden {
            return Err(format!(
                "token_embd.weight is {width} wide; the model is {}",
                config.hidden
            ));
        }
        let output = match content.tensor_infos.contains_key("output.weight") {
            true => Some(file.matrix("output.weight")?),
            false => None,
        };
        let dense_embeddings = match table.dtype() {
            GgmlDType::Q4_1 | GgmlDType::Q8_0 => None,
            _ => Some(dense(&table).map_err(|e| e.to_string())?),
        };
        let embeddings = Matrix::new(table)?;
        let layers = (0..config.layers)
            .map(|index| {
                file.layer(index, &config)
                    .map_err(|problem| format!("layer {index}: {problem}"))
            })
            .collect::<std::result::Result<Vec<Layer>, String>>()?;
        let (cos, sin) = rotary_tables(&config);
        Ok(Self {
            norm: file.vector("output_norm.weight")?,
            config,
            embeddings,
            dense_embeddings,
            layers,
            output,
            cos,
            sin,
        })
    }

    pub(super) fn new_cache(&self, capacity: usize) -> CpuCache {
        let width = self.config.kv_heads * self.config.head_dim;
        let buffer = || Vec::with_capacity(capacity * width);
        CpuCache {
            keys: (0..self.config.layers).map(|_| buffer()).collect(),
            values: (0..self.config.layers).map(|_| buffer()).collect(),
            width,
        }
    }

    fn embed(&self, token: u32, out: &mut [f32]) -> Result<()> {
        let index = token as usize;
        let hidden = self.config.hidden;
        if index >= self.embeddings.rows() {
            candle_core::bail!("token id {token} is outside the vocabulary");
        }
        match (&self.embeddings, &self.dense_embeddings) {
            (Matrix::Q8_0(table), _) => table.row(index, out),
            (Matrix::Q4_1(table), _) => table.row(index, out),
            (_, Some(table)) => out.copy_from_slice(&table[index * hidden..(index + 1) * hidden]),
            (_, None) => candle_core::bail!("the embedding table could not be read"),
        }
        Ok(())
    }

    /// One pass, run inside our thread pool: the products and attention of a pass
    /// dispatch hundreds of parallel loops, and from inside the pool each one starts
    /// without waking a thread from outside it.
    pub(super) fn forward(&self, items: &mut [Pass<'_, CpuCache>]) -> Result<Tensor> {
        match pool() {
            Some(pool) => pool.install(|| self.forward_in_pool(items)),
            None => self.forward_in_pool(items),
        }
    }

    fn forward_in_pool(&self, items: &mut [Pass<'_, CpuCache>]) -> Result<Tensor> {
        let hidden_width = self.config.hidden;
        let query_width = self.config.query_width();
        let kv_width = self.config.kv_width();
        let tokens: usize = items.iter().map(|item| item.tokens.len()).sum();
        let mut hidden = vec![0f32; tokens * hidden_width];
        for (row, token) in items.iter().flat_map(|item| item.tokens.iter()).enumerate() {
            self.embed(
                *token,
                &mut hidden[row * hidden_width..(row + 1) * hidden_width],
            )?;
        }
        let mut normed = vec![0f32; hidden.len()];
        for (index, layer) in self.layers.iter().enumerate() {
            rms_norm(
                &hidden,
                &layer.attention_norm,
                self.config.rms_eps,
                &mut normed,
            );
            let [mut queries, mut keys, values] =
                self.queries_keys_values(layer, &normed, tokens)?;
            let mut start = 0;
            for item in items.iter_mut() {
                let count = item.tokens.len();
                for t in 0..count {
                    let position = item.position + t;
                    let row = start + t;
                    self.rotate(
                        &mut queries[row * query_width..(row + 1) * query_width],
                        position,
                    );
                    self.rotate(&mut keys[row * kv_width..(row + 1) * kv_width], position);
                }
                let rows = start * kv_width..(start + count) * kv_width;
                extend_half(&mut item.cache.keys[index], &keys[rows.clone()]);
                extend_half(&mut item.cache.values[index], &values[rows]);
                start += count;
            }
            let attended = self.attend(index, items, &queries);
            let projected = layer.attention_out.matmul(&attended, tokens)?;
            add_in_place(&mut hidden, &projected);
            rms_norm(&hidden, &layer.ffn_norm, self.config.rms_eps, &mut normed);
            let [mut gate, up]: [Vec<f32>; 2] =
                layer
                    .gate_up
                    .matmul(&normed, tokens)?
                    .try_into()
                    .map_err(|_| candle_core::Error::Msg("expected two projections".into()))?;
            silu_times(&mut gate, &up);
            let down = layer.down.matmul(&gate, tokens)?;
            add_in_place(&mut hidden, &down);
        }
        let rows = Pass::output_rows(items);
        let mut last = Vec::with_capacity(rows.len() * hidden_width);
        for row in &rows {
            last.extend_from_slice(&hidden[row * hidden_width..(row + 1) * hidden_width]);
        }
        let mut last_normed = vec![0f32; last.len()];
        rms_norm(&last, &self.norm, self.config.rms_eps, &mut last_normed);
        let output = self.output.as_ref().unwrap_or(&self.embeddings);
        let logits = output.matmul(&last_normed, rows.len())?;
        Tensor::from_vec(logits, (rows.len(), output.rows()), &Device::Cpu)
    }

    /// The layer's query, key and value projections of `normed` (`tokens` rows), with
    /// their biases added and their heads normed where the model has them.
    fn queries_keys_values(
        &self,
        layer: &Layer,
        normed: &[f32],
        tokens: usize,
    ) -> Result<[Vec<f32>; 3]> {
        let mut projected: [Vec<f32>; 3] = layer
            .qkv
            .matmul(normed, tokens)?
            .try_into()
            .map_err(|_| candle_core::Error::Msg("expected three projections".into()))?;
        for (output, bias) in projected.iter_mut().zip(&layer.qkv_bias) {
            if let Some(bias) = bias {
                for row in output.chunks_exact_mut(bias.len()) {
                    add_in_place(row, bias);
                }
            }
        }
        if let Some([query_norm, key_norm]) = &layer.head_norms {
            let eps = self.config.rms_eps;
            for (output, weight) in projected.iter_mut().zip([query_norm, key_norm]) {
                rms_norm_in_place(output, weight, eps);
            }
        }
        Ok(projected)
    }

    /// Rotary embedding of every head of one row at `position`, its pairs as the model's
    /// [`Rotation`] says.
    fn rotate(&self, row: &mut [f32], position: usize) {
        let half = self.config.head_dim / 2;
        let cos = &self.cos[position * half..(position + 1) * half];
        let sin = &self.sin[position * half..(position + 1) * half];
        let pair = |i: usize| match self.config.rotation {
            Rotation::Adjacent => (2 * i, 2 * i + 1),
            Rotation::Halves => (i, i + half),
        };
        for head in row.chunks_exact_mut(self.config.head_dim) {
            for i in 0..half {
                let (a, b) = pair(i);
                let (x0, x1) = (head[a], head[b]);
                head[a] = x0 * cos[i] - x1 * sin[i];
                head[b] = x0 * sin[i] + x1 * cos[i];
            }
        }
    }

    /// Causal attention of every item's new tokens over its cache (which already holds
    /// them), one job per item and key/value head (see [`attention`]). Returns
    /// `tokens × heads × head_dim`.
    fn attend(&self, layer: usize, items: &[Pass<'_, CpuCache>], queries: &[f32]) -> Vec<f32> {
        let LlamaConfig {
            heads,
            kv_heads,
            head_dim,
            ..
        } = self.config;
        let width = self.config.query_width();
        let group = heads / kv_heads;
        let mut starts = Vec::with_capacity(items.len());
        let mut start = 0;
        for item in items {
            starts.push(start);
            start += item.tokens.len();
        }
        let jobs: Vec<(usize, usize)> = (0..items.len())
            .flat_map(|item| (0..kv_heads).map(move |kv_head| (item, kv_head)))
            .collect();
        let results: Vec<Vec<f32>> = jobs
            .par_iter()
            .map(|&(index, kv_head)| {
                let item = &items[index];
                let shape = attention::HeadGroup {
                    head_dim,
                    group,
                    kv_width: kv_heads * head_dim,
                    kv_head,
                    scale: 1.0 / (head_dim as f32).sqrt(),
                };
                let query = |t: usize, g: usize| {
                    let at = (starts[index] + t) * width + (kv_head * group + g) * head_dim;
                    &queries[at..at + head_dim]
                };
                let cache = (&item.cache.keys[layer][..], &item.cache.values[layer][..]);
                shape.attend(cache, item.position, item.tokens.len(), query)
            })
            .collect();
        let mut attended = vec![0f32; start * width];
        let group_width = group * head_dim;
        for (&(index, kv_head), out) in jobs.iter().zip(results) {
            // `out` is `[t][g][head_dim]`: token t's heads of this group side by side,
            // as they sit in its row.
            for (t, heads) in out.chunks_exact(group_width).enumerate() {
                let at = (starts[index] + t) * width + kv_head * group_width;
                attended[at..at + group_width].copy_from_slice(heads);
            }
        }
        attended
    }
}

/// The pool passes run in, one thread per core; `None` when the OS refused the threads
/// (passes then run from the caller, on rayon's global pool).
fn pool() -> Option<&'static rayon::ThreadPool> {
    static POOL: std::sync::OnceLock<Option<rayon::ThreadPool>> = std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        rayon::ThreadPoolBuilder::new()
            .thread_name(|index| format!("troupe-model-{index}"))
            .build()
            .map_err(|error| tracing::warn!(%error, "no thread pool for the model; using rayon's"))
            .ok()
    })
    .as_ref()
}

/// Appends `values` to a half-precision cache.
fn extend_half(cache: &mut Vec<f16>, values: &[f32]) {
    let start = cache.len();
    cache.resize(start + values.len(), f16::ZERO);
    cache[start..].convert_from_f32_slice(values);
}

/// `gate × σ(gate) × up` in place: SiLU, its exponentials eight at a time.
fn silu_times(gate: &mut [f32], up: &[f32]) {
    let mut exponentials: Vec<f32> = gate.iter().map(|g| -g).collect();
    attention::exp_in_place(&mut exponentials);
    for ((g, e), u) in gate.iter_mut().zip(&exponentials).zip(up) {
        *g = *g / (1.0 + e) * u;
    }
}

fn add_in_place(target: &mut [f32], addend: &[f32]) {
    for (t, a) in target.iter_mut().zip(addend) {
        *t += a;
    }
}

/// `out = x / sqrt(mean(x²) + eps) × weight`, row by row.
fn rms_norm(input: &[f32], weight: &[f32], eps: f64, out: &mut [f32]) {
    let width = weight.len();
    for (row, target) in input.chunks_exact(width).zip(out.chunks_exact_mut(width)) {
        let mean = row.iter().map(|x| x * x).sum::<f32>() / width as f32;
        let scale = 1.0 / (mean + eps as f32).sqrt();
        for ((o, x), w) in target.iter_mut().zip(row).zip(weight) {
            *o = x * scale * w;
        }
    }
}

/// `rms_norm` of each `weight.len()` values of `rows` onto themselves.
fn rms_norm_in_place(rows: &mut [f32], weight: &[f32], eps: f64) {
    for row in rows.chunks_exact_mut(weight.len()) {
        let mean = row.iter().map(|x| x * x).sum::<f32>() / weight.len() as f32;
        let scale = 1.0 / (mean + eps as f32).sqrt();
        for (x, w) in row.iter_mut().zip(weight) {
            *x *= scale * w;
        }
    }
}

fn rotary_tables(config: &LlamaConfig) -> (Vec<f32>, Vec<f32>) {
    let half = config.head_dim / 2;
    let mut cos = Vec::with_capacity(config.context_length * half);
    let mut sin = Vec::with_capacity(config.context_length * half);
    for position in 0..config.context_length {
        for i in 0..half {
            let frequency = 1.0
                / config
                    .rope_base
                    .powf((2 * i) as f32 / config.head_dim as f32);
            let angle = position as f32 * frequency;
            cos.push(angle.cos());
            sin.push(angle.sin());
        }
    }
    (cos, sin)
}
