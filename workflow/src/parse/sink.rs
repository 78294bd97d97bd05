//! Collects diagnostics, up to [`DIAGNOSTICS_MAX`].

use crate::errors::{Diagnostic, Diagnostics};
use crate::limits::DIAGNOSTICS_MAX;
use crate::yaml::Mark;

/// Where a problem is: position, document path and owning task.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Site<'a> {
    pub(crate) mark: Mark,
    pub(crate) path: &'a str,
    pub(crate) task: Option<&'a str>,
}

pub(crate) struct Sink {
    file: String,
    diagnostics: Vec<Diagnostic>,
    dropped: usize,
}

impl Sink {
    pub(crate) fn new(file: &str) -> Self {
        Self {
            file: file.to_owned(),
            diagnostics: Vec::new(),
            dropped: 0,
        }
    }

    /// Whether further reports would be dropped; lets callers skip costly hints.
    pub(crate) fn full(&self) -> bool {
        self.diagnostics.len() >= DIAGNOSTICS_MAX
    }

    pub(crate) fn has_errors(&self) -> bool {
        !self.diagnostics.is_empty()
    }

    pub(crate) fn error(
        &mut self,
        site: Site<'_>,
        message: impl Into<String>,
        hint: Option<String>,
    ) {
        if self.full() {
            self.dropped += 1;
            return;
        }
        self.diagnostics.push(Diagnostic {
            file: self.file.clone(),
            line: site.mark.line,
            column: site.mark.column,
            path: site.path.to_owned(),
            task_id: site.task.map(str::to_owned),
            message: message.into(),
            hint,
        });
    }

    /// The diagnostics in document order, with a last one counting any dropped.
    pub(crate) fn finish(mut self) -> Diagnostics {
        self.diagnostics.sort_by_key(|d| (d.line, d.column));
        if self.dropped > 0 {
            let (line, column) = self
                .diagnostics
                .last()
                .map_or((1, 1), |d| (d.line, d.column));
            self.diagnostics.push(Diagnostic {
                file: self.file.clone(),
                line,
                column,
                path: String::new(),
                task_id: None,
                message: format!(
                    "{} more problem(s) not shown; at most {DIAGNOSTICS_MAX} are reported",
                    self.dropped
                ),
                hint: Some("fix the problems above and validate again".to_owned()),
            });
        }
        Diagnostics(self.diagnostics)
    }
}
