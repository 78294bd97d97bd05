//! The quality gate: a score in [0, 1] for an answer, from checks that need no second
//! model. Below the request's threshold, the provider chain tries the next provider.
//!
//! score = 0 when the answer is degenerate (a phrase repeated over and over: the loop a
//! small model falls into at greedy decoding) or malformed for its task type (JSON that
//! does not parse, code that does not parse with its language's tree-sitter grammar
//! (Rust, Python, JavaScript, TypeScript, Go, shell; untagged code must at least balance
//! its brackets and strings), a diff without hunks); otherwise
//! `0.6 × relevance + 0.4 × completeness`, where
//! - relevance maps the cosine similarity of request and answer embeddings from
//!   [0.05, 0.5] onto [0, 1] (all-MiniLM-L6-v2 puts unrelated texts near 0 and an answer
//!   that is about its question at 0.4 and above); without embeddings it is left out and
//!   completeness carries the whole score;
//! - completeness is 1 for an answer that ended by itself, 0.5 for one cut at the token
//!   limit, 0 for an empty one.

use serde::Serialize;

/// What kind of answer a request expects; decides the well-formedness check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskType {
    Chat,
    Code,
    Json,
    Diff,
}

impl TaskType {
    pub fn parse(name: &str) -> Result<Self, String> {
        match name {
            "" | "chat" | "text" => Ok(TaskType::Chat),
            "code" => Ok(TaskType::Code),
            "json" => Ok(TaskType::Json),
            "diff" | "patch" => Ok(TaskType::Diff),
            other => Err(format!(
                "unknown task type `{other}`; use chat, code, json or diff"
            )),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            TaskType::Chat => "chat",
            TaskType::Code => "code",
            TaskType::Json => "json",
            TaskType::Diff => "diff",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct QualityReport {
    pub score: f64,
    pub relevance: Option<f64>,
    pub completeness: f64,
    /// `None` for task types with no format to check.
    pub well_formed: Option<bool>,
    /// What makes the answer degenerate (one phrase repeated for much of it), if it is.
    pub degenerate: Option<String>,
    /// Why points were lost, for people.
    pub notes: Vec<String>,
}

/// How an answer ended: an answer cut short is worth less, whatever cut it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The model ended it (or a stop sequence did).
    Finished,
    /// It reached the request's `max_tokens`.
    AtTokenLimit,
    /// The local engine stopped it where it began to repeat itself, after the
    /// phrase's first saying (see `GenerationRequest::stop_on_loop`).
    InLoop,
}

/// Scores `answer`. `similarity` is the cosine of request and answer embeddings when an
/// embedding model is available.
pub fn assess(
    task: TaskType,
    answer: &str,
    ending: Ending,
    similarity: Option<f32>,
) -> QualityReport {
    let mut notes = Vec::new();
    let cut_short = match ending {
        Ending::Finished => None,
        Ending::AtTokenLimit => Some("the answer was cut at the token limit"),
        Ending::InLoop => Some("the answer was stopped where it began to repeat itself"),
    };
    let completeness = if answer.trim().is_empty() {
        notes.push("the answer is empty".into());
        0.0
    } else if let Some(note) = cut_short {
        notes.push(note.into());
        0.5
    } else {
        1.0
    };
    let relevance = similarity.map(|cosine| ((f64::from(cosine) - 0.05) / 0.45).clamp(0.0, 1.0));
    if relevance.is_some_and(|relevance| relevance < 0.3) {
        notes.push("the answer has little to do with the request".into());
    }
    let well_formed = match task {
        TaskType::Chat => None,
        TaskType::Json => Some(json_problem(answer)),
        TaskType::Code => Some(code_problem(answer)),
        TaskType::Diff => Some(diff_problem(answer)),
    }
    .map(|problem| match problem {
        Some(problem) => {
            notes.push(problem);
            false
        }
        None => true,
    });
    let degenerate = repetition_problem(answer);
    notes.extend(degenerate.clone());
    let score = if well_formed == Some(false) || degenerate.is_some() {
        0.0
    } else {
        match relevance {
            Some(relevance) => 0.6 * relevance + 0.4 * completeness,
            None => completeness,
        }
    };
    QualityReport {
        score,
        relevance,
        completeness,
        well_formed,
        degenerate,
        notes,
    }
}

/// The longest unit a loop is looked for in, in words.
const LOOP_UNIT_WORDS: usize = 32;
/// A loop must repeat its unit this often, cover this many words, and cover this share
/// of the answer: a list of zeros in code is short, a looping model fills its budget.
const LOOP_REPEATS: usize = 3;
const LOOP_MIN_WORDS: usize = 24;
const LOOP_MIN_SHARE: f64 = 0.4;

/// Whether one phrase (up to [`LOOP_UNIT_WORDS`] words) follows itself over and over for
/// much of `answer`, and which.
fn repetition_problem(answer: &str) -> Option<String> {
    let words: Vec<&str> = answer.split_whitespace().collect();
    let needed = LOOP_MIN_WORDS.max((words.len() as f64 * LOOP_MIN_SHARE).ceil() as usize);
    let (unit, start, covered) = longest_loop(&words)?;
    let repeats = covered / unit;
    if repeats < LOOP_REPEATS || covered < needed {
        return None;
    }
    let phrase: String = words[start..start + unit]
        .join(" ")
        .chars()
        .take(80)
        .collect();
    Some(format!(
        "the answer loops: \"{phrase}\" repeats {repeats} times ({covered} of its {} words)",
        words.len()
    ))
}

/// Of a text's end, the most that [`loop_at_end`] reads: a loop of the longest unit,
/// three times over, fits many times.
const TAIL_BYTES: usize = 4096;

/// Where `text` should end when it ends in a loop: just after the first saying of the
/// phrase it repeats, if its last words are one phrase (up to [`LOOP_UNIT_WORDS`] words)
/// said [`LOOP_REPEATS`] times or more over [`LOOP_MIN_WORDS`] words or more. The last
/// word may be half written (a text cut at a token limit): the words before it count
/// too. A local generation that asks for it stops there instead of looping on.
pub fn loop_at_end(text: &str) -> Option<usize> {
    let mut tail_start = text.len().saturating_sub(TAIL_BYTES);
    while !text.is_char_boundary(tail_start) {
        tail_start += 1;
    }
    let words: Vec<&str> = text[tail_start..].split_whitespace().collect();
    let whole = words.len().saturating_sub(1);
    let last_word = [words.len(), whole]
        .into_iter()
        .find_map(|n| loop_ending_at(&words[..n]))?;
    // Each word is a slice of `text`: where it ends is where it lies plus its length.
    let word = words[last_word];
    Some(word.as_ptr() as usize - text.as_ptr() as usize + word.len())
}

/// The index of the word that ends the first saying of the phrase `words` ends by
/// repeating, if they end in a loop.
fn loop_ending_at(words: &[&str]) -> Option<usize> {
    let n = words.len();
    for unit in 1..=LOOP_UNIT_WORDS.min(n / LOOP_REPEATS) {
        let mut run = 0;
        while run + unit < n && words[n - 1 - run] == words[n - 1 - run - unit] {
            run += 1;
        }
        let covered = run + unit;
        if covered / unit >= LOOP_REPEATS && covered >= LOOP_MIN_WORDS {
            return Some(n - covered + unit - 1);
        }
    }
    None
}

/// The longest stretch of `words` that is one unit repeated: (unit length, start,
/// words covered). A stretch of `run` positions where each word equals the one `unit`
/// later covers `run + unit` words.
fn longest_loop(words: &[&str]) -> Option<(usize, usize, usize)> {
    let mut best: Option<(usize, usize, usize)> = None;
    for unit in 1..=LOOP_UNIT_WORDS.min(words.len() / 2) {
        let mut run = 0;
        for at in 0..words.len() - unit {
            if words[at] == words[at + unit] {
                run += 1;
                let covered = run + unit;
                if best.is_none_or(|(_, _, most)| covered > most) {
                    best = Some((unit, at + 1 - run, covered));
                }
            } else {
                run = 0;
            }
        }
    }
    best
}

/// Fenced code blocks as (language tag, body), or the whole text (untagged) when it has
/// none.
fn code_blocks(answer: &str) -> Vec<(String, String)> {
    let mut blocks = Vec::new();
    let mut current: Option<(String, String)> = None;
    for line in answer.lines() {
        if let Some(fence) = line.trim_start().strip_prefix("```") {
            match current.take() {
                Some(block) => blocks.push(block),
                None => current = Some((fence.trim().to_lowercase(), String::new())),
            }
        } else if let Some((_, body)) = current.as_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    if let Some(unclosed) = current {
        blocks.push(unclosed);
    }
    if blocks.is_empty() {
        blocks.push((String::new(), answer.to_string()));
    }
    blocks
}

/// The tree-sitter grammar for a fence's language tag, if we have one.
fn grammar(tag: &str) -> Option<tree_sitter::Language> {
    Some(match tag {
        "rust" | "rs" => tree_sitter_rust::LANGUAGE.into(),
        "python" | "py" | "python3" => tree_sitter_python::LANGUAGE.into(),
        "javascript" | "js" | "jsx" | "mjs" => tree_sitter_javascript::LANGUAGE.into(),
        "typescript" | "ts" => tree_sitter_typescript::LANGUAGE_TYPESCRIPT.into(),
        "tsx" => tree_sitter_typescript::LANGUAGE_TSX.into(),
        "go" | "golang" => tree_sitter_go::LANGUAGE.into(),
        "bash" | "sh" | "shell" | "zsh" => tree_sitter_bash::LANGUAGE.into(),
        _ => return None,
    })
}

/// Where `code` fails to parse as `language`, if it does.
fn parse_problem(tag: &str, language: &tree_sitter::Language, code: &str) -> Option<String> {
    let mut parser = tree_sitter::Parser::new();
    if parser.set_language(language).is_err() {
        return None;
    }
    let tree = parser.parse(code, None)?;
    let root = tree.root_node();
    if !root.has_error() {
        return None;
    }
    let mut cursor = root.walk();
    let mut node = root;
    // Descend to the first error or missing node to say where.
    'descend: loop {
        for child in node.children(&mut cursor) {
            if child.is_error() || child.is_missing() {
                node = child;
                break 'descend;
            }
            if child.has_error() {
                node = child;
                continue 'descend;
            }
        }
        break;
    }
    Some(format!(
        "the {tag} code does not parse (line {})",
        node.start_position().row + 1
    ))
}

fn json_problem(answer: &str) -> Option<String> {
    let blocks = code_blocks(answer);
    let parsed = blocks
        .iter()
        .any(|(_, body)| serde_json::from_str::<serde_json::Value>(body.trim()).is_ok());
    (!parsed).then(|| "JSON was asked for and the answer holds no JSON that parses".into())
}

/// Each block parsed with its language's grammar; blocks with no (known) tag must at
/// least balance brackets and close strings, a check every mainstream language shares.
fn code_problem(answer: &str) -> Option<String> {
    let blocks = code_blocks(answer);
    if blocks.iter().all(|(_, body)| body.trim().is_empty()) {
        return Some("code was asked for and the answer holds none".into());
    }
    blocks.iter().find_map(|(tag, body)| match grammar(tag) {
        Some(language) => parse_problem(tag, &language, body),
        None => unbalanced(body),
    })
}

/// In Rust a single quote mostly starts a lifetime (`&'a str`); only a closing quote
/// within a character or an escape counts as a literal there.
fn looks_like_rust(code: &str) -> bool {
    code.contains("fn ") || code.contains("let ") || code.contains("impl ")
}

fn unbalanced(code: &str) -> Option<String> {
    let rust = looks_like_rust(code);
    let mut stack = Vec::new();
    let mut chars = code.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '/' if chars.peek() == Some(&'/') => skip_line(&mut chars),
            '#' => skip_line(&mut chars),
            '\'' if rust => {
                let mut lookahead = chars.clone();
                let literal = matches!(
                    (lookahead.next(), lookahead.next()),
                    (Some('\\'), _) | (Some(_), Some('\''))
                );
                if literal {
                    while let Some(next) = chars.next() {
                        if next == '\\' {
                            chars.next();
                        } else if next == '\'' {
                            break;
                        }
                    }
                }
            }
            '"' | '\'' | '`' => {
                // A lone apostrophe (Rust lifetimes, English in comments) is not a string.
                let mut closed = false;
                let mut lookahead = chars.clone();
                while let Some(next) = lookahead.next() {
                    if next == '\\' {
                        lookahead.next();
                    } else if next == c {
                        closed = true;
                        break;
                    } else if next == '\n' && c != '`' {
                        break;
                    }
                }
                if closed {
                    while let Some(next) = chars.next() {
                        if next == '\\' {
                            chars.next();
                        } else if next == c {
                            break;
                        }
                    }
                } else if c == '"' {
                    return Some("a string is never closed".into());
                }
            }
            '(' | '[' | '{' => stack.push(c),
            ')' | ']' | '}' => {
                let expected = match c {
                    ')' => '(',
                    ']' => '[',
                    _ => '{',
                };
                if stack.pop() != Some(expected) {
                    return Some(format!("`{c}` closes nothing that is open"));
                }
            }
            _ => {}
        }
    }
    stack.last().map(|open| format!("`{open}` is never closed"))
}

fn skip_line(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    for next in chars.by_ref() {
        if next == '\n' {
            break;
        }
    }
}

fn diff_problem(answer: &str) -> Option<String> {
    let text: String = code_blocks(answer)
        .into_iter()
        .map(|(_, body)| body)
        .collect::<Vec<_>>()
        .join("\n");
    let has = |prefix: &str| text.lines().any(|line| line.starts_with(prefix));
    if has("--- ") && has("+++ ") && has("@@ ") {
        None
    } else {
        Some("a unified diff was asked for and the answer has no ---/+++/@@ hunks".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_answers_score_zero_whatever_their_relevance() {
        let bad_json = assess(TaskType::Json, "{\"a\": 1", Ending::Finished, Some(0.9));
        assert_eq!(bad_json.score, 0.0);
        assert_eq!(bad_json.well_formed, Some(false));
        let good_json = assess(
            TaskType::Json,
            "```json\n{\"a\": [1, 2]}\n```",
            Ending::Finished,
            Some(0.9),
        );
        assert!(good_json.score > 0.9, "{good_json:?}");
        let bad_code = assess(
            TaskType::Code,
            "fn main() {\n    println!(\"hi\";\n}",
            Ending::Finished,
            None,
        );
        assert_eq!(bad_code.score, 0.0, "{bad_code:?}");
        let good_code = assess(
            TaskType::Code,
            "Here:\n```rust\nfn f<'a>(x: &'a str) -> &'a str { x } // it's fine\n```",
            Ending::Finished,
            None,
        );
        assert_eq!(good_code.score, 1.0, "{good_code:?}");
        let diff = "--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n";
        assert_eq!(
            assess(TaskType::Diff, diff, Ending::Finished, None).well_formed,
            Some(true)
        );
        assert_eq!(
            assess(TaskType::Diff, "change a to b", Ending::Finished, None).score,
            0.0
        );
    }

    #[test]
    fn tagged_code_is_parsed_with_its_language_grammar() {
        let cases = [
            (
                "rust",
                "fn main() { let x = 1; }",
                "fn main() { let x = ; }",
            ),
            (
                "python",
                "def f(x):\n    return x + 1\n",
                "def f(x)\n    return x +\n",
            ),
            (
                "javascript",
                "const f = (x) => x * 2;",
                "const f = (x) => { x * 2;",
            ),
            (
                "typescript",
                "function f(x: number): number { return x; }",
                "function f(x: number: number {}",
            ),
            (
                "go",
                "package main\nfunc main() {}\n",
                "package main\nfunc main( {}\n",
            ),
            (
                "bash",
                "for f in *.txt; do echo \"$f\"; done\n",
                "for f in *.txt; do echo $f\n",
            ),
        ];
        for (tag, good, bad) in cases {
            let fenced = |code: &str| format!("```{tag}\n{code}\n```");
            let ok = assess(TaskType::Code, &fenced(good), Ending::Finished, None);
            assert_eq!(ok.well_formed, Some(true), "{tag}: {ok:?}");
            let broken = assess(TaskType::Code, &fenced(bad), Ending::Finished, None);
            assert_eq!(broken.score, 0.0, "{tag}: {broken:?}");
            assert!(
                broken
                    .notes
                    .iter()
                    .any(|note| note.contains("does not parse")),
                "{tag}: {broken:?}"
            );
        }
    }

    #[test]
    fn an_answer_that_loops_scores_zero_and_says_what_repeats() {
        let review = format!(
            "The code looks fine overall. {}",
            "Consider adding more tests. ".repeat(30)
        );
        let looped = assess(TaskType::Chat, &review, Ending::AtTokenLimit, Some(0.6));
        assert_eq!(looped.score, 0.0, "{looped:?}");
        assert!(looped.degenerate.is_some());
        assert!(
            looped
                .notes
                .iter()
                .any(|note| note.contains("\"Consider adding more tests.\" repeats 30 times")),
            "{looped:?}"
        );
        let one_word = assess(TaskType::Chat, &"ok ".repeat(40), Ending::Finished, None);
        assert!(one_word.degenerate.is_some(), "{one_word:?}");
        let repeated_lines = format!("```python\n{}```", "x = x + 1\n".repeat(20));
        assert!(
            assess(TaskType::Code, &repeated_lines, Ending::Finished, None)
                .degenerate
                .is_some()
        );
    }

    #[test]
    fn a_loop_at_the_end_is_cut_after_its_first_saying() {
        let review = format!(
            "- [medium] todo.py:3: {}",
            "The list is never saved. ".repeat(6)
        );
        let end = loop_at_end(&review).expect("a loop");
        assert_eq!(
            &review[..end],
            "- [medium] todo.py:3: The list is never saved."
        );
        // Still short of three sayings over 24 words: not yet a loop.
        assert_eq!(loop_at_end(&"The list is never saved. ".repeat(4)), None);
        assert_eq!(loop_at_end("def f():\n    return 1\n"), None);
        let cut_mid_word = format!("{}A test is a tes", "A test is a test,\n".repeat(8));
        let end = loop_at_end(&cut_mid_word).expect("a loop");
        assert_eq!(&cut_mid_word[..end], "A test is a test,");
        let unicode = format!("Résumé: {}", "ça boucle encore ici. ".repeat(8));
        let end = loop_at_end(&unicode).expect("a loop");
        assert_eq!(&unicode[..end], "Résumé: ça boucle encore ici.");
    }

    #[test]
    fn repetition_that_belongs_to_the_answer_is_not_a_loop() {
        let tests = "```python\ndef test_add():\n    assert add(1, 2) == 3\n    assert add(2, 2) == 4\n    assert add(0, 0) == 0\n\ndef test_sub():\n    assert sub(3, 2) == 1\n```";
        let zeros = format!(
            "```rust\nfn main() {{\n    let grid = [{}0];\n    println!(\"{{grid:?}}\");\n    let total: u32 = grid.iter().sum();\n    assert_eq!(total, 0);\n}}\n```\nThe grid starts empty, every cell at zero, and the total proves it before anything is written to it by the caller.",
            "0, ".repeat(8)
        );
        let list =
            "1. Parse the input.\n2. Parse the options.\n3. Parse the file.\n4. Write the output.";
        for (task, answer) in [
            (TaskType::Code, tests),
            (TaskType::Code, zeros.as_str()),
            (TaskType::Chat, list),
            (TaskType::Chat, "no no no, not that one"),
        ] {
            let report = assess(task, answer, Ending::Finished, None);
            assert_eq!(report.degenerate, None, "{answer}: {report:?}");
            assert!(report.score > 0.0, "{answer}: {report:?}");
        }
    }

    #[test]
    fn relevance_and_completeness_move_the_score() {
        let on_topic = assess(TaskType::Chat, "Paris.", Ending::Finished, Some(0.6));
        let off_topic = assess(TaskType::Chat, "Bananas.", Ending::Finished, Some(0.02));
        let cut = assess(TaskType::Chat, "Paris is", Ending::AtTokenLimit, Some(0.6));
        assert!(on_topic.score > cut.score && cut.score > off_topic.score);
        assert_eq!(cut.notes, ["the answer was cut at the token limit"]);
        let stopped = assess(TaskType::Chat, "Paris is.", Ending::InLoop, Some(0.6));
        assert_eq!(stopped.score, cut.score);
        assert_eq!(
            stopped.notes,
            ["the answer was stopped where it began to repeat itself"]
        );
        assert_eq!(
            assess(TaskType::Chat, "  ", Ending::Finished, None).score,
            0.0
        );
        assert!(
            TaskType::parse("poetry")
                .unwrap_err()
                .contains("chat, code, json or diff")
        );
    }
}
