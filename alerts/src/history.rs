//! The readings the rules look back on: per series, its values over the longest window
//! a rule reads (an hour), with Prometheus's staleness (a series gone from a reading is
//! gone from then on, until it comes back).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::sample::{Labels, NAME, Sample};

/// Milliseconds since the Unix epoch (or since any start: only differences matter).
pub type Millis = i64;

/// A value, or the mark that the series was absent from a reading.
type Point = (Millis, Option<f64>);

/// How far back an instant selector looks for a series' last value (Prometheus's
/// default lookback).
pub const LOOKBACK_MS: Millis = 5 * 60 * 1000;

#[derive(Debug)]
pub struct History {
    /// Only series of these names are kept: those the rules read.
    names: BTreeSet<&'static str>,
    retention_ms: Millis,
    series: BTreeMap<Labels, VecDeque<Point>>,
}

impl History {
    pub fn new(names: impl IntoIterator<Item = &'static str>, retention_ms: Millis) -> Self {
        Self {
            names: names.into_iter().collect(),
            retention_ms,
            series: BTreeMap::new(),
        }
    }

    /// Keeps series of `names` too, from the next reading on.
    pub fn read_also(&mut self, names: impl IntoIterator<Item = &'static str>) {
        self.names.extend(names);
    }

    /// Records one reading taken at `at`. Readings come in time order.
    pub fn observe(&mut self, at: Millis, samples: Vec<Sample>) {
        let mut seen = BTreeSet::new();
        for sample in samples {
            if !self.names.contains(sample.name()) {
                continue;
            }
            let points = self.series.entry(sample.labels.clone()).or_default();
            points.push_back((at, Some(sample.value)));
            seen.insert(sample.labels);
        }
        for (labels, points) in &mut self.series {
            let live = points.back().is_some_and(|(_, value)| value.is_some());
            if live && !seen.contains(labels) {
                points.push_back((at, None));
            }
        }
        let oldest = at - self.retention_ms;
        self.series.retain(|_, points| {
            while points.front().is_some_and(|(t, _)| *t < oldest) {
                points.pop_front();
            }
            points.iter().any(|(_, value)| value.is_some())
        });
    }

    /// The series named `name` whose labels match `matchers` (an empty value matches a
    /// label's absence, as in PromQL), each with its points in `[from, to]` (stale
    /// marks included).
    pub(crate) fn select<'a>(
        &'a self,
        name: &'a str,
        matchers: &'a [(&'a str, &'a str)],
        from: Millis,
        to: Millis,
    ) -> impl Iterator<Item = (&'a Labels, impl Iterator<Item = &'a Point>)> + 'a {
        self.series
            .iter()
            .filter(move |(labels, _)| {
                labels.get(NAME).is_some_and(|n| n == name)
                    && matchers.iter().all(|(label, value)| {
                        labels.get(*label).map_or("", String::as_str) == *value
                    })
            })
            .map(move |(labels, points)| {
                let within = points.iter().filter(move |(t, _)| (from..=to).contains(t));
                (labels, within)
            })
    }
}
