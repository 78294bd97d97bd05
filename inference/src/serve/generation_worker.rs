//! A generation worker: one actor owning one model on one device and a [`BatchEngine`].
//!
//! Requests are admitted between decode steps: a `Step` message runs one batched pass
//! (on a blocking thread, so the async runtime keeps serving HTTP) and then sends itself
//! the next `Step`; messages that arrived meanwhile (new requests, cancellations) are
//! handled first, since the mailbox is first in, first out. A request whose caller went
//! away (its stream dropped) is cancelled before the next pass, freeing its cache.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use ractor_cluster::RactorMessage;
use tokio::sync::mpsc::UnboundedSender;

use crate::batch::{BatchEngine, Drafting, SequenceId, StepEvent};
use crate::errors::InferenceError;
use crate::generation::LocalModel;
use crate::sequence::{GenerationRequest, Priority, Sequence};
use crate::serve::StreamEvent;

pub struct Admission {
    pub request: GenerationRequest,
    pub events: UnboundedSender<StreamEvent>,
    /// Answered once the request is checked: `Ok` (it will stream) or why not.
    pub admitted: RpcReplyPort<Result<(), InferenceError>>,
}

#[derive(RactorMessage)]
pub enum GenerationWorkerMsg {
    Admit(Box<Admission>),
    Step,
    /// Fault injection for the supervision tests: the next pass panics.
    #[cfg(test)]
    PanicOnNextStep,
}

pub struct GenerationWorkerArgs {
    pub model: LocalModel,
    /// Sequences decoded together; more wait in the queue.
    pub max_running: usize,
    pub max_step_tokens: usize,
    pub drafting: Drafting,
    /// Requests admitted and not finished; the router reads it to balance and to refuse.
    pub load: Arc<AtomicUsize>,
}

pub struct GenerationWorkerState {
    engine: Option<BatchEngine>,
    waiting: VecDeque<(SequenceId, Sequence)>,
    streams: HashMap<SequenceId, UnboundedSender<StreamEvent>>,
    next_id: SequenceId,
    stepping: bool,
    max_running: usize,
    load: Arc<AtomicUsize>,
    #[cfg(test)]
    panic_next: bool,
}

pub struct GenerationWorker;

impl Actor for GenerationWorker {
    type Msg = GenerationWorkerMsg;
    type State = GenerationWorkerState;
    type Arguments = GenerationWorkerArgs;

    async fn pre_start(
        &self,
        _: ActorRef<Self::Msg>,
        args: GenerationWorkerArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(GenerationWorkerState {
            engine: Some(
                BatchEngine::new(args.model, args.max_step_tokens).with_drafting(args.drafting),
            ),
            waiting: VecDeque::new(),
            streams: HashMap::new(),
            next_id: 0,
            stepping: false,
            max_running: args.max_running.max(1),
            load: args.load,
            #[cfg(test)]
            panic_next: false,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            GenerationWorkerMsg::Admit(admission) => state.admit(*admission),
            GenerationWorkerMsg::Step => {
                state.stepping = false;
                state.step().await?;
            }
            #[cfg(test)]
            GenerationWorkerMsg::PanicOnNextStep => state.panic_next = true,
        }
        if !state.stepping && state.has_work() {
            state.stepping = true;
            myself.cast(GenerationWorkerMsg::Step)?;
        }
        Ok(())
    }
}

impl GenerationWorkerState {
    fn admit(&mut self, admission: Admission) {
        let Admission {
            request,
            events,
            admitted,
        } = admission;
        let Some(engine) = self.engine.as_ref() else {
            return;
        };
        match engine.model().start(request) {
            Ok(sequence) => {
                let id = self.next_id;
                self.next_id += 1;
                self.waiting.push_back((id, sequence));
                self.streams.insert(id, events);
                if admitted.send(Ok(())).is_err() {
                    tracing::debug!("a caller left before its request was admitted");
                }
            }
            Err(error) => {
                self.load.fetch_sub(1, Ordering::AcqRel);
                if admitted.send(Err(error)).is_err() {
                    tracing::debug!("a caller left before its request was refused");
                }
            }
        }
    }

    fn has_work(&self) -> bool {
        !self.waiting.is_empty() || self.engine.as_ref().is_some_and(|e| !e.is_idle())
    }

    async fn step(&mut self) -> Result<(), ActorProcessingErr> {
        let Some(mut engine) = self.engine.take() else {
            return Ok(());
        };
        self.drop_abandoned(&mut engine);
        while let Some((id, sequence)) = self
            .next_to_join(engine.running())
            .and_then(|position| self.waiting.remove(position))
        {
            engine.join(id, sequence);
        }
        if engine.is_idle() {
            self.engine = Some(engine);
            return Ok(());
        }
        #[cfg(test)]
        let panic_now = std::mem::take(&mut self.panic_next);
        #[cfg(not(test))]
        let panic_now = false;
        let pass = tokio::task::spawn_blocking(move || {
            if panic_now {
                panic!("injected fault: a generation pass panicked");
            }
            let events = engine.step();
            (engine, events)
        })
        .await;
        // A panic in the pass loses this worker's batch: the actor fails, its supervisor
        // starts a fresh one, and the callers' streams end with "worker stopped".
        let (mut engine, events) =
            pass.map_err(|error| format!("generation pass failed: {error}"))?;
        match events {
            Ok(events) => self.deliver(events),
            Err(error) => self.fail_running(&mut engine, error),
        }
        self.engine = Some(engine);
        Ok(())
    }

    /// Where in the queue the sequence to join the batch next is, if one may join a
    /// batch of `running`: interactive requests first, in arrival order, then
    /// background ones. Interactive requests may take up to `max_running` slots more,
    /// so that a batch full of agents' requests delays a person by a pass, not by
    /// their whole answers.
    fn next_to_join(&self, running: usize) -> Option<usize> {
        let interactive = self
            .waiting
            .iter()
            .position(|(_, sequence)| sequence.priority() == Priority::Interactive);
        match interactive {
            Some(position) if running < 2 * self.max_running => Some(position),
            _ => (running < self.max_running && !self.waiting.is_empty()).then_some(0),
        }
    }

    /// Cancels the sequences whose callers stopped listening, in the engine and in the
    /// queue, so their memory is freed before the next pass.
    fn drop_abandoned(&mut self, engine: &mut BatchEngine) {
        let abandoned: Vec<SequenceId> = self
            .streams
            .iter()
            .filter(|(_, stream)| stream.is_closed())
            .map(|(id, _)| *id)
            .collect();
        for id in abandoned {
            self.streams.remove(&id);
            engine.cancel(id);
            self.waiting.retain(|(waiting, _)| *waiting != id);
            self.load.fetch_sub(1, Ordering::AcqRel);
        }
    }

    fn deliver(&mut self, events: Vec<StepEvent>) {
        for event in events {
            let Some(stream) = self.streams.get(&event.id) else {
                continue;
            };
            if !event.piece.is_empty() {
                // A closed stream is noticed and cancelled before the next pass.
                let _ = stream.send(StreamEvent::Text {
                    text: event.piece,
                    tokens: event.generated_tokens,
                });
            }
            if let Some(generated) = event.finished {
                let _ = stream.send(StreamEvent::Done(generated));
                self.streams.remove(&event.id);
                self.load.fetch_sub(1, Ordering::AcqRel);
            }
        }
    }

    fn fail_running(&mut self, engine: &mut BatchEngine, error: InferenceError) {
        tracing::error!(%error, "a generation pass failed; failing its sequences");
        let message = error.to_string();
        for id in engine.drain() {
            if let Some(stream) = self.streams.remove(&id) {
                let _ = stream.send(StreamEvent::Failed(InferenceError::Model(message.clone())));
                self.load.fetch_sub(1, Ordering::AcqRel);
            }
        }
    }
}
