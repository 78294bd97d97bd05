//! The second factor: TOTP enrolment (confirmed by a first code before it counts),
//! the login challenge, and recovery codes. Attempts are limited like password
//! attempts, per account and per client address.

use serde::Serialize;

use super::permissions::Role;
use super::step_up::SteppedUp;
use super::{Attempt, Auth, ClientInfo, TokenPair, token_hash, totp};
use crate::SecurityError;
use crate::audit::{AuditAction, AuditLog, SecondFactor};
use troupe_store::digest;
use troupe_store::{MfaRecord, UserId, UserRecord};

const RECOVERY_CODES: usize = 10;

/// What enrolment shows once: the secret for manual entry, and as a QR code.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Enrolment {
    pub secret: String,
    pub otpauth_uri: String,
    /// An SVG image of `otpauth_uri`.
    pub qr_svg: String,
}

impl LoginOutcome {
    /// The session, when no second factor was asked for.
    pub fn into_session(self) -> Option<TokenPair> {
        match self {
            LoginOutcome::Session(pair) => Some(pair),
            LoginOutcome::SecondFactor { .. } => None,
        }
    }
}

/// What a password login answers: a session, or a challenge for the second factor.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum LoginOutcome {
    Session(TokenPair),
    SecondFactor {
        mfa_required: bool,
        /// Exchange with a code at `POST /api/v1/auth/mfa/verify` within 5 minutes.
        mfa_token: String,
    },
}

fn sealed_name(user_id: &UserId) -> String {
    format!("mfa:{user_id}")
}

fn recovery_code() -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    digest::random_bytes::<10>()
        .iter()
        .map(|byte| char::from(ALPHABET[usize::from(*byte) % ALPHABET.len()]))
        .collect()
}

impl Auth {
    /// Starts (or restarts) enrolment; the factor counts once `confirm_mfa` saw a code.
    pub async fn enrol_mfa(&self, owner: &SteppedUp) -> Result<Enrolment, SecurityError> {
        let user = owner.user();
        if self
            .store
            .mfa(&user.user_id)
            .await?
            .is_some_and(|mfa| mfa.enabled)
        {
            return Err(SecurityError::InvalidRequest(
                "a second factor is already on for this account".into(),
            ));
        }
        let secret = digest::random_bytes::<20>();
        self.store
            .put_mfa(&MfaRecord {
                user_id: user.user_id.clone(),
                sealed_secret: self.secrets.seal(&sealed_name(&user.user_id), &secret)?,
                enabled: false,
                last_step: None,
                recovery_hashes: Vec::new(),
            })
            .await?;
        let otpauth_uri = totp::otpauth_uri(self.keys.issuer(), &user.email, &secret);
        Ok(Enrolment {
            secret: totp::base32(&secret),
            qr_svg: totp::qr_svg(&otpauth_uri).ok_or_else(|| SecurityError::QrCodeTooLong)?,
            otpauth_uri,
        })
    }

    /// Turns the factor on with a first valid code; returns the recovery codes, shown once.
    pub async fn confirm_mfa(
        &self,
        user: &UserRecord,
        code: &str,
        audit: &AuditLog,
    ) -> Result<Vec<String>, SecurityError> {
        let mut record = self
            .store
            .mfa(&user.user_id)
            .await?
            .filter(|mfa| !mfa.enabled)
            .ok_or_else(|| {
                SecurityError::InvalidRequest("start with POST /api/v1/auth/mfa/enrol".into())
            })?;
        self.check_code(user, &record, code).await?;
        let codes: Vec<String> = (0..RECOVERY_CODES).map(|_| recovery_code()).collect();
        record.enabled = true;
        record.last_step = self
            .store
            .mfa(&user.user_id)
            .await?
            .and_then(|m| m.last_step);
        record.recovery_hashes = codes.iter().map(|code| token_hash(code)).collect();
        self.store.put_mfa(&record).await?;
        // A caller who had to enrol may now do everything its roles allow.
        self.invalidate_callers();
        audit
            .record(
                &user.email,
                AuditAction::AuthMfaEnable {},
                user.user_id.as_str(),
            )
            .await?;
        Ok(codes)
    }

    /// A TOTP code for a step after the last one used (`use_mfa_step` decides atomically).
    async fn check_code(
        &self,
        user: &UserRecord,
        record: &MfaRecord,
        code: &str,
    ) -> Result<(), SecurityError> {
        let secret = self
            .secrets
            .open(&sealed_name(&user.user_id), &record.sealed_secret)?;
        let step = totp::verify(&secret, code, self.now_secs(), record.last_step)
            .ok_or_else(|| SecurityError::Unauthorized("wrong or used code".into()))?;
        if !self.store.use_mfa_step(&user.user_id, step).await? {
            return Err(SecurityError::Unauthorized("wrong or used code".into()));
        }
        Ok(())
    }

    /// What a right password leads to for `user`.
    pub(super) async fn after_password(
        &self,
        user: &UserRecord,
        client: &ClientInfo,
    ) -> Result<LoginOutcome, SecurityError> {
        if self
            .store
            .mfa(&user.user_id)
            .await?
            .is_some_and(|mfa| mfa.enabled)
        {
            return Ok(LoginOutcome::SecondFactor {
                mfa_required: true,
                mfa_token: self
                    .keys
                    .issue_mfa_challenge(&user.user_id, self.now_secs())?,
            });
        }
        Ok(LoginOutcome::Session(
            self.open_session(user, client).await?,
        ))
    }

    /// Exchanges a login challenge and a TOTP code (or an unused recovery code) for a session.
    pub async fn verify_mfa(
        &self,
        mfa_token: &str,
        code: &str,
        client: impl Into<ClientInfo>,
        audit: &AuditLog,
    ) -> Result<TokenPair, SecurityError> {
        let client = client.into();
        let claims = self.keys.verify_mfa_challenge(mfa_token, self.now_secs())?;
        let attempt = Attempt::new("mfa", Some(claims.sub.as_str()), client.ip);
        self.count_attempt(&attempt)?;
        let user = self
            .active_user(&claims.sub)
            .await?
            .ok_or_else(|| SecurityError::Unauthorized("the account is disabled".into()))?;
        let record = self
            .store
            .mfa(&user.user_id)
            .await?
            .filter(|mfa| mfa.enabled)
            .ok_or_else(|| SecurityError::Unauthorized("no second factor is on".into()))?;
        let code = code.trim();
        let passed = self.second_factor_passes(&user, &record, code).await?;
        if passed {
            self.succeeded(&attempt);
        } else {
            audit
                .record(
                    &user.email,
                    AuditAction::AuthMfaFailed {},
                    user.user_id.as_str(),
                )
                .await?;
            return Err(SecurityError::Unauthorized("wrong or used code".into()));
        }
        audit
            .record(
                &user.email,
                AuditAction::AuthLogin {
                    second_factor: Some(if code.len() == 6 {
                        SecondFactor::Totp
                    } else {
                        SecondFactor::RecoveryCode
                    }),
                },
                user.user_id.as_str(),
            )
            .await?;
        self.open_session(&user, &client).await
    }

    /// Whether `code` is a TOTP code after the last one used, or an unused recovery
    /// code (which is then used up).
    pub(super) async fn second_factor_passes(
        &self,
        user: &UserRecord,
        record: &MfaRecord,
        code: &str,
    ) -> Result<bool, SecurityError> {
        let code = code.trim();
        if code.len() == 6 {
            Ok(self.check_code(user, record, code).await.is_ok())
        } else {
            Ok(self
                .store
                .use_recovery_code(&user.user_id, &token_hash(code))
                .await?)
        }
    }

    /// The owner removes their own second factor.
    pub async fn remove_mfa(
        &self,
        owner: &SteppedUp,
        audit: &AuditLog,
    ) -> Result<(), SecurityError> {
        let user = owner.user();
        self.store.delete_mfa(&user.user_id).await?;
        self.invalidate_callers();
        audit
            .record(
                &user.email,
                AuditAction::AuthMfaRemove {},
                user.user_id.as_str(),
            )
            .await?;
        Ok(())
    }

    /// An administrator removes `user`'s second factor (a lost phone and lost recovery
    /// codes) and ends their sessions; they sign in with their password and enrol again.
    pub async fn reset_mfa(
        &self,
        user: &UserId,
        by: &str,
        audit: &AuditLog,
    ) -> Result<(), SecurityError> {
        self.store
            .user_by_id(user)
            .await?
            .ok_or_else(|| SecurityError::InvalidRequest(format!("no user `{user}`")))?;
        self.store.delete_mfa(user).await?;
        self.revoke_user_sessions(user).await?;
        audit
            .record(by, AuditAction::AuthMfaReset {}, user.as_str())
            .await?;
        Ok(())
    }

    /// Whether `user` holds a role `auth.require_mfa_for` names (as an account role or
    /// in any project) and has no second factor on: such an account may only enrol.
    pub(super) async fn mfa_missing(&self, user: &UserRecord) -> Result<bool, SecurityError> {
        let required = &self.config.require_mfa_for;
        if required.is_empty() {
            return Ok(false);
        }
        let mut project_roles = Vec::new();
        if !required.contains(&user.role) {
            let memberships = self.store.memberships_of(&user.user_id).await?;
            project_roles.extend(memberships.into_iter().map(|member| member.role));
        }
        self.mfa_missing_in(user, &project_roles).await
    }

    /// [`Auth::mfa_missing`] for a caller whose project roles were read already.
    pub(super) async fn mfa_missing_in(
        &self,
        user: &UserRecord,
        project_roles: &[Role],
    ) -> Result<bool, SecurityError> {
        let required = &self.config.require_mfa_for;
        let concerned = std::iter::once(&user.role)
            .chain(project_roles)
            .any(|role| required.contains(role));
        if !concerned {
            return Ok(false);
        }
        let enabled = self
            .store
            .mfa(&user.user_id)
            .await?
            .is_some_and(|mfa| mfa.enabled);
        Ok(!enabled)
    }

    /// Every stored MFA secret sealed again under the current key (after a rotation).
    pub async fn reseal_mfa(&self) -> Result<usize, SecurityError> {
        let records = self.store.all_mfa().await?;
        for record in &records {
            let name = sealed_name(&record.user_id);
            let secret = self.secrets.open(&name, &record.sealed_secret)?;
            let mut resealed = record.clone();
            resealed.sealed_secret = self.secrets.seal(&name, &secret)?;
            self.store.put_mfa(&resealed).await?;
        }
        Ok(records.len())
    }
}
