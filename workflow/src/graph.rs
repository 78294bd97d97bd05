//! Dependency-graph algorithms over task indices.
//!
//! Everything here is iterative: a 10,000-task chain must not recurse 10,000 frames deep.

use std::collections::{HashMap, VecDeque};

use crate::ast::Task;

/// Tasks as nodes, `depends_on` as edges; unknown dependency ids are left out.
pub(crate) struct Graph {
    index_of: HashMap<String, usize>,
    /// `dependencies[t]`: the tasks `t` depends on.
    dependencies: Vec<Vec<usize>>,
    /// `dependents[t]`: the tasks that depend on `t`.
    dependents: Vec<Vec<usize>>,
}

impl Graph {
    pub(crate) fn new(tasks: &[Task]) -> Self {
        let ids = tasks
            .iter()
            .map(|task| (task.id.as_str(), task.depends_on.as_slice()));
        Self::from_edges(ids)
    }

    /// Builds from `(id, depends_on)` pairs; the first of duplicate ids wins.
    pub(crate) fn from_edges<'a>(
        tasks: impl Iterator<Item = (&'a str, &'a [String])> + Clone,
    ) -> Self {
        let mut index_of = HashMap::new();
        let mut count = 0;
        for (index, (id, _)) in tasks.clone().enumerate() {
            index_of.entry(id.to_owned()).or_insert(index);
            count = index + 1;
        }
        let mut dependencies = Vec::with_capacity(count);
        let mut dependents = vec![Vec::new(); count];
        for (index, (_, depends_on)) in tasks.enumerate() {
            let resolved: Vec<usize> = depends_on
                .iter()
                .filter_map(|dependency| index_of.get(dependency.as_str()).copied())
                .collect();
            for &dependency in &resolved {
                dependents[dependency].push(index);
            }
            dependencies.push(resolved);
        }
        Self {
            index_of,
            dependencies,
            dependents,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.dependencies.len()
    }

    pub(crate) fn index(&self, id: &str) -> Option<usize> {
        self.index_of.get(id).copied()
    }

    /// Kahn's algorithm; tasks on or behind a cycle are missing from the result.
    pub(crate) fn topological_sort(&self) -> Vec<usize> {
        let mut waiting_on: Vec<usize> = self.dependencies.iter().map(Vec::len).collect();
        let mut ready: VecDeque<usize> = (0..self.len()).filter(|&t| waiting_on[t] == 0).collect();
        let mut order = Vec::with_capacity(self.len());
        while let Some(task) = ready.pop_front() {
            order.push(task);
            for &dependent in &self.dependents[task] {
                waiting_on[dependent] -= 1;
                if waiting_on[dependent] == 0 {
                    ready.push_back(dependent);
                }
            }
        }
        order
    }

    /// One path per distinct cycle, each starting and ending on the same task and
    /// following `depends_on` edges.
    pub(crate) fn cycles(&self) -> Vec<Vec<usize>> {
        let mut unsorted = vec![true; self.len()];
        for task in self.topological_sort() {
            unsorted[task] = false;
        }
        // Every unsorted task depends on another unsorted task, so walking such edges
        // from any of them must come back to a task already on the walk.
        let mut walked_by: Vec<Option<usize>> = vec![None; self.len()];
        let mut cycles = Vec::new();
        for start in 0..self.len() {
            if !unsorted[start] || walked_by[start].is_some() {
                continue;
            }
            if let Some(cycle) = self.walk_to_cycle(start, &unsorted, &mut walked_by) {
                cycles.push(cycle);
            }
        }
        cycles
    }

    fn walk_to_cycle(
        &self,
        start: usize,
        unsorted: &[bool],
        walked_by: &mut [Option<usize>],
    ) -> Option<Vec<usize>> {
        let mut path = Vec::new();
        let mut current = start;
        loop {
            match walked_by[current] {
                Some(walk) if walk == start => break,
                Some(_) => return None,
                None => {}
            }
            walked_by[current] = Some(start);
            path.push(current);
            current = *self.dependencies[current]
                .iter()
                .find(|&&dependency| unsorted[dependency])?;
        }
        let first = path.iter().position(|&task| task == current)?;
        let mut cycle = path.split_off(first);
        cycle.push(current);
        Some(cycle)
    }

    /// Every task downstream of `start`, not including it unless it is on a cycle.
    pub(crate) fn descendants(&self, start: usize) -> Vec<usize> {
        let mut seen = vec![false; self.len()];
        let mut stack = vec![start];
        let mut found = Vec::new();
        while let Some(task) = stack.pop() {
            for &dependent in &self.dependents[task] {
                if !seen[dependent] {
                    seen[dependent] = true;
                    found.push(dependent);
                    stack.push(dependent);
                }
            }
        }
        found
    }

    /// For each task, which of `targets` are upstream of it.
    ///
    /// Bitsets with one column per distinct target keep memory at
    /// `tasks × targets / 8` bytes and time at `edges × targets / 64`, so a 10,000-task
    /// chain stays well under a second. Only meaningful for an acyclic graph.
    pub(crate) fn upstream_of(&self, targets: &[usize]) -> Upstream {
        let words = targets.len().div_ceil(64);
        let mut column = HashMap::new();
        for (position, &target) in targets.iter().enumerate() {
            column.entry(target).or_insert(position);
        }
        let mut bits = vec![0u64; self.len() * words];
        for task in self.topological_sort() {
            for &dependency in &self.dependencies[task] {
                for word in 0..words {
                    bits[task * words + word] |= bits[dependency * words + word];
                }
                if let Some(&position) = column.get(&dependency) {
                    bits[task * words + position / 64] |= 1 << (position % 64);
                }
            }
        }
        Upstream {
            column,
            words,
            bits,
        }
    }
}

/// The answer of [`Graph::upstream_of`].
pub(crate) struct Upstream {
    column: HashMap<usize, usize>,
    words: usize,
    bits: Vec<u64>,
}

impl Upstream {
    /// Whether `target` (one of the targets asked about) is upstream of `task`.
    pub(crate) fn contains(&self, task: usize, target: usize) -> bool {
        let Some(&position) = self.column.get(&target) else {
            return false;
        };
        self.bits
            .get(task * self.words + position / 64)
            .is_some_and(|word| word & (1 << (position % 64)) != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(edges: &[(&str, &[&str])]) -> Graph {
        let owned: Vec<(String, Vec<String>)> = edges
            .iter()
            .map(|(id, deps)| (id.to_string(), deps.iter().map(|d| d.to_string()).collect()))
            .collect();
        Graph::from_edges(
            owned
                .iter()
                .map(|(id, deps)| (id.as_str(), deps.as_slice())),
        )
    }

    #[test]
    fn sorts_dependencies_first_in_source_order() {
        let g = graph(&[("c", &["a", "b"]), ("a", &[]), ("b", &["a"])]);
        assert_eq!(g.topological_sort(), vec![1, 2, 0]);
    }

    #[test]
    fn finds_two_cycle_and_self_loop() {
        let g = graph(&[("a", &["b"]), ("b", &["a"]), ("c", &["c"]), ("d", &["a"])]);
        assert_eq!(g.cycles(), vec![vec![0, 1, 0], vec![2, 2]]);
    }

    #[test]
    fn long_cycle_is_found_without_recursion() {
        let n = 50_000;
        let edges: Vec<(String, Vec<String>)> = (0..n)
            .map(|i| (format!("t{i}"), vec![format!("t{}", (i + 1) % n)]))
            .collect();
        let g = Graph::from_edges(
            edges
                .iter()
                .map(|(id, deps)| (id.as_str(), deps.as_slice())),
        );
        let cycles = g.cycles();
        assert_eq!(cycles.len(), 1);
        assert_eq!(cycles[0].len(), n + 1);
    }

    #[test]
    fn upstream_is_transitive_and_directional() {
        let g = graph(&[("a", &[]), ("b", &["a"]), ("c", &["b"]), ("d", &[])]);
        let up = g.upstream_of(&[0, 2]);
        assert!(up.contains(2, 0));
        assert!(up.contains(1, 0));
        assert!(!up.contains(0, 2));
        assert!(!up.contains(3, 0));
        assert!(!up.contains(2, 1), "b was not asked about");
    }

    #[test]
    fn descendants_are_transitive() {
        let g = graph(&[("a", &[]), ("b", &["a"]), ("c", &["b"]), ("d", &[])]);
        let mut found = g.descendants(0);
        found.sort();
        assert_eq!(found, vec![1, 2]);
    }
}
