//! TOTP (RFC 6238 over RFC 4226 HOTP): HMAC-SHA1, 30-second steps, six digits, the
//! parameters every authenticator app assumes. A code is accepted one step either side
//! of now (clock drift), and only for a step later than the last one used, so a code,
//! or an earlier one, cannot be replayed.

use hmac::{Hmac, Mac};
use sha1::Sha1;

pub const STEP_SECS: u64 = 30;
const DIGITS: u32 = 6;

/// The HOTP value of `counter` (RFC 4226 §5.3, dynamic truncation).
fn hotp(secret: &[u8], counter: u64) -> u32 {
    // Any key length is valid for HMAC, so this cannot fail.
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(&counter.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = usize::from(digest[19] & 0x0f);
    let binary = u32::from_be_bytes([
        digest[offset] & 0x7f,
        digest[offset + 1],
        digest[offset + 2],
        digest[offset + 3],
    ]);
    binary % 10u32.pow(DIGITS)
}

/// The six-digit code for `unix_secs`, as an authenticator shows it.
pub fn code_at(secret: &[u8], unix_secs: u64) -> String {
    format!("{:06}", hotp(secret, unix_secs / STEP_SECS))
}

/// The step `code` belongs to, when it is valid at `unix_secs` (±1 step) and later than
/// `last_used_step`. Comparison is over every candidate, so timing says nothing.
pub fn verify(
    secret: &[u8],
    code: &str,
    unix_secs: u64,
    last_used_step: Option<u64>,
) -> Option<u64> {
    let code = code.trim();
    if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let given: u32 = code.parse().ok()?;
    let now = unix_secs / STEP_SECS;
    let mut matched = None;
    for step in now.saturating_sub(1)..=now + 1 {
        if hotp(secret, step) == given && last_used_step.is_none_or(|last| step > last) {
            matched = Some(step);
        }
    }
    matched
}

/// RFC 4648 base32 without padding: how authenticator apps take a secret.
pub fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::new();
    let (mut buffer, mut bits) = (0u32, 0u32);
    for byte in bytes {
        buffer = (buffer << 8) | u32::from(*byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

/// The `otpauth://` URI an authenticator app reads from the QR code.
pub fn otpauth_uri(issuer: &str, account: &str, secret: &[u8]) -> String {
    let escape = |text: &str| -> String {
        text.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'@' => {
                    char::from(b).to_string()
                }
                other => format!("%{other:02X}"),
            })
            .collect()
    };
    format!(
        "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm=SHA1&digits=6&period=30",
        escape(issuer),
        escape(account),
        base32(secret),
        escape(issuer)
    )
}

/// The URI as a QR code in SVG, drawn here so no page needs a script from elsewhere.
pub fn qr_svg(text: &str) -> Option<String> {
    let qr = qrcodegen::QrCode::encode_text(text, qrcodegen::QrCodeEcc::Medium).ok()?;
    let border = 4;
    let size = qr.size() + border * 2;
    let mut path = String::new();
    for y in 0..qr.size() {
        for x in 0..qr.size() {
            if qr.get_module(x, y) {
                path.push_str(&format!("M{},{}h1v1h-1z", x + border, y + border));
            }
        }
    }
    Some(format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {size} {size}\" \
         shape-rendering=\"crispEdges\"><rect width=\"100%\" height=\"100%\" fill=\"#fff\"/>\
         <path d=\"{path}\" fill=\"#000\"/></svg>"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1 rows (eight digits there; six here are their tail).
    #[test]
    fn codes_match_the_rfc_test_vectors() {
        let secret = b"12345678901234567890";
        for (time, eight) in [
            (59, "94287082"),
            (1111111109, "07081804"),
            (1111111111, "14050471"),
            (1234567890, "89005924"),
            (2000000000, "69279037"),
            (20000000000, "65353130"),
        ] {
            assert_eq!(code_at(secret, time), eight[2..], "at {time}");
        }
    }

    #[test]
    fn a_code_is_valid_one_step_either_side_and_only_once() {
        let secret = b"another secret of twenty";
        let now = 1_800_000_000;
        let code = code_at(secret, now);
        let step = verify(secret, &code, now, None).unwrap();
        assert_eq!(step, now / STEP_SECS);
        assert_eq!(verify(secret, &code, now + STEP_SECS, None), Some(step));
        assert_eq!(verify(secret, &code, now - STEP_SECS, None), Some(step));
        assert_eq!(verify(secret, &code, now + 2 * STEP_SECS, None), None);
        // Replayed: the step was used.
        assert_eq!(verify(secret, &code, now, Some(step)), None);
        // An older code after a newer one was used is refused too.
        let older = code_at(secret, now - STEP_SECS);
        assert_eq!(verify(secret, &older, now, Some(step)), None);
        for hostile in [
            "",
            "12345",
            "1234567",
            "12a456",
            "-12345",
            " 1 2 3",
            "٣٣٣٣٣٣",
        ] {
            assert_eq!(verify(secret, hostile, now, None), None, "{hostile:?}");
        }
    }

    #[test]
    fn base32_matches_rfc_4648() {
        for (input, expected) in [
            ("", ""),
            ("f", "MY"),
            ("fo", "MZXQ"),
            ("foo", "MZXW6"),
            ("foob", "MZXW6YQ"),
            ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI"),
        ] {
            assert_eq!(base32(input.as_bytes()), expected);
        }
    }

    #[test]
    fn the_enrolment_uri_and_its_qr_code() {
        let uri = otpauth_uri("Troupe", "ada@example.com", b"12345678901234567890");
        assert_eq!(
            uri,
            "otpauth://totp/Troupe:ada@example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\
             &issuer=Troupe&algorithm=SHA1&digits=6&period=30"
        );
        let svg = qr_svg(&uri).unwrap();
        assert!(
            svg.starts_with("<svg") && svg.contains("<path d=\"M"),
            "{svg}"
        );
    }
}
