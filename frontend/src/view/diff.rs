//! Unified diffs (what the debugging and code-generating agents propose) read into
//! side-by-side rows for the approval inbox: removed lines on the left, added on the
//! right, context on both, with each file's +/- counts.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Context,
    Removed,
    Added,
    /// No line on this side of the row.
    Blank,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cell {
    pub number: Option<usize>,
    pub text: String,
    pub side: Side,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Row {
    /// A hunk's `@@ -a,b +c,d @@` line.
    Hunk(String),
    Lines(Cell, Cell),
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FileDiff {
    pub path: String,
    pub added: usize,
    pub removed: usize,
    pub rows: Vec<Row>,
}

/// Whether `text` reads as a unified diff.
pub fn looks_like_diff(text: &str) -> bool {
    let has_hunk = text.lines().any(|line| line.starts_with("@@ "));
    let has_header = text
        .lines()
        .any(|line| line.starts_with("--- ") || line.starts_with("diff --git "));
    has_hunk && has_header
}

/// The files of a unified diff. Lines outside any hunk (headers, `index` lines) only
/// name files; a malformed hunk header restarts numbering at 1 rather than failing.
pub fn parse(text: &str) -> Vec<FileDiff> {
    let mut files: Vec<FileDiff> = Vec::new();
    let mut old_line = 1;
    let mut new_line = 1;
    let mut removed: Vec<Cell> = Vec::new();
    let mut added: Vec<Cell> = Vec::new();
    let mut in_hunk = false;
    for line in text.lines() {
        if line.starts_with("diff --git ") {
            flush(&mut files, &mut removed, &mut added);
            let path = line.rsplit(' ').next().map(clean_path).unwrap_or_default();
            files.push(FileDiff {
                path,
                ..FileDiff::default()
            });
            in_hunk = false;
            continue;
        }
        if let Some(path) = line
            .strip_prefix("--- ")
            .filter(|_| !in_hunk_body(in_hunk, line))
        {
            flush(&mut files, &mut removed, &mut added);
            in_hunk = false;
            match files.last_mut() {
                Some(file) if file.rows.is_empty() => {
                    if path != "/dev/null" {
                        file.path = clean_path(path);
                    }
                }
                _ => files.push(FileDiff {
                    path: clean_path(path),
                    ..FileDiff::default()
                }),
            }
            continue;
        }
        if let Some(path) = line.strip_prefix("+++ ").filter(|_| !in_hunk) {
            if let Some(file) = files.last_mut().filter(|_| path != "/dev/null") {
                file.path = clean_path(path);
            }
            continue;
        }
        if line.starts_with("@@") {
            flush(&mut files, &mut removed, &mut added);
            let (old, new) = hunk_starts(line);
            old_line = old;
            new_line = new;
            in_hunk = true;
            if files.is_empty() {
                files.push(FileDiff::default());
            }
            if let Some(file) = files.last_mut() {
                file.rows.push(Row::Hunk(line.to_owned()));
            }
            continue;
        }
        if !in_hunk {
            continue;
        }
        let Some(file) = files.last_mut() else {
            continue;
        };
        if let Some(text) = line.strip_prefix('-') {
            file.removed += 1;
            removed.push(Cell {
                number: Some(old_line),
                text: text.to_owned(),
                side: Side::Removed,
            });
            old_line += 1;
        } else if let Some(text) = line.strip_prefix('+') {
            file.added += 1;
            added.push(Cell {
                number: Some(new_line),
                text: text.to_owned(),
                side: Side::Added,
            });
            new_line += 1;
        } else if line.starts_with('\\') {
            // "\ No newline at end of file"
        } else {
            flush(&mut files, &mut removed, &mut added);
            let text = line.strip_prefix(' ').unwrap_or(line).to_owned();
            if let Some(file) = files.last_mut() {
                file.rows.push(Row::Lines(
                    Cell {
                        number: Some(old_line),
                        text: text.clone(),
                        side: Side::Context,
                    },
                    Cell {
                        number: Some(new_line),
                        text,
                        side: Side::Context,
                    },
                ));
            }
            old_line += 1;
            new_line += 1;
        }
    }
    flush(&mut files, &mut removed, &mut added);
    files
}

/// Inside a hunk a `--- ` line is a removed line that began with `-- `, not a header,
/// unless the hunk's counts are used up; we cannot know them cheaply, so a `--- a/` or
/// `--- /dev/null` form is taken as a header.
fn in_hunk_body(in_hunk: bool, line: &str) -> bool {
    in_hunk && !(line.starts_with("--- a/") || line.starts_with("--- /dev/null"))
}

fn clean_path(path: &str) -> String {
    let path = path.split('\t').next().unwrap_or(path).trim();
    path.strip_prefix("a/")
        .or_else(|| path.strip_prefix("b/"))
        .unwrap_or(path)
        .to_owned()
}

/// The first old and new line numbers of `@@ -a,b +c,d @@`.
fn hunk_starts(line: &str) -> (usize, usize) {
    let number = |prefix: char| {
        line.split_whitespace()
            .find_map(|part| part.strip_prefix(prefix))
            .and_then(|range| range.split(',').next())
            .and_then(|start| start.parse::<usize>().ok())
            .unwrap_or(1)
            .max(1)
    };
    (number('-'), number('+'))
}

/// Pairs the pending removed and added lines into rows, side by side.
fn flush(files: &mut [FileDiff], removed: &mut Vec<Cell>, added: &mut Vec<Cell>) {
    let Some(file) = files.last_mut() else {
        removed.clear();
        added.clear();
        return;
    };
    let blank = || Cell {
        number: None,
        text: String::new(),
        side: Side::Blank,
    };
    let rows = removed.len().max(added.len());
    let mut left = removed.drain(..);
    let mut right = added.drain(..);
    for _ in 0..rows {
        file.rows.push(Row::Lines(
            left.next().unwrap_or_else(blank),
            right.next().unwrap_or_else(blank),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATCH: &str = "diff --git a/src/lib.rs b/src/lib.rs\n--- a/src/lib.rs\n+++ b/src/lib.rs\n@@ -10,4 +10,5 @@ fn main() {\n let a = 1;\n-let b = 2;\n+let b = 3;\n+let c = 4;\n let d = 5;\n";

    #[test]
    fn a_patch_reads_as_side_by_side_rows_with_counts() {
        assert!(looks_like_diff(PATCH));
        assert!(!looks_like_diff("just some text\nwith lines"));
        let files = parse(PATCH);
        assert_eq!(files.len(), 1);
        let file = &files[0];
        assert_eq!(
            (file.path.as_str(), file.added, file.removed),
            ("src/lib.rs", 2, 1)
        );
        let lines: Vec<(Option<usize>, Side, Option<usize>, Side)> = file
            .rows
            .iter()
            .filter_map(|row| match row {
                Row::Lines(left, right) => Some((left.number, left.side, right.number, right.side)),
                Row::Hunk(_) => None,
            })
            .collect();
        assert_eq!(
            lines,
            vec![
                (Some(10), Side::Context, Some(10), Side::Context),
                (Some(11), Side::Removed, Some(11), Side::Added),
                (None, Side::Blank, Some(12), Side::Added),
                (Some(12), Side::Context, Some(13), Side::Context),
            ]
        );
    }

    #[test]
    fn several_files_and_hostile_text_neither_panic_nor_merge() {
        let two = format!("{PATCH}--- a/README.md\n+++ b/README.md\n@@ -1 +1 @@\n-old\n+new\n");
        let files = parse(&two);
        assert_eq!(
            files.iter().map(|f| f.path.as_str()).collect::<Vec<_>>(),
            ["src/lib.rs", "README.md"]
        );
        assert_eq!((files[1].added, files[1].removed), (1, 1));
        for hostile in [
            "@@",
            "@@ -x,y +z @@\n-a",
            "+++\n---\n@@ -0 +0 @@\n+\u{0}",
            "\n\n\n",
            "-a\n+b",
        ] {
            let _ = parse(hostile);
        }
    }
}
