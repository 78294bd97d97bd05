//! Turning a test command's output into counts and failures, one format per toolchain.
//! Parsers see the output line by line as it streams (see `capture`), and may read a
//! report file the command wrote when it is done (pytest's JUnit XML).

mod cargo;
mod go;
pub(crate) mod pytest;
mod tap;

use std::path::Path;

use serde_json::{Value, json};

pub(crate) use cargo::CargoParser;
pub(crate) use go::GoParser;
pub(crate) use pytest::PytestParser;
pub(crate) use tap::TapParser;

/// What a parser found.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Results {
    pub passed: u64,
    pub failed: u64,
    pub skipped: u64,
    pub failures: Vec<Failure>,
    pub coverage_percentage: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Failure {
    pub name: String,
    pub output: String,
}

impl Failure {
    pub(crate) fn to_json(&self) -> Value {
        json!({"name": self.name, "output": self.output})
    }
}

/// How much of the failures is kept.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FailureLimits {
    pub max_failures: usize,
    pub max_failure_output_bytes: usize,
}

impl FailureLimits {
    /// Adds a failure while under `max_failures`, its output cut to the limit (the end
    /// is kept: assertion messages and panics come last).
    pub(crate) fn push(&self, failures: &mut Vec<Failure>, name: String, output: &str) {
        if failures.len() < self.max_failures {
            failures.push(Failure {
                name,
                output: tail_bytes(output.trim_end(), self.max_failure_output_bytes),
            });
        }
    }
}

pub(crate) trait OutputParser: Send {
    /// One line of stdout, without its newline.
    fn line(&mut self, line: &str);
    /// The results, once the command has exited; `reports_dir` holds what it wrote there.
    fn finish(self: Box<Self>, reports_dir: &Path) -> Results;
}

impl crate::process::LineSink for Box<dyn OutputParser> {
    fn line(&mut self, line: &str) {
        OutputParser::line(self.as_mut(), line);
    }
}

/// The last `max_bytes` of `text`, cut at a character boundary.
pub(crate) fn tail_bytes(text: &str, max_bytes: usize) -> String {
    if text.len() <= max_bytes {
        return text.to_string();
    }
    let mut start = text.len() - max_bytes;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    text[start..].to_string()
}

/// Every `NN.N%` word in `text`, in order.
pub(crate) fn percentages(text: &str) -> Vec<f64> {
    text.split_whitespace()
        .filter_map(|word| word.strip_suffix('%'))
        .filter_map(|number| number.parse().ok())
        .collect()
}
