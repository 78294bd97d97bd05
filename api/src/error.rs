//! Errors as JSON: `{"error": {"code": "...", "message": "..."}}` with a stable code per
//! kind of failure and the HTTP status that fits it.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use troupe_engine::EngineError;
use troupe_node::NodeError;
use troupe_security::SecurityError;
use troupe_store::StoreError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub retry_after_secs: Option<u64>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable, for programs: `not_found`, `invalid_workflow`, `invalid_json`, ...
    pub code: String,
    /// For people.
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after_secs: None,
        }
    }

    /// 400 `invalid_request`: something in the request the caller can fix.
    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    /// A failure of ours (500 `internal`), logged: the caller can do nothing about it.
    /// A fault of ours. Its text (a database message, a path on the host) goes to the
    /// node's log, never to the caller, who may be anyone.
    fn internal(error: &dyn std::error::Error) -> Self {
        tracing::error!(%error, "request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the node could not serve this request; its log has the details",
        )
    }

    pub(crate) fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after_secs = Some(secs);
        self
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ApiError {}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        let message = error.to_string();
        match error {
            StoreError::WorkflowNotFound(_)
            | StoreError::WorkflowVersionNotFound { .. }
            | StoreError::RunNotFound(_)
            | StoreError::InvocationNotFound(_)
            | StoreError::ProjectNotFound(_) => {
                Self::new(StatusCode::NOT_FOUND, "not_found", message)
            }
            StoreError::InvalidRequest(_) => Self::invalid_request(message),
            // The run moved to another node while this one handled the request: the
            // same request again reaches the new owner.
            StoreError::Fenced { .. } => {
                Self::new(StatusCode::CONFLICT, "run_moved", message).retry_after(1)
            }
            StoreError::Database(_)
            | StoreError::Open { .. }
            | StoreError::Migration { .. }
            | StoreError::Corrupt(_)
            | StoreError::InvalidWrite(_)
            | StoreError::Encode { .. }
            | StoreError::KeyFile { .. }
            | StoreError::KeyTooShort { .. }
            | StoreError::MemoryDimensions { .. } => Self::internal(&error),
        }
    }
}

impl From<SecurityError> for ApiError {
    fn from(error: SecurityError) -> Self {
        let message = error.to_string();
        match error {
            SecurityError::Store(error) => error.into(),
            SecurityError::Unauthorized(_) => {
                Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
            }
            SecurityError::RateLimited { retry_after_secs } => {
                Self::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message)
                    .retry_after(retry_after_secs)
            }
            SecurityError::InvalidRequest(_) => Self::invalid_request(message),
            // Not 401: a wrong password here must not sign the browser out.
            SecurityError::StepUp(_) => {
                Self::new(StatusCode::FORBIDDEN, "step_up_required", message)
            }
            SecurityError::File { .. }
            | SecurityError::CheckpointUnreadable { .. }
            | SecurityError::CheckpointAltered { .. }
            | SecurityError::Encoding { .. }
            | SecurityError::PasswordHash(_)
            | SecurityError::PasswordWorkStopped(_)
            | SecurityError::TokenSigning(_)
            | SecurityError::QrCodeTooLong
            | SecurityError::Secrets(_) => Self::internal(&error),
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(error: EngineError) -> Self {
        let message = error.to_string();
        match error {
            EngineError::Store(error) => error.into(),
            EngineError::InvalidWorkflow(_) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_workflow",
                message,
            ),
            EngineError::InvalidVariables(_) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_variables",
                message,
            ),
            EngineError::InvalidRequest(_) => Self::invalid_request(message),
            EngineError::RunFinished { .. } => {
                Self::new(StatusCode::CONFLICT, "run_finished", message)
            }
            EngineError::RetryRefused(troupe_engine::state::RetryRefusal::UnknownTask {
                ..
            }) => Self::new(StatusCode::UNPROCESSABLE_ENTITY, "unknown_task", message),
            EngineError::MigrationRefused(_) => {
                Self::new(StatusCode::CONFLICT, "migration_refused", message)
            }
            EngineError::RetryRefused(_) => {
                Self::new(StatusCode::CONFLICT, "not_retryable", message)
            }
            EngineError::RunElsewhere { .. } => {
                Self::new(StatusCode::CONFLICT, "run_elsewhere", message)
            }
            EngineError::NotWaitingForApproval { .. } => {
                Self::new(StatusCode::CONFLICT, "not_waiting_for_approval", message)
            }
            EngineError::ApprovalRefused(_) => {
                Self::new(StatusCode::FORBIDDEN, "approval_refused", message)
            }
            EngineError::KindNotOnNode { .. } | EngineError::KindNotGranted { .. } => {
                Self::new(StatusCode::FORBIDDEN, "kind_not_allowed", message)
            }
            EngineError::GateRequired { .. } | EngineError::GatedInvocation { .. } => {
                Self::new(StatusCode::FORBIDDEN, "gate_required", message)
            }
            EngineError::KindUnknown { .. } => {
                Self::new(StatusCode::NOT_FOUND, "unknown_kind", message)
            }
            EngineError::Overloaded { retry_after_secs } => {
                Self::new(StatusCode::SERVICE_UNAVAILABLE, "overloaded", message)
                    .retry_after(retry_after_secs)
            }
            // The supervisor brings the actor back within moments.
            EngineError::Restarting { .. } => {
                Self::new(StatusCode::SERVICE_UNAVAILABLE, "restarting", message).retry_after(1)
            }
            EngineError::NotMember => {
                Self::new(StatusCode::SERVICE_UNAVAILABLE, "not_member", message).retry_after(1)
            }
            EngineError::Actor(_) => Self::internal(&error),
        }
    }
}

impl From<NodeError> for ApiError {
    fn from(error: NodeError) -> Self {
        match error {
            NodeError::Store(error) => error.into(),
            NodeError::Security(error) => error.into(),
            NodeError::Engine(error) => error.into(),
            NodeError::Models(error) => crate::openai::inference_error(error),
            NodeError::InvalidRequest(message) => Self::invalid_request(message),
            // A reload's: the settings (or a provider key they name) are the caller's
            // to fix, and only a super admin may reload.
            NodeError::Settings(_) | NodeError::ProviderKey(_) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_settings",
                error.to_string(),
            ),
            NodeError::NoSettingsSource => Self::new(
                StatusCode::CONFLICT,
                "no_settings_source",
                error.to_string(),
            ),
            NodeError::Start { .. }
            | NodeError::AgentKinds(_)
            | NodeError::ClusterCookie(_)
            | NodeError::AuditTampered { .. }
            | NodeError::Cluster(_)
            | NodeError::NoEmbedding => Self::internal(&error),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.into(),
                message: self.message,
            },
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after_secs
            && let Ok(value) = HeaderValue::from_str(&secs.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_restarting_actor_answers_503_with_retry_after() {
        let error = ApiError::from(NodeError::Engine(EngineError::Restarting {
            what: "the run manager".into(),
        }));
        assert_eq!(error.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(error.code, "restarting");
        assert_eq!(error.retry_after_secs, Some(1));
        let response = error.into_response();
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
    }

    /// A fault's own text (here a path on the host) stays in the log.
    #[test]
    fn an_internal_error_tells_the_caller_nothing_of_the_host() {
        let error = ApiError::from(StoreError::Corrupt("/srv/troupe/data: bad page".into()));
        assert_eq!(
            (error.status, error.code),
            (StatusCode::INTERNAL_SERVER_ERROR, "internal")
        );
        assert!(!error.message.contains("/srv"), "{}", error.message);
    }
}
