//! Accounts over HTTP: log in, refresh, log out, change the password, and `me`, the
//! first route that requires a bearer token.

use std::net::{IpAddr, SocketAddr};

use axum::Json;
use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;

use crate::body::JsonBody;
use crate::error::ApiError;
use crate::handlers::NodeState;
use troupe_security::auth::{
    ClientInfo, Enrolment, KeySpec, LoginOutcome, StepUp, SteppedUp, TokenPair,
};
use troupe_store::UserRecord;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct LoginBody {
    pub email: String,
    pub password: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct RefreshBody {
    pub refresh_token: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct PasswordBody {
    pub current_password: String,
    pub new_password: String,
}

/// The TCP peer, when the server was started with connection info (the binary is;
/// router tests are not).
pub struct Peer(pub Option<SocketAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Peer(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(address)| *address),
        ))
    }
}

/// The client's address: the peer, or, when the peer is a trusted proxy, the last
/// address in `X-Forwarded-For` that is not itself a trusted proxy. A header from any
/// other peer is ignored, so a client cannot choose the address it is limited under.
pub fn client_address(
    peer: Option<SocketAddr>,
    headers: &HeaderMap,
    trusted: &[String],
) -> Option<IpAddr> {
    let peer = peer?.ip();
    let is_trusted = |ip: &IpAddr| {
        trusted
            .iter()
            .any(|proxy| proxy.parse::<IpAddr>().is_ok_and(|p| p == *ip))
    };
    if !is_trusted(&peer) {
        return Some(peer);
    }
    let forwarded = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|hop| hop.trim().parse::<IpAddr>().ok())
        .collect::<Vec<_>>();
    forwarded
        .into_iter()
        .rev()
        .find(|ip| !is_trusted(ip))
        .or(Some(peer))
}

/// The client as a session will show it: its address and `User-Agent`.
pub(super) fn client_info(
    node: &troupe_node::Node,
    peer: Option<SocketAddr>,
    headers: &HeaderMap,
) -> ClientInfo {
    ClientInfo {
        ip: client_address(peer, headers, &node.settings().auth.trusted_proxies),
        device: headers
            .get(axum::http::header::USER_AGENT)
            .and_then(|value| value.to_str().ok())
            .map(String::from),
    }
}

/// The user behind the request's `Authorization: Bearer` access token.
pub async fn caller(node: &troupe_node::Node, headers: &HeaderMap) -> Result<UserRecord, ApiError> {
    Ok(signed_in(node, headers).await?.1)
}

/// The access token's claims and its user.
async fn signed_in(
    node: &troupe_node::Node,
    headers: &HeaderMap,
) -> Result<(troupe_security::auth::tokens::Claims, UserRecord), ApiError> {
    let cookies = crate::guard::Cookies::of(node);
    let bearer = crate::guard::access_token(headers, &cookies).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "send `Authorization: Bearer <access token>` (POST /api/v1/auth/login)",
        )
    })?;
    Ok(node.auth().authenticate(bearer).await?)
}

/// A session, or, for an account with a second factor, `{"mfa_required": true, "mfa_token"}`.
#[utoipa::path(post, path = "/api/v1/auth/login", request_body = LoginBody, responses((status = 200, body = LoginOutcome), (status = 401), (status = 429)))]
pub async fn login(
    State(node): NodeState,
    Peer(peer): Peer,
    headers: HeaderMap,
    JsonBody(body): JsonBody<LoginBody>,
) -> Result<Json<LoginOutcome>, ApiError> {
    let client = client_info(&node, peer, &headers);
    Ok(Json(
        node.auth()
            .login(&body.email, &body.password, client, node.audit())
            .await?,
    ))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct MfaCode {
    pub code: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct MfaVerify {
    pub mfa_token: String,
    /// Six digits from the authenticator, or one unused recovery code.
    pub code: String,
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct RecoveryCodes {
    /// Shown this once; each works once in place of a code.
    pub recovery_codes: Vec<String>,
}

/// The caller, having just proved again that it is them (the body's `password`, or
/// `code` when the account has a second factor).
async fn stepped_up(
    node: &troupe_node::Node,
    peer: Option<SocketAddr>,
    headers: &HeaderMap,
    proof: &StepUp,
) -> Result<SteppedUp, ApiError> {
    let user = caller(node, headers).await?;
    let client = client_address(peer, headers, &node.settings().auth.trusted_proxies);
    Ok(node
        .auth()
        .step_up(&user, proof, client, node.audit())
        .await?)
}

/// Starts TOTP enrolment: the secret and its QR code, to scan and then confirm. The
/// body confirms it is the account's owner: `{"password": ...}`.
#[utoipa::path(post, path = "/api/v1/auth/mfa/enrol", request_body = StepUp, responses((status = 200, body = Enrolment), (status = 401), (status = 403, body = crate::error::ErrorBody)))]
pub async fn enrol_mfa(
    State(node): NodeState,
    Peer(peer): Peer,
    headers: HeaderMap,
    JsonBody(proof): JsonBody<StepUp>,
) -> Result<Json<Enrolment>, ApiError> {
    let owner = stepped_up(&node, peer, &headers, &proof).await?;
    Ok(Json(node.auth().enrol_mfa(&owner).await?))
}

/// Removes the caller's second factor; the body carries a code from it (or a recovery
/// code).
#[utoipa::path(post, path = "/api/v1/auth/mfa/remove", request_body = StepUp, responses((status = 204), (status = 401), (status = 403, body = crate::error::ErrorBody)))]
pub async fn remove_mfa(
    State(node): NodeState,
    Peer(peer): Peer,
    headers: HeaderMap,
    JsonBody(proof): JsonBody<StepUp>,
) -> Result<StatusCode, ApiError> {
    let owner = stepped_up(&node, peer, &headers, &proof).await?;
    node.auth().remove_mfa(&owner, node.audit()).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/auth/mfa/confirm", request_body = MfaCode, responses((status = 200, body = RecoveryCodes), (status = 401)))]
pub async fn confirm_mfa(
    State(node): NodeState,
    headers: HeaderMap,
    JsonBody(body): JsonBody<MfaCode>,
) -> Result<Json<RecoveryCodes>, ApiError> {
    let user = caller(&node, &headers).await?;
    let recovery_codes = node
        .auth()
        .confirm_mfa(&user, &body.code, node.audit())
        .await?;
    Ok(Json(RecoveryCodes { recovery_codes }))
}

#[utoipa::path(post, path = "/api/v1/auth/mfa/verify", request_body = MfaVerify, responses((status = 200, body = TokenPair), (status = 401), (status = 429)))]
pub async fn verify_mfa(
    State(node): NodeState,
    Peer(peer): Peer,
    headers: HeaderMap,
    JsonBody(body): JsonBody<MfaVerify>,
) -> Result<Json<TokenPair>, ApiError> {
    let client = client_info(&node, peer, &headers);
    Ok(Json(
        node.auth()
            .verify_mfa(&body.mfa_token, &body.code, client, node.audit())
            .await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/auth/refresh", request_body = RefreshBody, responses((status = 200, body = TokenPair), (status = 401)))]
pub async fn refresh(
    State(node): NodeState,
    Peer(peer): Peer,
    headers: HeaderMap,
    JsonBody(body): JsonBody<RefreshBody>,
) -> Result<Json<TokenPair>, ApiError> {
    let client = client_address(peer, &headers, &node.settings().auth.trusted_proxies);
    Ok(Json(
        node.auth()
            .refresh_from(&body.refresh_token, client, node.audit())
            .await?,
    ))
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct SessionView {
    #[serde(flatten)]
    pub session: troupe_store::SessionRecord,
    /// The session of the token that asked.
    pub current: bool,
}

/// The caller's open sessions: device, address, sign-in and last refresh.
#[utoipa::path(get, path = "/api/v1/auth/sessions", responses((status = 200, body = Vec<SessionView>), (status = 401)))]
pub async fn list_sessions(
    State(node): NodeState,
    headers: HeaderMap,
) -> Result<Json<Vec<SessionView>>, ApiError> {
    let (claims, user) = signed_in(&node, &headers).await?;
    let sessions = node.auth().sessions(&user).await?;
    Ok(Json(
        sessions
            .into_iter()
            .map(|session| SessionView {
                current: session.session_id == claims.sid,
                session,
            })
            .collect(),
    ))
}

/// Ends one of the caller's sessions (another device, or this one).
#[utoipa::path(delete, path = "/api/v1/auth/sessions/{id}", responses((status = 204), (status = 404)))]
pub async fn end_session(
    State(node): NodeState,
    headers: HeaderMap,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<StatusCode, ApiError> {
    let (_, user) = signed_in(&node, &headers).await?;
    if node.auth().end_session(&user, &id, node.audit()).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("you have no open session `{id}`"),
        ))
    }
}

#[utoipa::path(post, path = "/api/v1/auth/logout", request_body = RefreshBody, responses((status = 204)))]
pub async fn logout(
    State(node): NodeState,
    JsonBody(body): JsonBody<RefreshBody>,
) -> Result<StatusCode, ApiError> {
    node.auth().logout(&body.refresh_token).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/auth/me", responses((status = 200, body = UserRecord), (status = 401)))]
pub async fn me(State(node): NodeState, headers: HeaderMap) -> Result<Json<UserRecord>, ApiError> {
    Ok(Json(caller(&node, &headers).await?))
}

#[utoipa::path(post, path = "/api/v1/auth/password", request_body = PasswordBody, responses((status = 204), (status = 401)))]
pub async fn change_password(
    State(node): NodeState,
    headers: HeaderMap,
    JsonBody(body): JsonBody<PasswordBody>,
) -> Result<StatusCode, ApiError> {
    let user = caller(&node, &headers).await?;
    node.auth()
        .change_password(
            &user,
            &body.current_password,
            &body.new_password,
            node.audit(),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_for_is_believed_only_from_a_trusted_proxy() {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", "1.2.3.4, 10.0.0.2".parse().unwrap());
        let trusted = vec!["10.0.0.1".to_string(), "10.0.0.2".to_string()];
        let from_proxy: SocketAddr = "10.0.0.1:5000".parse().unwrap();
        let from_client: SocketAddr = "203.0.113.9:5000".parse().unwrap();
        assert_eq!(
            client_address(Some(from_proxy), &headers, &trusted),
            "1.2.3.4".parse().ok()
        );
        // A spoofed header from a client that is not a proxy changes nothing.
        assert_eq!(
            client_address(Some(from_client), &headers, &trusted),
            "203.0.113.9".parse().ok()
        );
        headers.insert("x-forwarded-for", "not an address".parse().unwrap());
        assert_eq!(
            client_address(Some(from_proxy), &headers, &trusted),
            "10.0.0.1".parse().ok()
        );
        assert_eq!(client_address(None, &headers, &trusted), None);
    }
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ApiKeyCreated {
    /// The key itself, shown this once.
    pub key: String,
    #[serde(flatten)]
    pub record: troupe_store::ApiKeyRecord,
}

/// A key to make, and the proof that its owner asks for it.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct NewKey {
    #[serde(flatten)]
    pub spec: KeySpec,
    #[serde(flatten)]
    pub proof: StepUp,
}

/// Creates an API key for the caller (a session, not another key, may do this); the
/// body confirms it is the account's owner (`password`, or `code` with a second factor).
#[utoipa::path(post, path = "/api/v1/auth/keys", request_body = NewKey, responses((status = 201, body = ApiKeyCreated), (status = 401), (status = 403, body = crate::error::ErrorBody)))]
pub async fn create_key(
    State(node): NodeState,
    Peer(peer): Peer,
    headers: HeaderMap,
    JsonBody(body): JsonBody<NewKey>,
) -> Result<(StatusCode, Json<ApiKeyCreated>), ApiError> {
    let owner = stepped_up(&node, peer, &headers, &body.proof).await?;
    let (key, record) = node
        .auth()
        .create_api_key(&owner, &body.spec, node.audit())
        .await?;
    Ok((StatusCode::CREATED, Json(ApiKeyCreated { key, record })))
}

#[utoipa::path(get, path = "/api/v1/auth/keys", responses((status = 200, body = Vec<troupe_store::ApiKeyRecord>), (status = 401)))]
pub async fn list_keys(
    State(node): NodeState,
    headers: HeaderMap,
) -> Result<Json<Vec<troupe_store::ApiKeyRecord>>, ApiError> {
    let user = caller(&node, &headers).await?;
    Ok(Json(node.auth().store().api_keys_of(&user.user_id).await?))
}

#[utoipa::path(delete, path = "/api/v1/auth/keys/{id}", responses((status = 204), (status = 404)))]
pub async fn revoke_key(
    State(node): NodeState,
    headers: HeaderMap,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<StatusCode, ApiError> {
    let user = caller(&node, &headers).await?;
    if node.auth().revoke_api_key(&user, &id, node.audit()).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("you have no API key `{id}`"),
        ))
    }
}
