//! The expression language inside `{{ ... }}`.
//!
//! Parsing and evaluation are bounded: input length by [`EXPRESSION_BYTES_MAX`] and
//! nesting by [`EXPRESSION_DEPTH_MAX`], so hostile text yields an error, never a stack
//! overflow.
//!
//! [`EXPRESSION_BYTES_MAX`]: crate::limits::EXPRESSION_BYTES_MAX
//! [`EXPRESSION_DEPTH_MAX`]: crate::limits::EXPRESSION_DEPTH_MAX

mod eval;
mod lexer;
mod names;
mod parser;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use eval::evaluate;
pub use names::{Name, classify};
pub use parser::parse;

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Literal(Value),
    List(Vec<Expr>),
    /// A dotted name such as `tasks.scan.outputs.findings`, one segment per part.
    Path(Vec<String>),
    Not(Box<Expr>),
    Negate(Box<Expr>),
    Binary(BinaryOp, Box<Expr>, Box<Expr>),
    Call(Function, Vec<Expr>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    Or,
    And,
    Equal,
    NotEqual,
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
    In,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    Len,
    Contains,
    Default,
}

impl Function {
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        match name {
            "len" => Some(Self::Len),
            "contains" => Some(Self::Contains),
            "default" => Some(Self::Default),
            _ => None,
        }
    }

    pub(crate) fn arity(self) -> usize {
        match self {
            Self::Len => 1,
            Self::Contains | Self::Default => 2,
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Len => "len",
            Self::Contains => "contains",
            Self::Default => "default",
        }
    }
}

/// What a run knows about one task when an expression reads it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskView {
    /// `completed`, `skipped`, `failed`, ...
    pub status: String,
    /// `null` for a task that produced nothing, such as a skipped one.
    pub outputs: Value,
}

/// The names an expression can read.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    pub variables: &'a BTreeMap<String, Value>,
    /// Tasks that have not finished are simply absent: their outputs and status read as `null`.
    pub tasks: &'a BTreeMap<String, TaskView>,
    pub run_id: &'a str,
    pub workflow_name: &'a str,
    /// The item a fan-out's child runs for, under the task's `as` name.
    pub item: Option<Item<'a>>,
}

/// One item of a fan-out, as its child's templates read it.
#[derive(Debug, Clone, Copy)]
pub struct Item<'a> {
    pub name: &'a str,
    pub value: &'a Value,
}

/// Calls `visit` on every path the expression reads, outermost first.
pub fn visit_paths<'e>(expr: &'e Expr, visit: &mut impl FnMut(&'e [String])) {
    let mut stack = vec![expr];
    while let Some(expr) = stack.pop() {
        match expr {
            Expr::Literal(_) => {}
            Expr::Path(segments) => visit(segments),
            Expr::List(items) | Expr::Call(_, items) => stack.extend(items.iter().rev()),
            Expr::Not(inner) | Expr::Negate(inner) => stack.push(inner),
            Expr::Binary(_, left, right) => {
                stack.push(right);
                stack.push(left);
            }
        }
    }
}
