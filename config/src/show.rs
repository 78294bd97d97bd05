//! `troupe config show`: the effective settings as TOML, secrets masked.

use crate::settings::Settings;

const SECRET_MARKERS: [&str; 7] = [
    "password", "secret", "token", "key", "keys", "cookie",
    // Headers sent to a collector are its credentials, whatever they are called.
    "headers",
];
const MASK: &str = "********";

/// Renders `settings` as TOML with every value whose key names a secret replaced by a mask.
pub fn render_masked(settings: &Settings) -> String {
    // Invariant: `Settings` is plain data with string keys, which TOML always encodes.
    let mut table = toml::Table::try_from(settings).expect("settings encode as TOML");
    mask(&mut table);
    toml::to_string_pretty(&table).unwrap_or_else(|error| format!("# cannot render: {error}\n"))
}

fn mask(table: &mut toml::Table) {
    for (key, value) in table.iter_mut() {
        match value {
            _ if is_secret(key) => *value = toml::Value::String(MASK.into()),
            toml::Value::Table(inner) => mask(inner),
            _ => {}
        }
    }
}

/// A key names a secret when one of its words is a marker: `password`, `api_key`, but not
/// `max_step_tokens`.
fn is_secret(key: &str) -> bool {
    key.to_lowercase()
        .split(|c: char| !c.is_ascii_alphanumeric())
        .any(|word| SECRET_MARKERS.contains(&word))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_masked_and_other_values_shown() {
        let mut settings = Settings::default();
        settings.store.password = Some("hunter2".into());
        let shown = render_masked(&settings);
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("password = \"********\""), "{shown}");
        assert!(shown.contains("address = \"127.0.0.1:7700\""), "{shown}");
        assert!(shown.contains("max_step_tokens = 512"), "{shown}");
    }

    #[test]
    fn a_collector_s_headers_are_masked_whatever_their_names() {
        let mut settings = Settings::default();
        settings
            .telemetry
            .otlp
            .headers
            .insert("x-honeycomb-team".into(), "hunter2".into());
        let shown = render_masked(&settings);
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("headers = \"********\""), "{shown}");
    }

    #[test]
    fn secret_words_are_matched_whole() {
        assert!(is_secret("password"));
        assert!(is_secret("api_key_env"));
        assert!(is_secret("webhook-secret"));
        assert!(!is_secret("max_step_tokens"));
        assert!(!is_secret("monkey"));
    }
}
