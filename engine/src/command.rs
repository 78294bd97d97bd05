//! A command for a run, as it reaches the node that owns the run: from this node's API,
//! or handed on by another node's (over the cluster, so it is serde).

use ractor::RpcReplyPort;
use serde::{Deserialize, Serialize};
use troupe_store::RunId;

use crate::EngineError;
use crate::run_actor::{DecisionRequest, RunMsg};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunCommand {
    Cancel {
        run: RunId,
        by: String,
    },
    Decide {
        run: RunId,
        request: DecisionRequest,
    },
    Migrate {
        run: RunId,
        to_version: u32,
        by: String,
    },
}

impl RunCommand {
    pub fn run(&self) -> &RunId {
        match self {
            RunCommand::Cancel { run, .. }
            | RunCommand::Decide { run, .. }
            | RunCommand::Migrate { run, .. } => run,
        }
    }

    pub(crate) fn into_message(self, reply: RpcReplyPort<Result<(), EngineError>>) -> RunMsg {
        match self {
            RunCommand::Cancel { by, .. } => RunMsg::CancelRun { by, reply },
            RunCommand::Decide { request, .. } => RunMsg::DecideApproval { request, reply },
            RunCommand::Migrate { to_version, by, .. } => RunMsg::MigrateRun {
                to_version,
                by,
                reply,
            },
        }
    }
}
