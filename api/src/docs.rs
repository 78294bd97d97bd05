//! The OpenAPI document's frame (its info and the schemas no operation names; the
//! operations come from `crate::routes`) and an interactive page that renders it and
//! sends requests, served by the binary itself: no CDN.

use axum::response::Html;
use utoipa::OpenApi;

use crate::{auth, browser, config, error, memory, projects, users, wire};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Troupe API",
        description = "Workflows, runs, approvals and events of a Troupe node."
    ),
    components(schemas(
        error::ErrorBody,
        error::ErrorDetail,
        wire::CreateWorkflow,
        wire::WorkflowCreated,
        wire::WorkflowWithVersions,
        wire::StartRunRequest,
        wire::RunStarted,
        wire::CancelRequest,
        wire::DecisionBody,
        wire::Verdict,
        wire::AgentKind,
        troupe_node::Readiness,
        troupe_node::AlertsNow,
        troupe_node::AlertView,
        troupe_node::Reloaded,
        config::ConfigNow,
        memory::SearchMemory,
        memory::NewMemoryEntry,
        memory::MemoryCreated,
        troupe_store::MemoryEntry,
        troupe_security::audit::chain::AuditEntry,
        troupe_security::audit::chain::Breach,
        troupe_security::audit::checkpoint::Checkpoint,
        troupe_security::audit::VerifyReport,
        auth::LoginBody,
        auth::RefreshBody,
        auth::PasswordBody,
        troupe_security::auth::TokenPair,
        troupe_store::UserRecord,
        troupe_store::ApiKeyRecord,
        troupe_security::auth::KeySpec,
        troupe_security::auth::StepUp,
        auth::NewKey,
        auth::ApiKeyCreated,
        auth::MfaCode,
        auth::MfaVerify,
        auth::RecoveryCodes,
        auth::SessionView,
        troupe_store::SessionRecord,
        troupe_security::auth::Enrolment,
        troupe_security::auth::LoginOutcome,
        browser::BrowserSignIn,
        users::NewUser,
        users::UserCreated,
        projects::NewProject,
        projects::MemberRole,
        projects::ProjectWithMembers,
        troupe_node::policy::PolicyChange,
        troupe_store::ProjectPolicy,
        troupe_store::ProjectRecord,
        troupe_store::MemberRecord,
        troupe_store::Role,
        troupe_store::Permission,
    ))
)]
pub struct ApiDoc;

pub async fn docs_page() -> impl axum::response::IntoResponse {
    (
        [(
            axum::http::header::CONTENT_SECURITY_POLICY,
            crate::headers::DOCS_POLICY,
        )],
        Html(include_str!("docs.html")),
    )
}

/// The docs page's script: a file of its own, so the page's policy allows no inline
/// script.
pub async fn docs_script() -> impl axum::response::IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/javascript; charset=utf-8",
        )],
        include_str!("docs.js"),
    )
}

#[cfg(test)]
mod tests {
    /// Every `$ref` in `value`, e.g. `#/components/schemas/Role`.
    fn references(value: &serde_json::Value, found: &mut Vec<String>) {
        match value {
            serde_json::Value::Object(map) => {
                if let Some(serde_json::Value::String(target)) = map.get("$ref") {
                    found.push(target.clone());
                }
                map.values().for_each(|child| references(child, found));
            }
            serde_json::Value::Array(items) => {
                items.iter().for_each(|child| references(child, found))
            }
            _ => {}
        }
    }

    #[test]
    fn every_schema_the_document_refers_to_is_in_it() {
        let document = serde_json::to_value(crate::routes::document().as_ref()).unwrap();
        let schemas = &document["components"]["schemas"];
        let mut found = Vec::new();
        references(&document, &mut found);
        assert!(
            found.len() > 20,
            "the document refers to its schemas: {found:?}"
        );
        let missing: Vec<&String> = found
            .iter()
            .filter(|target| {
                let name = target.trim_start_matches("#/components/schemas/");
                schemas.get(name).is_none()
            })
            .collect();
        assert!(missing.is_empty(), "dangling references: {missing:?}");
        assert_eq!(
            schemas["Role"]["enum"],
            serde_json::json!([
                "viewer",
                "developer",
                "reviewer",
                "project_owner",
                "org_owner",
                "super_admin"
            ])
        );
    }
}
