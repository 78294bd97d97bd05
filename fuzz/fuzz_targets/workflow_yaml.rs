//! Any UTF-8 text must parse to a workflow or to diagnostics, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|source: &str| {
    let _outcome = troupe_workflow::parse_workflow(source, "fuzz.yaml", &["shell", "code_review"]);
});
