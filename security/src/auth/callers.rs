//! Who is calling: a bearer token or an API key turned into a `Principal` (the user,
//! the key, the memberships). The store answers are cached per token, because three
//! store reads per request cost authenticated reads three quarters of their throughput
//! (`troupe bench auth`). The cache cannot serve a revoked caller on this node: every
//! change a principal depends on (sessions, passwords, disabling, keys, memberships)
//! goes through `Auth` and moves the epoch, which empties it. Another node sharing the
//! store sees such a change within `CACHE_TTL`.
//!
//! An access token's expiry and a key's expiry and request rate are still checked on
//! every request. A token's signature is checked when it is first seen: an entry is keyed
//! by the hash of the whole token, so only the very bytes verified before can hit it.
//! (Verifying an HS256 JWT per request cost authenticated reads a fifth of their
//! throughput, `troupe bench auth`.)

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use troupe_store::ProjectId;

use super::access::Principal;
use super::permissions::Role;
use super::tokens::TokenKeys;
use super::{Auth, token_hash};
use crate::SecurityError;

pub(super) const CACHE_TTL: Duration = Duration::from_secs(5);
const CACHE_MAX: usize = 10_000;

struct Cached {
    principal: Principal,
    /// An access token's `exp`; `None` for an API key.
    token_exp: Option<u64>,
    epoch: u64,
    at: Instant,
}

#[derive(Default)]
pub(super) struct CallerCache {
    epoch: AtomicU64,
    entries: Mutex<HashMap<String, Cached>>,
}

impl CallerCache {
    fn get(&self, token_hash: &str) -> Option<(Principal, Option<u64>)> {
        let epoch = self.epoch.load(Ordering::Acquire);
        let entries = self.entries.lock().ok()?;
        let cached = entries.get(token_hash)?;
        (cached.epoch == epoch && cached.at.elapsed() < CACHE_TTL)
            .then(|| (cached.principal.clone(), cached.token_exp))
    }

    fn put(&self, token_hash: String, principal: Principal, token_exp: Option<u64>, epoch: u64) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= CACHE_MAX {
                entries.clear();
            }
            entries.insert(
                token_hash,
                Cached {
                    principal,
                    token_exp,
                    epoch,
                    at: Instant::now(),
                },
            );
        }
    }

    pub(super) fn invalidate(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        if let Ok(mut entries) = self.entries.lock() {
            entries.clear();
        }
    }
}

impl Auth {
    /// The caller behind `token` (an access token, or an API key `tk_...`).
    pub async fn principal(&self, token: &str) -> Result<Principal, SecurityError> {
        self.principal_as_of(token, self.now_secs()).await
    }

    /// The caller behind `token` with the token's own expiry judged at `at_secs` (when a
    /// long-lived stream was opened with it), and everything else (its session, account,
    /// key, memberships) as it is now: a stream outlives its access token but not a
    /// logout, a disabled account, a revoked key or a removed membership.
    pub async fn principal_as_of(
        &self,
        token: &str,
        at_secs: u64,
    ) -> Result<Principal, SecurityError> {
        let hash = token_hash(token);
        if let Some((principal, token_exp)) = self.callers.get(&hash) {
            if let Some(exp) = token_exp {
                TokenKeys::still_in_time(exp, at_secs)?;
            }
            if let Some(key) = &principal.key {
                if key.expires_at_ms.is_some_and(|at| at <= self.now_ms()) {
                    return Err(SecurityError::Unauthorized("API key expired".into()));
                }
                self.admit_key(key)?;
                self.note_key_use(&key.key_id).await;
            }
            return Ok(principal);
        }
        // Signature, expiry, audience and type of a token not verified before.
        let claims = if token.starts_with("tk_") {
            None
        } else {
            Some(self.keys.verify_access(token, at_secs)?)
        };
        let token_exp = claims.as_ref().map(|claims| claims.exp);
        // Read before the store: a change while we read leaves this entry stale and so
        // unused. A key read from the store is checked, counted and noted on the way.
        let epoch = self.callers.epoch.load(Ordering::Acquire);
        let (user, key) = match claims {
            Some(claims) => (self.user_of(&claims).await?, None),
            None => {
                let (key, user) = self.authenticate_key(token).await?;
                (user, Some(key))
            }
        };
        let memberships: BTreeMap<ProjectId, Role> = self
            .store
            .memberships_of(&user.user_id)
            .await?
            .into_iter()
            .map(|member| (member.project_id, member.role))
            .collect();
        let org_projects = if user.role == Role::OrgOwner {
            self.store
                .projects_of_org(&user.org)
                .await?
                .into_iter()
                .collect()
        } else {
            Default::default()
        };
        let project_roles: Vec<Role> = memberships.values().copied().collect();
        let principal = Principal {
            mfa_missing: self.mfa_missing_in(&user, &project_roles).await?,
            user,
            key,
            memberships,
            org_projects,
        };
        self.callers.put(hash, principal.clone(), token_exp, epoch);
        Ok(principal)
    }

    /// Forget every cached caller: something a principal depends on changed.
    pub fn invalidate_callers(&self) {
        self.callers.invalidate();
    }
}
