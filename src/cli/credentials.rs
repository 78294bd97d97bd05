//! The sessions `troupe login` keeps, one per server, in a file only its owner can read.
//! The CLI sends the stored access token, and refreshes it when the server says it
//! expired.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stored {
    pub email: String,
    pub access_token: String,
    pub refresh_token: String,
}

pub fn path(settings: &troupe_config::Settings) -> PathBuf {
    if !settings.client.credentials_file.is_empty() {
        return settings.client.credentials_file.clone().into();
    }
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|dir| dir.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config")))
        .unwrap_or_else(|| PathBuf::from("."));
    config.join("troupe").join("credentials.json")
}

/// Every stored session, by server URL; none when the file does not exist.
pub fn load(path: &std::path::Path) -> anyhow::Result<BTreeMap<String, Stored>> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is not a credentials file; delete it and run `troupe login` again",
                path.display()
            )
        }),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(error) => Err(error).with_context(|| format!("reading {}", path.display())),
    }
}

/// Stores `session` for `server` (or forgets it with `None`), keeping the others.
pub fn save(path: &std::path::Path, server: &str, session: Option<Stored>) -> anyhow::Result<()> {
    let mut all = load(path)?;
    match session {
        Some(session) => all.insert(server.to_owned(), session),
        None => all.remove(server),
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    // Written beside and renamed over, so a crash never leaves half a file; created 0600.
    let partial = path.with_extension("json.partial");
    let _ = std::fs::remove_file(&partial);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(&partial)
        .with_context(|| format!("creating {}", partial.display()))?;
    std::io::Write::write_all(&mut file, serde_json::to_string_pretty(&all)?.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&partial, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
