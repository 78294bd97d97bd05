//! The fast CPU forward pass (our kernels, plain loops) against the candle tensor pass
//! (candle's matmuls and ops) on the same model: two independent implementations of the
//! same arithmetic, over a batch that mixes a prompt being prefilled with decode steps.

mod support;

use candle_core::{Device, IndexOp};
use troupe_inference::catalog::SMOLLM2;
use troupe_inference::gguf;
use troupe_inference::llama::{BatchItem, ForwardPath, LlamaWeights};

fn load(path: ForwardPath) -> LlamaWeights {
    let file = support::first_file(&SMOLLM2);
    let mut opened = gguf::open(&file).unwrap();
    LlamaWeights::from_gguf_with(&opened.content, &mut opened.reader, &Device::Cpu, path).unwrap()
}

fn logits(model: &LlamaWeights) -> Vec<Vec<f32>> {
    let tokenizer =
        troupe_inference::tokenizer::GgufTokenizer::load(&support::first_file(&SMOLLM2)).unwrap();
    let first = tokenizer
        .encode("<|im_start|>user\nWhy do unit tests matter in a large codebase? Explain briefly.<|im_end|>\n<|im_start|>assistant\n")
        .unwrap();
    let second = tokenizer.encode("fn main() {\n    let x =").unwrap();
    let mut a = model.new_cache(8).unwrap();
    let mut b = model.new_cache(8).unwrap();
    let mut rows = Vec::new();
    // Pass 1: both prompts; pass 2: a decode token for the first, a slice for the second.
    let passes: [(&[u32], &[u32]); 2] = [(&first, &second), (&[42], &[7, 8, 9])];
    for (left, right) in passes {
        let out = model
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
        for row in 0..2 {
            rows.push(out.i(row).unwrap().to_vec1::<f32>().unwrap());
        }
    }
    assert_eq!((a.len(), b.len()), (first.len() + 1, second.len() + 3));
    rows
}

#[test]
fn the_fast_cpu_pass_agrees_with_candles_tensor_pass() {
    let fast = logits(&load(ForwardPath::Auto));
    let reference = logits(&load(ForwardPath::Tensors));
    let argmax = |row: &[f32]| {
        row.iter()
            .enumerate()
            .max_by(|x, y| x.1.total_cmp(y.1))
            .map(|(index, _)| index)
            .unwrap()
    };
    for (index, (ours, theirs)) in fast.iter().zip(&reference).enumerate() {
        let gaps: Vec<f32> = ours
            .iter()
            .zip(theirs)
            .map(|(a, b)| (a - b).abs())
            .collect();
        let max = gaps.iter().copied().fold(0f32, f32::max);
        let mean = gaps.iter().sum::<f32>() / gaps.len() as f32;
        println!("row {index}: mean gap {mean:.3}, max gap {max:.3}");
        // Both quantise activations to 8 bits before each of 211 products; different
        // summation orders land on different rounding steps and the differences grow
        // through 30 layers (llama.cpp and candle differ by as much). A wrong rotation,
        // mask or cache shows as gaps of several logits everywhere.
        assert!(
            mean < 0.5 && max < 2.0,
            "row {index}: mean gap {mean}, max {max}"
        );
        let mut sorted = theirs.clone();
        sorted.sort_by(|a, b| b.total_cmp(a));
        if sorted[0] - sorted[1] > 0.5 {
            assert_eq!(argmax(ours), argmax(theirs), "row {index}");
        }
    }
}
