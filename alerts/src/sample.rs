//! A reading of the node's metrics: the Prometheus text its recorder renders for
//! `/metrics`, parsed back into samples, so that the rules inside the node read exactly
//! what a Prometheus scraping it would.

use std::collections::BTreeMap;

use crate::error::AlertError;

/// A series' labels, its name under `__name__` as in Prometheus.
pub type Labels = BTreeMap<String, String>;

pub const NAME: &str = "__name__";

#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub labels: Labels,
    pub value: f64,
}

impl Sample {
    pub fn name(&self) -> &str {
        self.labels.get(NAME).map_or("", String::as_str)
    }
}

/// Every sample in `text` (Prometheus's text format 0.0.4); comments and blank lines
/// are skipped, a line that is not a sample is an error naming it.
pub fn parse_exposition(text: &str) -> Result<Vec<Sample>, AlertError> {
    text.lines()
        .enumerate()
        .map(|(index, line)| (index, line.trim()))
        .filter(|(_, line)| !line.is_empty() && !line.starts_with('#'))
        .map(|(index, line)| {
            parse_line(line).ok_or_else(|| AlertError::Exposition {
                line: index + 1,
                text: line.chars().take(120).collect(),
            })
        })
        .collect()
}

fn parse_line(line: &str) -> Option<Sample> {
    let name_end = line.find(['{', ' ']).unwrap_or(line.len());
    let name = &line[..name_end];
    if name.is_empty() {
        return None;
    }
    let mut labels = Labels::new();
    labels.insert(NAME.into(), name.into());
    let mut rest = &line[name_end..];
    if let Some(inner) = rest.strip_prefix('{') {
        rest = parse_labels(inner, &mut labels)?;
    }
    // A timestamp may follow the value; the reading's own time is used instead.
    let value = rest.split_whitespace().next()?;
    Some(Sample {
        labels,
        value: parse_value(value)?,
    })
}

/// Reads `name="value",...}` into `labels`; returns what follows the brace.
fn parse_labels<'a>(mut rest: &'a str, labels: &mut Labels) -> Option<&'a str> {
    loop {
        rest = rest.trim_start_matches([' ', ',']);
        if let Some(after) = rest.strip_prefix('}') {
            return Some(after);
        }
        let (name, after_name) = rest.split_once("=\"")?;
        let (value, after_value) = unescape_until_quote(after_name)?;
        labels.insert(name.trim().to_owned(), value);
        rest = after_value;
    }
}

fn unescape_until_quote(text: &str) -> Option<(String, &str)> {
    let mut value = String::new();
    let mut chars = text.char_indices();
    while let Some((at, c)) = chars.next() {
        match c {
            '"' => return Some((value, &text[at + 1..])),
            '\\' => match chars.next()?.1 {
                'n' => value.push('\n'),
                other => value.push(other),
            },
            other => value.push(other),
        }
    }
    None
}

fn parse_value(text: &str) -> Option<f64> {
    match text {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => text.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_names_labels_escapes_and_special_values() {
        let samples = parse_exposition(
            "# HELP x_total A counter.\n# TYPE x_total counter\n\
             x_total{a=\"1\",b=\"say \\\"hi\\\"\\n\\\\\"} 3\n\
             up 1\n\
             h_bucket{le=\"+Inf\"} +Inf 1700000000000\n\
             g NaN\n",
        )
        .unwrap();
        assert_eq!(samples.len(), 4);
        assert_eq!(samples[0].name(), "x_total");
        assert_eq!(samples[0].labels["b"], "say \"hi\"\n\\");
        assert_eq!(samples[0].value, 3.0);
        assert_eq!(samples[1].labels.len(), 1);
        assert_eq!(samples[2].labels["le"], "+Inf");
        assert!(samples[2].value.is_infinite());
        assert!(samples[3].value.is_nan());
    }

    proptest::proptest! {
        /// Whatever the text, an answer: samples or the line that is not one.
        #[test]
        fn any_text_is_read_or_refused_without_a_panic(text in "[a-z_{}=\",\\\\ 0-9.+\n#-]{0,200}") {
            let _ = parse_exposition(&text);
        }
    }

    #[test]
    fn a_line_that_is_no_sample_is_named() {
        for bad in ["x{a=\"1\" 3", "x{a=\"1\"} three", "{a=\"1\"} 3", "x"] {
            let error = parse_exposition(&format!("ok 1\n{bad}\n")).unwrap_err();
            assert!(
                matches!(&error, AlertError::Exposition { line: 2, text } if text == bad),
                "{bad}: {error}"
            );
        }
    }
}
