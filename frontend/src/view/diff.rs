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
    let mut parser = Parser::default();
    for line in text.lines() {
        parser.line(line);
    }
    parser.flush();
    parser.files
}

/// Where a diff's reading stands: the files so far, the line numbers the next lines
/// take, and the removed and added lines waiting to be paired into rows.
#[derive(Default)]
struct Parser {
    files: Vec<FileDiff>,
    old_line: usize,
    new_line: usize,
    removed: Vec<Cell>,
    added: Vec<Cell>,
    in_hunk: bool,
}

impl Parser {
    fn line(&mut self, line: &str) {
        if line.starts_with("diff --git ") {
            self.start_file(line.rsplit(' ').next().map(clean_path).unwrap_or_default());
        } else if let Some(path) = line
            .strip_prefix("--- ")
            .filter(|_| !in_hunk_body(self.in_hunk, line))
        {
            self.old_header(path);
        } else if let Some(path) = line.strip_prefix("+++ ").filter(|_| !self.in_hunk) {
            if let Some(file) = self.files.last_mut().filter(|_| path != "/dev/null") {
                file.path = clean_path(path);
            }
        } else if line.starts_with("@@") {
            self.hunk(line);
        } else if self.in_hunk && !self.files.is_empty() {
            self.body(line);
        }
    }

    fn start_file(&mut self, path: String) {
        self.flush();
        self.files.push(FileDiff {
            path,
            ..FileDiff::default()
        });
        self.in_hunk = false;
    }

    /// `--- path`: names the file a `diff --git` line opened, or opens one.
    fn old_header(&mut self, path: &str) {
        self.flush();
        self.in_hunk = false;
        match self.files.last_mut() {
            Some(file) if file.rows.is_empty() => {
                if path != "/dev/null" {
                    file.path = clean_path(path);
                }
            }
            _ => self.files.push(FileDiff {
                path: clean_path(path),
                ..FileDiff::default()
            }),
        }
    }

    fn hunk(&mut self, line: &str) {
        self.flush();
        (self.old_line, self.new_line) = hunk_starts(line);
        self.in_hunk = true;
        if self.files.is_empty() {
            self.files.push(FileDiff::default());
        }
        if let Some(file) = self.files.last_mut() {
            file.rows.push(Row::Hunk(line.to_owned()));
        }
    }

    /// A removed, added or context line of a hunk.
    fn body(&mut self, line: &str) {
        let cell = |number, text: &str, side| Cell {
            number: Some(number),
            text: text.to_owned(),
            side,
        };
        if let Some(text) = line.strip_prefix('-') {
            self.count(|file| file.removed += 1);
            self.removed.push(cell(self.old_line, text, Side::Removed));
            self.old_line += 1;
        } else if let Some(text) = line.strip_prefix('+') {
            self.count(|file| file.added += 1);
            self.added.push(cell(self.new_line, text, Side::Added));
            self.new_line += 1;
        } else if !line.starts_with('\\') {
            // A `\ No newline at end of file` line is skipped.
            self.flush();
            let text = line.strip_prefix(' ').unwrap_or(line);
            let row = Row::Lines(
                cell(self.old_line, text, Side::Context),
                cell(self.new_line, text, Side::Context),
            );
            self.count(|file| file.rows.push(row));
            self.old_line += 1;
            self.new_line += 1;
        }
    }

    fn count(&mut self, change: impl FnOnce(&mut FileDiff)) {
        if let Some(file) = self.files.last_mut() {
            change(file);
        }
    }

    /// Pairs the waiting removed and added lines into rows of the current file.
    fn flush(&mut self) {
        flush(&mut self.files, &mut self.removed, &mut self.added);
    }
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

    #[test]
    fn a_new_file_reads_under_its_new_name_without_its_no_newline_marker() {
        let patch = "--- /dev/null\n+++ b/new.txt\n@@ -0,0 +1,2 @@\n+one\n+two\n\\ No newline at end of file\n";
        let files = parse(patch);
        assert_eq!(files.len(), 1);
        let file = &files[0];
        assert_eq!(
            (file.path.as_str(), file.added, file.removed),
            ("new.txt", 2, 0)
        );
        let texts: Vec<&str> = file
            .rows
            .iter()
            .filter_map(|row| match row {
                Row::Lines(_, right) => Some(right.text.as_str()),
                Row::Hunk(_) => None,
            })
            .collect();
        assert_eq!(texts, ["one", "two"]);
    }
}
