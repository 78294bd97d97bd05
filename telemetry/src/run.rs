//! One trace per run. A run outlives the request that started it, moves between nodes
//! and survives restarts, so no one `tracing` span can cover it. Instead its root span's
//! ids are chosen when it starts and kept with the run; every attempt, on whichever node
//! and in whichever epoch, is a child of that root; and the node that ends the run sends
//! the root itself, spanning the run's whole life.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry::trace::{Span as _, SpanKind, Status, Tracer as _};
use opentelemetry::{Context, KeyValue};

use crate::context::TraceParent;
use crate::{export, ids, spans};

/// A run's place in tracing: its root span, and the span that started it (a request
/// to the API, when the caller was traced).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunTrace {
    pub root: TraceParent,
    pub parent: Option<TraceParent>,
}

/// How a run ended, for its root span.
#[derive(Debug, Clone)]
pub struct RunEnd<'a> {
    pub workflow: &'a str,
    pub run_id: &'a str,
    /// `completed`, `failed` or `cancelled`.
    pub status: &'a str,
    pub started_ms: i64,
    pub ended_ms: i64,
    pub cost_usd: f64,
}

impl RunTrace {
    /// Ids for the root of a run starting now, under `parent` (the span of the request
    /// that starts it) when there is one; `None` while no spans are exported.
    pub fn begin(parent: Option<TraceParent>) -> Option<RunTrace> {
        let sampler = export::sampler()?;
        let (fresh_trace, span_id) = ids::fresh();
        let (trace_id, sampled) = match parent {
            Some(parent) => (parent.ids().0, parent.is_sampled()),
            None => (fresh_trace, sampler.samples(fresh_trace)),
        };
        Some(RunTrace {
            root: TraceParent::new(trace_id, span_id, sampled),
            parent,
        })
    }

    /// As a run's record keeps it: the root's `traceparent` and the parent's, or empty.
    pub fn to_strings(self) -> (String, String) {
        (
            self.root.to_string(),
            self.parent.map(String::from).unwrap_or_default(),
        )
    }

    /// Back from a record; `None` for a run started while nothing was exported.
    pub fn from_strings(root: &str, parent: &str) -> Option<RunTrace> {
        Some(RunTrace {
            root: TraceParent::parse(root)?,
            parent: TraceParent::parse(parent),
        })
    }

    /// Sends the root span, from the run's start to `end`. Called once, by the owner
    /// that ends the run.
    pub fn finish(&self, end: &RunEnd<'_>) {
        if !self.root.is_sampled() || export::sampler().is_none() {
            return;
        }
        let tracer = opentelemetry::global::tracer("troupe");
        let (name, mut attributes) = spans::invoke_workflow(end.workflow, end.run_id);
        attributes.push(KeyValue::new(spans::RUN_STATUS, end.status.to_string()));
        attributes.push(KeyValue::new(spans::COST_USD, end.cost_usd));
        let parent = self
            .parent
            .map_or_else(Context::new, |parent| parent.context());
        let (trace_id, span_id) = self.root.ids();
        let mut span = ids::with_ids(trace_id, span_id, || {
            tracer
                .span_builder(name)
                .with_kind(SpanKind::Internal)
                .with_start_time(at(end.started_ms))
                .with_attributes(attributes)
                .start_with_context(&tracer, &parent)
        });
        if end.status == "failed" {
            span.set_status(Status::error("the run failed"));
        }
        span.end_with_timestamp(at(end.ended_ms.max(end.started_ms)));
    }
}

fn at(unix_ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(unix_ms).unwrap_or(0))
}
