//! The qwen2 and qwen3 families, on small random GGUFs written here the way their
//! converters write real ones (no file of either can be fetched on this machine): both
//! of our passes must give the logits of candle's own implementation of the family.
//! qwen2 has biases on its query, key and value projections; qwen3 has heads wider than
//! `hidden / heads`, a norm over each query and key head, and tied embeddings; both
//! rotate the two halves of a head.

use candle_core::quantized::GgmlDType;
use candle_core::quantized::gguf_file::Value;
use candle_core::{Device, IndexOp, Tensor};
use candle_transformers::models::{quantized_qwen2, quantized_qwen3};
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
const PROMPT: [u32; 5] = [1, 5, 9, 13, 17];
const NEXT: u32 = 21;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Family {
    Qwen2,
    Qwen3,
}

impl Family {
    fn name(self) -> &'static str {
        match self {
            Family::Qwen2 => "qwen2",
            Family::Qwen3 => "qwen3",
        }
    }

    fn head_dim(self) -> usize {
        match self {
            Family::Qwen2 => HIDDEN / HEADS,
            Family::Qwen3 => 2 * HIDDEN / HEADS,
        }
    }
}

/// Norm weights near one, none alike.
fn norm(width: usize, seed: u64) -> Tensor {
    (random(&[width], seed) + 1.0).unwrap()
}

fn write_model(path: &std::path::Path, family: Family) {
    let head_dim = family.head_dim();
    let (query_width, kv_width) = (HEADS * head_dim, KV_HEADS * head_dim);
    let mut gguf = TestGguf::default();
    let mut add = |name: String, tensor: Tensor, dtype: GgmlDType| gguf.add(name, tensor, dtype);
    add(
        "token_embd.weight".into(),
        random(&[VOCABULARY, HIDDEN], 1),
        GgmlDType::Q8_0,
    );
    if family == Family::Qwen2 {
        add(
            "output.weight".into(),
            random(&[VOCABULARY, HIDDEN], 2),
            GgmlDType::Q8_0,
        );
    }
    add("output_norm.weight".into(), norm(HIDDEN, 3), GgmlDType::F32);
    for layer in 0..LAYERS {
        let name = |part: &str| format!("blk.{layer}.{part}.weight");
        let seed = 10 * (layer as u64 + 1);
        add(name("attn_norm"), norm(HIDDEN, seed), GgmlDType::F32);
        add(name("ffn_norm"), norm(HIDDEN, seed + 1), GgmlDType::F32);
        let projections = [
            ("attn_q", query_width, HIDDEN, GgmlDType::Q4_1),
            ("attn_k", kv_width, HIDDEN, GgmlDType::Q4_1),
            ("attn_v", kv_width, HIDDEN, GgmlDType::Q4_1),
            ("attn_output", HIDDEN, query_width, GgmlDType::Q8_0),
            ("ffn_gate", FEED_FORWARD, HIDDEN, GgmlDType::Q4_1),
            ("ffn_up", FEED_FORWARD, HIDDEN, GgmlDType::Q4_1),
            ("ffn_down", HIDDEN, FEED_FORWARD, GgmlDType::Q8_0),
        ];
        for (offset, (part, rows, columns, dtype)) in projections.into_iter().enumerate() {
            add(
                name(part),
                random(&[rows, columns], seed + 2 + offset as u64),
                dtype,
            );
        }
        match family {
            Family::Qwen2 => {
                for (offset, (part, width)) in [
                    ("attn_q", query_width),
                    ("attn_k", kv_width),
                    ("attn_v", kv_width),
                ]
                .into_iter()
                .enumerate()
                {
                    let bias = random(&[width], seed + 20 + offset as u64);
                    add(format!("blk.{layer}.{part}.bias"), bias, GgmlDType::F32);
                }
            }
            Family::Qwen3 => {
                add(
                    name("attn_q_norm"),
                    norm(head_dim, seed + 30),
                    GgmlDType::F32,
                );
                add(
                    name("attn_k_norm"),
                    norm(head_dim, seed + 31),
                    GgmlDType::F32,
                );
            }
        }
    }
    let arch = family.name();
    let key = |name: &str| format!("{arch}.{name}");
    let mut metadata = vec![
        (
            "general.architecture".to_string(),
            Value::String(arch.into()),
        ),
        // qwen3 in candle computes its rotary tables in this type; f32 like ours.
        ("general.dtype".to_string(), Value::U32(0)),
        (key("attention.head_count"), Value::U32(HEADS as u32)),
        (key("attention.head_count_kv"), Value::U32(KV_HEADS as u32)),
        (key("embedding_length"), Value::U32(HIDDEN as u32)),
        (key("block_count"), Value::U32(LAYERS as u32)),
        (key("context_length"), Value::U32(256)),
        (key("attention.layer_norm_rms_epsilon"), Value::F32(1e-6)),
        (key("rope.freq_base"), Value::F32(1_000_000.0)),
    ];
    if family == Family::Qwen3 {
        metadata.push((key("attention.key_length"), Value::U32(head_dim as u32)));
        metadata.push((key("attention.value_length"), Value::U32(head_dim as u32)));
    }
    gguf.write(path, &metadata);
}

/// Logits after the prompt and after one more token, from one of our passes.
fn ours(path: &std::path::Path, forward: ForwardPath) -> [Vec<f32>; 2] {
    let mut opened = gguf::open(path).unwrap();
    let model =
        LlamaWeights::from_gguf_with(&opened.content, &mut opened.reader, &Device::Cpu, forward)
            .unwrap();
    let mut cache = model.new_cache(8).unwrap();
    let mut step = |tokens: &[u32]| {
        let logits = model
            .forward(&mut [BatchItem {
                tokens,
                cache: &mut cache,
                outputs: 1,
            }])
            .unwrap();
        logits.i(0).unwrap().to_vec1::<f32>().unwrap()
    };
    [step(&PROMPT), step(&[NEXT])]
}

/// A candle model's `forward(input, position)`.
type CandleForward = dyn FnMut(&Tensor, usize) -> candle_core::Result<Tensor>;

/// The same from candle's implementation of the family.
fn candles(path: &std::path::Path, family: Family) -> [Vec<f32>; 2] {
    let mut opened = gguf::open(path).unwrap();
    let device = Device::Cpu;
    let input = |tokens: &[u32]| Tensor::new(tokens, &device).unwrap().unsqueeze(0).unwrap();
    let row = |logits: Tensor| logits.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let (content, reader) = (opened.content, &mut opened.reader);
    let mut forward: Box<CandleForward> = match family {
        Family::Qwen2 => {
            let mut model =
                quantized_qwen2::ModelWeights::from_gguf(content, reader, &device).unwrap();
            Box::new(move |input, position| model.forward(input, position))
        }
        Family::Qwen3 => {
            let mut model =
                quantized_qwen3::ModelWeights::from_gguf(content, reader, &device).unwrap();
            Box::new(move |input, position| model.forward(input, position))
        }
    };
    let first = row(forward(&input(&PROMPT), 0).unwrap());
    [first, row(forward(&input(&[NEXT]), PROMPT.len()).unwrap())]
}

fn largest_gap(ours: &[f32], theirs: &[f32]) -> f32 {
    assert_eq!(ours.len(), theirs.len());
    ours.iter()
        .zip(theirs)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max)
}

fn check(family: Family) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format!("{}.gguf", family.name()));
    write_model(&path, family);
    let reference = candles(&path, family);
    for forward in [ForwardPath::Auto, ForwardPath::Tensors] {
        for (step, (ours, theirs)) in ours(&path, forward).iter().zip(&reference).enumerate() {
            let gap = largest_gap(ours, theirs);
            // Two layers of a small model: 8-bit rounding has little room to grow.
            assert!(
                gap < 0.05,
                "{family:?} {forward:?} step {step}: logits differ from candle's by up to {gap}"
            );
        }
    }
}

#[test]
fn a_qwen2_gguf_gives_candles_logits_on_both_paths() {
    check(Family::Qwen2);
}

#[test]
fn a_qwen3_gguf_gives_candles_logits_on_both_paths() {
    check(Family::Qwen3);
}

/// A file whose projections do not fit its heads is refused at load with the layer and
/// the widths, not run into a panic.
#[test]
fn a_qwen3_gguf_whose_heads_do_not_fit_its_projections_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("qwen3.gguf");
    write_model(&path, Family::Qwen3);
    let mut opened = gguf::open(&path).unwrap();
    // Heads of 16 (hidden / heads) instead of the 32 the weights were written for.
    opened
        .content
        .metadata
        .insert("qwen3.attention.key_length".into(), Value::U32(16));
    opened
        .content
        .metadata
        .insert("qwen3.attention.value_length".into(), Value::U32(16));
    let refused = LlamaWeights::from_gguf(&opened.content, &mut opened.reader, &Device::Cpu)
        .err()
        .expect("refused");
    assert_eq!(
        refused,
        "layer 0: query, key and value project to [128, 64, 64] values; the heads need [64, 32, 32]"
    );
}

/// A file with a norm for the query heads but none for the key heads is refused by both
/// passes alike, rather than run with half of qwen3's norms.
#[test]
fn a_gguf_with_one_of_the_two_head_norms_is_refused_on_both_paths() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("qwen3.gguf");
    write_model(&path, Family::Qwen3);
    for forward in [ForwardPath::Auto, ForwardPath::Tensors] {
        let mut opened = gguf::open(&path).unwrap();
        opened
            .content
            .tensor_infos
            .remove("blk.0.attn_k_norm.weight");
        let refused = LlamaWeights::from_gguf_with(
            &opened.content,
            &mut opened.reader,
            &Device::Cpu,
            forward,
        )
        .err()
        .expect("refused");
        assert_eq!(
            refused, "layer 0: a norm for one of query and key heads but not the other",
            "{forward:?}"
        );
    }
}
