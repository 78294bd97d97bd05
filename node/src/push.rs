//! What a push webhook needs from the node: the trigger of the workflow it names (its
//! latest version) and the secret that trigger names, opened from the secret store.

use std::time::Duration;

use troupe_security::SecurityError;
use troupe_security::audit::AuditAction;
use troupe_security::auth::limiter::FailureLimiter;
use troupe_store::WorkflowId;
use troupe_workflow::PushTrigger;

use crate::{Node, NodeError};

/// Refused deliveries audited per workflow and minute.
pub const REJECTIONS_PER_MINUTE: u32 = 30;

pub(crate) fn rejection_limiter() -> FailureLimiter {
    FailureLimiter::new(REJECTIONS_PER_MINUTE, Duration::from_secs(60))
}

/// A workflow that pushes start: its trigger, and its secret when the store has it.
pub struct PushHook {
    pub trigger: PushTrigger,
    /// The workflow's triggers are paused: a believed delivery starts nothing.
    pub paused: bool,
    /// `None` when the trigger names no secret or the store holds none by that name:
    /// then no delivery is believed.
    pub secret: Option<Vec<u8>>,
}

impl Node {
    /// The push trigger of workflow `id`'s latest version; `None` when it has none.
    pub async fn push_hook(&self, id: &WorkflowId) -> Result<Option<PushHook>, NodeError> {
        let record = self.store().workflow(id).await?;
        let paused = record.is_some_and(|record| record.triggers_paused);
        let workflow = crate::node::stored_workflow(self.context(), id, None).await?;
        let Some(trigger) = workflow.triggers.on_push else {
            return Ok(None);
        };
        let secret = match &trigger.secret {
            Some(name) => {
                troupe_security::secrets::get(self.store(), self.auth().secrets(), name).await?
            }
            None => None,
        };
        Ok(Some(PushHook {
            trigger,
            paused,
            secret,
        }))
    }

    /// Records a delivery that was not believed, against the workflow it named. Past
    /// [`REJECTIONS_PER_MINUTE`] for one workflow the rest are refused as rate-limited
    /// and not written: a flood of forged deliveries must not grow the audit log.
    pub async fn push_rejected(
        &self,
        id: &WorkflowId,
        sender: &str,
        reason: &str,
    ) -> Result<(), NodeError> {
        if let Err(retry_after_secs) = self.push_rejections().begin(id.as_str()) {
            return Err(SecurityError::RateLimited { retry_after_secs }.into());
        }
        let action = AuditAction::WebhookRejected {
            sender: sender.into(),
            reason: reason.into(),
        };
        self.audit().record("webhook", action, id.as_str()).await?;
        Ok(())
    }
}
