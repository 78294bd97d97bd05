//! `troupe secrets set|list|rotate`, on the store the settings name (like `troupe
//! users`: stop an embedded node first). Values are read from standard input, never
//! from the command line, so they stay out of shell history and `ps`.

use std::io::Read;
use std::process::ExitCode;

use clap::Subcommand;
use troupe_config::Settings;
use troupe_security::audit::{AuditAction, AuditLog};
use troupe_security::auth::Auth;
use troupe_security::secrets::{self, SecretBox};
use troupe_store::Store;

use super::runs::user;

#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Seal the value on standard input and keep it as NAME (e.g. providers.openai).
    Set { name: String },
    /// The names of the secrets and the key each is sealed under; never their values.
    List,
    /// Seal every secret (and every MFA secret) again under a new key.
    Rotate,
}

pub async fn secrets(settings: &Settings, command: SecretsCommand) -> anyhow::Result<ExitCode> {
    super::users::with_offline(settings, async move |store, audit| {
        on_store(settings, store, audit, command).await
    })
    .await
}

async fn on_store(
    settings: &Settings,
    store: &Store,
    audit: &AuditLog,
    command: SecretsCommand,
) -> anyhow::Result<ExitCode> {
    let by = format!("cli:{}", user());
    match command {
        SecretsCommand::Set { name } => {
            let mut value = String::new();
            std::io::stdin().read_to_string(&mut value)?;
            let value = value.trim_end_matches(['\n', '\r']);
            let sealer = SecretBox::from_settings(settings)?;
            secrets::put(store, &sealer, &name, value.as_bytes())
                .await
                .map_err(|error| super::InputError(error.to_string()))?;
            audit.record(&by, AuditAction::SecretSet {}, &name).await?;
            println!("sealed `{name}` under key {}", sealer.current_key_id());
        }
        SecretsCommand::List => {
            for record in store.secrets().await? {
                println!("{:<40} key {}", record.name, record.key_id);
            }
        }
        SecretsCommand::Rotate => {
            let mut sealer = SecretBox::from_settings(settings)?;
            let added = sealer.add_key();
            // Keys from settings rotate by a new `secrets.key`: re-seal under it.
            if let Err(error) = &added
                && settings.secrets.key.is_empty()
            {
                return Err(super::InputError(error.to_string()).into());
            }
            let auth = Auth::from_settings(store.clone(), settings)?;
            let named = secrets::reseal_all(store, auth.secrets()).await?;
            let factors = auth.reseal_mfa().await?;
            let key = auth.secrets().current_key_id().to_owned();
            audit
                .record(
                    &by,
                    AuditAction::SecretsRotate {
                        secrets: named,
                        mfa: factors,
                    },
                    &key,
                )
                .await?;
            println!("sealed {named} secrets and {factors} MFA secrets under key {key}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
