//! Python rules, over tree-sitter-python's syntax tree.

use tree_sitter::Node;

use crate::rules::syntax::{
    Call, FileContext, feeds_a_secret, is_literal, is_string, sets_wildcard_cors_header, unquoted,
};

/// How request input shows up in Flask, Django and FastAPI handlers.
const REQUEST_MARKERS: &[&str] = &["request.", "request["];
const SQL_METHODS: &[&str] = &[
    "execute",
    "executemany",
    "executescript",
    "raw",
    "query",
    "exec_driver_sql",
];
const SHELL_CALLS: &[&str] = &[
    "os.system",
    "os.popen",
    "commands.getoutput",
    "commands.getstatusoutput",
];
const SUBPROCESS_CALLS: &[&str] = &[
    "subprocess.run",
    "subprocess.call",
    "subprocess.Popen",
    "subprocess.check_output",
    "subprocess.check_call",
];
const UNSAFE_LOADS: &[&str] = &[
    "pickle.load",
    "pickle.loads",
    "cPickle.load",
    "cPickle.loads",
    "dill.load",
    "dill.loads",
    "marshal.load",
    "marshal.loads",
    "yaml.unsafe_load",
    "jsonpickle.decode",
];
const FILE_CALLS: &[&str] = &[
    "open",
    "io.open",
    "os.open",
    "codecs.open",
    "os.path.join",
    "send_file",
    "flask.send_file",
    "Path",
    "pathlib.Path",
    "FileResponse",
];
const RANDOM_CALLS: &[&str] = &[
    "random.random",
    "random.randint",
    "random.randrange",
    "random.choice",
    "random.choices",
    "random.getrandbits",
    "random.sample",
];
const WEAK_CIPHERS: &[&str] = &[
    "DES.new",
    "DES3.new",
    "ARC4.new",
    "Blowfish.new",
    "ARC2.new",
];

pub fn visit(node: Node<'_>, ctx: &mut FileContext<'_>) {
    match node.kind() {
        "call" => {
            if let Some(call) = Call::at(node, ctx.src) {
                check_call(&call, ctx);
            }
        }
        "assignment" => check_assignment(node, ctx),
        "attribute" if ctx.text(node).ends_with(".MODE_ECB") => ctx.report("py.weak-cipher", node),
        _ => {}
    }
}

fn check_call(call: &Call<'_>, ctx: &mut FileContext<'_>) {
    let callee = call.callee.as_str();
    let first_is_dynamic = call.first_arg().is_some_and(|arg| !is_literal(arg));
    if (callee == "eval" || callee == "exec") && first_is_dynamic {
        ctx.report("py.eval", call.node);
    }
    if SHELL_CALLS.contains(&callee) && first_is_dynamic {
        ctx.report("py.command-injection", call.node);
    }
    if SUBPROCESS_CALLS.contains(&callee)
        && first_is_dynamic
        && call
            .keyword("shell")
            .is_some_and(|value| value.kind() == "true")
    {
        ctx.report("py.command-injection", call.node);
    }
    if SQL_METHODS.contains(&call.method())
        && call.first_arg().is_some_and(|arg| ctx.is_dynamic_sql(arg))
    {
        ctx.report("py.sql-injection", call.node);
    }
    if UNSAFE_LOADS.contains(&callee) || (callee == "yaml.load" && !uses_safe_loader(call, ctx)) {
        ctx.report("py.unsafe-deserialization", call.node);
    }
    check_crypto(call, ctx);
    if RANDOM_CALLS.contains(&callee) && feeds_a_secret(call.node, ctx.src) {
        ctx.report("py.insecure-random", call.node);
    }
    if call
        .keyword("verify")
        .is_some_and(|value| value.kind() == "false")
        || callee == "ssl._create_unverified_context"
    {
        ctx.report("py.tls-verification-disabled", call.node);
    }
    if call.method() == "run"
        && call
            .keyword("debug")
            .is_some_and(|value| value.kind() == "true")
    {
        ctx.report("py.debug-enabled", call.node);
    }
    let wildcard_keyword = ["allow_origins", "origins", "cors_allowed_origins"]
        .iter()
        .filter_map(|name| call.keyword(name))
        .any(|value| is_wildcard(value, ctx));
    if wildcard_keyword || sets_wildcard_cors_header(call, ctx.src) {
        ctx.report("py.cors-wildcard", call.node);
    }
    if FILE_CALLS.contains(&callee) && ctx.any_tainted(&call.args, REQUEST_MARKERS) {
        ctx.report("py.path-traversal", call.node);
    }
}

fn check_crypto(call: &Call<'_>, ctx: &mut FileContext<'_>) {
    let callee = call.callee.as_str();
    // `usedforsecurity=False` is Python's own way to say "a checksum, not security".
    let for_security = call
        .keyword("usedforsecurity")
        .is_none_or(|value| value.kind() != "false");
    let weak_by_name = matches!(
        callee,
        "hashlib.md5" | "hashlib.sha1" | "MD5.new" | "SHA1.new"
    );
    let weak_by_argument = callee == "hashlib.new"
        && call.first_arg().is_some_and(|arg| {
            matches!(
                unquoted(arg, ctx.src).to_ascii_lowercase().as_str(),
                "md5" | "sha1"
            )
        });
    if for_security && (weak_by_name || weak_by_argument) {
        ctx.report("py.weak-hash", call.node);
    }
    if WEAK_CIPHERS.iter().any(|cipher| callee.ends_with(cipher)) {
        ctx.report("py.weak-cipher", call.node);
    }
}

fn uses_safe_loader(call: &Call<'_>, ctx: &FileContext<'_>) -> bool {
    let loader = call.keyword("Loader").or_else(|| call.args.get(1).copied());
    loader.is_some_and(|loader| ctx.text(loader).contains("Safe"))
}

fn is_wildcard(value: Node<'_>, ctx: &FileContext<'_>) -> bool {
    if is_string(value) {
        return unquoted(value, ctx.src) == "*";
    }
    let mut cursor = value.walk();
    value.kind() == "list"
        && value
            .named_children(&mut cursor)
            .any(|item| is_string(item) && unquoted(item, ctx.src) == "*")
}

fn check_assignment(node: Node<'_>, ctx: &mut FileContext<'_>) {
    let (Some(left), Some(right)) = (
        node.child_by_field_name("left"),
        node.child_by_field_name("right"),
    ) else {
        return;
    };
    let name = ctx.text(left);
    let is_true = right.kind() == "true";
    // Django's settings modules; a `DEBUG = True` elsewhere is usually a local constant.
    let settings_module = ctx
        .file
        .rsplit('/')
        .next()
        .is_some_and(|file| file.contains("settings"));
    if name == "DEBUG" && is_true && settings_module {
        ctx.report("py.debug-enabled", node);
    }
    if matches!(name, "CORS_ORIGIN_ALLOW_ALL" | "CORS_ALLOW_ALL_ORIGINS") && is_true {
        ctx.report("py.cors-wildcard", node);
    }
    ctx.track_assignment(left, right, REQUEST_MARKERS);
}
