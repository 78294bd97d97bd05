//! `troupe users create|list|disable`, on the store the settings name (run it where the
//! node's data is; an embedded store is opened here, so stop the node first).

use std::process::ExitCode;

use clap::Subcommand;
use serde_json::json;
use troupe_config::Settings;
use troupe_runtime::audit::AuditLog;
use troupe_runtime::auth::{Auth, password};
use troupe_runtime::store::Store;

use super::runs::user;

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Create a user with a one-time password, printed once.
    Create {
        #[arg(long)]
        email: String,
        /// super_admin, org_owner, project_owner, developer, reviewer or viewer.
        #[arg(long, default_value = "developer")]
        role: String,
    },
    /// List users.
    List,
    /// Disable a user (by id) and end all of their sessions.
    Disable { user_id: String },
}

/// The store and its audit log, opened here rather than through a running node.
pub async fn open_offline(settings: &Settings) -> anyhow::Result<(Store, AuditLog)> {
    let store = Store::open(&settings.store).await?;
    let audit = AuditLog::open(
        store.clone(),
        troupe_runtime::audit::checkpoint_dir(settings).as_deref(),
        settings.audit.checkpoint_every,
    )
    .await?;
    Ok((store, audit))
}

pub async fn users(settings: &Settings, command: UsersCommand) -> anyhow::Result<ExitCode> {
    let (store, audit) = open_offline(settings).await?;
    let auth = Auth::from_settings(store.clone(), settings)?;
    let by = format!("cli:{}", user());
    match command {
        UsersCommand::Create { email, role } => {
            let one_time = password::generate();
            let created = auth
                .create_user(&email, &role, &one_time, true)
                .await
                .map_err(|error| super::InputError(error.to_string()))?;
            audit
                .record(
                    &by,
                    "user.create",
                    &created.user_id,
                    json!({"email": created.email, "role": role}),
                )
                .await?;
            println!("created {} ({}) as {role}", created.email, created.user_id);
            println!(
                "one-time password (shown once; it must be changed at first login): {one_time}"
            );
        }
        UsersCommand::List => {
            for user in store.users().await? {
                let state = if user.disabled { "disabled" } else { "active" };
                println!(
                    "{}  {:<30} {:<14} {state}",
                    user.user_id, user.email, user.role
                );
            }
        }
        UsersCommand::Disable { user_id } => {
            auth.set_disabled(&user_id, true, &by, &audit)
                .await
                .map_err(|error| super::InputError(error.to_string()))?;
            println!("disabled {user_id}; their sessions are ended");
        }
    }
    Ok(ExitCode::SUCCESS)
}
