//! Any llama-architecture GGUF, not only the default model: a small random model written
//! with its layers in F32, Q8_0 and Q4_1 mixed, an output matrix of its own (untied) and
//! grouped-query attention. The fast CPU pass (our kernels where the type allows, candle's
//! products for the rest) must agree with the candle tensor pass on it.

use candle_core::quantized::GgmlDType;
use candle_core::quantized::gguf_file::Value;
use candle_core::{Device, IndexOp, Tensor};
use troupe_inference::gguf;
use troupe_inference::llama::{BatchItem, ForwardPath, LlamaWeights};

mod support;

use support::{TestGguf, random};

const HIDDEN: usize = 64;
const HEADS: usize = 4;
const KV_HEADS: usize = 2;
const FEED_FORWARD: usize = 96;
const VOCABULARY: usize = 80;
const LAYERS: usize = 2;

fn ones(width: usize) -> Tensor {
    Tensor::ones(width, candle_core::DType::F32, &Device::Cpu).unwrap()
}

fn write_model(path: &std::path::Path) {
    let kv_width = HIDDEN / HEADS * KV_HEADS;
    let mut gguf = TestGguf::default();
    let mut add = |name: String, tensor: Tensor, dtype: GgmlDType| gguf.add(name, tensor, dtype);
    add(
        "token_embd.weight".into(),
        random(&[VOCABULARY, HIDDEN], 1),
        GgmlDType::Q8_0,
    );
    add(
        "output.weight".into(),
        random(&[VOCABULARY, HIDDEN], 2),
        GgmlDType::F32,
    );
    add("output_norm.weight".into(), ones(HIDDEN), GgmlDType::F32);
    for layer in 0..LAYERS {
        let name = |part: &str| format!("blk.{layer}.{part}.weight");
        let seed = 10 * (layer as u64 + 1);
        add(name("attn_norm"), ones(HIDDEN), GgmlDType::F32);
        add(name("ffn_norm"), ones(HIDDEN), GgmlDType::F32);
        // Mixed types in one layer: q/k/v cannot be stacked, gate/up can.
        add(
            name("attn_q"),
            random(&[HIDDEN, HIDDEN], seed),
            GgmlDType::Q8_0,
        );
        add(
            name("attn_k"),
            random(&[kv_width, HIDDEN], seed + 1),
            GgmlDType::F32,
        );
        add(
            name("attn_v"),
            random(&[kv_width, HIDDEN], seed + 2),
            GgmlDType::Q4_1,
        );
        add(
            name("attn_output"),
            random(&[HIDDEN, HIDDEN], seed + 3),
            GgmlDType::Q4_1,
        );
        add(
            name("ffn_gate"),
            random(&[FEED_FORWARD, HIDDEN], seed + 4),
            GgmlDType::Q4_1,
        );
        add(
            name("ffn_up"),
            random(&[FEED_FORWARD, HIDDEN], seed + 5),
            GgmlDType::Q4_1,
        );
        add(
            name("ffn_down"),
            random(&[HIDDEN, FEED_FORWARD], seed + 6),
            GgmlDType::Q8_0,
        );
    }
    let metadata = [
        ("general.architecture", Value::String("llama".into())),
        ("llama.attention.head_count", Value::U32(HEADS as u32)),
        ("llama.attention.head_count_kv", Value::U32(KV_HEADS as u32)),
        ("llama.embedding_length", Value::U32(HIDDEN as u32)),
        ("llama.block_count", Value::U32(LAYERS as u32)),
        ("llama.context_length", Value::U32(256)),
        ("llama.attention.layer_norm_rms_epsilon", Value::F32(1e-5)),
        ("llama.rope.freq_base", Value::F32(10_000.0)),
    ];
    gguf.write(path, &metadata);
}

fn load(path: &std::path::Path, forward: ForwardPath) -> LlamaWeights {
    let mut opened = gguf::open(path).unwrap();
    LlamaWeights::from_gguf_with(&opened.content, &mut opened.reader, &Device::Cpu, forward)
        .unwrap()
}

/// Logits after a prompt and after two decode steps, for two sequences batched.
fn run(model: &LlamaWeights) -> Vec<Vec<f32>> {
    let mut a = model.new_cache(4).unwrap();
    let mut b = model.new_cache(4).unwrap();
    let steps: [(&[u32], &[u32]); 3] = [
        (&[1, 5, 9, 13, 17], &[2, 4]),
        (&[21], &[6, 8, 10]),
        (&[3], &[12]),
    ];
    let mut rows = Vec::new();
    for (left, right) in steps {
        let logits = model
            .forward(&mut [
                BatchItem {
                    tokens: left,
                    cache: &mut a,
                    outputs: 1,
                },
                BatchItem {
                    tokens: right,
                    cache: &mut b,
                    outputs: 1,
                },
            ])
            .unwrap();
        assert_eq!(logits.dims(), [2, VOCABULARY]);
        for row in 0..2 {
            rows.push(logits.i(row).unwrap().to_vec1::<f32>().unwrap());
        }
    }
    rows
}

#[test]
fn a_llama_gguf_of_mixed_types_runs_the_same_on_both_paths() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny.gguf");
    write_model(&path);
    let fast = run(&load(&path, ForwardPath::Auto));
    let reference = run(&load(&path, ForwardPath::Tensors));
    for (index, (ours, theirs)) in fast.iter().zip(&reference).enumerate() {
        let gap = ours
            .iter()
            .zip(theirs)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        // Two layers of a small model: 8-bit rounding has little room to grow.
        assert!(gap < 0.05, "row {index}: logits differ by up to {gap}");
    }
}

#[test]
fn a_token_outside_the_vocabulary_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny.gguf");
    write_model(&path);
    for forward in [ForwardPath::Auto, ForwardPath::Tensors] {
        let model = load(&path, forward);
        let mut cache = model.new_cache(4).unwrap();
        let outside = [VOCABULARY as u32 + 5];
        let result = model.forward(&mut [BatchItem {
            tokens: &outside,
            cache: &mut cache,
            outputs: 1,
        }]);
        assert!(result.is_err(), "{forward:?}");
    }
}

/// What a pass reads: each matrix once in its own type, the output matrix (untied here)
/// but not the embedding table, which a pass only looks rows up in.
#[test]
fn a_pass_costs_every_matrix_once_and_the_cache_its_element_size() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny.gguf");
    write_model(&path);
    let kv_width = HIDDEN / HEADS * KV_HEADS;
    // (rows × columns, bytes per 32 values) of each product's matrix.
    let (q8_0, q4_1, f32) = (34, 20, 128);
    let layer = [
        (HIDDEN * HIDDEN, q8_0),       // attn_q
        (kv_width * HIDDEN, f32),      // attn_k
        (kv_width * HIDDEN, q4_1),     // attn_v
        (HIDDEN * HIDDEN, q4_1),       // attn_output
        (FEED_FORWARD * HIDDEN, q4_1), // ffn_gate
        (FEED_FORWARD * HIDDEN, q4_1), // ffn_up
        (HIDDEN * FEED_FORWARD, q8_0), // ffn_down
    ];
    let output = (VOCABULARY * HIDDEN, f32);
    let matrices = (0..LAYERS).flat_map(|_| layer).chain([output]);
    let (bytes, multiply_adds) = matrices.fold((0, 0), |(bytes, macs), (values, per_block)| {
        (bytes + values / 32 * per_block, macs + values)
    });
    for forward in [ForwardPath::Auto, ForwardPath::Tensors] {
        let cost = load(&path, forward).pass_cost();
        assert_eq!(cost.weight_bytes, bytes, "{forward:?}");
        assert_eq!(cost.multiply_adds, multiply_adds, "{forward:?}");
    }
    // Keys and values of every layer: f16 on our path, f32 on candle's.
    let cache = |element: usize| LAYERS * 2 * kv_width * element;
    assert_eq!(
        load(&path, ForwardPath::Auto).kv_bytes_per_token(),
        cache(2)
    );
    assert_eq!(
        load(&path, ForwardPath::Tensors).kv_bytes_per_token(),
        cache(4)
    );
}
