//! Passwords: Argon2id at m = 19 MiB, t = 2, p = 1 (OWASP's minimum), PHC strings, and
//! the policy from settings. Argon2 takes input of any length, so nothing is truncated.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::RngCore;

use crate::SecurityError;

const MEMORY_KIB: u32 = 19 * 1024;
const PASSES: u32 = 2;
const LANES: u32 = 1;

fn hasher() -> Argon2<'static> {
    // Constant parameters within Argon2's documented bounds: `new` cannot fail on them.
    let params = Params::new(MEMORY_KIB, PASSES, LANES, None).expect("valid Argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// The PHC string (`$argon2id$v=19$m=19456,t=2,p=1$...`) of `password`.
pub fn hash(password: &str) -> Result<String, SecurityError> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(SecurityError::PasswordHash)?;
    hasher()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(SecurityError::PasswordHash)
}

/// Whether `password` matches `phc`; a malformed stored hash never matches.
pub fn verify(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .map(|parsed| {
            hasher()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A hash to verify against when the account does not exist, so that a wrong email
/// takes as long as a wrong password.
pub fn decoy_hash() -> &'static str {
    static DECOY: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        hash("decoy password that matches nothing").unwrap_or_default()
    });
    &DECOY
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
        let phc = hash("correct horse battery staple").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify("correct horse battery staple", &phc));
        assert!(!verify("correct horse battery stapl", &phc));
        assert!(!verify("anything", "not a phc string"));
        assert_ne!(hash("same").unwrap(), hash("same").unwrap(), "salted");
    }

    #[test]
    fn long_passwords_are_not_truncated() {
        let long = "x".repeat(4000);
        let phc = hash(&format!("{long}a")).unwrap();
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
