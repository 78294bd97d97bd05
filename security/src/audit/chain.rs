//! The hash chain, pure: how an entry's hash is computed and how a sequence of entries
//! (and the latest signed checkpoint) is checked. No I/O, so every kind of tampering can
//! be tested on plain values.

use serde::{Deserialize, Serialize};
pub use troupe_store::AuditEntry;

/// The `prev_hash` of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The fields an entry is made of before it is chained.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEntry {
    pub at_ms: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub details: String,
}

/// SHA-256 over the entry's fields and the previous hash, as a JSON array (one
/// unambiguous encoding: no field can bleed into the next).
pub fn entry_hash(
    seq: u64,
    at_ms: i64,
    actor: &str,
    action: &str,
    target: &str,
    details: &str,
    prev_hash: &str,
) -> String {
    let encoded = serde_json::json!([seq, at_ms, actor, action, target, details, prev_hash]);
    troupe_store::digest::sha256_hex(&encoded.to_string())
}

/// `entry` chained after (`seq`, `prev_hash`).
pub fn chain(seq: u64, prev_hash: &str, entry: NewEntry) -> AuditEntry {
    let hash = entry_hash(
        seq,
        entry.at_ms,
        &entry.actor,
        &entry.action,
        &entry.target,
        &entry.details,
        prev_hash,
    );
    AuditEntry {
        seq,
        at_ms: entry.at_ms,
        actor: entry.actor,
        action: entry.action,
        target: entry.target,
        details: entry.details,
        prev_hash: prev_hash.to_string(),
        hash,
    }
}

/// The head of the chain at some moment, as a checkpoint records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Head {
    pub seq: u64,
    pub hash: String,
}

/// The first entry that is wrong, and how.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Breach {
    pub seq: u64,
    pub problem: String,
}

/// Walks the chain in order against every signed checkpoint. `entries` must be sorted
/// by `seq` (as read).
pub fn first_breach(entries: &[AuditEntry], checkpoints: &[Head]) -> Option<Breach> {
    let mut prev_hash = GENESIS.to_string();
    let mut expected_seq = 1;
    for entry in entries {
        if entry.seq != expected_seq {
            let problem = if entry.seq > expected_seq {
                format!(
                    "entries {expected_seq}..{} are missing (deleted)",
                    entry.seq - 1
                )
            } else {
                format!("entry {} appears twice or out of order", entry.seq)
            };
            return Some(Breach {
                seq: expected_seq,
                problem,
            });
        }
        if entry.prev_hash != prev_hash {
            return Some(Breach {
                seq: entry.seq,
                problem: "it does not follow the entry before it (an entry was inserted, \
                          reordered or changed before it)"
                    .into(),
            });
        }
        let hash = entry_hash(
            entry.seq,
            entry.at_ms,
            &entry.actor,
            &entry.action,
            &entry.target,
            &entry.details,
            &entry.prev_hash,
        );
        if hash != entry.hash {
            return Some(Breach {
                seq: entry.seq,
                problem: "its content does not match its hash (it was altered)".into(),
            });
        }
        if checkpoints
            .iter()
            .any(|checkpoint| checkpoint.seq == entry.seq && checkpoint.hash != entry.hash)
        {
            return Some(Breach {
                seq: entry.seq,
                problem: "it differs from the signed checkpoint (the chain was rewritten)".into(),
            });
        }
        prev_hash = entry.hash.clone();
        expected_seq += 1;
    }
    match checkpoints.iter().max_by_key(|checkpoint| checkpoint.seq) {
        Some(checkpoint) if checkpoint.seq >= expected_seq => Some(Breach {
            seq: expected_seq,
            problem: format!(
                "the chain ends at entry {} but a signed checkpoint records entry {} \
                 (entries were deleted from the end)",
                expected_seq - 1,
                checkpoint.seq
            ),
        }),
        _ => None,
    }
}

/// What the checkpoint file itself says, beside the chain it checks: checkpoints are
/// written in order at least every `every` entries, so a chain longer than that with no
/// checkpoint, checkpoints that go backwards in the file, or a last checkpoint more than
/// `every` entries behind the chain's end mean the file was deleted, reordered or
/// replaced by an older copy (after which the newer entries could be rewritten
/// unnoticed). `checkpoints` are in file order.
pub fn trail_breach(checkpoints: &[Head], chain_length: u64, every: u64) -> Option<Breach> {
    let Some(last) = checkpoints.last() else {
        return (chain_length > every).then(|| Breach {
            seq: every,
            problem: format!(
                "the chain has {chain_length} entries but there is no signed checkpoint, \
                 though one is written every {every} (the checkpoint file was deleted)"
            ),
        });
    };
    if let Some(pair) = checkpoints
        .windows(2)
        .find(|pair| pair[1].seq < pair[0].seq)
    {
        return Some(Breach {
            seq: pair[1].seq,
            problem: format!(
                "the checkpoint file goes backwards: entry {} is signed after entry {} \
                 (its lines were reordered or spliced)",
                pair[1].seq, pair[0].seq
            ),
        });
    }
    (chain_length > last.seq + every).then(|| Breach {
        seq: last.seq + every,
        problem: format!(
            "the last signed checkpoint records entry {} but the chain has {chain_length} \
             entries, more than {every} past it (the checkpoint file is an older copy or \
             lost its recent lines)",
            last.seq
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(n: u64) -> Vec<AuditEntry> {
        let mut entries: Vec<AuditEntry> = Vec::new();
        for seq in 1..=n {
            let prev = entries
                .last()
                .map_or(GENESIS.to_string(), |e| e.hash.clone());
            entries.push(chain(
                seq,
                &prev,
                NewEntry {
                    at_ms: seq as i64,
                    actor: "ada".into(),
                    action: "run.start".into(),
                    target: format!("run-{seq}"),
                    details: "{}".into(),
                },
            ));
        }
        entries
    }

    fn head(entries: &[AuditEntry], seq: u64) -> Head {
        Head {
            seq,
            hash: entries[seq as usize - 1].hash.clone(),
        }
    }

    /// Recomputes every hash from `from` on, as a forger with write access would.
    fn rechain(entries: &mut [AuditEntry], from: usize) {
        for i in from..entries.len() {
            let prev = if i == 0 {
                GENESIS.to_string()
            } else {
                entries[i - 1].hash.clone()
            };
            let e = entries[i].clone();
            entries[i] = chain(
                e.seq,
                &prev,
                NewEntry {
                    at_ms: e.at_ms,
                    actor: e.actor,
                    action: e.action,
                    target: e.target,
                    details: e.details,
                },
            );
        }
    }

    #[test]
    fn an_untouched_chain_verifies() {
        let entries = log(10);
        assert_eq!(first_breach(&entries, &[head(&entries, 8)]), None);
        assert_eq!(first_breach(&[], &[]), None);
    }

    #[test]
    fn altering_an_entry_is_detected_at_that_entry() {
        let mut entries = log(10);
        entries[4].actor = "mallory".into();
        let breach = first_breach(&entries, &[]).expect("detected");
        assert_eq!(breach.seq, 5);
        assert!(breach.problem.contains("altered"));
    }

    #[test]
    fn a_perfect_forgery_of_the_history_is_caught_by_the_checkpoint() {
        let mut entries = log(10);
        let checkpoint = head(&entries, 8);
        entries[2].target = "run-forged".into();
        rechain(&mut entries, 2);
        let breach = first_breach(&entries, &[checkpoint]).expect("detected");
        assert_eq!(breach.seq, 8);
        assert!(breach.problem.contains("checkpoint"));
    }

    #[test]
    fn deleting_inserting_reordering_and_truncating_are_each_detected() {
        let checkpoint = head(&log(10), 8);
        let mut deleted = log(10);
        deleted.remove(3);
        assert_eq!(
            first_breach(&deleted, std::slice::from_ref(&checkpoint)).map(|b| b.seq),
            Some(4)
        );

        let mut inserted = log(10);
        let mut extra = inserted[2].clone();
        extra.target = "run-inserted".into();
        inserted.insert(3, extra);
        for (i, entry) in inserted.iter_mut().enumerate() {
            entry.seq = i as u64 + 1;
        }
        assert_eq!(
            first_breach(&inserted, std::slice::from_ref(&checkpoint)).map(|b| b.seq),
            Some(4)
        );

        let mut reordered = log(10);
        reordered.swap(5, 6);
        reordered[5].seq = 6;
        reordered[6].seq = 7;
        assert_eq!(
            first_breach(&reordered, std::slice::from_ref(&checkpoint)).map(|b| b.seq),
            Some(6)
        );

        let truncated = log(6);
        let breach = first_breach(&truncated, std::slice::from_ref(&checkpoint)).expect("detected");
        assert_eq!(breach.seq, 7);
        assert!(breach.problem.contains("deleted from the end"));
    }

    /// A rewritten history is placed at the first signed checkpoint it contradicts:
    /// against the last alone it would be found only at entry 10.
    #[test]
    fn every_checkpoint_is_checked_not_only_the_last() {
        let original = log(10);
        let mut entries = original.clone();
        entries[1].target = "run-forged".into();
        rechain(&mut entries, 1);
        let last_only = first_breach(&entries, &[head(&original, 10)]).expect("detected");
        assert_eq!(last_only.seq, 10);
        let checkpoints = [head(&original, 3), head(&original, 10)];
        let breach = first_breach(&entries, &checkpoints).expect("detected");
        assert_eq!(breach.seq, 3);
        assert!(breach.problem.contains("checkpoint"), "{}", breach.problem);
    }

    #[test]
    fn a_missing_backwards_or_stale_checkpoint_file_is_a_breach() {
        let entries = log(10);
        assert_eq!(trail_breach(&[], 4, 5), None, "not due yet");
        let missing = trail_breach(&[], 10, 5).expect("detected");
        assert!(
            missing.problem.contains("no signed checkpoint"),
            "{missing:?}"
        );
        let backwards =
            trail_breach(&[head(&entries, 8), head(&entries, 5)], 10, 5).expect("detected");
        assert_eq!(backwards.seq, 5);
        assert!(backwards.problem.contains("goes backwards"));
        let stale = trail_breach(&[head(&entries, 2)], 10, 5).expect("detected");
        assert!(stale.problem.contains("older copy"), "{stale:?}");
        assert_eq!(
            trail_breach(&[head(&entries, 5), head(&entries, 10)], 10, 5),
            None
        );
    }
}
