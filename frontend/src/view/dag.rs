//! A workflow's DAG laid out in layers: each task sits one column right of its deepest
//! dependency, so every edge points right and the graph reads in execution order.

use std::collections::BTreeMap;

pub const NODE_WIDTH: f64 = 168.0;
pub const NODE_HEIGHT: f64 = 52.0;
const COLUMN_GAP: f64 = 64.0;
const ROW_GAP: f64 = 20.0;
const MARGIN: f64 = 12.0;

#[derive(Debug, Clone, PartialEq)]
pub struct PlacedNode {
    pub id: String,
    pub column: usize,
    pub row: usize,
    pub x: f64,
    pub y: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Edge {
    pub from: String,
    pub to: String,
    /// An SVG path from the right side of `from` to the left side of `to`.
    pub path: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    pub nodes: Vec<PlacedNode>,
    pub edges: Vec<Edge>,
    pub width: f64,
    pub height: f64,
}

/// Lays out `tasks` (id and dependencies, in source order). Dependencies on unknown ids
/// are drawn as nothing; a cycle (which a parsed workflow cannot have) neither loops nor
/// panics.
pub fn layout(tasks: &[(String, Vec<String>)]) -> Layout {
    let index: BTreeMap<&str, usize> = tasks
        .iter()
        .enumerate()
        .map(|(position, (id, _))| (id.as_str(), position))
        .collect();
    let column = columns(tasks, &index);
    let mut rows_in_column: BTreeMap<usize, usize> = BTreeMap::new();
    let nodes: Vec<PlacedNode> = tasks
        .iter()
        .enumerate()
        .map(|(position, (id, _))| {
            let column = column[position];
            let row = rows_in_column.entry(column).or_insert(0);
            let placed = PlacedNode {
                id: id.clone(),
                column,
                row: *row,
                x: MARGIN + column as f64 * (NODE_WIDTH + COLUMN_GAP),
                y: MARGIN + *row as f64 * (NODE_HEIGHT + ROW_GAP),
            };
            *row += 1;
            placed
        })
        .collect();
    let edges = tasks
        .iter()
        .enumerate()
        .flat_map(|(to, (_, needs))| {
            let nodes = &nodes;
            let index = &index;
            needs.iter().filter_map(move |need| {
                let from = &nodes[*index.get(need.as_str())?];
                let to = &nodes[to];
                Some(Edge {
                    from: from.id.clone(),
                    to: to.id.clone(),
                    path: curve(
                        from.x + NODE_WIDTH,
                        from.y + NODE_HEIGHT / 2.0,
                        to.x,
                        to.y + NODE_HEIGHT / 2.0,
                    ),
                })
            })
        })
        .collect();
    let columns = nodes.iter().map(|node| node.column + 1).max().unwrap_or(0);
    let rows = rows_in_column.values().copied().max().unwrap_or(0);
    Layout {
        width: 2.0 * MARGIN
            + columns as f64 * NODE_WIDTH
            + columns.saturating_sub(1) as f64 * COLUMN_GAP,
        height: 2.0 * MARGIN + rows as f64 * NODE_HEIGHT + rows.saturating_sub(1) as f64 * ROW_GAP,
        nodes,
        edges,
    }
}

/// Each task's column: one past its deepest dependency. Tasks are placed as their
/// dependencies are (Kahn's order, without recursion, so a long chain cannot overflow the
/// browser's stack). Tasks on a cycle keep the column their placed dependencies gave them.
fn columns(tasks: &[(String, Vec<String>)], index: &BTreeMap<&str, usize>) -> Vec<usize> {
    let needs: Vec<Vec<usize>> = tasks
        .iter()
        .map(|(_, needs)| {
            needs
                .iter()
                .filter_map(|need| index.get(need.as_str()).copied())
                .collect()
        })
        .collect();
    let mut waiting: Vec<usize> = needs.iter().map(Vec::len).collect();
    let mut dependants = vec![Vec::new(); tasks.len()];
    for (task, needs) in needs.iter().enumerate() {
        for &need in needs {
            dependants[need].push(task);
        }
    }
    let mut column = vec![0; tasks.len()];
    let mut ready: std::collections::VecDeque<usize> = (0..tasks.len())
        .filter(|&task| waiting[task] == 0)
        .collect();
    while let Some(task) = ready.pop_front() {
        for &next in &dependants[task] {
            column[next] = column[next].max(column[task] + 1);
            waiting[next] -= 1;
            if waiting[next] == 0 {
                ready.push_back(next);
            }
        }
    }
    column
}

/// A horizontal S-curve between two points.
pub fn curve(x1: f64, y1: f64, x2: f64, y2: f64) -> String {
    let bend = ((x2 - x1) / 2.0).abs().max(24.0);
    format!(
        "M{x1:.1},{y1:.1} C{:.1},{y1:.1} {:.1},{y2:.1} {x2:.1},{y2:.1}",
        x1 + bend,
        x2 - bend
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(id: &str, needs: &[&str]) -> (String, Vec<String>) {
        (id.into(), needs.iter().map(|n| n.to_string()).collect())
    }

    #[test]
    fn each_task_sits_right_of_its_deepest_dependency() {
        let tasks = [
            task("deploy", &["review", "test"]),
            task("build", &[]),
            task("test", &["build"]),
            task("review", &["test", "build"]),
            task("lint", &[]),
        ];
        let placed = layout(&tasks);
        let column = |id: &str| placed.nodes.iter().find(|n| n.id == id).unwrap().column;
        assert_eq!(
            ["build", "lint", "test", "review", "deploy"].map(column),
            [0, 0, 1, 2, 3]
        );
        // Tasks in one column stack without overlapping.
        let build = placed.nodes.iter().find(|n| n.id == "build").unwrap();
        let lint = placed.nodes.iter().find(|n| n.id == "lint").unwrap();
        assert_eq!(build.x, lint.x);
        assert!((build.y - lint.y).abs() >= NODE_HEIGHT);
        assert_eq!(placed.edges.len(), 5);
        for edge in &placed.edges {
            let from = placed.nodes.iter().find(|n| n.id == edge.from).unwrap();
            let to = placed.nodes.iter().find(|n| n.id == edge.to).unwrap();
            assert!(from.x < to.x, "{edge:?} points right");
        }
        assert!(placed.width >= 4.0 * NODE_WIDTH && placed.height >= 2.0 * NODE_HEIGHT);
    }

    #[test]
    fn unknown_dependencies_and_cycles_neither_panic_nor_loop() {
        let placed = layout(&[task("a", &["b", "ghost"]), task("b", &["a"])]);
        assert_eq!(placed.nodes.len(), 2);
        assert_eq!(placed.edges.len(), 2);
        let empty = layout(&[]);
        assert!(empty.nodes.is_empty() && empty.edges.is_empty());
    }

    #[test]
    fn two_hundred_tasks_in_a_chain_lay_out_in_two_hundred_columns() {
        let tasks: Vec<_> = (0..200)
            .map(|i| {
                let needs = if i == 0 {
                    vec![]
                } else {
                    vec![format!("t{}", i - 1)]
                };
                (format!("t{i}"), needs)
            })
            .collect();
        let placed = layout(&tasks);
        assert_eq!(placed.nodes[199].column, 199);
    }
}
