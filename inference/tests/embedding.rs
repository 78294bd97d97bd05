//! Embeddings with the real all-MiniLM-L6-v2.

mod support;

use troupe_inference::catalog::MINILM;
use troupe_inference::embedding::{Embedder, cosine};

fn embedder() -> Embedder {
    Embedder::load(&support::fetched(&MINILM)).expect("the default embedding model loads")
}

#[test]
fn embeddings_are_unit_vectors_that_put_related_sentences_close() {
    let embedder = embedder();
    assert_eq!(embedder.dimensions(), 384);
    let texts = [
        "The build failed because a unit test timed out.",
        "A test exceeded its time limit and broke the CI pipeline.",
        "Bananas are a good source of potassium.",
    ];
    let vectors = embedder.embed(&texts).unwrap();
    assert_eq!(vectors.len(), 3);
    for vector in &vectors {
        assert_eq!(vector.len(), 384);
        let norm: f32 = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "norm {norm}");
    }
    let related = cosine(&vectors[0], &vectors[1]);
    let unrelated = cosine(&vectors[0], &vectors[2]);
    assert!(
        related > 0.4 && unrelated < 0.2 && related > unrelated + 0.3,
        "related {related}, unrelated {unrelated}"
    );
}

#[test]
fn padding_in_a_batch_does_not_change_an_embedding() {
    let embedder = embedder();
    let short = "Deploy to staging.";
    let alone = embedder.embed(&[short]).unwrap().remove(0);
    let batched = embedder
        .embed(&[
            short,
            "A much longer sentence that forces the short one to be padded in the batch.",
        ])
        .unwrap()
        .remove(0);
    assert!(
        cosine(&alone, &batched) > 0.9999,
        "{}",
        cosine(&alone, &batched)
    );
}

#[test]
fn empty_texts_are_refused_and_very_long_ones_are_cut() {
    let embedder = embedder();
    assert_eq!(embedder.embed(&[]).unwrap(), Vec::<Vec<f32>>::new());
    assert!(
        embedder
            .embed(&["  "])
            .unwrap_err()
            .to_string()
            .contains("empty text")
    );
    let long = "word ".repeat(5000);
    assert_eq!(embedder.embed(&[&long]).unwrap()[0].len(), 384);
}
