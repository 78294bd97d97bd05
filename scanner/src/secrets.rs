//! Secrets in any text file: provider key formats, private key headers, and
//! high-entropy values assigned to names that suggest a secret. Values are never
//! copied into findings, only a masked prefix.

use std::sync::LazyLock;

use regex::Regex;

use crate::finding::Finding;
use crate::rules::table::rule_by_id;

pub struct KeyFormat {
    pub rule_id: &'static str,
    pub pattern: Regex,
}

fn format(rule_id: &'static str, pattern: &str) -> KeyFormat {
    KeyFormat {
        rule_id,
        // Literal patterns below; a typo fails every test run, not a user's scan.
        pattern: Regex::new(pattern).expect("secret pattern is valid"),
    }
}

/// Ordered so the more specific format wins on the same text (Anthropic's `sk-ant-`
/// before OpenAI's `sk-`).
pub static KEY_FORMATS: LazyLock<Vec<KeyFormat>> = LazyLock::new(|| {
    vec![
        format("secret.aws-access-key", r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
        format(
            "secret.github-token",
            r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})\b",
        ),
        format("secret.slack-token", r"\bxox[baprs]-[A-Za-z0-9-]{10,}"),
        format("secret.stripe-live-key", r"\b[sr]k_live_[A-Za-z0-9]{16,}"),
        format("secret.google-api-key", r"\bAIza[0-9A-Za-z_\-]{35}"),
        format("secret.anthropic-api-key", r"\bsk-ant-[A-Za-z0-9_\-]{20,}"),
        format(
            "secret.openai-api-key",
            r"\bsk-(?:proj-)?[A-Za-z0-9_\-]{20,}",
        ),
        format(
            "secret.private-key",
            r"-----BEGIN (?:(?:RSA|EC|OPENSSH|DSA|PGP|ENCRYPTED) )?PRIVATE KEY(?: BLOCK)?-----",
        ),
    ]
});

static SECRET_ASSIGNMENT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"(?i)([A-Za-z0-9_.\-]*(?:key|secret|token|passwd|password|pwd|credential)s?[A-Za-z0-9_]*)["']?\s*(?::=|=|:)\s*["']([^"'\s]{16,})["']"#,
    )
    .expect("secret assignment pattern is valid")
});

/// Bits per character above which a value looks random rather than a word: English
/// text and identifiers sit around 3 to 3.5, base64/hex keys above 3.7.
pub const ENTROPY_THRESHOLD_BITS: f64 = 3.5;

const PLACEHOLDERS: &[&str] = &[
    "changeme",
    "change_me",
    "xxxx",
    "example",
    "placeholder",
    "your_",
    "your-",
    "dummy",
    "redacted",
    "<",
    "${",
    "{{",
    "process.env",
    "os.environ",
    "env(",
];

pub fn scan(file: &str, src: &str, findings: &mut Vec<Finding>) {
    for (index, line) in src.lines().enumerate() {
        // Minified bundles put a whole program on one line; bound the work per line.
        let line = truncate_to_char_boundary(line, 4096);
        let mut matched_format = false;
        for format in KEY_FORMATS.iter() {
            if let Some(found) = format.pattern.find(line) {
                if format.rule_id == "secret.openai-api-key"
                    && found.as_str().starts_with("sk-ant-")
                {
                    continue;
                }
                push(
                    findings,
                    format.rule_id,
                    file,
                    index,
                    line,
                    found.start(),
                    found.as_str(),
                );
                matched_format = true;
                break;
            }
        }
        if matched_format {
            continue;
        }
        if let Some(captures) = SECRET_ASSIGNMENT.captures(line)
            && let Some(value) = captures.get(2)
            && looks_like_a_secret(value.as_str())
        {
            push(
                findings,
                "secret.high-entropy-assignment",
                file,
                index,
                line,
                value.start(),
                value.as_str(),
            );
        }
    }
}

fn looks_like_a_secret(value: &str) -> bool {
    let lower = value.to_ascii_lowercase();
    if PLACEHOLDERS
        .iter()
        .any(|placeholder| lower.contains(placeholder))
    {
        return false;
    }
    // Paths and URLs without credentials are configuration, not secrets.
    if value.starts_with('/') || value.starts_with("http") || value.starts_with('$') {
        return false;
    }
    shannon_entropy(value) >= ENTROPY_THRESHOLD_BITS
}

/// Shannon entropy in bits per character.
pub fn shannon_entropy(value: &str) -> f64 {
    let mut counts = [0usize; 256];
    for byte in value.bytes() {
        counts[usize::from(byte)] += 1;
    }
    let length = value.len() as f64;
    if length == 0.0 {
        return 0.0;
    }
    counts
        .iter()
        .filter(|count| **count > 0)
        .map(|count| {
            let p = *count as f64 / length;
            -p * p.log2()
        })
        .sum()
}

/// The first four characters and an ellipsis: enough to find the value, useless to
/// anyone reading the report.
pub fn mask(value: &str) -> String {
    let prefix: String = value.chars().take(4).collect();
    format!("{prefix}…")
}

fn truncate_to_char_boundary(line: &str, max_bytes: usize) -> &str {
    if line.len() <= max_bytes {
        return line;
    }
    let mut end = max_bytes;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    &line[..end]
}

fn push(
    findings: &mut Vec<Finding>,
    rule_id: &str,
    file: &str,
    index: usize,
    line: &str,
    start: usize,
    value: &str,
) {
    let Some(rule) = rule_by_id(rule_id) else {
        return;
    };
    let column = line
        .get(..start)
        .map_or(start, |prefix| prefix.chars().count())
        + 1;
    let shown = if rule_id == "secret.private-key" {
        value.to_string()
    } else {
        mask(value)
    };
    findings.push(Finding {
        file: file.to_string(),
        line: index + 1,
        column,
        rule: rule.id.to_string(),
        severity: rule.severity,
        message: format!("{} ({shown})", rule.message),
        fix: rule.fix.to_string(),
        category: rule.category,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules_in(src: &str) -> Vec<String> {
        let mut findings = Vec::new();
        scan("f.txt", src, &mut findings);
        findings.into_iter().map(|finding| finding.rule).collect()
    }

    #[test]
    fn entropy_separates_words_from_keys() {
        assert!(shannon_entropy("aaaaaaaaaaaaaaaa") < 1.0);
        assert!(shannon_entropy("correcthorsebatterystaple") < ENTROPY_THRESHOLD_BITS);
        assert!(shannon_entropy("q8Zr2LmX7vBn4KcT9pWd") > ENTROPY_THRESHOLD_BITS);
    }

    #[test]
    fn provider_formats_and_assignments_are_found_and_placeholders_are_not() {
        assert_eq!(
            rules_in("key = \"sk-ant-api03-abcdefghijklmnopqrstuvwx\""),
            ["secret.anthropic-api-key"]
        );
        assert_eq!(
            rules_in("OPENAI=sk-proj-abcdefghijklmnopqrstuvwx"),
            ["secret.openai-api-key"]
        );
        assert_eq!(
            rules_in("db_password = \"q8Zr2LmX7vBn4KcT9pWd\""),
            ["secret.high-entropy-assignment"]
        );
        assert!(rules_in("api_key = \"${API_KEY_FROM_ENVIRONMENT}\"").is_empty());
        assert!(rules_in("password = \"changeme-changeme-123\"").is_empty());
        assert!(rules_in("token = \"aaaaaaaaaaaaaaaaaaaa\"").is_empty());
    }

    #[test]
    fn the_value_is_masked() {
        let mut findings = Vec::new();
        scan("f", "AWS_KEY=AKIAIOSFODNN7EXAMPL3", &mut findings);
        assert_eq!(findings.len(), 1);
        assert!(!findings[0].message.contains("AKIAIOSFODNN7EXAMPL3"));
        assert!(findings[0].message.contains("AKIA…"));
    }
}
