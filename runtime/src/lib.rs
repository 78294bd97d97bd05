//! The runtime of a Troupe node: supervision on top of ractor, the durable workflow
//! engine, the SurrealDB store and the HTTP API.
//!
//! It knows agents only through `troupe_agents::Agent` and workflows only through
//! `troupe_workflow`; only `api` knows HTTP.

mod agent_kinds;
pub mod api;
pub mod audit;
pub mod auth;
pub mod auth_bench;
pub mod bench;
pub mod clock;
pub mod digest;
pub mod engine;
pub mod errors;
pub mod key_file;
pub mod node;
pub mod secrets;
pub mod services;
pub mod store;
pub use troupe_supervision as supervision;

pub use errors::RuntimeError;
pub use node::{Decision, Node, PendingApproval, RunDetail, builtin_registry};
