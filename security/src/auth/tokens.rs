//! Access tokens: JWTs signed HS256 under the node's key (the only algorithm accepted,
//! whatever a token's header says), with `exp`, `nbf`, `iat`, `iss`, `aud`, a token
//! type and a key id all checked. Refresh tokens are not JWTs but random strings stored
//! hashed (`sessions`), so neither kind can pass for the other.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::SecurityError;
use crate::auth::permissions::Role;
use troupe_store::UserId;

/// Seconds of clock skew tolerated between nodes.
const LEEWAY_SECS: u64 = 5;
const ACCESS: &str = "access";
/// Proof that a password was right, exchanged with a TOTP code for a session.
const MFA: &str = "mfa";
const MFA_TTL_SECS: u64 = 300;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claims {
    /// The account: a JWT's `sub` is a string, and so is a `UserId` on the wire.
    pub sub: UserId,
    pub iss: String,
    pub aud: String,
    pub exp: u64,
    pub nbf: u64,
    pub iat: u64,
    pub jti: String,
    /// `access`; any other value is refused where an access token is expected.
    pub typ: String,
    /// The account's role when the token was issued, for the reader's information: access
    /// is decided by the account as it is now. None in an MFA challenge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// The session (refresh-token family) this token belongs to: ending the session
    /// ends its access tokens at their next check.
    pub sid: String,
}

pub struct TokenKeys {
    kid: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
    issuer: String,
    audience: String,
}

fn unauthorized(reason: &str) -> SecurityError {
    SecurityError::Unauthorized(reason.into())
}

impl TokenKeys {
    pub fn new(secret: &[u8], issuer: &str, audience: &str) -> Self {
        let kid = troupe_store::digest::hex(&Sha256::digest(secret)[..4]);
        Self {
            kid,
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            issuer: issuer.into(),
            audience: audience.into(),
        }
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn issue_access(
        &self,
        user_id: &UserId,
        role: Role,
        session_id: &str,
        now_secs: u64,
        ttl_secs: u64,
    ) -> Result<String, SecurityError> {
        self.issue(ACCESS, user_id, Some(role), session_id, now_secs, ttl_secs)
    }

    /// The short-lived token a login answers with when the account has a second factor.
    pub fn issue_mfa_challenge(
        &self,
        user_id: &UserId,
        now_secs: u64,
    ) -> Result<String, SecurityError> {
        self.issue(MFA, user_id, None, "", now_secs, MFA_TTL_SECS)
    }

    fn issue(
        &self,
        typ: &str,
        user_id: &UserId,
        role: Option<Role>,
        session_id: &str,
        now_secs: u64,
        ttl_secs: u64,
    ) -> Result<String, SecurityError> {
        let claims = Claims {
            sub: user_id.clone(),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            exp: now_secs + ttl_secs,
            nbf: now_secs,
            iat: now_secs,
            jti: uuid::Uuid::new_v4().to_string(),
            typ: typ.into(),
            role,
            sid: session_id.into(),
        };
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.encoding).map_err(SecurityError::TokenSigning)
    }

    /// The claims of a valid access token; every other token is refused with a reason
    /// that names the check, never the token.
    pub fn verify_access(&self, token: &str, now_secs: u64) -> Result<Claims, SecurityError> {
        self.verify(token, ACCESS, "not an access token", now_secs)
    }

    /// Whether an access token verified before, expiring at `exp`, is still in time at
    /// `now_secs` (with the same leeway as `verify_access`): the caller cache serves
    /// tokens it has verified without checking their signature again.
    pub fn still_in_time(exp: u64, now_secs: u64) -> Result<(), SecurityError> {
        if exp.saturating_add(LEEWAY_SECS) < now_secs {
            return Err(unauthorized("expired"));
        }
        Ok(())
    }

    pub fn verify_mfa_challenge(
        &self,
        token: &str,
        now_secs: u64,
    ) -> Result<Claims, SecurityError> {
        self.verify(token, MFA, "not an MFA challenge token", now_secs)
    }

    /// A valid token of type `typ`; one of another type is refused as `wrong_type`.
    fn verify(
        &self,
        token: &str,
        typ: &str,
        wrong_type: &str,
        now_secs: u64,
    ) -> Result<Claims, SecurityError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| unauthorized("not a JWT"))?;
        if header.alg != Algorithm::HS256 {
            return Err(unauthorized("algorithm not accepted"));
        }
        if header.kid.as_deref() != Some(self.kid.as_str()) {
            return Err(unauthorized("signed with an unknown key"));
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "nbf", "iat", "iss", "aud", "sub"]);
        // Times are checked below against `now_secs`, the caller's clock, not the
        // library's own reading of the system time.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation).map_err(
            |error| {
                use jsonwebtoken::errors::ErrorKind;
                unauthorized(match error.kind() {
                    ErrorKind::ExpiredSignature => "expired",
                    ErrorKind::ImmatureSignature => "not valid yet",
                    ErrorKind::InvalidAudience => "for another audience",
                    ErrorKind::InvalidIssuer => "from another issuer",
                    ErrorKind::InvalidSignature => "bad signature",
                    ErrorKind::InvalidAlgorithm => "algorithm not accepted",
                    _ => "malformed",
                })
            },
        )?;
        let claims = data.claims;
        if claims.exp.saturating_add(LEEWAY_SECS) < now_secs {
            return Err(unauthorized("expired"));
        }
        if claims.nbf > now_secs.saturating_add(LEEWAY_SECS) {
            return Err(unauthorized("not valid yet"));
        }
        if claims.iat > now_secs.saturating_add(LEEWAY_SECS) {
            return Err(unauthorized("issued in the future"));
        }
        if claims.typ != typ {
            return Err(unauthorized(wrong_type));
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use serde_json::json;

    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn keys() -> TokenKeys {
        TokenKeys::new(SECRET, "troupe", "troupe-api")
    }

    fn now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    /// A token with any header and claims, signed with `secret` (HS256) or unsigned.
    fn forge(
        header: serde_json::Value,
        claims: serde_json::Value,
        secret: Option<&[u8]>,
    ) -> String {
        use hmac::{Hmac, Mac};
        let head = URL_SAFE_NO_PAD.encode(header.to_string());
        let body = URL_SAFE_NO_PAD.encode(claims.to_string());
        let signing_input = format!("{head}.{body}");
        let signature = match secret {
            Some(secret) => {
                let mut mac = <Hmac<Sha256>>::new_from_slice(secret).unwrap();
                mac.update(signing_input.as_bytes());
                URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
            }
            None => String::new(),
        };
        format!("{signing_input}.{signature}")
    }

    fn claims(now: u64) -> serde_json::Value {
        json!({"sub": "u1", "iss": "troupe", "aud": "troupe-api", "exp": now + 60, "nbf": now,
               "iat": now, "jti": "j", "typ": "access", "role": "developer", "sid": "s"})
    }

    fn kid() -> String {
        let digest = Sha256::digest(SECRET);
        digest
            .iter()
            .take(4)
            .map(|byte| format!("{byte:02x}"))
            .collect()
    }

    #[test]
    fn an_issued_token_verifies() {
        let keys = keys();
        let token = keys
            .issue_access(&"u1".into(), Role::Developer, "s1", now(), 60)
            .unwrap();
        let claims = keys.verify_access(&token, now()).unwrap();
        assert_eq!(
            (claims.sub.as_str(), claims.role, claims.sid.as_str()),
            ("u1", Some(Role::Developer), "s1")
        );
    }

    #[test]
    fn hostile_tokens_are_refused_with_the_reason() {
        let keys = keys();
        let now = now();
        let refused = |token: String| keys.verify_access(&token, now).unwrap_err().to_string();
        let hs = json!({"alg": "HS256", "typ": "JWT", "kid": kid()});
        // alg none, unsigned.
        let none = refused(forge(
            json!({"alg": "none", "kid": kid()}),
            claims(now),
            None,
        ));
        assert!(
            none.contains("algorithm") || none.contains("not a JWT"),
            "{none}"
        );
        // RS256 in the header, HMAC'd with what would be the public key.
        let confused = refused(forge(
            json!({"alg": "RS256", "kid": kid()}),
            claims(now),
            Some(b"-----BEGIN PUBLIC KEY-----"),
        ));
        assert!(confused.contains("algorithm"), "{confused}");
        // HS256 as the header says, keyed with a public key an attacker can read.
        let public_key = b"-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----\n";
        assert!(refused(forge(hs.clone(), claims(now), Some(public_key))).contains("signature"));
        // A right header, the wrong key.
        assert!(
            refused(forge(
                hs.clone(),
                claims(now),
                Some(b"another key of thirty-two bytes!")
            ))
            .contains("signature")
        );
        let mut expired = claims(now);
        expired["exp"] = json!(now - 3600);
        assert!(refused(forge(hs.clone(), expired, Some(SECRET))).contains("expired"));
        let mut future = claims(now);
        future["nbf"] = json!(now + 3600);
        future["exp"] = json!(now + 7200);
        assert!(refused(forge(hs.clone(), future, Some(SECRET))).contains("not valid yet"));
        let mut issued_later = claims(now);
        issued_later["iat"] = json!(now + 3600);
        assert!(refused(forge(hs.clone(), issued_later, Some(SECRET))).contains("future"));
        let mut string_exp = claims(now);
        string_exp["exp"] = json!((now + 60).to_string());
        assert!(refused(forge(hs.clone(), string_exp, Some(SECRET))).contains("malformed"));
        let mut audience = claims(now);
        audience["aud"] = json!("someone-else");
        assert!(refused(forge(hs.clone(), audience, Some(SECRET))).contains("audience"));
        let mut refresh = claims(now);
        refresh["typ"] = json!("refresh");
        assert!(refused(forge(hs.clone(), refresh, Some(SECRET))).contains("not an access token"));
        let mut missing = claims(now);
        missing.as_object_mut().unwrap().remove("nbf");
        assert!(refused(forge(hs, missing, Some(SECRET))).contains("malformed"));
        assert!(
            refused(forge(json!({"alg": "HS256"}), claims(now), Some(SECRET)))
                .contains("unknown key")
        );
        assert!(refused("rt_abc.def".into()).contains("not a JWT"));
    }
}
