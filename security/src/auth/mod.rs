//! Accounts and sessions: Argon2id passwords (`password`), HS256 access tokens
//! (`tokens`), and rotating refresh tokens stored hashed, one family per session. A
//! rotated refresh token used again revokes its whole family; so do logout, a password
//! change and disabling the user.
//!
//! Who may do what is `access` (a caller's roles, per project) over `permissions` (what
//! each role holds); the API's guard asks them on every route.

pub mod access;
mod callers;
pub mod limiter;
mod mfa;
pub mod password;
pub mod permissions;
mod rotation;
mod step_up;
pub mod tokens;
pub mod totp;

pub use mfa::{Enrolment, LoginOutcome};
pub use step_up::{StepUp, SteppedUp};

use serde::{Deserialize, Serialize};

use crate::SecurityError;
use crate::audit::{AuditAction, AuditLog};
use crate::secrets::SecretBox;
use permissions::{Permission, Role};
use tokens::{Claims, TokenKeys};
use troupe_store::clock::{Clock, SystemClock};
use troupe_store::digest;
use troupe_store::{
    ApiKeyRecord, ProjectId, RefreshRecord, SessionRecord, Store, UserId, UserRecord,
};

/// Where a sign-in comes from: the client's address (after trusted proxies) and its
/// `User-Agent`, shown in the user's list of sessions.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClientInfo {
    pub ip: Option<std::net::IpAddr>,
    pub device: Option<String>,
}

impl From<Option<std::net::IpAddr>> for ClientInfo {
    fn from(ip: Option<std::net::IpAddr>) -> Self {
        Self { ip, device: None }
    }
}

/// An API key to make: `POST /api/v1/auth/keys` takes this as its body.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
pub struct KeySpec {
    pub name: String,
    /// Permissions the key may use; each one its owner's role holds.
    pub scopes: Vec<Permission>,
    /// Projects the key may reach; empty: every project its owner may.
    #[serde(default)]
    pub projects: Vec<ProjectId>,
    pub ttl_days: Option<u64>,
    /// Requests a minute the key may make; past it, 429 with Retry-After.
    pub rate_per_minute: Option<u32>,
}

/// What a login or a refresh returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: u64,
    /// The password is a first, one-time one and must be changed.
    pub password_change_required: bool,
    /// The account's role needs a second factor (`auth.require_mfa_for`) and it has
    /// none: until it enrols one, it may only do that.
    #[serde(default)]
    pub mfa_enrolment_required: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AuthConfig {
    /// Failed logins per account and per client address in `login_window_secs`.
    pub login_failures: u32,
    pub login_window_secs: u64,
    pub access_ttl_secs: u64,
    pub refresh_ttl_secs: u64,
    /// How long a rotated refresh token, presented again, gets the pair its rotation
    /// gave instead of ending the session (two tabs refreshing at once).
    pub refresh_reuse_grace_secs: u64,
    pub password_min_length: usize,
    pub password_max_length: usize,
    /// What hashing a new password costs.
    pub password_cost: password::HashCost,
    /// The first super admin's email, made at the first start of an empty store.
    pub bootstrap_email: String,
    /// Roles whose accounts must have a second factor.
    pub require_mfa_for: Vec<Role>,
}

pub struct Auth {
    store: Store,
    keys: TokenKeys,
    /// Seals MFA secrets before they reach the store.
    secrets: std::sync::Arc<SecretBox>,
    config: AuthConfig,
    failures: limiter::FailureLimiter,
    /// Failed logins and codes per account, spaced out rather than locked.
    account_backoff: limiter::Backoff,
    /// Refreshes in their grace period, by the token presented.
    rotations: rotation::Rotations,
    /// Argon2, off the async workers.
    passwords: password::PasswordWork,
    /// Requests per API key in the current minute.
    key_rates: limiter::FailureLimiter,
    /// Principals by token, emptied by every change they depend on.
    callers: callers::CallerCache,
    /// When each key's last use was last written.
    key_touched: std::sync::Mutex<std::collections::HashMap<String, std::time::Instant>>,
    /// Where expiry and creation times come from: the wall clock in a node.
    clock: std::sync::Arc<dyn Clock>,
    /// A hash (at this node's cost) to verify against when an account does not exist, so
    /// that a wrong email takes as long as a wrong password. Made at the first login.
    decoy: tokio::sync::OnceCell<String>,
}

const KEY_USE_RESOLUTION: std::time::Duration = std::time::Duration::from_secs(60);

fn token_hash(token: &str) -> String {
    digest::sha256_hex(token)
}

fn random_token(prefix: &str) -> String {
    format!("{prefix}{}", digest::hex(&digest::random_bytes::<32>()))
}

impl Auth {
    /// Accounts as the settings describe them. The token signing key comes from
    /// `auth.dir`, else from beside an embedded store; a `mem://` or `ws://` store
    /// without `auth.dir` gets a key that lives as long as the process.
    pub fn from_settings(
        store: Store,
        settings: &troupe_config::Settings,
    ) -> Result<Self, SecurityError> {
        let auth = &settings.auth;
        let key = match troupe_store::key_file::dir_beside_store(
            &auth.dir,
            &settings.store.url,
            "auth",
        ) {
            Some(dir) => troupe_store::key_file::load_or_create(&dir.join("jwt.key"))?,
            None => digest::random_bytes::<32>().to_vec(),
        };
        let length = |value: u64| usize::try_from(value).unwrap_or(usize::MAX);
        let secrets = std::sync::Arc::new(SecretBox::from_settings(settings)?);
        Ok(Self::with_secrets(
            secrets,
            store,
            &key,
            &auth.issuer,
            AuthConfig {
                login_failures: u32::try_from(auth.login_failures).unwrap_or(u32::MAX),
                login_window_secs: auth.login_window_secs,
                access_ttl_secs: auth.access_ttl_secs,
                refresh_ttl_secs: auth.refresh_ttl_secs,
                refresh_reuse_grace_secs: auth.refresh_reuse_grace_secs,
                password_min_length: length(auth.password_min_length),
                password_max_length: length(auth.password_max_length),
                password_cost: password::HashCost {
                    memory_kib: auth.password_hash_memory_kib,
                    passes: auth.password_hash_passes,
                },
                bootstrap_email: auth.bootstrap_email.clone(),
                require_mfa_for: roles_needing_mfa(&auth.require_mfa_for)?,
            },
        ))
    }

    /// Accounts whose MFA secrets are sealed with a key that lives as long as the process.
    pub fn new(store: Store, secret: &[u8], issuer: &str, config: AuthConfig) -> Self {
        let secrets = std::sync::Arc::new(SecretBox::ephemeral());
        Self::with_secrets(secrets, store, secret, issuer, config)
    }

    pub fn with_secrets(
        secrets: std::sync::Arc<SecretBox>,
        store: Store,
        secret: &[u8],
        issuer: &str,
        config: AuthConfig,
    ) -> Self {
        Self {
            secrets,
            store,
            keys: TokenKeys::new(secret, issuer, "troupe-api"),
            key_rates: limiter::FailureLimiter::new(1, std::time::Duration::from_secs(60)),
            key_touched: std::sync::Mutex::new(std::collections::HashMap::new()),
            decoy: tokio::sync::OnceCell::new(),
            rotations: rotation::Rotations::new(config.refresh_reuse_grace_secs),
            account_backoff: limiter::Backoff::new(
                config.login_failures,
                ACCOUNT_MAX_WAIT,
                std::time::Duration::from_secs(config.login_window_secs),
            ),
            passwords: password::PasswordWork::new(config.password_cost),
            clock: std::sync::Arc::new(SystemClock),
            callers: callers::CallerCache::default(),
            failures: limiter::FailureLimiter::new(
                config.login_failures,
                std::time::Duration::from_secs(config.login_window_secs),
            ),
            config,
        }
    }

    /// Creates a user of the default organisation with `password` (checked against the
    /// policy).
    pub async fn create_user(
        &self,
        email: &str,
        role: Role,
        password: &str,
        must_change_password: bool,
    ) -> Result<UserRecord, SecurityError> {
        self.create_user_in(
            troupe_store::DEFAULT_ORG,
            email,
            role,
            password,
            must_change_password,
        )
        .await
    }

    /// `create_user` in organisation `org`, every field checked.
    pub async fn create_user_in(
        &self,
        org: &str,
        email: &str,
        role: Role,
        password: &str,
        must_change_password: bool,
    ) -> Result<UserRecord, SecurityError> {
        check_org(org)?;
        let email = email.trim();
        if !email.contains('@') || email.len() > 254 || email.chars().any(char::is_whitespace) {
            return Err(SecurityError::InvalidRequest(format!(
                "`{email}` is not an email address"
            )));
        }
        password::check_policy(
            password,
            self.config.password_min_length,
            self.config.password_max_length,
        )?;
        let user = UserRecord {
            user_id: UserId::generate(),
            email: email.to_lowercase(),
            role,
            disabled: false,
            must_change_password,
            created_at_ms: self.now_ms(),
            org: org.into(),
            password_hash: self.passwords.hash(password).await?,
        };
        self.store.insert_user(&user).await?;
        Ok(user)
    }

    /// A new account with a one-time password (to show once; it must be changed at the
    /// first login), audited as made `by`.
    pub async fn invite(
        &self,
        org: &str,
        email: &str,
        role: Role,
        by: &str,
        audit: &AuditLog,
    ) -> Result<(UserRecord, String), SecurityError> {
        let one_time = password::generate();
        let user = self
            .create_user_in(org, email, role, &one_time, true)
            .await?;
        audit
            .record(
                by,
                AuditAction::UserCreate {
                    email: user.email.clone(),
                    role,
                    org: Some(user.org.clone()),
                    bootstrap: false,
                },
                user.user_id.as_str(),
            )
            .await?;
        Ok((user, one_time))
    }

    /// The first super admin, when there is no user at all: its one-time password, to
    /// be shown once.
    pub async fn bootstrap(
        &self,
        audit: &AuditLog,
    ) -> Result<Option<(String, String)>, SecurityError> {
        if self.store.has_users().await? {
            return Ok(None);
        }
        let email = self.config.bootstrap_email.as_str();
        let one_time = password::generate();
        let user = self
            .create_user(email, Role::SuperAdmin, &one_time, true)
            .await?;
        audit
            .record(
                "system",
                AuditAction::UserCreate {
                    email: email.into(),
                    role: Role::SuperAdmin,
                    org: None,
                    bootstrap: true,
                },
                user.user_id.as_str(),
            )
            .await?;
        Ok(Some((email.into(), one_time)))
    }

    /// Logs in; `client` is the caller's address (after trusted proxies), when known.
    pub async fn login(
        &self,
        email: &str,
        password: &str,
        client: impl Into<ClientInfo>,
        audit: &AuditLog,
    ) -> Result<LoginOutcome, SecurityError> {
        let client = client.into();
        // Refused before any work: no account has such an email or password.
        if email.len() > MAX_EMAIL_BYTES || password.len() > self.config.password_max_length * 4 {
            return Err(SecurityError::InvalidRequest(format!(
                "an email is at most {MAX_EMAIL_BYTES} bytes and a password at most {} characters",
                self.config.password_max_length
            )));
        }
        let attempt = Attempt::new("login", Some(&email.trim().to_lowercase()), client.ip);
        self.count_attempt(&attempt)?;
        let user = self.store.user_by_email(email.trim()).await?;
        let phc = match &user {
            Some(user) => user.password_hash.as_str(),
            None => self.decoy().await,
        };
        // Verified even for an unknown email, so both failures take the same time.
        let matches = self.passwords.verify(password, phc).await;
        let user = match user {
            Some(user) if matches && !user.disabled => {
                self.succeeded(&attempt);
                user
            }
            _ => {
                let client = client.ip.map(|ip| ip.to_string());
                audit
                    .record(email, AuditAction::AuthLoginFailed { client }, email)
                    .await?;
                return Err(SecurityError::Unauthorized(
                    "wrong email or password".into(),
                ));
            }
        };
        let outcome = self.after_password(&user, &client).await?;
        let action = match outcome {
            LoginOutcome::Session(_) => AuditAction::AuthLogin {
                second_factor: None,
            },
            LoginOutcome::SecondFactor { .. } => AuditAction::AuthLoginPasswordOk {},
        };
        audit
            .record(&user.email, action, user.user_id.as_str())
            .await?;
        Ok(outcome)
    }

    /// Opens session `family` for `user` as seen from `client`.
    async fn open_session(
        &self,
        user: &UserRecord,
        client: &ClientInfo,
    ) -> Result<TokenPair, SecurityError> {
        let family = uuid::Uuid::now_v7().to_string();
        self.store
            .insert_session(&SessionRecord {
                session_id: family.clone(),
                user_id: user.user_id.clone(),
                created_at_ms: self.now_ms(),
                last_used_ms: self.now_ms(),
                device: client
                    .device
                    .as_ref()
                    .map(|agent| agent.chars().take(200).collect()),
                client_ip: client.ip.map(|ip| ip.to_string()),
            })
            .await?;
        self.issue(user, &family).await
    }

    async fn issue(&self, user: &UserRecord, family: &str) -> Result<TokenPair, SecurityError> {
        let refresh_token = random_token("rt_");
        self.store
            .insert_refresh(&RefreshRecord {
                token_hash: token_hash(&refresh_token),
                family: family.into(),
                user_id: user.user_id.clone(),
                expires_at_ms: self.now_ms() + (self.config.refresh_ttl_secs as i64) * 1000,
                used: false,
                revoked: false,
            })
            .await?;
        let access_token = self.keys.issue_access(
            &user.user_id,
            user.role,
            family,
            self.now_secs(),
            self.config.access_ttl_secs,
        )?;
        Ok(TokenPair {
            access_token,
            refresh_token,
            expires_in: self.config.access_ttl_secs,
            password_change_required: user.must_change_password,
            mfa_enrolment_required: self.mfa_missing(user).await?,
        })
    }

    /// A new pair for a refresh token, which is used up. Presented again within
    /// `refresh_reuse_grace_secs` it gets the same new pair (two tabs, a retry); later,
    /// a token used a second time means it was stolen (or the client is broken): the
    /// whole session ends.
    pub async fn refresh(
        &self,
        refresh_token: &str,
        audit: &AuditLog,
    ) -> Result<TokenPair, SecurityError> {
        let hash = token_hash(refresh_token);
        self.rotations
            .of(&hash, self.now_ms())
            .get_or_try_init(|| self.rotate(&hash, audit))
            .await
            .cloned()
    }

    async fn rotate(&self, hash: &str, audit: &AuditLog) -> Result<TokenPair, SecurityError> {
        let unauthorized = || SecurityError::Unauthorized("refresh token not valid".into());
        let record = self
            .store
            .take_refresh(hash)
            .await?
            .ok_or_else(unauthorized)?;
        if record.used || record.revoked {
            self.revoke_family(&record.family).await?;
            audit
                .record(
                    record.user_id.as_str(),
                    AuditAction::AuthRefreshReuse {
                        revoked_session: true,
                    },
                    &record.family,
                )
                .await?;
            return Err(unauthorized());
        }
        if record.expires_at_ms <= self.now_ms() {
            return Err(SecurityError::Unauthorized("refresh token expired".into()));
        }
        let user = self
            .active_user(&record.user_id)
            .await?
            .ok_or_else(unauthorized)?;
        self.store
            .touch_session(&record.family, self.now_ms())
            .await?;
        self.issue(&user, &record.family).await
    }

    /// `refresh`, with failures limited per client address like failed logins: one
    /// client's bad tokens lock out that client, never anyone else's refreshes.
    pub async fn refresh_from(
        &self,
        refresh_token: &str,
        client: Option<std::net::IpAddr>,
        audit: &AuditLog,
    ) -> Result<TokenPair, SecurityError> {
        let attempt = Attempt::new("refresh", None, client);
        self.count_attempt(&attempt)?;
        let refreshed = self.refresh(refresh_token, audit).await;
        if !matches!(refreshed, Err(SecurityError::Unauthorized(_))) {
            self.succeeded(&attempt);
        }
        refreshed
    }

    /// The user's open sessions.
    pub async fn sessions(&self, user: &UserRecord) -> Result<Vec<SessionRecord>, SecurityError> {
        Ok(self.store.open_sessions(&user.user_id).await?)
    }

    /// Ends one of the user's own sessions; false when they have no such open session.
    pub async fn end_session(
        &self,
        user: &UserRecord,
        session_id: &str,
        audit: &AuditLog,
    ) -> Result<bool, SecurityError> {
        let owned = self
            .store
            .session(session_id)
            .await?
            .is_some_and(|session| session.user_id == user.user_id);
        if owned {
            self.revoke_family(session_id).await?;
            audit
                .record(&user.email, AuditAction::AuthSessionEnd {}, session_id)
                .await?;
        }
        Ok(owned)
    }

    /// Ends the session a refresh token belongs to.
    pub async fn logout(&self, refresh_token: &str) -> Result<(), SecurityError> {
        if let Some(record) = self.store.take_refresh(&token_hash(refresh_token)).await? {
            self.revoke_family(&record.family).await?;
        }
        Ok(())
    }

    /// The user `user_id`, when it exists and is not disabled.
    async fn active_user(&self, user_id: &UserId) -> Result<Option<UserRecord>, SecurityError> {
        Ok(self
            .store
            .user_by_id(user_id)
            .await?
            .filter(|user| !user.disabled))
    }

    /// The user behind a bearer access token, checked against the store: a disabled
    /// user or an ended session is refused even while the token has not expired.
    pub async fn authenticate(&self, bearer: &str) -> Result<(Claims, UserRecord), SecurityError> {
        let claims = self.keys.verify_access(bearer, self.now_secs())?;
        let user = self.user_of(&claims).await?;
        Ok((claims, user))
    }

    /// The user of verified access-token claims, if it is active and the session open.
    async fn user_of(&self, claims: &Claims) -> Result<UserRecord, SecurityError> {
        let user = self
            .active_user(&claims.sub)
            .await?
            .ok_or_else(|| SecurityError::Unauthorized("the account is disabled".into()))?;
        if !self.store.session_open(&claims.sid, &claims.sub).await? {
            return Err(SecurityError::Unauthorized("the session has ended".into()));
        }
        Ok(user)
    }

    pub async fn change_password(
        &self,
        user: &UserRecord,
        current: &str,
        new: &str,
        audit: &AuditLog,
    ) -> Result<(), SecurityError> {
        if !self.passwords.verify(current, &user.password_hash).await {
            return Err(SecurityError::Unauthorized(
                "the current password is wrong".into(),
            ));
        }
        password::check_policy(
            new,
            self.config.password_min_length,
            self.config.password_max_length,
        )?;
        self.store
            .set_password(&user.user_id, &self.passwords.hash(new).await?)
            .await?;
        // Whoever knew the old password may have opened sessions or made keys with it.
        self.store.revoke_api_keys_of(&user.user_id).await?;
        self.revoke_user_sessions(&user.user_id).await?;
        audit
            .record(
                &user.email,
                AuditAction::AuthPasswordChange {},
                user.user_id.as_str(),
            )
            .await?;
        Ok(())
    }

    pub async fn set_disabled(
        &self,
        user_id: &UserId,
        disabled: bool,
        by: &str,
        audit: &AuditLog,
    ) -> Result<(), SecurityError> {
        self.store
            .user_by_id(user_id)
            .await?
            .ok_or_else(|| SecurityError::InvalidRequest(format!("no user `{user_id}`")))?;
        self.store.set_user_disabled(user_id, disabled).await?;
        self.invalidate_callers();
        if disabled {
            self.revoke_user_sessions(user_id).await?;
        }
        let action = if disabled {
            AuditAction::UserDisable {}
        } else {
            AuditAction::UserEnable {}
        };
        audit.record(by, action, user_id.as_str()).await?;
        Ok(())
    }

    /// A user by email or by id.
    pub async fn find_user(&self, email_or_id: &str) -> Result<Option<UserRecord>, SecurityError> {
        if email_or_id.contains('@') {
            Ok(self.store.user_by_email(email_or_id).await?)
        } else {
            Ok(self.store.user_by_id(&email_or_id.into()).await?)
        }
    }

    /// The same accounts on another clock (tests move time instead of waiting for it).
    pub fn with_clock(mut self, clock: std::sync::Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Seconds since the epoch by the clock tokens are judged with.
    pub fn now_secs(&self) -> u64 {
        self.clock.now_secs()
    }

    async fn decoy(&self) -> &str {
        self.decoy
            .get_or_init(|| async {
                self.passwords
                    .hash("decoy password that matches nothing")
                    .await
                    .unwrap_or_default()
            })
            .await
    }

    pub fn secrets(&self) -> &SecretBox {
        &self.secrets
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    // ---- API keys --------------------------------------------------------------

    /// A key for `owner`, scoped to `scopes` (each one the owner holds) and optionally
    /// to projects, expiring after `ttl_days` when given. The key (`tk_<id>_<secret>`)
    /// is returned this once; only its secret's SHA-256 is kept.
    pub async fn create_api_key(
        &self,
        owner: &SteppedUp,
        spec: &KeySpec,
        audit: &AuditLog,
    ) -> Result<(String, ApiKeyRecord), SecurityError> {
        let owner = owner.user();
        if self.mfa_missing(owner).await? {
            return Err(SecurityError::StepUp(
                "your role needs a second factor: enrol one before making API keys".into(),
            ));
        }
        let KeySpec {
            name,
            scopes,
            projects,
            ttl_days,
            rate_per_minute,
        } = spec;
        let (ttl_days, rate_per_minute) = (*ttl_days, *rate_per_minute);
        if rate_per_minute.is_some_and(|rate| !(1..=1_000_000).contains(&rate)) {
            return Err(SecurityError::InvalidRequest(
                "`rate_per_minute` must be 1 to 1000000, or left out for no limit".into(),
            ));
        }
        if name.trim().is_empty() || name.len() > 100 {
            return Err(SecurityError::InvalidRequest(
                "`name` must hold 1 to 100 characters".into(),
            ));
        }
        let granted = permissions::of_role(owner.role);
        if scopes.is_empty() {
            return Err(SecurityError::InvalidRequest(format!(
                "give the key at least one scope; yours are {}",
                permissions::listed(&granted)
            )));
        }
        if let Some(extra) = scopes.iter().find(|scope| !granted.contains(scope)) {
            return Err(SecurityError::InvalidRequest(format!(
                "scope `{extra}` is not one you hold as {}; yours are {}",
                owner.role,
                permissions::listed(&granted)
            )));
        }
        let key_id = digest::hex(&digest::random_bytes::<6>());
        let secret = random_token("");
        let record = ApiKeyRecord {
            key_id: key_id.clone(),
            name: name.trim().into(),
            user_id: owner.user_id.clone(),
            scopes: scopes.to_vec(),
            projects: projects.to_vec(),
            created_at_ms: self.now_ms(),
            expires_at_ms: ttl_days.map(|days| self.now_ms() + (days as i64) * 86_400_000),
            last_used_ms: None,
            rate_per_minute,
            revoked: false,
            secret_hash: token_hash(&secret),
        };
        self.store.insert_api_key(&record).await?;
        audit
            .record(
                &owner.email,
                AuditAction::ApiKeyCreate {
                    name: record.name.clone(),
                    scopes: scopes.clone(),
                    projects: projects.clone(),
                },
                &key_id,
            )
            .await?;
        Ok((format!("tk_{key_id}_{secret}"), record))
    }

    /// The key and its owner behind a `tk_...` bearer; its last use is recorded.
    pub async fn authenticate_key(
        &self,
        presented: &str,
    ) -> Result<(ApiKeyRecord, UserRecord), SecurityError> {
        let refused = || SecurityError::Unauthorized("API key not valid".into());
        let (key_id, secret) = presented
            .strip_prefix("tk_")
            .and_then(|rest| rest.split_once('_'))
            .ok_or_else(refused)?;
        let key = self.store.api_key(key_id).await?.ok_or_else(refused)?;
        if !constant_time_eq(token_hash(secret).as_bytes(), key.secret_hash.as_bytes())
            || key.revoked
        {
            return Err(refused());
        }
        if key.expires_at_ms.is_some_and(|at| at <= self.now_ms()) {
            return Err(SecurityError::Unauthorized("API key expired".into()));
        }
        let user = self
            .active_user(&key.user_id)
            .await?
            .ok_or_else(|| SecurityError::Unauthorized("the key's owner is disabled".into()))?;
        self.admit_key(&key)?;
        self.note_key_use(&key.key_id).await;
        Ok((key, user))
    }

    /// The key's own request rate.
    fn admit_key(&self, key: &ApiKeyRecord) -> Result<(), SecurityError> {
        match key
            .rate_per_minute
            .map(|rate| self.key_rates.admit(&key.key_id, rate))
        {
            Some(Err(retry_after_secs)) => Err(SecurityError::RateLimited { retry_after_secs }),
            _ => Ok(()),
        }
    }

    async fn revoke_family(&self, family: &str) -> Result<(), SecurityError> {
        self.store.revoke_family(family).await?;
        self.invalidate_callers();
        Ok(())
    }

    async fn revoke_user_sessions(&self, user_id: &UserId) -> Result<(), SecurityError> {
        self.store.revoke_user_sessions(user_id).await?;
        self.invalidate_callers();
        Ok(())
    }

    /// Records a key's last use at most once a minute, and never fails the request for
    /// it: a write per request made concurrent requests of one key conflict in the store
    /// (found by `troupe bench auth`), and "last used" needs minutes, not microseconds.
    async fn note_key_use(&self, key_id: &str) {
        let due = self.key_touched.lock().is_ok_and(|mut touched| {
            let now = std::time::Instant::now();
            let due = touched
                .get(key_id)
                .is_none_or(|at| now.duration_since(*at) >= KEY_USE_RESOLUTION);
            if due {
                if touched.len() >= 100_000 {
                    touched.clear();
                }
                touched.insert(key_id.to_owned(), now);
            }
            due
        });
        if due && let Err(error) = self.store.touch_api_key(key_id, self.now_ms()).await {
            tracing::warn!(key_id, %error, "could not record an API key's last use");
        }
    }

    pub async fn revoke_api_key(
        &self,
        owner: &UserRecord,
        key_id: &str,
        audit: &AuditLog,
    ) -> Result<bool, SecurityError> {
        let revoked = self.store.revoke_api_key(&owner.user_id, key_id).await?;
        self.invalidate_callers();
        if revoked {
            audit
                .record(&owner.email, AuditAction::ApiKeyRevoke {}, key_id)
                .await?;
        }
        Ok(revoked)
    }
}

/// What one attempt at a secret (a password, a code) is counted under: its account and
/// the client's address, each with its own window.
/// The longest an account's sign-ins are spaced out after repeated failures: whoever
/// fails on purpose slows its owner down to this, never locks them out.
const ACCOUNT_MAX_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// The longest email address SMTP allows (RFC 5321's path limit, less the brackets).
const MAX_EMAIL_BYTES: usize = 254;

/// What an attempt is limited by: the account it names (when it names one) and the
/// client it comes from.
struct Attempt {
    account: Option<String>,
    client: Option<String>,
}

impl Attempt {
    fn new(what: &str, account: Option<&str>, client: Option<std::net::IpAddr>) -> Self {
        Self {
            account: account.map(|account| format!("{what}:account:{account}")),
            client: client.map(|ip| format!("{what}:client:{ip}")),
        }
    }
}

impl Auth {
    /// Counts the attempt as failed from the start, so that guesses sent in parallel are
    /// all counted before any is verified; `RateLimited` once the client used up its
    /// failures, or while the account backs off (nothing is counted then).
    fn count_attempt(&self, attempt: &Attempt) -> Result<(), SecurityError> {
        let limited = |retry_after_secs| SecurityError::RateLimited { retry_after_secs };
        if let Some(client) = &attempt.client {
            self.failures.begin(client).map_err(limited)?;
        }
        if let Some(account) = &attempt.account
            && let Err(wait) = self.account_backoff.begin(account)
        {
            if let Some(client) = &attempt.client {
                self.failures.forgive(client);
            }
            return Err(limited(wait));
        }
        Ok(())
    }

    /// Takes back what `count_attempt` counted: the attempt succeeded.
    fn succeeded(&self, attempt: &Attempt) {
        if let Some(client) = &attempt.client {
            self.failures.forgive(client);
        }
        if let Some(account) = &attempt.account {
            self.account_backoff.forgive(account);
        }
    }
}

/// `auth.require_mfa_for`, read: each entry a role's name.
fn roles_needing_mfa(names: &[String]) -> Result<Vec<Role>, SecurityError> {
    names
        .iter()
        .map(|name| {
            name.parse().map_err(|error| {
                SecurityError::InvalidRequest(format!("auth.require_mfa_for: {error}"))
            })
        })
        .collect()
}

/// Organisation names are slugs, like project ids: `[a-z0-9_-]{1,64}`.
pub fn check_org(org: &str) -> Result<(), SecurityError> {
    let valid = !org.is_empty()
        && org.len() <= 64
        && org
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if valid {
        Ok(())
    } else {
        Err(SecurityError::InvalidRequest(format!(
            "organisation `{org}` must match [a-z0-9_-]{{1,64}}"
        )))
    }
}

/// Equality that takes as long for a near miss as for a far one.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod hostile;
#[cfg(test)]
mod tests;
