//! `troupe agents invoke KIND --input k=v`: one agent attempt outside any workflow, on a
//! running node (placed anywhere in its cluster); `troupe agents invocation ID` shows
//! one started with `--no-wait`.

use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use serde_json::{Map, Value};
use troupe_api::wire::InvokeRequest;
use troupe_config::Settings;
use troupe_store::{InvocationRecord, InvocationStatus};

use super::InputError;
use super::client::{Client, encode};

#[derive(Debug, Subcommand)]
pub enum AgentsCommand {
    /// Run one attempt of an agent kind and print its outputs as JSON.
    Invoke(InvokeArgs),
    /// Show an invocation (its outputs once it ended).
    Invocation {
        id: String,
        #[arg(long)]
        server: Option<String>,
    },
}

#[derive(Debug, clap::Args)]
pub struct InvokeArgs {
    /// The agent kind (`GET /api/v1/agents` lists them with their inputs).
    kind: String,
    /// An input (repeatable): the value is read as JSON when it is JSON (`n=3`,
    /// `files=["a.rs"]`), else taken as text (`goal=ship it`).
    #[arg(long = "input", value_name = "NAME=VALUE")]
    inputs: Vec<String>,
    /// The project it runs for (its grants, its ledger); `default` when absent.
    #[arg(long)]
    project: Option<String>,
    /// A label the node it runs on must have (repeatable).
    #[arg(long = "runs-on", value_name = "LABEL")]
    runs_on: Vec<String>,
    /// How long the attempt may run, in seconds (1 to 3600).
    #[arg(long, default_value_t = 60)]
    timeout: u64,
    /// Print the invocation's id at once instead of waiting for its end.
    #[arg(long)]
    no_wait: bool,
    #[arg(long)]
    server: Option<String>,
}

pub async fn agents(settings: &Settings, command: AgentsCommand) -> anyhow::Result<ExitCode> {
    match command {
        AgentsCommand::Invoke(args) => invoke(settings, args).await,
        AgentsCommand::Invocation { id, server } => {
            let client = Client::for_settings(server.as_deref(), settings);
            let record: InvocationRecord = client
                .get(&format!("/api/v1/invocations/{}", encode(&id)))
                .await?;
            Ok(report(&record))
        }
    }
}

async fn invoke(settings: &Settings, args: InvokeArgs) -> anyhow::Result<ExitCode> {
    let request = InvokeRequest {
        inputs: parse_inputs(&args.inputs)?,
        project: args.project,
        runs_on: args.runs_on,
        timeout_secs: Some(args.timeout),
        wait: Some(!args.no_wait),
    };
    let client = Client::for_settings(args.server.as_deref(), settings);
    let path = format!("/api/v1/agents/{}/invoke", encode(&args.kind));
    let record: InvocationRecord = client
        .post(&path, &request)
        .await
        .with_context(|| format!("invoking `{}`", args.kind))?;
    if args.no_wait {
        println!("{}", record.id);
        return Ok(ExitCode::SUCCESS);
    }
    Ok(report(&record))
}

/// Prints what the invocation came to: its outputs on standard output, or why it
/// failed on standard error (exit 1).
fn report(record: &InvocationRecord) -> ExitCode {
    let node = record.node.as_deref().unwrap_or("no node");
    match record.status {
        InvocationStatus::Succeeded => {
            let outputs = Value::Object(record.outputs.clone().unwrap_or_default());
            println!("{outputs:#}");
            eprintln!("{} succeeded on {node}", record.id);
            ExitCode::SUCCESS
        }
        InvocationStatus::Failed => {
            let error = record.error.as_deref().unwrap_or("no reason recorded");
            eprintln!("{} failed on {node}: {error}", record.id);
            ExitCode::from(1)
        }
        InvocationStatus::Running => {
            eprintln!(
                "{} is still running: troupe agents invocation {}",
                record.id, record.id
            );
            ExitCode::SUCCESS
        }
    }
}

/// `NAME=VALUE` pairs as an inputs map; a value that is not JSON is text.
fn parse_inputs(assignments: &[String]) -> Result<Map<String, Value>, InputError> {
    let mut inputs = Map::new();
    for assignment in assignments {
        let (name, text) = assignment.split_once('=').ok_or_else(|| {
            InputError(format!("--input `{assignment}` must look like NAME=VALUE"))
        })?;
        if name.is_empty() {
            return Err(InputError(format!("--input `{assignment}` has no name")));
        }
        let value = serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.into()));
        if inputs.insert(name.to_string(), value).is_some() {
            return Err(InputError(format!("--input {name} is given twice")));
        }
    }
    Ok(inputs)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn inputs_are_json_when_they_parse_and_text_otherwise() {
        let given = [
            "n=3",
            "files=[\"a.rs\"]",
            "goal=ship it",
            "empty=",
            "eq=a=b",
        ]
        .map(String::from);
        let inputs = parse_inputs(&given).unwrap();
        assert_eq!(
            Value::Object(inputs),
            json!({"n": 3, "files": ["a.rs"], "goal": "ship it", "empty": "", "eq": "a=b"})
        );
        for (bad, says) in [("novalue", "NAME=VALUE"), ("=1", "no name")] {
            let error = parse_inputs(&[bad.to_string()]).unwrap_err();
            assert!(error.0.contains(says), "{}", error.0);
        }
        let twice = parse_inputs(&["a=1".into(), "a=2".into()]).unwrap_err();
        assert!(twice.0.contains("twice"), "{}", twice.0);
    }
}
