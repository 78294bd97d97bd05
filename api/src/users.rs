//! Accounts managed over HTTP (`users.manage`), so a running node's users can be added
//! without stopping it. Nobody hands out a role above their own.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};

use crate::auth::{Peer, client_address};
use crate::body::JsonBody;
use crate::error::ApiError;
use crate::guard::Access;
use crate::handlers::NodeState;
use troupe_security::auth::StepUp;
use troupe_security::auth::permissions::Role;
use troupe_store::{UserId, UserRecord};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct NewUser {
    pub email: String,
    /// Default `developer`.
    pub role: Option<Role>,
    /// Only a super admin chooses; everyone else adds accounts to their own organisation.
    pub org: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserCreated {
    pub user: UserRecord,
    /// Shown this once; it must be changed at the first login.
    pub one_time_password: String,
}

/// Whether a caller of role `manager` may make or disable an account of role `role`:
/// only roles below their own, so an org owner can neither mint another org owner nor
/// disable a super admin. A super admin manages every role, super admins included.
fn outranks(manager: Role, role: Role) -> bool {
    manager == Role::SuperAdmin || role < manager
}

#[utoipa::path(post, path = "/api/v1/users", request_body = NewUser, responses((status = 201, body = UserCreated), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody)))]
pub async fn create(
    State(node): NodeState,
    access: Access,
    JsonBody(body): JsonBody<NewUser>,
) -> Result<(StatusCode, Json<UserCreated>), ApiError> {
    let role = body.role.unwrap_or(Role::Developer);
    if let Some(principal) = &access.0
        && !outranks(principal.user.role, role)
    {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "you are `{}` and cannot make a `{role}`: only roles below your own",
                principal.user.role
            ),
        ));
    }
    let org = access.org_for_new(body.org.as_deref());
    let (user, one_time_password) = node
        .auth()
        .invite(&org, &body.email, role, &access.actor(None), node.audit())
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(UserCreated {
            user,
            one_time_password,
        }),
    ))
}

#[utoipa::path(get, path = "/api/v1/users", responses((status = 200, body = Vec<UserRecord>)))]
pub async fn list(
    State(node): NodeState,
    access: Access,
) -> Result<Json<Vec<UserRecord>>, ApiError> {
    let mut users = node.store().users().await?;
    users.retain(|user| access.manages_org(&user.org));
    Ok(Json(users))
}

/// The account `id`, when the caller manages it: in an organisation the caller
/// manages (else not found), and of a role below the caller's own (else forbidden).
async fn managed_user(
    node: &troupe_node::Node,
    access: &Access,
    id: &UserId,
    verb: &str,
) -> Result<UserRecord, ApiError> {
    let not_found = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no user `{id}`"),
        )
    };
    let user = node.store().user_by_id(id).await?.ok_or_else(not_found)?;
    if !access.manages_org(&user.org) {
        return Err(not_found());
    }
    if let Some(principal) = &access.0
        && !outranks(principal.user.role, user.role)
    {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "you are `{}` and cannot {verb} a `{}`: only roles below your own",
                principal.user.role, user.role
            ),
        ));
    }
    Ok(user)
}

/// Disables the user and ends their sessions.
#[utoipa::path(post, path = "/api/v1/users/{id}/disable", responses((status = 204), (status = 400, body = crate::error::ErrorBody)))]
pub async fn disable(
    State(node): NodeState,
    access: Access,
    Path(id): Path<UserId>,
) -> Result<StatusCode, ApiError> {
    managed_user(&node, &access, &id, "disable").await?;
    node.auth()
        .set_disabled(&id, true, &access.actor(None), node.audit())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes the user's second factor (a lost phone and lost recovery codes) and ends
/// their sessions; they sign in with their password and enrol again. The body confirms
/// it is the administrator (`password`, or `code` with a second factor).
#[utoipa::path(post, path = "/api/v1/users/{id}/mfa/reset", request_body = StepUp, responses((status = 204), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn reset_mfa(
    State(node): NodeState,
    access: Access,
    Peer(peer): Peer,
    headers: HeaderMap,
    Path(id): Path<UserId>,
    JsonBody(proof): JsonBody<StepUp>,
) -> Result<StatusCode, ApiError> {
    managed_user(&node, &access, &id, "reset the second factor of").await?;
    if let Some(principal) = &access.0 {
        let client = client_address(peer, &headers, &node.settings().auth.trusted_proxies);
        node.auth()
            .step_up(&principal.user, &proof, client, node.audit())
            .await?;
    }
    node.auth()
        .reset_mfa(&id, &access.actor(None), node.audit())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
