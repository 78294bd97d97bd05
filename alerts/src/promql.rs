//! The few PromQL operations the rules use, with Prometheus 2's semantics (closed range
//! windows, extrapolated `rate` and `increase`, counter resets, the classic
//! `histogram_quantile`), so that a rule here fires when the same rule in Prometheus
//! does. A vector is a list of (labels, value), as in PromQL.

use std::collections::BTreeMap;

use crate::history::{History, LOOKBACK_MS, Millis};
use crate::sample::{Labels, NAME};

pub type Vector = Vec<(Labels, f64)>;

/// A selector: a metric name and label equalities.
pub type Selector<'a> = (&'a str, &'a [(&'a str, &'a str)]);

/// The history as seen at one evaluation time.
pub struct Query<'a> {
    pub history: &'a History,
    pub at: Millis,
}

impl Query<'_> {
    /// Each matching series' last value within the lookback, name kept; a series whose
    /// last reading lacked it is absent.
    pub fn instant(&self, (name, matchers): Selector) -> Vector {
        self.history
            .select(name, matchers, self.at - LOOKBACK_MS, self.at)
            .filter_map(|(labels, points)| {
                let (_, last) = points.last()?;
                last.map(|value| (labels.clone(), value))
            })
            .collect()
    }

    /// `rate(selector[range])`: per second, extrapolated as Prometheus does.
    pub fn rate(&self, selector: Selector, range_secs: u64) -> Vector {
        self.over_range(selector, range_secs, |points| {
            extrapolated_increase(points, self.at, range_secs).map(|v| v / range_secs as f64)
        })
    }

    /// `increase(selector[range])`.
    pub fn increase(&self, selector: Selector, range_secs: u64) -> Vector {
        self.over_range(selector, range_secs, |points| {
            extrapolated_increase(points, self.at, range_secs)
        })
    }

    /// `max_over_time(selector[range])`.
    pub fn max_over_time(&self, selector: Selector, range_secs: u64) -> Vector {
        self.over_range(selector, range_secs, |points| {
            points.iter().map(|(_, v)| *v).reduce(f64::max)
        })
    }

    /// Applies `function` to each series' values in `[at - range, at]`; the result
    /// drops the metric name, as every PromQL function does.
    fn over_range(
        &self,
        (name, matchers): Selector,
        range_secs: u64,
        function: impl Fn(&[(Millis, f64)]) -> Option<f64>,
    ) -> Vector {
        let from = self.at - range_secs as Millis * 1000;
        self.history
            .select(name, matchers, from, self.at)
            .filter_map(|(labels, points)| {
                let values: Vec<(Millis, f64)> =
                    points.filter_map(|(t, v)| v.map(|v| (*t, v))).collect();
                function(&values).map(|value| (without_name(labels), value))
            })
            .collect()
    }
}

/// Prometheus's `extrapolatedRate` for counters, before the division by the range:
/// the increase between the first and last samples (resets added back), stretched to
/// the window's edges when the samples come close to them.
fn extrapolated_increase(points: &[(Millis, f64)], at: Millis, range_secs: u64) -> Option<f64> {
    let (&(first_t, first_v), &(last_t, last_v)) = (points.first()?, points.last()?);
    if points.len() < 2 {
        return None;
    }
    let resets: f64 = points
        .windows(2)
        .filter(|pair| pair[1].1 < pair[0].1)
        .map(|pair| pair[0].1)
        .sum();
    let increase = last_v - first_v + resets;
    let range_start = at - range_secs as Millis * 1000;
    let mut to_start = (first_t - range_start) as f64 / 1000.0;
    let to_end = (at - last_t) as f64 / 1000.0;
    let sampled = (last_t - first_t) as f64 / 1000.0;
    let average_gap = sampled / (points.len() - 1) as f64;
    if increase > 0.0 && first_v >= 0.0 {
        // A counter does not go below zero: extrapolate no further back than that.
        to_start = to_start.min(sampled * (first_v / increase));
    }
    let threshold = average_gap * 1.1;
    let mut interval = sampled;
    interval += if to_start < threshold {
        to_start
    } else {
        average_gap / 2.0
    };
    interval += if to_end < threshold {
        to_end
    } else {
        average_gap / 2.0
    };
    Some(increase * (interval / sampled))
}

pub fn without_name(labels: &Labels) -> Labels {
    let mut labels = labels.clone();
    labels.remove(NAME);
    labels
}

/// `sum by (labels) (vector)`.
pub fn sum_by(vector: Vector, by: &[&str]) -> Vector {
    let mut groups: BTreeMap<Labels, f64> = BTreeMap::new();
    for (labels, value) in vector {
        let key = labels
            .into_iter()
            .filter(|(name, _)| by.contains(&name.as_str()))
            .collect();
        *groups.entry(key).or_default() += value;
    }
    groups.into_iter().collect()
}

/// `left / right`, one to one on equal labels (the name aside).
pub fn divide(left: Vector, right: &Vector) -> Vector {
    matched(left, right, |l, r| Some(l / r))
}

/// `left > right`, one to one: the left side's samples that are greater.
pub fn greater(left: Vector, right: &Vector) -> Vector {
    matched(left, right, |l, r| (l > r).then_some(l))
}

/// `left unless right`: the left side's samples with no match on the right.
pub fn unless(left: Vector, right: &Vector) -> Vector {
    left.into_iter()
        .filter(|(labels, _)| !right.iter().any(|(r, _)| same_series(labels, r)))
        .collect()
}

fn matched(left: Vector, right: &Vector, op: impl Fn(f64, f64) -> Option<f64>) -> Vector {
    left.into_iter()
        .filter_map(|(labels, l)| {
            let (_, r) = right.iter().find(|(r, _)| same_series(&labels, r))?;
            op(l, *r).map(|value| (without_name(&labels), value))
        })
        .collect()
}

fn same_series(left: &Labels, right: &Labels) -> bool {
    without_name(left) == without_name(right)
}

/// `vector > threshold` (a filter: values kept, and the name with them).
pub fn above(vector: Vector, threshold: f64) -> Vector {
    vector.into_iter().filter(|(_, v)| *v > threshold).collect()
}

/// `vector == value`.
pub fn equal(vector: Vector, value: f64) -> Vector {
    vector.into_iter().filter(|(_, v)| *v == value).collect()
}

/// `histogram_quantile(q, vector)` over classic buckets (series with an `le` label):
/// the bucket the rank falls in, interpolated linearly.
pub fn histogram_quantile(q: f64, vector: Vector) -> Vector {
    let mut histograms: BTreeMap<Labels, Vec<(f64, f64)>> = BTreeMap::new();
    for (mut labels, count) in vector {
        let Some(bound) = labels.remove("le").and_then(|le| parse_bound(&le)) else {
            continue;
        };
        histograms
            .entry(without_name(&labels))
            .or_default()
            .push((bound, count));
    }
    histograms
        .into_iter()
        .map(|(labels, buckets)| (labels, bucket_quantile(q, buckets)))
        .collect()
}

fn parse_bound(le: &str) -> Option<f64> {
    match le {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        _ => le.parse().ok(),
    }
}

/// Prometheus's `bucketQuantile` (NaN where it has no answer).
fn bucket_quantile(q: f64, mut buckets: Vec<(f64, f64)>) -> f64 {
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    buckets.dedup_by(|later, earlier| {
        let same = later.0 == earlier.0;
        if same {
            earlier.1 += later.1;
        }
        same
    });
    if buckets
        .last()
        .is_none_or(|(bound, _)| *bound != f64::INFINITY)
        || buckets.len() < 2
    {
        return f64::NAN;
    }
    // Counts only grow with the bound; a rate's rounding may say otherwise.
    for i in 1..buckets.len() {
        buckets[i].1 = buckets[i].1.max(buckets[i - 1].1);
    }
    let observations = buckets[buckets.len() - 1].1;
    if observations == 0.0 {
        return f64::NAN;
    }
    let mut rank = q * observations;
    let b = buckets[..buckets.len() - 1]
        .iter()
        .position(|(_, count)| *count >= rank)
        .unwrap_or(buckets.len() - 1);
    if b == buckets.len() - 1 {
        return buckets[buckets.len() - 2].0;
    }
    if b == 0 && buckets[0].0 <= 0.0 {
        return buckets[0].0;
    }
    let (mut start, end, mut count) = (0.0, buckets[b].0, buckets[b].1);
    if b > 0 {
        start = buckets[b - 1].0;
        count -= buckets[b - 1].1;
        rank -= buckets[b - 1].1;
    }
    start + (end - start) * (rank / count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_steady_counter_s_increase_is_extrapolated_to_the_window() {
        // 1 per 15 s, sampled every 15 s over a 60 s window whose edges fall between
        // samples: Prometheus reads 4 over the minute.
        let points: Vec<_> = (0..4)
            .map(|i| (5_000 + i * 15_000, 10.0 + i as f64))
            .collect();
        let increase = extrapolated_increase(&points, 60_000, 60).unwrap();
        assert!((increase - 4.0).abs() < 1e-9, "{increase}");
    }

    #[test]
    fn a_reset_counts_what_came_before_it() {
        let points = [(0, 5.0), (15_000, 8.0), (30_000, 2.0), (45_000, 4.0)];
        // 3 before the reset, 2 from zero and 2 after: 7 over 45 s, stretched to the
        // window's end (15 s away, within 1.1 average gaps).
        let increase = extrapolated_increase(&points, 60_000, 60).unwrap();
        assert!((increase - 7.0 * 60.0 / 45.0).abs() < 1e-9, "{increase}");
    }

    #[test]
    fn quantiles_interpolate_within_their_bucket() {
        let buckets = vec![(1.0, 50.0), (2.0, 90.0), (f64::INFINITY, 100.0)];
        assert_eq!(bucket_quantile(0.5, buckets.clone()), 1.0);
        assert!((bucket_quantile(0.7, buckets.clone()) - 1.5).abs() < 1e-9);
        // In the +Inf bucket: the highest finite bound.
        assert_eq!(bucket_quantile(0.95, buckets), 2.0);
        assert!(bucket_quantile(0.5, vec![(1.0, 0.0), (f64::INFINITY, 0.0)]).is_nan());
    }
}
