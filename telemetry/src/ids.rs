//! Span ids chosen ahead. A run's root span is sent when the run ends, possibly by
//! another node than the one that started it, yet its ids must be known from the start
//! so that every attempt can name it as parent. The SDK makes its own ids, so the
//! provider is given this generator: random ids, except for the one span being built
//! inside [`with_ids`] on this thread.

use std::cell::Cell;

use opentelemetry::trace::{SpanId, TraceId};
use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator};

thread_local! {
    static NEXT_TRACE: Cell<Option<TraceId>> = const { Cell::new(None) };
    static NEXT_SPAN: Cell<Option<SpanId>> = const { Cell::new(None) };
}

#[derive(Debug, Default)]
pub(crate) struct PresetIds(RandomIdGenerator);

impl IdGenerator for PresetIds {
    fn new_trace_id(&self) -> TraceId {
        NEXT_TRACE
            .with(Cell::take)
            .unwrap_or_else(|| self.0.new_trace_id())
    }

    fn new_span_id(&self) -> SpanId {
        NEXT_SPAN
            .with(Cell::take)
            .unwrap_or_else(|| self.0.new_span_id())
    }
}

/// Runs `build`, in which the next span started on this thread gets these ids (the
/// trace id only when it has no parent). Whatever `build` leaves unused is cleared.
pub(crate) fn with_ids<T>(trace: TraceId, span: SpanId, build: impl FnOnce() -> T) -> T {
    NEXT_TRACE.with(|next| next.set(Some(trace)));
    NEXT_SPAN.with(|next| next.set(Some(span)));
    let built = build();
    NEXT_TRACE.with(|next| next.set(None));
    NEXT_SPAN.with(|next| next.set(None));
    built
}

/// Fresh ids for a span that is not started yet.
pub(crate) fn fresh() -> (TraceId, SpanId) {
    let random = RandomIdGenerator::default();
    (random.new_trace_id(), random.new_span_id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preset_ids_are_used_once_and_then_random_again() {
        let ids = PresetIds::default();
        let (trace, span) = fresh();
        let (first_trace, first_span) =
            with_ids(trace, span, || (ids.new_trace_id(), ids.new_span_id()));
        assert_eq!((first_trace, first_span), (trace, span));
        assert_ne!(ids.new_span_id(), span);
        let unused_trace = with_ids(trace, span, || ids.new_span_id());
        assert_eq!(unused_trace, span);
        assert_ne!(
            ids.new_trace_id(),
            trace,
            "an unused preset does not leak out"
        );
    }
}
