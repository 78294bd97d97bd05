//! Who sent a webhook: a push event is believed only when it proves it knows the
//! workflow's secret. GitHub signs the raw body (`X-Hub-Signature-256: sha256=HEX`, an
//! HMAC-SHA256 keyed with the secret); GitLab sends the secret itself (`X-Gitlab-Token`).
//! Both are compared in constant time, so a caller learns nothing from how long a wrong
//! guess took.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Why a delivery was not believed: an answer to the sender, not a fault of ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    MalformedSignature,
    WrongSignature,
    WrongToken,
}

impl Rejection {
    /// What the 401's body and the audit entry say.
    pub fn reason(self) -> &'static str {
        match self {
            Self::MalformedSignature => {
                "the X-Hub-Signature-256 header is not `sha256=` and 64 hex digits"
            }
            Self::WrongSignature => {
                "the signature does not match the body under the workflow's secret"
            }
            Self::WrongToken => "the X-Gitlab-Token header is not the workflow's secret",
        }
    }
}

/// Checks GitHub's `X-Hub-Signature-256` of `body` under `secret`.
pub fn verify_github(secret: &[u8], body: &[u8], header: &str) -> Result<(), Rejection> {
    let hex = header
        .strip_prefix("sha256=")
        .filter(|hex| hex.len() == 64)
        .ok_or(Rejection::MalformedSignature)?;
    let claimed = decode_hex(hex).ok_or(Rejection::MalformedSignature)?;
    // Invariant: HMAC takes a key of any length.
    let mut mac = <Hmac<Sha256>>::new_from_slice(secret).expect("HMAC accepts any key");
    mac.update(body);
    mac.verify_slice(&claimed)
        .map_err(|_| Rejection::WrongSignature)
}

/// Checks GitLab's `X-Gitlab-Token` against `secret`.
pub fn verify_gitlab(secret: &[u8], token: &str) -> Result<(), Rejection> {
    if bool::from(secret.ct_eq(token.as_bytes())) {
        Ok(())
    } else {
        Err(Rejection::WrongToken)
    }
}

/// What GitHub's header carries: 32 bytes as 64 hex digits.
fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    let digit = |byte: u8| char::from(byte).to_digit(16);
    hex.as_bytes()
        .chunks(2)
        .map(|pair| Some((digit(pair[0])? * 16 + digit(*pair.get(1)?)?) as u8))
        .collect()
}

/// GitHub's signature of `body` under `secret`, as its header carries it (for clients
/// and tests that sign).
pub fn sign_github(secret: &[u8], body: &[u8]) -> String {
    // Invariant: HMAC takes a key of any length.
    let mut mac = <Hmac<Sha256>>::new_from_slice(secret).expect("HMAC accepts any key");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("sha256={hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_signed_with_the_secret_is_believed_and_any_change_is_not() {
        // GitHub's documented example: secret "It's a Secret to Everybody".
        let secret = b"It's a Secret to Everybody";
        let body = b"Hello, World!";
        let header = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert_eq!(sign_github(secret, body), header);
        assert_eq!(verify_github(secret, body, header), Ok(()));
        assert_eq!(
            verify_github(secret, b"Hello, World?", header),
            Err(Rejection::WrongSignature)
        );
        assert_eq!(
            verify_github(b"another secret", body, header),
            Err(Rejection::WrongSignature)
        );
    }

    #[test]
    fn malformed_signatures_are_named_as_such() {
        let secret = b"s";
        for header in [
            "",
            "sha1=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
            "sha256=757107",
            "sha256=zz7107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
            "sha256=é57107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e1",
        ] {
            assert_eq!(
                verify_github(secret, b"{}", header),
                Err(Rejection::MalformedSignature),
                "{header}"
            );
        }
    }

    #[test]
    fn a_gitlab_token_must_be_the_secret_itself() {
        assert_eq!(verify_gitlab(b"tok3n", "tok3n"), Ok(()));
        assert_eq!(
            verify_gitlab(b"tok3n", "tok3n "),
            Err(Rejection::WrongToken)
        );
        assert_eq!(verify_gitlab(b"tok3n", ""), Err(Rejection::WrongToken));
    }
}
