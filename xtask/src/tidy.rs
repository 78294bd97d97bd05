//! `cargo xtask tidy`: the conventions no compiler checks, run by CI.
//!
//! - every Rust file opens with a module doc comment (`//!`);
//! - every workspace crate has its place in ARCHITECTURE.md (`` `dir/` ``);
//! - no placeholder macros and no ignored tests;
//! - no function over [`MAX_FUNCTION_LINES`] lines, except those listed in
//!   `xtask/long-functions.txt`, each at most as long as listed there (so they only
//!   shrink; an entry that is gone or short enough must be removed).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

pub const MAX_FUNCTION_LINES: usize = 100;
const ALLOWED_LONG: &str = "xtask/long-functions.txt";

/// Built from pieces so that this file does not match itself.
fn forbidden() -> [String; 3] {
    [
        ["todo", "!("].concat(),
        ["unimplemented", "!("].concat(),
        ["#[", "ignore"].concat(),
    ]
}

pub fn check(root: &Path) -> anyhow::Result<()> {
    let files = rust_files(root)?;
    let allowed = allowed_long_functions(root)?;
    let mut problems = Vec::new();
    let mut long = BTreeMap::new();
    for file in &files {
        let text = std::fs::read_to_string(root.join(file))
            .with_context(|| format!("reading {}", file.display()))?;
        if !text.trim_start().starts_with("//!") {
            problems.push(format!(
                "{}: no module doc comment (`//!`) at the top",
                file.display()
            ));
        }
        for pattern in forbidden() {
            for (number, line) in text.lines().enumerate() {
                if line.contains(&pattern) {
                    problems.push(format!("{}:{}: `{pattern}`", file.display(), number + 1));
                }
            }
        }
        for function in functions(&text) {
            if function.lines > MAX_FUNCTION_LINES {
                long.insert(
                    (file.clone(), function.name),
                    (function.line, function.lines),
                );
            }
        }
    }
    check_long(&long, &allowed, &mut problems);
    check_crates_mapped(root, &mut problems)?;
    if problems.is_empty() {
        println!("tidy: {} Rust files, all conventions hold", files.len());
        return Ok(());
    }
    for problem in &problems {
        eprintln!("{problem}");
    }
    bail!("tidy: {} problem(s)", problems.len())
}

type LongFunctions = BTreeMap<(PathBuf, String), (usize, usize)>;

fn check_long(
    found: &LongFunctions,
    allowed: &BTreeMap<(PathBuf, String), usize>,
    problems: &mut Vec<String>,
) {
    for ((file, name), (line, lines)) in found {
        match allowed.get(&(file.clone(), name.clone())) {
            Some(limit) if lines <= limit => {}
            Some(limit) => problems.push(format!(
                "{}:{line}: `{name}` grew to {lines} lines; {ALLOWED_LONG} allows it {limit}: shorten it",
                file.display()
            )),
            None => problems.push(format!(
                "{}:{line}: `{name}` has {lines} lines, over {MAX_FUNCTION_LINES}: split it",
                file.display()
            )),
        }
    }
    for (file, name) in allowed.keys() {
        if !found.contains_key(&(file.clone(), name.clone())) {
            problems.push(format!(
                "{ALLOWED_LONG}: `{name}` in {} is gone or now short enough: remove its line",
                file.display()
            ));
        }
    }
}

/// The tracked and new (not ignored) Rust files, relative to `root`.
fn rust_files(root: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let output = Command::new("git")
        .current_dir(root)
        .args([
            "ls-files",
            "--cached",
            "--others",
            "--exclude-standard",
            "*.rs",
        ])
        .output()
        .context("running git ls-files")?;
    if !output.status.success() {
        bail!(
            "git ls-files failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let mut files: Vec<PathBuf> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(PathBuf::from)
        .filter(|file| root.join(file).is_file())
        .collect();
    files.sort();
    files.dedup();
    Ok(files)
}

/// `lines path function` per line; `#` starts a comment.
fn allowed_long_functions(root: &Path) -> anyhow::Result<BTreeMap<(PathBuf, String), usize>> {
    let text = std::fs::read_to_string(root.join(ALLOWED_LONG))
        .with_context(|| format!("reading {ALLOWED_LONG}"))?;
    let mut allowed = BTreeMap::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [lines, file, name] = fields[..] else {
            bail!("{ALLOWED_LONG}:{}: want `lines path function`", number + 1);
        };
        let lines = lines
            .parse()
            .with_context(|| format!("{ALLOWED_LONG}:{}: `{lines}` is not a number", number + 1))?;
        allowed.insert((PathBuf::from(file), name.to_string()), lines);
    }
    Ok(allowed)
}

/// Every workspace member's folder is named in ARCHITECTURE.md as `` `dir/` ``.
fn check_crates_mapped(root: &Path, problems: &mut Vec<String>) -> anyhow::Result<()> {
    let manifest =
        std::fs::read_to_string(root.join("Cargo.toml")).context("reading Cargo.toml")?;
    let map =
        std::fs::read_to_string(root.join("ARCHITECTURE.md")).context("reading ARCHITECTURE.md")?;
    for member in workspace_members(&manifest) {
        if !map.contains(&format!("`{member}/`")) {
            problems.push(format!(
                "ARCHITECTURE.md: crate `{member}/` has no place in the map; add what it owns and knows nothing of"
            ));
        }
    }
    Ok(())
}

/// The quoted entries of `members = [...]`.
fn workspace_members(manifest: &str) -> Vec<String> {
    let Some(start) = manifest.find("members = [") else {
        return Vec::new();
    };
    let list = &manifest[start + "members = [".len()..];
    let list = &list[..list.find(']').unwrap_or(list.len())];
    list.split(',')
        .map(|entry| entry.trim().trim_matches('"').to_string())
        .filter(|entry| !entry.is_empty())
        .collect()
}

#[derive(Debug, PartialEq)]
struct Function {
    name: String,
    /// 1-based line of the `fn`.
    line: usize,
    lines: usize,
}

/// Every `fn` with a body, and how many lines it spans (signature to closing brace).
/// A line-based reading, not a parser: strings and comments are blanked before braces
/// are counted, which is enough for code that rustfmt has laid out.
fn functions(text: &str) -> Vec<Function> {
    let lines: Vec<String> = text.lines().map(code_only).collect();
    let mut found = Vec::new();
    for (start, line) in lines.iter().enumerate() {
        let Some(name) = fn_name(line) else {
            continue;
        };
        if let Some(end) = body_end(&lines, start) {
            found.push(Function {
                name,
                line: start + 1,
                lines: end - start + 1,
            });
        }
    }
    found
}

/// The function's name when `line` opens one.
fn fn_name(line: &str) -> Option<String> {
    let mut words = line.split_whitespace().peekable();
    while let Some(word) = words.next() {
        let qualifier = word.starts_with("pub")
            || matches!(word, "async" | "const" | "unsafe" | "extern" | "default")
            || word.starts_with('"');
        if word == "fn" {
            let name: String = words
                .next()?
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            return (!name.is_empty()).then_some(name);
        }
        if !qualifier {
            return None;
        }
    }
    None
}

/// The line of the brace that closes the body opened at or after `start`; `None` for a
/// declaration without a body (`fn f();` in a trait).
fn body_end(lines: &[String], start: usize) -> Option<usize> {
    let mut depth = 0_i64;
    let mut opened = false;
    for (index, line) in lines.iter().enumerate().skip(start) {
        for c in line.chars() {
            match c {
                '{' => {
                    depth += 1;
                    opened = true;
                }
                '}' => depth -= 1,
                ';' if !opened => return None,
                _ => {}
            }
            if opened && depth == 0 {
                return Some(index);
            }
        }
    }
    None
}

/// The line with comments, string and char literals blanked out.
fn code_only(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '/' if chars.peek() == Some(&'/') => break,
            '"' => {
                while let Some(inner) = chars.next() {
                    match inner {
                        '\\' => {
                            chars.next();
                        }
                        '"' => break,
                        _ => {}
                    }
                }
                out.push_str("\"\"");
            }
            '\'' => {
                // A char literal ('{', '\n') or a lifetime ('a): skip only the former.
                let rest: String = chars.clone().take(3).collect();
                if rest.starts_with('\\') {
                    let skip = rest.find('\'').map_or(0, |at| at + 1).max(3);
                    for _ in 0..skip {
                        chars.next();
                    }
                } else if rest.chars().nth(1) == Some('\'') {
                    chars.next();
                    chars.next();
                }
                out.push_str("' '");
            }
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn functions_are_measured_from_signature_to_closing_brace() {
        let text = "//! doc\nfn short() {}\npub async fn two(\n    a: u8,\n) {\n    let s = \"}\";\n    let c = '{';\n}\ntrait T {\n    fn declared(&self);\n}\n";
        let found = functions(text);
        assert_eq!(
            found,
            vec![
                Function {
                    name: "short".into(),
                    line: 2,
                    lines: 1
                },
                Function {
                    name: "two".into(),
                    line: 3,
                    lines: 6
                },
            ]
        );
    }

    #[test]
    fn lifetimes_do_not_hide_braces() {
        let found = functions("fn f<'a>(x: &'a str) -> &'a str {\n    x\n}\n");
        assert_eq!(found[0].lines, 3);
    }

    #[test]
    fn members_are_read_from_the_manifest() {
        let manifest =
            "[workspace]\nmembers = [\n    \"config\", \"store\",\n    \"examples/embed\",\n]\n";
        assert_eq!(
            workspace_members(manifest),
            ["config", "store", "examples/embed"]
        );
    }
}
