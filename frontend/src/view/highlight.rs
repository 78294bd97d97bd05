//! A small syntax highlighter for the diff viewer: comments, strings, numbers and the
//! keywords of the languages the agents touch most (Rust, Python, JavaScript/TypeScript,
//! Go). It reads one line at a time, so a block comment or string that spans lines shows
//! plain after its first line; a reviewer still reads every character as written.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Token {
    Plain,
    Keyword,
    Str,
    Number,
    Comment,
}

impl Token {
    pub fn class(self) -> &'static str {
        match self {
            Token::Plain => "",
            Token::Keyword => "tok-kw",
            Token::Str => "tok-str",
            Token::Number => "tok-num",
            Token::Comment => "tok-com",
        }
    }
}

const KEYWORDS: &[&str] = &[
    "as", "async", "await", "break", "class", "const", "continue", "def", "else", "elif", "enum",
    "except", "export", "false", "False", "fn", "for", "from", "func", "function", "if", "impl",
    "import", "in", "let", "match", "mod", "mut", "None", "null", "package", "pub", "return",
    "self", "Self", "static", "struct", "trait", "true", "True", "try", "type", "use", "var",
    "where", "while", "with", "yield",
];

/// `line` as runs of one token kind each; the runs joined give `line` back exactly.
pub fn tokens(line: &str) -> Vec<(Token, String)> {
    let chars: Vec<char> = line.chars().collect();
    let mut out: Vec<(Token, String)> = Vec::new();
    let mut push = |kind: Token, text: String| match out.last_mut() {
        Some((last, existing)) if *last == kind => existing.push_str(&text),
        _ => out.push((kind, text)),
    };
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let rest_starts = |prefix: &str| chars[i..].iter().collect::<String>().starts_with(prefix);
        if rest_starts("//") || c == '#' {
            push(Token::Comment, chars[i..].iter().collect());
            break;
        }
        if c == '"' || c == '\'' || c == '`' {
            let mut j = i + 1;
            while j < chars.len() && chars[j] != c {
                j += if chars[j] == '\\' { 2 } else { 1 };
            }
            let end = (j + 1).min(chars.len());
            push(Token::Str, chars[i..end].iter().collect());
            i = end;
            continue;
        }
        if c.is_ascii_digit() {
            let mut j = i;
            while j < chars.len()
                && (chars[j].is_ascii_alphanumeric() || chars[j] == '.' || chars[j] == '_')
            {
                j += 1;
            }
            push(Token::Number, chars[i..j].iter().collect());
            i = j;
            continue;
        }
        if c.is_alphabetic() || c == '_' {
            let mut j = i;
            while j < chars.len() && (chars[j].is_alphanumeric() || chars[j] == '_') {
                j += 1;
            }
            let word: String = chars[i..j].iter().collect();
            let kind = if KEYWORDS.contains(&word.as_str()) {
                Token::Keyword
            } else {
                Token::Plain
            };
            push(kind, word);
            i = j;
            continue;
        }
        push(Token::Plain, c.to_string());
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_join_back_to_the_line_and_classify_what_matters() {
        let line = r#"let name = "a \"quoted\" word"; // 42 things"#;
        let runs = tokens(line);
        assert_eq!(
            runs.iter().map(|(_, t)| t.as_str()).collect::<String>(),
            line
        );
        assert_eq!(runs[0], (Token::Keyword, "let".into()));
        assert!(runs.contains(&(Token::Str, r#""a \"quoted\" word""#.into())));
        assert_eq!(
            runs.last().unwrap(),
            &(Token::Comment, "// 42 things".into())
        );
        assert!(tokens("x = 3.14").contains(&(Token::Number, "3.14".into())));
        for hostile in ["\"unterminated", "\\", "'", "é日本 #", ""] {
            assert_eq!(
                tokens(hostile)
                    .iter()
                    .map(|(_, t)| t.as_str())
                    .collect::<String>(),
                hostile
            );
        }
    }
}
