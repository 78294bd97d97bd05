//! Rust rules, over tree-sitter-rust's syntax tree.

use tree_sitter::Node;

use crate::rules::syntax::{Call, FileContext, is_literal, unwrap_reference};

/// Request input in axum/actix/warp handlers is usually bound to these names.
const REQUEST_MARKERS: &[&str] = &["req.", "request.", "params.", "query."];
const SQL_METHODS: &[&str] = &[
    "query",
    "query_as",
    "query_scalar",
    "execute",
    "sql_query",
    "prepare",
    "query_row",
    "query_map",
    "batch_execute",
    "raw_sql",
];
const FILE_CALLS: &[&str] = &[
    "File::open",
    "File::create",
    "fs::read",
    "fs::read_to_string",
    "fs::write",
    "fs::remove_file",
    "std::fs::read",
    "std::fs::read_to_string",
    "tokio::fs::read",
    "tokio::fs::read_to_string",
];

pub fn visit(node: Node<'_>, ctx: &mut FileContext<'_>) {
    match node.kind() {
        "call_expression" => {
            if let Some(call) = Call::at(node, ctx.src) {
                check_call(&call, ctx);
            }
        }
        "let_declaration" => {
            if let (Some(name), Some(value)) = (
                node.child_by_field_name("pattern"),
                node.child_by_field_name("value"),
            ) {
                ctx.track_assignment(name, value, REQUEST_MARKERS);
            }
        }
        _ => {}
    }
}

fn check_call(call: &Call<'_>, ctx: &mut FileContext<'_>) {
    let callee = call.callee.as_str();
    let method = call.method();
    let first_is_true = call.first_arg().is_some_and(|arg| ctx.text(arg) == "true");
    if matches!(
        method,
        "danger_accept_invalid_certs" | "danger_accept_invalid_hostnames"
    ) && first_is_true
    {
        ctx.report("rs.tls-verification-disabled", call.node);
    }
    if (method == "arg" || method == "args") && runs_shell_with_dynamic_command(call, ctx) {
        ctx.report("rs.command-injection", call.node);
    }
    if SQL_METHODS.contains(&method) && call.first_arg().is_some_and(|arg| ctx.is_dynamic_sql(arg))
    {
        ctx.report("rs.sql-injection", call.node);
    }
    let weak_hash = ["md5::", "Md5::", "sha1::", "Sha1::"]
        .iter()
        .any(|prefix| callee.starts_with(prefix));
    if weak_hash {
        ctx.report("rs.weak-hash", call.node);
    }
    let is_file_call = FILE_CALLS
        .iter()
        .any(|name| callee == *name || callee.ends_with(&format!("::{name}")))
        || method == "join";
    if is_file_call && ctx.any_tainted(&call.args, REQUEST_MARKERS) {
        ctx.report("rs.path-traversal", call.node);
    }
    let permissive_cors = matches!(
        callee,
        "CorsLayer::permissive" | "CorsLayer::very_permissive" | "Cors::permissive"
    ) || method == "allow_any_origin"
        || (method == "allow_origin"
            && call
                .first_arg()
                .is_some_and(|arg| ctx.text(arg).ends_with("Any")));
    if permissive_cors {
        ctx.report("rs.cors-wildcard", call.node);
    }
}

/// `Command::new("sh").arg("-c").arg(x)` (or `.args(["-c", x])`) with `x` not a literal.
fn runs_shell_with_dynamic_command(call: &Call<'_>, ctx: &FileContext<'_>) -> bool {
    let Some(argument) = call.first_arg().map(unwrap_reference) else {
        return false;
    };
    let receiver = call.callee.as_str();
    let shell = [
        "Command::new(\"sh\")",
        "Command::new(\"bash\")",
        "Command::new(\"/bin/sh\")",
    ]
    .iter()
    .any(|start| receiver.contains(start));
    if !shell {
        return false;
    }
    if call.method() == "arg" {
        return receiver.contains(".arg(\"-c\")") && !is_literal(argument);
    }
    let mut cursor = argument.walk();
    let elements: Vec<Node<'_>> = argument.named_children(&mut cursor).collect();
    ctx.text(argument).contains("\"-c\"") && elements.iter().any(|element| !is_literal(*element))
}
