//! Precedence, provenance in errors, and hostile values.

use troupe_config::{ConfigError, Layers, LogFormat, Settings};

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn write_file(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("troupe.toml");
    std::fs::write(&path, text).expect("write config");
    (dir, path)
}

#[test]
fn defaults_are_valid() {
    let settings = Layers::new().load().expect("defaults load");
    assert_eq!(settings, Settings::default());
    assert_eq!(settings.server.address, "127.0.0.1:7700");
}

#[test]
fn file_then_environment_then_flags_win_in_that_order() {
    let (_dir, path) = write_file(
        "[engine]\nmax_concurrent_tasks = 3\nretry_base_delay_ms = 10\n[log]\nformat = \"json\"\n",
    );
    let settings = Layers::new()
        .file(&path)
        .environment(env(&[
            ("TROUPE_ENGINE__MAX_CONCURRENT_TASKS", "5"),
            ("TROUPE_LOG__LEVEL", "debug"),
            ("UNRELATED", "x"),
        ]))
        .flag("log.level", "warn", "--log-level warn")
        .load()
        .expect("layers load");
    assert_eq!(settings.engine.max_concurrent_tasks, 5);
    assert_eq!(settings.engine.retry_base_delay_ms, 10);
    assert_eq!(settings.log.format, LogFormat::Json);
    assert_eq!(settings.log.level, "warn");
}

#[test]
fn discovered_file_is_optional_but_named_file_is_required() {
    let dir = tempfile::tempdir().expect("temp dir");
    assert!(Layers::new().discover_file(dir.path()).load().is_ok());
    let missing = Layers::new()
        .file(dir.path().join("nope.toml"))
        .load()
        .expect_err("a named file must exist");
    assert!(matches!(missing, ConfigError::ReadFile { .. }), "{missing}");
}

#[test]
fn a_bad_value_names_its_key_and_its_source() {
    let error = Layers::new()
        .environment(env(&[("TROUPE_ENGINE__MAX_CONCURRENT_TASKS", "0")]))
        .load()
        .expect_err("zero tasks is invalid");
    assert_eq!(
        error.to_string(),
        "`engine.max_concurrent_tasks` from environment variable \
         TROUPE_ENGINE__MAX_CONCURRENT_TASKS: must be at least 1"
    );
}

#[test]
fn a_wrong_type_in_a_file_names_key_and_file() {
    let (_dir, path) = write_file("[engine]\nmax_concurrent_tasks = \"many\"\n");
    let error = Layers::new().file(&path).load().expect_err("wrong type");
    let text = error.to_string();
    assert!(
        text.starts_with("`engine.max_concurrent_tasks` from config file"),
        "{text}"
    );
    assert!(text.contains("invalid type"), "{text}");
}

#[test]
fn a_choice_outside_its_words_names_the_key_the_source_and_the_words() {
    for (variable, value, key, words) in [
        (
            "TROUPE_MODELS__DEVICE",
            "gpu",
            "models.device",
            "`cpu`, `cuda`, `auto`",
        ),
        (
            "TROUPE_PRIVACY__MODE",
            "loose",
            "privacy.mode",
            "`redact`, `refuse`, `off`",
        ),
    ] {
        let error = Layers::new()
            .environment(env(&[(variable, value)]))
            .load()
            .expect_err("a word outside the list");
        assert_eq!(
            error.to_string(),
            format!(
                "`{key}` from environment variable {variable}: unknown variant `{value}`, \
                 expected one of {words}"
            )
        );
    }
    let settings = Layers::new()
        .environment(env(&[
            ("TROUPE_MODELS__DEVICE", "cpu"),
            ("TROUPE_PRIVACY__MODE", "refuse"),
        ]))
        .load()
        .unwrap();
    assert_eq!(settings.models.device, troupe_config::DeviceChoice::Cpu);
    assert_eq!(settings.privacy.mode, troupe_config::PrivacyMode::Refuse);
}

#[test]
fn an_unknown_key_is_refused_with_its_source() {
    let (_dir, path) = write_file("[engine]\nmax_concurent_tasks = 3\n");
    let text = Layers::new()
        .file(&path)
        .load()
        .expect_err("typo")
        .to_string();
    assert!(
        text.contains("unknown field `max_concurent_tasks`"),
        "{text}"
    );
    assert!(text.contains("config file"), "{text}");
}

#[test]
fn every_problem_is_reported_at_once() {
    let text = Layers::new()
        .flag("server.address", "nowhere", "--address nowhere")
        .flag("store.url", "postgres://x", "--store postgres://x")
        .load()
        .expect_err("two problems")
        .to_string();
    assert!(
        text.contains("`server.address` from flag --address nowhere"),
        "{text}"
    );
    assert!(
        text.contains("`store.url` from flag --store postgres://x"),
        "{text}"
    );
}

#[test]
fn malformed_toml_and_assignments_are_clear_errors() {
    let (_dir, path) = write_file("[engine\n");
    let error = Layers::new().file(&path).load().expect_err("bad toml");
    assert!(matches!(error, ConfigError::ParseFile { .. }), "{error}");
    let error = Layers::new().assignment("no_equals").expect_err("bad flag");
    assert_eq!(
        error.to_string(),
        "flag `--set no_equals` must look like `section.key=value`"
    );
}

#[test]
fn hostile_environment_values_never_panic() {
    for value in [
        "",
        "[",
        "\"",
        "{a=1}",
        "9999999999999999999999",
        "\u{0}",
        "-1",
    ] {
        let result = Layers::new()
            .environment(env(&[("TROUPE_ENGINE__MAX_CONCURRENT_TASKS", value)]))
            .load();
        assert!(result.is_err(), "{value:?} should be refused");
    }
}

/// A cluster shares one store: an embedded one is refused saying what to set, and so
/// are a lease shorter than three heartbeats and a node name that is not one.
#[test]
fn a_cluster_on_a_store_of_its_own_or_with_a_short_lease_is_refused() {
    let text = Layers::new()
        .environment(env(&[
            ("TROUPE_CLUSTER__ENABLED", "true"),
            ("TROUPE_CLUSTER__LEASE_MS", "2000"),
            ("TROUPE_CLUSTER__NODE_NAME", "a b/../c"),
        ]))
        .load()
        .expect_err("three problems")
        .to_string();
    assert!(
        text.contains("`cluster.enabled` from environment variable TROUPE_CLUSTER__ENABLED")
            && text.contains("set store.url to a SurrealDB server all of them reach (ws://"),
        "{text}"
    );
    assert!(
        text.contains("`cluster.lease_ms`") && text.contains("at least three heartbeats (3000 ms)"),
        "{text}"
    );
    assert!(
        text.contains("`cluster.node_name`") && text.contains("`a b/../c` is not a node name"),
        "{text}"
    );
    let settings = Layers::new()
        .environment(env(&[
            ("TROUPE_CLUSTER__ENABLED", "true"),
            ("TROUPE_STORE__URL", "ws://db.internal:8000"),
            ("TROUPE_CLUSTER__COOKIE", "sixteen-chars-or-more"),
            ("TROUPE_CLUSTER__TLS__CA_FILE", "/etc/troupe/ca.pem"),
            ("TROUPE_CLUSTER__TLS__CERT_FILE", "/etc/troupe/a.pem"),
            ("TROUPE_CLUSTER__TLS__KEY_FILE", "/etc/troupe/a.key"),
        ]))
        .load()
        .expect("a shared store, a cookie and certificates");
    assert!(settings.cluster.enabled);
}

/// The links between nodes are authenticated by default: a cluster without a cookie or
/// certificates is refused saying how to make them, and plain links only on loopback.
#[test]
fn cluster_links_without_a_cookie_or_certificates_or_plain_beyond_loopback_are_refused() {
    let text = Layers::new()
        .environment(env(&[
            ("TROUPE_CLUSTER__ENABLED", "true"),
            ("TROUPE_STORE__URL", "ws://db.internal:8000"),
            ("TROUPE_CLUSTER__COOKIE", "short"),
            (
                "TROUPE_CLUSTER__SEEDS",
                "[\"b.internal\", \"c.internal:7710\"]",
            ),
        ]))
        .load()
        .expect_err("no cookie, no certificates, a seed without a port")
        .to_string();
    assert!(
        text.contains("`cluster.cookie`") && text.contains("set TROUPE_CLUSTER__COOKIE"),
        "{text}"
    );
    assert!(
        text.contains("`cluster.tls`")
            && text.contains("`troupe cluster certs --out DIR --nodes NAME,...`"),
        "{text}"
    );
    assert!(
        text.contains("`b.internal` is not HOST:PORT") && !text.contains("`c.internal:7710`"),
        "{text}"
    );
    let text = Layers::new()
        .environment(env(&[
            ("TROUPE_CLUSTER__INSECURE", "true"),
            ("TROUPE_CLUSTER__LISTEN", "0.0.0.0:7710"),
        ]))
        .load()
        .expect_err("plain links on every interface")
        .to_string();
    assert!(
        text.contains("`cluster.insecure`") && text.contains("`0.0.0.0:7710` is not on loopback"),
        "{text}"
    );
    let settings = Layers::new()
        .environment(env(&[
            ("TROUPE_CLUSTER__INSECURE", "true"),
            ("TROUPE_CLUSTER__LISTEN", "127.0.0.1:0"),
        ]))
        .load()
        .expect("plain links on loopback");
    assert!(settings.cluster.insecure);

    let cluster = |cookie: &'static str| {
        Layers::new().environment(env(&[
            ("TROUPE_CLUSTER__ENABLED", "true"),
            ("TROUPE_STORE__URL", "ws://db.internal:8000"),
            ("TROUPE_CLUSTER__INSECURE", "true"),
            ("TROUPE_CLUSTER__LISTEN", "127.0.0.1:0"),
            ("TROUPE_CLUSTER__COOKIE", cookie),
            ("TROUPE_CLUSTER__COOKIE_SECRET", "cluster.cookie"),
        ]))
    };
    let sealed = cluster("")
        .load()
        .expect("a cookie kept in the secret store");
    assert_eq!(sealed.cluster.cookie_secret, "cluster.cookie");
    let text = cluster("a-cookie-in-the-environment")
        .load()
        .expect_err("two cookies")
        .to_string();
    assert!(
        text.contains("`cluster.cookie_secret`") && text.contains("choose one"),
        "{text}"
    );
}

/// One rule for node names and labels, in settings, the node table and certificates.
#[test]
fn a_node_name_is_letters_digits_dots_underscores_and_dashes() {
    for good in ["a", "node-1", "gpu_box.eu-west", &"x".repeat(63)] {
        assert!(troupe_config::is_node_name(good), "{good}");
    }
    for bad in ["", "..", "a b", "a/b", "é", &"x".repeat(64)] {
        assert!(!troupe_config::is_node_name(bad), "{bad}");
    }
}

/// Alert rules take thresholds from 0 (shares up to 1) and waits up to a week; a
/// webhook is an http(s) URL. A partial rule keeps its other defaults.
#[test]
fn alert_settings_out_of_range_are_named_and_a_partial_rule_keeps_its_defaults() {
    let (_dir, path) = write_file(
        "[alerts]\nevaluate_every_secs = 0\n[alerts.webhook]\nurl = \"hooks.example/x\"\n\
         [alerts.rules.run_failure_rate]\nabove = 2.5\n\
         [alerts.rules.approval_waiting_secs]\nabove = -1.0\nfor_secs = 99999999\n",
    );
    let text = Layers::new()
        .file(&path)
        .load()
        .expect_err("four problems")
        .to_string();
    for expected in [
        "`alerts.evaluate_every_secs`",
        "0 is out of range: use 1 to 3600",
        "`alerts.webhook.url`",
        "must start with http:// or https://",
        "`above` is 2.5, a share: use 0 to 1",
        "`above` is -1: use a number from 0",
        "`for_secs` is 99999999: use at most 604800 (a week)",
    ] {
        assert!(text.contains(expected), "{expected} in: {text}");
    }
    let settings = Layers::new()
        .environment(env(&[(
            "TROUPE_ALERTS__RULES__RUN_FAILURE_RATE__FOR_SECS",
            "0",
        )]))
        .load()
        .expect("a partial rule loads");
    let rule = settings.alerts.rules.run_failure_rate;
    assert_eq!((rule.above, rule.for_secs, rule.enabled), (0.25, 0, true));
}
