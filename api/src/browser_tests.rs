//! The web UI's cookie session through the router: the cookies' attributes, what they
//! authenticate, and the origin a cookie-authenticated write must come from.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use serde_json::{Value, json};
use tower::ServiceExt;

use super::*;
use troupe_security::auth::permissions::Role;
use troupe_security::auth::totp;

const PASSWORD: &str = "a long enough password";
const OWN: &str = "http://troupe.test";

async fn node() -> (Router, Arc<Node>) {
    node_with(|_| {}).await
}

async fn node_with(settings: impl FnOnce(&mut troupe_config::Settings)) -> (Router, Arc<Node>) {
    let (app, node) = test_node::start(true, settings).await;
    node.auth()
        .create_user("ada@example.com", Role::Developer, PASSWORD, false)
        .await
        .unwrap();
    (app, node)
}

/// A request to `uri` with `cookies` and, when given, an `Origin`.
async fn send(
    app: &Router,
    method: Method,
    uri: &str,
    origin: Option<&str>,
    cookies: &str,
    body: Value,
) -> (StatusCode, HeaderMap, Value) {
    let mut request = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::HOST, "troupe.test")
        .header(header::CONTENT_TYPE, "application/json")
        .extension(axum::extract::ConnectInfo(std::net::SocketAddr::from((
            [192, 0, 2, 1],
            50_000,
        ))));
    if let Some(origin) = origin {
        request = request.header(header::ORIGIN, origin);
    }
    if !cookies.is_empty() {
        request = request.header(header::COOKIE, cookies);
    }
    let reply = test_node::send(app, request, test_node::json_body(&body)).await;
    (reply.status, reply.headers, reply.body)
}

/// A read with `cookies`: reads need no `Origin`.
async fn get(app: &Router, uri: &str, cookies: &str) -> (StatusCode, HeaderMap, Value) {
    send(app, Method::GET, uri, None, cookies, Value::Null).await
}

async fn post(
    app: &Router,
    uri: &str,
    origin: Option<&str>,
    cookies: &str,
    body: Value,
) -> (StatusCode, HeaderMap, Value) {
    send(app, Method::POST, uri, origin, cookies, body).await
}

/// Ada's email and password posted to the browser login from a page at `origin`.
async fn log_in_as_ada(app: &Router, origin: &str) -> (StatusCode, HeaderMap, Value) {
    let credentials = json!({ "email": "ada@example.com", "password": PASSWORD });
    let login = "/api/v1/auth/browser/login";
    post(app, login, Some(origin), "", credentials).await
}

/// Fails unless every cookie the answer sets is cleared (`Max-Age=0`).
#[track_caller]
fn assert_cookies_cleared(headers: &HeaderMap, context: &str) {
    let (_, raw) = cookies_of(headers);
    assert!(
        raw.iter().all(|cookie| cookie.contains("Max-Age=0")),
        "{context}: {raw:?}"
    );
}

/// The `Set-Cookie` headers as `name=value` pairs joined for a `Cookie` header, and the
/// raw headers.
fn cookies_of(headers: &HeaderMap) -> (String, Vec<String>) {
    let raw: Vec<String> = headers
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|value| value.to_str().unwrap().to_owned())
        .collect();
    let pairs = raw
        .iter()
        .map(|cookie| cookie.split(';').next().unwrap().to_owned())
        .collect::<Vec<_>>()
        .join("; ");
    (pairs, raw)
}

/// `cookies` are a session of ada's.
async fn assert_signed_in_as_ada(app: &Router, cookies: &str) {
    let (status, _, me) = get(app, "/api/v1/auth/me", cookies).await;
    assert_eq!(
        (status, me["email"].as_str()),
        (StatusCode::OK, Some("ada@example.com"))
    );
}

async fn sign_in(app: &Router) -> String {
    let (status, headers, body) = log_in_as_ada(app, OWN).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["signed_in"], true);
    assert!(
        body.get("access_token").is_none(),
        "tokens stay out of the page: {body}"
    );
    let (cookies, raw) = cookies_of(&headers);
    assert_eq!(raw.len(), 2, "{raw:?}");
    for cookie in &raw {
        assert!(
            cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
            "{cookie}"
        );
    }
    assert!(raw[1].contains("Path=/api/v1/auth/browser"), "{}", raw[1]);
    cookies
}

#[tokio::test]
async fn the_browser_session_cookie_authenticates_and_writes_must_come_from_the_node() {
    let (app, _node) = node().await;
    let (status, _, _) = get(&app, "/api/v1/runs", "").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let cookies = sign_in(&app).await;
    let (status, _, runs) = get(&app, "/api/v1/runs", &cookies).await;
    assert_eq!(status, StatusCode::OK, "{runs}");
    assert_signed_in_as_ada(&app, &cookies).await;

    // A write the cookie authenticates: from a foreign page, or with no Origin, refused.
    let key = json!({ "name": "ci", "scopes": ["workflows.view"], "password": PASSWORD });
    for origin in [Some("http://evil.test"), None] {
        let (status, _, body) =
            post(&app, "/api/v1/auth/keys", origin, &cookies, key.clone()).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{origin:?}: {body}");
        assert_eq!(body["error"]["code"], "origin_not_allowed", "{body}");
    }
    let (status, _, body) = post(&app, "/api/v1/auth/keys", Some(OWN), &cookies, key).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // Signing in from a foreign page is refused too.
    let (status, _, _) = log_in_as_ada(&app, "http://evil.test").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn refresh_rotates_the_cookies_and_logout_ends_the_session() {
    // No grace for a second tab: the replay below is plain reuse.
    let (app, _node) = node_with(|settings| settings.auth.refresh_reuse_grace_secs = 0).await;
    let first = sign_in(&app).await;
    let refresh = "/api/v1/auth/browser/refresh";
    let (status, headers, body) = post(&app, refresh, Some(OWN), &first, Value::Null).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (second, _) = cookies_of(&headers);
    assert_ne!(first, second);

    // The first refresh cookie, replayed, is refused, and the answer clears the cookies.
    let (status, headers, _) = post(&app, refresh, Some(OWN), &first, Value::Null).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_cookies_cleared(&headers, "a replayed refresh");

    let third = sign_in(&app).await;
    let logout = "/api/v1/auth/browser/logout";
    let (status, headers, _) = post(&app, logout, Some(OWN), &third, Value::Null).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_cookies_cleared(&headers, "logout");
    let (status, _, _) = post(&app, refresh, Some(OWN), &third, Value::Null).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, _) = get(&app, "/api/v1/runs", &third).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the ended session's access cookie is refused"
    );
    let (status, _, _) = post(&app, refresh, None, "", Value::Null).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "no Origin: not from the node's pages"
    );
}

#[tokio::test]
async fn an_account_with_a_second_factor_signs_in_with_its_code() {
    let (app, node) = node().await;
    let auth = node.auth();
    let ada = auth
        .store()
        .user_by_email("ada@example.com")
        .await
        .unwrap()
        .unwrap();
    let proof = troupe_security::auth::StepUp {
        password: Some(PASSWORD.into()),
        code: None,
    };
    let owner = auth
        .step_up(&ada, &proof, None, node.audit())
        .await
        .unwrap();
    auth.enrol_mfa(&owner).await.unwrap();
    let stored = auth.store().mfa(&ada.user_id).await.unwrap().unwrap();
    let secret = auth
        .secrets()
        .open(&format!("mfa:{}", ada.user_id), &stored.sealed_secret)
        .unwrap();
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    };
    let code = totp::code_at(&secret, now());
    auth.confirm_mfa(&ada, &code, node.audit()).await.unwrap();

    let (status, headers, challenge) = log_in_as_ada(&app, OWN).await;
    assert_eq!(status, StatusCode::OK, "{challenge}");
    assert_eq!(
        (
            challenge["signed_in"].as_bool(),
            challenge["mfa_required"].as_bool()
        ),
        (Some(false), Some(true))
    );
    assert!(
        cookies_of(&headers).1.is_empty(),
        "no session before the code"
    );
    let token = challenge["mfa_token"].as_str().unwrap();

    let wrong = json!({ "mfa_token": token, "code": "not a code" });
    let (status, _, _) = post(&app, "/api/v1/auth/browser/mfa", Some(OWN), "", wrong).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // The next step's code: the confirmation above used this step's.
    let code = totp::code_at(&secret, now() + 30);
    let body = json!({ "mfa_token": token, "code": code });
    let (status, headers, answer) =
        post(&app, "/api/v1/auth/browser/mfa", Some(OWN), "", body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["signed_in"], true);
    let (cookies, _) = cookies_of(&headers);
    assert_signed_in_as_ada(&app, &cookies).await;
}

#[tokio::test]
async fn hostile_cookies_are_refused_without_harm() {
    let (app, _node) = node().await;
    let long = format!("troupe_access={}", "A".repeat(8000));
    let refresh = "/api/v1/auth/browser/refresh";
    for cookies in [
        "troupe_access=",
        "troupe_access=garbage",
        "troupe_access=' OR 1=1 --",
        "troupe_access=a.b.c; troupe_access=x",
        "troupe_refresh=forged",
        ";;;=;=",
        long.as_str(),
    ] {
        let (status, _, body) = get(&app, "/api/v1/runs", cookies).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{cookies}: {body}");
        let (status, headers, _) = post(&app, refresh, Some(OWN), cookies, Value::Null).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{cookies}");
        assert_cookies_cleared(&headers, cookies);
    }
    // Bytes that are no text at all.
    let request = Request::builder()
        .uri("/api/v1/runs")
        .header(
            header::COOKIE,
            axum::http::HeaderValue::from_bytes(b"troupe_access=\xff\xfe").unwrap(),
        )
        .body(Body::empty())
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    // A good session still works afterwards.
    let cookies = sign_in(&app).await;
    let (status, _, _) = get(&app, "/api/v1/runs", &cookies).await;
    assert_eq!(status, StatusCode::OK);
}

/// Two tabs refresh with the same cookie at once: both stay signed in, with one pair.
#[tokio::test]
async fn a_second_tab_refreshing_with_the_same_cookie_stays_signed_in() {
    let (app, _node) = node().await;
    let first = sign_in(&app).await;
    let refresh = "/api/v1/auth/browser/refresh";
    let (status, headers, _) = post(&app, refresh, Some(OWN), &first, Value::Null).await;
    assert_eq!(status, StatusCode::OK);
    let (status, again, body) = post(&app, refresh, Some(OWN), &first, Value::Null).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(cookies_of(&again), cookies_of(&headers));
}

/// Too many bad refreshes from one client answer 429, which must not sign the
/// browser out: its cookies are kept for the next try.
#[tokio::test]
async fn a_rate_limited_refresh_keeps_the_cookies() {
    let (app, _node) = node().await;
    let refresh = "/api/v1/auth/browser/refresh";
    let bad = "troupe_refresh=rt_made_up";
    for _ in 0..5 {
        let (status, _, _) = post(&app, refresh, Some(OWN), bad, Value::Null).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, headers, body) = post(&app, refresh, Some(OWN), bad, Value::Null).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert!(
        headers.get_all(header::SET_COOKIE).iter().next().is_none(),
        "a 429 set cookies: {headers:?}"
    );
}
