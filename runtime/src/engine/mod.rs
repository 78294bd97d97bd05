//! The durable workflow engine.
//!
//! Actors, top down: the [`RunManager`](run_manager) starts and resumes runs and
//! supervises one [`RunActor`](run_actor) per unfinished run; a run actor owns the run's
//! event log, decides what happens next ([`state`]), spawns an
//! [`ApprovalGate`](approval_gate) per waiting approval, and submits task attempts to
//! the [`AgentPool`](agent_pool) of the task's agent kind.

pub mod agent_pool;
pub mod approval_gate;
pub mod backoff;
pub mod context;
pub mod events;
pub mod run_actor;
pub mod run_manager;
pub mod state;

#[cfg(test)]
mod state_properties;
#[cfg(test)]
mod tests;
