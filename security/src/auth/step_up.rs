//! Step-up: a request that changes how an account can be reached (a new API key, a
//! second factor added or removed, another account's factor reset) carries proof, given
//! again, that the account's owner is at the keyboard. A stolen access token or a
//! browser left signed in is then not enough to plant a lasting way in. With a second
//! factor on, the proof is a code from it (or a recovery code), so a leaked password is
//! not enough either; without one, it is the password.

use serde::Deserialize;

use super::{Attempt, Auth};
use crate::SecurityError;
use crate::audit::{AuditAction, AuditLog};
use troupe_store::UserRecord;

/// The proof a step-up request carries in its body. A client that does not know
/// whether the account has a second factor may send what the person typed as both.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
pub struct StepUp {
    /// The account's password (an account without a second factor).
    #[serde(default)]
    pub password: Option<String>,
    /// A code from the authenticator, or an unused recovery code (an account with one).
    #[serde(default)]
    pub code: Option<String>,
}

/// An account whose owner has just proved it is them. Only [`Auth::step_up`] makes one,
/// so a method that takes it cannot be reached without the proof.
#[derive(Debug)]
pub struct SteppedUp {
    user: UserRecord,
}

impl SteppedUp {
    pub fn user(&self) -> &UserRecord {
        &self.user
    }
}

impl Auth {
    /// Checks `proof` for `user`. Failures are limited like sign-ins (per account and
    /// per client address) and audited.
    pub async fn step_up(
        &self,
        user: &UserRecord,
        proof: &StepUp,
        client: Option<std::net::IpAddr>,
        audit: &AuditLog,
    ) -> Result<SteppedUp, SecurityError> {
        let mfa = self
            .store
            .mfa(&user.user_id)
            .await?
            .filter(|mfa| mfa.enabled);
        // The proof this account asks for, as given: a code with a second factor on,
        // else the password.
        let (record, secret) = match (&mfa, proof) {
            (
                Some(record),
                StepUp {
                    code: Some(code), ..
                },
            ) => (Some(record), code),
            (
                None,
                StepUp {
                    password: Some(password),
                    ..
                },
            ) => (None, password),
            (Some(_), _) => {
                return Err(SecurityError::StepUp(
                    "this account has a second factor: confirm it is you with `code`, a \
                     code from your authenticator or a recovery code"
                        .into(),
                ));
            }
            (None, _) => {
                return Err(SecurityError::StepUp(
                    "confirm it is you with `password`, your account's password".into(),
                ));
            }
        };
        let attempt = Attempt::new("step_up", Some(user.user_id.as_str()), client);
        self.count_attempt(&attempt)?;
        let passed = match record {
            Some(record) => self.second_factor_passes(user, record, secret).await?,
            None => {
                secret.len() <= self.config.password_max_length * 4
                    && self.passwords.verify(secret, &user.password_hash).await
            }
        };
        if !passed {
            audit
                .record(
                    &user.email,
                    AuditAction::AuthStepUpFailed {},
                    user.user_id.as_str(),
                )
                .await?;
            return Err(SecurityError::StepUp(
                "the password or code is wrong; nothing was changed".into(),
            ));
        }
        self.succeeded(&attempt);
        Ok(SteppedUp { user: user.clone() })
    }
}
