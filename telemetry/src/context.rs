//! W3C trace context (`traceparent`) as a value: parsed strictly, written canonically.
//! A span's context does not cross an actor's mailbox, a cluster frame or an HTTP hop
//! by itself; the sender writes a `TraceParent` into the message and the receiver makes
//! it the parent of its span.

use std::fmt;

use opentelemetry::Context;
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use serde::{Deserialize, Serialize};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The HTTP header that carries it (W3C Trace Context).
pub const HEADER: &str = "traceparent";

/// One span's place in one trace: its trace id, its own id, and whether it is sampled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TraceParent {
    trace_id: TraceId,
    span_id: SpanId,
    sampled: bool,
}

impl TraceParent {
    pub(crate) fn new(trace_id: TraceId, span_id: SpanId, sampled: bool) -> Self {
        TraceParent {
            trace_id,
            span_id,
            sampled,
        }
    }

    /// A `traceparent` value; `None` when it is not one (the W3C rule: a malformed
    /// header is ignored and a new trace begins). Versions after `00` are read by their
    /// first four fields, as the recommendation asks.
    pub fn parse(value: &str) -> Option<Self> {
        let mut fields = value.trim().split('-');
        let version = fields.next()?;
        let (trace, span, flags) = (fields.next()?, fields.next()?, fields.next()?);
        let extra = fields.next().is_some();
        let well_formed = version.len() == 2
            && is_lower_hex(version)
            && version != "ff"
            && !(version == "00" && extra)
            && trace.len() == 32
            && is_lower_hex(trace)
            && span.len() == 16
            && is_lower_hex(span)
            && flags.len() == 2
            && is_lower_hex(flags);
        if !well_formed {
            return None;
        }
        let trace_id = TraceId::from_hex(trace).ok()?;
        let span_id = SpanId::from_hex(span).ok()?;
        let flags = u8::from_str_radix(flags, 16).ok()?;
        (trace_id != TraceId::INVALID && span_id != SpanId::INVALID)
            .then(|| TraceParent::new(trace_id, span_id, flags & 1 == 1))
    }

    /// The context of `span`, when it belongs to a trace (the exporter is on).
    pub fn of(span: &tracing::Span) -> Option<Self> {
        Self::of_context(&span.context())
    }

    /// The context of the span the caller is in, or else the one attached to its
    /// task (see [`TraceParent::scope`]).
    pub fn current() -> Option<Self> {
        Self::of(&tracing::Span::current()).or_else(|| Self::of_context(&Context::current()))
    }

    /// `future` with this span as the parent of the spans it starts outside any other.
    pub fn scope<F: Future>(&self, future: F) -> impl Future<Output = F::Output> {
        opentelemetry::context::FutureExt::with_context(future, self.context())
    }

    pub(crate) fn of_context(context: &Context) -> Option<Self> {
        let span = context.span();
        let found = span.span_context();
        found
            .is_valid()
            .then(|| TraceParent::new(found.trace_id(), found.span_id(), found.is_sampled()))
    }

    /// Makes this the parent of `span`, which must not have been entered yet.
    pub fn adopt(&self, span: &tracing::Span) {
        if let Err(error) = span.set_parent(self.context()) {
            tracing::debug!(%error, "a span's parent was set after it started");
        }
    }

    /// A context whose span is this one, seen from another process.
    pub(crate) fn context(&self) -> Context {
        Context::new().with_remote_span_context(self.span_context())
    }

    pub(crate) fn span_context(&self) -> SpanContext {
        let flags = if self.sampled {
            TraceFlags::SAMPLED
        } else {
            TraceFlags::default()
        };
        SpanContext::new(self.trace_id, self.span_id, flags, true, TraceState::NONE)
    }

    /// The trace's id, as trace viewers show it (32 hex digits).
    pub fn trace_id(&self) -> String {
        self.trace_id.to_string()
    }

    pub fn is_sampled(&self) -> bool {
        self.sampled
    }

    pub(crate) fn ids(&self) -> (TraceId, SpanId) {
        (self.trace_id, self.span_id)
    }
}

fn is_lower_hex(text: &str) -> bool {
    text.bytes()
        .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte))
}

impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let flags = u8::from(self.sampled);
        write!(f, "00-{}-{}-{flags:02x}", self.trace_id, self.span_id)
    }
}

impl TryFrom<String> for TraceParent {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        TraceParent::parse(&value).ok_or_else(|| {
            format!("`{value}` is not a W3C traceparent (00-<32 hex>-<16 hex>-<2 hex>)")
        })
    }
}

impl From<TraceParent> for String {
    fn from(parent: TraceParent) -> Self {
        parent.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::TraceParent;

    const SAMPLE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_traceparent_reads_back_as_written() {
        let parent = TraceParent::parse(SAMPLE).expect("the W3C example parses");
        assert_eq!(parent.to_string(), SAMPLE);
        assert_eq!(parent.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert!(parent.is_sampled());
        let unsampled = TraceParent::parse(&SAMPLE.replace("-01", "-00")).expect("parses");
        assert!(!unsampled.is_sampled());
    }

    #[test]
    fn malformed_traceparents_are_ignored() {
        for bad in [
            "",
            "00",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-+bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "0x-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert_eq!(TraceParent::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_later_version_is_read_by_its_first_four_fields() {
        let later = format!("{}-what-comes-next", SAMPLE.replacen("00", "01", 1));
        let parent = TraceParent::parse(&later).expect("a later version parses");
        assert_eq!(parent.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
    }

    #[test]
    fn a_bad_traceparent_in_a_message_names_itself() {
        let error = serde_json::from_str::<TraceParent>("\"nope\"").expect_err("refused");
        assert!(
            error
                .to_string()
                .contains("`nope` is not a W3C traceparent"),
            "{error}"
        );
    }
}
