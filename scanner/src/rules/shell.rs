//! Shell rules, over tree-sitter-bash's syntax tree.

use tree_sitter::Node;

use crate::rules::syntax::{FileContext, has_descendant};

const EXPANSIONS: &[&str] = &["simple_expansion", "expansion", "command_substitution"];

pub fn visit(node: Node<'_>, ctx: &mut FileContext<'_>) {
    match node.kind() {
        "command" => check_command(node, ctx),
        "variable_assignment" => {
            let (Some(name), Some(value)) = (
                node.child_by_field_name("name"),
                node.child_by_field_name("value"),
            ) else {
                return;
            };
            let value = ctx.text(value).trim_matches(['"', '\'']);
            let disables_tls = match ctx.text(name) {
                "NODE_TLS_REJECT_UNAUTHORIZED" | "PYTHONHTTPSVERIFY" => value == "0",
                "GIT_SSL_NO_VERIFY" => matches!(value, "1" | "true"),
                _ => false,
            };
            if disables_tls {
                ctx.report("sh.tls-verification-disabled", node);
            }
        }
        _ => {}
    }
}

fn check_command(node: Node<'_>, ctx: &mut FileContext<'_>) {
    let Some(name) = node.child_by_field_name("name") else {
        return;
    };
    let name = ctx.text(name);
    let mut cursor = node.walk();
    let arguments: Vec<Node<'_>> = node
        .children_by_field_name("argument", &mut cursor)
        .collect();
    if name == "eval"
        && arguments
            .iter()
            .any(|argument| has_descendant(*argument, EXPANSIONS))
    {
        ctx.report("sh.eval-injection", node);
    }
    let insecure_flag = |argument: &Node<'_>| {
        let text = ctx.text(*argument);
        match name {
            // `-k` may be bundled with other short flags: `curl -sSk`.
            "curl" => {
                text == "--insecure"
                    || (text.starts_with('-') && !text.starts_with("--") && text.contains('k'))
            }
            "wget" => text == "--no-check-certificate",
            _ => false,
        }
    };
    if arguments.iter().any(insecure_flag) {
        ctx.report("sh.tls-verification-disabled", node);
    }
}
