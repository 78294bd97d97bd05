//! The OpenAPI document (generated from the handlers' annotations) and an interactive
//! page that renders it and sends requests, served by the binary itself: no CDN.

use axum::Json;
use axum::response::Html;
use utoipa::OpenApi;

use crate::{audit, auth, browser, error, handlers, memory, projects, users, wire};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Troupe API",
        description = "Workflows, runs, approvals and events of a Troupe node."
    ),
    paths(
        handlers::create_workflow,
        handlers::list_workflows,
        handlers::get_workflow,
        handlers::delete_workflow,
        handlers::start_run,
        handlers::list_runs,
        handlers::get_run,
        handlers::get_run_events,
        handlers::cancel_run,
        handlers::decide,
        handlers::list_approvals,
        handlers::list_agents,
        handlers::list_pools,
        memory::list,
        memory::search,
        memory::create,
        memory::delete,
        auth::login,
        auth::refresh,
        auth::logout,
        auth::enrol_mfa,
        auth::confirm_mfa,
        auth::verify_mfa,
        auth::me,
        auth::change_password,
        auth::create_key,
        auth::list_keys,
        auth::revoke_key,
        auth::list_sessions,
        auth::end_session,
        browser::login,
        browser::verify_mfa,
        browser::refresh,
        browser::logout,
        users::create,
        users::list,
        users::disable,
        projects::create,
        projects::list,
        projects::get,
        projects::set_member,
        projects::remove_member,
        audit::export,
        audit::verify,
        handlers::healthz,
        handlers::readyz,
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
        wire::Readiness,
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
        troupe_store::ProjectRecord,
        troupe_store::MemberRecord,
        troupe_store::Role,
        troupe_store::Permission,
    ))
)]
pub struct ApiDoc;

pub async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

pub async fn docs_page() -> Html<&'static str> {
    Html(include_str!("docs.html"))
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let document = serde_json::to_value(ApiDoc::openapi()).unwrap();
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
