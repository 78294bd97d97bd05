//! Helpers for end-to-end tests: start the real `troupe` binary on a free loopback port
//! with its own data directory, talk to it over real HTTP, kill it for real.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub mod chat_provider;
pub mod otlp;
pub mod prometheus;
pub mod webdriver;

pub fn troupe() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_troupe"));
    command
        .env_remove("TROUPE_STORE__URL")
        .env_remove("TROUPE_SERVER__ADDRESS")
        .env("TROUPE_MODELS__DIR", models_dir())
        // Nodes require accounts by default. Tests of other features run single-user;
        // tests/auth.rs turns accounts on with `--set auth.required=true` (a flag wins
        // over the environment) and checks the default without this variable.
        .env("TROUPE_AUTH__REQUIRED", "false")
        // Throw-away passwords: the cheapest Argon2 (see AuthSettings).
        .env("TROUPE_AUTH__PASSWORD_HASH_MEMORY_KIB", "8")
        .env("TROUPE_AUTH__PASSWORD_HASH_PASSES", "1")
        // Tests name repositories and work directories in temporary directories and in
        // this checkout's examples; the node's own directory stays a root too.
        .env("TROUPE_AGENTS__WORKSPACE_ROOTS", workspace_roots())
        .env("USER", "tester");
    command
}

/// `agents.workspace_roots` for test nodes, as a TOML list.
fn workspace_roots() -> String {
    let roots = [
        std::env::temp_dir(),
        PathBuf::from(env!("CARGO_MANIFEST_DIR")),
        PathBuf::from("."),
    ];
    let quoted: Vec<String> = roots
        .iter()
        .map(|root| format!("{:?}", root.display().to_string()))
        .collect();
    format!("[{}]", quoted.join(", "))
}

/// The default models for tests: `TEST_MODELS_DIR` (CI fetches into it first), or a
/// shared temp folder that the first `troupe up` fills.
/// `troupe <args>` with `stdin` as its standard input and accounts at their default.
pub fn troupe_with_input(
    dir: &std::path::Path,
    args: &[&str],
    stdin: &str,
) -> std::process::Output {
    use std::io::Write;
    let mut child = troupe()
        .env_remove("TROUPE_AUTH__REQUIRED")
        .current_dir(dir)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

pub fn models_dir() -> PathBuf {
    std::env::var_os("TEST_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("troupe-test-models"))
}

pub fn run_troupe(dir: &Path, args: &[&str]) -> Output {
    troupe()
        .current_dir(dir)
        .args(args)
        .output()
        .expect("the troupe binary runs")
}

/// Creates a user on the store offline (`troupe users create`); its one-time password.
pub fn create_user_offline(dir: &Path, store: &str, email: &str, role: &str) -> String {
    let created = run_troupe(
        dir,
        &[
            "--set", store, "users", "create", "--email", email, "--role", role,
        ],
    );
    let stdout = String::from_utf8_lossy(&created.stdout).into_owned();
    assert!(
        created.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&created.stderr)
    );
    stdout.rsplit(": ").next().unwrap().trim().to_string()
}

/// Grants `kinds` to the `default` project on the store offline (`troupe projects
/// allow`): kinds that run code or reach the network are off until granted.
pub fn allow_kinds_offline(dir: &Path, store: &str, kinds: &[&str]) {
    require_jail_for(kinds);
    let mut args = vec!["--set", store, "projects", "allow", "default"];
    args.extend_from_slice(kinds);
    let allowed = run_troupe(dir, &args);
    assert!(
        allowed.status.success(),
        "{}{}",
        String::from_utf8_lossy(&allowed.stdout),
        String::from_utf8_lossy(&allowed.stderr)
    );
}

/// Shell tasks run in bubblewrap: without it each would fail in the node, and the test
/// would wait in vain for what the task should have done. A missing `bwrap` is the
/// machine's set-up, said as such.
fn require_jail_for(kinds: &[&str]) {
    let on_path = |dir: &Path| dir.join("bwrap").is_file();
    let path = std::env::var_os("PATH").unwrap_or_default();
    assert!(
        !kinds.contains(&"shell") || std::env::split_paths(&path).any(|dir| on_path(&dir)),
        "shell tasks run jailed in bubblewrap, and `bwrap` is not on PATH: run ./scripts/setup \
         (it installs the `bubblewrap` package)"
    );
}

/// `parent/shared`, a directory jailed commands may write in: the node runs them as an
/// unprivileged user when it runs as root, who must be able to enter `parent` too.
pub fn shared_dir(parent: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let shared = parent.join("shared");
    std::fs::create_dir_all(&shared).unwrap();
    std::fs::set_permissions(parent, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
    shared
}

/// Grants `kinds` to `project` through a node without accounts.
pub fn allow_kinds(server: &Server, project: &str, kinds: &[&str]) {
    require_jail_for(kinds);
    let body = serde_json::json!({ "allowed_kinds": kinds }).to_string();
    let url = server.url(&format!("/api/v1/projects/{project}/policy"));
    let response = http1::request("PUT", &url, Some(("application/json", &body))).expect("PUT");
    assert_eq!(response.status, 200, "{}", response.body);
}

/// The cargo target directory: `CARGO_TARGET_DIR`, else `target` in the repository, as
/// the binary (`src/ui.rs`) looks for the UI bundle in it.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"))
}

pub fn free_address() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("local address").to_string()
}

/// A `troupe up` process; killed with SIGKILL when dropped.
pub struct Server {
    pub child: Child,
    pub address: String,
    pub data_dir: PathBuf,
}

impl Server {
    pub fn start(data_dir: &Path, address: &str) -> Server {
        Server::start_with(data_dir, address, &[], &[])
    }

    /// `troupe [extra args] up ...` with extra environment variables.
    pub fn start_with(
        data_dir: &Path,
        address: &str,
        extra_args: &[&str],
        env: &[(&str, &str)],
    ) -> Server {
        let data_flag = ["--data-dir", data_dir.to_str().expect("a UTF-8 path")];
        Server::spawn(troupe, data_dir, address, extra_args, &data_flag, env)
    }

    /// `troupe up` on `data_dir` with accounts at their default (required), not the
    /// single-user setting the other tests run with.
    pub fn start_with_accounts(data_dir: &Path, address: &str, extra_args: &[&str]) -> Server {
        let with_accounts = || {
            let mut command = troupe();
            command.env_remove("TROUPE_AUTH__REQUIRED");
            command
        };
        let data_flag = ["--data-dir", data_dir.to_str().expect("a UTF-8 path")];
        Server::spawn(
            with_accounts,
            data_dir,
            address,
            extra_args,
            &data_flag,
            &[],
        )
    }

    /// `troupe [store args] up` on a store named by settings flags, not a data directory;
    /// `log_base` names its log (`log_base.log`).
    pub fn start_on_store(log_base: &Path, address: &str, store_args: &[&str]) -> Server {
        Server::spawn(troupe, log_base, address, store_args, &[], &[])
    }

    /// Starts `troupe up` from `command()`, on `address`, or on another free port when
    /// something took that one between `free_address` and the node's bind.
    fn spawn(
        command: impl Fn() -> Command,
        data_dir: &Path,
        address: &str,
        extra_args: &[&str],
        up_args: &[&str],
        env: &[(&str, &str)],
    ) -> Server {
        let mut address = address.to_string();
        for _ in 0..3 {
            let log = std::fs::File::create(data_dir.with_extension("log")).expect("log file");
            let child = command()
                .envs(env.iter().copied())
                .args(extra_args)
                .args(["up", "--address", &address])
                .args(up_args)
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("troupe up starts");
            let mut server = Server {
                child,
                address: address.clone(),
                data_dir: data_dir.into(),
            };
            match server.wait_ready() {
                Ok(()) => return server,
                Err(log) if log.contains("Address already in use") => address = free_address(),
                Err(log) => panic!("troupe up did not become ready; its log:\n{log}"),
            }
        }
        panic!("troupe up found every port it was given taken");
    }

    /// Waits up to 60 s for `/readyz`; the log when the node exited or never got there.
    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(response) = http1::blocking_get(&self.url("/readyz"))
                && response == 200
            {
                return Ok(());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("(it exited: {status})\n{}", self.log()));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(format!("(not ready in 60 s)\n{}", self.log()))
    }

    /// What the node has written to its log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data_dir.with_extension("log")).unwrap_or_default()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// Sends `signal` (`STOP`, `CONT`, `TERM`) to the process: `STOP` freezes it as a
    /// stalled machine would, `TERM` asks it to shut down.
    pub fn signal(&self, signal: &str) {
        let sent = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .expect("kill runs (procps)");
        assert!(sent.success(), "kill -{signal}");
    }

    /// SIGKILL: no shutdown code runs, as when a machine dies.
    pub fn kill(mut self) {
        self.child.kill().expect("kill");
        self.child.wait().expect("reap");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _already_dead = self.child.kill();
        let _reaped = self.child.wait();
    }
}

pub mod http1 {
    //! A tiny blocking HTTP/1.1 client over std, so the tests need no async runtime.
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::time::Duration;

    pub struct Response {
        pub status: u16,
        /// The status line and the header lines.
        pub head: String,
        pub body: String,
    }

    impl Response {
        /// The value of header `name` (any case), if the response has it.
        pub fn header(&self, name: &str) -> Option<&str> {
            self.head.lines().find_map(|line| {
                let (found, value) = line.split_once(':')?;
                found.eq_ignore_ascii_case(name).then(|| value.trim())
            })
        }
    }

    impl PartialEq<u16> for Response {
        fn eq(&self, other: &u16) -> bool {
            self.status == *other
        }
    }

    pub fn blocking_get(url: &str) -> std::io::Result<Response> {
        request("GET", url, None)
    }

    pub fn request(
        method: &str,
        url: &str,
        body: Option<(&str, &str)>,
    ) -> std::io::Result<Response> {
        request_with(method, url, body, &[])
    }

    /// `request` with extra header lines (`Authorization: Bearer ...`).
    pub fn request_with(
        method: &str,
        url: &str,
        body: Option<(&str, &str)>,
        headers: &[&str],
    ) -> std::io::Result<Response> {
        request_within(method, url, body, headers, Duration::from_secs(30))
    }

    /// `request_with` that gives up when the server stays silent for `timeout` (a frozen
    /// node answers nothing).
    pub fn request_within(
        method: &str,
        url: &str,
        body: Option<(&str, &str)>,
        headers: &[&str],
        timeout: Duration,
    ) -> std::io::Result<Response> {
        let rest = url.strip_prefix("http://").expect("http URL");
        let (host, path) = rest
            .split_once('/')
            .map_or((rest, "/".to_string()), |(h, p)| (h, format!("/{p}")));
        let address = std::net::ToSocketAddrs::to_socket_addrs(host)?
            .next()
            .ok_or_else(|| std::io::Error::other(format!("{host} has no address")))?;
        let mut stream = TcpStream::connect_timeout(&address, timeout)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        let (content_type, text) = body.unwrap_or(("application/json", ""));
        let extra: String = headers.iter().map(|line| format!("{line}\r\n")).collect();
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n{extra}Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{text}",
            text.len()
        )?;
        let raw = read_response(&mut stream)?;
        let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or(0);
        let body = if head.to_lowercase().contains("transfer-encoding: chunked") {
            dechunk(body)
        } else {
            body.to_string()
        };
        Ok(Response {
            status,
            head: head.to_string(),
            body,
        })
    }

    /// The whole response: up to `Content-Length` when the server sends one (some, like
    /// chromedriver, keep the connection open whatever the request asked), else to EOF.
    fn read_response(stream: &mut TcpStream) -> std::io::Result<String> {
        let mut raw = Vec::new();
        let mut buffer = [0_u8; 16 * 1024];
        loop {
            let read = stream.read(&mut buffer)?;
            if read == 0 {
                break;
            }
            raw.extend_from_slice(&buffer[..read]);
            let text = String::from_utf8_lossy(&raw);
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length = head.lines().find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())
                        .flatten()
                });
                if length.is_some_and(|length| body.len() >= length) {
                    break;
                }
            }
        }
        Ok(String::from_utf8_lossy(&raw).into_owned())
    }

    fn dechunk(mut body: &str) -> String {
        let mut out = String::new();
        while let Some((size, rest)) = body.split_once("\r\n") {
            let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
                break;
            };
            if size == 0 || rest.len() < size {
                break;
            }
            out.push_str(&rest[..size]);
            body = rest[size..].trim_start_matches("\r\n");
        }
        out
    }
}

pub fn get_json(server: &Server, path: &str) -> Value {
    let response = http1::blocking_get(&server.url(path)).expect("GET");
    serde_json::from_str(&response.body)
        .unwrap_or_else(|_| panic!("GET {path} answered {}: {}", response.status, response.body))
}

/// `get_json` with an extra header line (`Authorization: Bearer ...`).
pub fn get_json_with(server: &Server, path: &str, header: &str) -> Value {
    let response = http1::request_with("GET", &server.url(path), None, &[header]).expect("GET");
    serde_json::from_str(&response.body)
        .unwrap_or_else(|_| panic!("GET {path} answered {}: {}", response.status, response.body))
}

pub fn post(server: &Server, path: &str, content_type: &str, body: &str) -> (u16, Value) {
    let response =
        http1::request("POST", &server.url(path), Some((content_type, body))).expect("POST");
    let value = serde_json::from_str(&response.body).unwrap_or(Value::Null);
    (response.status, value)
}

/// The value of the series `series` (name and labels, as `/metrics` writes them) in a
/// scrape of `server`, if it has one.
pub fn metric(server: &Server, series: &str) -> Option<f64> {
    let scrape = http1::blocking_get(&server.url("/metrics")).expect("GET /metrics");
    assert_eq!(scrape.status, 200, "{}", scrape.body);
    scrape.body.lines().find_map(|line| {
        let value = line.strip_prefix(series)?.strip_prefix(' ')?;
        Some(value.parse().expect("a number"))
    })
}

/// Saves `workflow` on `server` and starts a run of it with `body` (variables, starter);
/// the run's id.
pub fn save_and_start(server: &Server, workflow: &str, body: &Value) -> String {
    let (status, created) = post(server, "/api/v1/workflows", "application/yaml", workflow);
    assert_eq!(status, 201, "{created}");
    let id = created["workflow_id"].as_str().expect("workflow id");
    let (status, started) = post(
        server,
        &format!("/api/v1/workflows/{id}/runs"),
        "application/json",
        &body.to_string(),
    );
    assert_eq!(status, 201, "{started}");
    started["run_id"].as_str().expect("run id").to_string()
}

/// Polls `GET /api/v1/runs/{id}` until `done` holds, for at most `seconds`.
pub fn wait_for_run(
    server: &Server,
    run_id: &str,
    seconds: u64,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    loop {
        let run = get_json(server, &format!("/api/v1/runs/{run_id}"));
        if done(&run) {
            return run;
        }
        assert!(
            Instant::now() < deadline,
            "run did not reach the expected state in {seconds} s: {run:#}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn task_status(run: &Value, task: &str) -> String {
    run["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .find(|t| t["id"] == task)
        .map(|t| t["status"].as_str().unwrap_or("").to_string())
        .unwrap_or_default()
}

/// A real SurrealDB server (`tools/surreal-server`, the official server's own `init`) on
/// a free loopback port, root user `root`/`root`: in memory, or on disk (SurrealKV) to be
/// stopped and started again on the same address; killed when dropped.
pub struct SurrealServer {
    child: Child,
    pub address: String,
    /// `memory`, or `surrealkv://DIR`.
    engine: String,
    log_path: PathBuf,
}

impl SurrealServer {
    pub fn start(log_path: &Path) -> SurrealServer {
        SurrealServer::spawn(log_path, free_address(), "memory".into())
    }

    /// A server keeping its data in `dir`.
    pub fn start_on_disk(log_path: &Path, dir: &Path) -> SurrealServer {
        let engine = format!("surrealkv://{}", dir.display());
        SurrealServer::spawn(log_path, free_address(), engine)
    }

    /// SIGKILL, as when its machine dies.
    pub fn kill(&mut self) {
        self.child.kill().expect("kill");
        self.child.wait().expect("reap");
    }

    /// Starts it again on the same address and storage (after `kill`).
    pub fn start_again(&mut self) {
        let log = self.log_path.with_extension("again.log");
        let again = SurrealServer::spawn(&log, self.address.clone(), self.engine.clone());
        *self = again;
    }

    fn spawn(log_path: &Path, address: String, engine: String) -> SurrealServer {
        let binary = std::env::var_os("TEST_SURREAL_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                panic!(
                    "TEST_SURREAL_BIN is not set: the ws:// store tests need a SurrealDB server. \
                 Run the suite with ./scripts/test (it builds one), or build it with \
                 ./scripts/build-surreal-server and export TEST_SURREAL_BIN=<the path it prints>"
                )
            });
        assert!(
            binary.is_file(),
            "TEST_SURREAL_BIN={} is not a file: build it with ./scripts/build-surreal-server",
            binary.display()
        );
        let log = std::fs::File::create(log_path).expect("log file");
        let child = Command::new(&binary)
            .args(["start", "--no-banner", "--bind", &address])
            .args(["--username", "root", "--password", "root", &engine])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|error| panic!("{} does not start: {error}", binary.display()));
        let server = SurrealServer {
            child,
            address,
            engine,
            log_path: log_path.to_path_buf(),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(response) = http1::blocking_get(&format!("http://{}/health", server.address))
                && response == 200
            {
                return server;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let log = std::fs::read_to_string(log_path).unwrap_or_default();
        panic!("the SurrealDB server did not answer /health in 60 s; its log:\n{log}");
    }

    /// The settings flags that point a `troupe` process at this server.
    pub fn store_flags(&self) -> Vec<String> {
        self.store_flags_via(&self.address)
    }

    /// The settings flags that point a `troupe` process at this server through
    /// `address` (a [`FaultProxy`] in front of it).
    pub fn store_flags_via(&self, address: &str) -> Vec<String> {
        vec![
            "--set".into(),
            format!("store.url=ws://{address}"),
            "--set".into(),
            "store.username=root".into(),
            "--set".into(),
            "store.password=root".into(),
        ]
    }
}

impl Drop for SurrealServer {
    fn drop(&mut self) {
        let _already_dead = self.child.kill();
        let _reaped = self.child.wait();
    }
}

/// A TCP proxy on a free loopback port in front of `upstream`, for cutting one link:
/// it passes bytes both ways, or (cut) swallows them while keeping the connections
/// open, as a network partition does; `heal` passes again and resets the connections
/// that lived through the cut, whose streams lost bytes.
pub struct FaultProxy {
    pub address: String,
    cut: std::sync::Arc<std::sync::atomic::AtomicBool>,
    open: std::sync::Arc<std::sync::Mutex<Vec<std::net::TcpStream>>>,
}

impl FaultProxy {
    pub fn start(upstream: &str) -> FaultProxy {
        use std::sync::atomic::AtomicBool;
        use std::sync::{Arc, Mutex};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a proxy port");
        let address = listener.local_addr().expect("proxy address").to_string();
        let cut = Arc::new(AtomicBool::new(false));
        let open = Arc::new(Mutex::new(Vec::new()));
        let (upstream, cut_flag, opened) = (upstream.to_string(), cut.clone(), open.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = std::net::TcpStream::connect(&upstream) else {
                    continue;
                };
                for stream in [&client, &server] {
                    if let Ok(clone) = stream.try_clone() {
                        opened.lock().expect("not poisoned").push(clone);
                    }
                }
                FaultProxy::pump(&client, &server, &cut_flag);
                FaultProxy::pump(&server, &client, &cut_flag);
            }
        });
        FaultProxy { address, cut, open }
    }

    /// Copies `from` to `to` on a thread of its own, dropping what arrives while cut.
    fn pump(
        from: &std::net::TcpStream,
        to: &std::net::TcpStream,
        cut: &std::sync::Arc<std::sync::atomic::AtomicBool>,
    ) {
        use std::io::{Read, Write};
        let (Ok(mut from), Ok(mut to)) = (from.try_clone(), to.try_clone()) else {
            return;
        };
        let cut = cut.clone();
        std::thread::spawn(move || {
            let mut buffer = [0_u8; 16 * 1024];
            while let Ok(read) = from.read(&mut buffer) {
                if read == 0 {
                    break;
                }
                if cut.load(std::sync::atomic::Ordering::SeqCst) {
                    continue;
                }
                if to.write_all(&buffer[..read]).is_err() {
                    break;
                }
            }
            let _closed = to.shutdown(std::net::Shutdown::Both);
        });
    }

    /// From now on nothing passes either way.
    pub fn cut(&self) {
        self.cut.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Passes again; the connections the cut broke are reset, new ones pass. The flag
    /// goes first: a client reconnects the moment its connection is reset, and while
    /// the cut still held, its new connection's handshake was dropped and it waited on
    /// it for ever (seen under load: the node never joined again).
    pub fn heal(&self) {
        self.cut.store(false, std::sync::atomic::Ordering::SeqCst);
        for stream in self.open.lock().expect("not poisoned").drain(..) {
            let _closed = stream.shutdown(std::net::Shutdown::Both);
        }
    }
}

/// A workflow that marks each step in `marks.txt` in `variables.shared`: `first`, a
/// `slow` step (marked when it starts and when it ends, 3 s apart), an approval, `last`.
/// What the marks say tells what ran how often across crashes and take-overs.
pub const MARKING_WORKFLOW: &str = r#"
name: Marking
variables:
  shared: ""
tasks:
  - id: first
    name: First
    agent: shell
    inputs: { command: "echo first >> marks.txt", working_dir: "{{ variables.shared }}" }
  - id: slow
    name: Slow
    agent: shell
    depends_on: [first]
    inputs: { command: "echo slow-start >> marks.txt; sleep 3; echo slow >> marks.txt", working_dir: "{{ variables.shared }}" }
  - id: sign_off
    name: Sign off
    agent: human_review
    depends_on: [slow]
    requires_approval: true
  - id: last
    name: Last
    agent: shell
    depends_on: [sign_off]
    inputs: { command: "echo last >> marks.txt", working_dir: "{{ variables.shared }}" }
"#;

/// How many lines of `marks` are exactly `line`.
pub fn count_marks(marks: &str, line: &str) -> usize {
    marks.lines().filter(|l| *l == line).count()
}

/// Waits (30 s at most) until the file at `path` holds `mark`: a step has begun its
/// work, not merely been recorded as running.
pub fn wait_for_mark(path: &Path, mark: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !std::fs::read_to_string(path).is_ok_and(|marks| marks.contains(mark)) {
        assert!(
            Instant::now() < deadline,
            "`{mark}` never appeared in {}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until a line of the log at `path` holds both `message` and `field` (a node's
/// log is written off the request path, so it may lag what the node did a little).
pub fn wait_for_log(path: &Path, message: &str, field: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let log = String::from_utf8_lossy(&std::fs::read(path).unwrap_or_default()).into_owned();
        if log
            .lines()
            .any(|line| line.contains(message) && line.contains(field))
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no line with `{message}` and `{field}` in {}:\n{log}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// How long a cluster node's lease lasts in a test.
#[derive(Clone, Copy)]
pub enum LeaseLength {
    /// The settings' defaults: 1 s heartbeats, a 5 s lease.
    Default,
    /// 200 ms heartbeats, a 1 s lease: take-overs within seconds.
    Short,
}

/// The secret the test clusters' nodes share.
pub const TEST_CLUSTER_COOKIE: &str = "a-test-cluster-cookie";

/// `troupe up` as cluster node `name` on `address`, reaching `surreal` through
/// `store_address` (its own, or a [`FaultProxy`] in front of it); its log is
/// `log_base.log`.
pub fn start_cluster_node(
    surreal: &SurrealServer,
    store_address: &str,
    name: &str,
    lease: LeaseLength,
    log_base: &Path,
    address: &str,
) -> Server {
    start_cluster_node_with(surreal, store_address, name, lease, log_base, address, &[])
}

/// [`start_cluster_node`] with more `--set` settings (`cluster.labels=["gpu"]`).
pub fn start_cluster_node_with(
    surreal: &SurrealServer,
    store_address: &str,
    name: &str,
    lease: LeaseLength,
    log_base: &Path,
    address: &str,
    extra: &[&str],
) -> Server {
    let mut flags = surreal.store_flags_via(store_address);
    let mut settings = vec![
        "cluster.enabled=true".to_string(),
        format!("cluster.node_name={name}"),
        // Plain links on loopback, each node on a port of its own.
        "cluster.insecure=true".into(),
        "cluster.listen=127.0.0.1:0".into(),
        format!("cluster.cookie={TEST_CLUSTER_COOKIE}"),
    ];
    if let LeaseLength::Short = lease {
        settings.extend([
            "cluster.heartbeat_ms=200".into(),
            "cluster.lease_ms=1000".into(),
        ]);
    }
    settings.extend(extra.iter().map(|setting| setting.to_string()));
    for setting in settings {
        flags.extend(["--set".to_string(), setting]);
    }
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    Server::start_on_store(log_base, address, &flags)
}

/// Waits until `server` is linked to exactly `peers`.
pub fn wait_for_links(server: &Server, peers: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let view = get_json(server, "/api/v1/cluster");
        let linked: Vec<&str> = view["linked"]
            .as_array()
            .expect("linked")
            .iter()
            .filter_map(|peer| peer.as_str())
            .collect();
        if linked == peers {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "links {linked:?}, not {peers:?}: {view}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
