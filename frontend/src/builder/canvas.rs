//! The builder's canvas: the nodes drawn in SVG, dragged into place and connected port
//! to port, zoomed with the wheel and panned by dragging the background.
//!
//! A drag starts on a node, a port, a palette item or the background, but it ends
//! wherever the pointer is let go, so its state lives in [`Canvas`], which the page
//! hands to every part that starts or ends one.

use leptos::ev::{KeyboardEvent, PointerEvent, WheelEvent};
use leptos::prelude::*;
use troupe_workflow::{Diagnostic, Task};
use wasm_bindgen::JsCast;

use super::design::{Design, NodeId, NodeKind};
use super::{Builder, HEIGHT, WIDTH};
use crate::view::dag;

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

/// The pointer's drag and the view's zoom and pan, shared by the canvas's parts.
#[derive(Clone, Copy)]
pub struct Canvas {
    builder: Builder,
    drag: RwSignal<Drag>,
    /// The scale, then the translation in x and y.
    pub zoom: RwSignal<(f64, f64, f64)>,
    area: NodeRef<leptos::html::Div>,
}

impl Canvas {
    pub fn new(builder: Builder) -> Self {
        Self {
            builder,
            drag: RwSignal::new(Drag::Idle),
            zoom: RwSignal::new((1.0, 0.0, 0.0)),
            area: NodeRef::new(),
        }
    }

    /// The pointer in canvas coordinates, and whether it is over the canvas.
    fn locate(&self, event: &PointerEvent) -> Option<((f64, f64), bool)> {
        let rect = self.area.get_untracked()?.get_bounding_client_rect();
        let (x, y) = (
            f64::from(event.client_x()) - rect.left(),
            f64::from(event.client_y()) - rect.top(),
        );
        let inside = x >= 0.0 && y >= 0.0 && x <= rect.width() && y <= rect.height();
        let (scale, tx, ty) = self.zoom.get_untracked();
        Some((((x - tx) / scale, (y - ty) / scale), inside))
    }

    /// A palette item is picked up; it is placed where the pointer is let go.
    pub fn carry(&self, kind: NodeKind) {
        self.drag.set(Drag::Place(kind));
    }

    /// Selects `node` and starts moving it.
    fn grab(&self, node: &NodeId, event: &PointerEvent) {
        self.builder.selected.set(Some(node.clone()));
        if let Some((at, _)) = self.locate(event) {
            let (x, y) = self
                .builder
                .design
                .with_untracked(|design| design.position(node));
            self.drag.set(Drag::Move {
                node: node.clone(),
                grab: (at.0 - x, at.1 - y),
                before: Box::new(self.builder.design.get_untracked()),
                moved: false,
            });
        }
    }

    /// Starts an edge from `from`'s output port.
    fn start_edge(&self, from: &NodeId, event: &PointerEvent) {
        if let Some((at, _)) = self.locate(event) {
            self.drag.set(Drag::Connect {
                from: from.clone(),
                to: at,
            });
        }
    }

    /// A press on the background: nothing is selected any more, and the view pans.
    fn start_pan(&self, event: &PointerEvent) {
        self.builder.selected.set(None);
        self.drag.set(Drag::Pan {
            last: (f64::from(event.client_x()), f64::from(event.client_y())),
        });
    }

    /// Follows the pointer: the dragged node moves, the pending edge stretches, or the
    /// view pans.
    pub fn pointer_moved(&self, event: PointerEvent) {
        let Some((at, _)) = self.locate(&event) else {
            return;
        };
        match self.drag.get_untracked() {
            Drag::Move {
                node, grab, before, ..
            } => {
                self.builder.design.update(|design| {
                    design
                        .positions
                        .insert(node.clone(), (at.0 - grab.0, at.1 - grab.1));
                });
                self.drag.set(Drag::Move {
                    node,
                    grab,
                    before,
                    moved: true,
                });
            }
            Drag::Connect { from, .. } => self.drag.set(Drag::Connect { from, to: at }),
            Drag::Pan { last } => {
                let (x, y) = (f64::from(event.client_x()), f64::from(event.client_y()));
                self.zoom.update(|(_, tx, ty)| {
                    *tx += x - last.0;
                    *ty += y - last.1;
                });
                self.drag.set(Drag::Pan { last: (x, y) });
            }
            Drag::Idle | Drag::Place(_) => {}
        }
    }

    /// Ends the drag: a carried palette item is placed, a move becomes one step of the
    /// history, an edge connects the node it was let go on.
    pub fn pointer_released(&self, event: PointerEvent) {
        let builder = self.builder;
        let located = self.locate(&event);
        match self.drag.get_untracked() {
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
                if let Some(to) = node_under(&event).filter(|to| *to != from) {
                    builder.try_commit(|design| design.connect(&from, &to));
                }
            }
            Drag::Move { .. } | Drag::Pan { .. } | Drag::Idle => {}
        }
        self.drag.set(Drag::Idle);
    }

    fn wheel(&self, event: WheelEvent) {
        event.prevent_default();
        let factor = if event.delta_y() < 0.0 {
            1.1
        } else {
            1.0 / 1.1
        };
        self.zoom
            .update(|(scale, _, _)| *scale = (*scale * factor).clamp(0.25, 3.0));
    }
}

/// The node the pointer event happened on, if any.
fn node_under(event: &PointerEvent) -> Option<NodeId> {
    event
        .target()
        .and_then(|target| target.dyn_into::<web_sys::Element>().ok())
        .and_then(|element| element.closest("[data-node]").ok().flatten())
        .and_then(|element| element.get_attribute("data-node"))
        .and_then(|key| NodeId::from_key(&key))
}

/// The drawing: the edges, the edge being drawn and the nodes, zoomed and panned.
#[component]
pub fn CanvasView(canvas: Canvas, diagnostics: Memo<Vec<Diagnostic>>) -> impl IntoView {
    let (builder, area, zoom) = (canvas.builder, canvas.area, canvas.zoom);
    view! {
        <div class="canvas" node_ref=area data-testid="canvas"
            on:pointerdown=move |event: PointerEvent| canvas.start_pan(&event)
            on:wheel=move |event: WheelEvent| canvas.wheel(event)
        >
            <svg width="100%" height="100%" role="group" aria-label="The workflow's nodes">
                <defs>
                    <marker id="builder-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
                        <path d="M0,0 L10,5 L0,10 z" class="arrowhead"/>
                    </marker>
                </defs>
                <g transform=move || { let (s, x, y) = zoom.get(); format!("translate({x:.1},{y:.1}) scale({s:.3})") }>
                    <Edges builder=builder/>
                    <PendingEdge canvas=canvas/>
                    <For each=move || builder.design.with(Design::nodes) key=NodeId::key
                        children=move |node| view! { <NodeView node=node canvas=canvas diagnostics=diagnostics/> }/>
                </g>
            </svg>
        </div>
    }
}

/// Every edge, from its tail's output port to its head's input port.
#[component]
fn Edges(builder: Builder) -> impl IntoView {
    move || {
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
    }
}

/// The edge being drawn, from its port to the pointer.
#[component]
fn PendingEdge(canvas: Canvas) -> impl IntoView {
    move || match canvas.drag.get() {
        Drag::Connect { from, to } => {
            let (x, y) = canvas
                .builder
                .design
                .with_untracked(|design| design.position(&from));
            Some(
                view! { <path class="edge pending" d=dag::curve(x + WIDTH, y + HEIGHT / 2.0, to.0, to.1)/> },
            )
        }
        _ => None,
    }
}

/// What a node shows, each part following the design as it is edited.
#[derive(Clone, Copy)]
struct NodeLooks {
    position: Memo<(f64, f64)>,
    /// The name, the detail line and the kind (`task`, `approval`, `condition`, `trigger`).
    title: Memo<(String, String, &'static str)>,
    /// The validation messages that concern the node.
    problems: Memo<Vec<String>>,
    selected: Memo<bool>,
}

impl NodeLooks {
    fn new(builder: Builder, node: &NodeId, diagnostics: Memo<Vec<Diagnostic>>) -> Self {
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
        let selected = Memo::new({
            let node = node.clone();
            move |_| builder.selected.get().as_ref() == Some(&node)
        });
        Self {
            position,
            title,
            problems,
            selected,
        }
    }

    /// What a screen reader says of the node, its problems and how to move it.
    fn label(&self) -> String {
        let (name, detail, kind) = self.title.get();
        let issues = self.problems.get();
        let issues = if issues.is_empty() {
            String::new()
        } else {
            format!(". Problems: {}", issues.join("; "))
        };
        format!("{kind} {name}, {detail}{issues}. Arrow keys move it, Delete removes it")
    }
}

/// One node: a focusable button that moves with the pointer or the arrow keys, with its
/// problems marked and the ports edges start and end at.
#[component]
fn NodeView(node: NodeId, canvas: Canvas, diagnostics: Memo<Vec<Diagnostic>>) -> impl IntoView {
    let builder = canvas.builder;
    let looks = NodeLooks::new(builder, &node, diagnostics);
    let (title, problems, selected) = (looks.title, looks.problems, looks.selected);
    let has_input = matches!(node, NodeId::Task(_));
    let has_output = !matches!(node, NodeId::Condition(..));
    let key = node.key();
    let (grab_node, key_node, focus_node) = (node.clone(), node.clone(), node.clone());
    view! {
        <g
            class="b-node"
            data-node=key
            data-kind=move || title.get().2
            data-invalid=move || (!problems.get().is_empty()).to_string()
            tabindex="0"
            role="button"
            aria-pressed=move || selected.get().to_string()
            aria-label=move || looks.label()
            transform=move || { let (x, y) = looks.position.get(); format!("translate({x:.1},{y:.1})") }
            on:focus=move |_| builder.selected.set(Some(focus_node.clone()))
            on:pointerdown=move |event: PointerEvent| {
                event.stop_propagation();
                canvas.grab(&grab_node, &event);
            }
            on:keydown=move |event: KeyboardEvent| nudge_or_remove(builder, &key_node, &event)
        >
            <rect class="b-body" width=WIDTH height=HEIGHT rx="10" data-selected=move || selected.get().to_string()/>
            <text x="12" y="21" class="b-title">{move || short(&title.get().0, 20)}</text>
            <text x="12" y="39" class="b-sub">{move || short(&title.get().1, 24)}</text>
            <ProblemMark problems=problems/>
            {has_input.then(|| view! { <circle class="port in" cx="0" cy=HEIGHT / 2.0 r="7" data-port="in"/> })}
            {has_output.then(|| view! { <OutPort from=node canvas=canvas/> })}
        </g>
    }
}

/// The mark on a node with problems; hovering it lists them.
#[component]
fn ProblemMark(problems: Memo<Vec<String>>) -> impl IntoView {
    move || {
        (!problems.get().is_empty()).then(|| {
            view! {
                <g class="b-problem"><circle cx=WIDTH - 14.0 cy="14" r="9"/><text x=WIDTH - 14.0 y="18" text-anchor="middle">"!"</text>
                <title>{problems.get().join("\n")}</title></g>
            }
        })
    }
}

/// The port an edge is dragged from.
#[component]
fn OutPort(from: NodeId, canvas: Canvas) -> impl IntoView {
    view! {
        <circle class="port out" cx=WIDTH cy=HEIGHT / 2.0 r="7" data-port="out"
            on:pointerdown=move |event: PointerEvent| {
                event.stop_propagation();
                canvas.start_edge(&from, &event);
            }/>
    }
}

/// The arrow keys move a focused node (further with Shift); Delete removes it.
fn nudge_or_remove(builder: Builder, node: &NodeId, event: &KeyboardEvent) {
    let step = if event.shift_key() { 64.0 } else { 16.0 };
    let delta = match event.key().as_str() {
        "ArrowLeft" => (-step, 0.0),
        "ArrowRight" => (step, 0.0),
        "ArrowUp" => (0.0, -step),
        "ArrowDown" => (0.0, step),
        "Delete" | "Backspace" => {
            event.prevent_default();
            builder.commit(|design| design.remove(node));
            builder.selected.set(None);
            return;
        }
        _ => return,
    };
    event.prevent_default();
    builder.commit(|design| {
        let (x, y) = design.position(node);
        design
            .positions
            .insert(node.clone(), (x + delta.0, y + delta.1));
    });
}

/// A node's name, detail line and kind.
fn title_of(design: &Design, node: &NodeId) -> (String, String, &'static str) {
    match node {
        NodeId::Task(id) => match design.task(id) {
            Some(task) if task.requires_approval => (
                task.name.clone(),
                format!("approval · {}", task.agent),
                "approval",
            ),
            Some(Task {
                name,
                agent,
                fan_out: Some(fan_out),
                ..
            }) => (
                name.clone(),
                format!("×{} · {agent}", fan_out.max_items),
                "fan-out",
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
fn concerns(diagnostic: &Diagnostic, node: &NodeId) -> bool {
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

/// `text` cut to `limit` characters, with an ellipsis when it was longer.
fn short(text: &str, limit: usize) -> String {
    if text.chars().count() <= limit {
        text.to_owned()
    } else {
        format!("{}…", text.chars().take(limit - 1).collect::<String>())
    }
}
