//! The web UI's sign-in. The accounts, limits and audit are those of the token routes in
//! `auth.rs`; only where the session lives differs: in two HttpOnly, SameSite=Strict
//! cookies, out of reach of the page's scripts, so a script injected into a page cannot
//! carry the session away. The access cookie goes with every request to the node; the
//! refresh cookie only to these routes. Every route here must come from the node's own
//! origin (see `guard::from_own_origin`).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{AppendHeaders, IntoResponse, Response};
use serde::Serialize;

use crate::auth::{LoginBody, MfaVerify, Peer, client_address, client_info};
use crate::body::JsonBody;
use crate::error::ApiError;
use crate::guard::{Cookies, cookie, require_own_origin};
use crate::handlers::NodeState;
use troupe_node::Node;
use troupe_security::SecurityError;
use troupe_security::auth::{LoginOutcome, TokenPair};

/// The refresh cookie is sent only to these routes.
const REFRESH_PATH: &str = "/api/v1/auth/browser";

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BrowserSignIn {
    /// The cookies are set: the session is open.
    pub signed_in: bool,
    /// Exchange `mfa_token` and a code at `POST /api/v1/auth/browser/mfa`.
    pub mfa_required: bool,
    pub mfa_token: Option<String>,
    /// The password is a one-time one: change it before anything else.
    pub password_change_required: bool,
    /// The account's role needs a second factor it does not have: enrol one first.
    pub mfa_enrolment_required: bool,
}

fn set_cookie(
    cookies: &Cookies,
    name: &str,
    value: &str,
    path: &str,
    max_age_secs: u64,
) -> (header::HeaderName, String) {
    let secure = if cookies.secure { "; Secure" } else { "" };
    (
        header::SET_COOKIE,
        format!(
            "{name}={value}; Path={path}; Max-Age={max_age_secs}; HttpOnly; SameSite=Strict{secure}"
        ),
    )
}

fn session(node: &Node, pair: TokenPair) -> Response {
    let names = Cookies::of(node);
    let cookies = AppendHeaders([
        set_cookie(
            &names,
            names.access,
            &pair.access_token,
            "/",
            pair.expires_in,
        ),
        set_cookie(
            &names,
            names.refresh,
            &pair.refresh_token,
            REFRESH_PATH,
            node.settings().auth.refresh_ttl_secs,
        ),
    ]);
    let body = BrowserSignIn {
        signed_in: true,
        mfa_required: false,
        mfa_token: None,
        password_change_required: pair.password_change_required,
        mfa_enrolment_required: pair.mfa_enrolment_required,
    };
    (cookies, Json(body)).into_response()
}

fn signed_out(node: &Node) -> AppendHeaders<[(header::HeaderName, String); 2]> {
    let names = Cookies::of(node);
    AppendHeaders([
        set_cookie(&names, names.access, "", "/", 0),
        set_cookie(&names, names.refresh, "", REFRESH_PATH, 0),
    ])
}

/// Every route here is for the node's own pages; programs use `POST /api/v1/auth/login`.
fn own_origin(node: &Node, headers: &HeaderMap) -> Result<(), ApiError> {
    require_own_origin(
        node,
        headers,
        "browser sign-in (programs use POST /api/v1/auth/login)",
    )
}

/// Signs in with a password; for an account with a second factor, answers
/// `mfa_required` with a challenge instead of the cookies.
#[utoipa::path(post, path = "/api/v1/auth/browser/login", request_body = LoginBody, responses((status = 200, body = BrowserSignIn), (status = 401), (status = 403), (status = 429)))]
pub async fn login(
    State(node): NodeState,
    Peer(peer): Peer,
    headers: HeaderMap,
    JsonBody(body): JsonBody<LoginBody>,
) -> Result<Response, ApiError> {
    own_origin(&node, &headers)?;
    let client = client_info(&node, peer, &headers);
    match node
        .auth()
        .login(&body.email, &body.password, client, node.audit())
        .await?
    {
        LoginOutcome::Session(pair) => Ok(session(&node, pair)),
        LoginOutcome::SecondFactor { mfa_token, .. } => Ok(Json(BrowserSignIn {
            signed_in: false,
            mfa_required: true,
            mfa_token: Some(mfa_token),
            password_change_required: false,
            mfa_enrolment_required: false,
        })
        .into_response()),
    }
}

/// Exchanges the login's challenge and a code (or a recovery code) for the cookies.
#[utoipa::path(post, path = "/api/v1/auth/browser/mfa", request_body = MfaVerify, responses((status = 200, body = BrowserSignIn), (status = 401), (status = 403), (status = 429)))]
pub async fn verify_mfa(
    State(node): NodeState,
    Peer(peer): Peer,
    headers: HeaderMap,
    JsonBody(body): JsonBody<MfaVerify>,
) -> Result<Response, ApiError> {
    own_origin(&node, &headers)?;
    let client = client_info(&node, peer, &headers);
    let pair = node
        .auth()
        .verify_mfa(&body.mfa_token, &body.code, client, node.audit())
        .await?;
    Ok(session(&node, pair))
}

/// Renews the cookies from the refresh cookie (the UI calls it when a request answers 401).
#[utoipa::path(post, path = "/api/v1/auth/browser/refresh", responses((status = 200, body = BrowserSignIn), (status = 401), (status = 403)))]
pub async fn refresh(
    State(node): NodeState,
    Peer(peer): Peer,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    own_origin(&node, &headers)?;
    let Some(refresh_token) =
        cookie(&headers, Cookies::of(&node).refresh).filter(|token| !token.is_empty())
    else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "no browser session: sign in at /login",
        ));
    };
    let client = client_address(peer, &headers, &node.settings().auth.trusted_proxies);
    match node
        .auth()
        .refresh_from(refresh_token, client, node.audit())
        .await
    {
        Ok(pair) => Ok(session(&node, pair)),
        // Only a definitive refusal ends the browser's session: after a 429 or a fault
        // of ours the cookies stay for the next try.
        Err(error @ SecurityError::Unauthorized(_)) => {
            Ok((signed_out(&node), ApiError::from(error)).into_response())
        }
        Err(error) => Err(error.into()),
    }
}

/// Ends the browser's session and clears its cookies.
#[utoipa::path(post, path = "/api/v1/auth/browser/logout", responses((status = 204), (status = 403)))]
pub async fn logout(State(node): NodeState, headers: HeaderMap) -> Result<Response, ApiError> {
    own_origin(&node, &headers)?;
    if let Some(refresh_token) =
        cookie(&headers, Cookies::of(&node).refresh).filter(|token| !token.is_empty())
    {
        node.auth().logout(refresh_token).await?;
    }
    Ok((StatusCode::NO_CONTENT, signed_out(&node)).into_response())
}
