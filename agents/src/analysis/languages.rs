//! Files and lines per language.

use serde::Serialize;

use troupe_scanner::rules::Lang;

/// What one language contributes to the repository.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct LanguageStats {
    pub files: usize,
    pub lines: usize,
    /// Lines that are neither blank nor only a comment.
    pub code_lines: usize,
}

/// The name reported for a language; TSX is TypeScript.
pub fn name(lang: Lang) -> &'static str {
    match lang {
        Lang::Rust => "rust",
        Lang::Python => "python",
        Lang::JavaScript => "javascript",
        Lang::TypeScript | Lang::Tsx => "typescript",
        Lang::Go => "go",
        Lang::Shell => "shell",
    }
}

/// Prefixes of a line that is only a comment. A line-based estimate, on purpose: the
/// inside of a block comment counts as a comment only when its lines start with `*`
/// (the usual style), and Python docstrings count as code.
fn comment_prefixes(lang: Lang) -> &'static [&'static str] {
    match lang {
        Lang::Python | Lang::Shell => &["#"],
        Lang::Rust | Lang::JavaScript | Lang::TypeScript | Lang::Tsx | Lang::Go => {
            &["//", "/*", "*"]
        }
    }
}

/// Lines and code lines of one file.
pub fn count_lines(lang: Lang, src: &str) -> LanguageStats {
    let prefixes = comment_prefixes(lang);
    let mut stats = LanguageStats {
        files: 1,
        ..LanguageStats::default()
    };
    for line in src.lines() {
        stats.lines += 1;
        let line = line.trim_start();
        if !line.is_empty() && !prefixes.iter().any(|prefix| line.starts_with(prefix)) {
            stats.code_lines += 1;
        }
    }
    stats
}

impl LanguageStats {
    pub fn add(&mut self, other: LanguageStats) {
        self.files += other.files;
        self.lines += other.lines;
        self.code_lines += other.code_lines;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_and_comment_lines_are_not_code() {
        let rust =
            "// header\n/* block\n * more\n */\nfn main() {\n\n    let x = 1; // trailing\n}\n";
        assert_eq!(
            count_lines(Lang::Rust, rust),
            LanguageStats {
                files: 1,
                lines: 8,
                code_lines: 3
            }
        );
        let python = "#!/usr/bin/env python\n# comment\nx = 1\n\n  # indented comment\ny = '#not a comment'\n";
        assert_eq!(count_lines(Lang::Python, python).code_lines, 2);
        assert_eq!(count_lines(Lang::Python, python).lines, 6);
    }
}
