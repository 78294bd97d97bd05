//! TAP, as `node --test` prints it when its output is not a terminal: `ok`/`not ok`
//! lines, a YAML block (`---` ... `...`) after each with the error, and a closing
//! summary (`# pass 1`, `# fail 1`, `# skipped 1`, ...). The summary is authoritative;
//! top-level `ok`/`not ok` lines are counted when a producer prints none.

use std::path::Path;

use super::{FailureLimits, OutputParser, Results};

pub(crate) struct TapParser {
    limits: FailureLimits,
    summary: Results,
    saw_summary: bool,
    counted: Results,
    /// A failing test's name, the indentation of its `not ok` line, and its block.
    block: Option<(String, usize, String)>,
}

impl TapParser {
    pub(crate) fn new(limits: FailureLimits) -> Self {
        Self {
            limits,
            summary: Results::default(),
            saw_summary: false,
            counted: Results::default(),
            block: None,
        }
    }

    fn close_block(&mut self) {
        if let Some((name, _, output)) = self.block.take() {
            self.limits.push(&mut self.counted.failures, name, &output);
        }
    }
}

impl OutputParser for TapParser {
    fn line(&mut self, line: &str) {
        let indent = line.len() - line.trim_start().len();
        let text = line.trim_start();
        if let Some((_, block_indent, output)) = &mut self.block {
            if text == "..." && indent <= *block_indent + 2 {
                self.close_block();
            } else if output.len() < (1 << 20) {
                output.push_str(line);
                output.push('\n');
            }
            return;
        }
        if let Some(rest) = text.strip_prefix("not ok ") {
            if indent == 0 {
                self.counted.failed += 1;
            }
            let name = rest
                .split_once(" - ")
                .map_or(rest, |(_, name)| name)
                .to_string();
            self.block = Some((name, indent, String::new()));
        } else if let Some(rest) = text.strip_prefix("ok ") {
            if indent == 0 {
                if rest.contains("# SKIP") || rest.contains("# skip") {
                    self.counted.skipped += 1;
                } else {
                    self.counted.passed += 1;
                }
            }
        } else if indent == 0
            && let Some((label, number)) = text
                .strip_prefix("# ")
                .and_then(|rest| rest.split_once(' '))
            && let Ok(number) = number.trim().parse::<u64>()
        {
            self.saw_summary |= matches!(label, "pass" | "fail");
            match label {
                "pass" => self.summary.passed += number,
                "fail" | "cancelled" => self.summary.failed += number,
                "skipped" | "todo" => self.summary.skipped += number,
                _ => {}
            }
        }
    }

    fn finish(mut self: Box<Self>, _reports_dir: &Path) -> Results {
        self.close_block();
        let mut results = if self.saw_summary {
            self.summary
        } else {
            Results {
                passed: self.counted.passed,
                failed: self.counted.failed,
                skipped: self.counted.skipped,
                ..Results::default()
            }
        };
        results.failures = std::mem::take(&mut self.counted.failures);
        results
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefers_the_summary_and_keeps_the_error_block() {
        let output = "\
TAP version 13
# Subtest: adds
ok 1 - adds
  ---
  duration_ms: 0.5
  ...
# Subtest: fails
not ok 2 - fails
  ---
  duration_ms: 1.2
  error: |-
    Expected values to be strictly equal:
    1 !== 2
  ...
ok 3 - later # SKIP
1..3
# tests 3
# pass 1
# fail 1
# cancelled 0
# skipped 1
# todo 0
# duration_ms 12.5
";
        let limits = FailureLimits {
            max_failures: 10,
            max_failure_output_bytes: 1000,
        };
        let mut parser = Box::new(TapParser::new(limits));
        output.lines().for_each(|line| parser.line(line));
        let results = parser.finish(Path::new("."));
        assert_eq!((results.passed, results.failed, results.skipped), (1, 1, 1));
        assert_eq!(results.failures.len(), 1);
        assert_eq!(results.failures[0].name, "fails");
        assert!(results.failures[0].output.contains("1 !== 2"));
    }
}
