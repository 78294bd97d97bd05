//! `troupe login` and `troupe logout`: a session with a node, kept for the other
//! commands (see `credentials`). Passwords and codes are read from standard input, one
//! per line, without echo on a terminal, so they never appear in argv or shell history.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use anyhow::{Context, anyhow};
use serde_json::{Value, json};
use troupe_config::Settings;

use super::InputError;
use super::client::Client;
use super::credentials::{self, Stored};

#[derive(Debug, clap::Args)]
pub struct LoginArgs {
    #[arg(long)]
    email: String,
    /// The node's URL; default: this machine's configured address.
    #[arg(long)]
    server: Option<String>,
}

/// One line of standard input, after `prompt` on a terminal (typed without echo).
pub(super) fn read_secret(prompt: &str) -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    let terminal = stdin.is_terminal();
    if terminal {
        eprint!("{prompt}: ");
        std::io::stderr().flush()?;
        let _ = std::process::Command::new("stty").arg("-echo").status();
    }
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    if terminal {
        let _ = std::process::Command::new("stty").arg("echo").status();
        eprintln!();
    }
    read.context("reading standard input")?;
    let line = line.trim_end_matches(['\n', '\r']).to_string();
    if line.is_empty() {
        return Err(InputError(format!("{prompt}: nothing was given on standard input")).into());
    }
    Ok(line)
}

async fn password_login(client: &Client, email: &str, password: &str) -> anyhow::Result<Value> {
    let answer: Value = client
        .post(
            "/api/v1/auth/login",
            &json!({"email": email, "password": password}),
        )
        .await?;
    if answer["mfa_required"] == true {
        let code = read_secret("Code from your authenticator (or a recovery code)")?;
        return client
            .post(
                "/api/v1/auth/mfa/verify",
                &json!({"mfa_token": answer["mfa_token"], "code": code}),
            )
            .await;
    }
    Ok(answer)
}

fn token(pair: &Value, name: &str) -> anyhow::Result<String> {
    pair[name]
        .as_str()
        .map(String::from)
        .ok_or_else(|| anyhow!("the login answer has no {name}: {pair}"))
}

pub async fn login(settings: &Settings, args: LoginArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(&Client::base_for(args.server.as_deref(), settings));
    let password = read_secret("Password")?;
    let mut pair = password_login(&client, &args.email, &password).await?;
    if pair["password_change_required"] == true {
        eprintln!("This is a one-time password: choose your own (at least 12 characters).");
        let new = read_secret("New password")?;
        let signed_in = Client::with_token(client.base(), &token(&pair, "access_token")?);
        signed_in
            .post::<_, Value>(
                "/api/v1/auth/password",
                &json!({"current_password": password, "new_password": new}),
            )
            .await?;
        pair = password_login(&client, &args.email, &new).await?;
    }
    credentials::save(
        &credentials::path(settings),
        client.base(),
        Some(Stored {
            email: args.email.clone(),
            access_token: token(&pair, "access_token")?,
            refresh_token: token(&pair, "refresh_token")?,
        }),
    )?;
    println!("signed in to {} as {}", client.base(), args.email);
    Ok(ExitCode::SUCCESS)
}

pub async fn logout(settings: &Settings, server: Option<String>) -> anyhow::Result<ExitCode> {
    let path = credentials::path(settings);
    let client = Client::for_settings(server.as_deref(), settings);
    let stored = credentials::load(&path)?.remove(client.base());
    if let Some(session) = &stored {
        // The server ends the session; the local copy goes whatever it answers.
        let _ = client
            .post::<_, Value>(
                "/api/v1/auth/logout",
                &json!({"refresh_token": session.refresh_token}),
            )
            .await;
    }
    credentials::save(&path, client.base(), None)?;
    match stored {
        Some(session) => println!("signed out of {} ({})", client.base(), session.email),
        None => println!("no session with {} was stored", client.base()),
    }
    Ok(ExitCode::SUCCESS)
}
