//! pytest: counts and failures from the JUnit XML it writes (`--junitxml`), which is
//! exact where the terminal summary is made for people; the summary line
//! (`1 failed, 1 passed, 1 skipped in 0.05s`) when no report was written (a custom
//! command); coverage from pytest-cov's `TOTAL ... 83%` row.

use std::io::Read;
use std::path::Path;

use super::{FailureLimits, OutputParser, Results, percentages};

pub(crate) const JUNIT_FILE: &str = "junit.xml";
/// A report larger than this is read only this far (counts stay those of the summary).
const MAX_REPORT_BYTES: u64 = 32 << 20;

pub(crate) struct PytestParser {
    limits: FailureLimits,
    summary: Option<Results>,
    coverage_percentage: Option<f64>,
}

impl PytestParser {
    pub(crate) fn new(limits: FailureLimits) -> Self {
        Self {
            limits,
            summary: None,
            coverage_percentage: None,
        }
    }
}

impl OutputParser for PytestParser {
    fn line(&mut self, line: &str) {
        if line.starts_with("TOTAL ") {
            self.coverage_percentage = percentages(line).last().copied();
        } else if let Some(summary) = summary_line(line) {
            self.summary = Some(summary);
        }
    }

    fn finish(self: Box<Self>, reports_dir: &Path) -> Results {
        let mut report = String::new();
        let read = std::fs::File::open(reports_dir.join(JUNIT_FILE))
            .and_then(|file| file.take(MAX_REPORT_BYTES).read_to_string(&mut report));
        let mut results = match read {
            Ok(_) => parse_junit(&report, self.limits),
            Err(_) => self.summary.unwrap_or_default(),
        };
        results.coverage_percentage = self.coverage_percentage;
        results
    }
}

/// `=== 1 failed, 2 passed, 1 skipped in 0.12s ===` (or without the rules, with `-q`).
fn summary_line(line: &str) -> Option<Results> {
    let line = line.trim_matches(|c: char| c == '=' || c.is_whitespace());
    let (counts, time) = line.rsplit_once(" in ")?;
    if !time.ends_with('s') {
        return None;
    }
    let mut results = Results::default();
    for part in counts.split(", ") {
        let (number, label) = part.split_once(' ')?;
        let number: u64 = number.parse().ok()?;
        match label {
            "passed" | "xpassed" => results.passed += number,
            "failed" | "error" | "errors" => results.failed += number,
            "skipped" | "xfailed" | "deselected" => results.skipped += number,
            _ => {}
        }
    }
    Some(results)
}

fn parse_junit(report: &str, limits: FailureLimits) -> Results {
    let mut results = Results::default();
    for case in report.split("<testcase").skip(1) {
        let Some(open_end) = case.find('>') else {
            continue;
        };
        let attributes = &case[..open_end];
        let body = if attributes.ends_with('/') {
            ""
        } else {
            case[open_end + 1..]
                .split("</testcase>")
                .next()
                .unwrap_or_default()
        };
        let name = match (
            attribute(attributes, "classname"),
            attribute(attributes, "name"),
        ) {
            (Some(class), Some(name)) if !class.is_empty() => format!("{class}::{name}"),
            (_, Some(name)) => name,
            _ => "(unnamed)".into(),
        };
        if let Some(output) = element_text(body, "failure").or_else(|| element_text(body, "error"))
        {
            results.failed += 1;
            limits.push(&mut results.failures, name, &output);
        } else if body.contains("<skipped") {
            results.skipped += 1;
        } else {
            results.passed += 1;
        }
    }
    results
}

fn attribute(attributes: &str, name: &str) -> Option<String> {
    let start = attributes.find(&format!(" {name}=\""))? + name.len() + 3;
    let end = attributes[start..].find('"')?;
    Some(unescape(&attributes[start..start + end]))
}

/// The message and text of `<tag ...>text</tag>` or `<tag message="..."/>`.
fn element_text(body: &str, tag: &str) -> Option<String> {
    let start = body.find(&format!("<{tag}"))?;
    let rest = &body[start..];
    let open_end = rest.find('>')?;
    let message = attribute(&rest[..open_end], "message").unwrap_or_default();
    if rest[..open_end].ends_with('/') {
        return Some(message);
    }
    let text = rest[open_end + 1..]
        .split(&format!("</{tag}>"))
        .next()
        .unwrap_or_default();
    Some(format!("{message}\n{}", unescape(text)).trim().to_string())
}

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&#10;", "\n")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: FailureLimits = FailureLimits {
        max_failures: 10,
        max_failure_output_bytes: 1000,
    };

    #[test]
    fn reads_cases_from_junit_xml() {
        let report = r#"<?xml version="1.0"?><testsuites><testsuite tests="4">
<testcase classname="test_a" name="test_ok" time="0.1" />
<testcase classname="test_a" name="test_bad" time="0.1"><failure message="assert 1 == 2">&gt; assert 1 == 2</failure></testcase>
<testcase classname="test_a" name="test_skip"><skipped message="later"/></testcase>
<testcase classname="test_a" name="test_setup"><error message="fixture &apos;db&apos; not found"/></testcase>
</testsuite></testsuites>"#;
        let results = parse_junit(report, LIMITS);
        assert_eq!((results.passed, results.failed, results.skipped), (1, 2, 1));
        assert_eq!(results.failures[0].name, "test_a::test_bad");
        assert_eq!(results.failures[0].output, "assert 1 == 2\n> assert 1 == 2");
        assert_eq!(results.failures[1].output, "fixture 'db' not found");
    }

    #[test]
    fn reads_the_summary_line_and_coverage_total() {
        let summary = summary_line("==== 1 failed, 2 passed, 1 skipped in 0.12s ====").unwrap();
        assert_eq!((summary.passed, summary.failed, summary.skipped), (2, 1, 1));
        assert_eq!(summary_line("collected 3 items"), None);
        let mut parser = Box::new(PytestParser::new(LIMITS));
        parser.line("TOTAL                 12      2    83%");
        parser.line("1 passed in 0.01s");
        let results = parser.finish(Path::new("/nonexistent"));
        assert_eq!(results.passed, 1);
        assert_eq!(results.coverage_percentage, Some(83.0));
    }
}
