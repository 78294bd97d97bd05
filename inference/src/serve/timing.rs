//! How fast the local model answers, as OpenTelemetry's GenAI server metrics name it:
//! the time to the first token (from admission, so queueing counts, as a caller feels
//! it) and the time per output token after it, by model. Measured where the caller
//! reads its stream, so a streamed and a waited-for answer count alike.

use std::time::Instant;

use metrics::{describe_histogram, histogram};

pub const TIME_TO_FIRST_TOKEN: &str = "gen_ai_server_time_to_first_token_seconds";
pub const TIME_PER_OUTPUT_TOKEN: &str = "gen_ai_server_time_per_output_token_seconds";

/// The help text of the local model's timing metrics (once, at start).
pub fn describe() {
    describe_histogram!(
        TIME_TO_FIRST_TOKEN,
        metrics::Unit::Seconds,
        "From a local generation's admission to its first text, by model (OpenTelemetry GenAI)."
    );
    describe_histogram!(
        TIME_PER_OUTPUT_TOKEN,
        metrics::Unit::Seconds,
        "Time per output token after the first, of local generations, by model (OpenTelemetry GenAI)."
    );
}

/// One generation's clock.
#[derive(Debug)]
pub(crate) struct Timing {
    model: String,
    admitted: Instant,
    first_text: Option<Instant>,
}

impl Timing {
    pub(crate) fn start(model: String) -> Timing {
        Timing {
            model,
            admitted: Instant::now(),
            first_text: None,
        }
    }

    /// Text arrived; the first time, that is the first token.
    pub(crate) fn text(&mut self) {
        if self.first_text.is_none() {
            let now = Instant::now();
            let seconds = now.duration_since(self.admitted).as_secs_f64();
            histogram!(TIME_TO_FIRST_TOKEN, "gen_ai_request_model" => self.model.clone())
                .record(seconds);
            troupe_telemetry::spans::first_chunk(seconds);
            self.first_text = Some(now);
        }
    }

    /// The generation ended with `tokens` output tokens.
    pub(crate) fn done(&self, tokens: usize) {
        if let Some(first) = self.first_text
            && tokens > 1
        {
            let per_token = first.elapsed().as_secs_f64() / (tokens - 1) as f64;
            histogram!(TIME_PER_OUTPUT_TOKEN, "gen_ai_request_model" => self.model.clone())
                .record(per_token);
        }
    }
}
