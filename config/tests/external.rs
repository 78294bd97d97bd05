//! `[[agents.plugins]]` and `[[agents.mcp_servers]]`: the format, its defaults, and the
//! problems reported for bad entries.

use troupe_config::{InputType, Layers};

fn load(text: &str) -> Result<troupe_config::Settings, String> {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("troupe.toml");
    std::fs::write(&path, text).expect("write config");
    Layers::new()
        .file(&path)
        .load()
        .map_err(|error| error.to_string())
}

#[test]
fn a_plugin_and_an_mcp_server_are_read_with_defaults_for_what_is_left_out() {
    let settings = load(
        r#"
[[agents.plugins]]
kind = "word_count"
description = "Counts words"
command = ["python3", "word_count.py"]
timeout_secs = 5
inputs.text = { type = "string", description = "Text to count" }
inputs.path = { type = "string" }
inputs.strict = { type = "boolean", required = true }

[[agents.mcp_servers]]
name = "notes"
command = ["python3", "notes_server.py"]
readable_dirs = ["servers/notes"]
writable_dirs = ["/var/lib/notes"]
network = true
"#,
    )
    .expect("valid");
    let plugin = &settings.agents.plugins[0];
    assert_eq!(plugin.kind, "word_count");
    assert_eq!(plugin.command, ["python3", "word_count.py"]);
    assert_eq!(plugin.timeout_secs, 5);
    assert_eq!(plugin.max_restarts, 3);
    assert_eq!(plugin.max_output_bytes, 1024 * 1024);
    assert_eq!(plugin.env_allow_list, ["PATH", "LANG", "LC_ALL"]);
    assert!(plugin.readable_dirs.is_empty() && plugin.writable_dirs.is_empty());
    assert!(!plugin.network, "no network unless asked for");
    assert_eq!(plugin.inputs["text"].input_type, InputType::String);
    assert_eq!(plugin.inputs["text"].description, "Text to count");
    assert!(!plugin.inputs["path"].required);
    assert!(plugin.inputs["strict"].required);
    let server = &settings.agents.mcp_servers[0];
    assert_eq!(server.name, "notes");
    assert_eq!(server.timeout_secs, 60);
    assert_eq!(
        server.readable_dirs,
        [std::path::Path::new("servers/notes")]
    );
    assert_eq!(
        server.writable_dirs,
        [std::path::Path::new("/var/lib/notes")]
    );
    assert!(server.network);
}

#[test]
fn bad_entries_are_all_reported_with_their_position_and_name() {
    let text = load(
        r#"
[[agents.plugins]]
kind = "a"
command = []

[[agents.plugins]]
kind = "a"
command = ["x"]
timeout_secs = 0

[[agents.plugins]]
kind = "has space"
command = [""]
max_output_bytes = 10
inputs."bad name" = { type = "string" }

[[agents.mcp_servers]]
name = "n"
command = ["x"]
[[agents.mcp_servers]]
name = "n"
command = ["x"]
restart_period_secs = 0
"#,
    )
    .expect_err("invalid");
    for expected in [
        "plugin 0 (`a`): `command` must name a program",
        "plugin 1 (`a`): kind `a` is declared twice",
        "plugin 1 (`a`): `timeout_secs` must be at least 1",
        "plugin 2 (`has space`): `kind` must be 1-64 letters, digits, `_` or `-`",
        "plugin 2 (`has space`): input `bad name` must be",
        "plugin 2 (`has space`): `command` must name a program",
        "plugin 2 (`has space`): `max_output_bytes` must be at least 1024",
        "MCP server 1 (`n`): name `n` is declared twice",
        "MCP server 1 (`n`): `restart_period_secs` must be at least 1",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    assert!(text.contains("`agents.plugins` from config file"), "{text}");
}

#[test]
fn an_unknown_input_type_or_key_is_refused_by_name() {
    let text = load(
        "[[agents.plugins]]\nkind = \"k\"\ncommand = [\"x\"]\ninputs.a = { type = \"text\" }\n",
    )
    .expect_err("bad type");
    assert!(text.contains("agents.plugins[0].inputs.a.type"), "{text}");
    assert!(text.contains("unknown variant `text`"), "{text}");
    let text = load("[[agents.plugins]]\nkind = \"k\"\ncommand = [\"x\"]\ntimeout = 3\n")
        .expect_err("typo");
    assert!(text.contains("unknown field `timeout`"), "{text}");
}
