//! Checking that generated code parses, with the same tree-sitter grammars the scanner
//! uses, and keeping what parses of an answer the token limit cut short.

use tree_sitter::Parser;

use troupe_scanner::rules::Lang;

/// The language a task names (`python`, `rust`, ...), with its file extension.
pub fn language(name: &str) -> Result<Lang, String> {
    Ok(match name.trim().to_lowercase().as_str() {
        "python" | "py" | "python3" => Lang::Python,
        "rust" | "rs" => Lang::Rust,
        "javascript" | "js" | "node" => Lang::JavaScript,
        "typescript" | "ts" => Lang::TypeScript,
        "go" | "golang" => Lang::Go,
        "shell" | "bash" | "sh" => Lang::Shell,
        other => {
            return Err(format!(
                "unsupported language `{other}`; use python, rust, javascript, typescript, go or shell"
            ));
        }
    })
}

pub fn extension(lang: Lang) -> &'static str {
    match lang {
        Lang::Python => "py",
        Lang::Rust => "rs",
        Lang::JavaScript => "js",
        Lang::TypeScript => "ts",
        Lang::Tsx => "tsx",
        Lang::Go => "go",
        Lang::Shell => "sh",
    }
}

pub fn fence_tag(lang: Lang) -> &'static str {
    match lang {
        Lang::Python => "python",
        Lang::Rust => "rust",
        Lang::JavaScript => "javascript",
        Lang::TypeScript | Lang::Tsx => "typescript",
        Lang::Go => "go",
        Lang::Shell => "bash",
    }
}

/// Code that parses, and how many trailing lines were dropped to get there.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    pub code: String,
    pub dropped_lines: usize,
}

/// `code` if it parses as `lang`. When it does not and `cut_short` (the answer ended
/// inside the block), the top-level items before the first broken one are kept, so a
/// module cut in its last function keeps the functions it finished. What is kept must
/// be at least half the code (in lines that are not blank): a module that lost most of
/// itself is not the module that was asked for.
pub fn parse_or_salvage(lang: Lang, code: &str, cut_short: bool) -> Result<Parsed, String> {
    if code.trim().is_empty() {
        return Err("the code block is empty".into());
    }
    let mut parser = Parser::new();
    parser
        .set_language(&lang.grammar())
        .map_err(|error| format!("grammar: {error}"))?;
    let tree = parser
        .parse(code, None)
        .ok_or_else(|| "the parser gave up".to_string())?;
    let root = tree.root_node();
    if !root.has_error() {
        return Ok(Parsed {
            code: code.to_string(),
            dropped_lines: 0,
        });
    }
    let first_error_line = first_error_line(root);
    if !cut_short {
        return Err(format!(
            "the {} code does not parse (line {first_error_line})",
            fence_tag(lang)
        ));
    }
    // Cut before each line that starts at column 0 (where a new top-level item starts
    // in every language here), latest first, and keep the longest prefix that parses.
    let cuts = code
        .match_indices('\n')
        .map(|(at, _)| at + 1)
        .filter(|&at| {
            code[at..]
                .chars()
                .next()
                .is_some_and(|c| !c.is_whitespace())
        });
    let mut cuts: Vec<usize> = cuts.collect();
    cuts.reverse();
    for cut in cuts {
        let kept = format!("{}\n", code[..cut].trim_end());
        if kept.trim().is_empty() {
            continue;
        }
        if parser
            .parse(&kept, None)
            .is_some_and(|tree| !tree.root_node().has_error())
        {
            let (kept_lines, all_lines) = (lines_of(&kept), lines_of(code));
            if kept_lines * 2 < all_lines {
                return Err(format!(
                    "the {} code does not parse (line {first_error_line}), and only {kept_lines} of its {all_lines} lines come before the break",
                    fence_tag(lang)
                ));
            }
            return Ok(Parsed {
                dropped_lines: code.lines().count().saturating_sub(kept.lines().count()),
                code: kept,
            });
        }
    }
    Err(format!(
        "the {} code does not parse (line {first_error_line}) and nothing before the break is whole",
        fence_tag(lang)
    ))
}

/// Lines that are not blank.
fn lines_of(code: &str) -> usize {
    code.lines().filter(|line| !line.trim().is_empty()).count()
}

fn first_error_line(root: tree_sitter::Node<'_>) -> usize {
    let mut node = root;
    let mut cursor = root.walk();
    'descend: loop {
        for child in node.children(&mut cursor) {
            if child.is_error() || child.is_missing() {
                node = child;
                break 'descend;
            }
            if child.has_error() {
                node = child;
                continue 'descend;
            }
        }
        break;
    }
    node.start_position().row + 1
}

/// Python's standard library modules that a generated module's name may well collide
/// with (`sys.stdlib_module_names`, less the private and platform-only ones no one names
/// a feature's module after).
const PYTHON_STANDARD_MODULES: &[&str] = &[
    "abc",
    "argparse",
    "array",
    "ast",
    "asyncio",
    "base64",
    "bisect",
    "builtins",
    "calendar",
    "cmd",
    "code",
    "codecs",
    "collections",
    "colorsys",
    "configparser",
    "contextlib",
    "copy",
    "csv",
    "ctypes",
    "curses",
    "dataclasses",
    "datetime",
    "decimal",
    "difflib",
    "dis",
    "doctest",
    "email",
    "enum",
    "errno",
    "fileinput",
    "fnmatch",
    "fractions",
    "functools",
    "gc",
    "getpass",
    "gettext",
    "glob",
    "graphlib",
    "gzip",
    "hashlib",
    "heapq",
    "hmac",
    "html",
    "http",
    "imaplib",
    "importlib",
    "inspect",
    "io",
    "ipaddress",
    "itertools",
    "json",
    "keyword",
    "locale",
    "logging",
    "lzma",
    "mailbox",
    "math",
    "mimetypes",
    "mmap",
    "numbers",
    "operator",
    "os",
    "pathlib",
    "pdb",
    "pickle",
    "platform",
    "plistlib",
    "pprint",
    "profile",
    "pstats",
    "queue",
    "random",
    "re",
    "resource",
    "sched",
    "secrets",
    "select",
    "selectors",
    "shelve",
    "shlex",
    "shutil",
    "signal",
    "site",
    "smtplib",
    "socket",
    "sqlite3",
    "ssl",
    "stat",
    "statistics",
    "string",
    "struct",
    "subprocess",
    "sys",
    "tarfile",
    "tempfile",
    "test",
    "textwrap",
    "threading",
    "time",
    "timeit",
    "token",
    "tokenize",
    "tomllib",
    "trace",
    "traceback",
    "types",
    "typing",
    "unittest",
    "urllib",
    "uuid",
    "venv",
    "warnings",
    "wave",
    "weakref",
    "webbrowser",
    "xml",
    "zipfile",
    "zlib",
    "zoneinfo",
];

/// Whether a module file named `name` would hide a standard library module of that name:
/// in Python, `json.py` is what every `import json` in its directory finds, the test
/// runner's own included.
pub fn shadows_standard_library(lang: Lang, name: &str) -> bool {
    matches!(lang, Lang::Python) && PYTHON_STANDARD_MODULES.contains(&name)
}

/// How many tests a test file defines, by its language's convention.
pub fn count_tests(lang: Lang, code: &str) -> usize {
    code.lines()
        .filter(|line| {
            let line = line.trim_start();
            match lang {
                Lang::Python => line.starts_with("def test") || line.starts_with("async def test"),
                Lang::Rust => line.starts_with("#[test]") || line.starts_with("#[tokio::test"),
                Lang::JavaScript | Lang::TypeScript | Lang::Tsx => {
                    line.starts_with("test(") || line.starts_with("it(")
                }
                Lang::Go => line.starts_with("func Test"),
                Lang::Shell => line.starts_with("test_"),
            }
        })
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_code_parses_and_broken_code_names_its_line() {
        let parsed = parse_or_salvage(Lang::Python, "def f():\n    return 1\n", false);
        assert_eq!(parsed.map(|p| p.dropped_lines), Ok(0));
        let broken = parse_or_salvage(Lang::Python, "def f(:\n    return 1\n", false);
        assert!(broken.is_err_and(|e| e.contains("line 1")));
    }

    #[test]
    fn a_cut_answer_keeps_its_finished_functions() {
        let code = "def a():\n    return 1\n\ndef b():\n    return (1,\n";
        let parsed = parse_or_salvage(Lang::Python, code, true).expect("salvaged");
        assert_eq!(parsed.code, "def a():\n    return 1\n");
        assert_eq!(parsed.dropped_lines, 3);
        assert_eq!(
            parse_or_salvage(Lang::Python, "def b(:\n", true).map(|p| p.code),
            Err(
                "the python code does not parse (line 1) and nothing before the break is whole"
                    .into()
            )
        );
        let mostly_broken = format!(
            "def a():\n    return 1\n\ndef b(:\n{}",
            "    x = 1\n".repeat(5)
        );
        assert_eq!(
            parse_or_salvage(Lang::Python, &mostly_broken, true).map(|p| p.code),
            Err(
                "the python code does not parse (line 4), and only 2 of its 8 lines come before the break"
                    .into()
            )
        );
        assert_eq!(
            parse_or_salvage(Lang::Python, "  \n", true).map(|p| p.code),
            Err("the code block is empty".into())
        );
    }

    #[test]
    fn languages_are_named_or_refused() {
        assert_eq!(language("Python"), Ok(Lang::Python));
        assert!(language("cobol").is_err_and(|e| e.contains("use python")));
    }

    #[test]
    fn tests_are_counted_by_convention() {
        assert_eq!(
            count_tests(
                Lang::Python,
                "def test_a():\n    pass\ndef helper(): pass\n"
            ),
            1
        );
        assert_eq!(count_tests(Lang::Rust, "#[test]\nfn a() {}\n"), 1);
    }
}
