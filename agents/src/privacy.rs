//! Sensitive data in text bound for a model: card numbers (Luhn-checked), national ids
//! (US SSN, UK National Insurance), emails, IP addresses, private keys and provider API
//! keys. `redact` swaps each value for a numbered placeholder (`[EMAIL_1]`) and keeps
//! the mapping, so the caller's own answer can be restored; nothing here logs a value.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use regex::Regex;
use serde::Serialize;

use troupe_scanner::secrets::KEY_FORMATS;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SensitiveKind {
    PrivateKey,
    ApiKey,
    CardNumber,
    NationalId,
    Email,
    IpAddress,
}

impl SensitiveKind {
    pub fn name(self) -> &'static str {
        match self {
            SensitiveKind::PrivateKey => "private_key",
            SensitiveKind::ApiKey => "api_key",
            SensitiveKind::CardNumber => "card_number",
            SensitiveKind::NationalId => "national_id",
            SensitiveKind::Email => "email",
            SensitiveKind::IpAddress => "ip_address",
        }
    }

    fn placeholder(self) -> &'static str {
        match self {
            SensitiveKind::PrivateKey => "PRIVATE_KEY",
            SensitiveKind::ApiKey => "API_KEY",
            SensitiveKind::CardNumber => "CARD_NUMBER",
            SensitiveKind::NationalId => "NATIONAL_ID",
            SensitiveKind::Email => "EMAIL",
            SensitiveKind::IpAddress => "IP_ADDRESS",
        }
    }
}

fn regex(pattern: &str) -> Regex {
    // Literal patterns below; a typo fails every test run, not a user's request.
    Regex::new(pattern).expect("sensitive-data pattern is valid")
}

static PRIVATE_KEY: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"-----BEGIN [A-Z ]*PRIVATE KEY(?: BLOCK)?-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY(?: BLOCK)?-----|\z)",
    )
});
/// 13 to 19 digits in one run, or in groups of four (Amex: 4-6-5) split by one space or
/// dash; issuers' numbers start with 2 to 6 (a millisecond timestamp starts with 1).
static CARD: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"\b(?:[2-6]\d{12,18}|[2-6]\d{3}(?:[ -]\d{4}){2}[ -]\d{1,7}|3[47]\d{2}[ -]\d{6}[ -]\d{5})\b",
    )
});
static SSN: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"\b(?:00[1-9]|0[1-9]\d|[1-5]\d\d|6[0-57-9]\d|66[0-57-9]|7\d\d|8[0-8]\d)-(?:0[1-9]|[1-9]\d)-(?:000[1-9]|00[1-9]\d|0[1-9]\d\d|[1-9]\d{3})\b",
    )
});
static UK_NINO: LazyLock<Regex> =
    LazyLock::new(|| regex(r"\b[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b"));
static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    regex(r"\b[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}\b")
});
static IPV4: LazyLock<Regex> = LazyLock::new(|| {
    regex(r"\b(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\b")
});
static IPV6: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"\b(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}\b|\b(?:[0-9A-Fa-f]{1,4}:){1,6}:(?:[0-9A-Fa-f]{1,4}:){0,5}[0-9A-Fa-f]{1,4}\b",
    )
});

/// The Luhn check every payment card number passes (and most random digit runs fail).
pub fn luhn(digits: &str) -> bool {
    let digits: Vec<u32> = digits.chars().filter_map(|c| c.to_digit(10)).collect();
    if !(13..=19).contains(&digits.len()) {
        return false;
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 1 {
                if d * 2 > 9 { d * 2 - 9 } else { d * 2 }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// Where each sensitive value is, without overlaps (the more specific kind wins: a key
/// block before the emails inside it).
fn find(text: &str) -> Vec<(usize, usize, SensitiveKind)> {
    let mut spans: Vec<(usize, usize, SensitiveKind)> = Vec::new();
    let mut take = |start: usize, end: usize, kind: SensitiveKind| {
        if !spans.iter().any(|&(s, e, _)| start < e && s < end) {
            spans.push((start, end, kind));
        }
    };
    for found in PRIVATE_KEY.find_iter(text) {
        take(found.start(), found.end(), SensitiveKind::PrivateKey);
    }
    for format in KEY_FORMATS
        .iter()
        .filter(|format| format.rule_id != "secret.private-key")
    {
        for found in format.pattern.find_iter(text) {
            take(found.start(), found.end(), SensitiveKind::ApiKey);
        }
    }
    for found in CARD.find_iter(text).filter(|found| luhn(found.as_str())) {
        take(found.start(), found.end(), SensitiveKind::CardNumber);
    }
    for pattern in [&*SSN, &*UK_NINO] {
        for found in pattern.find_iter(text) {
            take(found.start(), found.end(), SensitiveKind::NationalId);
        }
    }
    for found in EMAIL.find_iter(text) {
        take(found.start(), found.end(), SensitiveKind::Email);
    }
    for pattern in [&*IPV4, &*IPV6] {
        for found in pattern.find_iter(text) {
            take(found.start(), found.end(), SensitiveKind::IpAddress);
        }
    }
    spans.sort_by_key(|&(start, ..)| start);
    spans
}

/// How many values of each kind `text` holds.
pub fn detect(text: &str) -> BTreeMap<SensitiveKind, usize> {
    let mut counts = BTreeMap::new();
    for (_, _, kind) in find(text) {
        *counts.entry(kind).or_insert(0) += 1;
    }
    counts
}

/// Values swapped for placeholders, across any number of texts (one numbering, so the
/// same email is `[EMAIL_1]` in every message).
#[derive(Debug, Default)]
pub struct Redactions {
    /// placeholder → value
    values: Vec<(String, String)>,
    counts: BTreeMap<SensitiveKind, usize>,
}

impl Redactions {
    /// `text` with every sensitive value replaced by its placeholder.
    pub fn redact(&mut self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        for (start, end, kind) in find(text) {
            out.push_str(&text[at..start]);
            let value = &text[start..end];
            let placeholder = match self.values.iter().find(|(_, seen)| seen == value) {
                Some((placeholder, _)) => placeholder.clone(),
                None => {
                    let n = self.counts.entry(kind).or_insert(0);
                    *n += 1;
                    let placeholder = format!("[{}_{}]", kind.placeholder(), n);
                    self.values.push((placeholder.clone(), value.to_string()));
                    placeholder
                }
            };
            out.push_str(&placeholder);
            at = end;
        }
        out.push_str(&text[at..]);
        out
    }

    /// The caller's answer with the placeholders the model repeated turned back into
    /// the caller's own values.
    pub fn restore(&self, answer: &str) -> String {
        let mut restored = answer.to_string();
        for (placeholder, value) in &self.values {
            restored = restored.replace(placeholder, value);
        }
        restored
    }

    /// Distinct values redacted, per kind (for the log and the audit trail).
    pub fn counts(&self) -> &BTreeMap<SensitiveKind, usize> {
        &self.counts
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_is_found_and_ordinary_numbers_are_not() {
        let text = "card 4111 1111 1111 1111, ssn 123-45-6789, nino AB123456C, mail ada@example.com, \
                    host 10.0.0.12, key AKIAABCDEFGHIJKLMNOP";
        let counts = detect(text);
        for kind in [
            SensitiveKind::CardNumber,
            SensitiveKind::NationalId,
            SensitiveKind::Email,
            SensitiveKind::IpAddress,
            SensitiveKind::ApiKey,
        ] {
            assert!(counts.contains_key(&kind), "{kind:?} missed in {counts:?}");
        }
        assert_eq!(counts[&SensitiveKind::NationalId], 2);
        // A timestamp, an order number that fails Luhn, a version string, SSN-shaped
        // numbers that cannot be SSNs.
        let ordinary =
            "at 1796119685214 order 4111111111111112 version 1.2.3 id 000-12-3456 666-12-3456";
        assert!(detect(ordinary).is_empty(), "{:?}", detect(ordinary));
    }

    #[test]
    fn a_private_key_block_is_one_value() {
        let text = "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\nadmin@example.com\n-----END RSA PRIVATE KEY-----\nbye";
        let counts = detect(text);
        assert_eq!(counts.get(&SensitiveKind::PrivateKey), Some(&1));
        assert_eq!(counts.get(&SensitiveKind::Email), None);
    }

    #[test]
    fn redaction_is_reversible_for_the_callers_answer() {
        let mut redactions = Redactions::default();
        let first = redactions.redact("Write to ada@example.com about card 4111-1111-1111-1111.");
        let second = redactions.redact("Again: ada@example.com");
        assert_eq!(first, "Write to [EMAIL_1] about card [CARD_NUMBER_1].");
        assert_eq!(second, "Again: [EMAIL_1]");
        assert!(!first.contains("ada@") && !first.contains("4111"));
        assert_eq!(
            redactions.restore("Sent to [EMAIL_1]."),
            "Sent to ada@example.com."
        );
        assert_eq!(redactions.counts()[&SensitiveKind::Email], 1);
    }

    #[test]
    fn luhn_accepts_card_numbers_only() {
        assert!(luhn("4111111111111111"));
        assert!(luhn("5500 0000 0000 0004"));
        assert!(!luhn("4111111111111112"));
        assert!(!luhn("123"));
    }
}

#[cfg(test)]
mod hostile {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn redacted_text_holds_no_detected_value_and_restores(text in any::<String>()) {
            let mut redactions = Redactions::default();
            let redacted = redactions.redact(&text);
            prop_assert_eq!(redactions.restore(&redacted), text);
        }
    }
}
