//! Errors as JSON: `{"error": {"code": "...", "message": "..."}}` with a stable code per
//! kind of failure and the HTTP status that fits it.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::errors::RuntimeError;

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
}

impl From<RuntimeError> for ApiError {
    fn from(error: RuntimeError) -> Self {
        let error = match error {
            RuntimeError::Models(error) => return crate::api::openai::inference_error(error),
            other => other,
        };
        let (status, code) = match &error {
            RuntimeError::WorkflowNotFound(_)
            | RuntimeError::WorkflowVersionNotFound { .. }
            | RuntimeError::RunNotFound(_)
            | RuntimeError::ProjectNotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            RuntimeError::InvalidWorkflow(_) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "invalid_workflow")
            }
            RuntimeError::InvalidVariables(_) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "invalid_variables")
            }
            RuntimeError::InvalidRequest(_) => (StatusCode::BAD_REQUEST, "invalid_request"),
            RuntimeError::RunFinished { .. } => (StatusCode::CONFLICT, "run_finished"),
            RuntimeError::NotWaitingForApproval { .. } => {
                (StatusCode::CONFLICT, "not_waiting_for_approval")
            }
            RuntimeError::ApprovalRefused(_) => (StatusCode::FORBIDDEN, "approval_refused"),
            RuntimeError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            RuntimeError::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            RuntimeError::Overloaded { .. } => (StatusCode::SERVICE_UNAVAILABLE, "overloaded"),
            // Mapped by `inference_error` above; kept so the match stays exhaustive.
            RuntimeError::Models(_) => (StatusCode::SERVICE_UNAVAILABLE, "model_unavailable"),
            RuntimeError::Store(_)
            | RuntimeError::StoreOpen { .. }
            | RuntimeError::Actor(_)
            | RuntimeError::AgentKinds(_)
            | RuntimeError::Audit(_)
            | RuntimeError::Auth(_)
            | RuntimeError::Secrets(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        };
        let retry_after_secs = match &error {
            RuntimeError::Overloaded { retry_after_secs }
            | RuntimeError::RateLimited { retry_after_secs } => Some(*retry_after_secs),
            _ => None,
        };
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(%error, "request failed");
        }
        Self {
            status,
            code,
            message: error.to_string(),
            retry_after_secs,
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
