//! Sampling seeds. A run has one, chosen when it starts or else taken from its id, and
//! each attempt's seed comes from the run's, the task and the attempt number: a run
//! started again with the same seed draws the same answers from a local model, and a
//! resumed attempt draws what the interrupted one drew. The hash is FNV-1a, the same in
//! every process and release, unlike the standard library's.

use std::hash::Hasher;

use troupe_store::{RunId, TaskId};

/// The seed of a run started without one.
pub fn of_run(run_id: &RunId) -> u64 {
    hash(&[run_id.as_str().as_bytes()])
}

/// The seed of `task`'s attempt number `attempt` in a run seeded with `run_seed`.
pub fn of_attempt(run_seed: u64, task: &TaskId, attempt: u32) -> u64 {
    hash(&[
        &run_seed.to_le_bytes(),
        task.as_str().as_bytes(),
        &attempt.to_le_bytes(),
    ])
}

fn hash(parts: &[&[u8]]) -> u64 {
    let mut hasher = fnv::FnvHasher::default();
    for part in parts {
        hasher.write(part);
    }
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Seeds must not change between releases: FNV-1a's published test vectors.
    #[test]
    fn the_seed_hash_is_fnv_1a() {
        assert_eq!(hash(&[]), 0xcbf2_9ce4_8422_2325);
        assert_eq!(hash(&[b"a"]), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(hash(&[b"foo", b"bar"]), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn each_attempt_of_each_task_draws_its_own_seed() {
        let task = TaskId::from("review");
        let first = of_attempt(7, &task, 1);
        assert_eq!(first, of_attempt(7, &task, 1));
        assert_ne!(first, of_attempt(7, &task, 2));
        assert_ne!(first, of_attempt(8, &task, 1));
        assert_ne!(first, of_attempt(7, &TaskId::from("design"), 1));
    }
}
