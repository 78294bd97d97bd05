//! Restart strategy on top of ractor, which has none: one-for-one restarts with an
//! intensity/period limit as in Erlang/OTP, escalating to the parent when exceeded.
//!
//! [`RestartLog`] is the pure rule; [`Children`] is the bookkeeping every supervising
//! actor embeds (the root [`Supervisor`] over a fixed set of [`ChildSpec`]s, the run
//! manager over its runs, the inference router over its workers); a [`ChildRef`] is how
//! the rest of the node reaches a supervised actor across its restarts.

mod child_ref;
pub mod children;
mod restart_log;
mod supervisor;

pub use child_ref::ChildRef;
pub use children::{ChildEvent, Children};
pub use restart_log::{RestartLog, RestartPolicy, Verdict};
pub use supervisor::{ChildSpec, Supervisor, SupervisorMsg};
