//! JavaScript and TypeScript rules (the TypeScript grammars share these node kinds).

use tree_sitter::Node;

use crate::rules::syntax::{
    Call, FileContext, feeds_a_secret, is_literal, is_string, sets_wildcard_cors_header, unquoted,
};

/// How request input shows up in Express/Koa/Next handlers.
const REQUEST_MARKERS: &[&str] = &["req.", "request.", "ctx.query", "ctx.params", "ctx.request"];
const SQL_METHODS: &[&str] = &[
    "query",
    "execute",
    "raw",
    "exec",
    "run",
    "all",
    "get",
    "$queryRawUnsafe",
    "$executeRawUnsafe",
];
const SHELL_METHODS: &[&str] = &["exec", "execSync"];
const FILE_METHODS: &[&str] = &[
    "readFile",
    "readFileSync",
    "createReadStream",
    "writeFile",
    "writeFileSync",
    "unlink",
    "unlinkSync",
    "sendFile",
    "download",
    "join",
    "resolve",
    "open",
    "openSync",
];

pub fn visit(node: Node<'_>, ctx: &mut FileContext<'_>) {
    match node.kind() {
        "call_expression" => {
            if let Some(call) = Call::at(node, ctx.src) {
                check_call(&call, ctx);
            }
        }
        "new_expression" => {
            if let Some(call) = Call::at(node, ctx.src)
                && call.callee == "Function"
                && call.args.iter().any(|arg| !is_literal(*arg))
            {
                ctx.report("js.eval", node);
            }
        }
        "pair" => check_pair(node, ctx),
        "variable_declarator" => {
            if let (Some(name), Some(value)) = (
                node.child_by_field_name("name"),
                node.child_by_field_name("value"),
            ) {
                ctx.track_assignment(name, value, REQUEST_MARKERS);
            }
        }
        "assignment_expression" => check_assignment(node, ctx),
        _ => {}
    }
}

fn check_call(call: &Call<'_>, ctx: &mut FileContext<'_>) {
    let callee = call.callee.as_str();
    let method = call.method();
    let first_is_dynamic = call.first_arg().is_some_and(|arg| !is_literal(arg));
    if callee == "eval" && first_is_dynamic {
        ctx.report("js.eval", call.node);
    }
    // `exec` alone is also `RegExp.prototype.exec`; only a bare or `child_process`
    // receiver in a file that loads `child_process` is the shell one.
    let receiver = callee
        .strip_suffix(method)
        .unwrap_or("")
        .trim_end_matches('.');
    let child_process_receiver =
        receiver.is_empty() || receiver.contains("child_process") || receiver == "cp";
    if SHELL_METHODS.contains(&method)
        && child_process_receiver
        && first_is_dynamic
        && ctx.src.contains("child_process")
    {
        ctx.report("js.command-injection", call.node);
    }
    if SQL_METHODS.contains(&method) && call.first_arg().is_some_and(|arg| ctx.is_dynamic_sql(arg))
    {
        ctx.report("js.sql-injection", call.node);
    }
    if method == "unserialize" && first_is_dynamic {
        ctx.report("js.unsafe-deserialization", call.node);
    }
    let algorithm = call
        .first_arg()
        .filter(|arg| is_string(*arg))
        .map(|arg| unquoted(arg, ctx.src).to_ascii_lowercase())
        .unwrap_or_default();
    if method == "createHash" && matches!(algorithm.as_str(), "md5" | "sha1") {
        ctx.report("js.weak-hash", call.node);
    }
    if matches!(
        method,
        "createCipheriv" | "createCipher" | "createDecipheriv"
    ) && (algorithm.starts_with("des")
        || algorithm.starts_with("rc4")
        || algorithm.ends_with("-ecb"))
    {
        ctx.report("js.weak-cipher", call.node);
    }
    if callee == "Math.random" && feeds_a_secret(call.node, ctx.src) {
        ctx.report("js.insecure-random", call.node);
    }
    // `cors()` with no options answers every origin.
    let bare_cors = callee == "cors" && call.args.is_empty();
    if bare_cors || sets_wildcard_cors_header(call, ctx.src) {
        ctx.report("js.cors-wildcard", call.node);
    }
    if FILE_METHODS.contains(&method) && ctx.any_tainted(&call.args, REQUEST_MARKERS) {
        ctx.report("js.path-traversal", call.node);
    }
}

fn check_pair(node: Node<'_>, ctx: &mut FileContext<'_>) {
    let (Some(key), Some(value)) = (
        node.child_by_field_name("key"),
        node.child_by_field_name("value"),
    ) else {
        return;
    };
    let key = unquoted(key, ctx.src);
    let value_text = ctx.text(value);
    if key == "rejectUnauthorized" && value.kind() == "false" {
        ctx.report("js.tls-verification-disabled", node);
    }
    let wildcard = (is_string(value) && unquoted(value, ctx.src) == "*") || value.kind() == "true";
    if key == "origin" && wildcard && inside_cors_options(node, ctx) {
        ctx.report("js.cors-wildcard", node);
    }
    if key == "Access-Control-Allow-Origin" && value_text.trim_matches(['"', '\'']) == "*" {
        ctx.report("js.cors-wildcard", node);
    }
}

/// `origin: '*'` means CORS only inside `cors({...})` or a CORS options object.
fn inside_cors_options(node: Node<'_>, ctx: &FileContext<'_>) -> bool {
    let mut current = node.parent();
    for _ in 0..4 {
        let Some(ancestor) = current else {
            return false;
        };
        if let Some(call) = Call::at(ancestor, ctx.src) {
            return call.callee.to_ascii_lowercase().contains("cors");
        }
        if ancestor.kind() == "variable_declarator"
            && ancestor
                .child_by_field_name("name")
                .is_some_and(|name| ctx.text(name).to_ascii_lowercase().contains("cors"))
        {
            return true;
        }
        current = ancestor.parent();
    }
    false
}

fn check_assignment(node: Node<'_>, ctx: &mut FileContext<'_>) {
    let (Some(left), Some(right)) = (
        node.child_by_field_name("left"),
        node.child_by_field_name("right"),
    ) else {
        return;
    };
    if ctx.text(left).ends_with("NODE_TLS_REJECT_UNAUTHORIZED") && unquoted(right, ctx.src) == "0" {
        ctx.report("js.tls-verification-disabled", node);
    }
    ctx.track_assignment(left, right, REQUEST_MARKERS);
}
