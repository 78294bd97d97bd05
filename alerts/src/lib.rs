//! Alerts inside the node: the rules of `deploy/prometheus/alerts.yaml`, evaluated on
//! the node's own metrics with Prometheus's semantics, so that a laptop with no
//! Prometheus is told what a team's Prometheus would tell it.
//!
//! The node reads its metrics (the `/metrics` text, [`parse_exposition`]) every
//! `alerts.evaluate_every_secs`, hands the reading to an [`Evaluator`], and tells of
//! each [`Transition`] (the audit log, a [`Notification`] to a webhook, the UI). This
//! crate knows nothing of the node, the store or HTTP: it is rules, history and time.

mod error;
mod evaluator;
mod history;
mod promql;
mod rules;
mod sample;
mod webhook;

pub use error::AlertError;
pub use evaluator::{Alert, AlertState, Evaluator, Transition};
pub use history::Millis;
pub use rules::Severity;
pub use sample::{Labels, Sample, parse_exposition};
pub use webhook::{Notification, fingerprint, rfc3339};
