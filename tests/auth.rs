//! Accounts end to end: a user made with the CLI logs in over HTTP with its one-time
//! password, changes it, and its sessions behave (bearer checks, rotation, reuse).

mod support;

use serde_json::{Value, json};
use support::http1::request_with;
use support::{Server, create_user_offline, free_address, post, run_troupe, troupe_with_input};

fn with_bearer(
    server: &Server,
    method: &str,
    path: &str,
    token: &str,
    body: Option<&str>,
) -> (u16, Value) {
    let auth = format!("Authorization: Bearer {token}");
    let response = request_with(
        method,
        &server.url(path),
        body.map(|b| ("application/json", b)),
        &[&auth],
    )
    .unwrap();
    (
        response.status,
        serde_json::from_str(&response.body).unwrap_or(Value::Null),
    )
}

fn get(server: &Server, path: &str, token: &str) -> (u16, Value) {
    with_bearer(server, "GET", path, token, None)
}

/// `POST /api/v1/auth/login`: its status and the token pair (or error) it answers.
fn login(server: &Server, email: &str, password: &str) -> (u16, Value) {
    let body = json!({"email": email, "password": password}).to_string();
    post(server, "/api/v1/auth/login", "application/json", &body)
}

/// `POST /api/v1/auth/refresh` with `pair`'s refresh token.
fn refresh(server: &Server, pair: &Value) -> (u16, Value) {
    let body = json!({"refresh_token": pair["refresh_token"]}).to_string();
    post(server, "/api/v1/auth/refresh", "application/json", &body)
}

/// What a command wrote to standard error, for failure messages.
fn stderr(output: &std::process::Output) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(&output.stderr)
}

#[test]
fn accounts_sessions_and_a_required_token_work_end_to_end() {
    let scratch = tempfile::tempdir().unwrap();
    let data = scratch.path().join("data");
    let store = format!("store.url=surrealkv://{}", data.display());
    let one_time = create_user_offline(scratch.path(), &store, "ada@example.com", "project_owner");
    assert_eq!(one_time.len(), 24, "{one_time}");
    let bad_role = run_troupe(
        scratch.path(),
        &[
            "--set",
            &store,
            "users",
            "create",
            "--email",
            "x@example.com",
            "--role",
            "king",
        ],
    );
    assert_eq!(bad_role.status.code(), Some(2));

    // No grace for a second tab: the reuse below is theft, not a tab racing another.
    let server = Server::start_with(
        &data,
        &free_address(),
        &[
            "--set",
            "auth.required=true",
            "--set",
            "auth.refresh_reuse_grace_secs=0",
        ],
        &[],
    );
    the_one_time_password_only_lets_its_holder_change_it(&server, &one_time);
    let new_password = "ada's new passphrase";
    let (_, first) = login(&server, "ada@example.com", new_password);
    let (status, second) = refresh(&server, &first);
    assert_eq!(status, 200, "{second}");
    let (status, _) = refresh(&server, &first);
    assert_eq!(status, 401, "a rotated token used again");
    let (status, _) = get(
        &server,
        "/api/v1/auth/me",
        second["access_token"].as_str().unwrap(),
    );
    assert_eq!(status, 401, "the reuse ended the whole session");
    let (_, third) = login(&server, "ada@example.com", new_password);
    let token = third["access_token"].as_str().unwrap().to_string();
    a_required_token_guards_every_route_and_names_the_caller(&server, scratch.path(), &token);
    an_api_key_is_scoped_listed_without_its_secret_and_revocable(&server, &token, new_password);
    let (_, audit) = get(&server, "/api/v1/audit", &token);
    let actions: Vec<String> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["action"].as_str().unwrap().to_string())
        .collect();
    for action in [
        "user.create",
        "auth.login",
        "auth.login_failed",
        "auth.password_change",
        "auth.refresh_reuse",
        "api_key.create",
        "api_key.revoke",
    ] {
        assert!(
            actions.iter().any(|seen| seen == action),
            "{action} not audited: {actions:?}"
        );
    }
    guesses_are_limited_per_client_whatever_x_forwarded_for_claims(&server);
    let (_, me) = get(&server, "/api/v1/auth/me", &token);
    drop(server);
    a_lost_second_factor_is_reset_offline(scratch.path(), &store, &me);
}

/// `troupe users reset-mfa` on the stopped node's store: the operator's way back in
/// when the only administrator lost their phone.
fn a_lost_second_factor_is_reset_offline(dir: &std::path::Path, store: &str, me: &Value) {
    let reset = |id: &str| run_troupe(dir, &["--set", store, "users", "reset-mfa", id]);
    let unknown = reset("nobody");
    assert_eq!(unknown.status.code(), Some(2), "{}", stderr(&unknown));
    assert!(
        stderr(&unknown).contains("no user `nobody`"),
        "{}",
        stderr(&unknown)
    );
    let done = reset(me["user_id"].as_str().unwrap());
    assert!(done.status.success(), "{}", stderr(&done));
    assert!(
        String::from_utf8_lossy(&done.stdout).contains("removed the second factor"),
        "{}",
        String::from_utf8_lossy(&done.stdout)
    );
}

/// Ada's first session may only change her one-time password, and the change ends it.
/// One wrong password is tried on the way, for the audit and the guessing limit.
fn the_one_time_password_only_lets_its_holder_change_it(server: &Server, one_time: &str) {
    let (status, pair) = login(server, "ada@example.com", one_time);
    assert_eq!(status, 200, "{pair}");
    assert_eq!(pair["password_change_required"], true);
    let access = pair["access_token"].as_str().unwrap();
    let (status, body) = get(server, "/api/v1/runs", access);
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("password_change_required")),
        "{body}"
    );
    let (status, me) = get(server, "/api/v1/auth/me", access);
    assert_eq!(
        (status, me["email"].as_str()),
        (200, Some("ada@example.com")),
        "{me}"
    );
    assert!(me.get("password_hash").is_none(), "{me}");
    for token in ["", "garbage", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."] {
        let (status, body) = get(server, "/api/v1/auth/me", token);
        assert_eq!(status, 401, "{token}: {body}");
    }
    let (status, _) = login(server, "ada@example.com", "wrong");
    assert_eq!(status, 401);

    let change =
        json!({"current_password": one_time, "new_password": "ada's new passphrase"}).to_string();
    let path = "/api/v1/auth/password";
    let (status, body) = with_bearer(server, "POST", path, access, Some(&change));
    assert_eq!(status, 204, "{body}");
    let (status, _) = get(server, "/api/v1/auth/me", access);
    assert_eq!(status, 401, "the password change ended the session");
}

/// With auth.required every route but login and health takes a token, and the caller
/// acts as itself whatever the body claims; the CLI passes the token it is given.
fn a_required_token_guards_every_route_and_names_the_caller(
    server: &Server,
    scratch: &std::path::Path,
    token: &str,
) {
    let status = |path: &str| {
        support::http1::blocking_get(&server.url(path))
            .unwrap()
            .status
    };
    assert_eq!(status("/api/v1/runs"), 401);
    assert_eq!(status("/livez"), 200);
    let bearer = format!("Authorization: Bearer {token}");
    let workflow = "name: Guarded\ntasks:\n  - { id: greet, name: Greet, agent: echo, inputs: { text: hi } }\n";
    let created = request_with(
        "POST",
        &server.url("/api/v1/workflows"),
        Some(("application/yaml", workflow)),
        &[&bearer],
    )
    .unwrap();
    assert_eq!(created.status, 201, "{}", created.body);
    let (status, started) = with_bearer(
        server,
        "POST",
        "/api/v1/workflows/guarded/runs",
        token,
        Some(r#"{"started_by": "mallory"}"#),
    );
    assert_eq!(status, 201, "{started}");
    let run = format!("/api/v1/runs/{}", started["run_id"].as_str().unwrap());
    let (_, run) = get(server, &run, token);
    assert_eq!(run["started_by"], "ada@example.com", "{run}");
    let listed = support::troupe()
        .env("TROUPE_CLIENT__TOKEN", token)
        .args(["runs", "list", "--server", &server.url("")])
        .output()
        .unwrap();
    assert!(listed.status.success(), "{}", stderr(&listed));
    let refused = run_troupe(scratch, &["runs", "list", "--server", &server.url("")]);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("access token"),
        "{}",
        stderr(&refused)
    );
}

/// A program's API key: created with the session and the password given again (a
/// stolen access token alone mints none), scoped, usable as a bearer, listed without
/// its secret, and dead once revoked.
fn an_api_key_is_scoped_listed_without_its_secret_and_revocable(
    server: &Server,
    token: &str,
    password: &str,
) {
    let spec = json!({"name": "ci", "scopes": ["workflows.view"], "ttl_days": 7});
    let with_password = |password: Option<&str>| {
        let mut body = spec.clone();
        if let Some(password) = password {
            body["password"] = json!(password);
        }
        let body = body.to_string();
        with_bearer(server, "POST", "/api/v1/auth/keys", token, Some(&body))
    };
    for (proof, why) in [
        (None, "confirm it is you with `password`"),
        (
            Some("a stolen token's guess"),
            "the password or code is wrong",
        ),
    ] {
        let (status, refused) = with_password(proof);
        assert_eq!(
            (status, refused["error"]["code"].as_str()),
            (403, Some("step_up_required"))
        );
        assert!(refused.to_string().contains(why), "{refused}");
    }
    let (status, created) = with_password(Some(password));
    assert_eq!(status, 201, "{created}");
    let key = created["key"].as_str().unwrap().to_string();
    assert!(key.starts_with("tk_"), "{created}");
    let (status, _) = get(server, "/api/v1/runs", &key);
    assert_eq!(status, 200);
    let (_, keys) = get(server, "/api/v1/auth/keys", token);
    assert!(!keys.to_string().contains(&key[key.len() - 20..]), "{keys}");
    let (status, _) = with_bearer(
        server,
        "POST",
        "/api/v1/auth/keys",
        &key,
        Some(r#"{"name": "x", "scopes": ["workflows.view"]}"#),
    );
    assert_eq!(status, 401, "a key cannot mint keys");
    let path = format!("/api/v1/auth/keys/{}", created["key_id"].as_str().unwrap());
    let (status, _) = with_bearer(server, "DELETE", &path, token, None);
    assert_eq!(status, 204);
    let (status, _) = get(server, "/api/v1/runs", &key);
    assert_eq!(status, 401, "revoked");
}

/// Guessing: five failures from one client address and it is refused with 429, over
/// real HTTP. This client failed once before, so the fifth guess is refused: had the
/// spoofed X-Forwarded-For been believed, each guess would count under another address
/// and only the account's own limit (five 401s) would apply.
fn guesses_are_limited_per_client_whatever_x_forwarded_for_claims(server: &Server) {
    let guess = r#"{"email": "nobody@example.com", "password": "guess"}"#;
    let statuses: Vec<u16> = (0..7)
        .map(|n| {
            let spoof = format!("X-Forwarded-For: 198.51.100.{n}");
            request_with(
                "POST",
                &server.url("/api/v1/auth/login"),
                Some(("application/json", guess)),
                &[&spoof],
            )
            .unwrap()
            .status
        })
        .collect();
    assert_eq!(
        statuses,
        [401, 401, 401, 401, 429, 429, 429],
        "{statuses:?}"
    );
}

/// The attack, through the binary: one client (behind the node's trusted proxy) sends
/// a dozen bad refresh tokens. That client is limited (429); another client behind the
/// same proxy still refreshes its session.
#[test]
fn bad_refresh_tokens_from_one_client_lock_out_that_client_only() {
    let scratch = tempfile::tempdir().unwrap();
    let data = scratch.path().join("data");
    let store = format!("store.url=surrealkv://{}", data.display());
    let one_time = create_user_offline(scratch.path(), &store, "ada@example.com", "developer");
    let server = Server::start_with(
        &data,
        &free_address(),
        &[
            "--set",
            "auth.required=true",
            "--set",
            r#"auth.trusted_proxies=["127.0.0.1"]"#,
        ],
        &[],
    );
    let (status, pair) = login(&server, "ada@example.com", &one_time);
    assert_eq!(status, 200, "{pair}");
    let refresh_from = |client: &str, token: &str| {
        let body = json!({ "refresh_token": token }).to_string();
        let forwarded = format!("X-Forwarded-For: {client}");
        request_with(
            "POST",
            &server.url("/api/v1/auth/refresh"),
            Some(("application/json", &body)),
            &[&forwarded],
        )
        .unwrap()
        .status
    };
    let attacker: Vec<u16> = (0..12)
        .map(|n| refresh_from("203.0.113.66", &format!("rt_{n:064}")))
        .collect();
    assert!(attacker.starts_with(&[401, 401]), "{attacker:?}");
    assert_eq!(attacker.last(), Some(&429), "{attacker:?}");
    let token = pair["refresh_token"].as_str().unwrap();
    assert_eq!(
        refresh_from("203.0.113.7", token),
        200,
        "the victim was locked out"
    );
}

#[test]
fn secrets_are_sealed_listed_without_values_and_rotated_from_the_cli() {
    let scratch = tempfile::tempdir().unwrap();
    let store = format!(
        "store.url=surrealkv://{}",
        scratch.path().join("data").display()
    );
    let set = troupe_with_input(
        scratch.path(),
        &["--set", &store, "secrets", "set", "providers.openai"],
        "sk-live-very-secret\n",
    );
    assert!(
        set.status.success(),
        "{}",
        String::from_utf8_lossy(&set.stderr)
    );
    let listed = run_troupe(scratch.path(), &["--set", &store, "secrets", "list"]);
    let before = String::from_utf8_lossy(&listed.stdout).into_owned();
    assert!(before.contains("providers.openai"), "{before}");
    let rotated = run_troupe(scratch.path(), &["--set", &store, "secrets", "rotate"]);
    let said = String::from_utf8_lossy(&rotated.stdout).into_owned();
    assert!(
        rotated.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&rotated.stderr)
    );
    assert!(said.contains("sealed 1 secrets"), "{said}");
    let after = String::from_utf8_lossy(
        &run_troupe(scratch.path(), &["--set", &store, "secrets", "list"]).stdout,
    )
    .into_owned();
    assert_ne!(before, after, "the key id did not change");
    // The value is nowhere in what the CLI printed, nor in the keyring directory's names.
    for output in [&before, &after, &said] {
        assert!(!output.contains("sk-live"), "{output}");
    }
    let keyring = std::fs::read_to_string(scratch.path().join("data-secrets/keyring")).unwrap();
    assert_eq!(keyring.lines().count(), 2, "{keyring}");
    let bad = run_troupe(
        scratch.path(),
        &["--set", &store, "secrets", "set", "Bad Name"],
    );
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn a_default_node_requires_accounts_and_the_cli_signs_in_refreshes_and_signs_out() {
    let scratch = tempfile::tempdir().unwrap();
    let data = scratch.path().join("data");
    let store = format!("store.url=surrealkv://{}", data.display());
    let one_time = create_user_offline(scratch.path(), &store, "ada@example.com", "developer");
    // No override: the node starts with accounts on, its default.
    let server = Server::start_with_accounts(&data, &free_address(), &[]);
    let url = server.url("");
    let runs = support::http1::blocking_get(&format!("{url}/api/v1/runs")).unwrap();
    assert_eq!(runs.status, 401, "a default node answered without a token");

    let credentials = scratch.path().join("credentials.json");
    let file = format!("client.credentials_file={}", credentials.display());
    let list = |scratch: &std::path::Path| {
        troupe_with_input(
            scratch,
            &["--set", &file, "runs", "list", "--server", &url],
            "",
        )
    };
    let refused = list(scratch.path());
    assert_eq!(refused.status.code(), Some(2), "{refused:?}");
    // The one-time password, then one of ada's own: both on standard input.
    let sign_in = |input: &str| {
        troupe_with_input(
            scratch.path(),
            &[
                "--set",
                &file,
                "login",
                "--server",
                &url,
                "--email",
                "ada@example.com",
            ],
            input,
        )
    };
    let login = sign_in(&format!("{one_time}\nada's own long passphrase\n"));
    assert!(
        login.status.success(),
        "{}{}",
        String::from_utf8_lossy(&login.stdout),
        String::from_utf8_lossy(&login.stderr)
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&credentials)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let listed = list(scratch.path());
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );

    // An access token that no longer passes is refreshed from the stored session.
    let mut stored: Value =
        serde_json::from_str(&std::fs::read_to_string(&credentials).unwrap()).unwrap();
    stored[&url]["access_token"] = json!("expired.or.forged");
    std::fs::write(&credentials, stored.to_string()).unwrap();
    let listed = list(scratch.path());
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let refreshed: Value =
        serde_json::from_str(&std::fs::read_to_string(&credentials).unwrap()).unwrap();
    assert_ne!(refreshed[&url]["access_token"], "expired.or.forged");

    let logout = troupe_with_input(
        scratch.path(),
        &["--set", &file, "logout", "--server", &url],
        "",
    );
    assert!(logout.status.success());
    let after = list(scratch.path());
    assert_eq!(after.status.code(), Some(2), "signed out, yet served");
    let wrong = sign_in("not the password\n");
    assert_eq!(wrong.status.code(), Some(2));
    server.kill();
}

/// The attack, over real HTTP against `troupe up` without accounts: a page of another
/// site posts a shell workflow as a CORS-simple request (text/plain, no preflight).
/// Refused, and nothing is saved; the node's own CLI-style request still works.
#[test]
fn a_web_page_cannot_create_a_workflow_on_a_node_without_accounts() {
    let scratch = tempfile::tempdir().unwrap();
    let server = Server::start(&scratch.path().join("data"), &free_address());
    let workflow =
        "name: pwn\ntasks:\n  - { id: x, name: X, agent: shell, inputs: { command: id } }\n";
    let from_page = request_with(
        "POST",
        &server.url("/api/v1/workflows"),
        Some(("text/plain", workflow)),
        &["Origin: https://evil.test"],
    )
    .unwrap();
    assert_eq!(from_page.status, 403, "{}", from_page.body);
    assert!(
        from_page.body.contains("origin_not_allowed"),
        "{}",
        from_page.body
    );
    let listed = request_with("GET", &server.url("/api/v1/workflows"), None, &[]).unwrap();
    assert_eq!(listed.body, "[]", "nothing was saved");
    let echo = "name: hello\ntasks:\n  - { id: x, name: X, agent: echo, inputs: { said: hi } }\n";
    let (status, created) = post(&server, "/api/v1/workflows", "application/yaml", echo);
    assert_eq!(status, 201, "{created}");
}
