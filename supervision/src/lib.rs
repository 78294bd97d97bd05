//! Restart strategy on top of ractor, which has none: one-for-one restarts with an
//! intensity/period limit as in Erlang/OTP, escalating to the parent when exceeded.
//!
//! [`RestartLog`] is the pure rule; [`Supervisor`] is an actor that applies it to a set
//! of children described by [`ChildSpec`]s. Other actors that supervise dynamic children
//! (the run manager) use `RestartLog` directly.

mod restart_log;
mod supervisor;

pub use restart_log::{RestartLog, RestartPolicy, Verdict};
pub use supervisor::{ChildSpec, Supervisor, SupervisorMsg};
