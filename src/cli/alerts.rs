//! `troupe alerts`: what a node's own alert rules say now (`GET /api/v1/alerts`),
//! firing first. Exits 1 while anything fires, so that a script can wait on it.

use std::process::ExitCode;

use troupe_config::Settings;
use troupe_node::AlertsNow;

use super::client::Client;

pub async fn alerts(
    settings: &Settings,
    server: Option<&str>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let client = Client::for_settings(server, settings);
    let now: AlertsNow = client.get("/api/v1/alerts").await?;
    let firing = now.alerts.iter().any(|alert| alert.state == "firing");
    if json {
        println!("{}", serde_json::to_string_pretty(&now)?);
    } else {
        print!("{}", table(&now));
    }
    Ok(if firing {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn table(now: &AlertsNow) -> String {
    if !now.evaluating {
        return "This node evaluates no alert rules (alerts.enabled is off, or the program \
                that embeds it exports metrics itself).\n"
            .into();
    }
    let Some(at) = now.evaluated_at_ms else {
        return "Not evaluated yet: the first evaluation comes within alerts.evaluate_every_secs.\n".into();
    };
    let mut out = format!(
        "{} rules, last evaluated {}\n",
        now.rules.len(),
        troupe_alerts::rfc3339(at)
    );
    if now.alerts.is_empty() {
        out.push_str("Nothing pending or firing.\n");
        return out;
    }
    out.push_str(&format!(
        "{:<8} {:<9} {:<28} {:<24} SUMMARY\n",
        "STATE", "SEVERITY", "ALERT", "SINCE"
    ));
    for alert in &now.alerts {
        let since = alert.fired_at_ms.unwrap_or(alert.active_at_ms);
        out.push_str(&format!(
            "{:<8} {:<9} {:<28} {:<24} {}\n",
            alert.state,
            alert.severity,
            alert.name,
            troupe_alerts::rfc3339(since),
            alert.summary
        ));
    }
    out
}
