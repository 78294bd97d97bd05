//! The audit log: whether its hash chain verifies, and its latest entries.

use leptos::prelude::*;

use crate::api;
use crate::model::{AuditEntry, AuditVerification};
use crate::view::{format, loaded};

/// The page shows the newest entries; the full log is exported with `troupe audit export`.
const SHOWN: usize = 200;

#[component]
pub fn AuditPage() -> impl IntoView {
    let verification = LocalResource::new(|| api::get::<AuditVerification>("/api/v1/audit/verify"));
    let entries = LocalResource::new(|| api::get::<Vec<AuditEntry>>("/api/v1/audit"));
    view! {
        <h1>"Audit log"</h1>
        <section class="panel glass" aria-labelledby="chain-title">
            <h2 id="chain-title">"Chain"</h2>
            {loaded(verification, |check: AuditVerification| {
                if check.intact {
                    view! { <p class="note ok" data-testid="chain">{format!("Intact: all {} entries verify.", check.entries)}</p> }.into_any()
                } else {
                    view! { <p class="note error" role="alert" data-testid="chain">
                        {match check.first_bad {
                            Some(breach) => format!("Broken at entry {}: {}.", breach.seq, breach.problem),
                            None => "Broken: the log was changed after it was written.".to_string(),
                        }}
                    </p> }.into_any()
                }
            })}
        </section>
        <section class="panel glass" aria-labelledby="entries-title">
            <h2 id="entries-title">"Latest entries"</h2>
            {loaded(entries, |entries: Vec<AuditEntry>| view! {
                <div class="table-scroll"><table class="table">
                    <thead><tr>
                        <th scope="col">"#"</th><th scope="col">"When (UTC)"</th><th scope="col">"Who"</th>
                        <th scope="col">"Action"</th><th scope="col">"Target"</th><th scope="col">"Details"</th>
                    </tr></thead>
                    <tbody>{entries.into_iter().rev().take(SHOWN).map(|entry| view! {
                        <tr>
                            <td>{entry.seq}</td><td>{format::timestamp(entry.at_ms)}</td><td>{entry.actor}</td>
                            <td><code>{entry.action}</code></td><td>{entry.target}</td>
                            <td><code class="wrap">{entry.details}</code></td>
                        </tr>
                    }).collect_view()}</tbody>
                </table></div>
            })}
        </section>
    }
}
