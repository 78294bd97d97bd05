//! Rules for configuration files (YAML, JSON, TOML, INI, .env, nginx). There is no
//! grammar crate for most of these, and the settings are one `key: value` per line, so
//! these rules are line patterns that skip comment lines.

use std::sync::LazyLock;

use regex::Regex;

use crate::finding::Finding;
use crate::rules::table::rule_by_id;

static DEBUG_ON: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?i)^\s*["']?(debug|flask_debug|app_debug|debug_mode)["']?\s*[:=]\s*["']?(true|1|yes|on)["']?\s*,?\s*(#.*)?$"#)
        .expect("debug pattern is valid")
});

static CORS_WILDCARD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r#"(?i)(access-control-allow-origin["']?\s*[:=]?\s*["']?\*|"#,
        r#"^\s*["']?(cors_?origins?|allow(ed)?_?origins?|cors_allow_origin|origin)["']?\s*[:=]\s*\[?\s*["']\*["'])"#
    ))
    .expect("CORS pattern is valid")
});

pub fn is_config_file(file: &str) -> bool {
    let name = file.rsplit('/').next().unwrap_or(file).to_ascii_lowercase();
    let extension = name.rsplit('.').next().unwrap_or("");
    matches!(
        extension,
        "yaml" | "yml" | "json" | "toml" | "ini" | "cfg" | "conf" | "env" | "properties"
    ) || name == ".env"
        || name.starts_with(".env.")
}

pub fn scan(file: &str, src: &str, findings: &mut Vec<Finding>) {
    for (index, line) in src.lines().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.starts_with('#') || trimmed.starts_with("//") || trimmed.starts_with(';') {
            continue;
        }
        if DEBUG_ON.is_match(line) {
            push(findings, "config.debug-enabled", file, index, line);
        }
        if CORS_WILDCARD.is_match(line) {
            push(findings, "config.cors-wildcard", file, index, line);
        }
    }
}

fn push(findings: &mut Vec<Finding>, rule_id: &str, file: &str, index: usize, line: &str) {
    let Some(rule) = rule_by_id(rule_id) else {
        return;
    };
    findings.push(Finding {
        file: file.to_string(),
        line: index + 1,
        column: line.chars().take_while(|c| c.is_whitespace()).count() + 1,
        rule: rule.id.to_string(),
        severity: rule.severity,
        message: rule.message.to_string(),
        fix: rule.fix.to_string(),
        category: rule.category,
    });
}
