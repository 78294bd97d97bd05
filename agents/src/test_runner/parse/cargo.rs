//! `cargo test`: one `test result: ok. 1 passed; 1 failed; 0 ignored; ...` line per test
//! binary (summed), and a `---- name stdout ----` block per failing test. With
//! `cargo llvm-cov --summary-only`, a `TOTAL` row whose third percentage is line coverage.

use std::path::Path;

use super::{FailureLimits, OutputParser, Results, percentages};

pub(crate) struct CargoParser {
    limits: FailureLimits,
    results: Results,
    /// The failing test whose output block we are in, and its text so far.
    block: Option<(String, String)>,
}

impl CargoParser {
    pub(crate) fn new(limits: FailureLimits) -> Self {
        Self {
            limits,
            results: Results::default(),
            block: None,
        }
    }

    fn close_block(&mut self) {
        if let Some((name, output)) = self.block.take() {
            self.limits.push(&mut self.results.failures, name, &output);
        }
    }
}

impl OutputParser for CargoParser {
    fn line(&mut self, line: &str) {
        if let Some(name) = line
            .strip_prefix("---- ")
            .and_then(|rest| rest.strip_suffix(" stdout ----"))
        {
            self.close_block();
            self.block = Some((name.to_string(), String::new()));
            return;
        }
        if let Some(counts) = line.strip_prefix("test result: ") {
            self.close_block();
            for part in counts.split(';') {
                let mut words = part.split_whitespace().rev();
                let (Some(label), Some(number)) = (words.next(), words.next()) else {
                    continue;
                };
                let Ok(number) = number.parse::<u64>() else {
                    continue;
                };
                match label {
                    "passed" => self.results.passed += number,
                    "failed" => self.results.failed += number,
                    "ignored" => self.results.skipped += number,
                    _ => {}
                }
            }
            return;
        }
        if line == "failures:" || line.starts_with("failures:") {
            self.close_block();
            return;
        }
        if line.starts_with("TOTAL ") {
            let found = percentages(line);
            // Regions, functions, lines (, branches): line coverage is the third.
            self.results.coverage_percentage = found.get(2).or(found.last()).copied();
            return;
        }
        // The 1 MiB guard keeps a test that prints forever from growing the block
        // beyond what `FailureLimits` will keep anyway.
        if let Some((_, output)) = &mut self.block
            && output.len() < (1 << 20)
        {
            output.push_str(line);
            output.push('\n');
        }
    }

    fn finish(mut self: Box<Self>, _reports_dir: &Path) -> Results {
        self.close_block();
        self.results
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_binaries_and_keeps_each_failure_block() {
        let output = "\
running 2 tests
test tests::good ... ok
test tests::bad ... FAILED

failures:

---- tests::bad stdout ----
thread 'tests::bad' panicked at src/lib.rs:9:9:
assertion `left == right` failed

failures:
    tests::bad

test result: FAILED. 1 passed; 1 failed; 2 ignored; 0 measured; 0 filtered out; finished in 0.00s

running 3 tests
test result: ok. 3 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s
Filename   Regions Missed Cover Functions Missed Executed Lines Missed Cover
TOTAL      10      2      80.00%  4      1      75.00%   20    5      75.50%
";
        let limits = FailureLimits {
            max_failures: 10,
            max_failure_output_bytes: 1000,
        };
        let mut parser = Box::new(CargoParser::new(limits));
        output.lines().for_each(|line| parser.line(line));
        let results = parser.finish(Path::new("."));
        assert_eq!((results.passed, results.failed, results.skipped), (4, 1, 2));
        assert_eq!(results.failures.len(), 1);
        assert_eq!(results.failures[0].name, "tests::bad");
        assert!(
            results.failures[0]
                .output
                .contains("assertion `left == right` failed")
        );
        assert_eq!(results.coverage_percentage, Some(75.5));
    }
}
