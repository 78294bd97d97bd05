//! Every error type of the crate, so callers find them in one place.

use std::fmt;

/// One problem found in a workflow source, located precisely enough to fix it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Diagnostic {
    pub file: String,
    /// 1-based.
    pub line: usize,
    /// 1-based, in characters.
    pub column: usize,
    /// Where in the document, e.g. `tasks[2].depends_on[0]`; empty for the document itself.
    pub path: String,
    /// The id of the task the problem belongs to, when it belongs to one.
    pub task_id: Option<String>,
    pub message: String,
    /// What would fix it.
    pub hint: Option<String>,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file, self.line, self.column)?;
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, " (hint: {hint})")?;
        }
        Ok(())
    }
}

/// All problems found in one workflow source, in document order.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, diagnostic) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{diagnostic}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// Why an expression could not be parsed or evaluated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExprError {
    #[error("syntax error at character {offset}: {message}")]
    Syntax { offset: usize, message: String },
    #[error("expression is {length} bytes long; the limit is {limit}")]
    TooLong { length: usize, limit: usize },
    #[error("expression nests deeper than {limit} levels")]
    TooDeep { limit: usize },
    #[error("unknown name `{name}`: {reason}")]
    UnknownName { name: String, reason: String },
    #[error("`{operation}` cannot take {found}")]
    Type { operation: String, found: String },
}

/// Why a template string could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("`{{{{` at character {offset} has no closing `}}}}`")]
    Unclosed { offset: usize },
    #[error("template values nest deeper than {limit} levels")]
    TooDeep { limit: usize },
    #[error("the rendered inputs grow past {limit} bytes; reference large outputs fewer times")]
    TooLarge { limit: usize },
    #[error(
        "the template at character {offset} of a shell command stands {place}, where its \
         value cannot be quoted; move it out (Troupe quotes each value for where it stands)"
    )]
    ShellPlace { offset: usize, place: &'static str },
    #[error("in `{{{{ {expression} }}}}`: {source}")]
    Expression {
        expression: String,
        #[source]
        source: ExprError,
    },
}

/// Why a run's variable value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VariableError {
    #[error("unknown variable `{name}`; the workflow declares: {known}")]
    Unknown { name: String, known: String },
    #[error("variable `{name}` expects a {expected}, but was given a {given}")]
    WrongType {
        name: String,
        expected: &'static str,
        given: &'static str,
    },
    #[error("`{text}` is not a {expected}: {reason}")]
    NotCoercible {
        text: String,
        expected: &'static str,
        reason: String,
    },
}
