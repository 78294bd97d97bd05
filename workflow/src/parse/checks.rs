//! Checks that span tasks: unique ids, known dependencies, no cycles, and templates that
//! only read declared variables and upstream tasks.

use std::collections::HashMap;

use crate::ast::Workflow;
use crate::expr::{self, Name, classify, visit_paths};
use crate::graph::Graph;
use crate::limits::FAN_OUT_ITEMS_MAX;
use crate::suggest::did_you_mean;
use crate::template::{Segment, segments};

use super::sink::{Sink, Site};
use super::task::{TaskSpans, TemplateUse};

pub(crate) fn check_graph(
    sink: &mut Sink,
    workflow: &Workflow,
    spans: &[TaskSpans],
) -> Option<Graph> {
    let mut first_line: HashMap<&str, usize> = HashMap::new();
    for (index, (task, span)) in workflow.tasks.iter().zip(spans).enumerate() {
        if !span.id_valid {
            continue;
        }
        if let Some(line) = first_line.get(task.id.as_str()) {
            let site = site(span.id_mark, format!("tasks[{index}].id"), &task.id);
            let message = format!(
                "duplicate task id `{}` (first used at line {line})",
                task.id
            );
            sink.error(
                site.as_site(),
                message,
                Some("give each task its own id".to_owned()),
            );
        } else {
            first_line.insert(&task.id, span.id_mark.line);
        }
    }
    for (index, (task, span)) in workflow.tasks.iter().zip(spans).enumerate() {
        for (position, (dependency, mark)) in
            task.depends_on.iter().zip(&span.depends_on).enumerate()
        {
            if first_line.contains_key(dependency.as_str()) || sink.full() {
                continue;
            }
            let path = format!("tasks[{index}].depends_on[{position}]");
            let hint = did_you_mean(dependency, first_line.keys().copied()).or_else(|| {
                Some(format!(
                    "declare a task with id `{dependency}` or remove it"
                ))
            });
            let message = format!("depends on unknown task `{dependency}`");
            sink.error(site(*mark, path, &task.id).as_site(), message, hint);
        }
    }
    let graph = Graph::new(&workflow.tasks);
    let cycles = graph.cycles();
    for cycle in &cycles {
        report_cycle(sink, workflow, spans, cycle);
    }
    cycles.is_empty().then_some(graph)
}

fn report_cycle(sink: &mut Sink, workflow: &Workflow, spans: &[TaskSpans], cycle: &[usize]) {
    let (Some(&first), Some(&second)) = (cycle.first(), cycle.get(1)) else {
        return;
    };
    let task = &workflow.tasks[first];
    let next_id = &workflow.tasks[second].id;
    let position = task
        .depends_on
        .iter()
        .position(|id| id == next_id)
        .unwrap_or(0);
    let mark = spans[first]
        .depends_on
        .get(position)
        .copied()
        .unwrap_or(spans[first].id_mark);
    let route: Vec<&str> = cycle
        .iter()
        .map(|&index| workflow.tasks[index].id.as_str())
        .collect();
    let path = format!("tasks[{first}].depends_on[{position}]");
    let message = format!("dependency cycle: {}", route.join(" -> "));
    let hint = Some("remove one of the depends_on entries along the cycle".to_owned());
    sink.error(site(mark, path, &task.id).as_site(), message, hint);
}

/// A task reading another task's output or status, to be checked against the graph.
struct TaskReference {
    user: usize,
    target: usize,
    site: OwnedSite,
}

pub(crate) fn check_templates(
    sink: &mut Sink,
    workflow: &Workflow,
    spans: &[TaskSpans],
    graph: Option<&Graph>,
) {
    let index: HashMap<&str, usize> = workflow
        .tasks
        .iter()
        .zip(spans)
        .enumerate()
        .filter(|(_, (_, span))| span.id_valid)
        .map(|(position, (task, _))| (task.id.as_str(), position))
        .collect();
    let mut references = Vec::new();
    for (user, (task, span)) in workflow.tasks.iter().zip(spans).enumerate() {
        let item = task
            .fan_out
            .as_ref()
            .map(|fan_out| fan_out.item_name.as_str());
        for usage in &span.templates {
            let site = site(usage.mark, usage.path.clone(), &task.id);
            let reader = Reader {
                user,
                item: item.filter(|_| usage.sees_item),
            };
            for expression in expressions(sink, usage, &site) {
                check_names(
                    sink,
                    workflow,
                    &index,
                    &expression,
                    &site,
                    reader,
                    &mut references,
                );
            }
        }
    }
    if let Some(graph) = graph {
        check_upstream(sink, workflow, graph, &references);
    }
}

/// Parses every expression in one string, reporting syntax errors.
fn expressions(sink: &mut Sink, usage: &TemplateUse, site: &OwnedSite) -> Vec<expr::Expr> {
    let sources: Vec<&str> = if usage.is_condition && !usage.text.contains("{{") {
        vec![usage.text.as_str()]
    } else {
        match segments(&usage.text) {
            Ok(parts) => parts
                .into_iter()
                .filter_map(|part| match part {
                    Segment::Expression(source, _) => Some(source),
                    Segment::Text(_) => None,
                })
                .collect(),
            Err(error) => {
                sink.error(
                    site.as_site(),
                    error.to_string(),
                    Some("close it with `}}`".to_owned()),
                );
                return Vec::new();
            }
        }
    };
    let mut parsed = Vec::new();
    for source in sources {
        match expr::parse(source.trim()) {
            Ok(expression) => parsed.push(expression),
            Err(error) => {
                let message = format!("invalid expression `{}`: {error}", shorten(source.trim()));
                sink.error(site.as_site(), message, None);
            }
        }
    }
    parsed
}

/// The task whose template is read, and the item name in scope there.
#[derive(Clone, Copy)]
struct Reader<'w> {
    user: usize,
    item: Option<&'w str>,
}

fn check_names(
    sink: &mut Sink,
    workflow: &Workflow,
    index: &HashMap<&str, usize>,
    expression: &expr::Expr,
    site: &OwnedSite,
    reader: Reader<'_>,
    references: &mut Vec<TaskReference>,
) {
    let user = reader.user;
    visit_paths(expression, &mut |segments| {
        let target_id = match classify(segments, reader.item) {
            Ok(Name::Variable { name, .. }) => {
                if !workflow.declares_variable(name) && !sink.full() {
                    let hint = did_you_mean(name, workflow.variables.keys().map(String::as_str))
                        .or_else(|| {
                            Some(format!("declare it under `variables:` as `{name}: ...`"))
                        });
                    sink.error(site.as_site(), format!("unknown variable `{name}`"), hint);
                }
                return;
            }
            Ok(Name::TaskOutputs { task, .. } | Name::TaskStatus { task }) => task,
            Ok(Name::RunId | Name::WorkflowName | Name::Item { .. }) => return,
            Err(error) => {
                sink.error(site.as_site(), error.to_string(), None);
                return;
            }
        };
        match index.get(target_id) {
            Some(&target) => references.push(TaskReference {
                user,
                target,
                site: site.clone(),
            }),
            None if sink.full() => {}
            None => {
                let hint = did_you_mean(target_id, index.keys().copied());
                sink.error(site.as_site(), format!("unknown task `{target_id}`"), hint);
            }
        }
    });
}

/// A fan-out over another fan-out's outputs makes, at most, the product of their declared
/// caps: that product may not pass [`FAN_OUT_ITEMS_MAX`]. Run on a graph without cycles.
pub(crate) fn check_fan_out_caps(sink: &mut Sink, workflow: &Workflow, spans: &[TaskSpans]) {
    let position: HashMap<&str, usize> = workflow
        .tasks
        .iter()
        .enumerate()
        .map(|(at, task)| (task.id.as_str(), at))
        .collect();
    let mut product: HashMap<&str, u64> = HashMap::new();
    for id in workflow.topological_order() {
        let at = position[id];
        let (task, span) = (&workflow.tasks[at], &spans[at]);
        let Some(fan_out) = &task.fan_out else {
            continue;
        };
        let upstream = fan_outs_read(&fan_out.for_each)
            .iter()
            .filter_map(|read| product.get(read.as_str()).copied())
            .max()
            .unwrap_or(1);
        let total = upstream.saturating_mul(u64::from(fan_out.max_items));
        product.insert(id, total);
        if total > FAN_OUT_ITEMS_MAX && upstream > 1 {
            let usage = span.templates.iter().find(|usage| !usage.sees_item);
            let mark = usage.map_or(span.id_mark, |usage| usage.mark);
            let path = format!("tasks[{at}].for_each");
            let message = format!(
                "nested fan-outs may make {total} children ({upstream} × max_items {}); the most is {FAN_OUT_ITEMS_MAX}",
                fan_out.max_items
            );
            let hint = Some("lower max_items here or in the fan-out it reads".to_owned());
            sink.error(site(mark, path, &task.id).as_site(), message, hint);
        }
    }
}

/// The tasks whose outputs a `for_each` template reads (it parsed when it was checked).
fn fan_outs_read(template: &str) -> Vec<String> {
    let mut read = Vec::new();
    let parts = segments(template);
    let Ok([Segment::Expression(source, _)]) = parts.as_deref() else {
        return read;
    };
    let Ok(expression) = expr::parse(source.trim()) else {
        return read;
    };
    visit_paths(&expression, &mut |path| {
        if let Ok(Name::TaskOutputs { task, .. }) = classify(path, None) {
            read.push(task.to_owned());
        }
    });
    read
}

fn check_upstream(
    sink: &mut Sink,
    workflow: &Workflow,
    graph: &Graph,
    references: &[TaskReference],
) {
    let mut targets: Vec<usize> = references
        .iter()
        .map(|reference| reference.target)
        .collect();
    targets.sort_unstable();
    targets.dedup();
    let upstream = graph.upstream_of(&targets);
    for reference in references {
        if upstream.contains(reference.user, reference.target) {
            continue;
        }
        let user = &workflow.tasks[reference.user].id;
        let target = &workflow.tasks[reference.target].id;
        let (message, hint) = if reference.user == reference.target {
            (
                format!("task `{user}` cannot read its own outputs or status"),
                None,
            )
        } else {
            (
                format!("task `{target}` is not upstream of `{user}`, so reading it could race"),
                Some(format!("add `{target}` to the depends_on of `{user}`")),
            )
        };
        sink.error(reference.site.as_site(), message, hint);
    }
}

fn shorten(text: &str) -> String {
    const SHOWN_CHARS_MAX: usize = 60;
    let shown: String = text.chars().take(SHOWN_CHARS_MAX).collect();
    if shown.len() < text.len() {
        format!("{shown}…")
    } else {
        shown
    }
}

#[derive(Clone)]
struct OwnedSite {
    mark: crate::yaml::Mark,
    path: String,
    task: String,
}

impl OwnedSite {
    fn as_site(&self) -> Site<'_> {
        Site {
            mark: self.mark,
            path: &self.path,
            task: Some(&self.task),
        }
    }
}

fn site(mark: crate::yaml::Mark, path: String, task: &str) -> OwnedSite {
    OwnedSite {
        mark,
        path,
        task: task.to_owned(),
    }
}
