//! Passwords: Argon2id, by default at m = 19 MiB, t = 2, p = 1 (OWASP's minimum), PHC
//! strings, and the policy from settings. Argon2 takes input of any length, so nothing
//! is truncated. A stored hash carries its own cost, so changing the cost changes new
//! hashes only.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::RngCore;

use crate::SecurityError;

/// What Argon2id spends on one hash (one lane).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashCost {
    pub memory_kib: u32,
    pub passes: u32,
}

impl HashCost {
    /// OWASP's minimum for Argon2id, the shipped default.
    pub const OWASP: HashCost = HashCost {
        memory_kib: 19 * 1024,
        passes: 2,
    };

    fn hasher(self) -> Result<Argon2<'static>, SecurityError> {
        let params = Params::new(self.memory_kib, self.passes, 1, None)
            .map_err(|error| SecurityError::PasswordHash(error.into()))?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
    }
}

/// The PHC string (`$argon2id$v=19$m=19456,t=2,p=1$...`) of `password`.
pub fn hash(password: &str, cost: HashCost) -> Result<String, SecurityError> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(SecurityError::PasswordHash)?;
    cost.hasher()?
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(SecurityError::PasswordHash)
}

/// Whether `password` matches `phc` (at the cost written in `phc`); a malformed stored
/// hash never matches.
pub fn verify(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// Argon2 off the async workers: each hash and verification runs on tokio's blocking
/// threads, at most one per core at once, so that a burst of logins queues behind the
/// cores instead of holding every async worker (and every other request) for ~50 ms each.
pub struct PasswordWork {
    cost: HashCost,
    permits: tokio::sync::Semaphore,
}

impl PasswordWork {
    pub fn new(cost: HashCost) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        Self {
            cost,
            permits: tokio::sync::Semaphore::new(cores),
        }
    }

    /// `hash` at this node's cost.
    pub async fn hash(&self, password: &str) -> Result<String, SecurityError> {
        let (password, cost) = (password.to_owned(), self.cost);
        self.blocking(move || hash(&password, cost)).await?
    }

    /// `verify`; false too when the work could not run.
    pub async fn verify(&self, password: &str, phc: &str) -> bool {
        let (password, phc) = (password.to_owned(), phc.to_owned());
        self.blocking(move || verify(&password, &phc))
            .await
            .unwrap_or(false)
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, SecurityError> {
        // The semaphore is never closed, so acquiring only waits.
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| SecurityError::PasswordWorkStopped(None))?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|error| SecurityError::PasswordWorkStopped(Some(error)))
    }
}

/// What a new password must be (`auth.password_min_length`, `auth.password_max_length`).
pub fn check_policy(password: &str, min: usize, max: usize) -> Result<(), SecurityError> {
    let length = password.chars().count();
    if length < min {
        return Err(SecurityError::InvalidRequest(format!(
            "the password has {length} characters; at least {min} are needed"
        )));
    }
    if length > max {
        return Err(SecurityError::InvalidRequest(format!(
            "the password has {length} characters; at most {max} are accepted"
        )));
    }
    if password.trim().is_empty() {
        return Err(SecurityError::InvalidRequest(
            "the password is only whitespace".into(),
        ));
    }
    Ok(())
}

/// A random password for a first account, shown once: 24 characters from an alphabet
/// without look-alikes.
pub fn generate() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut bytes = [0u8; 24];
    rand::rng().fill_bytes(&mut bytes);
    bytes
        .iter()
        .map(|byte| ALPHABET[*byte as usize % ALPHABET.len()] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_at_the_required_cost_and_verify() {
        let phc = hash("correct horse battery staple", HashCost::OWASP).unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify("correct horse battery staple", &phc));
        assert!(!verify("correct horse battery stapl", &phc));
        assert!(!verify("anything", "not a phc string"));
        let cheap = HashCost {
            memory_kib: 64,
            passes: 1,
        };
        assert_ne!(
            hash("same", cheap).unwrap(),
            hash("same", cheap).unwrap(),
            "salted"
        );
        let cheap_hash = hash("same", cheap).unwrap();
        assert!(cheap_hash.contains("m=64,t=1,p=1"), "{cheap_hash}");
        assert!(
            verify("same", &cheap_hash),
            "a hash verifies at its own cost"
        );
    }

    #[test]
    fn long_passwords_are_not_truncated() {
        let long = "x".repeat(4000);
        let phc = hash(&format!("{long}a"), HashCost::OWASP).unwrap();
        assert!(verify(&format!("{long}a"), &phc));
        assert!(
            !verify(&format!("{long}b"), &phc),
            "the last character counts"
        );
    }

    #[test]
    fn the_policy_names_what_is_wrong() {
        assert!(
            check_policy("short", 12, 1024).is_err_and(|e| e.to_string().contains("at least 12"))
        );
        assert!(
            check_policy(&"y".repeat(2000), 12, 1024)
                .is_err_and(|e| e.to_string().contains("at most 1024"))
        );
        assert!(matches!(
            check_policy("            ", 12, 1024),
            Err(SecurityError::InvalidRequest(_))
        ));
        assert!(check_policy("a long enough password", 12, 1024).is_ok());
        assert_eq!(generate().len(), 24);
    }
}
