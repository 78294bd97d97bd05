//! From workflow text to a checked [`Workflow`], or every problem found in it.

mod checks;
mod document;

pub use document::slug;
mod fields;
mod sink;
mod task;

use crate::ast::Workflow;
use crate::errors::Diagnostics;
use crate::limits::SOURCE_BYTES_MAX;
use crate::yaml::{self, Mark};

use fields::Ctx;
use sink::{Sink, Site};

/// Parses and validates a workflow.
///
/// `file` only labels diagnostics; `known_agents` are the agent kinds the runtime offers.
/// Every problem is collected (up to [`DIAGNOSTICS_MAX`]), not just the first.
///
/// [`DIAGNOSTICS_MAX`]: crate::limits::DIAGNOSTICS_MAX
pub fn parse_workflow(
    source: &str,
    file: &str,
    known_agents: &[&str],
) -> Result<Workflow, Diagnostics> {
    let mut sink = Sink::new(file);
    let start = Mark { line: 1, column: 1 };
    if source.len() > SOURCE_BYTES_MAX {
        let message = format!(
            "the source is {} bytes; the limit is {SOURCE_BYTES_MAX} bytes (4 MiB)",
            source.len()
        );
        sink.error(
            site(start, ""),
            message,
            Some("split the workflow".to_owned()),
        );
        return Err(sink.finish());
    }
    let loaded = yaml::load(source);
    for error in &loaded.errors {
        sink.error(
            site(error.mark, &error.path),
            error.message.clone(),
            error.hint.clone(),
        );
    }
    let Some(root) = loaded.root else {
        if !sink.has_errors() {
            let hint = Some("start with `name:` and `tasks:`".to_owned());
            sink.error(site(start, ""), "the workflow is empty", hint);
        }
        return Err(sink.finish());
    };
    let mut ctx = Ctx {
        sink: &mut sink,
        task: None,
    };
    let Some((workflow, spans)) = document::decode_workflow(&mut ctx, &root, known_agents) else {
        return Err(sink.finish());
    };
    let graph = checks::check_graph(&mut sink, &workflow, &spans);
    checks::check_templates(&mut sink, &workflow, &spans, graph.as_ref());
    if graph.is_some() {
        checks::check_fan_out_caps(&mut sink, &workflow, &spans);
    }
    if sink.has_errors() {
        Err(sink.finish())
    } else {
        Ok(workflow)
    }
}

fn site(mark: Mark, path: &str) -> Site<'_> {
    Site {
        mark,
        path,
        task: None,
    }
}
