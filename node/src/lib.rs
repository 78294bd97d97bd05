//! A Troupe node: the composition of one process. [`Node`] opens the store and the
//! audit log, starts accounts, the inference router, the agent pools and the run manager
//! under one root supervisor ([`NodeBuilder`] starts one, with agent kinds of the
//! embedding program if it has any), and offers the operations the API and the CLI call.
//! [`services`] are what the node lends its agents (the provider chain as a model
//! client whose every call reaches the ledger, and agent memory); [`agent_kinds`] turns
//! settings into the agents crate's kinds; [`policy`] grants kinds to projects.
//!
//! Knows nothing of HTTP: `troupe_api` serves a `Node`.

pub mod agent_kinds;
mod alerting;
mod budget;
mod builder;
mod cluster;
mod error;
mod load;
mod metrics;
mod node;
mod openmetrics;
pub mod policy;
mod push;
pub mod reload;
mod schedule;
pub mod services;
mod triggers;
mod vitals;

pub use agent_kinds::builtin_registry;
pub use alerting::{AlertBoard, AlertView, AlertsNow};
pub use builder::NodeBuilder;
pub use cluster::ClusterView;
pub use error::NodeError;
pub use node::{ModelPeer, Node, PendingApproval, RunBudget, RunDetail};
pub use push::PushHook;
pub use reload::{Reloaded, RunningSettings, SettingsSource};
pub use schedule::schedule_problem;
pub use triggers::{PushView, ScheduleView, TriggerView};
pub use troupe_cluster::models::ModelRole;
/// Who starts runs and decides gates, and what they choose: the types a program that
/// embeds a node passes in.
pub use troupe_engine::run_manager::RunOptions;
pub use troupe_store::events::{Decision, Person};
pub use vitals::Readiness;

#[cfg(test)]
mod engine_tests;
