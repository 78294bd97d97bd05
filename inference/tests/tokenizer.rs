//! The default model's tokenizer, built from its GGUF metadata alone.

mod support;

use troupe_inference::catalog::SMOLLM2;
use troupe_inference::tokenizer::GgufTokenizer;

fn tokenizer() -> GgufTokenizer {
    GgufTokenizer::load(&support::first_file(&SMOLLM2))
        .expect("the default model's tokenizer builds")
}

#[test]
fn text_of_every_kind_survives_a_round_trip() {
    let tokenizer = tokenizer();
    let samples = [
        "Hello, world!",
        "naïve café — déjà vu, 中文字符, emoji 🦀🚀",
        "fn main() {\n\tlet x = vec![1, 2, 3];\n    println!(\"{x:?}\");\n}\n",
        "trailing   spaces   and\n\n\nblank lines    ",
        " a leading space, and 12345 digits",
        "",
    ];
    for sample in samples {
        let ids = tokenizer.encode(sample).unwrap();
        assert_eq!(tokenizer.decode(&ids).unwrap(), sample, "ids {ids:?}");
    }
}

#[test]
fn byte_level_bpe_uses_the_vocabulary_of_the_model() {
    let tokenizer = tokenizer();
    assert_eq!(tokenizer.vocabulary_size(), 49_152);
    let hello = tokenizer.token_id("Hello").expect("`Hello` is one token");
    let world = tokenizer
        .token_id("Ġworld")
        .expect("` world` is one token, with the byte-level space");
    assert_eq!(tokenizer.encode("Hello world").unwrap(), vec![hello, world]);
    assert!(
        tokenizer
            .encode("Hello world, this is a longer sentence")
            .unwrap()
            .len()
            < 12,
        "merges apply"
    );
}

#[test]
fn chat_markers_are_single_special_tokens_and_end_of_sequence_is_known() {
    let tokenizer = tokenizer();
    let start = tokenizer
        .token_id("<|im_start|>")
        .expect("ChatML start marker");
    let end = tokenizer.token_id("<|im_end|>").expect("ChatML end marker");
    let ids = tokenizer.encode("<|im_start|>user\nHi<|im_end|>").unwrap();
    assert_eq!(ids.first(), Some(&start));
    assert_eq!(ids.last(), Some(&end));
    assert_eq!(
        ids.iter().filter(|id| **id == start || **id == end).count(),
        2
    );
    assert!(tokenizer.eos_token_id().is_some());
}
