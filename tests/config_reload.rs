//! Settings that change without a restart, on a real `troupe up` started from a file:
//! `troupe config reload` and SIGHUP apply the live keys (alert rules, provider
//! budgets, the agent policy, the log level) and name those that wait for a restart;
//! an invalid file changes nothing and names its key and file; each reload is audited
//! with the new settings' digest, and `troupe config show` says when the node loaded.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{Server, free_address, get_json, post, run_troupe};

const FIRST: &str = "[alerts]\nevaluate_every_secs = 1\n[log]\nlevel = \"info\"\n";

/// Live: an alert threshold, the budget, the policy, the log level. For a restart:
/// the body limit.
const SECOND: &str = "[alerts]\nevaluate_every_secs = 1\n\
    [alerts.rules.run_failure_rate]\nabove = 0.1\n\
    [providers]\nbudget_usd_per_day = 3.0\n\
    [agents]\nallowed_kinds = [\"shell\"]\n\
    [log]\nlevel = \"debug\"\n\
    [server]\nmax_body_bytes = 123456\n";

fn config_now(server: &Server) -> Value {
    get_json(server, "/api/v1/config")
}

fn reload(dir: &Path, server: &Server) -> std::process::Output {
    run_troupe(dir, &["config", "reload", "--server", &server.url("")])
}

fn audit_details(server: &Server) -> Vec<(String, Value)> {
    let entries = get_json(server, "/api/v1/audit?action=config.reload");
    let entries = entries.as_array().expect("entries").iter();
    entries
        .map(|e| {
            let details = serde_json::from_str(e["details"].as_str().unwrap()).unwrap();
            (e["actor"].as_str().unwrap().to_owned(), details)
        })
        .collect()
}

/// The node started from `FIRST` in `dir/troupe.toml`.
struct Node {
    dir: tempfile::TempDir,
    file: std::path::PathBuf,
    server: Server,
}

impl Node {
    fn start() -> Node {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("troupe.toml");
        std::fs::write(&file, FIRST).unwrap();
        let config = ["--config", file.to_str().unwrap()];
        let server = Server::start_with(&dir.path().join("data"), &free_address(), &config, &[]);
        Node { dir, file, server }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("data.log")).unwrap()
    }

    /// Writes `text` to the file and reloads with the CLI.
    fn reload_with(&self, text: &str) -> std::process::Output {
        std::fs::write(&self.file, text).unwrap();
        reload(self.dir.path(), &self.server)
    }
}

/// After `SECOND`: what the CLI said, `/api/v1/config`, the budget, the log level,
/// the policy and the audit entry.
fn second_is_applied(node: &Node, started: &Value) -> Value {
    let reloaded = node.reload_with(SECOND);
    let said = String::from_utf8_lossy(&reloaded.stdout);
    let error = String::from_utf8_lossy(&reloaded.stderr);
    assert!(reloaded.status.success(), "{said}{error}");
    let applied = "Applied: agents.allowed_kinds, alerts.rules.run_failure_rate.above, \
                   log.level, providers.budget_usd_per_day";
    assert!(said.contains(applied), "{said}");
    assert!(
        said.contains("Waiting for a restart: server.max_body_bytes"),
        "{said}"
    );
    let server = &node.server;
    let now = config_now(server);
    assert!(
        now["loaded_at_ms"].as_i64() > started["loaded_at_ms"].as_i64(),
        "{now:#}"
    );
    assert_ne!(now["settings_sha256"], started["settings_sha256"]);
    assert_eq!(now["waiting_for_restart"], json!(["server.max_body_bytes"]));
    let shown = now["settings"].as_str().unwrap();
    assert!(shown.contains("above = 0.1"), "{shown}");
    assert!(!shown.contains("123456"), "the body limit waits: {shown}");
    assert_eq!(
        support::metric(server, "troupe_paid_budget_usd_per_day"),
        Some(3.0)
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while !node.log().contains("log level applied") {
        assert!(
            Instant::now() < deadline,
            "the debug level never applied:\n{}",
            node.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The policy now lets this node run shell only.
    let echoes =
        "name: Echoes\ntasks:\n  - { id: a, name: A, agent: echo, inputs: { greeting: hi } }\n";
    let (status, refused) = post(server, "/api/v1/workflows", "application/yaml", echoes);
    assert_eq!(status, 403, "{refused}");
    assert!(refused.to_string().contains("echo"), "{refused}");
    let (actor, details) = audit_details(server).pop().expect("a config.reload entry");
    assert_eq!(
        details["settings_sha256"], now["settings_sha256"],
        "{details}"
    );
    assert_eq!(details["needs_restart"], json!(["server.max_body_bytes"]));
    assert_eq!(actor, "anonymous");
    now
}

#[test]
fn live_settings_reload_from_the_file_and_the_rest_wait_for_a_restart() {
    let node = Node::start();
    let server = &node.server;
    let started = config_now(server);
    assert!(
        !node.log().contains("log level applied"),
        "no debug lines yet"
    );
    let now = second_is_applied(&node, &started);
    let audited = audit_details(server).len();

    // An invalid file changes nothing, and says which key in which file.
    let refused = node.reload_with("[alerts]\nevaluate_every_secs = 0\n");
    let error = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{error}");
    assert!(error.contains("`alerts.evaluate_every_secs`"), "{error}");
    let source = format!("config file {}", node.file.display());
    assert!(error.contains(&source), "{error}");
    assert_eq!(
        config_now(server)["settings_sha256"],
        now["settings_sha256"]
    );
    assert_eq!(audit_details(server).len(), audited, "nothing audited");

    // SIGHUP reloads too.
    std::fs::write(&node.file, FIRST).unwrap();
    server.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    while config_now(server)["settings_sha256"] == now["settings_sha256"] {
        assert!(Instant::now() < deadline, "SIGHUP did not reload");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (actor, _) = audit_details(server).pop().unwrap();
    assert_eq!(actor, "signal");
    let file = node.file.to_str().unwrap();
    let show = [
        "--config",
        file,
        "config",
        "show",
        "--server",
        &server.url(""),
    ];
    let shown = run_troupe(node.dir.path(), &show);
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(shown.contains("runs settings loaded"), "{shown}");
}
