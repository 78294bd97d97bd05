//! Static analysis: each source file is parsed with its language's tree-sitter grammar
//! and the syntax tree is walked once, every node offered to that language's rules.

pub mod config_files;
mod go;
mod javascript;
mod python;
mod rust;
mod shell;
mod syntax;
pub mod table;

use tree_sitter::{Language, Node, Parser};

use crate::finding::Finding;
use syntax::FileContext;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lang {
    Rust,
    Python,
    JavaScript,
    TypeScript,
    Tsx,
    Go,
    Shell,
}

impl Lang {
    /// The language of a file, by its extension (and a `#!` line for extensionless
    /// shell scripts).
    pub fn of(file: &str, src_start: &str) -> Option<Lang> {
        let name = file.rsplit('/').next().unwrap_or(file);
        let extension = name.rsplit_once('.').map(|(_, extension)| extension);
        match extension {
            Some("rs") => Some(Lang::Rust),
            Some("py" | "pyw") => Some(Lang::Python),
            Some("js" | "jsx" | "mjs" | "cjs") => Some(Lang::JavaScript),
            Some("ts" | "mts" | "cts") => Some(Lang::TypeScript),
            Some("tsx") => Some(Lang::Tsx),
            Some("go") => Some(Lang::Go),
            Some("sh" | "bash") => Some(Lang::Shell),
            None if src_start.starts_with("#!")
                && (src_start
                    .lines()
                    .next()
                    .is_some_and(|line| line.ends_with("sh"))) =>
            {
                Some(Lang::Shell)
            }
            _ => None,
        }
    }

    pub fn grammar(self) -> Language {
        match self {
            Lang::Rust => tree_sitter_rust::LANGUAGE.into(),
            Lang::Python => tree_sitter_python::LANGUAGE.into(),
            Lang::JavaScript => tree_sitter_javascript::LANGUAGE.into(),
            Lang::TypeScript => tree_sitter_typescript::LANGUAGE_TYPESCRIPT.into(),
            Lang::Tsx => tree_sitter_typescript::LANGUAGE_TSX.into(),
            Lang::Go => tree_sitter_go::LANGUAGE.into(),
            Lang::Shell => tree_sitter_bash::LANGUAGE.into(),
        }
    }
}

/// Findings of the code rules in one source file. A file the grammar cannot parse
/// still yields what the parts it could parse show (tree-sitter recovers from errors).
pub fn scan_source(lang: Lang, file: &str, src: &str) -> Vec<Finding> {
    let mut parser = Parser::new();
    if parser.set_language(&lang.grammar()).is_err() {
        tracing::warn!(
            ?lang,
            "tree-sitter grammar incompatible with the library; file not analysed"
        );
        return Vec::new();
    }
    let Some(tree) = parser.parse(src, None) else {
        return Vec::new();
    };
    let visit: fn(Node<'_>, &mut FileContext<'_>) = match lang {
        Lang::Rust => rust::visit,
        Lang::Python => python::visit,
        Lang::JavaScript | Lang::TypeScript | Lang::Tsx => javascript::visit,
        Lang::Go => go::visit,
        Lang::Shell => shell::visit,
    };
    let mut ctx = FileContext::new(src, file);
    // Pre-order, so assignments are seen before the calls that use them.
    syntax::visit_descendants(tree.root_node(), &mut |node| visit(node, &mut ctx));
    ctx.findings
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(lang: Lang, src: &str) -> Vec<String> {
        scan_source(lang, "f", src)
            .into_iter()
            .map(|finding| finding.rule)
            .collect()
    }

    #[test]
    fn object_keys_and_assignments_disable_tls_in_javascript() {
        let src = "const agent = new https.Agent({ rejectUnauthorized: false });\n\
                   process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';\n\
                   const fine = new https.Agent({ rejectUnauthorized: true });\n";
        let lines: Vec<usize> = scan_source(Lang::JavaScript, "f", src)
            .iter()
            .map(|finding| finding.line)
            .collect();
        assert_eq!(lines, [1, 2]);
        assert_eq!(
            rules(Lang::JavaScript, src),
            ["js.tls-verification-disabled"; 2]
        );
    }

    #[test]
    fn comments_and_strings_never_match_code_rules() {
        let python = "# eval(x) os.system(y)\ns = \"eval(x) os.system('rm ' + y)\"\n";
        assert!(rules(Lang::Python, python).is_empty());
        let go =
            "package p\n// exec.Command(\"sh\", \"-c\", x)\nvar s = `InsecureSkipVerify: true`\n";
        assert!(rules(Lang::Go, go).is_empty());
        let shell = "# curl -k https://x\necho 'eval $x'\n";
        assert!(rules(Lang::Shell, shell).is_empty());
    }
}
