//! Step-up, the second factor's removal and reset, and `auth.require_mfa_for`, each
//! performed as the attack it stops.

use axum::http::StatusCode;
use serde_json::{Value, json};
use troupe_security::auth::permissions::Role;
use troupe_security::auth::totp;
use troupe_store::clock::{Clock, SystemClock};

use crate::access_tests::{PASSWORD, Team};

/// The TOTP code `email`'s authenticator shows `steps_ahead` steps from now.
async fn code_of(team: &Team, email: &str, steps_ahead: u64) -> String {
    let auth = team.node.auth();
    let user = auth.store().user_by_email(email).await.unwrap().unwrap();
    let stored = auth.store().mfa(&user.user_id).await.unwrap().unwrap();
    let secret = auth
        .secrets()
        .open(&format!("mfa:{}", user.user_id), &stored.sealed_secret)
        .unwrap();
    let at = SystemClock.now_secs() + steps_ahead * totp::STEP_SECS;
    totp::code_at(&secret, at)
}

/// Enrols and confirms a second factor for `email`, signed in with `token`.
async fn enrol(team: &Team, token: &str, email: &str) {
    let (status, body) = team
        .post(
            token,
            "/api/v1/auth/mfa/enrol",
            json!({ "password": PASSWORD }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let code = code_of(team, email, 0).await;
    let (status, body) = team
        .post(token, "/api/v1/auth/mfa/confirm", json!({ "code": code }))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

fn step_up_refused(status: StatusCode, body: &Value) -> String {
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "step_up_required", "{body}");
    body["error"]["message"].as_str().unwrap().to_string()
}

/// The attacks: with a stolen access token (or a browser left signed in), plant a
/// second factor of one's own (locking the owner out), mint an API key, or remove the
/// owner's second factor with the password alone.
#[tokio::test]
async fn a_stolen_session_cannot_change_how_the_account_is_reached() {
    let team = Team::new().await;
    let ada = team.user("ada@example.com", Role::Developer).await;
    for (path, body) in [
        ("/api/v1/auth/mfa/enrol", json!({})),
        (
            "/api/v1/auth/keys",
            json!({ "name": "mine", "scopes": ["workflows.view"] }),
        ),
    ] {
        let (status, refused) = team.post(&ada, path, body).await;
        let message = step_up_refused(status, &refused);
        assert!(message.contains("`password`"), "{path}: {message}");
    }
    let (status, refused) = team
        .post(
            &ada,
            "/api/v1/auth/mfa/enrol",
            json!({ "password": "guessed" }),
        )
        .await;
    assert!(step_up_refused(status, &refused).contains("wrong"));
    let user = team
        .node
        .store()
        .user_by_email("ada@example.com")
        .await
        .unwrap()
        .unwrap();
    let store = team.node.store();
    assert!(
        store.mfa(&user.user_id).await.unwrap().is_none(),
        "nothing enrolled"
    );

    enrol(&team, &ada, "ada@example.com").await;
    // With a second factor on, the password alone proves nothing.
    let (status, refused) = team
        .post(
            &ada,
            "/api/v1/auth/mfa/remove",
            json!({ "password": PASSWORD }),
        )
        .await;
    assert!(step_up_refused(status, &refused).contains("`code`"));
    let code = code_of(&team, "ada@example.com", 1).await;
    let (status, _) = team
        .post(&ada, "/api/v1/auth/mfa/remove", json!({ "code": code }))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(store.mfa(&user.user_id).await.unwrap().is_none());
    let audit = store.audit_entries(&Default::default()).await.unwrap();
    let actions: Vec<&str> = audit.iter().map(|entry| entry.action.as_str()).collect();
    for action in ["auth.step_up_failed", "auth.mfa_enable", "auth.mfa_remove"] {
        assert!(actions.contains(&action), "{action} not in {actions:?}");
    }
}

/// A lost phone: an administrator resets the factor (proving it is them), which ends
/// the user's sessions; nobody resets an account of their own rank or above.
#[tokio::test]
async fn an_administrator_resets_a_lost_second_factor_of_a_lower_role_only() {
    let team = Team::new().await;
    let ada = team.user("ada@example.com", Role::Developer).await;
    let owner = team.user("owner@example.com", Role::OrgOwner).await;
    let root = team.user("root@example.com", Role::SuperAdmin).await;
    enrol(&team, &ada, "ada@example.com").await;
    let id_of = |email: &'static str| {
        let store = team.node.store().clone();
        async move { store.user_by_email(email).await.unwrap().unwrap().user_id }
    };
    let reset = |id: troupe_store::UserId| format!("/api/v1/users/{id}/mfa/reset");

    let (status, _) = team
        .post(
            &ada,
            &reset(id_of("ada@example.com").await),
            json!({ "password": PASSWORD }),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "a developer manages no accounts"
    );
    let (status, refused) = team
        .post(
            &owner,
            &reset(id_of("root@example.com").await),
            json!({ "password": PASSWORD }),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
    assert!(refused.to_string().contains("only roles below your own"));
    let (status, refused) = team
        .post(&owner, &reset(id_of("ada@example.com").await), json!({}))
        .await;
    step_up_refused(status, &refused);

    let (status, _) = team
        .post(
            &owner,
            &reset(id_of("ada@example.com").await),
            json!({ "password": PASSWORD }),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = team.get(&ada, "/api/v1/auth/me").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "her sessions ended");
    let outcome = team
        .node
        .auth()
        .login("ada@example.com", PASSWORD, None, team.node.audit())
        .await
        .unwrap();
    assert!(
        outcome.into_session().is_some(),
        "the password alone signs in again"
    );
    let filter = troupe_store::AuditFilter {
        action: Some("auth.mfa_reset".into()),
        ..Default::default()
    };
    let entries = team.node.store().audit_entries(&filter).await.unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].actor, "owner@example.com");
    let (status, _) = team.get(&root, "/api/v1/auth/me").await;
    assert_eq!(status, StatusCode::OK);
}

/// `auth.require_mfa_for`: a reviewer without a second factor, or that reviewer's API
/// key, can do nothing but enrol one; a developer is not concerned.
#[tokio::test]
async fn a_role_that_requires_a_second_factor_may_only_enrol_one_until_it_has() {
    let team = Team::with(|settings| {
        settings.auth.require_mfa_for = vec!["reviewer".into(), "project_owner".into()];
    })
    .await;
    let dev = team.user("dev@example.com", Role::Developer).await;
    let (status, _) = team.get(&dev, "/api/v1/runs").await;
    assert_eq!(status, StatusCode::OK);

    let rita = team.user("rita@example.com", Role::Reviewer).await;
    let pair = team
        .node
        .auth()
        .login("rita@example.com", PASSWORD, None, team.node.audit())
        .await
        .unwrap()
        .into_session()
        .unwrap();
    assert!(pair.mfa_enrolment_required);
    let (status, refused) = team.get(&rita, "/api/v1/runs").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(refused["error"]["code"], "mfa_enrolment_required");
    let (status, refused) = team
        .post(
            &rita,
            "/api/v1/auth/keys",
            json!({ "name": "bypass", "scopes": ["workflows.view"], "password": PASSWORD }),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
    assert_eq!(refused["error"]["code"], "mfa_enrolment_required");

    enrol(&team, &rita, "rita@example.com").await;
    let (status, body) = team.get(&rita, "/api/v1/runs").await;
    assert_eq!(status, StatusCode::OK, "{body}");
}
