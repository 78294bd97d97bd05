//! Reading structure out of a model's free text: fenced code blocks, list items,
//! `name: purpose` lines and unified diffs. Lenient about decoration (bullets, numbers,
//! bold markers), strict about what is kept.

/// One fenced block; `closed` is false when the answer ended inside it (cut at the
/// token limit).
#[derive(Debug, Clone, PartialEq)]
pub struct CodeBlock {
    pub tag: String,
    pub body: String,
    pub closed: bool,
}

/// The fenced blocks of an answer, in order.
pub fn code_blocks(answer: &str) -> Vec<CodeBlock> {
    let mut blocks = Vec::new();
    let mut current: Option<CodeBlock> = None;
    for line in answer.lines() {
        if let Some(fence) = line.trim_start().strip_prefix("```") {
            match current.take() {
                Some(mut block) => {
                    block.closed = true;
                    blocks.push(block);
                }
                None => {
                    current = Some(CodeBlock {
                        tag: fence.trim().to_lowercase(),
                        body: String::new(),
                        closed: false,
                    })
                }
            }
        } else if let Some(block) = current.as_mut() {
            block.body.push_str(line);
            block.body.push('\n');
        }
    }
    blocks.extend(current);
    blocks
}

/// Strips list decoration: `- `, `* `, `1. `, `2) `, and `**bold**` markers.
fn undecorated(line: &str) -> Option<&str> {
    let trimmed = line.trim();
    let rest = if let Some(rest) = trimmed
        .strip_prefix("- ")
        .or_else(|| trimmed.strip_prefix("* "))
        .or_else(|| trimmed.strip_prefix("• "))
    {
        rest
    } else {
        let digits = trimmed.chars().take_while(char::is_ascii_digit).count();
        let after = &trimmed[digits..];
        match after
            .strip_prefix(". ")
            .or_else(|| after.strip_prefix(") "))
        {
            Some(rest) if digits > 0 && digits <= 3 => rest,
            _ => return None,
        }
    };
    Some(rest.trim())
}

/// The lines of an answer outside its code blocks.
fn prose_lines(answer: &str) -> impl Iterator<Item = &str> {
    let mut in_code = false;
    answer.lines().filter(move |line| {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            return false;
        }
        !in_code
    })
}

/// Numbered or bulleted items, outside code blocks, bold markers removed, duplicates
/// dropped.
pub fn list_items(answer: &str) -> Vec<String> {
    let mut items: Vec<String> = Vec::new();
    for line in prose_lines(answer) {
        let Some(item) = undecorated(line) else {
            continue;
        };
        let item = item.replace("**", "").trim().to_string();
        if !item.is_empty() && !items.iter().any(|seen| seen.eq_ignore_ascii_case(&item)) {
            items.push(item);
        }
    }
    items
}

/// `name: purpose` lines (decorated or not), outside code blocks, with the name made an
/// identifier. Lines whose name is not one (a sentence, a file name) are skipped.
pub fn named_lines(answer: &str) -> Vec<(String, String)> {
    let mut named: Vec<(String, String)> = Vec::new();
    for line in prose_lines(answer) {
        let line = undecorated(line).unwrap_or(line.trim()).replace("**", "");
        let Some((name, purpose)) = line.split_once(':') else {
            continue;
        };
        let purpose = purpose.trim();
        let Some(name) = identifier(name) else {
            continue;
        };
        if purpose.is_empty() || named.iter().any(|(seen, _)| *seen == name) {
            continue;
        }
        named.push((name, purpose.to_string()));
    }
    named
}

/// A snake_case identifier from a short name: `User Store` → `user_store`. `None` for
/// what is not a name: more than four words, a file name, a keyword-like word that
/// models write before a colon.
pub fn identifier(name: &str) -> Option<String> {
    let name = name.trim().trim_matches('`').trim();
    if name.contains('.') || name.contains('/') || name.split_whitespace().count() > 4 {
        return None;
    }
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if (c == '_' || c == '-' || c.is_whitespace()) && !out.ends_with('_') {
            out.push('_');
        } else if !(c == '_' || c == '-' || c.is_whitespace()) {
            return None;
        }
    }
    let out = out.trim_matches('_').to_string();
    const NOT_NAMES: [&str; 10] = [
        "note", "example", "feature", "modules", "module", "python", "code", "answer", "here",
        "output",
    ];
    let starts_with_letter = out.chars().next().is_some_and(|c| c.is_ascii_lowercase());
    (starts_with_letter && out.len() <= 40 && !NOT_NAMES.contains(&out.as_str())).then_some(out)
}

/// The unified diff in an answer: a ```diff/```patch block, else the lines from the
/// first `--- ` header on.
pub fn unified_diff(answer: &str) -> Option<String> {
    let from_block = code_blocks(answer)
        .into_iter()
        .find(|block| {
            matches!(block.tag.as_str(), "diff" | "patch") || block.body.contains("\n@@ ")
        })
        .map(|block| block.body);
    let diff = from_block.or_else(|| {
        let start = answer.find("--- ")?;
        Some(answer[start..].to_string())
    })?;
    let has_hunk = diff.lines().any(|line| line.starts_with("@@ "));
    let has_headers = diff.lines().any(|line| line.starts_with("--- "))
        && diff.lines().any(|line| line.starts_with("+++ "));
    (has_hunk && has_headers).then(|| {
        let mut diff = diff;
        if !diff.ends_with('\n') {
            diff.push('\n');
        }
        diff
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_items_take_numbered_and_bulleted_lines_only() {
        let answer = "Here is the plan:\n1. Parse the input\n2) **Store** tasks\n- Print them\nnot an item\n```\n1. inside code\n```\n3. Parse the input\n";
        assert_eq!(
            list_items(answer),
            ["Parse the input", "Store tasks", "Print them"]
        );
        assert!(list_items("no structure at all").is_empty());
    }

    #[test]
    fn named_lines_make_identifiers_and_skip_what_is_not_a_name() {
        let answer = "parser: reads input\n- **User Store**: keeps users\ntodo_list.json: a file\nThis is a very long sentence that happens to have: a colon\npython:\n```\ncode: inside\n```\nparser: again\n";
        assert_eq!(
            named_lines(answer),
            [
                ("parser".to_string(), "reads input".to_string()),
                ("user_store".to_string(), "keeps users".to_string())
            ]
        );
    }

    #[test]
    fn identifiers_refuse_symbols_and_keep_snake_case() {
        assert_eq!(
            identifier("Storage-Layer").as_deref(),
            Some("storage_layer")
        );
        assert_eq!(identifier("`cli`").as_deref(), Some("cli"));
        assert_eq!(identifier("../etc"), None);
        assert_eq!(identifier("9lives"), None);
        assert_eq!(identifier("a$b"), None);
        assert_eq!(identifier("Example"), None);
    }

    #[test]
    fn code_blocks_report_an_unclosed_fence() {
        let blocks = code_blocks("text\n```python\nx = 1\n```\n```rust\nfn f() {");
        assert_eq!(blocks.len(), 2);
        assert_eq!(blocks[0].tag, "python");
        assert!(blocks[0].closed);
        assert!(!blocks[1].closed);
    }

    #[test]
    fn diffs_need_headers_and_a_hunk() {
        let diff = "Fix:\n```diff\n--- a/x.py\n+++ b/x.py\n@@ -1 +1 @@\n-a\n+b\n```";
        assert!(unified_diff(diff).is_some_and(|d| d.starts_with("--- a/x.py")));
        assert_eq!(unified_diff("```diff\n-a\n+b\n```"), None);
        assert_eq!(unified_diff("no diff here"), None);
    }
}
