//! The web UI end to end: the real binary with accounts on and its persistent store,
//! driven in headless Chromium through WebDriver. Sign in (changing the one-time
//! password), watch a run progress live, approve its gate from the inbox with the diff in
//! view and see the run go on; then every main page in both themes is checked with
//! axe-core (serious and critical violations fail) and photographed, also at phone width.
//!
//! Every page runs under a Content-Security-Policy that allows its one nonce-carrying
//! inline script and no other, so these tests also show the UI works within it.
//!
//! Needs the browser bundle (`cargo xtask ui`), Chromium and chromedriver, and axe-core
//! (`npm install axe-core` into `$HOME/.cache/troupe-npm`, or TEST_AXE_JS); `.ci/run`
//! installs them all.

mod support;

use std::path::PathBuf;

use serde_json::{Value, json};
use support::webdriver::{Browser, Driver};
use support::{
    LeaseLength, Server, SurrealServer, free_address, http1, start_cluster_node, wait_for_links,
};

const PASSWORD: &str = "ada's own long password";
const PHONE_WIDTH: u32 = 390;

const WORKFLOW: &str = r#"name: UI release
budget_usd: 5
tasks:
  - id: build
    name: Build
    agent: shell
    inputs:
      command: "sleep 2; echo built"
  - id: sign_off
    name: Sign off
    agent: human_review
    depends_on: [build]
    requires_approval: true
    inputs:
      artifact: "{{ tasks.build.outputs.stdout }}"
      patch: "diff --git a/src/lib.rs b/src/lib.rs\n--- a/src/lib.rs\n+++ b/src/lib.rs\n@@ -1,3 +1,3 @@\n fn answer() -> u32 {\n-    41\n+    42\n }\n"
  - id: release
    name: Release
    agent: shell
    depends_on: [sign_off]
    inputs:
      command: "echo released"
"#;

fn axe_source() -> String {
    let path = std::env::var_os("TEST_AXE_JS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default())
                .join(".cache/troupe-npm/node_modules/axe-core/axe.min.js")
        });
    std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "axe-core is not at {}: `npm install --prefix $HOME/.cache/troupe-npm axe-core` \
             (or set TEST_AXE_JS)",
            path.display()
        )
    })
}

/// Where screenshots go: `$CARGO_TARGET_DIR/ui-artifacts` (CI keeps them).
fn artifacts() -> PathBuf {
    let dir = support::target_dir().join("ui-artifacts");
    std::fs::create_dir_all(&dir).expect("the artefact directory");
    dir
}

/// Signs in through the node's token route (the test's own client, not the browser).
fn bearer(server: &Server) -> String {
    let body = json!({ "email": "ada@example.com", "password": PASSWORD }).to_string();
    let answer = http1::request(
        "POST",
        &server.url("/api/v1/auth/login"),
        Some(("application/json", &body)),
    )
    .expect("login");
    let value: Value = serde_json::from_str(&answer.body).expect("a token pair");
    format!(
        "Authorization: Bearer {}",
        value["access_token"].as_str().expect("a token")
    )
}

/// Saves `source` as a workflow, through the API.
fn save_workflow(server: &Server, auth: &str, source: &str) {
    let body = json!({ "source": source }).to_string();
    let created = http1::request_with(
        "POST",
        &server.url("/api/v1/workflows"),
        Some(("application/json", &body)),
        &[auth],
    )
    .expect("create");
    assert_eq!(created.status, 201, "{}", created.body);
}

fn start_run(server: &Server, auth: &str) -> String {
    save_workflow(server, auth, WORKFLOW);
    let started = http1::request_with(
        "POST",
        &server.url("/api/v1/workflows/ui-release/runs"),
        Some(("application/json", "{}")),
        &[auth],
    )
    .expect("start");
    assert_eq!(started.status, 201, "{}", started.body);
    let value: Value = serde_json::from_str(&started.body).expect("run id");
    value["run_id"].as_str().expect("run id").to_owned()
}

/// The triggers page shows a schedule's next tick, and pauses it.
fn pause_a_schedule_on_the_triggers_page(browser: &Browser, server: &Server, auth: &str) {
    save_workflow(server, auth, NIGHTLY);
    browser.go(&server.url("/triggers"));
    browser.wait_hydrated();
    browser.wait_for(
        "the schedule's next tick",
        15,
        "return document.querySelector('[data-testid=next-tick]')?.innerText.endsWith('UTC')",
    );
    browser.click(&browser.find("[data-testid=trigger] button"));
    browser.wait_for(
        "the trigger to show paused",
        10,
        "return document.querySelector('[data-testid=trigger-state]')?.innerText === 'paused' \
         && document.querySelector('[data-testid=next-tick]').innerText === 'none while paused'",
    );
    let listed = support::get_json_with(server, "/api/v1/triggers", auth);
    assert_eq!(listed[0]["paused"], true, "{listed}");
}

/// A run cancelled while it builds shows what it spent of its budget, and is retried
/// from its page: the page names the tasks that run again, and follows the run to its
/// gate.
fn retry_a_cancelled_run_from_its_page(browser: &Browser, server: &Server, auth: &str) {
    let run_id = start_run(server, auth);
    let cancel = http1::request_with(
        "POST",
        &server.url(&format!("/api/v1/runs/{run_id}/cancel")),
        Some(("application/json", "{}")),
        &[auth],
    )
    .expect("cancel");
    assert_eq!(cancel.status, 202, "{}", cancel.body);
    let path = format!("/api/v1/runs/{run_id}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while support::get_json_with(server, &path, auth)["status"] != "cancelled" {
        assert!(
            std::time::Instant::now() < deadline,
            "the run was not cancelled"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    browser.go(&server.url(&format!("/runs/{run_id}")));
    browser.wait_hydrated();
    browser.wait_for(
        "the retry button to be enabled",
        10,
        "return document.querySelector('[data-testid=retry]')?.disabled === false",
    );
    let budget = browser.run(
        "return document.querySelector('[data-testid=run-budget]').innerText",
        vec![],
    );
    assert_eq!(budget, "Spent $0.00 of a $5.00 budget (on_budget: fail)");
    browser.click(&browser.find("[data-testid=retry]"));
    browser.wait_for(
        "the page to name what runs again",
        10,
        "return [...document.querySelectorAll('.note')].some(n => n.innerText === 'Retrying: build, sign_off, release.')",
    );
    browser.wait_for(
        "the retried run to reach its gate",
        30,
        "return document.querySelector(\"[data-testid=dag] [data-task='sign_off']\")?.getAttribute('data-state') === 'waiting_approval'",
    );
}

/// A workflow that runs every night at 02:30 in Berlin.
const NIGHTLY: &str = "name: Nightly\nid: nightly\ntriggers:\n  schedule: { cron: \"30 2 * * *\", timezone: Europe/Berlin }\ntasks:\n  - { id: a, name: A, agent: echo, inputs: { a: 1 } }\n";

/// The state the run page's DAG shows for `task`.
fn dag_state(browser: &Browser, task: &str) -> String {
    browser
        .run(
            "const node = document.querySelector(`[data-testid=dag] [data-task='${arguments[0]}']`); \
             return node ? node.getAttribute('data-state') : null;",
            vec![json!(task)],
        )
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn sign_in(browser: &Browser, server: &Server, one_time: &str) {
    browser.go(&server.url("/login"));
    browser.wait_hydrated();
    browser.type_into(&browser.find("input[name=email]"), "ada@example.com");
    browser.type_into(&browser.find("input[name=password]"), one_time);
    browser.click(&browser.find("button[type=submit]"));
    // The one-time password must be replaced before anything else.
    browser.wait_for(
        "the new-password step",
        10,
        "return !!document.querySelector('input[name=new_password]')",
    );
    browser.type_into(&browser.find("input[name=new_password]"), PASSWORD);
    browser.click(&browser.find("button[type=submit]"));
    browser.wait_for(
        "the dashboard after signing in",
        15,
        "return location.pathname === '/' && !!document.querySelector('[data-testid=run-stats]')",
    );
    browser.wait_hydrated();
}

/// Signed in across the access token's expiry: with a 2-second token, page after page
/// keeps loading its data after the token expired (the browser refreshes its session
/// in the background, one refresh at a time), and nobody is sent to the sign-in page.
#[test]
fn a_browser_session_outlives_its_access_token() {
    let scratch = tempfile::tempdir().unwrap();
    let data = scratch.path().join("data");
    let store = format!("store.url=surrealkv://{}", data.display());
    let one_time =
        support::create_user_offline(scratch.path(), &store, "ada@example.com", "developer");
    let ttl = ["--set", "auth.access_ttl_secs=2"];
    let server = Server::start_with_accounts(&data, &free_address(), &ttl);
    let driver = Driver::start();
    let browser = driver.session(1280, 900);
    sign_in(&browser, &server, &one_time);
    // What each page shows once its data came back: the runs page an empty list.
    let runs = "document.body.innerText.includes('No runs match')";
    let stats = "!!document.querySelector('[data-testid=run-stats]')";
    for (page, loaded) in [("/runs", runs), ("/", stats), ("/runs", runs)] {
        std::thread::sleep(std::time::Duration::from_millis(2500));
        browser.go(&server.url(page));
        browser.wait_hydrated();
        browser.wait_for(
            &format!("{page} with its data after the access token expired"),
            15,
            &format!("return location.pathname === '{page}' && {loaded}"),
        );
    }
}

#[test]
fn sign_in_watch_a_run_live_approve_it_from_the_inbox_and_every_page_passes_axe() {
    let scratch = tempfile::tempdir().unwrap();
    let data = scratch.path().join("data");
    let store = format!("store.url=surrealkv://{}", data.display());
    let one_time =
        support::create_user_offline(scratch.path(), &store, "ada@example.com", "super_admin");
    support::allow_kinds_offline(scratch.path(), &store, &["shell"]);
    let axe = axe_source();
    let server = Server::start_with_accounts(&data, &free_address(), &[]);
    let driver = Driver::start();
    let browser = driver.session(1280, 900);

    // Before signing in, the API refuses the page's requests and it goes to the sign-in page.
    browser.go(&server.url("/runs"));
    browser.wait_for(
        "the redirect to sign in",
        15,
        "return location.pathname === '/login'",
    );
    sign_in(&browser, &server, &one_time);

    // A run, watched on its page: states change without a reload.
    let auth = bearer(&server);
    let run_id = start_run(&server, &auth);
    browser.go(&server.url(&format!("/runs/{run_id}")));
    browser.wait_hydrated();
    browser.run("window.__sameDocument = true", vec![]);
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while dag_state(&browser, "sign_off") != "waiting_approval" {
        let state = dag_state(&browser, "build");
        if seen.last() != Some(&state) {
            seen.push(state);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the gate never showed as waiting; build was {seen:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    seen.push(dag_state(&browser, "build"));
    browser.screenshot(&artifacts().join("run-waiting-for-approval.png"));
    assert!(
        seen.contains(&"running".to_owned()),
        "build was never shown running: {seen:?}"
    );
    assert_eq!(
        seen.last().map(String::as_str),
        Some("completed"),
        "{seen:?}"
    );
    assert_eq!(
        browser.run("return window.__sameDocument === true", vec![]),
        json!(true),
        "the page reloaded"
    );
    let log = browser.run(
        "return document.querySelector('[data-testid=event-log]').innerText",
        vec![],
    );
    assert!(
        log.as_str()
            .unwrap_or_default()
            .contains("approval requested"),
        "{log}"
    );

    // The inbox shows what will run, the patch side by side, and takes the decision.
    browser.go(&server.url("/approvals"));
    browser.wait_hydrated();
    browser.wait_for(
        "the gate in the inbox",
        15,
        &format!("return !!document.querySelector(\"[data-testid=gate][data-run='{run_id}']\")"),
    );
    let diff = browser.run(
        "return document.querySelector('[data-testid=diff] figcaption').innerText",
        vec![],
    );
    assert!(
        diff.as_str()
            .unwrap_or_default()
            .contains("src/lib.rs +1 −1"),
        "{diff}"
    );
    browser.screenshot(&artifacts().join("approvals-with-diff.png"));
    browser.type_into(&browser.find("[data-testid=gate] textarea"), "ship it");
    browser.click(&browser.find("[data-testid=gate] button.primary"));
    browser.wait_for(
        "the decision to land",
        10,
        "return document.querySelector('[data-testid=decided]').innerText.includes('Sign off: approved')",
    );
    browser.wait_for(
        "the gate to leave the inbox",
        10,
        &format!("return !document.querySelector(\"[data-testid=gate][data-run='{run_id}']\")"),
    );

    // The run goes on at once: its page shows the release done.
    browser.go(&server.url(&format!("/runs/{run_id}")));
    browser.wait_hydrated();
    browser.wait_for("the run to complete", 30, "return document.querySelector('[data-testid=dag] [data-task=release]')?.getAttribute('data-state') === 'completed'");
    let run = support::get_json_with(&server, &format!("/api/v1/runs/{run_id}"), &auth);
    assert_eq!(run["status"], "completed", "{run}");

    pause_a_schedule_on_the_triggers_page(&browser, &server, &auth);
    retry_a_cancelled_run_from_its_page(&browser, &server, &auth);

    // The theme toggle flips the theme and the choice survives a reload.
    let theme = || {
        browser.run(
            "return document.documentElement.getAttribute('data-theme')",
            vec![],
        )
    };
    let before = theme();
    browser.click(&browser.find("[data-testid=theme-toggle]"));
    let after = theme();
    assert_ne!(before, after);
    browser.go(&server.url("/"));
    assert_eq!(theme(), after, "the theme did not persist");

    // The keyboard reaches the skip link first, and it shows a focus ring.
    browser.wait_hydrated();
    browser.run(
        "document.activeElement && document.activeElement.blur(); window.focus()",
        vec![],
    );
    browser.press("\u{E004}");
    let focused = browser.run(
        "const el = document.activeElement; return [el.className, getComputedStyle(el).outlineStyle]",
        vec![],
    );
    assert_eq!(focused, json!(["skip-link", "solid"]), "the first Tab stop");

    // Every main page, both themes: axe finds no serious or critical violation; each
    // is photographed, and on a phone's screen nothing runs off the side.
    let phone = driver.phone(PHONE_WIDTH, 844);
    phone.go(&server.url("/login"));
    phone.add_cookies(&browser.cookies());
    let shots = artifacts();
    let mut violations = Vec::new();
    for theme in ["light", "dark"] {
        for (screen, width) in [(&browser, 1280), (&phone, PHONE_WIDTH)] {
            for page in troupe_frontend::PAGES {
                show(screen, &server.url(page), theme);
                let slug = if *page == "/" {
                    "dashboard".to_owned()
                } else {
                    page.trim_matches('/').replace('/', "-")
                };
                let path = shots.join(format!("{slug}-{theme}-{width}.png"));
                screen.screenshot(&path);
                let png = std::fs::read(&path).unwrap();
                assert!(png.starts_with(b"\x89PNG"), "{} is no PNG", path.display());
                if width == PHONE_WIDTH {
                    let wide = screen.run(
                        "const scrolls = el => { for (let p = el.parentElement; p; p = p.parentElement) { \
                           if (['auto', 'scroll', 'hidden'].includes(getComputedStyle(p).overflowX)) return true; } return false; }; \
                         return [document.documentElement.scrollWidth, [...document.querySelectorAll('body *')] \
                           .filter(el => el.getBoundingClientRect().right > window.innerWidth + 1 && !scrolls(el)) \
                           .slice(0, 5).map(el => el.tagName + '.' + el.className + ' ' + (el.textContent || '').slice(0, 30))]",
                        vec![],
                    );
                    assert!(
                        wide[0].as_u64().unwrap_or(0) <= u64::from(PHONE_WIDTH),
                        "{page} is wider than a phone in {theme}: {wide}"
                    );
                    continue;
                }
                for violation in axe_violations(screen, &axe) {
                    violations.push(format!("{page} ({theme}): {violation}"));
                }
            }
        }
    }
    assert!(
        violations.is_empty(),
        "axe-core found:\n{}",
        violations.join("\n")
    );
}

/// `url` loaded in `theme`, hydrated and with its data on screen.
fn show(browser: &Browser, url: &str, theme: &str) {
    browser.go(url);
    browser.run(
        &format!("localStorage.setItem('troupe-theme', '{theme}')"),
        vec![],
    );
    browser.go(url);
    browser.wait_hydrated();
    browser.wait_for(
        &format!("{url} to load"),
        15,
        "return !document.querySelector('[aria-busy=true]')",
    );
}

/// axe-core's serious and critical violations on the page, one line each.
fn axe_violations(browser: &Browser, axe: &str) -> Vec<String> {
    browser.run(axe, vec![]);
    let found = browser.run_async(
        "const done = arguments[arguments.length - 1]; \
         axe.run(document, { resultTypes: ['violations'] }).then(r => done(r.violations \
           .filter(v => v.impact === 'serious' || v.impact === 'critical') \
           .map(v => v.id + ' (' + v.impact + '): ' + v.help + ' at ' + v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(', '))));",
        vec![],
    );
    found
        .as_array()
        .into_iter()
        .flatten()
        .map(|violation| violation.as_str().unwrap_or_default().to_owned())
        .collect()
}

/// The value of a form control.
fn value_of(browser: &Browser, css: &str) -> String {
    browser
        .run(
            "return document.querySelector(arguments[0]).value",
            vec![json!(css)],
        )
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// A node without accounts whose `default` project may run `shell` tasks.
fn node_allowing_shell(data: &std::path::Path) -> Server {
    let server = Server::start(data, &free_address());
    support::allow_kinds(&server, "default", &["shell"]);
    server
}

#[test]
fn the_builder_makes_a_three_node_workflow_by_dragging_and_connecting_and_runs_it() {
    let scratch = tempfile::tempdir().unwrap();
    let server = node_allowing_shell(&scratch.path().join("data"));
    let driver = Driver::start();
    let browser = driver.session(1400, 1000);
    browser.go(&server.url("/builder"));
    browser.wait_hydrated();
    browser.wait_for(
        "the palette",
        15,
        "return !!document.querySelector('[data-palette=shell]')",
    );

    // Three shell tasks dragged from the palette onto the canvas.
    let canvas = browser.run(
        "const r = document.querySelector('[data-testid=canvas]').getBoundingClientRect(); return [r.left, r.top, r.width];",
        vec![],
    );
    let (left, top, width) = (
        canvas[0].as_f64().unwrap(),
        canvas[1].as_f64().unwrap(),
        canvas[2].as_f64().unwrap(),
    );
    for spot in [0.2, 0.5, 0.8] {
        let palette = browser.centre("[data-palette=shell]");
        browser.drag(palette, (left + width * spot, top + 150.0 + spot * 100.0));
    }
    let nodes = browser.run("return [...document.querySelectorAll('[data-node]')].map(n => n.getAttribute('data-node'))", vec![]);
    assert_eq!(
        nodes,
        json!(["task:shell_1", "task:shell_2", "task:shell_3"]),
        "placed by dragging"
    );

    // Connected port to port: 1 → 2 → 3.
    for (from, to) in [("shell_1", "shell_2"), ("shell_2", "shell_3")] {
        let out = browser.centre(&format!("[data-node='task:{from}'] .port.out"));
        let input = browser.centre(&format!("[data-node='task:{to}'] .port.in"));
        browser.drag(out, input);
    }
    let edges = browser.run(
        "return document.querySelectorAll('.canvas .edge[data-from]').length",
        vec![],
    );
    assert_eq!(edges, json!(2), "two connections drawn");

    // Each command set in the properties panel; validation clears as they are filled.
    let problems = || {
        browser.run(
            "return document.querySelectorAll('[data-testid=problems] li').length",
            vec![],
        )
    };
    for (task, command) in [
        ("shell_1", "echo one"),
        ("shell_2", "echo two"),
        ("shell_3", "echo three"),
    ] {
        let node = browser.centre(&format!("[data-node='task:{task}'] .b-title"));
        browser.drag(node, node);
        browser.wait_for(
            "the task's properties",
            10,
            &format!("return document.querySelector('[data-field=id]')?.value === '{task}'"),
        );
        let field = browser.find("[data-testid=properties] input[data-input=command]");
        browser.type_into(&field, command);
        browser.press("\u{E004}");
    }
    browser.wait_for(
        "no problems left",
        10,
        "return document.querySelectorAll('[data-testid=problems] li').length === 0",
    );
    assert_eq!(problems(), json!(0));

    // The export is the engine's own YAML: it parses to the chain that was drawn.
    let yaml = value_of(&browser, "[data-testid=yaml]");
    let workflow =
        troupe_workflow::parse_workflow(&yaml, "builder.yaml", &["shell"]).expect("valid YAML");
    let shape: Vec<(String, Vec<String>, Value)> = workflow
        .tasks
        .iter()
        .map(|task| {
            (
                task.id.clone(),
                task.depends_on.clone(),
                task.inputs["command"].clone(),
            )
        })
        .collect();
    assert_eq!(
        shape,
        vec![
            ("shell_1".into(), vec![], json!("echo one")),
            ("shell_2".into(), vec!["shell_1".into()], json!("echo two")),
            (
                "shell_3".into(),
                vec!["shell_2".into()],
                json!("echo three")
            ),
        ]
    );

    // Importing the export exports the same text.
    browser.type_into(&browser.find("[data-testid=import-source]"), &yaml);
    browser.click(&browser.find("[data-testid=import]"));
    browser.wait_for(
        "the import",
        10,
        "return document.body.innerText.includes('Imported.')",
    );
    assert_eq!(
        value_of(&browser, "[data-testid=yaml]"),
        yaml,
        "import → export changed the definition"
    );

    // Saved and run from the builder: the run page shows it finish.
    browser.click(&browser.find("[data-testid=save-and-run]"));
    browser.wait_for(
        "the run page",
        15,
        "return location.pathname.startsWith('/runs/')",
    );
    browser.wait_hydrated();
    browser.wait_for("the built run to complete", 30, "return document.querySelector('[data-testid=dag] [data-task=shell_3]')?.getAttribute('data-state') === 'completed'");
}

/// Every response carries the security headers; a page's policy names a fresh nonce,
/// which its one inline script carries, and nothing may frame it.
#[test]
fn every_response_carries_security_headers_and_a_page_allows_only_its_own_script() {
    let scratch = tempfile::tempdir().unwrap();
    let server = Server::start(&scratch.path().join("data"), &free_address());
    let nonce_of = |page: &http1::Response| -> String {
        let policy = page.header("content-security-policy").expect("a policy");
        assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
        let start = policy.find("'nonce-").expect("a nonce") + "'nonce-".len();
        policy[start..].split('\'').next().unwrap().to_string()
    };
    let page = http1::blocking_get(&server.url("/runs")).unwrap();
    let nonce = nonce_of(&page);
    assert!(nonce.len() >= 16, "{nonce}");
    assert!(
        page.body.contains(&format!("nonce=\"{nonce}\"")),
        "the hydration script does not carry the policy's nonce"
    );
    let again = http1::blocking_get(&server.url("/runs")).unwrap();
    assert_ne!(nonce_of(&again), nonce, "a nonce is used once");
    for path in ["/runs", "/docs", "/api/v1/workflows", "/no/such/page"] {
        let response = http1::blocking_get(&server.url(path)).unwrap();
        assert_eq!(
            response.header("x-content-type-options"),
            Some("nosniff"),
            "{path}"
        );
        assert_eq!(
            response.header("referrer-policy"),
            Some("no-referrer"),
            "{path}"
        );
        assert_eq!(response.header("x-frame-options"), Some("DENY"), "{path}");
        let policy = response
            .header("content-security-policy")
            .unwrap_or_default();
        assert!(
            policy.contains("frame-ancestors 'none'"),
            "{path}: {policy}"
        );
        assert!(
            !policy.contains("script-src 'unsafe-inline'"),
            "{path}: {policy}"
        );
    }
    let api = http1::blocking_get(&server.url("/api/v1/workflows")).unwrap();
    assert!(
        api.header("content-security-policy")
            .unwrap()
            .starts_with("default-src 'none'")
    );
}

/// The dashboard lists the nodes of a cluster and follows them without a reload: a node
/// that dies is shown with its lease lapsed within seconds.
#[test]
fn the_dashboard_follows_the_clusters_nodes_live() {
    let dir = tempfile::tempdir().unwrap();
    let surreal = SurrealServer::start(&dir.path().join("surreal.log"));
    let start = |name: &str| {
        start_cluster_node(
            &surreal,
            &surreal.address,
            name,
            LeaseLength::Short,
            &dir.path().join(name),
            &free_address(),
        )
    };
    let a = start("a");
    let b = start("b");
    wait_for_links(&a, &["b"]);
    let driver = Driver::start();
    let browser = driver.session(1400, 1000);
    browser.go(&a.url("/"));
    browser.wait_hydrated();
    browser.wait_for(
        "both nodes shown live",
        15,
        "return document.querySelectorAll('[data-testid=cluster-nodes] li[data-live=true]').length === 2",
    );
    let line = |name: &str| {
        browser.run(
            &format!("return document.querySelector('[data-member={name}]').textContent"),
            vec![],
        )
    };
    assert!(
        line("a").as_str().unwrap().contains("this node"),
        "{}",
        line("a")
    );
    assert!(
        line("b").as_str().unwrap().contains("live, linked"),
        "{}",
        line("b")
    );
    // Its load, from its first renewal on.
    browser.wait_for(
        "b's free memory",
        15,
        "return document.querySelector('[data-member=b]').textContent.includes('GiB free')",
    );

    b.kill();
    browser.wait_for(
        "b shown with its lease lapsed",
        15,
        "const b = document.querySelector('[data-member=b]'); return !!b && b.getAttribute('data-live') === 'false'",
    );
    assert!(
        line("b").as_str().unwrap().contains("lease lapsed"),
        "{}",
        line("b")
    );
}
