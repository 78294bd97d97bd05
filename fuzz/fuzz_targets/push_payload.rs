//! Any body a push webhook may carry reads to a push or a reason, never a panic; a push
//! read always names a branch, a repository and a commit that is not all zeros.
#![no_main]

use libfuzzer_sys::fuzz_target;
use troupe_workflow::push::{Push, Sender};

fuzz_target!(|body: &[u8]| {
    let Ok(payload) = serde_json::from_slice::<serde_json::Value>(body) else {
        return;
    };
    for sender in [Sender::GitHub, Sender::GitLab] {
        if let Ok(push) = Push::read(sender, &payload) {
            assert!(!push.branch.is_empty() && !push.repository.is_empty());
            assert!(!push.commit.trim_start_matches('0').is_empty());
            assert_eq!(push.variables().len(), 1);
        }
    }
});
