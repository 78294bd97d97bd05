//! One run: its DAG with each task's live state, the tasks' attempts, timing, cost and
//! outputs, the event log as it grows, and cancel and run-again.

use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::hooks::use_params_map;
use serde_json::{Value, json};

use crate::api::{self, Method, UiError};
use crate::model::{AgentKind, RunDetail, WorkflowVersions};
use crate::view::{self, DagView, Status, ValueView, error_note, format, live};

/// The workflow's tasks in source order, each with its name, agent and dependencies.
#[derive(Debug, Clone, PartialEq)]
struct Shape {
    tasks: Vec<(String, String, String, Vec<String>)>,
}

async fn load(run_id: &str) -> Result<(RunDetail, Shape, Vec<Value>), UiError> {
    let detail: RunDetail = api::get(&format!("/api/v1/runs/{run_id}")).await?;
    let events: Vec<Value> = api::get(&format!("/api/v1/runs/{run_id}/events")).await?;
    let versions: WorkflowVersions =
        api::get(&format!("/api/v1/workflows/{}", detail.summary.workflow_id)).await?;
    let agents: Vec<AgentKind> = api::get("/api/v1/agents").await?;
    let kinds: Vec<&str> = agents.iter().map(|agent| agent.kind.as_str()).collect();
    let source = versions
        .versions
        .iter()
        .find(|version| version.version == detail.summary.workflow_version)
        .map(|version| version.source.clone())
        .unwrap_or_default();
    // The stored version was validated when it was saved; parsing it again here gives
    // the browser the same graph the engine runs.
    let shape = match troupe_workflow::parse_workflow(&source, &versions.workflow_id, &kinds) {
        Ok(workflow) => Shape {
            tasks: workflow
                .tasks
                .into_iter()
                .map(|task| (task.id, task.name, task.agent, task.depends_on))
                .collect(),
        },
        // A kind this node no longer offers: show the tasks without their edges.
        Err(_) => Shape {
            tasks: detail
                .tasks
                .iter()
                .map(|task| (task.id.clone(), task.id.clone(), String::new(), Vec::new()))
                .collect(),
        },
    };
    Ok((detail, shape, events))
}

#[component]
pub fn RunPage() -> impl IntoView {
    let params = use_params_map();
    let run_id = move || params.read().get("id").unwrap_or_default();
    let detail = RwSignal::new(None::<RunDetail>);
    let shape = RwSignal::new(None::<Shape>);
    let events = RwSignal::new(Vec::<Value>::new());
    let failure = RwSignal::new(None::<UiError>);
    let notice = RwSignal::new(None::<String>);

    // The tasks' states are the fold of the run's log (as in the engine): a load folds the
    // whole log, and live events after its last `seq` are folded in as they come. Events
    // that arrive while a load is under way are kept and folded into its result, so none
    // is lost between the fetch and the socket.
    let seen = StoredValue::new(-1_i64);
    let loading = StoredValue::new(false);
    let early = StoredValue::new(Vec::<Value>::new());
    let reload = move |id: String| {
        loading.set_value(true);
        early.set_value(Vec::new());
        spawn_local(async move {
            match load(&id).await {
                Ok((mut run, graph, mut log)) => {
                    live::rebuild(&mut run, &log);
                    let mut last = log.last().and_then(live::seq).unwrap_or(-1);
                    for event in early.get_value() {
                        if live::seq(&event).is_some_and(|seq| seq > last) {
                            live::apply(&mut run, &event);
                            last = live::seq(&event).unwrap_or(last);
                            log.push(event);
                        }
                    }
                    seen.set_value(last);
                    detail.set(Some(run));
                    shape.set(Some(graph));
                    events.set(log);
                    failure.set(None);
                }
                Err(error) => failure.set(Some(error)),
            }
            loading.set_value(false);
        });
    };
    Effect::new(move |_| {
        let id = run_id();
        reload(id.clone());
        api::watch_events(Some(id.clone()), move |event| {
            let Some(seq) = live::seq(&event) else {
                // `{"lagged": n}`: the socket dropped events; read the log again.
                return reload(id.clone());
            };
            if loading.get_value() {
                early.update_value(|kept| kept.push(event.clone()));
            }
            if seq <= seen.get_value() || detail.with_untracked(Option::is_none) {
                return;
            }
            seen.set_value(seq);
            let mut refetch = false;
            detail.update(|run| {
                if let Some(run) = run {
                    refetch = live::apply(run, &event);
                }
            });
            events.update(|log| log.push(event));
            if refetch {
                reload(id.clone());
            }
        });
    });

    let cancel = move |_| {
        let id = run_id();
        spawn_local(async move {
            match api::act(
                Method::Post,
                &format!("/api/v1/runs/{id}/cancel"),
                Some(json!({})),
            )
            .await
            {
                Ok(()) => notice.set(Some("Cancel requested.".into())),
                Err(error) => notice.set(Some(error.to_string())),
            }
        });
    };
    let run_again = move |_| {
        let Some(run) = detail.get_untracked() else {
            return;
        };
        spawn_local(async move {
            let started =
                super::start_and_open(&run.summary.workflow_id, run.summary.workflow_version);
            if let Err(error) = started.await {
                notice.set(Some(error.to_string()));
            }
        });
    };

    let state_of = Callback::new(move |task: String| {
        detail
            .read()
            .as_ref()
            .and_then(|run| {
                run.tasks
                    .iter()
                    .find(|t| t.id == task)
                    .map(|t| t.status.clone())
            })
            .unwrap_or_else(|| "pending".into())
    });

    // The page's frame changes only with the run's summary (at its end); the tasks
    // update in place from `detail`.
    let summary = Memo::new(move |_| detail.get().map(|run| run.summary));
    view! {
        {move || failure.get().map(|error| error_note(&error))}
        {move || match (summary.get(), shape.get()) {
            (Some(summary), Some(shape)) => {
                let running = summary.status == "running";
                let graph = shape.tasks.iter().map(|(id, _, _, needs)| (id.clone(), needs.clone())).collect();
                view! {
                    <header class="page-head">
                        <h1>{summary.workflow_name.clone()}</h1>
                        <Status status=Signal::derive(move || detail.get().map(|run| run.summary.status).unwrap_or_default())/>
                        <div class="actions">
                            <button type="button" class="button danger" on:click=cancel disabled=!running>"Cancel"</button>
                            <button type="button" class="button" on:click=run_again>"Run again"</button>
                        </div>
                    </header>
                    <p class="muted">
                        {format!("Run {} of {} v{}, project {}, started by {} at {} UTC",
                            summary.run_id, summary.workflow_id, summary.workflow_version,
                            summary.project, summary.started_by, format::timestamp(summary.created_at_ms))}
                    </p>
                    {move || notice.get().map(|message| view! { <p class="note" role="status">{message}</p> })}
                    <section class="panel glass" aria-label="Task graph">
                        <DagView tasks=graph state_of=state_of/>
                    </section>
                    <section class="panel glass" aria-labelledby="tasks-title">
                        <h2 id="tasks-title">"Tasks"</h2>
                        <TaskTable shape=shape.clone() detail=detail/>
                    </section>
                    <section class="panel glass" aria-labelledby="log-title">
                        <h2 id="log-title">"Event log"</h2>
                        <ol class="log" data-testid="event-log" aria-live="polite">
                            {move || events.get().into_iter().map(|event| {
                                let kind = event["event"]["kind"].as_str().unwrap_or("event").to_owned();
                                let task = event["event"]["task"].as_str().unwrap_or("").to_owned();
                                view! {
                                    <li>
                                        <time>{format::timestamp(event["at_ms"].as_i64().unwrap_or(0))}</time>
                                        " " <strong>{kind.replace('_', " ")}</strong> " " {task}
                                    </li>
                                }
                            }).collect_view()}
                        </ol>
                    </section>
                }.into_any()
            }
            _ => view::loading().into_any(),
        }}
    }
}

#[component]
fn TaskTable(shape: Shape, detail: RwSignal<Option<RunDetail>>) -> impl IntoView {
    let rows = shape
        .tasks
        .into_iter()
        .map(|(id, name, agent, _)| {
            let task = {
                let id = id.clone();
                move || {
                    detail
                        .read()
                        .as_ref()
                        .and_then(|run| run.tasks.iter().find(|task| task.id == id).cloned())
                }
            };
            let status = Signal::derive({
                let task = task.clone();
                move || task().map(|t| t.status).unwrap_or_else(|| "pending".into())
            });
            let timing = {
                let task = task.clone();
                move || match task() {
                    Some(t) => match (t.started_at_ms, t.finished_at_ms) {
                        (Some(start), Some(end)) => format::duration(end - start),
                        (Some(_), None) => "running".into(),
                        _ => "—".into(),
                    },
                    None => "—".into(),
                }
            };
            let attempts = {
                let task = task.clone();
                move || task().map(|t| t.attempts.to_string()).unwrap_or_default()
            };
            let cost = {
                let task = task.clone();
                move || task().map(|t| format::usd(t.cost_usd)).unwrap_or_default()
            };
            let outputs = move || {
                task().map(|t| {
                    view! {
                        {t.error.map(|error| view! { <p class="note error">{error}</p> })}
                        {t.outputs.map(|outputs| view! {
                            <details><summary>"Outputs"</summary><ValueView value=outputs/></details>
                        })}
                    }
                })
            };
            view! {
                <tr id=format!("task-{id}") data-task=id.clone()>
                    <th scope="row">{name}<br/><code class="muted">{id.clone()}</code></th>
                    <td>{agent}</td>
                    <td><Status status=status/></td>
                    <td>{attempts}</td>
                    <td>{timing}</td>
                    <td>{cost}</td>
                    <td>{outputs}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <div class="table-scroll">
            <table class="table" data-testid="tasks">
                <thead><tr>
                    <th scope="col">"Task"</th><th scope="col">"Agent"</th><th scope="col">"State"</th>
                    <th scope="col">"Attempts"</th><th scope="col">"Took"</th><th scope="col">"Cost"</th>
                    <th scope="col">"Outputs"</th>
                </tr></thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
    }
}
