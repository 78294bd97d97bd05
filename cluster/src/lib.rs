//! Several `troupe` processes on one shared store as one Troupe.
//!
//! The store is the quorum: each node holds a lease on its membership, renewed by the
//! store's clock, and every run has an owner node and an epoch that a take-over raises
//! by compare-and-set (the fence itself is the store's, `troupe_store::Store::
//! append_events`). This crate decides: [`lease`] when a node may act, renews, or must
//! fence itself; [`orphans`] which runs a node takes over; [`downing`] which members
//! it declares dead before their lease lapses (link lost and renewals missed). Both are pure state
//! machines, property-tested against a fake store with crashes, pauses and partitions.
//! The [`membership`] actor applies them: it renews the lease, fences the node, and
//! hands the engine's run manager the runs to take over.
//!
//! The [`links`] actor keeps this node linked to every live member over
//! ractor_cluster (mutual TLS and the cookie), redialling and dropping by what the
//! store says. [`placement`] picks the node each attempt runs on, and that node's
//! [`gateway`] runs it; [`models`] picks the node a model request goes to. What
//! crosses between nodes is in [`wire`].
//!
//! Knows nothing of HTTP, accounts or how a node is composed.

pub mod downing;
pub mod error;
pub mod gateway;
pub mod lease;
pub mod links;
pub mod membership;
pub mod metrics;
pub mod models;
pub mod orphans;
pub mod placement;
pub mod wire;

#[cfg(test)]
mod properties;
