//! The durable workflow engine.
//!
//! Actors, top down: the [`RunManager`](run_manager) starts and resumes runs and
//! supervises one [`RunActor`](run_actor) per unfinished run; a run actor owns the run's
//! event log, decides what happens next ([`state`]), spawns an
//! [`ApprovalGate`](approval_gate) per waiting approval, and submits task attempts to
//! the [`AgentPool`](agent_pool) of the task's agent kind.
//!
//! The events it appends are `troupe_store::events`, the stored format. Knows nothing
//! of accounts, HTTP or how a node is composed: the node hands it an [`EngineContext`]
//! (the store, the agent kinds, settings, the event bus).
//!
//! [`EngineContext`]: context::EngineContext

pub mod agent_pool;
pub mod approval_gate;
pub mod backoff;
mod budget;
pub mod command;
pub mod context;
mod dispatch;
mod error;
mod in_flight;
pub mod invoke;
pub mod metrics;
pub mod outcome;
pub mod placement;
pub mod policy;
pub mod run_actor;
pub mod run_manager;
pub mod seed;
pub mod state;
mod traces;

pub use error::EngineError;

#[cfg(test)]
mod state_properties;
