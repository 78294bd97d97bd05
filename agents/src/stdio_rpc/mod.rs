//! The transport plugins and MCP servers share: a child process spoken to in JSON-RPC
//! 2.0, one message per line on stdin/stdout, supervised.
//!
//! - `message`: what a line is (response, request, notification) and what we write.
//! - `lines`: stdout read a line at a time up to a limit; stderr kept as a short tail.
//! - `child`: one running process and its calls, one at a time.
//! - `supervised`: the process of one plugin or server: started on first use, checked,
//!   killed on any fault and started again on next use, within a restart limit.

mod child;
mod lines;
mod message;
mod supervised;

pub(crate) use child::CancelNotice;
pub(crate) use supervised::{Dialect, Supervised};

use std::path::PathBuf;

use crate::jail::Jail;

/// How to start and bound one external process; from settings.
#[derive(Debug, Clone)]
pub struct ProcessConfig {
    /// Program and arguments, run without a shell, in the jail.
    pub command: Vec<String>,
    /// What the process may see and reach in its jail.
    pub access: ProcessAccess,
    pub jail: Jail,
    /// The only variables of the node's environment the process sees.
    pub env_allow_list: Vec<String>,
    /// Per call when the task gives no timeout, and for the handshake.
    pub timeout_secs: u64,
    /// Longest line accepted on stdout; a longer one is a fault.
    pub max_output_bytes: usize,
    /// Restarts allowed within `restart_period_secs`; one more and calls are refused
    /// until the period has passed.
    pub max_restarts: u32,
    pub restart_period_secs: u64,
}

/// The host directories a jailed external process may read and write, and whether it
/// may reach the network. It starts in its first readable directory, else its first
/// writable one, else its empty `HOME`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProcessAccess {
    pub readable_dirs: Vec<PathBuf>,
    pub writable_dirs: Vec<PathBuf>,
    pub network: bool,
}

/// What went wrong with one call, before it is told as an `AgentError`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Fault {
    Spawn(String),
    Exited {
        status: String,
    },
    LineTooLong {
        limit: usize,
    },
    NotJson {
        excerpt: String,
    },
    Protocol(String),
    TimedOut {
        secs: u64,
    },
    /// `clean`: the process answered within its grace and may be used again.
    Cancelled {
        clean: bool,
    },
    /// A JSON-RPC error answer: the process is fine, the call failed.
    Remote {
        code: i64,
        message: String,
    },
}
