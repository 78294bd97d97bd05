//! The store on `mem://` and `surrealkv://`: workflows, runs and their logs, accounts,
//! memory, and what happens across a reopen.

use super::*;
use crate::events::RunEvent;
use troupe_agents::{MemoryKind, MemoryScope};

fn event(run: &str, seq: u64, event: RunEvent) -> StoredEvent {
    StoredEvent {
        run_id: run.into(),
        seq,
        at_ms: 1000 + seq as i64,
        event,
    }
}

fn record(run: &str) -> RunRecord {
    RunRecord {
        run_id: run.into(),
        workflow_id: "wf".into(),
        workflow_version: 1,
        workflow_name: "Workflow".into(),
        status: RunStatus::Running,
        started_by: "ada".into(),
        created_at_ms: 5,
        finished_at_ms: 0,
        project: "default".into(),
        owner: "node-a".into(),
        epoch: 1,
        trace: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into(),
        trace_parent: String::new(),
        tick_ms: None,
    }
}

#[tokio::test]
async fn every_version_of_a_workflow_is_kept() {
    let store = Store::memory().await.unwrap();
    assert_eq!(
        store
            .save_workflow(&"wf".into(), "First", &"default".into(), "a: 1", 1)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .save_workflow(&"wf".into(), "Second", &"default".into(), "a: 2", 2)
            .await
            .unwrap(),
        2
    );
    let versions = store.workflow_versions(&"wf".into()).await.unwrap();
    assert_eq!(
        versions
            .iter()
            .map(|v| (v.version, v.source.as_str()))
            .collect::<Vec<_>>(),
        [(1, "a: 1"), (2, "a: 2")]
    );
    assert_eq!(
        store
            .workflow_version(&"wf".into(), None)
            .await
            .unwrap()
            .version,
        2
    );
    assert_eq!(
        store
            .workflow_version(&"wf".into(), Some(1))
            .await
            .unwrap()
            .name,
        "First"
    );
    let listed = store.workflows().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].name.as_str(), listed[0].latest_version),
        ("Second", 2)
    );
}

#[tokio::test]
async fn deleting_hides_a_workflow_but_keeps_its_versions() {
    let store = Store::memory().await.unwrap();
    store
        .save_workflow(&"wf".into(), "W", &"default".into(), "a: 1", 1)
        .await
        .unwrap();
    store.delete_workflow(&"wf".into()).await.unwrap();
    assert!(store.workflows().await.unwrap().is_empty());
    assert!(matches!(
        store.workflow_version(&"wf".into(), None).await,
        Err(StoreError::WorkflowNotFound(_))
    ));
    assert_eq!(
        store
            .workflow_version(&"wf".into(), Some(1))
            .await
            .unwrap()
            .source,
        "a: 1"
    );
    // The attack: starting a deleted workflow by naming an old version.
    assert!(matches!(
        store.version_to_start(&"wf".into(), Some(1)).await,
        Err(StoreError::WorkflowNotFound(_))
    ));
    assert!(matches!(
        store.delete_workflow(&"nope".into()).await,
        Err(StoreError::WorkflowNotFound(_))
    ));
}

fn started(run: &str) -> StoredEvent {
    event(
        run,
        0,
        RunEvent::RunStarted {
            workflow_id: "wf".into(),
            workflow_version: 1,
            variables: Default::default(),
            started_by: "ada".into(),
            started_by_id: None,
            seed: None,
        },
    )
}

fn failed(run: &str, seq: u64) -> StoredEvent {
    event(
        run,
        seq,
        RunEvent::TaskFailed {
            task: "a".into(),
            reason: "x".into(),
        },
    )
}

#[tokio::test]
async fn events_come_back_in_order_and_a_second_writer_is_refused() {
    let store = Store::memory().await.unwrap();
    store
        .create_run(&record("r1"), &started("r1"))
        .await
        .unwrap();
    let skipped = event("r1", 2, RunEvent::TaskSkipped { task: "b".into() });
    store
        .append_events(&[failed("r1", 1), skipped.clone()], 1)
        .await
        .unwrap();
    let more = event("r1", 3, RunEvent::TaskSkipped { task: "c".into() });
    store
        .append_events(std::slice::from_ref(&more), 1)
        .await
        .unwrap();
    assert_eq!(
        store.run_events(&"r1".into()).await.unwrap(),
        vec![started("r1"), failed("r1", 1), skipped, more]
    );
    // A writer that saw the log up to event 0 appends from event 1, where a chunk
    // already starts.
    assert!(
        matches!(
            store.append_events(&[failed("r1", 1)], 1).await,
            Err(StoreError::Database(_))
        ),
        "a second event 1 must be refused by the log's unique index"
    );
    assert_eq!(
        store.run_events(&"r1".into()).await.unwrap().len(),
        4,
        "the refused write left the log intact"
    );
}

#[tokio::test]
async fn an_append_of_events_that_do_not_follow_one_another_is_refused() {
    let store = Store::memory().await.unwrap();
    store
        .create_run(&record("r1"), &started("r1"))
        .await
        .unwrap();
    let error = store
        .append_events(&[failed("r1", 2), failed("r1", 1)], 1)
        .await
        .unwrap_err();
    assert!(error.to_string().contains("consecutive"), "{error}");
    let error = store
        .append_events(&[failed("r1", 1), failed("other", 2)], 1)
        .await
        .unwrap_err();
    assert!(error.to_string().contains("one run"), "{error}");
    assert_eq!(store.run_events(&"r1".into()).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_log_with_a_gap_or_an_overlap_is_reported_not_replayed() {
    let store = Store::memory().await.unwrap();
    store
        .create_run(&record("gap"), &started("gap"))
        .await
        .unwrap();
    store.append_events(&[failed("gap", 2)], 1).await.unwrap();
    let error = store.run_events(&"gap".into()).await.unwrap_err();
    assert!(error.to_string().contains("broken"), "{error}");

    store
        .create_run(&record("overlap"), &started("overlap"))
        .await
        .unwrap();
    store
        .append_events(&[failed("overlap", 1), failed("overlap", 2)], 1)
        .await
        .unwrap();
    // Only a writer that ignores the chain could write this: it must not go unseen.
    store
        .append_events(&[failed("overlap", 2)], 1)
        .await
        .unwrap();
    let error = store.run_events(&"overlap".into()).await.unwrap_err();
    assert!(error.to_string().contains("broken"), "{error}");
}

#[tokio::test]
async fn a_log_written_one_row_per_event_is_migrated_into_chunks() {
    let db = surrealdb::engine::any::connect("mem://").await.unwrap();
    db.use_ns("troupe").use_db("troupe").await.unwrap();
    migrations::apply_up_to(&db, 2).await.unwrap();
    db.query("CREATE run CONTENT { run_id: 'r1', workflow_id: 'wf', workflow_version: 1, workflow_name: 'W', status: 'running', started_by: 'ada', created_at_ms: 1, finished_at_ms: 0 }")
        .await
        .unwrap()
        .check()
        .unwrap();
    let old = [started("r1"), failed("r1", 1)];
    for stored in &old {
        db.query("CREATE run_event CONTENT { run_id: $run, seq: $seq, at_ms: $at, kind: 'k', payload: $payload }")
            .bind(json!({"run": stored.run_id, "seq": stored.seq, "at": stored.at_ms,
                         "payload": serde_json::to_string(&stored.event).unwrap()}))
            .await
            .unwrap()
            .check()
            .unwrap();
    }
    migrations::apply(&db).await.unwrap();
    let store = Store { db };
    assert_eq!(store.run_events(&"r1".into()).await.unwrap(), old);
    // A run from before owners is in epoch 0, owned by no node.
    let unfinished = store.unfinished_runs().await.unwrap();
    assert_eq!((unfinished[0].owner.as_str(), unfinished[0].epoch), ("", 0));
    store.append_events(&[failed("r1", 2)], 0).await.unwrap();
    assert!(
        matches!(
            store.append_events(&[failed("r1", 1)], 0).await,
            Err(StoreError::Database(_))
        ),
        "migrated events keep their place in the chain"
    );
    assert_eq!(store.run_events(&"r1".into()).await.unwrap().len(), 3);
}

#[tokio::test]
async fn runs_are_listed_by_filter_and_finished() {
    let store = Store::memory().await.unwrap();
    let started = |run: &str| event(run, 0, RunEvent::RunCancelRequested { by: "x".into() });
    store
        .create_run(&record("r1"), &started("r1"))
        .await
        .unwrap();
    store
        .create_run(&record("r2"), &started("r2"))
        .await
        .unwrap();
    let finished = StoredEvent {
        run_id: "r2".into(),
        seq: 1,
        at_ms: 99,
        event: RunEvent::RunFinished {
            status: RunStatus::Completed,
            reason: None,
        },
    };
    store.append_events(&[finished], 1).await.unwrap();
    let running = store
        .runs(&RunFilter {
            status: Some(RunStatus::Running),
            workflow_id: None,
            projects: None,
            limit: Some(10),
        })
        .await
        .unwrap();
    assert_eq!(
        running
            .iter()
            .map(|r| r.run_id.as_str())
            .collect::<Vec<_>>(),
        ["r1"]
    );
    let finished = store.run(&"r2".into()).await.unwrap();
    assert_eq!(
        (finished.status, finished.finished_at_ms),
        (RunStatus::Completed, 99)
    );
    assert!(matches!(
        store.run(&"r3".into()).await,
        Err(StoreError::RunNotFound(_))
    ));
}

#[tokio::test]
async fn hostile_strings_are_data_not_queries() {
    let store = Store::memory().await.unwrap();
    let hostile = "x'; REMOVE TABLE workflow; --\" $id ⟨⟩ {{ }}";
    store
        .save_workflow(&hostile.into(), hostile, &"default".into(), hostile, 1)
        .await
        .unwrap();
    store
        .save_workflow(&"other".into(), "Other", &"default".into(), "b", 1)
        .await
        .unwrap();
    assert_eq!(
        store
            .workflow_version(&hostile.into(), None)
            .await
            .unwrap()
            .source,
        hostile
    );
    assert_eq!(store.workflows().await.unwrap().len(), 2);
}

#[tokio::test]
async fn migrations_are_recorded_and_not_reapplied() {
    let dir = tempfile::tempdir().unwrap();
    let settings = troupe_config::StoreSettings {
        url: format!("surrealkv://{}", dir.path().join("db").display()),
        ..Default::default()
    };
    {
        let store = Store::open(&settings).await.unwrap();
        store
            .save_workflow(&"wf".into(), "W", &"default".into(), "a", 1)
            .await
            .unwrap();
    }
    let store = reopen(&settings).await;
    let rows: Vec<Value> = store
        .rows(
            "SELECT VALUE version FROM schema_migration ORDER BY version",
            json!({}),
        )
        .await
        .unwrap();
    let each_once: Vec<Value> = (1..=migrations::latest()).map(|v| json!(v)).collect();
    assert_eq!(rows, each_once);
    assert_eq!(
        store
            .workflow_version(&"wf".into(), None)
            .await
            .unwrap()
            .source,
        "a",
        "data survives reopening"
    );
}

/// The embedded engine releases its lock file shortly after the last handle is dropped.
async fn reopen(settings: &troupe_config::StoreSettings) -> Store {
    for _ in 0..100 {
        match Store::open(settings).await {
            Ok(store) => return store,
            Err(error) if error.to_string().contains("locked") => {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await
            }
            Err(error) => panic!("{error}"),
        }
    }
    panic!("the store stayed locked for 5 s")
}

// ---- agent memory ----------------------------------------------------------------

fn scope(project: &str, user: &str, run: &str) -> MemoryScope {
    MemoryScope {
        project: project.into(),
        user: user.into(),
        run_id: run.into(),
    }
}

/// A unit vector at `angle` radians in the first two of `dims` dimensions: entries at
/// nearby angles are nearby, so which ones are nearest is known.
fn direction(angle: f32, dims: usize) -> Vec<f32> {
    let mut v = vec![0.0; dims];
    v[0] = angle.cos();
    v[1] = angle.sin();
    v
}

#[tokio::test]
async fn memory_search_is_nearest_first_and_never_leaves_its_scope() {
    let store = Store::memory().await.unwrap();
    store.ensure_memory_index(8).await.unwrap();
    let ours = scope("shop", "ada", "run-1");
    let meta = json!({});
    for step in 0..20 {
        let angle = step as f32 * 0.1;
        store
            .insert_memory(
                &ours,
                MemoryKind::LongTerm,
                &format!("ours {step}"),
                &meta,
                &direction(angle, 8),
            )
            .await
            .unwrap();
    }
    // Other scopes hold entries *nearer* the query than any of ours: a filter applied
    // after the index search would return them, or too few of ours.
    for other in [scope("shop", "bob", "run-2"), scope("bank", "ada", "run-3")] {
        for step in 0..20 {
            store
                .insert_memory(
                    &other,
                    MemoryKind::LongTerm,
                    "theirs",
                    &meta,
                    &direction(0.3 + step as f32 * 0.001, 8),
                )
                .await
                .unwrap();
        }
    }
    let found = store
        .search_memory(&MemoryFilter::from(&ours), &direction(0.31, 8), 3)
        .await
        .unwrap();
    let texts: Vec<&str> = found.iter().map(|entry| entry.text.as_str()).collect();
    assert_eq!(texts, ["ours 3", "ours 4", "ours 2"], "{found:?}");
    assert!(found[0].score.unwrap() > 0.99);
    assert!(found.windows(2).all(|pair| pair[0].score >= pair[1].score));
    let listed = store.memories(&MemoryFilter::from(&ours)).await.unwrap();
    assert_eq!(listed.len(), 20);
    assert!(
        listed
            .iter()
            .all(|entry| entry.user == "ada" && entry.project == "shop")
    );
}

#[tokio::test]
async fn short_term_memory_stays_in_its_run_and_deletes_are_scoped() {
    let store = Store::memory().await.unwrap();
    store.ensure_memory_index(4).await.unwrap();
    let first = scope("shop", "ada", "run-1");
    let id = store
        .insert_memory(
            &first,
            MemoryKind::ShortTerm,
            "plan of run 1",
            &json!({"agent": "planner"}),
            &direction(0.0, 4),
        )
        .await
        .unwrap();
    let same_run = store
        .search_memory(&MemoryFilter::from(&first), &direction(0.0, 4), 5)
        .await
        .unwrap();
    assert_eq!(same_run.len(), 1);
    assert_eq!(same_run[0].metadata, json!({"agent": "planner"}));
    let next_run = scope("shop", "ada", "run-2");
    assert!(
        store
            .search_memory(&MemoryFilter::from(&next_run), &direction(0.0, 4), 5)
            .await
            .unwrap()
            .is_empty()
    );
    // Another user cannot delete it, nor learn that it exists.
    assert!(!store.delete_memory("shop", "mallory", &id).await.unwrap());
    assert!(store.delete_memory("shop", "ada", &id).await.unwrap());
    assert!(
        store
            .memories(&MemoryFilter::from(&first))
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn memory_refuses_an_embedding_model_of_another_dimension() {
    let store = Store::memory().await.unwrap();
    store.ensure_memory_index(4).await.unwrap();
    store
        .insert_memory(
            &scope("p", "u", "r"),
            MemoryKind::Episodic,
            "x",
            &json!({}),
            &direction(0.0, 4),
        )
        .await
        .unwrap();
    let error = store.ensure_memory_index(8).await.unwrap_err().to_string();
    assert!(
        error.contains("4-dimension") && error.contains("gives 8"),
        "{error}"
    );
    let no_scope = store
        .insert_memory(
            &scope("", "u", "r"),
            MemoryKind::Episodic,
            "x",
            &json!({}),
            &direction(0.0, 4),
        )
        .await;
    assert!(
        matches!(no_scope, Err(StoreError::InvalidRequest(ref reason)) if reason.contains("needs a project")),
        "{no_scope:?}"
    );
}

/// The HNSW index is approximate: over 2,000 random 32-dimension entries its top 10
/// must hold at least 90% of the exact top 10 (published figures for SurrealDB's HNSW
/// are as low as 0.86, so this is measured, not assumed).
#[tokio::test]
async fn memory_recall_through_the_index_finds_the_true_nearest() {
    const DIMS: usize = 32;
    let store = Store::memory().await.unwrap();
    store.ensure_memory_index(DIMS).await.unwrap();
    let ours = scope("p", "u", "r");
    // A fixed linear congruential sequence: the same vectors every run, no extra crate.
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((seed >> 33) as f32 / (1u64 << 31) as f32) * 2.0 - 1.0
    };
    let mut vectors = Vec::new();
    for i in 0..2000 {
        let v: Vec<f32> = (0..DIMS).map(|_| next()).collect();
        store
            .insert_memory(
                &ours,
                MemoryKind::LongTerm,
                &format!("e{i}"),
                &json!({}),
                &v,
            )
            .await
            .unwrap();
        vectors.push((format!("e{i}"), v));
    }
    let cosine = |a: &[f32], b: &[f32]| {
        let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
        let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
        dot / (norm(a) * norm(b))
    };
    let (mut found, mut wanted) = (0, 0);
    for _ in 0..20 {
        let query: Vec<f32> = (0..DIMS).map(|_| next()).collect();
        let mut exact: Vec<(f32, &str)> = vectors
            .iter()
            .map(|(text, v)| (cosine(&query, v), text.as_str()))
            .collect();
        exact.sort_by(|a, b| b.0.total_cmp(&a.0));
        let truth: Vec<&str> = exact.iter().take(10).map(|(_, text)| *text).collect();
        let got = store
            .search_memory(&MemoryFilter::from(&ours), &query, 10)
            .await
            .unwrap();
        wanted += truth.len();
        found += got
            .iter()
            .filter(|entry| truth.contains(&entry.text.as_str()))
            .count();
    }
    let recall = found as f64 / wanted as f64;
    println!("HNSW recall@10 over 2,000 entries: {recall:.3}");
    assert!(recall >= 0.9, "recall@10 {recall:.3}");
}

#[tokio::test]
async fn a_projects_policy_is_kept_and_replaced() {
    let store = Store::memory().await.unwrap();
    let project = ProjectId::from("default");
    assert_eq!(
        store.project_policy(&project).await.unwrap().allowed_kinds,
        Vec::<String>::new(),
        "never set: no grants"
    );
    let mut policy = ProjectPolicy {
        project_id: project.clone(),
        allowed_kinds: vec!["shell".into()],
        gated_kinds: vec!["deployment_agent".into()],
        allowed_networks: vec!["10.1.0.0/16".into()],
        updated_by: "ada".into(),
        updated_at_ms: 1,
    };
    store.set_project_policy(&policy).await.unwrap();
    assert_eq!(store.project_policy(&project).await.unwrap(), policy);
    policy.allowed_kinds.clear();
    policy.gated_kinds.clear();
    store.set_project_policy(&policy).await.unwrap();
    assert_eq!(store.project_policy(&project).await.unwrap(), policy);
}

#[tokio::test]
async fn a_policy_written_before_gates_existed_reads_as_gating_nothing() {
    let db = surrealdb::engine::any::connect("mem://").await.unwrap();
    db.use_ns("troupe").use_db("troupe").await.unwrap();
    migrations::apply_up_to(&db, 13).await.unwrap();
    db.query(
        "UPSERT project_policy:shop CONTENT { project_id: 'shop', allowed_kinds: ['shell'], \
         updated_by: 'ada', updated_at_ms: 1 }",
    )
    .await
    .unwrap()
    .check()
    .unwrap();
    migrations::apply(&db).await.unwrap();
    let policy = Store { db }.project_policy(&"shop".into()).await.unwrap();
    assert_eq!(policy.allowed_kinds, ["shell"]);
    assert!(policy.gated_kinds.is_empty(), "{policy:?}");
    assert!(policy.allowed_networks.is_empty(), "{policy:?}");
}

/// A new version cannot move a workflow to another project: checked in the write's own
/// transaction, so two racing saves cannot both pass a check made before it.
#[tokio::test]
async fn a_new_version_cannot_move_a_workflow_to_another_project() {
    let store = Store::memory().await.unwrap();
    let id = WorkflowId::from("wf");
    store
        .save_workflow(&id, "W", &"shop".into(), "a: 1", 1)
        .await
        .unwrap();
    let moved = store
        .save_workflow(&id, "W", &"bank".into(), "a: 2", 2)
        .await;
    match moved {
        Err(StoreError::InvalidRequest(message)) => assert_eq!(
            message,
            "workflow `wf` belongs to project `shop`; a new version cannot move it to `bank` \
             (give the workflow another id)"
        ),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(
        store.workflow_version(&id, None).await.unwrap().version,
        1,
        "nothing of the refused version was written"
    );
    assert_eq!(
        store
            .save_workflow(&id, "W", &"shop".into(), "a: 3", 3)
            .await
            .unwrap(),
        2
    );
}

/// The fence: a take-over moves the run to the next epoch, and from then on an append in
/// the old epoch writes nothing and says why; a second take-over from the same epoch
/// loses; a finished run is nobody's to take.
#[tokio::test]
async fn a_take_over_fences_the_previous_owner_out_of_the_log() {
    let store = Store::memory().await.unwrap();
    store
        .create_run(&record("r1"), &started("r1"))
        .await
        .unwrap();
    assert_eq!(
        store
            .take_over_run(&"r1".into(), 1, "node-b")
            .await
            .unwrap(),
        Some(2)
    );
    match store.append_events(&[failed("r1", 1)], 1).await {
        Err(StoreError::Fenced { run, epoch }) => assert_eq!((run.as_str(), epoch), ("r1", 1)),
        other => panic!("the old owner appended: {other:?}"),
    }
    assert_eq!(store.run_events(&"r1".into()).await.unwrap().len(), 1);
    store.append_events(&[failed("r1", 1)], 2).await.unwrap();
    assert_eq!(
        store
            .take_over_run(&"r1".into(), 1, "node-c")
            .await
            .unwrap(),
        None,
        "node-c read epoch 1 before node-b took the run over"
    );
    let unfinished = store.unfinished_runs().await.unwrap();
    assert_eq!(
        unfinished,
        [RunOwnership {
            run_id: "r1".into(),
            owner: "node-b".into(),
            epoch: 2
        }]
    );
    let finished = event(
        "r1",
        2,
        RunEvent::RunFinished {
            status: RunStatus::Completed,
            reason: None,
        },
    );
    store.append_events(&[finished], 2).await.unwrap();
    assert!(store.unfinished_runs().await.unwrap().is_empty());
    assert_eq!(
        store
            .take_over_run(&"r1".into(), 2, "node-c")
            .await
            .unwrap(),
        None
    );
}

/// Nodes racing to take one run over from the same epoch: exactly one wins.
#[tokio::test]
async fn of_nodes_racing_to_take_a_run_over_exactly_one_wins() {
    let store = Store::memory().await.unwrap();
    store
        .create_run(&record("r1"), &started("r1"))
        .await
        .unwrap();
    let racers = (0..8).map(|node| {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .take_over_run(&"r1".into(), 1, &format!("node-{node}"))
                .await
        })
    });
    let mut won = Vec::new();
    for racer in racers {
        if let Some(epoch) = racer.await.unwrap().unwrap() {
            won.push(epoch);
        }
    }
    assert_eq!(won, [2]);
}

/// A node that missed its renewals may be declared dead by another, once: its lease
/// ends, and its next renewal fails. One that renewed lately may not.
#[tokio::test]
async fn a_silent_node_is_declared_dead_and_a_renewing_one_is_not() {
    let store = Store::memory().await.unwrap();
    let advert = NodeAdvert::default();
    let incarnation = store.register_node("a", &advert, 60_000).await.unwrap();
    assert!(
        !store.declare_dead("a", incarnation, 1_000).await.unwrap(),
        "just renewed"
    );
    tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    assert!(
        !store.declare_dead("a", incarnation + 1, 20).await.unwrap(),
        "another incarnation"
    );
    assert!(
        !store.declare_dead("b", 1, 20).await.unwrap(),
        "no such node"
    );
    assert!(store.declare_dead("a", incarnation, 20).await.unwrap());
    assert!(!store.nodes().await.unwrap()[0].live);
    assert!(
        !store.declare_dead("a", incarnation, 20).await.unwrap(),
        "dead already"
    );
    let load = json!({});
    assert!(
        !store
            .renew_node_lease("a", incarnation, 60_000, &load)
            .await
            .unwrap()
    );
}

/// Leases by the store's clock: a node registers, renews, and a newer incarnation of its
/// name (a restart) or an ended lease stops the old one renewing.
#[tokio::test]
async fn a_node_s_lease_is_renewed_until_a_newer_incarnation_or_leaving_ends_it() {
    let store = Store::memory().await.unwrap();
    let advert = |api: &str| NodeAdvert {
        api_address: api.into(),
        cluster_address: "a.internal:7710".into(),
        labels: vec!["gpu".into()],
    };
    assert_eq!(
        store
            .register_node("a", &advert("127.0.0.1:1"), 5_000)
            .await
            .unwrap(),
        1
    );
    let load = json!({"free_slots": 8});
    assert!(store.renew_node_lease("a", 1, 5_000, &load).await.unwrap());
    let nodes = store.nodes().await.unwrap();
    assert_eq!(nodes.len(), 1);
    assert!(nodes[0].live && nodes[0].lease_age_ms < 5_000, "{nodes:?}");
    assert_eq!(nodes[0].load, load);
    assert_eq!(
        (
            nodes[0].cluster_address.as_str(),
            nodes[0].labels.as_slice()
        ),
        ("a.internal:7710", ["gpu".to_string()].as_slice())
    );
    assert_eq!(
        store
            .register_node("a", &advert("127.0.0.1:2"), 5_000)
            .await
            .unwrap(),
        2
    );
    assert!(!store.renew_node_lease("a", 1, 5_000, &load).await.unwrap());
    assert!(store.renew_node_lease("a", 2, 5_000, &load).await.unwrap());
    store.leave_cluster("a", 2).await.unwrap();
    assert!(!store.nodes().await.unwrap()[0].live);
    assert!(!store.renew_node_lease("a", 2, 5_000, &load).await.unwrap());
    store
        .register_node("b", &advert("127.0.0.1:3"), 1)
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let b = store.nodes().await.unwrap().pop().unwrap();
    assert_eq!(
        (b.name.as_str(), b.live),
        ("b", false),
        "a 1 ms lease lapses"
    );
}

/// An attempt's outcome is kept by its idempotency key until its run is forgotten; a
/// second record of the same key (the same attempt) replaces the first.
#[tokio::test]
async fn attempt_outcomes_are_found_by_key_and_forgotten_with_their_run() {
    let store = Store::memory().await.unwrap();
    let record = |run: &str, key: &str, outputs: i64| AttemptRecord {
        run_id: run.into(),
        idempotency_key: key.into(),
        epoch: 2,
        node: "b".into(),
        outcome: json!({"succeeded": {"outputs": {"n": outputs}, "cost_usd": 0.0}}),
    };
    assert_eq!(store.attempt_outcome("r1:t:1").await.unwrap(), None);
    store
        .record_attempt_outcome(&record("r1", "r1:t:1", 1))
        .await
        .unwrap();
    store
        .record_attempt_outcome(&record("r1", "r1:t:1", 2))
        .await
        .unwrap();
    store
        .record_attempt_outcome(&record("r2", "r2:t:1", 3))
        .await
        .unwrap();
    assert_eq!(
        store.attempt_outcome("r1:t:1").await.unwrap(),
        Some(record("r1", "r1:t:1", 2))
    );
    store.forget_attempt_outcomes(&"r1".into()).await.unwrap();
    assert_eq!(store.attempt_outcome("r1:t:1").await.unwrap(), None);
    assert!(store.attempt_outcome("r2:t:1").await.unwrap().is_some());
}
