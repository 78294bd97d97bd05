//! Allow-list comments. A line containing `troupe:allow` suppresses findings on that
//! line and on the next one, so the marker can sit at the end of the line or on a
//! comment line above it:
//!
//! - `troupe:allow` — every finding;
//! - `troupe:allow secret` — one category (`secret`, `injection`, `tls`, ... as in
//!   the findings' `category`);
//! - `troupe:allow py.eval js.eval` — those rule ids.
//!
//! The marker is recognised in any comment syntax (it is matched in the raw line), but
//! only words after it on the same line count as its arguments, and only words that
//! name a category or look like a rule id (`lang.name`); prose after the marker is
//! ignored rather than widening or narrowing it by accident.

use std::collections::HashMap;

use crate::finding::Finding;

const MARKER: &str = "troupe:allow";

/// What each marked line (1-based) allows: `None` for everything.
fn markers(src: &str) -> HashMap<usize, Option<Vec<String>>> {
    let mut marked = HashMap::new();
    for (index, line) in src.lines().enumerate() {
        let Some(position) = line.find(MARKER) else {
            continue;
        };
        let rest = &line[position + MARKER.len()..];
        let names: Vec<String> = rest
            .split(|c: char| c.is_whitespace() || c == ',')
            .map(|word| {
                word.trim_matches(|c: char| {
                    !c.is_ascii_alphanumeric() && c != '.' && c != '-' && c != '_'
                })
            })
            .filter(|word| !word.is_empty())
            .take_while(|word| word.contains('.') || is_category(word))
            .map(str::to_string)
            .collect();
        marked.insert(index + 1, if names.is_empty() { None } else { Some(names) });
    }
    marked
}

fn is_category(word: &str) -> bool {
    matches!(
        word,
        "secret"
            | "injection"
            | "path_traversal"
            | "deserialization"
            | "code_execution"
            | "weak_crypto"
            | "insecure_randomness"
            | "tls"
            | "configuration"
            | "dependency"
    )
}

/// Removes the findings an allow-list comment covers; returns how many it removed.
pub fn apply(src: &str, findings: &mut Vec<Finding>) -> usize {
    if !src.contains(MARKER) {
        return 0;
    }
    let marked = markers(src);
    let before = findings.len();
    findings.retain(|finding| {
        let covering = [finding.line, finding.line.saturating_sub(1)];
        !covering
            .iter()
            .filter_map(|line| marked.get(line))
            .any(|allowed| match allowed {
                None => true,
                Some(names) => names
                    .iter()
                    .any(|name| name == &finding.rule || name == finding.category.as_str()),
            })
    });
    before - findings.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::{Category, Severity};

    fn finding(line: usize, rule: &str, category: Category) -> Finding {
        Finding {
            file: "f".into(),
            line,
            column: 1,
            rule: rule.into(),
            severity: Severity::High,
            message: String::new(),
            fix: String::new(),
            category,
        }
    }

    #[test]
    fn markers_cover_their_line_and_the_next_and_only_what_they_name() {
        let src = "a # troupe:allow secret\nb\nc\n# troupe:allow py.eval\nd\n";
        let mut findings = vec![
            finding(1, "secret.aws-access-key", Category::Secret),
            finding(2, "secret.private-key", Category::Secret),
            finding(2, "py.eval", Category::CodeExecution),
            finding(3, "secret.private-key", Category::Secret),
            finding(5, "py.eval", Category::CodeExecution),
            finding(5, "py.sql-injection", Category::Injection),
        ];
        assert_eq!(apply(src, &mut findings), 3);
        let left: Vec<(usize, &str)> = findings.iter().map(|f| (f.line, f.rule.as_str())).collect();
        assert_eq!(
            left,
            [
                (2, "py.eval"),
                (3, "secret.private-key"),
                (5, "py.sql-injection")
            ]
        );
    }
}
