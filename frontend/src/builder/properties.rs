//! The properties panel: the selected node's fields (a task's id, name, agent, inputs
//! with completion of upstream outputs, what it runs after, timeout, retries, cost and
//! approval; a condition's test and actions; a trigger's schedule or branches), or the
//! workflow's own when nothing is selected. Each change is one step of the history.

use leptos::prelude::*;
use serde_json::Value;
use troupe_workflow::{
    Condition, ConditionAction, DEFAULT_ITEM_NAME, DEFAULT_MAX_ITEMS, FanOut, Task,
};

use super::Builder;
use super::design::{Design, NodeId};

/// What an agent kind's outputs are called, for template completion.
fn output_keys(agent: &str) -> &'static [&'static str] {
    match agent {
        "shell" => &["stdout", "stderr", "exit_code"],
        "human_review" => &["approver", "comment"],
        _ => &[],
    }
}

fn value_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// A typed value back from its text: strings stay strings; other values are read as
/// JSON, and text that is not JSON becomes a string.
fn text_value(old: Option<&Value>, text: String) -> Value {
    match old {
        Some(Value::String(_)) | None => Value::String(text),
        Some(_) => serde_json::from_str(&text).unwrap_or(Value::String(text)),
    }
}

fn action_name(action: ConditionAction) -> &'static str {
    match action {
        ConditionAction::Execute => "execute",
        ConditionAction::Skip => "skip",
        ConditionAction::Fail => "fail",
    }
}

fn action_from(name: &str) -> Option<ConditionAction> {
    match name {
        "execute" => Some(ConditionAction::Execute),
        "skip" => Some(ConditionAction::Skip),
        "fail" => Some(ConditionAction::Fail),
        _ => None,
    }
}

#[component]
pub fn Properties() -> impl IntoView {
    let builder = expect_context::<Builder>();
    view! {
        <aside class="properties glass" aria-labelledby="properties-title" data-testid="properties">
            <h2 id="properties-title">"Properties"</h2>
            {move || match builder.selected.get() {
                Some(NodeId::Task(id)) => view! { <TaskProperties id=id/> }.into_any(),
                Some(NodeId::Condition(task, index)) => view! { <ConditionProperties owner=Some(task) index=index/> }.into_any(),
                Some(NodeId::Loose(index)) => view! { <ConditionProperties owner=None index=index/> }.into_any(),
                Some(NodeId::Schedule) | Some(NodeId::Push) => view! { <TriggerProperties/> }.into_any(),
                None => view! { <WorkflowProperties/> }.into_any(),
            }}
        </aside>
    }
}

#[component]
fn WorkflowProperties() -> impl IntoView {
    let builder = expect_context::<Builder>();
    let read = move |pick: fn(&Design) -> String| move || builder.design.with(pick);
    view! {
        <p class="muted">"The workflow. Select a node to edit it."</p>
        <label>"Name"
            <input type="text" prop:value=read(|d| d.workflow.name.clone())
                on:change=move |e| { let v = event_target_value(&e); builder.commit(|d| d.workflow.name = v) }/>
        </label>
        <label>"Id"
            <input type="text" prop:value=read(|d| d.workflow.id.clone())
                on:change=move |e| { let v = event_target_value(&e); builder.commit(|d| d.workflow.id = v) }/>
        </label>
        <label>"Project (empty: default)"
            <input type="text" prop:value=read(|d| d.workflow.project.clone().unwrap_or_default())
                on:change=move |e| { let v = event_target_value(&e); builder.commit(|d| d.workflow.project = (!v.is_empty()).then_some(v)) }/>
        </label>
        <label class="check">
            <input type="checkbox" prop:checked=move || builder.design.with(|d| d.workflow.separate_approver)
                on:change=move |e| { let on = event_target_checked(&e); builder.commit(|d| d.workflow.separate_approver = on) }/>
            "Whoever starts a run may not approve it"
        </label>
    }
}

/// The selected task, shared by the groups of its fields.
#[derive(Clone, Copy)]
struct TaskFields {
    builder: Builder,
    id: StoredValue<String>,
    /// The task as the design has it now; `None` once it is removed.
    task: Memo<Option<Task>>,
}

impl TaskFields {
    fn new(id: String) -> Self {
        let builder = expect_context::<Builder>();
        let task = {
            let id = id.clone();
            Memo::new(move |_| builder.design.with(|d| d.task(&id).cloned()))
        };
        Self {
            builder,
            id: StoredValue::new(id),
            task,
        }
    }

    fn id(&self) -> String {
        self.id.get_value()
    }

    /// Changes the task as one step of the history.
    fn edit(&self, change: impl FnOnce(&mut Task)) {
        let id = self.id();
        self.builder.commit(|design| {
            if let Some(task) = design.task_mut(&id) {
                change(task);
            }
        });
    }

    /// The templates an input may use: the outputs of the tasks upstream and the
    /// workflow's variables.
    fn completions(&self) -> Vec<String> {
        let id = self.id();
        self.builder.design.with(|design| {
            let mut options: Vec<String> = design
                .upstream(&id)
                .into_iter()
                .flat_map(|upstream| {
                    let agent = design
                        .task(&upstream)
                        .map(|t| t.agent.clone())
                        .unwrap_or_default();
                    let keys = output_keys(&agent);
                    let mut found: Vec<String> = keys
                        .iter()
                        .map(|key| format!("{{{{ tasks.{upstream}.outputs.{key} }}}}"))
                        .collect();
                    if keys.is_empty() {
                        found.push(format!("{{{{ tasks.{upstream}.outputs }}}}"));
                    }
                    found
                })
                .collect();
            options.extend(
                design
                    .workflow
                    .variables
                    .keys()
                    .map(|name| format!("{{{{ variables.{name} }}}}")),
            );
            options
        })
    }

    /// The ids of the workflow's other tasks, which this one may run after.
    fn others(&self) -> Vec<String> {
        let id = self.id();
        self.builder.design.with(|design| {
            design
                .workflow
                .tasks
                .iter()
                .filter(|t| t.id != id)
                .map(|t| t.id.clone())
                .collect()
        })
    }
}

#[component]
fn TaskProperties(id: String) -> impl IntoView {
    let fields = TaskFields::new(id);
    let (builder, task) = (fields.builder, fields.task);
    view! {
        {move || task.get().is_none().then(|| view! { <p class="muted">"This task is gone."</p> })}
        <TaskIdentity fields=fields/>
        <TaskInputs fields=fields/>
        <RunsAfter fields=fields/>
        <TaskLimits fields=fields/>
        <TaskFanOut fields=fields/>
        <label class="check">
            <input type="checkbox" prop:checked=move || task.get().is_some_and(|t| t.requires_approval)
                on:change=move |e| { let on = event_target_checked(&e); fields.edit(move |t| t.requires_approval = on) }/>
            "A person approves it before it runs"
        </label>
        <button type="button" class="button danger" on:click=move |_| {
            let node = NodeId::Task(fields.id());
            builder.commit(|d| d.remove(&node));
            builder.selected.set(None);
        }>"Remove task"</button>
    }
}

/// The task's id, name and agent kind. A new id renames the task everywhere it is
/// named, and the renamed task stays selected.
#[component]
fn TaskIdentity(fields: TaskFields) -> impl IntoView {
    let (builder, task) = (fields.builder, fields.task);
    let rename = move |event: leptos::ev::Event| {
        let new = event_target_value(&event);
        let old = fields.id();
        builder.try_commit(|design| design.rename(&old, &new));
        if builder.design.with_untracked(|d| d.task(&new).is_some()) {
            builder.selected.set(Some(NodeId::Task(new)));
        }
    };
    view! {
        <label>"Id"
            <input type="text" data-field="id" prop:value=move || task.get().map(|t| t.id).unwrap_or_default() on:change=rename/>
        </label>
        <label>"Name"
            <input type="text" data-field="name" prop:value=move || task.get().map(|t| t.name).unwrap_or_default()
                on:change=move |e| { let v = event_target_value(&e); fields.edit(move |t| t.name = v) }/>
        </label>
        <label>"Agent"
            <select data-field="agent" prop:value=move || task.get().map(|t| t.agent).unwrap_or_default()
                on:change=move |e| { let v = event_target_value(&e); fields.edit(move |t| t.agent = v) }>
                {move || builder.kind_names().into_iter().map(|k| view! { <option value=k.clone()>{k.clone()}</option> }).collect_view()}
            </select>
        </label>
    }
}

/// The task's inputs, each with completion of the templates it may use, and a way to
/// add one.
#[component]
fn TaskInputs(fields: TaskFields) -> impl IntoView {
    let completions_id = format!("complete-{}", fields.id());
    let rows = {
        let list = completions_id.clone();
        move || {
            fields.task.get().map(|t| {
                t.inputs
                    .into_iter()
                    .map(|(name, value)| view! { <InputRow fields=fields name=name value=value list=list.clone()/> })
                    .collect_view()
            })
        }
    };
    view! {
        <fieldset>
            <legend>"Inputs"</legend>
            <datalist id=completions_id>
                {move || fields.completions().into_iter().map(|option| view! { <option value=option/> }).collect_view()}
            </datalist>
            {rows}
            <NewInput fields=fields/>
        </fieldset>
    }
}

/// One input: its value as text (read back as the type it had), and a button that
/// removes it.
#[component]
fn InputRow(fields: TaskFields, name: String, value: Value, list: String) -> impl IntoView {
    let (set_name, remove_name) = (name.clone(), name.clone());
    view! {
        <div class="input-row">
            <label>{name.clone()}
                <input type="text" data-input=name.clone() list=list prop:value=value_text(&value)
                    on:change=move |e| {
                        let text = event_target_value(&e);
                        let name = set_name.clone();
                        fields.edit(move |t| {
                            let typed = text_value(t.inputs.get(&name), text);
                            t.inputs.insert(name, typed);
                        })
                    }/>
            </label>
            <button type="button" class="button ghost" aria-label=format!("Remove input {name}")
                on:click=move |_| { let name = remove_name.clone(); fields.edit(move |t| { t.inputs.remove(&name); }) }>"×"</button>
        </div>
    }
}

/// A new input's name; it starts as an empty string.
#[component]
fn NewInput(fields: TaskFields) -> impl IntoView {
    let new_input = RwSignal::new(String::new());
    view! {
        <div class="inline">
            <label>"New input"
                <input type="text" prop:value=move || new_input.get() on:input=move |e| new_input.set(event_target_value(&e))/>
            </label>
            <button type="button" class="button ghost" on:click=move |_| {
                let name = new_input.get_untracked().trim().to_owned();
                if !name.is_empty() {
                    fields.edit(move |t| { t.inputs.entry(name).or_insert(Value::String(String::new())); });
                    new_input.set(String::new());
                }
            }>"Add input"</button>
        </div>
    }
}

/// A checkbox per other task: checking one connects it to this task, as dragging an
/// edge would.
#[component]
fn RunsAfter(fields: TaskFields) -> impl IntoView {
    view! {
        <fieldset>
            <legend>"Runs after"</legend>
            {move || fields.others().into_iter().map(|other| view! { <RunsAfterCheck fields=fields other=other/> }).collect_view()}
        </fieldset>
    }
}

/// Whether this task runs after `other`.
#[component]
fn RunsAfterCheck(fields: TaskFields, other: String) -> impl IntoView {
    let builder = fields.builder;
    let target = fields.id();
    let checked = {
        let (o, t) = (other.clone(), target.clone());
        move || {
            builder
                .design
                .with(|d| d.task(&t).is_some_and(|t| t.depends_on.contains(&o)))
        }
    };
    let source = other.clone();
    view! {
        <label class="check">
            <input type="checkbox" data-after=other.clone() prop:checked=checked
                on:change=move |e| {
                    let (from, to) = (NodeId::Task(source.clone()), NodeId::Task(target.clone()));
                    if event_target_checked(&e) {
                        builder.try_commit(|d| d.connect(&from, &to));
                    } else {
                        builder.commit(|d| d.disconnect(&from, &to));
                    }
                }/>
            {other}
        </label>
    }
}

/// Whether the task runs once per item of a list, and over which list, under which
/// name, how many items at most and how many at once.
#[component]
fn TaskFanOut(fields: TaskFields) -> impl IntoView {
    let task = fields.task;
    let fan_out = move || task.get().and_then(|t| t.fan_out);
    let edit_fan_out = move |change: Box<dyn FnOnce(&mut FanOut)>| {
        fields.edit(move |t| {
            if let Some(fan_out) = t.fan_out.as_mut() {
                change(fan_out);
            }
        })
    };
    view! {
        <label class="check">
            <input type="checkbox" data-testid="fan-out" prop:checked=move || fan_out().is_some()
                on:change=move |e| {
                    let on = event_target_checked(&e);
                    fields.edit(move |t| t.fan_out = on.then(|| FanOut {
                        for_each: "{{ }}".into(),
                        item_name: DEFAULT_ITEM_NAME.into(),
                        max_items: DEFAULT_MAX_ITEMS,
                        concurrency: None,
                        fail_fast: true,
                    }))
                }/>
            "Runs once per item of a list"
        </label>
        {move || fan_out().map(|current| view! {
            <label>"For each item of (one template whose value is a list)"
                <input type="text" data-testid="for-each" prop:value=current.for_each.clone()
                    on:change=move |e| { let v = event_target_value(&e); edit_fan_out(Box::new(move |f| f.for_each = v)) }/>
            </label>
            <label>"The item's name in inputs and conditions"
                <input type="text" prop:value=current.item_name.clone()
                    on:change=move |e| { let v = event_target_value(&e); edit_fan_out(Box::new(move |f| f.item_name = v)) }/>
            </label>
            <label>"Most items"
                <input type="number" min="1" prop:value=current.max_items.to_string()
                    on:change=move |e| { let v = event_target_value(&e).parse().unwrap_or(DEFAULT_MAX_ITEMS); edit_fan_out(Box::new(move |f| f.max_items = v)) }/>
            </label>
            <label>"At once (empty: no bound)"
                <input type="number" min="1" prop:value=current.concurrency.map(|c| c.to_string()).unwrap_or_default()
                    on:change=move |e| { let v = event_target_value(&e).parse().ok(); edit_fan_out(Box::new(move |f| f.concurrency = v)) }/>
            </label>
            <label class="check">
                <input type="checkbox" prop:checked=current.fail_fast
                    on:change=move |e| { let on = event_target_checked(&e); edit_fan_out(Box::new(move |f| f.fail_fast = on)) }/>
                "A failed item cancels the items not started"
            </label>
        })}
    }
}

/// How long the task may take, how often it is retried, and what it is expected to cost.
#[component]
fn TaskLimits(fields: TaskFields) -> impl IntoView {
    let task = fields.task;
    view! {
        <label>"Timeout (seconds, empty: the kind's default)"
            <input type="number" min="1" prop:value=move || task.get().and_then(|t| t.timeout_secs).map(|s| s.to_string()).unwrap_or_default()
                on:change=move |e| { let v = event_target_value(&e).parse().ok(); fields.edit(move |t| t.timeout_secs = v) }/>
        </label>
        <label>"Retries"
            <input type="number" min="0" prop:value=move || task.get().map(|t| t.max_retries.to_string()).unwrap_or_default()
                on:change=move |e| { let v = event_target_value(&e).parse().unwrap_or(0); fields.edit(move |t| t.max_retries = v) }/>
        </label>
        <label>"Estimated cost (USD)"
            <input type="number" min="0" step="0.01" prop:value=move || task.get().map(|t| t.estimated_cost.to_string()).unwrap_or_default()
                on:change=move |e| { let v = event_target_value(&e).parse().unwrap_or(0.0); fields.edit(move |t| t.estimated_cost = v) }/>
        </label>
    }
}

#[component]
fn ConditionProperties(owner: Option<String>, index: usize) -> impl IntoView {
    let builder = expect_context::<Builder>();
    let read = {
        let owner = owner.clone();
        Memo::new(move |_| {
            builder.design.with(|d| match &owner {
                Some(task) => d.task(task).and_then(|t| t.conditions.get(index).cloned()),
                None => d.loose.get(index).cloned(),
            })
        })
    };
    let edit = {
        let owner = owner.clone();
        move |change: Box<dyn FnOnce(&mut Condition)>| {
            let owner = owner.clone();
            builder.commit(move |d| {
                let condition = match &owner {
                    Some(task) => d.task_mut(task).and_then(|t| t.conditions.get_mut(index)),
                    None => d.loose.get_mut(index),
                };
                if let Some(condition) = condition {
                    change(condition);
                }
            });
        }
    };
    let (edit_if, edit_then, edit_else) = (edit.clone(), edit.clone(), edit);
    let node = match &owner {
        Some(task) => NodeId::Condition(task.clone(), index),
        None => NodeId::Loose(index),
    };
    let tasks = move || {
        builder.design.with(|d| {
            d.workflow
                .tasks
                .iter()
                .map(|t| t.id.clone())
                .collect::<Vec<_>>()
        })
    };
    let attach_node = node.clone();
    view! {
        <p class="muted">{match &owner { Some(task) => format!("A condition of {task}."), None => "A condition not yet connected to a task.".into() }}</p>
        <label>"If (a {{ }} template or an expression)"
            <input type="text" prop:value=move || read.get().map(|c| c.if_).unwrap_or_default()
                on:change=move |e| { let v = event_target_value(&e); edit_if(Box::new(move |c| c.if_ = v)) }/>
        </label>
        <label>"Then"
            <select prop:value=move || read.get().map(|c| action_name(c.then)).unwrap_or("execute")
                on:change=move |e| { if let Some(a) = action_from(&event_target_value(&e)) { edit_then(Box::new(move |c| c.then = a)) } }>
                <option value="execute">"execute"</option><option value="skip">"skip"</option><option value="fail">"fail"</option>
            </select>
        </label>
        <label>"Else"
            <select prop:value=move || read.get().and_then(|c| c.else_).map(action_name).unwrap_or("")
                on:change=move |e| { let a = action_from(&event_target_value(&e)); edit_else(Box::new(move |c| c.else_ = a)) }>
                <option value="">"nothing"</option><option value="execute">"execute"</option><option value="skip">"skip"</option><option value="fail">"fail"</option>
            </select>
        </label>
        {owner.is_none().then(|| view! {
            <label>"Guard the task"
                <select on:change=move |e| {
                    let target = event_target_value(&e);
                    if !target.is_empty() {
                        let from = attach_node.clone();
                        builder.try_commit(|d| d.connect(&from, &NodeId::Task(target)));
                        builder.selected.set(None);
                    }
                }>
                    <option value="">"choose…"</option>
                    {tasks().into_iter().map(|t| view! { <option value=t.clone()>{t.clone()}</option> }).collect_view()}
                </select>
            </label>
        })}
        <button type="button" class="button danger" on:click=move |_| { builder.commit(|d| d.remove(&node)); builder.selected.set(None); }>"Remove condition"</button>
    }
}

#[component]
fn TriggerProperties() -> impl IntoView {
    let builder = expect_context::<Builder>();
    view! {
        {move || builder.design.with(|d| d.workflow.triggers.schedule.clone()).map(|schedule| view! {
            <label>"Schedule (five-field cron)"
                <input type="text" prop:value=schedule.cron
                    on:change=move |e| { let v = event_target_value(&e); builder.commit(|d| if let Some(s) = &mut d.workflow.triggers.schedule { s.cron = v }) }/>
            </label>
            <label>"Time zone (IANA; empty: the node's)"
                <input type="text" prop:value=schedule.timezone.unwrap_or_default()
                    on:change=move |e| { let v = event_target_value(&e); builder.commit(|d| if let Some(s) = &mut d.workflow.triggers.schedule { s.timezone = (!v.is_empty()).then_some(v) }) }/>
            </label>
            <button type="button" class="button danger" on:click=move |_| { builder.commit(|d| d.remove(&NodeId::Schedule)); builder.selected.set(None); }>"Remove schedule"</button>
        })}
        {move || builder.design.with(|d| d.workflow.triggers.on_push.clone()).map(|push| view! {
            <label>"Branches that start a run on push (comma-separated)"
                <input type="text" prop:value=push.branches.join(", ")
                    on:change=move |e| {
                        let branches = event_target_value(&e).split(',').map(|b| b.trim().to_owned()).filter(|b| !b.is_empty()).collect();
                        builder.commit(|d| if let Some(p) = &mut d.workflow.triggers.on_push { p.branches = branches })
                    }/>
            </label>
            <button type="button" class="button danger" on:click=move |_| { builder.commit(|d| d.remove(&NodeId::Push)); builder.selected.set(None); }>"Remove push trigger"</button>
        })}
    }
}
