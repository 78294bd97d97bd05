//! The workflow language: YAML parsing with positions, validation, expressions and templates.
//!
//! This crate knows nothing about actors, storage or I/O: it turns workflow text into a
//! checked [`Workflow`] and evaluates templates against a [`Scope`] the runtime provides, so
//! the same code can run in the server and, compiled to wasm32, in the browser builder.

mod ast;
mod errors;
mod export;
pub mod expr;
mod graph;
pub mod limits;
mod parse;
pub mod push;
mod shell_quote;
mod suggest;
mod template;
mod variables;
mod yaml;

pub use ast::{
    CatchUp, Condition, ConditionAction, DEFAULT_ITEM_NAME, DEFAULT_MAX_ITEMS, FanOut, OnBudget,
    PUSH_VARIABLE, PushTrigger, ScheduleTrigger, Task, Triggers, Workflow,
};
pub use errors::{Diagnostic, Diagnostics, ExprError, TemplateError, VariableError};
pub use export::to_yaml;
pub use expr::{Expr, Item, Scope, TaskView};
pub use parse::{parse_workflow, slug};
pub use template::{decide, render, render_inputs, truthy};
pub use variables::{coerce_variable_text, json_type_name};
