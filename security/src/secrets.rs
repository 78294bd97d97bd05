//! Secrets at rest: provider keys, MFA secrets and webhook secrets are sealed with
//! AES-256-GCM before they reach the store. The secret's name is the associated data,
//! so a sealed value moved to another row does not open.
//!
//! Keys come from `secrets.key` (hex, e.g. from `TROUPE_SECRETS__KEY`) with the keys it
//! replaced in `secrets.previous_keys`, or else from a keyring file beside the store
//! (`<data dir>-secrets/keyring`, one `id hex` line per key, the last one current).
//! Rotating adds a key and re-seals every secret under it (`troupe secrets rotate`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};

use crate::SecurityError;
use troupe_store::digest;

const VERSION: &str = "v1";

fn failure(message: impl Into<String>) -> SecurityError {
    SecurityError::Secrets(message.into())
}

fn parse_hex_key(hex: &str, what: &str) -> Result<[u8; 32], SecurityError> {
    let bytes =
        digest::unhex(hex.trim()).ok_or_else(|| failure(format!("{what} is not hexadecimal")))?;
    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| {
        failure(format!(
            "{what} must be 32 bytes (64 hex digits), not {}",
            bytes.len()
        ))
    })
}

/// A key's id: the start of its SHA-256, so an id says nothing about the key.
fn key_id(key: &[u8; 32]) -> String {
    digest::sha256_hex(&digest::hex(key))[..12].to_owned()
}

pub struct SecretBox {
    keys: BTreeMap<String, [u8; 32]>,
    current: String,
    /// Where a keyring came from; `None` for keys from settings or a process key.
    keyring: Option<PathBuf>,
}

impl SecretBox {
    pub fn from_settings(settings: &troupe_config::Settings) -> Result<Self, SecurityError> {
        let secrets = &settings.secrets;
        if !secrets.key.is_empty() {
            let current = parse_hex_key(&secrets.key, "secrets.key")?;
            let mut keys = BTreeMap::from([(key_id(&current), current)]);
            for (index, previous) in secrets.previous_keys.iter().enumerate() {
                let key = parse_hex_key(previous, &format!("secrets.previous_keys[{index}]"))?;
                keys.insert(key_id(&key), key);
            }
            return Ok(Self {
                current: key_id(&current),
                keys,
                keyring: None,
            });
        }
        match troupe_store::key_file::dir_beside_store(&secrets.dir, &settings.store.url, "secrets")
        {
            Some(dir) => Self::from_keyring(&dir.join("keyring")),
            None => Ok(Self::ephemeral()),
        }
    }

    /// One key made now, living as long as the process.
    pub fn ephemeral() -> Self {
        let key = digest::random_bytes::<32>();
        Self {
            current: key_id(&key),
            keys: BTreeMap::from([(key_id(&key), key)]),
            keyring: None,
        }
    }

    /// The keyring at `path`, created with one key when missing.
    pub fn from_keyring(path: &Path) -> Result<Self, SecurityError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let key = digest::random_bytes::<32>();
                let line = format!("{} {}\n", key_id(&key), digest::hex(&key));
                troupe_store::key_file::write_new_private(path, line.as_bytes())?;
                line
            }
            Err(source) => {
                return Err(SecurityError::File {
                    action: "read",
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        let mut keys = BTreeMap::new();
        let mut current = None;
        for (number, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let (_, hex) = line.split_once(' ').ok_or_else(|| {
                failure(format!(
                    "{} line {}: expected `id hex`",
                    path.display(),
                    number + 1
                ))
            })?;
            let key = parse_hex_key(hex, &format!("{} line {}", path.display(), number + 1))?;
            current = Some(key_id(&key));
            keys.insert(key_id(&key), key);
        }
        let current = current.ok_or_else(|| {
            failure(format!(
                "{} holds no key; restore it from a backup",
                path.display()
            ))
        })?;
        Ok(Self {
            keys,
            current,
            keyring: Some(path.to_owned()),
        })
    }

    pub fn current_key_id(&self) -> &str {
        &self.current
    }

    /// `v1.<key id>.<nonce>.<ciphertext and tag>`, hex.
    pub fn seal(&self, name: &str, plaintext: &[u8]) -> Result<String, SecurityError> {
        let key = self.cipher(&self.current)?;
        let nonce = digest::random_bytes::<12>();
        let mut in_out = plaintext.to_vec();
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(name.as_bytes()),
            &mut in_out,
        )
        .map_err(|_| failure("sealing failed"))?;
        Ok(format!(
            "{VERSION}.{}.{}.{}",
            self.current,
            digest::hex(&nonce),
            digest::hex(&in_out)
        ))
    }

    pub fn open(&self, name: &str, sealed: &str) -> Result<Vec<u8>, SecurityError> {
        let malformed = || failure(format!("secret `{name}` is not a sealed value"));
        let mut parts = sealed.split('.');
        let (Some(VERSION), Some(id), Some(nonce), Some(body), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(malformed());
        };
        let nonce: [u8; 12] = digest::unhex(nonce)
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or_else(malformed)?;
        let mut in_out = digest::unhex(body).ok_or_else(malformed)?;
        let key = self.cipher(id)?;
        let plain = key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(name.as_bytes()),
                &mut in_out,
            )
            .map_err(|_| {
                failure(format!(
                    "secret `{name}` does not open: it was altered, or sealed for another name"
                ))
            })?;
        Ok(plain.to_vec())
    }

    fn cipher(&self, id: &str) -> Result<LessSafeKey, SecurityError> {
        let key = self.keys.get(id).ok_or_else(|| {
            failure(format!(
                "sealed under key `{id}`, which this node does not have: put the old key in \
                 secrets.previous_keys, or restore the keyring"
            ))
        })?;
        let unbound = UnboundKey::new(&AES_256_GCM, key).map_err(|_| failure("bad key length"))?;
        Ok(LessSafeKey::new(unbound))
    }

    /// Adds a new current key to the keyring file; returns its id. Keys from settings
    /// are rotated by setting a new `secrets.key` and moving the old one to
    /// `secrets.previous_keys`.
    pub fn add_key(&mut self) -> Result<String, SecurityError> {
        let Some(path) = &self.keyring else {
            return Err(failure(
                "the keys come from settings: set a new secrets.key and move the old one to \
                 secrets.previous_keys, then run `troupe secrets rotate` to re-seal",
            ));
        };
        let key = digest::random_bytes::<32>();
        let id = key_id(&key);
        troupe_store::key_file::append_private(
            path,
            format!("{id} {}\n", digest::hex(&key)).as_bytes(),
        )?;
        self.keys.insert(id.clone(), key);
        self.current = id.clone();
        Ok(id)
    }
}

/// The key id a sealed value names.
pub fn sealed_key_id(sealed: &str) -> Option<&str> {
    sealed.split('.').nth(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_secret_opens_only_under_its_name_and_unaltered() {
        let scratch = tempfile::tempdir().unwrap();
        let sealed_box = SecretBox::from_keyring(&scratch.path().join("keyring")).unwrap();
        let sealed = sealed_box.seal("providers.openai", b"sk-live-123").unwrap();
        assert!(!sealed.contains("sk-live"), "{sealed}");
        assert_eq!(
            sealed_box.open("providers.openai", &sealed).unwrap(),
            b"sk-live-123"
        );
        let moved = sealed_box
            .open("providers.other", &sealed)
            .unwrap_err()
            .to_string();
        assert!(moved.contains("does not open"), "{moved}");
        let mut altered = sealed.clone();
        let last = altered.pop().unwrap();
        altered.push(if last == '0' { '1' } else { '0' });
        assert!(matches!(
            sealed_box.open("providers.openai", &altered),
            Err(SecurityError::Secrets(_))
        ));
        for hostile in [
            "",
            "v1",
            "v1.x.y.z",
            "v2.a.b.c",
            "v1.a.b.c.d",
            &sealed.replace("v1.", "v1.."),
        ] {
            assert!(
                matches!(
                    sealed_box.open("providers.openai", hostile),
                    Err(SecurityError::Secrets(_))
                ),
                "{hostile:?}"
            );
        }
        // Two seals of one value differ (a fresh nonce each time).
        assert_ne!(
            sealed,
            sealed_box.seal("providers.openai", b"sk-live-123").unwrap()
        );
    }

    #[test]
    fn rotation_keeps_old_values_readable_and_seals_new_ones_under_the_new_key() {
        let scratch = tempfile::tempdir().unwrap();
        let path = scratch.path().join("keyring");
        let mut keys = SecretBox::from_keyring(&path).unwrap();
        let first = keys.current_key_id().to_owned();
        let old = keys.seal("n", b"value").unwrap();
        let second = keys.add_key().unwrap();
        assert_ne!(first, second);
        let reloaded = SecretBox::from_keyring(&path).unwrap();
        assert_eq!(reloaded.current_key_id(), second);
        assert_eq!(reloaded.open("n", &old).unwrap(), b"value");
        let new = reloaded.seal("n", b"value").unwrap();
        assert_eq!(sealed_key_id(&new), Some(second.as_str()));
        // A node without the old key says what to do.
        let settings_key = digest::hex(&digest::random_bytes::<32>());
        let mut settings = troupe_config::Settings::defaults_with_store("mem://");
        settings.secrets.key = settings_key;
        let other = SecretBox::from_settings(&settings).unwrap();
        let error = other.open("n", &old).unwrap_err().to_string();
        assert!(error.contains("secrets.previous_keys"), "{error}");
        settings.secrets.key = "zz".into();
        assert!(matches!(
            SecretBox::from_settings(&settings),
            Err(SecurityError::Secrets(reason)) if reason.contains("not hexadecimal")
        ));
    }
}

/// Names are plain so they can be typed and listed: `[a-z0-9_.:-]{1,100}`.
fn check_name(name: &str) -> Result<(), SecurityError> {
    let valid = !name.is_empty()
        && name.len() <= 100
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.:-".contains(&b));
    if valid {
        Ok(())
    } else {
        Err(SecurityError::InvalidRequest(format!(
            "secret name `{name}` must match [a-z0-9_.:-]{{1,100}}, e.g. providers.openai"
        )))
    }
}

/// Seals `value` and keeps it as `name`, replacing any earlier value.
pub async fn put(
    store: &troupe_store::Store,
    sealer: &SecretBox,
    name: &str,
    value: &[u8],
) -> Result<(), SecurityError> {
    check_name(name)?;
    if value.is_empty() {
        return Err(SecurityError::InvalidRequest(format!(
            "secret `{name}` is empty"
        )));
    }
    store
        .put_secret(&troupe_store::SecretRecord {
            name: name.into(),
            key_id: sealer.current_key_id().into(),
            updated_at_ms: troupe_store::clock::now_ms(),
            sealed: sealer.seal(name, value)?,
        })
        .await?;
    Ok(())
}

/// The value of `name`, opened; `None` when there is no such secret.
pub async fn get(
    store: &troupe_store::Store,
    sealer: &SecretBox,
    name: &str,
) -> Result<Option<Vec<u8>>, SecurityError> {
    match store.secret(name).await? {
        Some(record) => Ok(Some(sealer.open(name, &record.sealed)?)),
        None => Ok(None),
    }
}

/// Every named secret sealed again under the current key; returns how many.
pub async fn reseal_all(
    store: &troupe_store::Store,
    sealer: &SecretBox,
) -> Result<usize, SecurityError> {
    let records = store.secrets().await?;
    for record in &records {
        let value = sealer.open(&record.name, &record.sealed)?;
        put(store, sealer, &record.name, &value).await?;
    }
    Ok(records.len())
}

#[cfg(test)]
mod stored_tests {
    use super::*;

    #[tokio::test]
    async fn secrets_are_stored_sealed_and_rotated_on_the_real_engine() {
        let scratch = tempfile::tempdir().unwrap();
        let path = scratch.path().join("keyring");
        let store = troupe_store::Store::memory().await.unwrap();
        let mut sealer = SecretBox::from_keyring(&path).unwrap();
        put(&store, &sealer, "providers.openai", b"sk-live-1")
            .await
            .unwrap();
        let row = store.secret("providers.openai").await.unwrap().unwrap();
        assert!(!row.sealed.contains("sk-live"));
        let first_key = sealer.current_key_id().to_owned();
        let second_key = sealer.add_key().unwrap();
        assert_eq!(reseal_all(&store, &sealer).await.unwrap(), 1);
        let row = store.secret("providers.openai").await.unwrap().unwrap();
        assert_eq!(
            (row.key_id.as_str(), sealed_key_id(&row.sealed)),
            (second_key.as_str(), Some(second_key.as_str()))
        );
        assert_ne!(first_key, second_key);
        assert_eq!(
            get(&store, &sealer, "providers.openai")
                .await
                .unwrap()
                .as_deref(),
            Some(&b"sk-live-1"[..])
        );
        for bad in [
            "",
            "Providers",
            "a b",
            "x'; DELETE secret; --",
            &"n".repeat(101),
        ] {
            assert!(
                matches!(
                    put(&store, &sealer, bad, b"v").await,
                    Err(SecurityError::InvalidRequest(_))
                ),
                "{bad:?}"
            );
        }
        assert!(matches!(
            put(&store, &sealer, "empty", b"").await,
            Err(SecurityError::InvalidRequest(_))
        ));
    }
}
