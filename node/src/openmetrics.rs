//! `/metrics` in OpenMetrics, with exemplars: for a scraper that asks for it (Prometheus
//! does, with `--enable-feature=exemplar-storage`), each histogram bucket carries the
//! trace id of an observation made inside a sampled trace, so that a slow bucket leads
//! to the run or request that landed in it.
//!
//! The `metrics` facade has one recorder per process; the node installs a fanout of two:
//! `metrics-exporter-prometheus` (the classic text format, as before) and this one,
//! which keeps the same metrics in a `prometheus-client` registry that encodes
//! OpenMetrics. Only the glue is ours: the encoding is the client's.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use metrics::{
    Counter, CounterFn, Gauge, GaugeFn, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder,
    SharedString, Unit,
};
use prometheus_client::metrics::counter::Counter as OmCounter;
use prometheus_client::metrics::exemplar::HistogramWithExemplars;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::gauge::Gauge as OmGauge;
use prometheus_client::registry::Registry;

type Labels = Vec<(String, String)>;
type Buckets = &'static [f64];

#[derive(Clone)]
struct WithBuckets(Buckets);

impl MetricConstructor<HistogramWithExemplars<Labels>> for WithBuckets {
    fn new_metric(&self) -> HistogramWithExemplars<Labels> {
        HistogramWithExemplars::new(self.0.iter().copied())
    }
}

type Histograms = Family<Labels, HistogramWithExemplars<Labels>, WithBuckets>;

/// The OpenMetrics side of the process's recorder.
pub(crate) struct OpenMetrics {
    state: Arc<Mutex<State>>,
    /// The buckets of a histogram, by its name.
    buckets: fn(&str) -> Buckets,
}

#[derive(Default)]
struct State {
    registry: Registry,
    help: HashMap<String, String>,
    counters: HashMap<String, Family<Labels, OmCounter>>,
    gauges: HashMap<String, Family<Labels, OmGauge<f64, AtomicU64>>>,
    histograms: HashMap<String, Histograms>,
    /// The facade registers a metric at each use: the handle made for a key the first
    /// time is kept, so a use costs one lookup, not a family's and its labels' again.
    handles: HashMap<Key, Handle>,
}

#[derive(Clone)]
enum Handle {
    Counter(Counter),
    Gauge(Gauge),
    Histogram(Histogram),
}

/// Renders what the recorder holds.
#[derive(Clone, Default)]
pub(crate) struct OpenMetricsHandle(Arc<Mutex<State>>);

impl OpenMetricsHandle {
    pub(crate) fn render(&self) -> String {
        let state = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &state.registry);
        text
    }
}

impl OpenMetrics {
    /// A recorder into what `handle` renders.
    pub(crate) fn new(handle: &OpenMetricsHandle, buckets: fn(&str) -> Buckets) -> Self {
        Self {
            state: handle.0.clone(),
            buckets,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The handle kept for `key`, made by `make` the first time. A key used as two kinds
    /// of metric (a mistake the classic exporter reports) gets a no-op as the second.
    fn handle(&self, key: &Key, make: impl FnOnce(&mut State) -> Handle) -> Handle {
        let mut state = self.state();
        if let Some(handle) = state.handles.get(key) {
            return handle.clone();
        }
        let handle = make(&mut state);
        state.handles.insert(key.clone(), handle.clone());
        handle
    }

    fn describe(&self, key: KeyName, description: SharedString) {
        self.state()
            .help
            .insert(key.as_str().to_owned(), description.into_owned());
    }
}

fn labels(key: &Key) -> Labels {
    key.labels()
        .map(|l| (l.key().to_owned(), l.value().to_owned()))
        .collect()
}

impl State {
    /// The family `name`, registered (with its help text, if described yet) at first use.
    fn family<M: Clone + prometheus_client::registry::Metric>(
        &mut self,
        name: &str,
        registered_as: &str,
        pick: fn(&mut Self) -> &mut HashMap<String, M>,
        make: impl FnOnce() -> M,
    ) -> M {
        if let Some(family) = pick(self).get(name) {
            return family.clone();
        }
        let family = make();
        // The client ends the help text with a full stop itself.
        let help = self
            .help
            .get(name)
            .map_or("", |help| help.trim_end_matches('.'));
        let help = help.to_owned();
        self.registry.register(registered_as, help, family.clone());
        pick(self).insert(name.to_owned(), family.clone());
        family
    }
}

impl Recorder for OpenMetrics {
    fn describe_counter(&self, key: KeyName, _: Option<Unit>, description: SharedString) {
        self.describe(key, description);
    }

    fn describe_gauge(&self, key: KeyName, _: Option<Unit>, description: SharedString) {
        self.describe(key, description);
    }

    fn describe_histogram(&self, key: KeyName, _: Option<Unit>, description: SharedString) {
        self.describe(key, description);
    }

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        let handle = self.handle(key, |state| {
            let name = key.name();
            // The client adds `_total` to a counter's name itself.
            let bare = name.strip_suffix("_total").unwrap_or(name);
            let family = state.family(name, bare, |s| &mut s.counters, Family::default);
            let counted = Counted(family.get_or_create(&labels(key)).clone());
            Handle::Counter(Counter::from_arc(Arc::new(counted)))
        });
        match handle {
            Handle::Counter(counter) => counter,
            _ => Counter::noop(),
        }
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        let handle = self.handle(key, |state| {
            let name = key.name();
            let family = state.family(name, name, |s| &mut s.gauges, Family::default);
            let gauged = Gauged(family.get_or_create(&labels(key)).clone());
            Handle::Gauge(Gauge::from_arc(Arc::new(gauged)))
        });
        match handle {
            Handle::Gauge(gauge) => gauge,
            _ => Gauge::noop(),
        }
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        let handle = self.handle(key, |state| {
            let name = key.name();
            let bounds = (self.buckets)(name);
            let make = || Family::new_with_constructor(WithBuckets(bounds));
            let family = state.family(name, name, |s| &mut s.histograms, make);
            let observed = Observed::new(family.get_or_create(&labels(key)).clone(), bounds);
            Handle::Histogram(Histogram::from_arc(Arc::new(observed)))
        });
        match handle {
            Handle::Histogram(histogram) => histogram,
            _ => Histogram::noop(),
        }
    }
}

/// A counter of the client's, counted through the facade.
struct Counted(OmCounter);

impl CounterFn for Counted {
    fn increment(&self, value: u64) {
        self.0.inc_by(value);
    }

    fn absolute(&self, value: u64) {
        self.0.inner().fetch_max(value, Ordering::Relaxed);
    }
}

struct Gauged(OmGauge<f64, AtomicU64>);

impl GaugeFn for Gauged {
    fn increment(&self, value: f64) {
        self.0.inc_by(value);
    }

    fn decrement(&self, value: f64) {
        self.0.dec_by(value);
    }

    fn set(&self, value: f64) {
        self.0.set(value);
    }
}

/// A histogram whose observations inside a sampled trace carry its id as exemplar, at
/// most one a second per bucket: a bucket keeps only its latest exemplar anyway, and
/// looking up the current trace costs several times the observation itself.
struct Observed {
    histogram: HistogramWithExemplars<Labels>,
    bounds: Buckets,
    /// When each bucket (+Inf last) may take its next exemplar, in milliseconds since
    /// [`EPOCH`]; 0 at first.
    next_exemplar_ms: Box<[AtomicU64]>,
}

/// What exemplar times count from.
static EPOCH: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();

const EXEMPLAR_EVERY_MS: u64 = 1_000;

impl Observed {
    fn new(histogram: HistogramWithExemplars<Labels>, bounds: Buckets) -> Self {
        let next_exemplar_ms = (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect();
        Self {
            histogram,
            bounds,
            next_exemplar_ms,
        }
    }

    /// The index of `value`'s bucket, +Inf last: by the client's rule, the first whose
    /// upper bound is at least the value.
    fn bucket(&self, value: f64) -> usize {
        self.bounds.partition_point(|bound| *bound < value)
    }

    /// The current trace's id, if it is sampled and `value`'s bucket is due an exemplar.
    fn exemplar(&self, value: f64) -> Option<Labels> {
        if !troupe_telemetry::export::exporting() {
            return None;
        }
        let turn = self.next_exemplar_ms.get(self.bucket(value))?;
        let since = EPOCH.get_or_init(std::time::Instant::now).elapsed();
        let now = u64::try_from(since.as_millis()).unwrap_or(u64::MAX);
        let due = turn.load(Ordering::Relaxed);
        if now < due {
            return None;
        }
        let context = troupe_telemetry::TraceParent::current().filter(|c| c.is_sampled())?;
        // Of threads racing for one bucket's turn, the one whose exchange lands takes it.
        let next = now.saturating_add(EXEMPLAR_EVERY_MS);
        (turn.compare_exchange(due, next, Ordering::Relaxed, Ordering::Relaxed)).ok()?;
        Some(vec![("trace_id".to_owned(), context.trace_id())])
    }
}

impl HistogramFn for Observed {
    fn record(&self, value: f64) {
        self.histogram.observe(value, self.exemplar(value), None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_falls_in_the_bucket_the_client_counts_it_in() {
        const BOUNDS: [f64; 3] = [0.1, 1.0, 10.0];
        let observed = Observed::new(HistogramWithExemplars::new(BOUNDS.into_iter()), &BOUNDS);
        let buckets: Vec<usize> = [0.0, 0.1, 0.5, 1.0, 10.0, 11.0, f64::INFINITY]
            .into_iter()
            .map(|value| observed.bucket(value))
            .collect();
        assert_eq!(buckets, [0, 0, 1, 1, 2, 3, 3]);
        assert_eq!(
            observed.next_exemplar_ms.len(),
            4,
            "one turn per bucket and +Inf"
        );
    }
}
