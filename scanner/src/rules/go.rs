//! Go rules, over tree-sitter-go's syntax tree.

use tree_sitter::Node;

use crate::rules::syntax::{
    Call, FileContext, feeds_a_secret, is_literal, sets_wildcard_cors_header, unquoted,
};

/// How request input shows up in net/http, gorilla/mux, gin and echo handlers.
const REQUEST_MARKERS: &[&str] = &[
    "r.URL",
    "r.FormValue",
    "r.PostFormValue",
    "r.Form",
    "mux.Vars",
    "c.Param",
    "c.Query",
    "req.URL",
];
const SQL_METHODS: &[&str] = &[
    "Query",
    "QueryRow",
    "QueryContext",
    "QueryRowContext",
    "Exec",
    "ExecContext",
    "Prepare",
    "Raw",
    "Select",
    "Get",
];
const FILE_CALLS: &[&str] = &[
    "os.Open",
    "os.OpenFile",
    "os.ReadFile",
    "os.Create",
    "os.Remove",
    "ioutil.ReadFile",
    "filepath.Join",
    "path.Join",
    "http.ServeFile",
];
const SHELLS: &[&str] = &["sh", "bash", "/bin/sh", "/bin/bash", "zsh"];

pub fn visit(node: Node<'_>, ctx: &mut FileContext<'_>) {
    match node.kind() {
        "import_spec" => check_import(node, ctx),
        "call_expression" => {
            if let Some(call) = Call::at(node, ctx.src) {
                check_call(&call, ctx);
            }
        }
        "keyed_element" => check_keyed_element(node, ctx),
        "short_var_declaration" | "assignment_statement" => {
            let first = |field| {
                node.child_by_field_name(field)
                    .and_then(|list: Node<'_>| list.named_child(0))
            };
            if let (Some(name), Some(value)) = (first("left"), first("right")) {
                ctx.track_assignment(name, value, REQUEST_MARKERS);
            }
        }
        "var_spec" => {
            let value = node
                .child_by_field_name("value")
                .and_then(|list| list.named_child(0));
            if let (Some(name), Some(value)) = (node.child_by_field_name("name"), value) {
                ctx.track_assignment(name, value, REQUEST_MARKERS);
            }
        }
        _ => {}
    }
}

/// Go names the algorithm in the import, so weak crypto is reported once per file there.
fn check_import(node: Node<'_>, ctx: &mut FileContext<'_>) {
    let Some(path) = node.child_by_field_name("path") else {
        return;
    };
    match unquoted(path, ctx.src) {
        "crypto/md5" | "crypto/sha1" => ctx.report("go.weak-hash", node),
        "crypto/des" | "crypto/rc4" => ctx.report("go.weak-cipher", node),
        "math/rand" | "math/rand/v2" => ctx.imports_math_rand = true,
        _ => {}
    }
}

fn check_call(call: &Call<'_>, ctx: &mut FileContext<'_>) {
    let callee = call.callee.as_str();
    if callee == "exec.Command" || callee == "exec.CommandContext" {
        let args = if callee == "exec.CommandContext" {
            &call.args[call.args.len().min(1)..]
        } else {
            &call.args[..]
        };
        if let [shell, flag, command, ..] = args
            && SHELLS.contains(&unquoted(*shell, ctx.src))
            && unquoted(*flag, ctx.src) == "-c"
            && !is_literal(*command)
        {
            ctx.report("go.command-injection", call.node);
        }
    }
    if SQL_METHODS.contains(&call.method()) && call.args.iter().any(|arg| ctx.is_dynamic_sql(*arg))
    {
        ctx.report("go.sql-injection", call.node);
    }
    if FILE_CALLS.contains(&callee) && ctx.any_tainted(&call.args, REQUEST_MARKERS) {
        ctx.report("go.path-traversal", call.node);
    }
    if ctx.imports_math_rand && callee.starts_with("rand.") && feeds_a_secret(call.node, ctx.src) {
        ctx.report("go.insecure-random", call.node);
    }
    if sets_wildcard_cors_header(call, ctx.src) {
        ctx.report("go.cors-wildcard", call.node);
    }
}

fn check_keyed_element(node: Node<'_>, ctx: &mut FileContext<'_>) {
    let (Some(key), Some(value)) = (
        node.child_by_field_name("key"),
        node.child_by_field_name("value"),
    ) else {
        return;
    };
    let (key, value) = (ctx.text(key).trim(), ctx.text(value).trim());
    match key {
        "InsecureSkipVerify" if value == "true" => ctx.report("go.tls-verification-disabled", node),
        "AllowAllOrigins" if value == "true" => ctx.report("go.cors-wildcard", node),
        "AllowOrigins" | "AllowedOrigins" if value.contains("\"*\"") => {
            ctx.report("go.cors-wildcard", node)
        }
        _ => {}
    }
}
