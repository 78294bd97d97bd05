//! Cyclomatic complexity per function, by walking the tree-sitter syntax tree.
//!
//! A function scores 1 plus one per decision point in its body:
//! - a conditional branch: `if`, `elif` / `else if` (an `else if` is a nested `if`),
//!   the ternary / conditional expression;
//! - a loop: `for`, `while`, `do ... while` and Python comprehension `for` / `if`
//!   clauses (`loop {}` in Rust is unconditional and does not count);
//! - a handler: `catch` / `except`;
//! - a short-circuit operator: `&&`, `||`, JavaScript's `??`, Python's `and` / `or`;
//! - a multi-way branch (`match`, `switch`, `select`, `case`): each arm beyond the first,
//!   so a branch with N arms (a `default` / `_` arm included) adds N − 1.
//!
//! Rust's `?` is not counted: it is error propagation, and counting it would punish
//! the idiomatic form of code that has no other branch. Nested functions (and arrow
//! functions in JavaScript) are scored separately; their decisions do not count for the
//! function around them. Rust closures are not functions here: they count for theirs.

use serde::Serialize;
use tree_sitter::{Node, Parser};

use troupe_scanner::rules::Lang;

/// One function and its score.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FunctionComplexity {
    pub file: String,
    pub name: String,
    /// 1-based line of the function's first line.
    pub line: usize,
    pub complexity: usize,
    /// Lines the function spans, its signature and closing line included.
    pub lines: usize,
}

/// The node kinds that matter in one language.
struct Kinds {
    functions: &'static [&'static str],
    decisions: &'static [&'static str],
    /// Anonymous operator tokens that are decisions (`&&`, `and`, ...).
    operators: &'static [&'static str],
    /// The arms of a multi-way branch; their container adds arms − 1.
    arms: &'static [&'static str],
}

fn kinds(lang: Lang) -> Kinds {
    match lang {
        Lang::Rust => Kinds {
            functions: &["function_item"],
            decisions: &["if_expression", "while_expression", "for_expression"],
            operators: &["&&", "||"],
            arms: &["match_arm"],
        },
        Lang::Python => Kinds {
            functions: &["function_definition"],
            decisions: &[
                "if_statement",
                "elif_clause",
                "for_statement",
                "while_statement",
                "except_clause",
                "conditional_expression",
                "for_in_clause",
                "if_clause",
            ],
            operators: &["and", "or"],
            arms: &["case_clause"],
        },
        Lang::JavaScript | Lang::TypeScript | Lang::Tsx => Kinds {
            functions: &[
                "function_declaration",
                "method_definition",
                "arrow_function",
                "function_expression",
                "generator_function_declaration",
                "generator_function",
            ],
            decisions: &[
                "if_statement",
                "for_statement",
                "for_in_statement",
                "while_statement",
                "do_statement",
                "catch_clause",
                "ternary_expression",
            ],
            operators: &["&&", "||", "??"],
            arms: &["switch_case", "switch_default"],
        },
        Lang::Go => Kinds {
            functions: &["function_declaration", "method_declaration"],
            decisions: &["if_statement", "for_statement"],
            operators: &["&&", "||"],
            arms: &[
                "expression_case",
                "type_case",
                "communication_case",
                "default_case",
            ],
        },
        Lang::Shell => Kinds {
            functions: &["function_definition"],
            decisions: &[
                "if_statement",
                "elif_clause",
                "for_statement",
                "c_style_for_statement",
                "while_statement",
            ],
            operators: &["&&", "||"],
            arms: &["case_item"],
        },
    }
}

/// Every function in `src` with its complexity, in source order. A file the grammar
/// cannot load yields nothing; one with syntax errors yields what tree-sitter recovered.
pub fn functions(lang: Lang, file: &str, src: &str) -> Vec<FunctionComplexity> {
    let mut parser = Parser::new();
    if parser.set_language(&lang.grammar()).is_err() {
        tracing::warn!(?lang, "tree-sitter grammar incompatible; file not analysed");
        return Vec::new();
    }
    let Some(tree) = parser.parse(src, None) else {
        return Vec::new();
    };
    let kinds = kinds(lang);
    let mut found = Vec::new();
    // An explicit stack: a deeply nested file must not overflow ours.
    let mut stack = vec![tree.root_node()];
    while let Some(node) = stack.pop() {
        if kinds.functions.contains(&node.kind()) {
            found.push(FunctionComplexity {
                file: file.to_string(),
                name: function_name(node, src),
                line: node.start_position().row + 1,
                complexity: 1 + decisions_in(node, &kinds),
                lines: node.end_position().row - node.start_position().row + 1,
            });
        }
        push_children(node, &mut stack);
    }
    found.sort_by_key(|function| function.line);
    found
}

/// Decision points under `function`, not entering the functions nested in it.
fn decisions_in(function: Node<'_>, kinds: &Kinds) -> usize {
    let mut count = 0;
    let mut stack = Vec::new();
    push_children(function, &mut stack);
    while let Some(node) = stack.pop() {
        if kinds.functions.contains(&node.kind()) {
            continue;
        }
        if node.is_named() && kinds.decisions.contains(&node.kind()) {
            count += 1;
        }
        if !node.is_named() && kinds.operators.contains(&node.kind()) {
            count += 1;
        }
        let mut cursor = node.walk();
        let arms = node
            .named_children(&mut cursor)
            .filter(|child| kinds.arms.contains(&child.kind()))
            .count();
        count += arms.saturating_sub(1);
        push_children(node, &mut stack);
    }
    count
}

fn push_children<'tree>(node: Node<'tree>, stack: &mut Vec<Node<'tree>>) {
    let mut cursor = node.walk();
    stack.extend(node.children(&mut cursor));
}

/// The function's own name, or the name it is bound to (`const f = () => ...`,
/// `{ f: function () {} }`), or `<anonymous>`.
fn function_name(node: Node<'_>, src: &str) -> String {
    let text = |node: Node<'_>| {
        node.utf8_text(src.as_bytes())
            .map(str::to_string)
            .unwrap_or_default()
    };
    if let Some(name) = node.child_by_field_name("name") {
        return text(name);
    }
    let bound = node.parent().and_then(|parent| match parent.kind() {
        "variable_declarator" => parent.child_by_field_name("name"),
        "pair" => parent.child_by_field_name("key"),
        "assignment_expression" => parent.child_by_field_name("left"),
        "public_field_definition" | "field_definition" => parent
            .child_by_field_name("name")
            .or_else(|| parent.child_by_field_name("property")),
        _ => None,
    });
    bound.map_or_else(|| "<anonymous>".to_string(), text)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (name, complexity) of each function in source order.
    fn scores(lang: Lang, src: &str) -> Vec<(String, usize)> {
        functions(lang, "f", src)
            .into_iter()
            .map(|function| (function.name, function.complexity))
            .collect()
    }

    fn named(pairs: &[(&str, usize)]) -> Vec<(String, usize)> {
        pairs
            .iter()
            .map(|(name, score)| (name.to_string(), *score))
            .collect()
    }

    #[test]
    fn python_counts_if_elif_for_and_boolean_operators() {
        let src = "def classify(n, items):\n    if n < 0 and n > -10:\n        return 'small'\n    elif n == 0:\n        return 'zero'\n    for item in items:\n        if item:\n            print(item)\n    return 'other'\n\ndef plain():\n    return 1\n";
        // 1 + if + and + elif + for + if = 6.
        assert_eq!(
            scores(Lang::Python, src),
            named(&[("classify", 6), ("plain", 1)])
        );
        let handlers = "def load(p):\n    try:\n        return open(p)\n    except OSError:\n        return None\n    except ValueError:\n        return 1 if p else 2\n";
        // 1 + two excepts + the conditional expression = 4.
        assert_eq!(scores(Lang::Python, handlers), named(&[("load", 4)]));
    }

    #[test]
    fn rust_counts_match_arms_beyond_the_first_and_not_the_question_mark() {
        let src = "fn pick(x: i32, flag: bool) -> i32 {\n    if x > 0 && flag {\n        return 1;\n    }\n    match x {\n        0 => 2,\n        1 => 3,\n        _ => 4,\n    }\n}\n\nfn parse(s: &str) -> Result<i32, std::num::ParseIntError> {\n    let n = s.parse::<i32>()?;\n    Ok(n)\n}\n";
        // pick: 1 + if + && + (3 arms - 1) = 5; parse: `?` does not count.
        assert_eq!(scores(Lang::Rust, src), named(&[("pick", 5), ("parse", 1)]));
    }

    #[test]
    fn nested_functions_are_scored_on_their_own() {
        let src = "fn outer() {\n    fn inner(a: bool) -> bool {\n        if a { true } else if !a { false } else { true }\n    }\n    for _ in 0..3 {}\n    while inner(true) {}\n}\n";
        assert_eq!(
            scores(Lang::Rust, src),
            named(&[("outer", 3), ("inner", 3)])
        );
    }

    #[test]
    fn javascript_counts_else_if_ternaries_switch_cases_and_catch() {
        let src = "function f(a, b) {\n  if (a || b) { return 1; } else if (a) { return 2; }\n  return a ? 3 : 4;\n}\nconst g = (x) => {\n  switch (x) { case 1: return 1; case 2: return 2; default: return 0; }\n};\nfunction h() { try { x(); } catch (e) { y(); } }\n";
        // f: 1 + if + || + else-if + ternary = 5; g: 1 + (3 arms - 1) = 3; h: 1 + catch.
        assert_eq!(
            scores(Lang::JavaScript, src),
            named(&[("f", 5), ("g", 3), ("h", 2)])
        );
    }

    #[test]
    fn typescript_methods_and_nested_arrows_are_separate_functions() {
        let src = "class A {\n  m(x: number): number {\n    const inner = (y: number) => y > 0 && y < 9;\n    return x > 0 ? 1 : x ?? 0;\n  }\n}\n";
        // m: 1 + ternary + ?? = 3 (the arrow's && is its own); inner: 1 + && = 2.
        assert_eq!(
            scores(Lang::TypeScript, src),
            named(&[("m", 3), ("inner", 2)])
        );
    }

    #[test]
    fn go_counts_loops_conditions_and_switch_arms() {
        let src = "package p\n\nfunc F(a int) int {\n\tfor i := 0; i < a; i++ {\n\t\tif i > 2 || a < 0 {\n\t\t\treturn i\n\t\t}\n\t}\n\tswitch a {\n\tcase 1:\n\t\treturn 1\n\tdefault:\n\t\treturn 0\n\t}\n}\n\ntype T struct{}\n\nfunc (t T) M() int { return 1 }\n";
        // F: 1 + for + if + || + (2 arms - 1) = 5.
        assert_eq!(scores(Lang::Go, src), named(&[("F", 5), ("M", 1)]));
    }

    #[test]
    fn shell_counts_elif_case_items_and_and_lists() {
        let src = "deploy() {\n  if [ -z \"$1\" ]; then echo no; elif [ \"$1\" = x ]; then echo x; fi\n  case \"$1\" in\n    a) echo a;;\n    b) echo b;;\n    *) echo c;;\n  esac\n  test -f x && echo y\n}\n";
        // 1 + if + elif + (3 items - 1) + && = 6.
        assert_eq!(scores(Lang::Shell, src), named(&[("deploy", 6)]));
    }

    #[test]
    fn lines_and_positions_are_reported() {
        let src = "x = 1\n\ndef f():\n    a = 1\n    return a\n";
        let found = functions(Lang::Python, "pkg/m.py", src);
        assert_eq!(
            found,
            [FunctionComplexity {
                file: "pkg/m.py".into(),
                name: "f".into(),
                line: 3,
                complexity: 1,
                lines: 3,
            }]
        );
    }
}
