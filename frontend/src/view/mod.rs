//! Pieces the pages share: loading states, status badges, the DAG, the diff viewer and
//! the SVG charts. The pure parts (layout, diff reading, highlighting, formatting, event
//! folding) live in their own modules and are unit-tested without a browser.

pub mod dag;
pub mod diff;
pub mod format;
pub mod highlight;
pub mod live;

use leptos::prelude::*;

use crate::api::UiError;

/// A resource as a view: a placeholder while it loads, its error, or `ready(value)`.
pub fn loaded<T, V>(
    resource: LocalResource<Result<T, UiError>>,
    ready: impl Fn(T) -> V + Send + Sync + 'static,
) -> impl IntoView
where
    T: Clone + 'static,
    V: IntoView + 'static,
{
    move || match resource.get() {
        None => loading().into_any(),
        Some(Ok(value)) => ready(value).into_any(),
        Some(Err(error)) => error_note(&error).into_any(),
    }
}

/// What a page shows while its data is on the way (the UI tests wait for `aria-busy`).
pub fn loading() -> impl IntoView {
    view! { <p class="muted" aria-busy="true">"Loading…"</p> }
}

pub fn error_note(error: &UiError) -> impl IntoView + use<> {
    view! { <p class="note error" role="alert">{error.to_string()}</p> }
}

/// A run's or task's state, as a word and a colour (the word carries the meaning; the
/// colour only repeats it).
#[component]
pub fn Status(#[prop(into)] status: Signal<String>) -> impl IntoView {
    view! {
        <span class="status" data-state=move || status.get()>
            {move || status.get().replace('_', " ")}
        </span>
    }
}

/// A `<select>` of `choices` bound to `value`; the empty choice reads "any".
#[component]
pub fn FilterSelect(
    label: &'static str,
    choices: &'static [&'static str],
    value: RwSignal<String>,
) -> impl IntoView {
    view! {
        <label>{label}
            <select on:change=move |ev| value.set(event_target_value(&ev)) prop:value=move || value.get()>
                {choices.iter().map(|choice| view! {
                    <option value=*choice>{if choice.is_empty() { "any" } else { choice }}</option>
                }).collect_view()}
            </select>
        </label>
    }
}

/// A headline number with its label.
#[component]
pub fn Stat(label: &'static str, #[prop(into)] value: Signal<String>) -> impl IntoView {
    view! {
        <div class="stat glass">
            <span class="stat-value">{move || value.get()}</span>
            <span class="stat-label">{label}</span>
        </div>
    }
}

/// Bars of `values` with their labels, drawn in SVG; `title` names the chart for
/// assistive technology.
#[component]
pub fn BarChart(
    title: &'static str,
    values: Vec<(String, f64)>,
    #[prop(optional)] unit: &'static str,
) -> impl IntoView {
    const WIDTH: f64 = 480.0;
    const HEIGHT: f64 = 140.0;
    let peak = values
        .iter()
        .map(|(_, v)| *v)
        .fold(0.0_f64, f64::max)
        .max(f64::MIN_POSITIVE);
    let slot = WIDTH / values.len().max(1) as f64;
    let summary = values
        .iter()
        .map(|(label, value)| format!("{label}: {value:.2}{unit}"))
        .collect::<Vec<_>>()
        .join(", ");
    let bars = values
        .into_iter()
        .enumerate()
        .map(|(i, (label, value))| {
            let height = (value / peak) * (HEIGHT - 24.0);
            let x = i as f64 * slot + slot * 0.15;
            view! {
                <g>
                    <rect class="bar" x=x y=HEIGHT - 16.0 - height width=slot * 0.7 height=height rx="3"/>
                    <text class="axis" x=x + slot * 0.35 y=HEIGHT - 2.0 text-anchor="middle">{label}</text>
                </g>
            }
        })
        .collect_view();
    view! {
        <figure class="chart">
            <svg viewBox=format!("0 0 {WIDTH} {HEIGHT}") role="img" aria-label=format!("{title}: {summary}")>
                {bars}
            </svg>
            <figcaption>{title}</figcaption>
        </figure>
    }
}

/// A JSON value, pretty-printed; a string that reads as a unified diff is shown in the
/// diff viewer instead.
#[component]
pub fn ValueView(value: serde_json::Value) -> impl IntoView {
    match &value {
        serde_json::Value::String(text) if diff::looks_like_diff(text) => {
            view! { <DiffView text=text.clone()/> }.into_any()
        }
        serde_json::Value::String(text) => {
            view! { <pre class="code">{text.clone()}</pre> }.into_any()
        }
        other => view! {
            <pre class="code">{serde_json::to_string_pretty(other).unwrap_or_default()}</pre>
        }
        .into_any(),
    }
}

/// A unified diff side by side, per file, with +/- counts and highlighted code.
#[component]
pub fn DiffView(text: String) -> impl IntoView {
    let files = diff::parse(&text);
    files
        .into_iter()
        .map(|file| {
            let rows = file
                .rows
                .into_iter()
                .map(|row| match row {
                    diff::Row::Hunk(header) => view! {
                        <tr class="hunk"><td colspan="4">{header}</td></tr>
                    }
                    .into_any(),
                    diff::Row::Lines(left, right) => view! {
                        <tr>
                            {diff_cell(left)}
                            {diff_cell(right)}
                        </tr>
                    }
                    .into_any(),
                })
                .collect_view();
            view! {
                <figure class="diff" data-testid="diff">
                    <figcaption>
                        <code>{file.path.clone()}</code>
                        <span class="added">{format!(" +{}", file.added)}</span>
                        <span class="removed">{format!(" −{}", file.removed)}</span>
                    </figcaption>
                    <div class="diff-scroll">
                        <table>
                            <thead class="visually-hidden">
                                <tr><th>"Old line"</th><th>"Before"</th><th>"New line"</th><th>"After"</th></tr>
                            </thead>
                            <tbody>{rows}</tbody>
                        </table>
                    </div>
                </figure>
            }
        })
        .collect_view()
}

fn diff_cell(cell: diff::Cell) -> impl IntoView {
    let class = match cell.side {
        diff::Side::Added => "line added",
        diff::Side::Removed => "line removed",
        diff::Side::Context => "line",
        diff::Side::Blank => "line blank",
    };
    let marker = match cell.side {
        diff::Side::Added => "+",
        diff::Side::Removed => "−",
        _ => " ",
    };
    let code = highlight::tokens(&cell.text)
        .into_iter()
        .map(|(token, text)| view! { <span class=token.class()>{text}</span> })
        .collect_view();
    view! {
        <td class="line-number">{cell.number.map(|n| n.to_string())}</td>
        <td class=class><span class="marker" aria-hidden="true">{marker}</span><code>{code}</code></td>
    }
}

/// A workflow's tasks laid out as a DAG, each node coloured by its state (the task table
/// below it says the same in words).
#[component]
pub fn DagView(
    tasks: Vec<(String, Vec<String>)>,
    #[prop(into)] state_of: Callback<String, String>,
) -> impl IntoView {
    let layout = dag::layout(&tasks);
    let edges = layout
        .edges
        .iter()
        .map(|edge| view! { <path class="edge" d=edge.path.clone() marker-end="url(#arrow)"/> })
        .collect_view();
    let nodes = layout
        .nodes
        .into_iter()
        .map(|node| {
            let id = node.id.clone();
            let state = Signal::derive({
                let id = id.clone();
                move || state_of.run(id.clone())
            });
            view! {
                <g class="dag-node" data-task=id.clone() data-state=move || state.get()>
                    <rect x=node.x y=node.y width=dag::NODE_WIDTH height=dag::NODE_HEIGHT rx="10"/>
                    <text x=node.x + 12.0 y=node.y + 22.0 class="dag-title">{id.clone()}</text>
                    <text x=node.x + 12.0 y=node.y + 40.0 class="dag-state">
                        {move || state.get().replace('_', " ")}
                    </text>
                </g>
            }
        })
        .collect_view();
    view! {
        <div class="dag-scroll">
            <svg
                class="dag"
                data-testid="dag"
                width=layout.width
                height=layout.height
                viewBox=format!("0 0 {} {}", layout.width, layout.height)
                role="group"
                aria-label="The run's tasks and their dependencies"
            >
                <defs>
                    <marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
                        <path d="M0,0 L10,5 L0,10 z" class="arrowhead"/>
                    </marker>
                </defs>
                {edges}
                {nodes}
            </svg>
        </div>
    }
}
