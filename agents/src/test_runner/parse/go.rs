//! `go test -json -cover ./...`: one JSON event per line. `pass`/`fail`/`skip` events
//! with a `Test` are counted (subtests too); a failing test's `output` events are its
//! failure text; a package that fails without any test failing (a build error) is
//! reported under the package's name. Coverage is the mean of the packages'
//! `coverage: X% of statements` lines (unweighted: the events carry no statement counts).

use std::collections::HashMap;
use std::path::Path;

use serde_json::Value;

use super::{FailureLimits, OutputParser, Results};

/// Output kept per test while it runs, before we know whether it fails.
const MAX_PENDING_OUTPUT_BYTES: usize = 64 * 1024;

pub(crate) struct GoParser {
    limits: FailureLimits,
    results: Results,
    output: HashMap<String, String>,
    failed_packages: Vec<String>,
    packages_with_failed_tests: Vec<String>,
    coverages: Vec<f64>,
}

impl GoParser {
    pub(crate) fn new(limits: FailureLimits) -> Self {
        Self {
            limits,
            results: Results::default(),
            output: HashMap::new(),
            failed_packages: Vec::new(),
            packages_with_failed_tests: Vec::new(),
            coverages: Vec::new(),
        }
    }
}

impl OutputParser for GoParser {
    fn line(&mut self, line: &str) {
        let Ok(event) = serde_json::from_str::<Value>(line) else {
            return;
        };
        let field = |name: &str| event.get(name).and_then(Value::as_str).unwrap_or_default();
        let (action, package, test) = (field("Action"), field("Package"), field("Test"));
        let key = if test.is_empty() {
            package.to_string()
        } else {
            format!("{package}.{test}")
        };
        match action {
            "output" => {
                let text = field("Output");
                if test.is_empty()
                    && let Some(rest) = text.trim().strip_prefix("coverage: ")
                    && let Some(number) = rest.split('%').next()
                    && let Ok(percent) = number.parse::<f64>()
                {
                    self.coverages.push(percent);
                }
                let pending = self.output.entry(key).or_default();
                if pending.len() < MAX_PENDING_OUTPUT_BYTES {
                    pending.push_str(text);
                }
            }
            "pass" | "skip" if !test.is_empty() => {
                if action == "pass" {
                    self.results.passed += 1;
                } else {
                    self.results.skipped += 1;
                }
                self.output.remove(&key);
            }
            "fail" if !test.is_empty() => {
                self.results.failed += 1;
                self.packages_with_failed_tests.push(package.to_string());
                let output = self.output.remove(&key).unwrap_or_default();
                self.limits.push(&mut self.results.failures, key, &output);
            }
            "fail" => self.failed_packages.push(package.to_string()),
            _ => {}
        }
    }

    fn finish(mut self: Box<Self>, _reports_dir: &Path) -> Results {
        for package in std::mem::take(&mut self.failed_packages) {
            if !self.packages_with_failed_tests.contains(&package) {
                let output = self.output.remove(&package).unwrap_or_default();
                self.results.failed += 1;
                self.limits
                    .push(&mut self.results.failures, package, &output);
            }
        }
        if !self.coverages.is_empty() {
            let mean = self.coverages.iter().sum::<f64>() / self.coverages.len() as f64;
            self.results.coverage_percentage = Some((mean * 10.0).round() / 10.0);
        }
        self.results
    }
}
