//! The streamed answer of `POST /v1/chat/completions`: server-sent events, one chunk
//! per piece of text, the call written to the ledger however the stream ends.

use std::convert::Infallible;

use axum::response::sse::{Event, KeepAlive, Sse};
use tracing::Instrument;
use troupe_inference::serve::{GenerationStream, StreamEvent};

use crate::error::{ErrorBody, ErrorDetail};

use super::wire::{ChatCompletionChunk, ChunkChoice, Delta, Usage};
use super::{CallEnd, Ledger, record, usage};

pub(super) fn sse(
    id: String,
    created: i64,
    model: String,
    stream: GenerationStream,
    include_usage: bool,
    ledger: Ledger,
) -> Sse<impl futures::Stream<Item = Result<Event, Infallible>>> {
    let state = SseState {
        ledger,
        tokens: 0,
        recorded: false,
        stream,
        id,
        created,
        model,
        include_usage,
        pending: Default::default(),
        started: false,
        ended: false,
    };
    let events = futures::stream::unfold(state, |mut state| async move {
        loop {
            if let Some(event) = state.pending.pop_front() {
                return Some((Ok(event), state));
            }
            if state.ended {
                return None;
            }
            if !state.started {
                state.started = true;
                let first = state.chunk(
                    Delta {
                        role: Some("assistant".into()),
                        content: Some(String::new()),
                    },
                    None,
                );
                state.pending.push_back(first);
                continue;
            }
            let span = state.ledger.span.clone();
            match state.stream.next().instrument(span).await {
                Some(StreamEvent::Text { text, tokens }) => {
                    state.tokens = tokens;
                    let delta = Delta {
                        role: None,
                        content: Some(text),
                    };
                    let chunk = state.chunk(delta, None);
                    state.pending.push_back(chunk);
                }
                Some(StreamEvent::Done(generated)) => {
                    record(&state.ledger, &state.model, CallEnd::answered(&generated)).await;
                    state.recorded = true;
                    let last = state.chunk(Delta::default(), Some(generated.finish.openai_name()));
                    state.pending.push_back(last);
                    if state.include_usage {
                        let usage = state.event(Vec::new(), Some(usage(&generated)));
                        state.pending.push_back(usage);
                    }
                    state.pending.push_back(Event::default().data("[DONE]"));
                    state.ended = true;
                }
                Some(StreamEvent::Failed(error)) => {
                    let body = ErrorBody {
                        error: ErrorDetail {
                            code: "inference_failed".into(),
                            message: error.to_string(),
                        },
                    };
                    // Invariant: two strings always serialise.
                    let event = Event::default().json_data(body).unwrap_or_default();
                    state.pending.push_back(event);
                    state.ended = true;
                }
                None => state.ended = true,
            }
        }
    });
    Sse::new(events).keep_alive(KeepAlive::default())
}

struct SseState {
    ledger: Ledger,
    /// Tokens streamed so far, and whether the call is in the ledger yet.
    tokens: usize,
    recorded: bool,
    stream: GenerationStream,
    id: String,
    created: i64,
    model: String,
    include_usage: bool,
    pending: std::collections::VecDeque<Event>,
    started: bool,
    ended: bool,
}

impl Drop for SseState {
    /// A stream that ends without its answer (the client went away, the worker failed)
    /// is still a call: it goes to the ledger with the tokens streamed so far.
    fn drop(&mut self) {
        if self.recorded {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!("an unfinished stream could not be written to the ledger");
            return;
        };
        let (ledger, model, tokens_out) = (self.ledger.clone(), self.model.clone(), self.tokens);
        let error = if self.ended {
            "the generation failed"
        } else {
            "the client disconnected"
        };
        runtime.spawn(async move {
            let end = CallEnd {
                tokens_in: ledger.prompt_tokens,
                tokens_out,
                finish: "",
                error: Some(error),
            };
            record(&ledger, &model, end).await;
        });
    }
}

impl SseState {
    fn chunk(&self, delta: Delta, finish: Option<&str>) -> Event {
        let choice = ChunkChoice {
            index: 0,
            delta,
            finish_reason: finish.map(String::from),
        };
        self.event(vec![choice], None)
    }

    fn event(&self, choices: Vec<ChunkChoice>, usage: Option<Usage>) -> Event {
        let chunk = ChatCompletionChunk {
            id: self.id.clone(),
            object: "chat.completion.chunk".into(),
            created: self.created,
            model: self.model.clone(),
            choices,
            usage,
        };
        // Invariant: the chunk is plain strings and numbers, which always serialise.
        Event::default().json_data(chunk).unwrap_or_default()
    }
}
