//! `troupe users create|list|disable|reset-mfa`: through a running node with `--server` (as a
//! signed-in caller holding `users.manage`), or else on the store the settings name
//! (an embedded store is opened here, so stop the node first).

use std::process::ExitCode;

use clap::Subcommand;
use serde_json::{Value, json};
use troupe_config::Settings;
use troupe_security::audit::AuditLog;
use troupe_security::audit::shipping::Shipping;
use troupe_security::auth::Auth;
use troupe_store::{Role, Store, UserId, UserRecord};

use super::client::{Client, encode};
use super::runs::user;

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Create a user with a one-time password, printed once.
    Create {
        #[arg(long)]
        email: String,
        /// viewer, developer, reviewer, project_owner, org_owner or super_admin.
        #[arg(long, default_value = "developer")]
        role: Role,
        /// The organisation (a super admin's choice; others add to their own).
        #[arg(long, default_value = "default")]
        org: String,
        #[arg(long)]
        server: Option<String>,
    },
    /// List users.
    List {
        #[arg(long)]
        server: Option<String>,
    },
    /// Disable a user (by id) and end all of their sessions.
    Disable {
        user_id: UserId,
        #[arg(long)]
        server: Option<String>,
    },
    /// Remove a user's second factor (a lost phone) and end their sessions; they sign in
    /// with their password and enrol again. Through a node, your own password (or code)
    /// is read from standard input first.
    ResetMfa {
        user_id: UserId,
        #[arg(long)]
        server: Option<String>,
    },
}

/// Runs `work` on the store and audit log the settings name, opened here rather than
/// through a running node; then waits (5 s at most) for the audit checkpoints it signed
/// to leave the host (`audit.ship`), as a node does when it stops.
pub async fn with_offline<T>(
    settings: &Settings,
    work: impl AsyncFnOnce(&Store, &AuditLog) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let store = Store::open(&settings.store).await?;
    let shipping = Shipping::start(&settings.audit.ship, "troupe-cli").await?;
    let audit = AuditLog::open(
        store.clone(),
        troupe_security::audit::checkpoint_dir(settings).as_deref(),
        settings.audit.checkpoint_every,
    )
    .await?
    .shipped(shipping);
    let done = work(&store, &audit).await;
    audit.flush_shipping().await;
    done
}

fn print_created(user: &UserRecord, one_time: &str) {
    println!("created {} ({}) as {}", user.email, user.user_id, user.role);
    println!("one-time password (shown once; it must be changed at first login): {one_time}");
}

fn print_users(users: &[UserRecord]) {
    for user in users {
        let state = if user.disabled { "disabled" } else { "active" };
        println!(
            "{}  {:<30} {:<14} {state}",
            user.user_id, user.email, user.role
        );
    }
}

pub async fn users(settings: &Settings, command: UsersCommand) -> anyhow::Result<ExitCode> {
    let server = match &command {
        UsersCommand::Create { server, .. }
        | UsersCommand::List { server }
        | UsersCommand::Disable { server, .. }
        | UsersCommand::ResetMfa { server, .. } => server.clone(),
    };
    match server {
        Some(server) => through_node(&Client::for_settings(Some(&server), settings), command).await,
        None => offline(settings, command).await,
    }
}

async fn through_node(client: &Client, command: UsersCommand) -> anyhow::Result<ExitCode> {
    match command {
        UsersCommand::Create {
            email, role, org, ..
        } => {
            let created: Value = client
                .post(
                    "/api/v1/users",
                    &json!({"email": email, "role": role, "org": org}),
                )
                .await?;
            let user: UserRecord = serde_json::from_value(created["user"].clone())?;
            print_created(
                &user,
                created["one_time_password"].as_str().unwrap_or_default(),
            );
        }
        UsersCommand::List { .. } => {
            print_users(&client.get::<Vec<UserRecord>>("/api/v1/users").await?);
        }
        UsersCommand::Disable { user_id, .. } => {
            let path = format!("/api/v1/users/{}/disable", encode(user_id.as_str()));
            client.post::<_, Value>(&path, &json!({})).await?;
            println!("disabled {user_id}; their sessions are ended");
        }
        UsersCommand::ResetMfa { user_id, .. } => {
            // The node asks for the password or for a code, by whether the account
            // has a second factor: what was typed goes as both.
            let proof = super::login::read_secret("Your password (or authenticator code)")?;
            let path = format!("/api/v1/users/{}/mfa/reset", encode(user_id.as_str()));
            client
                .post::<_, Value>(&path, &json!({"password": proof, "code": proof}))
                .await?;
            print_reset(&user_id);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_reset(user_id: &UserId) {
    println!(
        "removed the second factor of {user_id} and ended their sessions; they sign in \
         with their password and enrol again"
    );
}

async fn offline(settings: &Settings, command: UsersCommand) -> anyhow::Result<ExitCode> {
    with_offline(settings, async move |store, audit| {
        on_store(settings, store, audit, command).await
    })
    .await
}

async fn on_store(
    settings: &Settings,
    store: &Store,
    audit: &AuditLog,
    command: UsersCommand,
) -> anyhow::Result<ExitCode> {
    let auth = Auth::from_settings(store.clone(), settings)?;
    let by = format!("cli:{}", user());
    match command {
        UsersCommand::Create {
            email, role, org, ..
        } => {
            let (created, one_time) = auth
                .invite(&org, &email, role, &by, audit)
                .await
                .map_err(|error| super::InputError(error.to_string()))?;
            print_created(&created, &one_time);
        }
        UsersCommand::List { .. } => print_users(&store.users().await?),
        UsersCommand::Disable { user_id, .. } => {
            auth.set_disabled(&user_id, true, &by, audit)
                .await
                .map_err(|error| super::InputError(error.to_string()))?;
            println!("disabled {user_id}; their sessions are ended");
        }
        UsersCommand::ResetMfa { user_id, .. } => {
            auth.reset_mfa(&user_id, &by, audit)
                .await
                .map_err(|error| super::InputError(error.to_string()))?;
            print_reset(&user_id);
        }
    }
    Ok(ExitCode::SUCCESS)
}
