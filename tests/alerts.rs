//! Alerts for real: a `troupe up` node whose runs start failing, watched at once by its
//! own alert rules (`alerts.*`) and by a real Prometheus scraping it with
//! `deploy/prometheus/alerts.yaml`, alerting through a real Alertmanager. Both must
//! fire TroupeRunFailureRate to a webhook in Alertmanager's format, and both must
//! resolve it once runs succeed again; the node must write both to its audit log and
//! show the alert on `GET /api/v1/alerts`, `troupe alerts` and, live, on the dashboard
//! in a real browser.

mod support;

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use support::prometheus::{Daemon, Webhooks};
use support::webdriver::Driver;
use support::{Server, free_address, get_json, save_and_start, wait_for_run};

const RULE: &str = "TroupeRunFailureRate";

fn workflow(name: &str, command: &str) -> String {
    format!(
        "name: {name}\ntasks:\n  - {{ id: step, name: Step, agent: shell, max_retries: 0, \
         inputs: {{ command: '{command}' }} }}\n"
    )
}

/// Runs `workflow` `times` times, one after the other, a scrape and an evaluation
/// apart (a counter's first value shows no increase: each must be seen).
fn run_times(server: &Server, workflow: &str, times: usize, status: &str) {
    for _ in 0..times {
        let run_id = save_and_start(server, workflow, &json!({}));
        let run = wait_for_run(server, &run_id, 60, |run| run["status"] != "running");
        assert_eq!(run["status"], status, "{run:#}");
        std::thread::sleep(Duration::from_millis(1500));
    }
}

/// The rules file with `for: 0s` on the rule under test, so that the test takes
/// seconds, not its 15 minutes.
fn rules_without_wait(dir: &Path) -> std::path::PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/prometheus/alerts.yaml");
    let text = std::fs::read_to_string(source).unwrap();
    let at = text.find(&format!("alert: {RULE}")).unwrap();
    let wait = at + text[at..].find("for: 15m").unwrap();
    let rewritten = format!(
        "{}for: 0s{}",
        &text[..wait],
        &text[wait + "for: 15m".len()..]
    );
    let path = dir.join("alerts.yaml");
    std::fs::write(&path, rewritten).unwrap();
    path
}

fn is(notification: &Value, status: &str) -> bool {
    notification["status"] == status
        && notification["alerts"].as_array().is_some_and(|alerts| {
            alerts
                .iter()
                .any(|a| a["labels"]["alertname"] == RULE && a["status"] == status)
        })
}

fn node_alert(server: &Server) -> Option<Value> {
    let now = get_json(server, "/api/v1/alerts");
    now["alerts"]
        .as_array()?
        .iter()
        .find(|a| a["name"] == RULE)
        .cloned()
}

#[test]
fn a_failure_rate_fires_and_resolves_in_the_node_and_through_prometheus_and_alertmanager() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path();
    let hooks = Webhooks::start();
    let alertmanager = Daemon::alertmanager(dir, &hooks.url("alertmanager"));
    let node_hook = hooks.url("node");
    let env = [
        ("TROUPE_ALERTS__EVALUATE_EVERY_SECS", "1"),
        ("TROUPE_ALERTS__RULES__RUN_FAILURE_RATE__FOR_SECS", "0"),
        ("TROUPE_ALERTS__WEBHOOK__URL", node_hook.as_str()),
    ];
    let server = Server::start_with(&dir.join("data"), &free_address(), &[], &env);
    support::allow_kinds(&server, "default", &["shell"]);
    let rules = rules_without_wait(dir);
    let alerting = Some(alertmanager.address.as_str());
    let prometheus = Daemon::prometheus(dir, &server.address, Some(&rules), alerting, &[]);
    let driver = Driver::start();
    let browser = driver.session(1400, 1000);
    browser.go(&server.url("/"));
    browser.wait_hydrated();
    browser.wait_for(
        "the quiet alerts panel",
        15,
        "return !!document.querySelector('[data-testid=alerts-quiet]')",
    );

    prometheus.wait_for_scrape();
    run_times(&server, &workflow("Breaks", "exit 3"), 3, "failed");
    let fired = hooks.wait_for("node", 30, |n| is(n, "firing"));
    assert_eq!(fired["version"], "4", "{fired:#}");
    let alert = &fired["alerts"][0];
    assert_eq!(alert["labels"]["severity"], "warning", "{fired:#}");
    assert!(
        alert["annotations"]["summary"]
            .as_str()
            .unwrap()
            .contains("More than 25% of the runs"),
        "{fired:#}"
    );
    assert_eq!(alert["endsAt"], "0001-01-01T00:00:00Z", "{fired:#}");
    let shown = node_alert(&server).expect("the alert on /api/v1/alerts");
    assert_eq!(shown["state"], "firing", "{shown:#}");
    assert_eq!(shown["fingerprint"], alert["fingerprint"], "{shown:#}");
    let listed = support::run_troupe(dir, &["alerts", "--server", &server.url("")]);
    let text = String::from_utf8_lossy(&listed.stdout);
    assert_eq!(listed.status.code(), Some(1), "exit 1 while firing: {text}");
    assert!(
        text.contains(&format!("firing   warning   {RULE}")),
        "{text}"
    );
    let panel = format!("document.querySelector('[data-alert={RULE}] [data-state=firing]')");
    browser.wait_for(
        "the alert firing on the dashboard",
        10,
        &format!("return !!{panel}"),
    );
    prometheus.wait_for_alert(RULE, "firing", 30);
    let relayed = hooks.wait_for("alertmanager", 30, |n| is(n, "firing"));
    assert_eq!(
        relayed["commonLabels"]["severity"], "warning",
        "{relayed:#}"
    );

    run_times(&server, &workflow("Works", "true"), 10, "completed");
    let resolved = hooks.wait_for("node", 30, |n| is(n, "resolved"));
    assert_eq!(
        resolved["alerts"][0]["fingerprint"], alert["fingerprint"],
        "{resolved:#}"
    );
    assert!(
        node_alert(&server).is_none(),
        "resolved alerts leave /api/v1/alerts"
    );
    browser.wait_for(
        "the alert gone from the dashboard",
        10,
        &format!("return !{panel}"),
    );
    hooks.wait_for("alertmanager", 30, |n| is(n, "resolved"));

    for action in ["alert.firing", "alert.resolved"] {
        let entries = get_json(&server, &format!("/api/v1/audit?action={action}"));
        let details = |e: &Value| serde_json::from_str::<Value>(e["details"].as_str().unwrap());
        let ours = entries
            .as_array()
            .unwrap()
            .iter()
            .find(|e| details(e).unwrap()["alert"] == RULE);
        let entry = ours.unwrap_or_else(|| panic!("no {action} entry for {RULE}: {entries:#}"));
        assert_eq!(entry["target"], alert["fingerprint"], "{entry:#}");
        assert_eq!(entry["actor"], "system", "{entry:#}");
    }
}
