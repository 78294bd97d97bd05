//! The cluster, end to end: `troupe up` processes that share a real SurrealDB server,
//! one process per node. When the node running a run dies, another takes the run over
//! once the dead node's lease lapses and finishes it: the attempt that was running is
//! resumed once, no completed task runs again, and the log has no gap.

mod support;

use std::time::{Duration, Instant};

use support::*;

/// `troupe up` as cluster node `name` on `surreal`.
fn start_node(dir: &std::path::Path, surreal: &SurrealServer, name: &str) -> Server {
    let (log, address) = (dir.join(name), free_address());
    start_cluster_node(
        surreal,
        &surreal.address,
        name,
        LeaseLength::Default,
        &log,
        &address,
    )
}

/// The node the run record says `task`'s latest attempt went to.
fn task_node(run: &serde_json::Value, task: &str) -> String {
    run["tasks"]
        .as_array()
        .and_then(|tasks| tasks.iter().find(|t| t["id"] == task))
        .and_then(|t| t["node"].as_str())
        .unwrap_or_else(|| panic!("{task} has no node: {run:#}"))
        .to_string()
}

/// The members `server` sees live, by name.
fn live_members(server: &Server) -> Vec<String> {
    get_json(server, "/api/v1/cluster")["members"]
        .as_array()
        .expect("a list of nodes")
        .iter()
        .filter(|node| node["live"] == true)
        .map(|node| node["name"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Kills the owner while `slow` runs; the survivor resumes the attempt, then waits
/// for the approval, which it takes and finishes the run with.
#[test]
fn a_run_whose_node_dies_is_taken_over_and_finished_by_another() {
    let dir = tempfile::tempdir().unwrap();
    let surreal = SurrealServer::start(&dir.path().join("surreal.log"));
    let shared = shared_dir(dir.path());
    let a = start_node(dir.path(), &surreal, "a");
    let b = start_node(dir.path(), &surreal, "b");
    let deadline = Instant::now() + Duration::from_secs(30);
    while live_members(&b) != ["a", "b"] {
        assert!(Instant::now() < deadline, "a and b never both live");
        std::thread::sleep(Duration::from_millis(100));
    }
    let status = run_troupe(dir.path(), &["cluster", "status", "--server", &b.url("")]);
    let stdout = String::from_utf8_lossy(&status.stdout);
    assert!(status.status.success(), "{stdout}");
    let states: Vec<(&str, &str)> = stdout
        .lines()
        .skip(1)
        .filter_map(|line| {
            let mut columns = line.split_whitespace();
            Some((columns.next()?, columns.next()?))
        })
        .collect();
    assert_eq!(states, [("a", "live"), ("b", "live")], "{stdout}");
    allow_kinds(&a, "default", &["shell"]);
    let body = serde_json::json!({"variables": {"shared": shared.display().to_string()}, "started_by": "ada"});
    let run_id = save_and_start(&a, MARKING_WORKFLOW, &body);
    let run = get_json(&a, &format!("/api/v1/runs/{run_id}"));
    assert_eq!(
        (run["owner"].as_str(), run["epoch"].as_u64()),
        (Some("a"), Some(1))
    );

    let marks_path = shared.join("marks.txt");
    wait_for_mark(&marks_path, "slow-start");
    // Placed on b, `slow` runs on through a's death and b's take-over joins it; placed
    // on a, it dies with a and b runs it again.
    let slow_on = task_node(&get_json(&a, &format!("/api/v1/runs/{run_id}")), "slow");
    a.kill();
    let killed = Instant::now();
    let run = wait_for_run(&b, &run_id, 60, |run| run["owner"] == "b");
    eprintln!(
        "failover: the run moved to b {} ms after a was killed",
        killed.elapsed().as_millis()
    );
    assert_eq!(run["epoch"], 2, "{run:#}");
    assert_eq!(live_members(&b), ["b"]);
    // a's link closed with its process and it missed its renewals: b declared it dead
    // without waiting out its 5 s lease.
    // (The log is written off the request path, so it may lag the take-over a little.)
    wait_for_log(&dir.path().join("b.log"), "declared dead", "node=a");

    wait_for_run(&b, &run_id, 60, |run| {
        task_status(run, "sign_off") == "waiting_approval"
    });
    let decision = r#"{"decision": "approve", "approver": "bob"}"#;
    let (status, answer) = post(
        &b,
        &format!("/api/v1/runs/{run_id}/tasks/sign_off/decision"),
        "application/json",
        decision,
    );
    assert_eq!(status, 200, "{answer}");
    let run = wait_for_run(&b, &run_id, 30, |run| run["status"] != "running");
    assert_eq!(run["status"], "completed", "{run:#}");

    let marks = std::fs::read_to_string(&marks_path).unwrap();
    assert_eq!(
        count_marks(&marks, "first"),
        1,
        "completed on a: never again\n{marks}"
    );
    let starts = if slow_on == "b" { 1 } else { 2 };
    assert_eq!(
        count_marks(&marks, "slow-start"),
        starts,
        "slow ran on {slow_on}: joined or resumed once on b\n{marks}"
    );
    assert_eq!(count_marks(&marks, "slow"), 1, "{marks}");
    assert_eq!(count_marks(&marks, "last"), 1, "{marks}");
    let events = get_json(&b, &format!("/api/v1/runs/{run_id}/events"));
    let events = events.as_array().unwrap();
    let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (0..events.len() as u64).collect::<Vec<_>>(), "no gap");
    let requested = events
        .iter()
        .filter(|e| e["event"]["kind"] == "approval_requested")
        .count();
    assert_eq!(
        requested, 1,
        "the gate came back from the log, not asked again"
    );
}

/// A node that stops cleanly ends its lease, so its runs move at once; a node that
/// starts again under its name takes back nothing another node took over.
#[test]
fn a_node_that_stops_cleanly_hands_its_waiting_runs_over_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let surreal = SurrealServer::start(&dir.path().join("surreal.log"));
    let mut a = start_node(dir.path(), &surreal, "a");
    let b = start_node(dir.path(), &surreal, "b");
    let gated = "name: Gated\ntasks:\n  - { id: sign_off, name: Sign off, agent: human_review, requires_approval: true }\n";
    let run_id = save_and_start(&a, gated, &serde_json::json!({"started_by": "ada"}));
    wait_for_run(&a, &run_id, 30, |run| {
        task_status(run, "sign_off") == "waiting_approval"
    });
    // SIGTERM: the node shuts down and leaves the cluster.
    a.signal("TERM");
    let status = a.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let run = wait_for_run(&b, &run_id, 10, |run| run["owner"] == "b");
    assert_eq!(run["epoch"], 2);
    let a_again = start_node(dir.path(), &surreal, "a");
    std::thread::sleep(Duration::from_secs(2));
    let run = get_json(&a_again, &format!("/api/v1/runs/{run_id}"));
    assert_eq!(
        (run["owner"].as_str(), run["epoch"].as_u64()),
        (Some("b"), Some(2))
    );
}

/// The incarnation `server` sees `name` live under, if live.
fn live_incarnation(server: &Server, name: &str) -> Option<u64> {
    get_json(server, "/api/v1/cluster")["members"]
        .as_array()?
        .iter()
        .find(|node| node["name"] == name && node["live"] == true)?["incarnation"]
        .as_u64()
}

/// A frozen owner (SIGSTOP for longer than its lease) cannot fence itself, so the store
/// does: the survivor takes the run over, and when the frozen node wakes (SIGCONT), what
/// its run actor tries to append is refused. It then fences itself and joins again under
/// a new incarnation; every task completes once in the log.
#[test]
fn a_frozen_owner_that_wakes_after_a_take_over_appends_nothing_and_joins_again() {
    let dir = tempfile::tempdir().unwrap();
    let surreal = SurrealServer::start(&dir.path().join("surreal.log"));
    let shared = shared_dir(dir.path());
    let a = start_node(dir.path(), &surreal, "a");
    let b = start_node(dir.path(), &surreal, "b");
    allow_kinds(&a, "default", &["shell"]);
    let body = serde_json::json!({"variables": {"shared": shared.display().to_string()}, "started_by": "ada"});
    let run_id = save_and_start(&a, MARKING_WORKFLOW, &body);
    let marks_path = shared.join("marks.txt");
    wait_for_mark(&marks_path, "slow-start");
    let incarnation = live_incarnation(&b, "a").expect("a is live");
    a.signal("STOP");
    wait_for_run(&b, &run_id, 60, |run| run["owner"] == "b");
    wait_for_run(&b, &run_id, 60, |run| {
        task_status(run, "sign_off") == "waiting_approval"
    });
    // The gate is b's now: b counts the approval its run waits for.
    assert_eq!(metric(&b, "troupe_approvals_waiting"), Some(1.0));
    a.signal("CONT");
    let deadline = Instant::now() + Duration::from_secs(30);
    while live_incarnation(&b, "a") != Some(incarnation + 1) {
        assert!(Instant::now() < deadline, "a never joined again");
        std::thread::sleep(Duration::from_millis(100));
    }
    let decision = r#"{"decision": "approve", "approver": "bob"}"#;
    let path = format!("/api/v1/runs/{run_id}/tasks/sign_off/decision");
    // a no longer runs the run: it hands the decision to b, its owner, once linked.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, answer) = post(&a, &path, "application/json", decision);
        if status == 200 {
            break;
        }
        assert_eq!(answer["error"]["code"], "run_elsewhere", "{answer}");
        assert!(
            Instant::now() < deadline,
            "a never handed the decision on: {answer}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let (status, answer) = post(&b, &path, "application/json", decision);
    assert_eq!(status, 409, "decided once, through a: {answer}");
    assert_eq!(
        answer["error"]["code"], "not_waiting_for_approval",
        "{answer}"
    );
    let run = wait_for_run(&b, &run_id, 30, |run| run["status"] != "running");
    assert_eq!(
        (run["status"].as_str(), run["epoch"].as_u64()),
        (Some("completed"), Some(2))
    );

    let events = get_json(&b, &format!("/api/v1/runs/{run_id}/events"));
    let events = events.as_array().unwrap();
    let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (0..events.len() as u64).collect::<Vec<_>>(), "no gap");
    for task in ["first", "slow", "sign_off", "last"] {
        let completed = events
            .iter()
            .filter(|e| e["event"]["kind"] == "attempt_succeeded" && e["event"]["task"] == task)
            .count();
        assert_eq!(
            completed, 1,
            "{task} completed once in the log: {events:#?}"
        );
    }
    let marks = std::fs::read_to_string(&marks_path).unwrap();
    assert_eq!(count_marks(&marks, "first"), 1, "{marks}");
    assert_eq!(count_marks(&marks, "last"), 1, "{marks}");
    // a's renewals were kept, then it found its lease gone and let its runs go.
    let extended = r#"troupe_cluster_lease_renewals_total{outcome="extended"}"#;
    assert!(metric(&a, extended).is_some_and(|count| count > 0.0));
    assert!(metric(&a, "troupe_cluster_fences_total").is_some_and(|count| count >= 1.0));
    assert_eq!(metric(&b, "troupe_approvals_waiting"), Some(0.0));
}

/// `troupe up` as cluster node `name` with a short lease (200 ms heartbeats, 1 s lease).
fn start_quick_node(dir: &std::path::Path, surreal: &SurrealServer, name: &str) -> Server {
    start_quick_node_via(dir, surreal, name, &surreal.address)
}

/// `start_quick_node` reaching the store through `address` (a proxy in front of it).
fn start_quick_node_via(
    dir: &std::path::Path,
    surreal: &SurrealServer,
    name: &str,
    address: &str,
) -> Server {
    let (log, own_address) = (dir.join(name), free_address());
    start_cluster_node(
        surreal,
        address,
        name,
        LeaseLength::Short,
        &log,
        &own_address,
    )
}

/// What `server`'s `/readyz` says (`Null` when it does not answer in time).
fn readiness(server: &Server) -> serde_json::Value {
    http1::request_within(
        "GET",
        &server.url("/readyz"),
        None,
        &[],
        Duration::from_secs(5),
    )
    .ok()
    .and_then(|response| serde_json::from_str(&response.body).ok())
    .unwrap_or_default()
}

fn ready(server: &Server) -> bool {
    http1::request_within(
        "GET",
        &server.url("/readyz"),
        None,
        &[],
        Duration::from_secs(2),
    )
    .is_ok_and(|response| response == 200)
}

/// The store goes away (SIGKILL of the SurrealDB server, on disk) for longer than a
/// lease: the nodes stop being ready and fence themselves; when it comes back on the
/// same address they rejoin, take their runs back, and what was acknowledged before the
/// outage (a run waiting for a person) is there and goes on.
#[test]
fn the_nodes_pause_while_the_store_is_down_and_go_on_when_it_is_back() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("surreal-data");
    let mut surreal = SurrealServer::start_on_disk(&dir.path().join("surreal.log"), &data);
    let a = start_quick_node(dir.path(), &surreal, "a");
    let b = start_quick_node(dir.path(), &surreal, "b");
    let gated = "name: Gated\ntasks:\n  - { id: sign_off, name: Sign off, agent: human_review, requires_approval: true }\n  - { id: after, name: After, agent: echo, depends_on: [sign_off], inputs: { text: done } }\n";
    let run_id = save_and_start(&a, gated, &serde_json::json!({"started_by": "ada"}));
    wait_for_run(&a, &run_id, 30, |run| {
        task_status(run, "sign_off") == "waiting_approval"
    });
    let incarnation = live_incarnation(&b, "a").expect("a is live");

    surreal.kill();
    let deadline = Instant::now() + Duration::from_secs(30);
    while ready(&a) || ready(&b) {
        assert!(
            Instant::now() < deadline,
            "the nodes stayed ready without a store"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(2));
    surreal.start_again();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !(ready(&a) && ready(&b)) {
        assert!(
            Instant::now() < deadline,
            "the nodes never became ready again"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while live_incarnation(&b, "a").is_none_or(|now| now <= incarnation) {
        assert!(
            Instant::now() < deadline,
            "a never joined again after the outage"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let run = wait_for_run(&b, &run_id, 30, |run| {
        task_status(run, "sign_off") == "waiting_approval" && run["epoch"].as_u64() > Some(1)
    });
    let owner = if run["owner"] == "a" { &a } else { &b };
    let decision = r#"{"decision": "approve", "approver": "bob"}"#;
    let path = format!("/api/v1/runs/{run_id}/tasks/sign_off/decision");
    let (status, answer) = post(owner, &path, "application/json", decision);
    assert_eq!(status, 200, "{answer}");
    let run = wait_for_run(owner, &run_id, 30, |run| run["status"] != "running");
    assert_eq!(run["status"], "completed", "{run:#}");
}

/// A node cut off from the store (its link swallows everything, as a partition does)
/// stops being ready and fences itself once its lease is gone; the other takes its run
/// over and finishes it; when the link heals, the cut-off node joins again under a new
/// incarnation and takes new work.
#[test]
fn a_node_cut_off_from_the_store_stops_and_the_rest_carries_on() {
    let dir = tempfile::tempdir().unwrap();
    let surreal = SurrealServer::start(&dir.path().join("surreal.log"));
    let link = FaultProxy::start(&surreal.address);
    let a = start_quick_node_via(dir.path(), &surreal, "a", &link.address);
    let b = start_quick_node(dir.path(), &surreal, "b");
    let gated = "name: Gated\ntasks:\n  - { id: sign_off, name: Sign off, agent: human_review, requires_approval: true }\n  - { id: after, name: After, agent: echo, depends_on: [sign_off], inputs: { text: done } }\n";
    let run_id = save_and_start(&a, gated, &serde_json::json!({"started_by": "ada"}));
    wait_for_run(&a, &run_id, 30, |run| {
        task_status(run, "sign_off") == "waiting_approval"
    });
    let incarnation = live_incarnation(&b, "a").expect("a is live");

    assert_eq!(get_json(&b, "/readyz")["membership"], "member");
    link.cut();
    let deadline = Instant::now() + Duration::from_secs(30);
    while readiness(&a)["membership"] != "joining" {
        assert!(
            Instant::now() < deadline,
            "a still counts itself a member, cut off"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!ready(&a));
    let refused = http1::request_within(
        "POST",
        &a.url("/api/v1/workflows/gated/runs"),
        Some(("application/json", r#"{"started_by": "ada"}"#)),
        &[],
        Duration::from_secs(5),
    )
    .expect("a answers without its store");
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert!(refused.body.contains("not_member"), "{}", refused.body);
    let run = wait_for_run(&b, &run_id, 30, |run| run["owner"] == "b");
    assert_eq!(run["epoch"], 2);
    assert_eq!(live_members(&b), ["b"]);
    let decision = r#"{"decision": "approve", "approver": "bob"}"#;
    let path = format!("/api/v1/runs/{run_id}/tasks/sign_off/decision");
    let (status, answer) = post(&b, &path, "application/json", decision);
    assert_eq!(status, 200, "{answer}");
    let run = wait_for_run(&b, &run_id, 30, |run| run["status"] != "running");
    assert_eq!(run["status"], "completed", "{run:#}");

    link.heal();
    let deadline = Instant::now() + Duration::from_secs(60);
    while live_incarnation(&b, "a").is_none_or(|now| now <= incarnation) || !ready(&a) {
        assert!(
            Instant::now() < deadline,
            "a never joined again after the cut healed"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let again = save_and_start(&a, gated, &serde_json::json!({"started_by": "ada"}));
    let run = wait_for_run(&a, &again, 30, |run| {
        task_status(run, "sign_off") == "waiting_approval"
    });
    assert_eq!(run["owner"], "a");
}

/// A settings reload on one node is announced through the store: every other node
/// reads its own settings again, and says so in the audit log.
#[test]
fn a_reload_on_one_node_reloads_every_node() {
    let dir = tempfile::tempdir().unwrap();
    let surreal = SurrealServer::start(&dir.path().join("surreal.log"));
    let a = start_quick_node(dir.path(), &surreal, "a");
    let b = start_quick_node(dir.path(), &surreal, "b");
    let loaded = |server: &Server| get_json(server, "/api/v1/config")["loaded_at_ms"].as_i64();
    let b_started = loaded(&b);
    let reloaded = run_troupe(dir.path(), &["config", "reload", "--server", &a.url("")]);
    assert!(reloaded.status.success(), "{reloaded:?}");
    let deadline = Instant::now() + Duration::from_secs(15);
    while loaded(&b) == b_started {
        assert!(
            Instant::now() < deadline,
            "b did not follow a's reload; b's log:\n{}",
            b.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let entries = get_json(&a, "/api/v1/audit?action=config.reload");
    let by = |actor: &str, node: &str| {
        entries
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["actor"] == actor && e["target"] == node)
    };
    assert!(by("anonymous", "a") && by("cluster", "b"), "{entries:#}");
    assert!(
        !by("cluster", "a"),
        "a does not follow its own announcement: {entries:#}"
    );
}

/// The ticks whose runs `server` lists for `workflow`, in order.
fn scheduled_ticks(server: &Server, workflow: &str) -> Vec<i64> {
    let runs = get_json(server, &format!("/api/v1/runs?workflow_id={workflow}"));
    let runs = runs.as_array().expect("a list of runs");
    let mut ticks: Vec<i64> = runs
        .iter()
        .filter_map(|run| run["tick_ms"].as_i64())
        .collect();
    assert_eq!(ticks.len(), runs.len(), "a run without a tick: {runs:#?}");
    ticks.sort_unstable();
    ticks
}

/// Waits up to 75 s (a minute's tick and some) for `server` to list `count` ticks.
fn wait_for_ticks(server: &Server, workflow: &str, count: usize) -> Vec<i64> {
    let deadline = Instant::now() + Duration::from_secs(75);
    loop {
        let ticks = scheduled_ticks(server, workflow);
        if ticks.len() >= count {
            return ticks;
        }
        assert!(Instant::now() < deadline, "only {ticks:?} in 75 s");
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Three nodes look at one schedule each second. Before the second tick one is frozen
/// (SIGSTOP) and one killed: every tick still has exactly one run, and the frozen node,
/// thawed, starts no second run of the tick it slept through.
#[test]
fn a_schedule_fires_each_tick_once_across_the_cluster_with_a_node_killed_and_one_frozen() {
    let dir = tempfile::tempdir().unwrap();
    let surreal = SurrealServer::start(&dir.path().join("surreal.log"));
    let a = start_quick_node(dir.path(), &surreal, "a");
    let b = start_quick_node(dir.path(), &surreal, "b");
    let c = start_quick_node(dir.path(), &surreal, "c");
    let workflow = "name: every minute\ntriggers:\n  schedule: { cron: \"* * * * *\" }\n\
                    tasks:\n  - { id: note, name: Note, agent: echo }\n";
    let (status, created) = post(&b, "/api/v1/workflows", "application/yaml", workflow);
    assert_eq!(status, 201, "{created}");
    let id = created["workflow_id"].as_str().unwrap().to_owned();

    let first = wait_for_ticks(&b, &id, 1);
    assert_eq!(first.len(), 1, "one run for the first tick: {first:?}");
    a.signal("STOP");
    c.kill();
    let ticks = wait_for_ticks(&b, &id, 2);
    a.signal("CONT");
    std::thread::sleep(Duration::from_secs(3));
    let after = scheduled_ticks(&b, &id);
    assert_eq!(after, ticks, "the thawed node started nothing more");
    assert_eq!(after.len(), 2, "{after:?}");
    assert_eq!(
        after[1] - after[0],
        60_000,
        "consecutive minutes: {after:?}"
    );
    assert_eq!(after[0] % 60_000, 0, "ticks fall on minutes: {after:?}");
}
