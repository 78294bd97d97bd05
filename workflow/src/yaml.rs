//! A YAML tree in which every node remembers where it starts.
//!
//! Built from yaml-rust2's event stream with an explicit stack instead of its recursive
//! loader, so nesting is checked against [`YAML_DEPTH_MAX`] before it can exhaust the
//! stack. Anchors and aliases are refused outright: they are the vehicle of alias bombs,
//! and a workflow never needs them.

use serde_json::{Number, Value};
use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use crate::limits::YAML_DEPTH_MAX;

/// A 1-based position in the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Mark {
    pub(crate) line: usize,
    pub(crate) column: usize,
}

impl Mark {
    /// The earlier of two marks.
    fn min_by_position(self, other: Self) -> Self {
        if (other.line, other.column) < (self.line, self.column) {
            other
        } else {
            self
        }
    }

    fn from_marker(marker: Marker) -> Self {
        Self {
            line: marker.line(),
            column: marker.col() + 1,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub(crate) kind: NodeKind,
    pub(crate) mark: Mark,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum NodeKind {
    /// `quoted` is true for every style but plain: only plain scalars are typed.
    Scalar {
        text: String,
        quoted: bool,
    },
    Sequence(Vec<Node>),
    Mapping(Vec<(Node, Node)>),
}

/// A problem found while building the tree.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct YamlError {
    pub(crate) mark: Mark,
    pub(crate) path: String,
    pub(crate) message: String,
    pub(crate) hint: Option<String>,
}

/// The tree, when one could be built, and every problem met on the way.
pub(crate) struct Loaded {
    pub(crate) root: Option<Node>,
    pub(crate) errors: Vec<YamlError>,
}

/// Parses one YAML document; a fatal problem leaves `root` empty.
pub(crate) fn load(source: &str) -> Loaded {
    let mut builder = Builder::default();
    let mut parser = Parser::new_from_str(source);
    let root = match builder.run(&mut parser) {
        Ok(root) => root,
        Err(fatal) => {
            builder.errors.push(fatal);
            None
        }
    };
    Loaded {
        root,
        errors: builder.errors,
    }
}

/// A container being filled.
struct Frame {
    mark: Mark,
    path: String,
    content: Content,
}

enum Content {
    Sequence(Vec<Node>),
    Mapping {
        entries: Vec<(Node, Node)>,
        pending_key: Option<Node>,
    },
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    errors: Vec<YamlError>,
}

impl Builder {
    fn run<I: Iterator<Item = char>>(
        &mut self,
        parser: &mut Parser<I>,
    ) -> Result<Option<Node>, YamlError> {
        let mut root = None;
        loop {
            let (event, marker) = parser.next_token().map_err(|error| YamlError {
                mark: Mark::from_marker(*error.marker()),
                path: self.current_path(),
                message: format!("invalid YAML: {}", error.info()),
                hint: None,
            })?;
            let mark = Mark::from_marker(marker);
            match event {
                Event::StreamEnd => return Ok(root),
                Event::DocumentStart if root.is_some() => {
                    return Err(error_at(
                        mark,
                        "",
                        "a workflow file holds one YAML document",
                    ))
                    .map_err(|e| e.with_hint("remove the second `---` and what follows"));
                }
                Event::Alias(_) => {
                    return Err(error_at(
                        mark,
                        &self.current_path(),
                        "YAML aliases (`*name`) are not supported",
                    )
                    .with_hint("write the value out in full"));
                }
                Event::Scalar(text, style, anchor, tag) => {
                    self.refuse_anchor_and_tag(anchor, tag.is_some(), mark)?;
                    let quoted = style != TScalarStyle::Plain;
                    let node = Node {
                        kind: NodeKind::Scalar { text, quoted },
                        mark,
                    };
                    root = self.attach(node).or(root);
                }
                Event::SequenceStart(anchor, tag) => {
                    self.refuse_anchor_and_tag(anchor, tag.is_some(), mark)?;
                    self.open(mark, Content::Sequence(Vec::new()))?;
                }
                Event::MappingStart(anchor, tag) => {
                    self.refuse_anchor_and_tag(anchor, tag.is_some(), mark)?;
                    let content = Content::Mapping {
                        entries: Vec::new(),
                        pending_key: None,
                    };
                    self.open(mark, content)?;
                }
                Event::SequenceEnd | Event::MappingEnd => {
                    if let Some(node) = self.close() {
                        root = self.attach(node).or(root);
                    }
                }
                Event::Nothing | Event::StreamStart | Event::DocumentStart | Event::DocumentEnd => {
                }
            }
        }
    }

    fn refuse_anchor_and_tag(
        &mut self,
        anchor: usize,
        tagged: bool,
        mark: Mark,
    ) -> Result<(), YamlError> {
        if anchor != 0 {
            return Err(error_at(
                mark,
                &self.current_path(),
                "YAML anchors (`&name`) are not supported",
            )
            .with_hint("write the value out in full"));
        }
        if tagged {
            let error = error_at(
                mark,
                &self.current_path(),
                "YAML tags (`!tag`) are not supported",
            )
            .with_hint("remove the tag; quote the value to make it a string");
            self.errors.push(error);
        }
        Ok(())
    }

    fn open(&mut self, mark: Mark, content: Content) -> Result<(), YamlError> {
        let path = self.current_path();
        if self.stack.len() >= YAML_DEPTH_MAX {
            return Err(error_at(
                mark,
                &path,
                &format!("YAML nests deeper than {YAML_DEPTH_MAX} levels"),
            )
            .with_hint("flatten the structure"));
        }
        self.stack.push(Frame {
            mark,
            path,
            content,
        });
        Ok(())
    }

    fn close(&mut self) -> Option<Node> {
        let frame = self.stack.pop()?;
        let kind = match frame.content {
            Content::Sequence(items) => NodeKind::Sequence(items),
            Content::Mapping { entries, .. } => {
                self.check_duplicate_keys(&entries, &frame.path);
                NodeKind::Mapping(entries)
            }
        };
        // A block map's start event is marked after its first key; the key is where the
        // map visibly starts, so "missing key" errors point there.
        let mark = match &kind {
            NodeKind::Mapping(entries) => entries
                .first()
                .map_or(frame.mark, |(key, _)| key.mark)
                .min_by_position(frame.mark),
            _ => frame.mark,
        };
        Some(Node { kind, mark })
    }

    /// Adds a finished node to the open container; returns it when it is the root.
    fn attach(&mut self, node: Node) -> Option<Node> {
        let Some(frame) = self.stack.last_mut() else {
            return Some(node);
        };
        match &mut frame.content {
            Content::Sequence(items) => items.push(node),
            Content::Mapping {
                entries,
                pending_key,
            } => match pending_key.take() {
                Some(key) => entries.push((key, node)),
                None => *pending_key = Some(node),
            },
        }
        None
    }

    fn check_duplicate_keys(&mut self, entries: &[(Node, Node)], path: &str) {
        let mut seen: std::collections::HashMap<&str, Mark> = std::collections::HashMap::new();
        for (key, _) in entries {
            let NodeKind::Scalar { text, .. } = &key.kind else {
                self.errors.push(
                    error_at(key.mark, path, "map keys must be plain text")
                        .with_hint("use a string key"),
                );
                continue;
            };
            if let Some(first) = seen.get(text.as_str()) {
                let message = format!(
                    "duplicate key `{text}` (first defined at line {})",
                    first.line
                );
                self.errors.push(
                    error_at(key.mark, &join_key(path, text), &message)
                        .with_hint("remove or rename one of them"),
                );
            } else {
                seen.insert(text, key.mark);
            }
        }
    }

    /// Where the next node will go, e.g. `tasks[2].inputs`.
    fn current_path(&self) -> String {
        let Some(frame) = self.stack.last() else {
            return String::new();
        };
        match &frame.content {
            Content::Sequence(items) => format!("{}[{}]", frame.path, items.len()),
            Content::Mapping {
                pending_key:
                    Some(Node {
                        kind: NodeKind::Scalar { text, .. },
                        ..
                    }),
                ..
            } => join_key(&frame.path, text),
            Content::Mapping { .. } => frame.path.clone(),
        }
    }
}

impl YamlError {
    fn with_hint(mut self, hint: &str) -> Self {
        self.hint = Some(hint.to_owned());
        self
    }
}

fn error_at(mark: Mark, path: &str, message: &str) -> YamlError {
    YamlError {
        mark,
        path: path.to_owned(),
        message: message.to_owned(),
        hint: None,
    }
}

/// `parent.key`, or just `key` at the top.
pub(crate) fn join_key(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}

/// What a plain scalar means under the YAML 1.2 core schema.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Scalar<'a> {
    Null,
    Bool(bool),
    Integer(Number),
    Float(f64),
    /// `.inf` and `.nan`, which JSON cannot hold.
    NotFinite,
    String(&'a str),
}

pub(crate) fn resolve_scalar(text: &str, quoted: bool) -> Scalar<'_> {
    if quoted {
        return Scalar::String(text);
    }
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Scalar::Null,
        "true" | "True" | "TRUE" => return Scalar::Bool(true),
        "false" | "False" | "FALSE" => return Scalar::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" | "-.inf" | "-.Inf" | "-.INF"
        | ".nan" | ".NaN" | ".NAN" => return Scalar::NotFinite,
        _ => {}
    }
    if let Some(number) = parse_integer(text) {
        return Scalar::Integer(number);
    }
    if looks_like_float(text)
        && let Ok(value) = text.parse::<f64>()
    {
        return if value.is_finite() {
            Scalar::Float(value)
        } else {
            Scalar::NotFinite
        };
    }
    Scalar::String(text)
}

fn parse_integer(text: &str) -> Option<Number> {
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    if let Some(hex) = text.strip_prefix("0x") {
        return u64::from_str_radix(hex, 16).ok().map(Number::from);
    }
    if let Some(octal) = text.strip_prefix("0o") {
        return u64::from_str_radix(octal, 8).ok().map(Number::from);
    }
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if let Ok(value) = text.parse::<i64>() {
        return Some(Number::from(value));
    }
    text.strip_prefix('+')
        .unwrap_or(text)
        .parse::<u64>()
        .ok()
        .map(Number::from)
}

/// `[-+]? ( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )?`
fn looks_like_float(text: &str) -> bool {
    let body = text.strip_prefix(['-', '+']).unwrap_or(text);
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(at) => (&body[..at], Some(&body[at + 1..])),
        None => (body, None),
    };
    let (whole, fraction) = match mantissa.split_once('.') {
        Some((whole, fraction)) => (whole, fraction),
        None => (mantissa, ""),
    };
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok =
        all_digits(whole) && all_digits(fraction) && !(whole.is_empty() && fraction.is_empty());
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && all_digits(e)
    });
    mantissa_ok && exponent_ok
}

/// A problem converting a node to JSON.
pub(crate) struct ValueError {
    pub(crate) mark: Mark,
    pub(crate) message: String,
}

/// Converts a subtree to JSON; depth is already bounded by [`load`].
pub(crate) fn to_value(node: &Node) -> Result<Value, ValueError> {
    match &node.kind {
        NodeKind::Scalar { text, quoted } => match resolve_scalar(text, *quoted) {
            Scalar::Null => Ok(Value::Null),
            Scalar::Bool(value) => Ok(Value::Bool(value)),
            Scalar::Integer(number) => Ok(Value::Number(number)),
            Scalar::Float(value) => Ok(Value::from(value)),
            Scalar::NotFinite => Err(ValueError {
                mark: node.mark,
                message: format!("`{text}` is not a finite number, which JSON cannot hold"),
            }),
            Scalar::String(text) => Ok(Value::String(text.to_owned())),
        },
        NodeKind::Sequence(items) => items
            .iter()
            .map(to_value)
            .collect::<Result<_, _>>()
            .map(Value::Array),
        NodeKind::Mapping(entries) => {
            let mut map = serde_json::Map::new();
            for (key, value) in entries {
                if let NodeKind::Scalar { text, .. } = &key.kind {
                    map.insert(text.clone(), to_value(value)?);
                }
            }
            Ok(Value::Object(map))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(source: &str) -> Vec<(usize, usize, String, String)> {
        load(source)
            .errors
            .into_iter()
            .map(|e| (e.mark.line, e.mark.column, e.path, e.message))
            .collect()
    }

    #[test]
    fn scalars_follow_the_core_schema() {
        assert_eq!(resolve_scalar("42", false), Scalar::Integer(42.into()));
        assert_eq!(resolve_scalar("-7", false), Scalar::Integer((-7).into()));
        assert_eq!(resolve_scalar("0x1F", false), Scalar::Integer(31.into()));
        assert_eq!(resolve_scalar("1.5", false), Scalar::Float(1.5));
        assert_eq!(resolve_scalar("1e3", false), Scalar::Float(1000.0));
        assert_eq!(resolve_scalar("42", true), Scalar::String("42"));
        assert_eq!(resolve_scalar("~", false), Scalar::Null);
        assert_eq!(resolve_scalar("True", false), Scalar::Bool(true));
        assert_eq!(resolve_scalar(".inf", false), Scalar::NotFinite);
        assert_eq!(resolve_scalar("inf", false), Scalar::String("inf"));
        assert_eq!(resolve_scalar("1.2.3", false), Scalar::String("1.2.3"));
        assert_eq!(resolve_scalar("e5", false), Scalar::String("e5"));
    }

    #[test]
    fn nodes_carry_one_based_positions() {
        let root = load("a:\n  b: [1, 2]\n").root;
        let Some(Node {
            kind: NodeKind::Mapping(entries),
            ..
        }) = root
        else {
            panic!("expected a mapping, got {root:?}");
        };
        let (key, value) = &entries[0];
        assert_eq!(key.mark, Mark { line: 1, column: 1 });
        let NodeKind::Mapping(inner) = &value.kind else {
            panic!("expected a mapping");
        };
        assert_eq!(inner[0].0.mark, Mark { line: 2, column: 3 });
        assert_eq!(inner[0].1.mark, Mark { line: 2, column: 6 });
    }

    #[test]
    fn duplicate_keys_are_reported_at_the_second() {
        assert_eq!(
            errors("a: 1\nb:\n  c: 1\n  c: 2\n"),
            vec![(
                4,
                3,
                "b.c".to_owned(),
                "duplicate key `c` (first defined at line 3)".to_owned()
            )]
        );
    }

    #[test]
    fn anchors_and_aliases_are_refused() {
        let found = errors("a: &x [1]\nb: *x\n");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].2, "a");
        assert!(found[0].3.contains("anchors"), "{found:?}");
    }

    #[test]
    fn depth_is_limited_without_recursion() {
        let flow = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let found = errors(&flow);
        assert_eq!(found.len(), 1);
        // The scanner's own flow limit may fire before ours; either way it is an error.
        assert!(
            found[0].3.contains("deeper than 64") || found[0].3.contains("recursion limit"),
            "{found:?}"
        );
        let block: String = (0..1000)
            .map(|level| format!("{:level$}k:\n", ""))
            .collect();
        let found = errors(&block);
        assert_eq!(found.len(), 1);
        assert_eq!(
            (found[0].0, found[0].3.as_str()),
            (65, "YAML nests deeper than 64 levels")
        );
    }

    #[test]
    fn scan_errors_keep_the_scanner_position() {
        let found = errors("a: [1, 2\nb: 3\n");
        assert_eq!(found.len(), 1);
        assert!(found[0].3.starts_with("invalid YAML"), "{found:?}");
        assert!(found[0].0 >= 1);
    }

    #[test]
    fn a_second_document_is_refused() {
        let found = errors("a: 1\n---\nb: 2\n");
        assert_eq!(found.len(), 1);
        assert_eq!((found[0].0, found[0].1), (2, 1));
    }
}
