//! Language-neutral questions about tree-sitter nodes: is this a literal, a string built
//! at run time, a call (and of what, with which arguments)? The per-language rules are
//! written in these terms, so comments and the contents of strings can never match a
//! code rule: they are not calls, assignments or arguments.

use std::collections::HashSet;
use std::sync::LazyLock;

use regex::Regex;
use tree_sitter::Node;

use crate::finding::Finding;
use crate::rules::table::rule_by_id;

/// Nodes that splice a run-time value into a string.
const SUBSTITUTIONS: &[&str] = &[
    "interpolation",
    "template_substitution",
    "simple_expansion",
    "expansion",
    "command_substitution",
    "process_substitution",
];

/// Literal kinds across the six grammars (strings, numbers, booleans, null).
const LITERALS: &[&str] = &[
    "string",
    "template_string",
    "interpreted_string_literal",
    "raw_string_literal",
    "string_literal",
    "raw_string",
    "concatenated_string",
    "word",
    "number",
    "integer",
    "float",
    "integer_literal",
    "float_literal",
    "int_literal",
    "true",
    "false",
    "none",
    "nil",
    "null",
    "boolean_literal",
];

const STRINGS: &[&str] = &[
    "string",
    "template_string",
    "interpreted_string_literal",
    "raw_string_literal",
    "string_literal",
    "raw_string",
    "concatenated_string",
];

static SQL: LazyLock<Regex> = LazyLock::new(|| {
    // A literal pattern, compiled once; its validity is checked by every test run.
    Regex::new(
        r"(?is)\b(select\b.+\bfrom|insert\s+into|update\b.+\bset|delete\s+from|drop\s+table)\b",
    )
    .expect("SQL keyword pattern is valid")
});

/// Per-file state the rules share while one syntax tree is walked.
pub struct FileContext<'a> {
    pub src: &'a str,
    pub file: &'a str,
    pub findings: Vec<Finding>,
    /// Variables assigned a string built from SQL and run-time values, so that
    /// `q = f"SELECT ... {x}"; cursor.execute(q)` is caught as well as the inline form.
    pub sql_variables: HashSet<String>,
    /// Variables assigned from request input (see `path traversal` in the rules).
    pub tainted_variables: HashSet<String>,
    /// Go: the file imports `math/rand` (so `rand.*` is the weak generator).
    pub imports_math_rand: bool,
}

impl<'a> FileContext<'a> {
    pub fn new(src: &'a str, file: &'a str) -> Self {
        Self {
            src,
            file,
            findings: Vec::new(),
            sql_variables: HashSet::new(),
            tainted_variables: HashSet::new(),
            imports_math_rand: false,
        }
    }

    pub fn text(&self, node: Node<'_>) -> &'a str {
        self.src.get(node.byte_range()).unwrap_or("")
    }

    /// Records a finding of `rule_id` at the start of `node`.
    pub fn report(&mut self, rule_id: &str, node: Node<'_>) {
        let Some(rule) = rule_by_id(rule_id) else {
            tracing::error!(rule_id, "scanner rule missing from the rule table");
            return;
        };
        let position = node.start_position();
        let line_start = node.start_byte().saturating_sub(position.column);
        let column = self
            .src
            .get(line_start..node.start_byte())
            .map_or(position.column, |prefix| prefix.chars().count())
            + 1;
        self.findings.push(Finding {
            file: self.file.to_string(),
            line: position.row + 1,
            column,
            rule: rule.id.to_string(),
            severity: rule.severity,
            message: rule.message.to_string(),
            fix: rule.fix.to_string(),
            category: rule.category,
        });
    }

    /// Whether `node` is a string assembled from SQL text and run-time values, inline
    /// or through a variable assigned earlier in the file.
    pub fn is_dynamic_sql(&self, node: Node<'_>) -> bool {
        let node = unwrap_reference(node);
        if node.kind() == "identifier" {
            return self.sql_variables.contains(self.text(node));
        }
        is_dynamic_string(node, self.src) && SQL.is_match(self.text(node))
    }

    /// Whether any of `nodes` (a call's arguments) carries input; see `is_tainted`.
    pub fn any_tainted(&self, nodes: &[Node<'_>], markers: &[&str]) -> bool {
        nodes.iter().any(|node| self.is_tainted(*node, markers))
    }

    /// Whether `node` mentions request input directly (`markers`) or a variable that
    /// was assigned from it.
    pub fn is_tainted(&self, node: Node<'_>, markers: &[&str]) -> bool {
        let text = self.text(node);
        if markers.iter().any(|marker| text.contains(marker)) {
            return true;
        }
        let mut found = false;
        visit_descendants(node, &mut |descendant| {
            if descendant.kind() == "identifier"
                && self.tainted_variables.contains(self.text(descendant))
            {
                found = true;
            }
        });
        found
    }

    /// Remembers what an assignment binds: a dynamic SQL string, or request input.
    pub fn track_assignment(&mut self, name: Node<'_>, value: Node<'_>, markers: &[&str]) {
        if name.kind() != "identifier" {
            return;
        }
        let name = self.text(name).to_string();
        if self.is_dynamic_sql(value) {
            self.sql_variables.insert(name.clone());
        }
        if self.is_tainted(value, markers) {
            self.tainted_variables.insert(name);
        }
    }
}

/// A call as the rules see it, whatever the grammar calls its parts.
pub struct Call<'t> {
    pub node: Node<'t>,
    /// The callee's text without whitespace: `os.system`, `exec.Command`, `Command::new`.
    pub callee: String,
    pub args: Vec<Node<'t>>,
    /// Python keyword arguments, by name.
    pub keywords: Vec<(String, Node<'t>)>,
}

impl<'t> Call<'t> {
    /// The call at `node`, for `call` (Python), `call_expression` (JS, Go, Rust) and
    /// `new_expression` (JS).
    pub fn at(node: Node<'t>, src: &str) -> Option<Call<'t>> {
        let (callee, arguments) = match node.kind() {
            "call" | "call_expression" => (
                node.child_by_field_name("function")?,
                node.child_by_field_name("arguments"),
            ),
            "new_expression" => (
                node.child_by_field_name("constructor")?,
                node.child_by_field_name("arguments"),
            ),
            _ => return None,
        };
        let callee: String = src
            .get(callee.byte_range())?
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        let mut args = Vec::new();
        let mut keywords = Vec::new();
        if let Some(arguments) = arguments {
            let mut cursor = arguments.walk();
            for arg in arguments.named_children(&mut cursor) {
                match arg.kind() {
                    "comment" => {}
                    "keyword_argument" => {
                        if let (Some(name), Some(value)) = (
                            arg.child_by_field_name("name"),
                            arg.child_by_field_name("value"),
                        ) {
                            keywords.push((src.get(name.byte_range())?.to_string(), value));
                        }
                    }
                    _ => args.push(arg),
                }
            }
        }
        Some(Call {
            node,
            callee,
            args,
            keywords,
        })
    }

    /// The last segment of the callee: `execute` in `self.db.cursor().execute`.
    pub fn method(&self) -> &str {
        last_segment(&self.callee)
    }

    pub fn keyword(&self, name: &str) -> Option<Node<'t>> {
        self.keywords
            .iter()
            .find(|(keyword, _)| keyword == name)
            .map(|(_, value)| *value)
    }

    pub fn first_arg(&self) -> Option<Node<'t>> {
        self.args.first().copied()
    }
}

pub fn last_segment(path: &str) -> &str {
    let after_dot = path.rsplit('.').next().unwrap_or(path);
    after_dot.rsplit("::").next().unwrap_or(after_dot)
}

/// A constant: a string without substitutions, a number, a boolean or null.
pub fn is_literal(node: Node<'_>) -> bool {
    LITERALS.contains(&node.kind()) && !has_descendant(node, SUBSTITUTIONS)
}

pub fn is_string(node: Node<'_>) -> bool {
    STRINGS.contains(&node.kind())
}

/// A string literal's contents without its quotes (`'md5'` → `md5`).
pub fn unquoted<'s>(node: Node<'_>, src: &'s str) -> &'s str {
    let text = src.get(node.byte_range()).unwrap_or("");
    let Some(quote) = text.find(['"', '\'', '`']) else {
        return text;
    };
    // Only a string prefix (`r`, `b`, `f`, `u`, `r#`) may precede the quote; anything
    // else means this is not one string (`rejectUnauthorized` must stay whole).
    let prefix = &text[..quote];
    if prefix.len() > 3 || !prefix.chars().all(|c| "rbfuRBFU#".contains(c)) {
        return text;
    }
    text[quote..]
        .trim_end_matches('#')
        .trim_matches(['"', '\'', '`'])
}

/// `&x`, `(x)` → `x`.
pub fn unwrap_reference(node: Node<'_>) -> Node<'_> {
    match node.kind() {
        "reference_expression" | "parenthesized_expression" => node
            .named_child(node.named_child_count().saturating_sub(1))
            .map_or(node, unwrap_reference),
        _ => node,
    }
}

/// A string built at run time: concatenation or `%` with a string, an f-string or
/// template with substitutions, `str.format`, `fmt.Sprintf`, `format!`.
pub fn is_dynamic_string(node: Node<'_>, src: &str) -> bool {
    let node = unwrap_reference(node);
    match node.kind() {
        "string" | "template_string" | "concatenated_string" => has_descendant(node, SUBSTITUTIONS),
        "binary_operator" | "binary_expression" => {
            let operator = node
                .child_by_field_name("operator")
                .and_then(|operator| src.get(operator.byte_range()))
                .unwrap_or("");
            if operator != "+" && operator != "%" {
                return false;
            }
            let sides = [
                node.child_by_field_name("left"),
                node.child_by_field_name("right"),
            ];
            let has_string = sides
                .iter()
                .flatten()
                .any(|side| is_string(*side) || is_dynamic_string(*side, src));
            let has_value = sides.iter().flatten().any(|side| !is_literal(*side));
            has_string && has_value
        }
        "call" | "call_expression" => Call::at(node, src).is_some_and(|call| {
            if call.callee.ends_with(".format") {
                return !call.args.is_empty() || !call.keywords.is_empty();
            }
            let printf = call.callee.ends_with("Sprintf") || call.callee == "util.format";
            printf && call.args.iter().skip(1).any(|arg| !is_literal(*arg))
        }),
        "macro_invocation" => node
            .child_by_field_name("macro")
            .and_then(|name| src.get(name.byte_range()))
            .is_some_and(|name| name == "format" || name.ends_with("::format")),
        _ => false,
    }
}

pub fn has_descendant(node: Node<'_>, kinds: &[&str]) -> bool {
    let mut found = false;
    visit_descendants(node, &mut |descendant| {
        if kinds.contains(&descendant.kind()) {
            found = true;
        }
    });
    found
}

/// Calls `visit` on `node` and everything under it, without recursion (deep trees
/// from generated code must not overflow the stack).
pub fn visit_descendants<'t>(node: Node<'t>, visit: &mut dyn FnMut(Node<'t>)) {
    let mut cursor = node.walk();
    let mut depth = 0usize;
    loop {
        visit(cursor.node());
        if cursor.goto_first_child() {
            depth += 1;
            continue;
        }
        loop {
            if depth == 0 {
                return;
            }
            if cursor.goto_next_sibling() {
                break;
            }
            cursor.goto_parent();
            depth -= 1;
        }
    }
}

static SECRET_NAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(token|secret|passw|pwd|api_?key|salt|nonce|otp|session|csrf|credential)")
        .expect("secret-name pattern is valid")
});

/// Whether the value at `node` ends up in something named like a secret: the variable
/// or key it is assigned to, or the function it is computed in. This is the heuristic
/// behind the insecure-randomness rules: `Math.random()` for a shuffle is fine, for a
/// `resetToken` it is not.
pub fn feeds_a_secret(node: Node<'_>, src: &str) -> bool {
    let mut current = node.parent();
    while let Some(ancestor) = current {
        let name = match ancestor.kind() {
            "assignment"
            | "assignment_expression"
            | "assignment_statement"
            | "short_var_declaration"
            | "augmented_assignment" => ancestor.child_by_field_name("left"),
            "variable_declarator" | "var_spec" | "const_spec" => {
                ancestor.child_by_field_name("name")
            }
            "pair" | "keyed_element" => ancestor.child_by_field_name("key"),
            "let_declaration" => ancestor.child_by_field_name("pattern"),
            "function_definition"
            | "function_declaration"
            | "method_declaration"
            | "function_item"
            | "method_definition" => ancestor.child_by_field_name("name"),
            _ => None,
        };
        if let Some(text) = name.and_then(|name| src.get(name.byte_range()))
            && SECRET_NAME.is_match(text)
        {
            return true;
        }
        current = ancestor.parent();
    }
    false
}

/// `setHeader("Access-Control-Allow-Origin", "*")` in any language.
pub fn sets_wildcard_cors_header(call: &Call<'_>, src: &str) -> bool {
    match call.args.as_slice() {
        [name, value, ..] => {
            is_string(*name)
                && is_string(*value)
                && unquoted(*name, src).eq_ignore_ascii_case("access-control-allow-origin")
                && unquoted(*value, src) == "*"
        }
        _ => false,
    }
}
