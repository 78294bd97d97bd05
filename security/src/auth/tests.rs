//! Sessions on the real SurrealDB engine.

use super::*;
use troupe_store::clock::ManualClock;

fn key_spec(
    name: &str,
    scopes: Vec<Permission>,
    ttl_days: Option<u64>,
    rate: Option<u32>,
) -> KeySpec {
    KeySpec {
        name: name.into(),
        scopes,
        ttl_days,
        rate_per_minute: rate,
        ..KeySpec::default()
    }
}

/// `owner`'s new key, as presented and as stored, or why it was refused.
async fn new_key(
    auth: &Auth,
    audit: &AuditLog,
    owner: &UserRecord,
    spec: KeySpec,
) -> Result<(String, ApiKeyRecord), SecurityError> {
    let owner = stepped_up(auth, audit, owner).await;
    auth.create_api_key(&owner, &spec, audit).await
}

/// `user`, a [`developer`], having confirmed its password.
async fn stepped_up(auth: &Auth, audit: &AuditLog, user: &UserRecord) -> SteppedUp {
    let name = user.email.split('@').next().unwrap();
    let proof = StepUp {
        password: Some(password_of(name)),
        code: None,
    };
    auth.step_up(user, &proof, None, audit).await.unwrap()
}

/// The reason a credential or token was refused. Any other error (a store fault) fails
/// the test: it must never pass for a refusal.
fn refused<T: std::fmt::Debug>(result: Result<T, SecurityError>) -> String {
    match result {
        Err(SecurityError::Unauthorized(reason)) => reason,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// What was wrong with a request the caller can fix.
fn invalid<T: std::fmt::Debug>(result: Result<T, SecurityError>) -> String {
    match result {
        Err(SecurityError::InvalidRequest(reason)) => reason,
        other => panic!("expected an invalid request, got {other:?}"),
    }
}

/// A developer `{name}@example.com` with the password [`password_of`] `name`, and no
/// second factor: the account most tests act as.
async fn developer(auth: &Auth, name: &str) -> UserRecord {
    let email = format!("{name}@example.com");
    auth.create_user(&email, Role::Developer, &password_of(name), false)
        .await
        .unwrap()
}

/// The password [`developer`] gives `name`.
fn password_of(name: &str) -> String {
    format!("{name}'s long password")
}

/// A session for a user without a second factor.
async fn sign_in(auth: &Auth, audit: &AuditLog, email: &str, password: &str) -> TokenPair {
    sign_in_from(auth, audit, ClientInfo::default(), email, password).await
}

/// A session for a user without a second factor, signed in from `client`.
async fn sign_in_from(
    auth: &Auth,
    audit: &AuditLog,
    client: ClientInfo,
    email: &str,
    password: &str,
) -> TokenPair {
    auth.login(email, password, client, audit)
        .await
        .unwrap()
        .into_session()
        .expect("no second factor is on")
}

/// The challenge token a login of [`developer`] `name` answers once a second factor is
/// on; a session instead fails the test.
async fn mfa_challenge(auth: &Auth, audit: &AuditLog, name: &str) -> String {
    let email = format!("{name}@example.com");
    match auth
        .login(&email, &password_of(name), None, audit)
        .await
        .unwrap()
    {
        LoginOutcome::SecondFactor { mfa_token, .. } => mfa_token,
        LoginOutcome::Session(_) => panic!("the second factor was not asked for"),
    }
}

/// `user`'s second-factor secret as the store holds it (sealed) and opened.
async fn mfa_secret(auth: &Auth, user: &UserRecord) -> (String, Vec<u8>) {
    let stored = auth.store().mfa(&user.user_id).await.unwrap().unwrap();
    let secret = auth
        .secrets()
        .open(&format!("mfa:{}", user.user_id), &stored.sealed_secret)
        .unwrap();
    (stored.sealed_secret, secret)
}

/// How many audit entries record `action`.
async fn audited(auth: &Auth, action: &str) -> usize {
    let filter = troupe_store::AuditFilter {
        action: Some(action.into()),
        ..Default::default()
    };
    auth.store().audit_entries(&filter).await.unwrap().len()
}

async fn auth() -> (Auth, AuditLog) {
    let store = Store::memory().await.unwrap();
    let audit = AuditLog::open(store.clone(), None, 100).await.unwrap();
    let config = AuthConfig {
        login_failures: 5,
        login_window_secs: 60,
        access_ttl_secs: 60,
        refresh_ttl_secs: 3600,
        refresh_reuse_grace_secs: 10,
        password_min_length: 12,
        password_max_length: 1024,
        password_cost: password::HashCost {
            memory_kib: 8,
            passes: 1,
        },
        bootstrap_email: "admin@localhost".into(),
        require_mfa_for: Vec::new(),
    };
    (
        Auth::new(store, b"0123456789abcdef0123456789abcdef", "troupe", config),
        audit,
    )
}

#[tokio::test]
async fn the_first_start_makes_one_super_admin_with_a_one_time_password() {
    let (auth, audit) = auth().await;
    let (email, one_time) = auth.bootstrap(&audit).await.unwrap().expect("bootstrapped");
    assert_eq!(email, "admin@localhost");
    assert!(auth.bootstrap(&audit).await.unwrap().is_none(), "only once");
    let pair = sign_in(&auth, &audit, &email, &one_time).await;
    assert!(pair.password_change_required);
    let (_, user) = auth.authenticate(&pair.access_token).await.unwrap();
    assert_eq!(user.role, Role::SuperAdmin);
    auth.change_password(&user, &one_time, "a new long passphrase", &audit)
        .await
        .unwrap();
    // The change ended the session, and the one-time password is gone.
    refused(auth.authenticate(&pair.access_token).await);
    refused(auth.login(&email, &one_time, None, &audit).await);
    assert!(
        !sign_in(&auth, &audit, &email, "a new long passphrase")
            .await
            .password_change_required
    );
}

#[tokio::test]
async fn a_reused_refresh_token_ends_the_whole_session() {
    let (auth, audit) = auth().await;
    let clock = std::sync::Arc::new(ManualClock::starting_at(1_800_000_000_000));
    let auth = auth.with_clock(clock.clone());
    developer(&auth, "ada").await;
    let first = sign_in(&auth, &audit, "ADA@example.com", "ada's long password").await;
    let second = auth.refresh(&first.refresh_token, &audit).await.unwrap();
    assert_ne!(first.refresh_token, second.refresh_token);
    // The first refresh token again, past the grace for tabs: stolen, or a broken
    // client. Both are refused and the newer token of the same family stops working.
    clock.advance_secs(11);
    refused(auth.refresh(&first.refresh_token, &audit).await);
    refused(auth.refresh(&second.refresh_token, &audit).await);
    refused(auth.authenticate(&second.access_token).await);
    // Both refusals are uses of a token that is no longer valid.
    assert_eq!(audited(&auth, "auth.refresh_reuse").await, 2);
}

#[tokio::test]
async fn tokens_of_one_kind_do_not_pass_for_the_other() {
    let (auth, audit) = auth().await;
    developer(&auth, "ada").await;
    let pair = sign_in(&auth, &audit, "ada@example.com", "ada's long password").await;
    refused(auth.refresh(&pair.access_token, &audit).await);
    refused(auth.authenticate(&pair.refresh_token).await);
    refused(auth.principal(&pair.refresh_token).await);
    assert!(auth.authenticate(&pair.access_token).await.is_ok());
    // Neither misuse ended the session.
    assert!(auth.refresh(&pair.refresh_token, &audit).await.is_ok());
}

#[tokio::test]
async fn logout_and_disabling_end_sessions_and_failures_are_audited() {
    let (auth, audit) = auth().await;
    let ada = developer(&auth, "ada").await;
    let pair = sign_in(&auth, &audit, "ada@example.com", "ada's long password").await;
    auth.logout(&pair.refresh_token).await.unwrap();
    refused(auth.authenticate(&pair.access_token).await);
    let pair = sign_in(&auth, &audit, "ada@example.com", "ada's long password").await;
    auth.set_disabled(&ada.user_id, true, "admin", &audit)
        .await
        .unwrap();
    refused(auth.authenticate(&pair.access_token).await);
    refused(
        auth.login("ada@example.com", "ada's long password", None, &audit)
            .await,
    );
    // Wrong password and unknown account fail alike.
    let wrong = refused(auth.login("ada@example.com", "wrong", None, &audit).await);
    let unknown = refused(
        auth.login("nobody@example.com", "wrong", None, &audit)
            .await,
    );
    assert_eq!(wrong, unknown);
    assert_eq!(audited(&auth, "auth.login_failed").await, 3);
}

#[tokio::test]
async fn bad_accounts_are_refused_with_the_reason() {
    let (auth, _) = auth().await;
    for (email, role, password, reason) in [
        (
            "not-an-email",
            Role::Developer,
            "a long enough password",
            "not an email",
        ),
        ("ada@example.com", Role::Developer, "short", "at least 12"),
        (
            "ada' OR 1=1 --@x.y",
            Role::Developer,
            "a long enough password",
            "not an email",
        ),
    ] {
        let error = auth
            .create_user(email, role, password, false)
            .await
            .unwrap_err()
            .to_string();
        assert!(error.contains(reason), "{email}: {error}");
    }
    let viewer = |email| auth.create_user(email, Role::Viewer, "a long enough password", false);
    viewer("ada@example.com").await.unwrap();
    let duplicate = viewer("ADA@example.com").await;
    assert!(duplicate.is_err_and(|e| e.to_string().contains("exists")));
}

#[tokio::test]
async fn a_brute_force_of_a_thousand_passwords_is_stopped_after_a_few() {
    let (auth, audit) = auth().await;
    developer(&auth, "ada").await;
    let client = Some("203.0.113.7".parse().unwrap());
    let started = std::time::Instant::now();
    let mut limited = 0;
    for n in 0..1000 {
        match auth
            .login("ada@example.com", &format!("guess {n}"), client, &audit)
            .await
        {
            Err(SecurityError::RateLimited { retry_after_secs }) => {
                assert!(retry_after_secs >= 1);
                limited += 1;
            }
            Err(SecurityError::Unauthorized(_)) => {}
            other => panic!("guess {n}: {other:?}"),
        }
    }
    assert_eq!(limited, 995, "only the first 5 guesses were checked");
    // Refused before any Argon2 work: a thousand checked guesses would take minutes.
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    // The right password is refused too until the window passes: the guesser cannot
    // tell it from a wrong one.
    let right = auth
        .login("ada@example.com", "ada's long password", client, &audit)
        .await;
    assert!(matches!(right, Err(SecurityError::RateLimited { .. })));
    // Another account from another address is not held up.
    developer(&auth, "bob").await;
    let other = ClientInfo::from(Some("198.51.100.1".parse().unwrap()));
    sign_in_from(
        &auth,
        &audit,
        other,
        "bob@example.com",
        "bob's long password",
    )
    .await;
}

#[tokio::test]
async fn api_keys_are_scoped_hashed_revocable_and_expire() {
    let (auth, audit) = auth().await;
    let dev = developer(&auth, "dev").await;
    let scopes = vec![Permission::WorkflowsExecute];
    let spec = key_spec("ci", scopes.clone(), Some(30), None);
    let (key, record) = new_key(&auth, &audit, &dev, spec).await.unwrap();
    assert!(key.starts_with(&format!("tk_{}_", record.key_id)));
    assert!(!record.secret_hash.is_empty() && !key.contains(&record.secret_hash));
    let (found, owner) = auth.authenticate_key(&key).await.unwrap();
    assert_eq!(
        (found.scopes.clone(), owner.email.as_str()),
        (scopes.clone(), "dev@example.com")
    );
    let stored = auth.store().api_key(&record.key_id).await.unwrap().unwrap();
    assert!(stored.last_used_ms.is_some());
    // A wrong secret for a real id, a made-up key, and a JWT-shaped string are refused.
    let wrong = format!("tk_{}_{}", record.key_id, "0".repeat(64));
    for bad in [
        wrong.as_str(),
        "tk_nope_nope",
        "tk_",
        "eyJhbGciOiJIUzI1NiJ9.e30.x",
    ] {
        refused(auth.authenticate_key(bad).await);
    }
    // Another user cannot revoke it; its owner can.
    let other = developer(&auth, "eve").await;
    let revoke = |user| auth.revoke_api_key(user, &record.key_id, &audit);
    assert!(!revoke(&other).await.unwrap());
    assert!(revoke(&dev).await.unwrap());
    refused(auth.authenticate_key(&key).await);
    // An expired key is refused.
    let spec = key_spec("old", scopes.clone(), Some(0), None);
    let (expired, _) = new_key(&auth, &audit, &dev, spec).await.unwrap();
    assert!(refused(auth.authenticate_key(&expired).await).contains("expired"));
}

#[tokio::test]
async fn a_key_holds_only_scopes_its_owner_holds() {
    let (auth, audit) = auth().await;
    let dev = developer(&auth, "dev").await;
    let approve = vec![Permission::WorkflowsApprove];
    let reason =
        invalid(new_key(&auth, &audit, &dev, key_spec("sneaky", approve, None, None)).await);
    assert!(
        reason.starts_with("scope `workflows.approve` is not one you hold as developer"),
        "{reason}"
    );
    let reason = invalid(new_key(&auth, &audit, &dev, key_spec("none", vec![], None, None)).await);
    assert!(
        reason.starts_with("give the key at least one scope"),
        "{reason}"
    );
}

#[tokio::test]
async fn a_second_factor_is_enrolled_confirmed_and_each_code_works_once() {
    let (auth, audit) = auth().await;
    let user = developer(&auth, "ada").await;
    let enrolment = auth
        .enrol_mfa(&stepped_up(&auth, &audit, &user).await)
        .await
        .unwrap();
    assert!(enrolment.otpauth_uri.contains(&enrolment.secret));
    assert!(enrolment.qr_svg.starts_with("<svg"));
    // The secret is sealed in the store, never kept in the clear.
    let (sealed, secret) = mfa_secret(&auth, &user).await;
    assert!(!sealed.contains(&enrolment.secret));
    let now = SystemClock.now_secs();
    // Not on until confirmed: a password alone still logs in.
    sign_in(&auth, &audit, "ada@example.com", "ada's long password").await;
    let wrong = if totp::code_at(&secret, now) == "000000" {
        "111111"
    } else {
        "000000"
    };
    refused(auth.confirm_mfa(&user, wrong, &audit).await);
    let recovery = auth
        .confirm_mfa(&user, &totp::code_at(&secret, now), &audit)
        .await
        .unwrap();
    assert_eq!(recovery.len(), 10);

    let token = mfa_challenge(&auth, &audit, "ada").await;
    // The challenge is not an access token, and an access token is not a challenge.
    refused(auth.authenticate(&token).await);
    // The code used to confirm is spent: replaying it fails.
    let replayed = auth
        .verify_mfa(&token, &totp::code_at(&secret, now), None, &audit)
        .await;
    refused(replayed);
    let next = totp::code_at(&secret, now + totp::STEP_SECS);
    let pair = auth.verify_mfa(&token, &next, None, &audit).await.unwrap();
    refused(
        auth.verify_mfa(&pair.access_token, &next, None, &audit)
            .await,
    );
    refused(auth.verify_mfa(&token, &next, None, &audit).await);
    // A recovery code works once.
    let fresh = mfa_challenge(&auth, &audit, "ada").await;
    auth.verify_mfa(&fresh, &recovery[0], None, &audit)
        .await
        .unwrap();
    refused(auth.verify_mfa(&fresh, &recovery[0], None, &audit).await);
}

#[tokio::test]
async fn guessing_codes_is_rate_limited() {
    let (auth, audit) = auth().await;
    let user = developer(&auth, "ada").await;
    auth.enrol_mfa(&stepped_up(&auth, &audit, &user).await)
        .await
        .unwrap();
    let (_, secret) = mfa_secret(&auth, &user).await;
    let code = totp::code_at(&secret, SystemClock.now_secs());
    auth.confirm_mfa(&user, &code, &audit).await.unwrap();
    let mfa_token = mfa_challenge(&auth, &audit, "ada").await;
    let mut limited = false;
    for guess in 0..20 {
        match auth
            .verify_mfa(&mfa_token, &format!("{:06}", 999_000 + guess), None, &audit)
            .await
        {
            Err(SecurityError::RateLimited { retry_after_secs }) => {
                assert!(retry_after_secs > 0);
                limited = true;
                break;
            }
            Err(SecurityError::Unauthorized(_)) => {}
            other => panic!("guess {guess}: {other:?}"),
        }
    }
    assert!(limited, "20 wrong codes were all tried");
}

#[tokio::test]
async fn users_list_their_sessions_and_end_one_without_ending_the_others() {
    let (auth, audit) = auth().await;
    let ada = developer(&auth, "ada").await;
    let bob = developer(&auth, "bob").await;
    let from = |device: &str| ClientInfo {
        ip: "203.0.113.7".parse().ok(),
        device: Some(device.into()),
    };
    let as_ada = ("ada@example.com", "ada's long password");
    let laptop = sign_in_from(&auth, &audit, from("Firefox"), as_ada.0, as_ada.1).await;
    let long_agent = from(&"x".repeat(5000));
    let phone = sign_in_from(&auth, &audit, long_agent, as_ada.0, as_ada.1).await;
    let sessions = auth.sessions(&ada).await.unwrap();
    assert_eq!(sessions.len(), 2);
    assert!(
        sessions
            .iter()
            .any(|s| s.device.as_deref() == Some("Firefox"))
    );
    assert!(
        sessions
            .iter()
            .all(|s| s.device.as_ref().unwrap().len() <= 200)
    );
    assert!(
        sessions
            .iter()
            .all(|s| s.client_ip.as_deref() == Some("203.0.113.7"))
    );
    let (laptop_claims, _) = auth.authenticate(&laptop.access_token).await.unwrap();
    // Bob cannot end Ada's session, even knowing its id.
    let end = |user| auth.end_session(user, &laptop_claims.sid, &audit);
    assert!(!end(&bob).await.unwrap());
    assert!(end(&ada).await.unwrap());
    refused(auth.authenticate(&laptop.access_token).await);
    refused(auth.refresh(&laptop.refresh_token, &audit).await);
    assert!(
        auth.authenticate(&phone.access_token).await.is_ok(),
        "the other session goes on"
    );
    assert_eq!(auth.sessions(&ada).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_key_past_its_rate_waits_and_a_refresh_guesser_is_cut_off() {
    let (auth, audit) = auth().await;
    let dev = developer(&auth, "dev").await;
    let scopes = vec![Permission::WorkflowsView];
    let spec = key_spec("dashboard", scopes.clone(), None, Some(3));
    let (key, _) = new_key(&auth, &audit, &dev, spec).await.unwrap();
    for _ in 0..3 {
        auth.authenticate_key(&key).await.unwrap();
    }
    assert!(matches!(
        auth.authenticate_key(&key).await,
        Err(SecurityError::RateLimited { .. })
    ));
    let spec = key_spec("zero", scopes.clone(), None, Some(0));
    let reason = invalid(new_key(&auth, &audit, &dev, spec).await);
    assert!(
        reason.starts_with("`rate_per_minute` must be 1 to"),
        "{reason}"
    );
    let client = "198.51.100.9".parse().ok();
    let mut limited = false;
    for guess in 0..10 {
        match auth
            .refresh_from(&format!("rt_guess{guess}"), client, &audit)
            .await
        {
            Err(SecurityError::RateLimited { .. }) => {
                limited = true;
                break;
            }
            Err(SecurityError::Unauthorized(_)) => {}
            other => panic!("{other:?}"),
        }
    }
    assert!(
        limited,
        "ten wrong refresh tokens from one address were all tried"
    );
}

#[tokio::test]
async fn tokens_and_sessions_expire_on_the_clock_they_were_issued_by() {
    let (auth, audit) = auth().await;
    let clock = std::sync::Arc::new(ManualClock::starting_at(1_800_000_000_000));
    let auth = auth.with_clock(clock.clone());
    developer(&auth, "ada").await;
    let pair = sign_in(&auth, &audit, "ada@example.com", "ada's long password").await;
    auth.authenticate(&pair.access_token).await.unwrap();
    // Access tokens live 60 s here (plus 5 s of leeway for skewed clocks), refresh
    // tokens an hour.
    clock.advance_secs(66);
    let reason = refused(auth.authenticate(&pair.access_token).await);
    assert!(reason.contains("expired"), "{reason}");
    let renewed = auth.refresh(&pair.refresh_token, &audit).await.unwrap();
    auth.authenticate(&renewed.access_token).await.unwrap();
    clock.advance_secs(3600);
    let reason = refused(auth.refresh(&renewed.refresh_token, &audit).await);
    assert!(reason.contains("expired"), "{reason}");
}

/// The attack: a dozen bad refresh tokens from one client locked every other client's
/// refreshes out for the window (the limit was keyed by a constant).
#[tokio::test]
async fn bad_refresh_tokens_from_one_client_lock_out_only_that_client() {
    let (auth, audit) = auth().await;
    developer(&auth, "ada").await;
    let pair = sign_in(&auth, &audit, "ada@example.com", &password_of("ada")).await;
    let attacker = Some(std::net::IpAddr::from([203, 0, 113, 9]));
    for _ in 0..5 {
        refused(auth.refresh_from("rt_made_up", attacker, &audit).await);
    }
    assert!(matches!(
        auth.refresh_from("rt_made_up", attacker, &audit).await,
        Err(SecurityError::RateLimited { .. })
    ));
    let ada = Some(std::net::IpAddr::from([198, 51, 100, 7]));
    let renewed = auth.refresh_from(&pair.refresh_token, ada, &audit).await;
    assert!(renewed.is_ok(), "ada's refresh was refused: {renewed:?}");
}

/// Two tabs refresh with the same token at once (or a request is retried after its
/// answer was lost): both get the one new pair and the session lives on.
#[tokio::test]
async fn a_refresh_token_presented_twice_within_the_grace_gets_the_same_pair() {
    let (auth, audit) = auth().await;
    developer(&auth, "ada").await;
    let pair = sign_in(&auth, &audit, "ada@example.com", &password_of("ada")).await;
    let (one, two) = tokio::join!(
        auth.refresh(&pair.refresh_token, &audit),
        auth.refresh(&pair.refresh_token, &audit)
    );
    let (one, two) = (one.unwrap(), two.unwrap());
    assert_eq!(one, two);
    let retried = auth.refresh(&pair.refresh_token, &audit).await.unwrap();
    assert_eq!(retried, one, "a retry within the grace gets the same pair");
    assert!(auth.authenticate(&one.access_token).await.is_ok());
    assert!(auth.refresh(&one.refresh_token, &audit).await.is_ok());
    assert_eq!(audited(&auth, "auth.refresh_reuse").await, 0);
}

/// The attack: guesses sent in parallel all passed the limit before any failure was
/// counted. Now each is counted before its password is verified.
#[tokio::test]
async fn parallel_password_guesses_are_counted_before_they_are_verified() {
    let (auth, audit) = auth().await;
    developer(&auth, "ada").await;
    let guesses = (0..20).map(|n| {
        let guess = format!("guess number {n:02} of many");
        let auth = &auth;
        let audit = &audit;
        async move { auth.login("ada@example.com", &guess, None, audit).await }
    });
    let outcomes = futures::future::join_all(guesses).await;
    let verified = outcomes
        .iter()
        .filter(|outcome| matches!(outcome, Err(SecurityError::Unauthorized(_))))
        .count();
    let limited = outcomes
        .iter()
        .filter(|outcome| matches!(outcome, Err(SecurityError::RateLimited { .. })))
        .count();
    assert_eq!((verified, limited), (5, 15), "{outcomes:?}");
    assert_eq!(audited(&auth, "auth.login_failed").await, 5);
}

#[tokio::test]
async fn an_oversized_email_or_password_is_refused_before_any_work() {
    let (auth, audit) = auth().await;
    let long_email = format!("{}@example.com", "a".repeat(300));
    let reason = invalid(auth.login(&long_email, "whatever", None, &audit).await);
    assert!(reason.contains("at most 254 bytes"), "{reason}");
    let long_password = "p".repeat(1024 * 4 + 1);
    invalid(
        auth.login("ada@example.com", &long_password, None, &audit)
            .await,
    );
    assert_eq!(audited(&auth, "auth.login_failed").await, 0);
}

/// The attack: anyone could keep an account locked for good by failing its login from
/// anywhere, five times per window. Now its owner waits seconds, not forever.
#[tokio::test]
async fn failing_on_purpose_slows_an_account_down_but_never_locks_its_owner_out() {
    let (auth, audit) = auth().await;
    developer(&auth, "admin").await;
    let attacker = ClientInfo::from(Some("203.0.113.66".parse().unwrap()));
    for n in 0..5 {
        refused(
            auth.login(
                "admin@example.com",
                &format!("guess {n}"),
                attacker.clone(),
                &audit,
            )
            .await,
        );
    }
    let owner = ClientInfo::from(Some("198.51.100.20".parse().unwrap()));
    let wait = match auth
        .login(
            "admin@example.com",
            &password_of("admin"),
            owner.clone(),
            &audit,
        )
        .await
    {
        Err(SecurityError::RateLimited { retry_after_secs }) => retry_after_secs,
        other => panic!("expected a back-off, got {other:?}"),
    };
    assert_eq!(wait, 1, "the first back-off is a second");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    sign_in_from(
        &auth,
        &audit,
        owner,
        "admin@example.com",
        &password_of("admin"),
    )
    .await;
}

/// A token naming one user and another user's session (a bug, or a leaked signing key
/// used carelessly) is refused: the session must be the subject's own.
#[tokio::test]
async fn a_token_for_another_users_session_is_refused() {
    let (auth, audit) = auth().await;
    developer(&auth, "ada").await;
    let bob = developer(&auth, "bob").await;
    let ada_pair = sign_in(&auth, &audit, "ada@example.com", &password_of("ada")).await;
    let (ada_claims, _) = auth.authenticate(&ada_pair.access_token).await.unwrap();
    let keys = TokenKeys::new(b"0123456789abcdef0123456789abcdef", "troupe", "troupe-api");
    let crossed = keys
        .issue_access(
            &bob.user_id,
            Role::Developer,
            &ada_claims.sid,
            SystemClock.now_secs(),
            60,
        )
        .unwrap();
    let reason = refused(auth.authenticate(&crossed).await);
    assert_eq!(reason, "the session has ended");
}

/// Whoever learnt the old password may have made an API key with it: a password change
/// revokes them all, as it ends every session.
#[tokio::test]
async fn a_password_change_revokes_the_accounts_api_keys() {
    let (auth, audit) = auth().await;
    let ada = developer(&auth, "ada").await;
    let spec = key_spec("ci", vec![Permission::WorkflowsView], None, None);
    let (key, _) = new_key(&auth, &audit, &ada, spec).await.unwrap();
    auth.authenticate_key(&key).await.unwrap();
    auth.change_password(&ada, &password_of("ada"), "a brand new passphrase", &audit)
        .await
        .unwrap();
    refused(auth.authenticate_key(&key).await);
}

/// The caller cache skips a known token's signature check, never its expiry: a token
/// served from the cache still ends on time.
#[tokio::test]
async fn a_cached_access_token_still_expires() {
    let (auth, audit) = auth().await;
    let clock = std::sync::Arc::new(ManualClock::starting_at(1_800_000_000_000));
    let auth = auth.with_clock(clock.clone());
    developer(&auth, "ada").await;
    let pair = sign_in(&auth, &audit, "ada@example.com", &password_of("ada")).await;
    auth.principal(&pair.access_token).await.unwrap();
    auth.principal(&pair.access_token).await.unwrap();
    // 60 s of life plus 5 s of leeway.
    clock.advance_secs(66);
    assert_eq!(refused(auth.principal(&pair.access_token).await), "expired");
}

/// `examples/team.toml` requires a second factor from reviewers up; a role's name that
/// is not one is refused, naming the setting.
#[tokio::test]
async fn the_team_example_requires_a_second_factor_from_reviewers_up() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/team.toml");
    let mut settings = troupe_config::Layers::new().file(example).load().unwrap();
    settings.store.url = "mem://".into();
    let store = Store::memory().await.unwrap();
    let auth = Auth::from_settings(store.clone(), &settings).unwrap();
    assert_eq!(
        auth.config.require_mfa_for,
        [
            Role::Reviewer,
            Role::ProjectOwner,
            Role::OrgOwner,
            Role::SuperAdmin
        ]
    );
    settings.auth.require_mfa_for = vec!["king".into()];
    let reason = invalid(Auth::from_settings(store, &settings).map(|_| ()));
    assert!(
        reason.starts_with("auth.require_mfa_for: ") && reason.contains("`king`"),
        "{reason}"
    );
}
