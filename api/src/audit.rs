//! The audit log over HTTP: `GET /api/v1/audit` exports entries (JSON, JSON lines or
//! CSV, by time range, actor and action), `GET /api/v1/audit/verify` walks the chain.
//! A caller below super admin reads the entries by or about its own organisation's
//! people only: the node's own entries and other organisations' stay out of its export.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::error::ApiError;
use crate::guard::Access;
use crate::handlers::NodeState;
use troupe_node::Node;
use troupe_security::audit::VerifyReport;
use troupe_security::audit::chain::AuditEntry;
use troupe_security::auth::permissions::Role;
use troupe_store::{AuditFilter, People};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct AuditQuery {
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    pub actor: Option<String>,
    pub action: Option<String>,
    /// `json` (default), `jsonl` or `csv`.
    pub format: Option<String>,
    pub limit: Option<usize>,
}

#[utoipa::path(get, path = "/api/v1/audit", params(AuditQuery), responses((status = 200, body = Vec<AuditEntry>)))]
pub async fn export(
    State(node): NodeState,
    access: Access,
    Query(query): Query<AuditQuery>,
) -> Result<Response, ApiError> {
    let filter = AuditFilter {
        since_ms: query.since_ms,
        until_ms: query.until_ms,
        actor: query.actor,
        people: organisation_people(&node, &access).await?,
        action: query.action,
        limit: query.limit.unwrap_or(0),
    };
    let entries = node.audit_entries(&filter).await?;
    match query.format.as_deref().unwrap_or("json") {
        "json" => Ok(Json(entries).into_response()),
        "jsonl" => {
            let mut body = String::new();
            for entry in &entries {
                body.push_str(&serde_json::to_string(entry).unwrap_or_default());
                body.push('\n');
            }
            Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response())
        }
        "csv" => Ok(([(header::CONTENT_TYPE, "text/csv")], to_csv(&entries)).into_response()),
        other => Err(ApiError::invalid_request(format!(
            "format `{other}` is not one of json, jsonl, csv"
        ))),
    }
}

/// The people of the caller's organisation, whose entries (by them or about them) it may
/// read; `None` (all entries) for a super admin and on a node without accounts.
async fn organisation_people(node: &Node, access: &Access) -> Result<Option<People>, ApiError> {
    let Some(principal) = &access.0 else {
        return Ok(None);
    };
    if principal.user.role == Role::SuperAdmin {
        return Ok(None);
    }
    let org = &principal.user.org;
    let mut people = People::default();
    for user in node.store().users().await? {
        if &user.org == org {
            people.emails.push(user.email);
            people.user_ids.push(user.user_id.to_string());
        }
    }
    Ok(Some(people))
}

/// RFC 4180: every field quoted, quotes doubled. A field starting with `=`, `+`, `-` or
/// `@` is prefixed with `'` so a spreadsheet does not run it as a formula.
pub fn to_csv(entries: &[AuditEntry]) -> String {
    let field = |text: &str| {
        let text = if text.starts_with(['=', '+', '-', '@']) {
            format!("'{text}")
        } else {
            text.to_string()
        };
        format!("\"{}\"", text.replace('"', "\"\""))
    };
    let mut csv = String::from("seq,at_ms,actor,action,target,details,prev_hash,hash\n");
    for entry in entries {
        let row = [
            entry.seq.to_string(),
            entry.at_ms.to_string(),
            field(&entry.actor),
            field(&entry.action),
            field(&entry.target),
            field(&entry.details),
            entry.prev_hash.clone(),
            entry.hash.clone(),
        ];
        csv.push_str(&row.join(","));
        csv.push('\n');
    }
    csv
}

#[utoipa::path(get, path = "/api/v1/audit/verify", responses((status = 200, body = VerifyReport)))]
pub async fn verify(State(node): NodeState) -> Result<Json<VerifyReport>, ApiError> {
    Ok(Json(node.audit().verify().await?))
}
