//! The route guard. Every route declares what it needs where it is declared
//! (`crate::routes`); a route missing from that table is refused, so a route added to
//! the router some other way is closed rather than open. With `auth.required`, every route but the open ones takes an access token or an
//! API key (`Authorization: Bearer`, the web UI's HttpOnly session cookie, or
//! `?access_token=` on the event WebSocket, where browsers cannot set headers). A write
//! the cookie authenticates must come from the node's own origin.
//!
//! The guard checks the permission is held somewhere (node-wide permissions: for the
//! node); handlers then check the object's own project through [`Access`], answering
//! 404 for a project the caller cannot see, so ids cannot be probed.

use std::sync::Arc;

use axum::extract::{FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::routes::RouteTable;
use crate::without_accounts::LocalOnly;
use troupe_node::Node;
use troupe_security::auth::access::{Denied, Principal};
use troupe_security::auth::permissions::{Permission, Role};
use troupe_store::events::Person;
use troupe_store::{ProjectId, StoreError};

/// What a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// Anyone: health, docs, and the routes that hand out tokens.
    Open,
    /// Any signed-in caller (its own account, sessions and keys).
    SignedIn,
    /// A node-wide permission of the account role.
    Node(Permission),
    /// A permission in the project of the object; the handler checks which project.
    Project(Permission),
}

/// What the guard middleware holds: the node, what each route needs, and on a node
/// without accounts what keeps it to its own machine.
#[derive(Clone)]
pub struct Guarded {
    pub node: Arc<Node>,
    pub table: Arc<RouteTable>,
    pub local_only: Option<Arc<LocalOnly>>,
}

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

/// Routes an account whose password must change may still use.
const BEFORE_PASSWORD_CHANGE: [&str; 2] = ["/api/v1/auth/password", "/api/v1/auth/me"];

/// What an account that must have a second factor and has none may do: enrol one (and
/// see itself, its sessions, and change its password).
const BEFORE_MFA_ENROLMENT: [&str; 6] = [
    "/api/v1/auth/mfa/enrol",
    "/api/v1/auth/mfa/confirm",
    "/api/v1/auth/me",
    "/api/v1/auth/password",
    "/api/v1/auth/sessions",
    "/api/v1/auth/sessions/{id}",
];

/// The token of an `Authorization: Bearer` header.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
}

/// The browser's session cookies (set by the `/api/v1/auth/browser/*` routes). On a node
/// that serves TLS itself they are `Secure` and prefixed: the browser then keeps a
/// `__Host-` cookie only if it was set over HTTPS by this very host (no `Domain`, `Path=/`),
/// so neither a plain-HTTP page nor a sibling subdomain can plant one (session fixation).
/// The refresh cookie travels only to the refresh and logout routes, so it is
/// `__Secure-` (a `__Host-` cookie must have `Path=/`). Only this node's names are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cookies {
    pub access: &'static str,
    pub refresh: &'static str,
    pub secure: bool,
}

impl Cookies {
    const PLAIN: Cookies = Cookies {
        access: "troupe_access",
        refresh: "troupe_refresh",
        secure: false,
    };
    const SECURE: Cookies = Cookies {
        access: "__Host-troupe_access",
        refresh: "__Secure-troupe_refresh",
        secure: true,
    };

    /// This node's cookies: prefixed and `Secure` when it serves TLS (`server.tls`).
    pub fn of(node: &Node) -> Cookies {
        if node.settings().server.tls.is_some() {
            Self::SECURE
        } else {
            Self::PLAIN
        }
    }
}

/// One cookie's value from the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// The request's access token: a bearer header, else the browser's session cookie.
pub fn access_token<'a>(headers: &'a HeaderMap, cookies: &Cookies) -> Option<&'a str> {
    bearer(headers).or_else(|| cookie(headers, cookies.access))
}

/// Whether a browser request comes from a page of this node (or of an origin listed in
/// `server.allowed_origins`). Cookies go with every request to the node, whichever site
/// caused it, so a request a cookie authenticates must prove its origin before it may
/// change anything. Browsers send `Origin` with every such request.
pub fn from_own_origin(headers: &HeaderMap, allowed: &[String]) -> bool {
    let Some(origin) = headers
        .get(header::ORIGIN)
        .and_then(|value| value.to_str().ok())
    else {
        return false;
    };
    let own = headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|host| {
            origin == format!("http://{host}") || origin == format!("https://{host}")
        });
    own || allowed.iter().any(|listed| listed == origin)
}

/// Refuses a browser request that does not come from this node's pages (see
/// [`from_own_origin`]); `what` names what was refused.
pub fn require_own_origin(node: &Node, headers: &HeaderMap, what: &str) -> Result<(), ApiError> {
    if from_own_origin(headers, &node.settings().server.allowed_origins) {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::FORBIDDEN,
        "origin_not_allowed",
        format!(
            "{what} must come from this node's own pages (or an origin in server.allowed_origins)"
        ),
    ))
}

/// The request's token, and whether it came from the browser's session cookie (which
/// the browser sends whichever site caused the request).
fn token(request: &Request, cookies: &Cookies) -> Option<(String, bool)> {
    let headers = request.headers();
    if let Some(token) = bearer(headers) {
        return Some((token.to_owned(), false));
    }
    if let Some(token) = cookie(headers, cookies.access) {
        return Some((token.to_owned(), true));
    }
    (request.uri().path() == "/api/v1/events")
        .then(|| request.uri().query())
        .flatten()
        .and_then(|query| {
            query
                .split('&')
                .find_map(|pair| pair.strip_prefix("access_token="))
                .map(|token| (token.to_owned(), false))
        })
}

fn forbidden(message: String) -> Response {
    ApiError::new(StatusCode::FORBIDDEN, "forbidden", message).into_response()
}

pub async fn require_caller(
    State(Guarded {
        node,
        table,
        local_only,
    }): State<Guarded>,
    mut request: Request,
    next: Next,
) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned())
        .unwrap_or_default();
    let Some(needs) = table.needs(request.method(), &route) else {
        return forbidden(format!(
            "{} {route} declares no permission, so it is closed (a bug: please report it)",
            request.method()
        ));
    };
    if let Some(local_only) = &local_only {
        if let Err(refused) = local_only.check(&request) {
            return refused.into_response();
        }
        return next.run(request).await;
    }
    if needs == Needs::Open {
        return next.run(request).await;
    }
    let Some((token, by_cookie)) = token(&request, &Cookies::of(&node)) else {
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "this node requires an access token: POST /api/v1/auth/login, then send \
             `Authorization: Bearer <access_token>`",
        )
        .into_response();
    };
    let reads_only = matches!(*request.method(), Method::GET | Method::HEAD);
    if by_cookie
        && !reads_only
        && let Err(refused) = require_own_origin(
            &node,
            request.headers(),
            "a request signed in by the browser's cookie",
        )
    {
        return refused.into_response();
    }
    let principal = match node.auth().principal(&token).await {
        Ok(principal) => principal,
        Err(error) => return ApiError::from(error).into_response(),
    };
    if principal.user.must_change_password && !BEFORE_PASSWORD_CHANGE.contains(&route.as_str()) {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "password_change_required",
            "this account has a one-time password: change it first (POST /api/v1/auth/password)",
        )
        .into_response();
    }
    if principal.mfa_missing && !BEFORE_MFA_ENROLMENT.contains(&route.as_str()) {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "mfa_enrolment_required",
            "your role needs a second factor (auth.require_mfa_for): enrol one first \
             (POST /api/v1/auth/mfa/enrol, then /api/v1/auth/mfa/confirm; the Account page)",
        )
        .into_response();
    }
    let refused = match needs {
        Needs::Open | Needs::SignedIn => None,
        Needs::Node(permission) => principal.check_node(permission).err().map(|_| permission),
        Needs::Project(permission) => (!principal.holds_anywhere(permission)).then_some(permission),
    };
    if let Some(permission) = refused {
        return forbidden(format!(
            "this needs `{permission}`, which your role `{}`{} does not hold",
            principal.user.role,
            if principal.key.is_some() {
                " or this API key"
            } else {
                ""
            }
        ));
    }
    request.extensions_mut().insert(Caller(principal));
    next.run(request).await
}

/// The caller as handlers see it: `None` on a node without `auth.required`, where every
/// request may do everything (a loopback-only node, see `check_bind_address`).
#[derive(Debug, Clone)]
pub struct Access(pub Option<Principal>);

impl<S: Send + Sync> FromRequestParts<S> for Access {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Access(
            parts
                .extensions
                .get::<Caller>()
                .map(|Caller(principal)| principal.clone()),
        ))
    }
}

impl Access {
    /// `permission` in `project`; a project the caller cannot see answers `hidden`
    /// (the object's own not-found error).
    pub fn require(
        &self,
        permission: Permission,
        project: impl AsRef<str>,
        hidden: impl FnOnce() -> StoreError,
    ) -> Result<(), ApiError> {
        let Some(principal) = &self.0 else {
            return Ok(());
        };
        let project = project.as_ref();
        match principal.check(permission, project) {
            Ok(()) => Ok(()),
            Err(Denied::Hidden) => Err(hidden().into()),
            Err(Denied::Lacks { permission, role }) => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!(
                    "this needs `{permission}` in project `{project}`; your role there is `{role}`"
                ),
            )),
        }
    }

    /// The projects where `permission` is held; `None`: all of them.
    pub fn projects_with(&self, permission: Permission) -> Option<Vec<ProjectId>> {
        self.0
            .as_ref()
            .and_then(|principal| principal.projects_with(permission))
    }

    /// The organisation new accounts and projects go to: a super admin's (or an
    /// unauthenticated node's) choice, else the caller's own.
    pub fn org_for_new(&self, asked: Option<&str>) -> String {
        match &self.0 {
            Some(principal) if principal.user.role != Role::SuperAdmin => {
                principal.user.org.clone()
            }
            _ => asked.unwrap_or(troupe_store::DEFAULT_ORG).to_owned(),
        }
    }

    /// Whether the caller manages accounts of `org` (a super admin: all of them).
    pub fn manages_org(&self, org: &str) -> bool {
        self.0
            .as_ref()
            .is_none_or(|p| p.user.role == Role::SuperAdmin || p.user.org == org)
    }

    /// Who the request acts as, with the caller's account when there is one.
    pub fn person(&self, named: Option<&str>) -> Person {
        Person {
            name: self.actor(named),
            user_id: self
                .0
                .as_ref()
                .map(|principal| principal.user.user_id.clone()),
        }
    }

    /// Who the request acts as: the caller, else what the request named, else `anonymous`.
    pub fn actor(&self, named: Option<&str>) -> String {
        match &self.0 {
            Some(principal) => principal.email().to_owned(),
            None => named.unwrap_or("anonymous").to_owned(),
        }
    }
}
