//! Prometheus and Alertmanager for tests (Debian's `prometheus` and
//! `prometheus-alertmanager`, as ./scripts/setup installs them), each a process of its
//! own on loopback with its data in a scratch directory, and a webhook receiver that
//! keeps every notification it is sent, by path.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{Path as UrlPath, State};
use serde_json::Value;

/// A process killed when dropped.
pub struct Daemon {
    child: Child,
    pub address: String,
    log: std::path::PathBuf,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Daemon {
    /// Starts `program` with `args`, its output in `log`, and waits for `ready_path`.
    fn start(
        program: &str,
        args: &[String],
        log: &Path,
        address: String,
        ready_path: &str,
    ) -> Self {
        let log_file = std::fs::File::create(log).expect("a log file");
        let child = Command::new(program)
            .args(args)
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|error| {
                panic!("{program} does not start ({error}): run ./scripts/setup, which installs it")
            });
        let mut daemon = Daemon {
            child,
            address,
            log: log.to_owned(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        let url = format!("http://{}{ready_path}", daemon.address);
        while !super::http1::blocking_get(&url).is_ok_and(|response| response == 200) {
            if let Ok(Some(status)) = daemon.child.try_wait() {
                let text = std::fs::read_to_string(log).unwrap_or_default();
                panic!("{program} exited ({status}):\n{text}");
            }
            assert!(Instant::now() < deadline, "{program} not ready in 30 s");
            std::thread::sleep(Duration::from_millis(100));
        }
        daemon
    }

    /// Waits until Prometheus has scraped its targets (it discovers them a few seconds
    /// after it starts): what happens next is seen from its start.
    pub fn wait_for_scrape(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let url = format!("http://{}/api/v1/query?query=up", self.address);
        loop {
            let answer = super::http1::blocking_get(&url)
                .map(|r| r.body)
                .unwrap_or_default();
            let up: Value = serde_json::from_str(&answer).unwrap_or_default();
            if up["data"]["result"][0]["value"][1] == "1" {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "Prometheus has not scraped its target in 30 s: {answer}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Waits up to `secs` for Prometheus's `/api/v1/alerts` to hold `name` in `state`;
    /// panics with its answer and its log.
    pub fn wait_for_alert(&self, name: &str, state: &str, secs: u64) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        let url = format!("http://{}/api/v1/alerts", self.address);
        loop {
            let answer = super::http1::blocking_get(&url)
                .map(|r| r.body)
                .unwrap_or_default();
            let alerts: Value = serde_json::from_str(&answer).unwrap_or_default();
            let found = alerts["data"]["alerts"].as_array().is_some_and(|alerts| {
                alerts
                    .iter()
                    .any(|a| a["labels"]["alertname"] == name && a["state"] == state)
            });
            if found {
                return;
            }
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                panic!("{name} not {state} in Prometheus in {secs} s: {answer}\n{log}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Alertmanager sending every group to `webhook` within a second, resolved ones too.
    pub fn alertmanager(dir: &Path, webhook: &str) -> Daemon {
        let config = format!(
            "route:\n  receiver: hook\n  group_by: [alertname]\n  group_wait: 1s\n  \
             group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n  - name: hook\n    \
             webhook_configs:\n      - url: {webhook}\n        send_resolved: true\n"
        );
        std::fs::write(dir.join("alertmanager.yml"), config).unwrap();
        let address = super::free_address();
        let args = [
            format!("--config.file={}", dir.join("alertmanager.yml").display()),
            format!("--storage.path={}", dir.join("alertmanager-data").display()),
            format!("--web.listen-address={address}"),
            // One Alertmanager, no gossip with peers.
            "--cluster.listen-address=".into(),
        ];
        let log = dir.join("alertmanager.log");
        Daemon::start("prometheus-alertmanager", &args, &log, address, "/-/ready")
    }

    /// Prometheus scraping `target` every second, evaluating `rules` every second and
    /// alerting to `alertmanager` when given, with `flags` added (`--enable-feature=...`).
    pub fn prometheus(
        dir: &Path,
        target: &str,
        rules: Option<&Path>,
        alertmanager: Option<&str>,
        flags: &[&str],
    ) -> Daemon {
        let mut config = "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n".to_owned();
        if let Some(rules) = rules {
            config.push_str(&format!("rule_files: [{}]\n", rules.display()));
        }
        if let Some(alertmanager) = alertmanager {
            config.push_str(&format!(
                "alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['{alertmanager}']\n"
            ));
        }
        config.push_str(&format!(
            "scrape_configs:\n  - job_name: troupe\n    static_configs:\n      - targets: ['{target}']\n"
        ));
        std::fs::write(dir.join("prometheus.yml"), config).unwrap();
        let address = super::free_address();
        let mut args = vec![
            format!("--config.file={}", dir.join("prometheus.yml").display()),
            format!(
                "--storage.tsdb.path={}",
                dir.join("prometheus-data").display()
            ),
            format!("--web.listen-address={address}"),
            // A resolved or newly firing alert goes at once; this is for resends only.
            "--rules.alert.resend-delay=1s".into(),
        ];
        args.extend(flags.iter().map(|flag| flag.to_string()));
        let log = dir.join("prometheus.log");
        Daemon::start("prometheus", &args, &log, address, "/-/ready")
    }

    /// Prometheus's answer to `GET path` (its HTTP API), as JSON.
    pub fn api(&self, path: &str) -> Value {
        let url = format!("http://{}{path}", self.address);
        let answer = super::http1::blocking_get(&url).expect("Prometheus answers");
        serde_json::from_str(&answer.body).unwrap_or_default()
    }
}

#[derive(Clone, Default)]
struct Kept(Arc<Mutex<Vec<(String, Value)>>>);

async fn keep(State(kept): State<Kept>, UrlPath(path): UrlPath<String>, Json(body): Json<Value>) {
    kept.0.lock().unwrap().push((path, body));
}

/// Takes JSON POSTed to `/{name}` and keeps it, until dropped.
pub struct Webhooks {
    pub address: String,
    kept: Kept,
    _runtime: tokio::runtime::Runtime,
}

impl Webhooks {
    pub fn start() -> Webhooks {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let kept = Kept::default();
        let router = axum::Router::new()
            .route("/{name}", axum::routing::post(keep))
            .with_state(kept.clone());
        runtime.spawn(async move { axum::serve(listener, router).await });
        Webhooks {
            address,
            kept,
            _runtime: runtime,
        }
    }

    pub fn url(&self, name: &str) -> String {
        format!("http://{}/{name}", self.address)
    }

    /// The first notification to `/{name}` that `matches`, within `secs`.
    pub fn wait_for(&self, name: &str, secs: u64, matches: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let found = self
                .kept
                .0
                .lock()
                .unwrap()
                .iter()
                .find_map(|(path, body)| (path == name && matches(body)).then(|| body.clone()));
            if let Some(body) = found {
                return body;
            }
            let kept = self.kept.0.lock().unwrap().clone();
            assert!(
                Instant::now() < deadline,
                "no such notification to /{name} in {secs} s; kept: {kept:#?}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}
