//! Hard limits on what the parser and evaluator accept.
//!
//! Workflow text comes from users and webhooks, so every dimension that drives memory or
//! recursion is capped and the cap is reported by name when exceeded.

/// Largest workflow source accepted, in bytes.
pub const SOURCE_BYTES_MAX: usize = 4 * 1024 * 1024;
/// Deepest YAML nesting of maps and lists accepted.
pub const YAML_DEPTH_MAX: usize = 64;
/// Most tasks one workflow may hold.
pub const TASKS_MAX: usize = 10_000;
/// Longest single expression (the text between `{{` and `}}`), in bytes.
pub const EXPRESSION_BYTES_MAX: usize = 4096;
/// Deepest expression nesting (parentheses, lists, calls, unary and chained operators).
pub const EXPRESSION_DEPTH_MAX: usize = 64;
/// Most bytes one task's rendered inputs may hold: a 4 MiB workflow that names a large
/// output a thousand times must not expand to gigabytes.
pub const RENDERED_BYTES_MAX: usize = 16 * 1024 * 1024;
/// Most items a fan-out may declare (`max_items`), and most the declared caps of a chain
/// of fan-outs, each over another's outputs, may multiply to. The node's own cap
/// (`engine.max_fan_out`) is checked when a fan-out expands.
pub const FAN_OUT_ITEMS_MAX: u64 = 10_000;
/// Most diagnostics collected before the rest are summarised as one.
pub const DIAGNOSTICS_MAX: usize = 200;
