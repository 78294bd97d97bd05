//! Who may do what, and the record of what was done: accounts, sessions, tokens, API
//! keys and second factors ([`auth`]), the rule of who may act in which project
//! ([`auth::access`]), the tamper-evident audit chain ([`audit`]) and secrets sealed at
//! rest ([`secrets`]).
//!
//! Knows nothing of runs, actors or HTTP: the API turns requests into calls here, and
//! what is stored goes through `troupe_store`.

pub mod audit;
pub mod auth;
mod error;
pub mod secrets;
pub mod webhook;

pub use error::SecurityError;
