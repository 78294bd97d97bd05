//! The audit log on the real SurrealDB engine, tampered with the way someone with write
//! access to the database would.

use super::*;

async fn log_with(entries: u64, dir: &Path) -> (Store, AuditLog) {
    let store = Store::memory().await.unwrap();
    let log = AuditLog::open(store.clone(), Some(dir), 3).await.unwrap();
    for n in 1..=entries {
        log.record(
            "ada",
            AuditAction::RunStart {
                workflow: format!("w-{n}"),
                version: None,
            },
            &format!("run-{n}"),
        )
        .await
        .unwrap();
    }
    (store, log)
}

async fn breach(log: &AuditLog) -> Breach {
    let report = log.verify().await.unwrap();
    assert!(!report.intact, "{report:?}");
    report.first_bad.unwrap()
}

#[tokio::test]
async fn an_untouched_log_verifies_and_checkpoints_every_few_entries() {
    let dir = tempfile::tempdir().unwrap();
    let (_, log) = log_with(7, dir.path()).await;
    let report = log.verify().await.unwrap();
    assert!(report.intact, "{report:?}");
    assert_eq!(report.entries, 7);
    assert_eq!(report.checkpoint.map(|c| c.seq), Some(6));
}

#[tokio::test]
async fn altering_deleting_and_truncating_rows_are_detected_and_named() {
    let dir = tempfile::tempdir().unwrap();
    let (store, log) = log_with(8, dir.path()).await;
    store
        .execute_for_test("UPDATE audit_log:[2] SET actor = 'mallory'")
        .await
        .unwrap();
    let found = breach(&log).await;
    assert_eq!(found.seq, 2);
    assert!(found.problem.contains("altered"), "{found:?}");

    let dir = tempfile::tempdir().unwrap();
    let (store, log) = log_with(8, dir.path()).await;
    store
        .execute_for_test("DELETE audit_log:[4]")
        .await
        .unwrap();
    let found = breach(&log).await;
    assert_eq!(found.seq, 4);
    assert!(found.problem.contains("missing"), "{found:?}");

    // The last checkpoint is at entry 6: cutting the log back to 5 is caught.
    let dir = tempfile::tempdir().unwrap();
    let (store, log) = log_with(8, dir.path()).await;
    store
        .execute_for_test("DELETE audit_log WHERE seq > 5")
        .await
        .unwrap();
    let found = breach(&log).await;
    assert!(found.problem.contains("deleted from the end"), "{found:?}");
}

#[tokio::test]
async fn reordering_rows_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let (store, log) = log_with(5, dir.path()).await;
    store
        .execute_for_test(
            "LET $a = (SELECT * FROM ONLY audit_log:[2]);
             LET $b = (SELECT * FROM ONLY audit_log:[3]);
             UPDATE audit_log:[2] SET actor = $b.actor, action = $b.action, target = $b.target,
                 details = $b.details, prev_hash = $b.prev_hash, hash = $b.hash, at_ms = $b.at_ms;
             UPDATE audit_log:[3] SET actor = $a.actor, action = $a.action, target = $a.target,
                 details = $a.details, prev_hash = $a.prev_hash, hash = $a.hash, at_ms = $a.at_ms;",
        )
        .await
        .unwrap();
    assert_eq!(breach(&log).await.seq, 2);
}

#[tokio::test]
async fn a_reopened_log_continues_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let (store, log) = log_with(4, dir.path()).await;
    drop(log);
    let reopened = AuditLog::open(store, Some(dir.path()), 3).await.unwrap();
    let entry = reopened
        .record("bob", AuditAction::RunCancel {}, "run-1")
        .await
        .unwrap();
    assert_eq!(entry.seq, 5);
    assert!(reopened.verify().await.unwrap().intact);
}
