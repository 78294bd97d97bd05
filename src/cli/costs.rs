//! `troupe costs`: what model calls cost, how much ran locally, and what that saved
//! against the cloud baseline, from a node's ledger.

use std::process::ExitCode;

use troupe_config::Settings;
use troupe_store::{CostLine, CostReport};

use super::client::Client;

pub async fn costs(
    settings: &Settings,
    server: Option<&str>,
    days: u32,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let client = Client::for_settings(server, settings);
    let report: CostReport = client.get(&format!("/api/v1/costs?days={days}")).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("Model calls over the last {days} day(s)");
    let header = format!(
        "{:<24} {:>8} {:>6} {:>6} {:>7} {:>10} {:>10} {:>11} {:>11} {:>11} {:>7}",
        "",
        "REQUESTS",
        "CALLS",
        "ESC",
        "REFUSED",
        "TOKENS IN",
        "TOKENS OUT",
        "COST $",
        "BASELINE $",
        "SAVED $",
        "LOCAL"
    );
    let section = |title: &str, lines: &[CostLine]| {
        println!("\n{title}\n{header}");
        for line in lines {
            println!("{}", row(line));
        }
    };
    section("Total", std::slice::from_ref(&report.total));
    section("Per day", &report.by_day);
    section("Per agent", &report.by_agent);
    section("Per provider", &report.by_provider);
    Ok(ExitCode::SUCCESS)
}

fn row(line: &CostLine) -> String {
    format!(
        "{:<24} {:>8} {:>6} {:>6} {:>7} {:>10} {:>10} {:>11.6} {:>11.6} {:>11.6} {:>6.0}%",
        line.key,
        line.requests,
        line.calls,
        line.escalations,
        line.refusals,
        line.tokens_in,
        line.tokens_out,
        line.cost_usd,
        line.baseline_usd,
        line.savings_usd,
        line.local_share * 100.0
    )
}
