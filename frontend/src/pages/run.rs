//! One run: its DAG with each task's live state, the tasks' attempts, timing, cost and
//! outputs, the event log as it grows, and cancel and run-again.

use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::hooks::use_params_map;
use serde_json::{Value, json};

use crate::api::{self, Method, UiError};
use crate::model::{AgentKind, RunBudget, RunDetail, RunSummary, WorkflowVersions};
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

/// The run as the page shows it: loaded, then kept up to date by its live events.
///
/// The tasks' states are the fold of the run's log (as in the engine): a load folds the
/// whole log, and live events after its last `seq` are folded in as they come. Events
/// that arrive while a load is under way are kept and folded into its result, so none
/// is lost between the fetch and the socket.
#[derive(Clone, Copy)]
struct LiveRun {
    detail: RwSignal<Option<RunDetail>>,
    shape: RwSignal<Option<Shape>>,
    events: RwSignal<Vec<Value>>,
    failure: RwSignal<Option<UiError>>,
    /// The `seq` of the last event folded in.
    seen: StoredValue<i64>,
    loading: StoredValue<bool>,
    /// The events that came while a load was under way.
    early: StoredValue<Vec<Value>>,
}

impl LiveRun {
    fn new() -> Self {
        Self {
            detail: RwSignal::new(None),
            shape: RwSignal::new(None),
            events: RwSignal::new(Vec::new()),
            failure: RwSignal::new(None),
            seen: StoredValue::new(-1),
            loading: StoredValue::new(false),
            early: StoredValue::new(Vec::new()),
        }
    }

    /// Loads the run `run_id` names, and follows its events; again when it names another.
    fn follow(self, run_id: impl Fn() -> String + 'static) {
        Effect::new(move |_| {
            let id = run_id();
            self.reload(id.clone());
            api::watch_events(Some(id.clone()), move |event| self.receive(&id, event));
        });
    }

    /// Loads the run and its log, and folds in the events that came meanwhile.
    fn reload(self, id: String) {
        self.loading.set_value(true);
        self.early.set_value(Vec::new());
        spawn_local(async move {
            match load(&id).await {
                Ok((mut run, graph, mut log)) => {
                    live::rebuild(&mut run, &log);
                    let mut last = log.last().and_then(live::seq).unwrap_or(-1);
                    for event in self.early.get_value() {
                        if live::seq(&event).is_some_and(|seq| seq > last) {
                            live::apply(&mut run, &event);
                            last = live::seq(&event).unwrap_or(last);
                            log.push(event);
                        }
                    }
                    self.seen.set_value(last);
                    self.detail.set(Some(run));
                    self.shape.set(Some(graph));
                    self.events.set(log);
                    self.failure.set(None);
                }
                Err(error) => self.failure.set(Some(error)),
            }
            self.loading.set_value(false);
        });
    }

    /// A live event of run `id`: folded in when it is new, and the run is loaded again
    /// when the event says the fold is not enough.
    fn receive(self, id: &str, event: Value) {
        let Some(seq) = live::seq(&event) else {
            // `{"lagged": n}`: the socket dropped events; read the log again.
            return self.reload(id.to_owned());
        };
        if self.loading.get_value() {
            self.early.update_value(|kept| kept.push(event.clone()));
        }
        if seq <= self.seen.get_value() || self.detail.with_untracked(Option::is_none) {
            return;
        }
        self.seen.set_value(seq);
        let mut refetch = false;
        self.detail.update(|run| {
            if let Some(run) = run {
                refetch = live::apply(run, &event);
            }
        });
        self.events.update(|log| log.push(event));
        if refetch {
            self.reload(id.to_owned());
        }
    }
}

#[component]
pub fn RunPage() -> impl IntoView {
    let params = use_params_map();
    let run_id = move || params.read().get("id").unwrap_or_default();
    let run = LiveRun::new();
    run.follow(run_id);
    let notice = RwSignal::new(None::<String>);
    // The page's frame changes only with the run's summary (at its end); the tasks
    // update in place from `detail`.
    let summary = Memo::new(move |_| run.detail.get().map(|run| run.summary));
    view! {
        {move || run.failure.get().map(|error| error_note(&error))}
        {move || match (summary.get(), run.shape.get()) {
            (Some(summary), Some(shape)) => view! {
                <RunHeader summary=summary run_id=Signal::derive(run_id) detail=run.detail notice=notice/>
                <TaskGraph shape=shape.clone() detail=run.detail/>
                <section class="panel glass" aria-labelledby="tasks-title">
                    <h2 id="tasks-title">"Tasks"</h2>
                    <TaskTable shape=shape detail=run.detail/>
                </section>
                <EventLog events=run.events/>
            }.into_any(),
            _ => view::loading().into_any(),
        }}
    }
}

/// The run's workflow, its state, cancel and run-again, who started it and when, and
/// what became of the last cancel or run-again.
#[component]
fn RunHeader(
    summary: RunSummary,
    run_id: Signal<String>,
    detail: RwSignal<Option<RunDetail>>,
    notice: RwSignal<Option<String>>,
) -> impl IntoView {
    let running = summary.status == "running";
    view! {
        <header class="page-head">
            <h1>{summary.workflow_name.clone()}</h1>
            <Status status=Signal::derive(move || detail.get().map(|run| run.summary.status).unwrap_or_default())/>
            <div class="actions">
                <button type="button" class="button danger" on:click=move |_| cancel(run_id.get_untracked(), notice) disabled=!running>"Cancel"</button>
                <button type="button" class="button" on:click=move |_| run_again(detail, notice)>"Run again"</button>
                <button type="button" class="button" data-testid="retry" disabled=move || !retryable(detail)
                    on:click=move |_| retry(run_id.get_untracked(), notice)>"Retry failed tasks"</button>
            </div>
        </header>
        <p class="muted">
            {format!("Run {} of {} v{}, project {}, started by {} at {} UTC",
                summary.run_id, summary.workflow_id, summary.workflow_version,
                summary.project, summary.started_by, format::timestamp(summary.created_at_ms))}
        </p>
        {move || detail.get().and_then(|run| trace_line(run.trace_id, run.trace_url))}
        {move || detail.get().and_then(|run| run.budget).map(budget_line)}
        {move || notice.get().map(|message| view! { <p class="note" role="status">{message}</p> })}
    }
}

/// The run's trace id, linked to the trace viewer when the node names one.
fn trace_line(id: Option<String>, url: Option<String>) -> Option<AnyView> {
    let id = id?;
    let shown = match url {
        Some(url) => view! { <a href=url target="_blank" rel="noopener">{id}</a> }.into_any(),
        None => view! { <code>{id}</code> }.into_any(),
    };
    Some(view! { <p class="muted trace">"Trace " {shown}</p> }.into_any())
}

/// What the run spent of its budget, and what a call past it does.
fn budget_line(budget: RunBudget) -> AnyView {
    let over = budget.spent_usd >= budget.budget_usd;
    view! {
        <p class="muted budget" data-testid="run-budget">
            {format!("Spent {} of a {} budget (on_budget: {})",
                format::usd(budget.spent_usd), format::usd(budget.budget_usd), budget.on_budget)}
            {over.then_some(" — spent")}
        </p>
    }
    .into_any()
}

/// Whether the run ended failed or cancelled, so a retry can continue it.
fn retryable(detail: RwSignal<Option<RunDetail>>) -> bool {
    detail.with(|run| {
        run.as_ref()
            .is_some_and(|run| matches!(run.summary.status.as_str(), "failed" | "cancelled"))
    })
}

/// Asks the node to continue run `id` as a new attempt; `notice` says which tasks run
/// again, or why not. The page follows the run's events, which bring the rest.
fn retry(id: String, notice: RwSignal<Option<String>>) {
    spawn_local(async move {
        let path = format!("/api/v1/runs/{id}/retry");
        match api::post::<crate::model::Retried>(&path, &json!({})).await {
            Ok(retried) => notice.set(Some(format!("Retrying: {}.", retried.tasks.join(", ")))),
            Err(error) => notice.set(Some(error.to_string())),
        }
    });
}

/// Asks the engine to cancel run `id`; `notice` says that it was asked, or why not.
fn cancel(id: String, notice: RwSignal<Option<String>>) {
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
}

/// Starts the run's workflow version again and opens the new run; `notice` says why
/// when it cannot.
fn run_again(detail: RwSignal<Option<RunDetail>>, notice: RwSignal<Option<String>>) {
    let Some(run) = detail.get_untracked() else {
        return;
    };
    spawn_local(async move {
        let started = super::start_and_open(&run.summary.workflow_id, run.summary.workflow_version);
        if let Err(error) = started.await {
            notice.set(Some(error.to_string()));
        }
    });
}

/// The workflow's DAG, each task coloured by its state.
#[component]
fn TaskGraph(shape: Shape, detail: RwSignal<Option<RunDetail>>) -> impl IntoView {
    let graph = shape
        .tasks
        .iter()
        .map(|(id, _, _, needs)| (id.clone(), needs.clone()))
        .collect();
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
    view! {
        <section class="panel glass" aria-label="Task graph">
            <DagView tasks=graph state_of=state_of/>
        </section>
    }
}

/// The run's events, oldest first, growing as they come.
#[component]
fn EventLog(events: RwSignal<Vec<Value>>) -> impl IntoView {
    view! {
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
    }
}

#[component]
fn TaskTable(shape: Shape, detail: RwSignal<Option<RunDetail>>) -> impl IntoView {
    let rows = shape
        .tasks
        .into_iter()
        .map(|(id, name, agent, _)| {
            // A fan-out's children, once it expanded, in rows under it.
            let children = Memo::new({
                let id = id.clone();
                move |_| {
                    detail.read().as_ref().map_or_else(Vec::new, |run| {
                        run.tasks
                            .iter()
                            .filter(|task| task.parent.as_deref() == Some(id.as_str()))
                            .map(|task| task.id.clone())
                            .collect::<Vec<_>>()
                    })
                }
            });
            let child_rows = {
                let (id, name, agent) = (id.clone(), name.clone(), agent.clone());
                move || {
                    children
                        .get()
                        .into_iter()
                        .map(|child| {
                            let label = format!("{name} {}", &child[id.len()..]);
                            view! { <TaskRow id=child name=label agent=agent.clone() detail=detail child=true/> }
                        })
                        .collect_view()
                }
            };
            view! {
                <TaskRow id=id name=name agent=agent detail=detail child=false/>
                {child_rows}
            }
        })
        .collect_view();
    view! {
        <div class="table-scroll">
            <table class="table" data-testid="tasks">
                <thead><tr>
                    <th scope="col">"Task"</th><th scope="col">"Agent"</th><th scope="col">"State"</th>
                    <th scope="col">"Attempts"</th><th scope="col">"Node"</th><th scope="col">"Took"</th><th scope="col">"Cost"</th>
                    <th scope="col">"Outputs"</th>
                </tr></thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
    }
}

/// One task's row; a fan-out's child is indented under its fan-out.
#[component]
fn TaskRow(
    id: String,
    name: String,
    agent: String,
    detail: RwSignal<Option<RunDetail>>,
    child: bool,
) -> impl IntoView {
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
    let node = {
        let task = task.clone();
        move || task().and_then(|t| t.node).unwrap_or_else(|| "—".into())
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
        <tr id=format!("task-{id}") data-task=id.clone() class:child=child>
            <th scope="row">{name}<br/><code class="muted">{id.clone()}</code></th>
            <td>{agent}</td>
            <td><Status status=status/></td>
            <td>{attempts}</td>
            <td>{node}</td>
            <td>{timing}</td>
            <td>{cost}</td>
            <td>{outputs}</td>
        </tr>
    }
}
