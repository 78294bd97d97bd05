//! Every parser of what a caller sends before it is trusted (tokens, TOTP codes, sealed
//! values, hex) on generated hostile text: each answers, none panics.

use proptest::prelude::*;

use super::{tokens::TokenKeys, totp};
use crate::SecurityError;
use crate::secrets::SecretBox;

fn hostile() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[A-Za-z0-9_.=-]{0,300}",
        "eyJ[A-Za-z0-9_-]{0,80}\\.[A-Za-z0-9_-]{0,200}\\.[A-Za-z0-9_-]{0,60}",
        "v1\\.[0-9a-f]{0,16}\\.[0-9a-fA-F]{0,30}\\.[0-9a-f.]{0,80}",
        "tk_[a-z0-9_]{0,40}",
        "[0-9 ]{0,9}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn hostile_credentials_are_refused_without_panicking(text in hostile()) {
        let keys = TokenKeys::new(b"0123456789abcdef0123456789abcdef", "troupe", "troupe-api");
        prop_assert!(matches!(keys.verify_access(&text, 1_800_000_000), Err(SecurityError::Unauthorized(_))));
        prop_assert!(matches!(keys.verify_mfa_challenge(&text, 1_800_000_000), Err(SecurityError::Unauthorized(_))));
        let _ = totp::verify(b"12345678901234567890", &text, 1_800_000_000, None);
        let mut settings = troupe_config::Settings::defaults_with_store("mem://");
        settings.secrets.key = "11".repeat(32);
        let sealer = SecretBox::from_settings(&settings).unwrap();
        prop_assert!(matches!(sealer.open("name", &text), Err(SecurityError::Secrets(_))));
        let _ = troupe_store::digest::unhex(&text);
    }
}
