//! The workflow builder: a canvas with a palette of node types, nodes dragged into place
//! and connected port to port, a properties panel per node, the engine's own validation
//! shown on the nodes as you edit, the total estimated cost, undo/redo, zoom and pan, and
//! YAML import/export, save and run.
//!
//! Everything the pointer does has a keyboard way too: palette items are buttons that
//! place a node, nodes are focusable and move with the arrow keys, and "runs after"
//! checkboxes in the properties panel connect tasks.

mod canvas;
pub mod design;
mod properties;

use leptos::ev::{KeyboardEvent, PointerEvent};
use leptos::prelude::*;
use leptos::task::spawn_local;
use troupe_workflow::Diagnostic;

use crate::api;
use crate::model::{AgentKind, Created, WorkflowSummary, WorkflowVersions};
use crate::view::{dag, format};
use canvas::{Canvas, CanvasView};
use design::{Design, NodeId, NodeKind, StartingInputs};

const WIDTH: f64 = dag::NODE_WIDTH;
const HEIGHT: f64 = dag::NODE_HEIGHT;
const HISTORY: usize = 200;

/// The builder's state, shared by its parts.
#[derive(Clone, Copy)]
pub struct Builder {
    pub design: RwSignal<Design>,
    past: RwSignal<Vec<Design>>,
    future: RwSignal<Vec<Design>>,
    pub selected: RwSignal<Option<NodeId>>,
    pub message: RwSignal<Option<String>>,
    pub kinds: RwSignal<Vec<AgentKind>>,
}

impl Builder {
    /// An empty design with no history, nothing selected and no agent kinds yet.
    fn new() -> Self {
        Self {
            design: RwSignal::new(Design::new("New workflow")),
            past: RwSignal::new(Vec::new()),
            future: RwSignal::new(Vec::new()),
            selected: RwSignal::new(None),
            message: RwSignal::new(None),
            kinds: RwSignal::new(Vec::new()),
        }
    }

    /// Applies an edit as one step of the history.
    pub fn commit(&self, change: impl FnOnce(&mut Design)) {
        let before = self.design.get_untracked();
        let mut after = before.clone();
        change(&mut after);
        if after != before {
            self.remember(before);
            self.design.set(after);
        }
    }

    /// An edit that can fail: refused edits leave the design as it was and say why.
    pub fn try_commit(&self, change: impl FnOnce(&mut Design) -> Result<(), String>) {
        let mut outcome = Ok(());
        self.commit(|design| outcome = change(design));
        self.message.set(outcome.err());
    }

    fn remember(&self, before: Design) {
        self.past.update(|past| {
            past.push(before);
            if past.len() > HISTORY {
                past.remove(0);
            }
        });
        self.future.update(Vec::clear);
    }

    fn undo(&self) {
        if let Some(previous) = self.past.try_update(Vec::pop).flatten() {
            self.future
                .update(|future| future.push(self.design.get_untracked()));
            self.design.set(previous);
        }
    }

    fn redo(&self) {
        if let Some(next) = self.future.try_update(Vec::pop).flatten() {
            self.past
                .update(|past| past.push(self.design.get_untracked()));
            self.design.set(next);
        }
    }

    pub fn kind_names(&self) -> Vec<String> {
        self.kinds
            .with(|kinds| kinds.iter().map(|kind| kind.kind.clone()).collect())
    }

    fn starting_inputs(&self) -> StartingInputs {
        self.kinds.with(|kinds| {
            kinds
                .iter()
                .map(|kind| {
                    let fields = kind.input_schema["fields"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default();
                    let name = |field: &serde_json::Value| field["name"].as_str().map(String::from);
                    let required: Vec<String> = fields
                        .iter()
                        .filter(|field| field["required"].as_bool() == Some(true))
                        .filter_map(name)
                        .collect();
                    let starting = if required.is_empty() {
                        fields.first().and_then(name).into_iter().collect()
                    } else {
                        required
                    };
                    (kind.kind.clone(), starting)
                })
                .collect()
        })
    }

    /// Places a node and selects it.
    fn place(&self, kind: &NodeKind, at: (f64, f64)) {
        let starting = self.starting_inputs();
        let mut placed = None;
        self.commit(|design| placed = Some(design.add(kind, at, &starting)));
        self.selected.set(placed);
    }

    /// A free spot right of every node, for nodes placed from the keyboard.
    fn free_spot(&self) -> (f64, f64) {
        self.design.with_untracked(|design| {
            let right = design
                .nodes()
                .iter()
                .map(|node| design.position(node).0)
                .fold(None, |max: Option<f64>, x| {
                    Some(max.map_or(x, |m| m.max(x)))
                });
            (
                right.map_or(WIDTH + 76.0, |x| x + WIDTH + 48.0),
                2.0 * HEIGHT,
            )
        })
    }

    /// Ctrl+Z undoes, Ctrl+Shift+Z and Ctrl+Y redo (Cmd for Ctrl on a Mac).
    fn undo_shortcut(&self, event: &KeyboardEvent) {
        let key = event.key();
        let command = event.ctrl_key() || event.meta_key();
        match key.as_str() {
            "z" | "Z" if command && event.shift_key() => self.redo(),
            "z" if command => self.undo(),
            "y" if command => self.redo(),
            _ => return,
        }
        event.prevent_default();
    }
}

/// `text` percent-encoded for a `data:` URL (pure Rust: this also runs on the server).
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

#[component]
pub fn BuilderPage() -> impl IntoView {
    let builder = Builder::new();
    provide_context(builder);
    let kinds = LocalResource::new(|| api::get::<Vec<AgentKind>>("/api/v1/agents"));
    Effect::new(move |_| {
        if let Some(Ok(list)) = kinds.get() {
            builder.kinds.set(list);
        }
    });
    let diagnostics = Memo::new(move |_| {
        let names = builder.kind_names();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        builder.design.with(|design| design.validate(&names))
    });
    // The whole builder, not the canvas alone, hears the pointer move and go up: a
    // palette item is dragged in from outside the canvas, and a drag goes on when the
    // pointer strays off it.
    let canvas = Canvas::new(builder);
    let yaml = Memo::new(move |_| builder.design.with(Design::export));
    view! {
        <h1>"Workflow builder"</h1>
        <div class="builder"
            on:pointermove=move |event: PointerEvent| canvas.pointer_moved(event)
            on:pointerup=move |event: PointerEvent| canvas.pointer_released(event)
            on:keydown=move |event: KeyboardEvent| builder.undo_shortcut(&event)
        >
            <Palette canvas=canvas/>
            <section class="canvas-area glass" aria-labelledby="canvas-title">
                <Toolbar zoom=canvas.zoom/>
                <CanvasView canvas=canvas diagnostics=diagnostics/>
            </section>
            <properties::Properties/>
        </div>
        {move || builder.message.get().map(|text| view! { <p class="note error" role="alert">{text}</p> })}
        <ProblemsPanel diagnostics=diagnostics/>
        <Exchange yaml=yaml/>
    }
}

/// The node types to add: each is a button that places its node, or that is dragged
/// onto the canvas.
#[component]
fn Palette(canvas: Canvas) -> impl IntoView {
    let builder = expect_context::<Builder>();
    let items = move || {
        palette_items(builder)
            .into_iter()
            .map(|(kind, label)| {
                let grab = kind.clone();
                let name = label.clone();
                view! {
                    <li>
                        <button type="button" class="palette-item" data-palette=name
                            on:pointerdown=move |event: PointerEvent| {
                                event.prevent_default();
                                canvas.carry(grab.clone());
                            }
                            on:click=move |_| builder.place(&kind, builder.free_spot())
                        >{label}</button>
                    </li>
                }
            })
            .collect_view()
    };
    view! {
        <aside class="palette glass" aria-labelledby="palette-title">
            <h2 id="palette-title">"Add"</h2>
            <p class="muted">"Drag onto the canvas, or press to place."</p>
            <ul class="plain" data-testid="palette">{items}</ul>
        </aside>
    }
}

/// The palette's entries and their labels: the node's agent kinds (but `human_review`,
/// which the approval entry stands for), then approval, condition and trigger.
fn palette_items(builder: Builder) -> Vec<(NodeKind, String)> {
    let mut items: Vec<(NodeKind, String)> = builder.kinds.with(|kinds| {
        kinds
            .iter()
            .filter(|kind| kind.kind != "human_review")
            .map(|kind| (NodeKind::Agent(kind.kind.clone()), kind.kind.clone()))
            .collect()
    });
    items.push((NodeKind::Approval, "approval".into()));
    items.push((NodeKind::Condition, "condition".into()));
    items.push((NodeKind::Trigger, "trigger".into()));
    items
}

/// Undo and redo, zoom, arrange, and the design's estimated cost.
#[component]
fn Toolbar(zoom: RwSignal<(f64, f64, f64)>) -> impl IntoView {
    let builder = expect_context::<Builder>();
    view! {
        <div class="toolbar">
            <h2 id="canvas-title" class="visually-hidden">"Canvas"</h2>
            <button type="button" class="button ghost" on:click=move |_| builder.undo() disabled=move || builder.past.with(Vec::is_empty) aria-keyshortcuts="Control+Z">"Undo"</button>
            <button type="button" class="button ghost" on:click=move |_| builder.redo() disabled=move || builder.future.with(Vec::is_empty) aria-keyshortcuts="Control+Shift+Z">"Redo"</button>
            <button type="button" class="button ghost" aria-label="Zoom out" on:click=move |_| zoom.update(|(s, _, _)| *s = (*s / 1.2).max(0.25))>"−"</button>
            <span class="muted" aria-live="polite">{move || format!("{:.0}%", zoom.get().0 * 100.0)}</span>
            <button type="button" class="button ghost" aria-label="Zoom in" on:click=move |_| zoom.update(|(s, _, _)| *s = (*s * 1.2).min(3.0))>"+"</button>
            <button type="button" class="button ghost" on:click=move |_| zoom.set((1.0, 0.0, 0.0))>"Reset view"</button>
            <button type="button" class="button ghost" on:click=move |_| builder.commit(Design::lay_out)>"Arrange"</button>
            <span class="cost" data-testid="estimated-cost">{move || format!("Estimated cost {}", format::usd(builder.design.with(Design::total_estimated_cost)))}</span>
        </div>
    }
}

/// The engine's validation of the design, as it is edited.
#[component]
fn ProblemsPanel(diagnostics: Memo<Vec<Diagnostic>>) -> impl IntoView {
    view! {
        <section class="panel glass" aria-labelledby="problems-title">
            <h2 id="problems-title">{move || format!("Problems ({})", diagnostics.with(Vec::len))}</h2>
            <ul class="plain" data-testid="problems">
                {move || diagnostics.get().into_iter().map(|d| view! {
                    <li>{d.task_id.map(|id| format!("{id}: ")).unwrap_or_default()}{d.message}{d.hint.map(|h| format!(" ({h})")).unwrap_or_default()}</li>
                }).collect_view()}
            </ul>
        </section>
    }
}

/// Import, export, save and run.
#[component]
fn Exchange(yaml: Memo<String>) -> impl IntoView {
    let builder = expect_context::<Builder>();
    let source = RwSignal::new(String::new());
    let status = RwSignal::new(None::<String>);
    let saved = LocalResource::new(|| api::get::<Vec<WorkflowSummary>>("/api/v1/workflows"));
    let import = move |text: String| {
        let names = builder.kind_names();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        match Design::import(&text, &names) {
            Ok(imported) => {
                builder.commit(|design| *design = imported);
                builder.selected.set(None);
                status.set(Some("Imported.".into()));
            }
            Err(problems) => status.set(Some(format!(
                "Not imported: {}",
                problems
                    .iter()
                    .map(|d| format!("line {}: {}", d.line, d.message))
                    .collect::<Vec<_>>()
                    .join("; ")
            ))),
        }
    };
    let open = move |workflow_id: String| {
        spawn_local(async move {
            match api::get::<WorkflowVersions>(&format!("/api/v1/workflows/{workflow_id}")).await {
                Ok(found) => {
                    if let Some(latest) = found.versions.iter().max_by_key(|v| v.version) {
                        import(latest.source.clone());
                    }
                }
                Err(error) => status.set(Some(error.to_string())),
            }
        });
    };
    let save = move |then_run: bool| {
        let body =
            serde_json::json!({ "source": yaml.get_untracked(), "file_name": "builder.yaml" });
        spawn_local(async move {
            let created = match api::post::<Created>("/api/v1/workflows", &body).await {
                Ok(created) => created,
                Err(error) => return status.set(Some(error.to_string())),
            };
            status.set(Some(format!(
                "Saved {} as version {}.",
                created.workflow_id, created.version
            )));
            if then_run
                && let Err(error) =
                    crate::pages::start_and_open(&created.workflow_id, created.version).await
            {
                status.set(Some(error.to_string()));
            }
        });
    };
    view! {
        <section class="panel glass" aria-labelledby="yaml-title">
            <header class="page-head">
                <h2 id="yaml-title">"YAML"</h2>
                <div class="actions">
                    <a class="button ghost" download="workflow.yaml" href=move || format!("data:text/yaml;charset=utf-8,{}", percent_encode(&yaml.get()))>"Download"</a>
                    <button type="button" class="button" data-testid="save" on:click=move |_| save(false)>"Save as new version"</button>
                    <button type="button" class="button primary" data-testid="save-and-run" on:click=move |_| save(true)>"Save and run"</button>
                </div>
            </header>
            {move || status.get().map(|text| view! { <p class="note" role="status">{text}</p> })}
            <label>"Exported definition"
                <textarea readonly rows="12" class="code" data-testid="yaml" prop:value=move || yaml.get()></textarea>
            </label>
        </section>
        <section class="panel glass" aria-labelledby="import-title">
            <h2 id="import-title">"Import"</h2>
            <label>"Open a saved workflow"
                <select on:change=move |event| { let id = event_target_value(&event); if !id.is_empty() { open(id) } }>
                    <option value="">"choose…"</option>
                    {move || saved.get().and_then(Result::ok).unwrap_or_default().into_iter().map(|w| view! {
                        <option value=w.workflow_id.clone()>{format!("{} (v{}, {})", w.name, w.latest_version, w.project)}</option>
                    }).collect_view()}
                </select>
            </label>
            <label>"Or paste workflow YAML"
                <textarea rows="6" class="code" data-testid="import-source" prop:value=move || source.get() on:input=move |event| source.set(event_target_value(&event))></textarea>
            </label>
            <button type="button" class="button" data-testid="import" on:click=move |_| import(source.get_untracked())>"Import"</button>
        </section>
    }
}
