//! Model answers are hostile input: whatever the text, the parsers return a value or a
//! reason, never panic, and what they return is within their bounds.

use proptest::prelude::*;

use super::{
    architect, code_generator, code_review, documentation, extract, planner, test_generator,
};
use troupe_scanner::rules::Lang;

/// Text made of the pieces the parsers look for, in any order and amount, plus noise.
fn answer_like() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("```".to_string()),
        Just("```python\n".to_string()),
        Just("```diff\n".to_string()),
        Just("\n- ".to_string()),
        Just("\n1. ".to_string()),
        Just("**".to_string()),
        Just(": ".to_string()),
        Just("\n--- a/x.py\n+++ b/x.py\n@@ -1 +1 @@\n".to_string()),
        Just("def test_a():\n    assert 1\n".to_string()),
        Just("[high] a.py:3: ".to_string()),
        Just("\u{1F600}é\u{0}\r\n".to_string()),
        "[a-z_ ]{0,12}",
        any::<String>(),
    ];
    prop::collection::vec(piece, 0..40).prop_map(|pieces| pieces.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn no_answer_makes_a_parser_panic(answer in answer_like()) {
        let _ = extract::code_blocks(&answer);
        let _ = extract::unified_diff(&answer);
        if let Ok(steps) = planner::parse_plan(&answer) {
            prop_assert!(!steps.is_empty() && steps.len() <= 12);
        }
        if let Ok(modules) = architect::parse_modules(&answer, &(1..=3)) {
            prop_assert!(!modules.is_empty() && modules.len() <= 3);
            for (name, _) in &modules {
                prop_assert!(name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'), "{name}");
            }
        }
        let _ = code_generator::parse_code(&answer, Lang::Python);
        let _ = code_generator::parse_code(&answer, Lang::Rust);
        if let Ok((_, tests)) = test_generator::parse_tests(&answer, Lang::Python) {
            prop_assert!(tests > 0);
        }
        if let Ok(comments) = code_review::parse_review(&answer) {
            prop_assert!(comments.len() <= 50);
        }
        let _ = documentation::parse_document(&answer);
    }
}
