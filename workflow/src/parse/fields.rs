//! Typed reads of YAML nodes that report what was expected and what was found.

use std::collections::BTreeMap;

use crate::suggest::did_you_mean;
use crate::yaml::{Mark, Node, NodeKind, Scalar, join_key, resolve_scalar};

use super::sink::{Sink, Site};

/// The decoding context: where diagnostics go and which task is being read.
pub(crate) struct Ctx<'s> {
    pub(crate) sink: &'s mut Sink,
    pub(crate) task: Option<String>,
}

impl Ctx<'_> {
    pub(crate) fn error(
        &mut self,
        mark: Mark,
        path: &str,
        message: impl Into<String>,
        hint: Option<String>,
    ) {
        let site = Site {
            mark,
            path,
            task: self.task.as_deref(),
        };
        self.sink.error(site, message, hint);
    }

    fn expected(&mut self, node: &Node, path: &str, expected: &str) {
        let message = format!("expected {expected}, found {}", describe(node));
        self.error(node.mark, path, message, None);
    }

    /// The entries of a map with only `allowed` keys and every `required` one.
    pub(crate) fn fields<'n>(
        &mut self,
        node: &'n Node,
        path: &str,
        allowed: &[&str],
        required: &[&str],
    ) -> Option<Fields<'n>> {
        let NodeKind::Mapping(entries) = &node.kind else {
            self.expected(node, path, "a map");
            return None;
        };
        let mut fields = BTreeMap::new();
        for (key, value) in entries {
            let NodeKind::Scalar { text, .. } = &key.kind else {
                continue; // the YAML layer already refused non-text keys
            };
            if allowed.contains(&text.as_str()) {
                fields.insert(text.as_str(), (key, value));
            } else {
                let hint = did_you_mean(text, allowed.iter().copied())
                    .or_else(|| Some(format!("allowed keys are: {}", allowed.join(", "))));
                self.error(
                    key.mark,
                    &join_key(path, text),
                    format!("unknown key `{text}`"),
                    hint,
                );
            }
        }
        for name in required {
            if !fields.contains_key(name) {
                let hint = Some(format!("add `{name}: ...`"));
                self.error(
                    node.mark,
                    path,
                    format!("missing required key `{name}`"),
                    hint,
                );
            }
        }
        Some(Fields(fields))
    }

    /// Text from a string scalar, or from a plain number whose source text is kept as typed.
    pub(crate) fn text(&mut self, node: &Node, path: &str) -> Option<String> {
        if let NodeKind::Scalar { text, quoted } = &node.kind {
            match resolve_scalar(text, *quoted) {
                Scalar::String(_) | Scalar::Integer(_) | Scalar::Float(_) => {
                    return Some(text.clone());
                }
                _ => {}
            }
        }
        self.expected(node, path, "a string");
        None
    }

    pub(crate) fn non_empty_text(&mut self, node: &Node, path: &str) -> Option<String> {
        let text = self.text(node, path)?;
        if text.trim().is_empty() {
            self.error(node.mark, path, "must not be empty", None);
            return None;
        }
        Some(text)
    }

    pub(crate) fn boolean(&mut self, node: &Node, path: &str) -> Option<bool> {
        if let NodeKind::Scalar { text, quoted } = &node.kind
            && let Scalar::Bool(value) = resolve_scalar(text, *quoted)
        {
            return Some(value);
        }
        self.expected(node, path, "`true` or `false`");
        None
    }

    /// An integer in `minimum..=maximum`.
    pub(crate) fn integer(
        &mut self,
        node: &Node,
        path: &str,
        minimum: u64,
        maximum: u64,
    ) -> Option<u64> {
        let range = if maximum == u64::MAX {
            format!("an integer ≥ {minimum}")
        } else {
            format!("an integer from {minimum} to {maximum}")
        };
        if let NodeKind::Scalar { text, quoted } = &node.kind
            && let Scalar::Integer(number) = resolve_scalar(text, *quoted)
        {
            if let Some(value) = number.as_u64().filter(|v| (minimum..=maximum).contains(v)) {
                return Some(value);
            }
            self.error(
                node.mark,
                path,
                format!("expected {range}, found {text}"),
                None,
            );
            return None;
        }
        self.expected(node, path, &range);
        None
    }

    /// A finite number ≥ 0.
    pub(crate) fn non_negative_number(&mut self, node: &Node, path: &str) -> Option<f64> {
        if let NodeKind::Scalar { text, quoted } = &node.kind {
            let value = match resolve_scalar(text, *quoted) {
                Scalar::Integer(number) => number.as_f64(),
                Scalar::Float(number) => Some(number),
                _ => None,
            };
            if let Some(value) = value {
                if value >= 0.0 {
                    return Some(value);
                }
                self.error(
                    node.mark,
                    path,
                    format!("must not be negative, found {text}"),
                    None,
                );
                return None;
            }
        }
        self.expected(node, path, "a number ≥ 0");
        None
    }

    pub(crate) fn list<'n>(&mut self, node: &'n Node, path: &str) -> Option<&'n [Node]> {
        match &node.kind {
            NodeKind::Sequence(items) => Some(items),
            _ => {
                self.expected(node, path, "a list");
                None
            }
        }
    }

    pub(crate) fn text_list(&mut self, node: &Node, path: &str) -> Vec<(String, Mark)> {
        let Some(items) = self.list(node, path) else {
            return Vec::new();
        };
        items
            .iter()
            .enumerate()
            .filter_map(|(index, item)| {
                let text = self.non_empty_text(item, &format!("{path}[{index}]"))?;
                Some((text, item.mark))
            })
            .collect()
    }
}

/// The known keys of one map.
pub(crate) struct Fields<'n>(BTreeMap<&'n str, (&'n Node, &'n Node)>);

impl<'n> Fields<'n> {
    pub(crate) fn get(&self, key: &str) -> Option<&'n Node> {
        self.0.get(key).map(|(_, value)| *value)
    }
}

/// How a node reads in "found ..." messages.
pub(crate) fn describe(node: &Node) -> String {
    match &node.kind {
        NodeKind::Scalar { text, quoted } => match resolve_scalar(text, *quoted) {
            Scalar::Null => "nothing (null)".to_owned(),
            Scalar::Bool(value) => format!("the boolean `{value}`"),
            Scalar::Integer(_) => format!("the integer `{text}`"),
            Scalar::Float(_) | Scalar::NotFinite => format!("the number `{text}`"),
            Scalar::String(_) => format!("the string {}", quote_short(text)),
        },
        NodeKind::Sequence(_) => "a list".to_owned(),
        NodeKind::Mapping(_) => "a map".to_owned(),
    }
}

fn quote_short(text: &str) -> String {
    const SHOWN_CHARS_MAX: usize = 40;
    let shown: String = text.chars().take(SHOWN_CHARS_MAX).collect();
    if shown.len() < text.len() {
        format!("\"{shown}…\"")
    } else {
        format!("\"{shown}\"")
    }
}
