//! The workflow builder: a canvas with a palette of node types, nodes dragged into place
//! and connected port to port, a properties panel per node, the engine's own validation
//! shown on the nodes as you edit, the total estimated cost, undo/redo, zoom and pan, and
//! YAML import/export, save and run.
//!
//! Everything the pointer does has a keyboard way too: palette items are buttons that
//! place a node, nodes are focusable and move with the arrow keys, and "runs after"
//! checkboxes in the properties panel connect tasks.

pub mod design;
mod properties;

use leptos::ev::{KeyboardEvent, PointerEvent, WheelEvent};
use leptos::prelude::*;
use leptos::task::spawn_local;
use wasm_bindgen::JsCast;

use crate::api;
use crate::model::{AgentKind, Created, WorkflowSummary, WorkflowVersions};
use crate::view::{dag, format};
use design::{Design, NodeId, NodeKind, RequiredInputs};

const WIDTH: f64 = dag::NODE_WIDTH;
const HEIGHT: f64 = dag::NODE_HEIGHT;
const HISTORY: usize = 200;

#[derive(Debug, Clone, PartialEq)]
enum Drag {
    Idle,
    /// A palette item on its way to the canvas.
    Place(NodeKind),
    Move {
        node: NodeId,
        grab: (f64, f64),
        /// The design when the drag began: one history step if the node moved.
        before: Box<Design>,
        moved: bool,
    },
    Connect {
        from: NodeId,
        to: (f64, f64),
    },
    Pan {
        last: (f64, f64),
    },
}

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

    fn required_inputs(&self) -> RequiredInputs {
        self.kinds.with(|kinds| {
            kinds
                .iter()
                .map(|kind| {
                    let required = kind.input_schema["fields"]
                        .as_array()
                        .map(|fields| {
                            fields
                                .iter()
                                .filter(|field| field["required"].as_bool() == Some(true))
                                .filter_map(|field| field["name"].as_str().map(String::from))
                                .collect()
                        })
                        .unwrap_or_default();
                    (kind.kind.clone(), required)
                })
                .collect()
        })
    }

    /// Places a node and selects it.
    fn place(&self, kind: &NodeKind, at: (f64, f64)) {
        let required = self.required_inputs();
        let mut placed = None;
        self.commit(|design| placed = Some(design.add(kind, at, &required)));
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
}

fn title_of(design: &Design, node: &NodeId) -> (String, String, &'static str) {
    match node {
        NodeId::Task(id) => match design.task(id) {
            Some(task) if task.requires_approval => (
                task.name.clone(),
                format!("approval · {}", task.agent),
                "approval",
            ),
            Some(task) => (task.name.clone(), task.agent.clone(), "task"),
            None => (id.clone(), String::new(), "task"),
        },
        NodeId::Condition(task, index) => {
            let text = design
                .task(task)
                .and_then(|t| t.conditions.get(*index))
                .map(|c| c.if_.clone())
                .unwrap_or_default();
            ("condition".into(), text, "condition")
        }
        NodeId::Loose(index) => (
            "condition".into(),
            design
                .loose
                .get(*index)
                .map(|c| c.if_.clone())
                .unwrap_or_default(),
            "condition",
        ),
        NodeId::Schedule => (
            "schedule".into(),
            design
                .workflow
                .triggers
                .schedule
                .as_ref()
                .map(|s| s.cron.clone())
                .unwrap_or_default(),
            "trigger",
        ),
        NodeId::Push => (
            "on push".into(),
            design
                .workflow
                .triggers
                .on_push
                .as_ref()
                .map(|p| p.branches.join(", "))
                .unwrap_or_default(),
            "trigger",
        ),
    }
}

/// Whether a diagnostic belongs to `node`.
fn concerns(diagnostic: &troupe_workflow::Diagnostic, node: &NodeId) -> bool {
    match node {
        NodeId::Task(id) => {
            diagnostic.task_id.as_deref() == Some(id) && !diagnostic.path.contains(".conditions[")
        }
        NodeId::Condition(id, index) => {
            diagnostic.task_id.as_deref() == Some(id)
                && diagnostic.path.contains(&format!(".conditions[{index}]"))
        }
        NodeId::Loose(index) => diagnostic.path == format!("loose condition {}", index + 1),
        NodeId::Schedule | NodeId::Push => diagnostic.path.starts_with("triggers"),
    }
}

fn short(text: &str, limit: usize) -> String {
    if text.chars().count() <= limit {
        text.to_owned()
    } else {
        format!("{}…", text.chars().take(limit - 1).collect::<String>())
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
    let builder = Builder {
        design: RwSignal::new(Design::new("New workflow")),
        past: RwSignal::new(Vec::new()),
        future: RwSignal::new(Vec::new()),
        selected: RwSignal::new(None),
        message: RwSignal::new(None),
        kinds: RwSignal::new(Vec::new()),
    };
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
    let drag = RwSignal::new(Drag::Idle);
    let zoom = RwSignal::new((1.0_f64, 0.0_f64, 0.0_f64));
    let canvas = NodeRef::<leptos::html::Div>::new();

    // The pointer in canvas coordinates, and whether it is over the canvas.
    let locate = move |event: &PointerEvent| -> Option<((f64, f64), bool)> {
        let rect = canvas.get_untracked()?.get_bounding_client_rect();
        let (x, y) = (
            f64::from(event.client_x()) - rect.left(),
            f64::from(event.client_y()) - rect.top(),
        );
        let inside = x >= 0.0 && y >= 0.0 && x <= rect.width() && y <= rect.height();
        let (scale, tx, ty) = zoom.get_untracked();
        Some((((x - tx) / scale, (y - ty) / scale), inside))
    };

    let on_move = move |event: PointerEvent| {
        let Some((at, _)) = locate(&event) else {
            return;
        };
        match drag.get_untracked() {
            Drag::Move {
                node, grab, before, ..
            } => {
                builder.design.update(|design| {
                    design
                        .positions
                        .insert(node.clone(), (at.0 - grab.0, at.1 - grab.1));
                });
                drag.set(Drag::Move {
                    node,
                    grab,
                    before,
                    moved: true,
                });
            }
            Drag::Connect { from, .. } => drag.set(Drag::Connect { from, to: at }),
            Drag::Pan { last } => {
                let (x, y) = (f64::from(event.client_x()), f64::from(event.client_y()));
                zoom.update(|(_, tx, ty)| {
                    *tx += x - last.0;
                    *ty += y - last.1;
                });
                drag.set(Drag::Pan { last: (x, y) });
            }
            Drag::Idle | Drag::Place(_) => {}
        }
    };
    let on_up = move |event: PointerEvent| {
        let located = locate(&event);
        match drag.get_untracked() {
            Drag::Place(kind) => {
                if let Some((at, true)) = located {
                    builder.place(&kind, (at.0 - WIDTH / 2.0, at.1 - HEIGHT / 2.0));
                }
            }
            Drag::Move {
                before,
                moved: true,
                ..
            } => builder.remember(*before),
            Drag::Connect { from, .. } => {
                let target = event
                    .target()
                    .and_then(|target| target.dyn_into::<web_sys::Element>().ok())
                    .and_then(|element| element.closest("[data-node]").ok().flatten())
                    .and_then(|element| element.get_attribute("data-node"))
                    .and_then(|key| NodeId::from_key(&key));
                if let Some(to) = target.filter(|to| *to != from) {
                    builder.try_commit(|design| design.connect(&from, &to));
                }
            }
            Drag::Move { .. } | Drag::Pan { .. } | Drag::Idle => {}
        }
        drag.set(Drag::Idle);
    };
    let on_wheel = move |event: WheelEvent| {
        event.prevent_default();
        let factor = if event.delta_y() < 0.0 {
            1.1
        } else {
            1.0 / 1.1
        };
        zoom.update(|(scale, _, _)| *scale = (*scale * factor).clamp(0.25, 3.0));
    };
    let on_key = move |event: KeyboardEvent| {
        let key = event.key();
        let command = event.ctrl_key() || event.meta_key();
        match key.as_str() {
            "z" | "Z" if command && event.shift_key() => builder.redo(),
            "z" if command => builder.undo(),
            "y" if command => builder.redo(),
            _ => return,
        }
        event.prevent_default();
    };

    let palette = move || {
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
            .into_iter()
            .map(|(kind, label)| {
                let grab = kind.clone();
                let name = label.clone();
                view! {
                    <li>
                        <button type="button" class="palette-item" data-palette=name
                            on:pointerdown=move |event: PointerEvent| {
                                event.prevent_default();
                                drag.set(Drag::Place(grab.clone()));
                            }
                            on:click=move |_| builder.place(&kind, builder.free_spot())
                        >{label}</button>
                    </li>
                }
            })
            .collect_view()
    };

    let edges = move || {
        builder.design.with(|design| {
            design
                .edges()
                .into_iter()
                .map(|(from, to)| {
                    let (x1, y1) = design.position(&from);
                    let (x2, y2) = design.position(&to);
                    let path = dag::curve(x1 + WIDTH, y1 + HEIGHT / 2.0, x2, y2 + HEIGHT / 2.0);
                    view! { <path class="edge" d=path data-from=from.key() data-to=to.key() marker-end="url(#builder-arrow)"/> }
                })
                .collect_view()
        })
    };
    let pending_edge = move || match drag.get() {
        Drag::Connect { from, to } => {
            let (x, y) = builder
                .design
                .with_untracked(|design| design.position(&from));
            Some(
                view! { <path class="edge pending" d=dag::curve(x + WIDTH, y + HEIGHT / 2.0, to.0, to.1)/> },
            )
        }
        _ => None,
    };

    let node_view = move |node: NodeId| {
        let key = node.key();
        let position = Memo::new({
            let node = node.clone();
            move |_| builder.design.with(|design| design.position(&node))
        });
        let title = Memo::new({
            let node = node.clone();
            move |_| builder.design.with(|design| title_of(design, &node))
        });
        let problems = Memo::new({
            let node = node.clone();
            move |_| {
                diagnostics.with(|all| {
                    all.iter()
                        .filter(|d| concerns(d, &node))
                        .map(|d| d.message.clone())
                        .collect::<Vec<_>>()
                })
            }
        });
        let is_selected = Memo::new({
            let node = node.clone();
            move |_| builder.selected.get().as_ref() == Some(&node)
        });
        let has_input = matches!(node, NodeId::Task(_));
        let grab_node = node.clone();
        let key_node = node.clone();
        let focus_node = node.clone();
        view! {
            <g
                class="b-node"
                data-node=key.clone()
                data-kind=move || title.get().2
                data-invalid=move || (!problems.get().is_empty()).to_string()
                tabindex="0"
                role="button"
                aria-pressed=move || is_selected.get().to_string()
                aria-label=move || {
                    let (name, detail, kind) = title.get();
                    let issues = problems.get();
                    let issues = if issues.is_empty() { String::new() } else { format!(". Problems: {}", issues.join("; ")) };
                    format!("{kind} {name}, {detail}{issues}. Arrow keys move it, Delete removes it")
                }
                transform=move || { let (x, y) = position.get(); format!("translate({x:.1},{y:.1})") }
                on:focus=move |_| builder.selected.set(Some(focus_node.clone()))
                on:pointerdown=move |event: PointerEvent| {
                    event.stop_propagation();
                    builder.selected.set(Some(grab_node.clone()));
                    if let Some((at, _)) = locate(&event) {
                        let (x, y) = builder.design.with_untracked(|design| design.position(&grab_node));
                        drag.set(Drag::Move { node: grab_node.clone(), grab: (at.0 - x, at.1 - y), before: Box::new(builder.design.get_untracked()), moved: false });
                    }
                }
                on:keydown=move |event: KeyboardEvent| {
                    let step = if event.shift_key() { 64.0 } else { 16.0 };
                    let delta = match event.key().as_str() {
                        "ArrowLeft" => (-step, 0.0),
                        "ArrowRight" => (step, 0.0),
                        "ArrowUp" => (0.0, -step),
                        "ArrowDown" => (0.0, step),
                        "Delete" | "Backspace" => {
                            event.prevent_default();
                            builder.commit(|design| design.remove(&key_node));
                            builder.selected.set(None);
                            return;
                        }
                        _ => return,
                    };
                    event.prevent_default();
                    builder.commit(|design| {
                        let (x, y) = design.position(&key_node);
                        design.positions.insert(key_node.clone(), (x + delta.0, y + delta.1));
                    });
                }
            >
                <rect class="b-body" width=WIDTH height=HEIGHT rx="10" data-selected=move || is_selected.get().to_string()/>
                <text x="12" y="21" class="b-title">{move || short(&title.get().0, 20)}</text>
                <text x="12" y="39" class="b-sub">{move || short(&title.get().1, 24)}</text>
                {move || (!problems.get().is_empty()).then(|| view! {
                    <g class="b-problem"><circle cx=WIDTH - 14.0 cy="14" r="9"/><text x=WIDTH - 14.0 y="18" text-anchor="middle">"!"</text>
                    <title>{problems.get().join("\n")}</title></g>
                })}
                {has_input.then(|| view! { <circle class="port in" cx="0" cy=HEIGHT / 2.0 r="7" data-port="in"/> })}
                {(!matches!(node, NodeId::Condition(..))).then(|| {
                    let from = node.clone();
                    view! {
                        <circle class="port out" cx=WIDTH cy=HEIGHT / 2.0 r="7" data-port="out"
                            on:pointerdown=move |event: PointerEvent| {
                                event.stop_propagation();
                                if let Some((at, _)) = locate(&event) {
                                    drag.set(Drag::Connect { from: from.clone(), to: at });
                                }
                            }/>
                    }
                })}
            </g>
        }
    };

    let yaml = Memo::new(move |_| builder.design.with(Design::export));
    view! {
        <h1>"Workflow builder"</h1>
        <div class="builder" on:pointermove=on_move on:pointerup=on_up on:keydown=on_key>
            <aside class="palette glass" aria-labelledby="palette-title">
                <h2 id="palette-title">"Add"</h2>
                <p class="muted">"Drag onto the canvas, or press to place."</p>
                <ul class="plain" data-testid="palette">{palette}</ul>
            </aside>
            <section class="canvas-area glass" aria-labelledby="canvas-title">
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
                <div class="canvas" node_ref=canvas data-testid="canvas"
                    on:pointerdown=move |event: PointerEvent| {
                        builder.selected.set(None);
                        drag.set(Drag::Pan { last: (f64::from(event.client_x()), f64::from(event.client_y())) });
                    }
                    on:wheel=on_wheel
                >
                    <svg width="100%" height="100%" role="group" aria-label="The workflow's nodes">
                        <defs>
                            <marker id="builder-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
                                <path d="M0,0 L10,5 L0,10 z" class="arrowhead"/>
                            </marker>
                        </defs>
                        <g transform=move || { let (s, x, y) = zoom.get(); format!("translate({x:.1},{y:.1}) scale({s:.3})") }>
                            {edges}
                            {pending_edge}
                            <For each=move || builder.design.with(Design::nodes) key=NodeId::key children=node_view/>
                        </g>
                    </svg>
                </div>
            </section>
            <properties::Properties/>
        </div>
        {move || builder.message.get().map(|text| view! { <p class="note error" role="alert">{text}</p> })}
        <section class="panel glass" aria-labelledby="problems-title">
            <h2 id="problems-title">{move || format!("Problems ({})", diagnostics.with(Vec::len))}</h2>
            <ul class="plain" data-testid="problems">
                {move || diagnostics.get().into_iter().map(|d| view! {
                    <li>{d.task_id.map(|id| format!("{id}: ")).unwrap_or_default()}{d.message}{d.hint.map(|h| format!(" ({h})")).unwrap_or_default()}</li>
                }).collect_view()}
            </ul>
        </section>
        <Exchange yaml=yaml/>
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
