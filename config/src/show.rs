//! `troupe config show`: the effective settings as TOML, secrets masked.

use crate::settings::Settings;

const SECRET_MARKERS: [&str; 4] = ["password", "secret", "token", "key"];
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
            toml::Value::Table(inner) => mask(inner),
            _ if is_secret(key) => *value = toml::Value::String(MASK.into()),
            _ => {}
        }
    }
}

fn is_secret(key: &str) -> bool {
    let key = key.to_lowercase();
    SECRET_MARKERS.iter().any(|marker| key.contains(marker))
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
    }
}
