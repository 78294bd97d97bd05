//! Security findings: what the scanner tasks of recent runs found, newest scan first,
//! filtered by severity. A scanner task is any task whose outputs carry `findings` and a
//! `security_score` (the `security_scanner` kind's outputs).

use leptos::prelude::*;
use serde::Deserialize;

use crate::api::{self, UiError};
use crate::model::{RunDetail, RunSummary};
use crate::view::{FilterSelect, format, loaded};

/// Runs looked at, newest first; older scans are in their runs' pages.
const RUNS_LOOKED_AT: usize = 25;
const SEVERITIES: [&str; 6] = ["", "critical", "high", "medium", "low", "info"];

#[derive(Debug, Clone, PartialEq, Deserialize)]
struct Finding {
    file: String,
    line: usize,
    rule: String,
    severity: String,
    message: String,
    #[serde(default)]
    fix: String,
}

#[derive(Debug, Clone, PartialEq)]
struct Scan {
    run: RunSummary,
    task: String,
    score: f64,
    findings: Vec<Finding>,
}

async fn scans() -> Result<Vec<Scan>, UiError> {
    let runs: Vec<RunSummary> = api::get(&format!("/api/v1/runs?limit={RUNS_LOOKED_AT}")).await?;
    let mut found = Vec::new();
    for run in runs {
        let detail: RunDetail = api::get(&format!("/api/v1/runs/{}", run.run_id)).await?;
        for task in detail.tasks {
            let Some(outputs) = task.outputs else {
                continue;
            };
            let (Some(findings), Some(score)) =
                (outputs.get("findings"), outputs["security_score"].as_f64())
            else {
                continue;
            };
            let findings =
                serde_json::from_value::<Vec<Finding>>(findings.clone()).unwrap_or_default();
            found.push(Scan {
                run: detail.summary.clone(),
                task: task.id,
                score,
                findings,
            });
        }
    }
    Ok(found)
}

#[component]
pub fn FindingsPage() -> impl IntoView {
    let severity = RwSignal::new(String::new());
    let scans = LocalResource::new(scans);
    view! {
        <h1>"Security findings"</h1>
        <form class="filters glass" role="search" on:submit=|ev| ev.prevent_default()>
            <FilterSelect label="Severity" choices=&SEVERITIES value=severity/>
        </form>
        {loaded(scans, move |scans: Vec<Scan>| {
            if scans.is_empty() {
                return view! { <p class="panel glass muted">{format!("No scanner task in the last {RUNS_LOOKED_AT} runs.")}</p> }.into_any();
            }
            let wanted = severity.get();
            scans.into_iter().map(|scan| {
                let shown: Vec<Finding> = scan.findings.iter().filter(|f| wanted.is_empty() || f.severity == wanted).cloned().collect();
                let verdict = if scan.score >= 7.0 { "completed" } else { "failed" };
                view! {
                    <section class="panel glass">
                        <header class="page-head">
                            <h2>{format!("{} · {}", scan.run.workflow_name, scan.task)}</h2>
                            <span class="status" data-state=verdict>{format!("score {:.1}/10", scan.score)}</span>
                            <a href=format!("/runs/{}", scan.run.run_id)>{format!("run at {} UTC", format::timestamp(scan.run.created_at_ms))}</a>
                        </header>
                        {if shown.is_empty() {
                            view! { <p class="muted">"No findings at this severity."</p> }.into_any()
                        } else {
                            view! {
                                <div class="table-scroll"><table class="table">
                                    <thead><tr><th scope="col">"Severity"</th><th scope="col">"Rule"</th><th scope="col">"Where"</th><th scope="col">"What"</th><th scope="col">"Fix"</th></tr></thead>
                                    <tbody>{shown.into_iter().map(|f| view! {
                                        <tr>
                                            <td><span class="status" data-state=severity_state(&f.severity)>{f.severity.clone()}</span></td>
                                            <td><code>{f.rule}</code></td>
                                            <td><code>{format!("{}:{}", f.file, f.line)}</code></td>
                                            <td>{f.message}</td>
                                            <td>{f.fix}</td>
                                        </tr>
                                    }).collect_view()}</tbody>
                                </table></div>
                            }.into_any()
                        }}
                    </section>
                }
            }).collect_view().into_any()
        })}
    }
}

/// The badge colour of a severity, from the shared state palette.
fn severity_state(severity: &str) -> &'static str {
    match severity {
        "critical" | "high" => "failed",
        "medium" => "waiting_approval",
        _ => "pending",
    }
}
