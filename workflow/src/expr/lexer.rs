//! Splits expression text into tokens, remembering each token's byte offset.

use serde_json::{Number, Value};

use crate::errors::ExprError;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Token {
    Literal(Value),
    /// An identifier, or after a `.` any run of `[A-Za-z0-9_]` (task ids may start with a digit).
    Word(String),
    Dot,
    Comma,
    OpenParen,
    CloseParen,
    OpenBracket,
    CloseBracket,
    Not,
    Minus,
    And,
    Or,
    Equal,
    NotEqual,
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
    In,
}

pub(crate) fn tokenize(source: &str) -> Result<Vec<(usize, Token)>, ExprError> {
    let mut lexer = Lexer {
        source,
        position: 0,
        tokens: Vec::new(),
    };
    lexer.run()?;
    Ok(lexer.tokens)
}

struct Lexer<'a> {
    source: &'a str,
    position: usize,
    tokens: Vec<(usize, Token)>,
}

impl Lexer<'_> {
    fn run(&mut self) -> Result<(), ExprError> {
        while let Some(c) = self.peek() {
            let start = self.position;
            if c.is_whitespace() {
                self.position += c.len_utf8();
                continue;
            }
            let after_dot = matches!(self.tokens.last(), Some((_, Token::Dot)));
            let token = if after_dot && is_word_char(c) {
                Token::Word(self.take_while(is_word_char).to_owned())
            } else if c.is_ascii_digit() {
                self.number()?
            } else if c.is_ascii_alphabetic() || c == '_' {
                keyword_or_word(self.take_while(is_word_char))
            } else if c == '\'' || c == '"' {
                self.string(c)?
            } else {
                self.punctuation(c)?
            };
            self.tokens.push((start, token));
        }
        Ok(())
    }

    fn peek(&self) -> Option<char> {
        self.source[self.position..].chars().next()
    }

    fn peek_second(&self) -> Option<char> {
        self.source[self.position..].chars().nth(1)
    }

    fn take_while(&mut self, keep: impl Fn(char) -> bool) -> &str {
        let start = self.position;
        while let Some(c) = self.peek().filter(|&c| keep(c)) {
            self.position += c.len_utf8();
        }
        &self.source[start..self.position]
    }

    fn number(&mut self) -> Result<Token, ExprError> {
        let start = self.position;
        self.take_while(|c| c.is_ascii_digit());
        let mut is_float = false;
        if self.peek() == Some('.') && self.peek_second().is_some_and(|c| c.is_ascii_digit()) {
            is_float = true;
            self.position += 1;
            self.take_while(|c| c.is_ascii_digit());
        }
        if matches!(self.peek(), Some('e' | 'E')) {
            is_float = true;
            self.position += 1;
            if matches!(self.peek(), Some('+' | '-')) {
                self.position += 1;
            }
            if self.take_while(|c| c.is_ascii_digit()).is_empty() {
                return Err(syntax(self.position, "exponent needs digits"));
            }
        }
        let text = &self.source[start..self.position];
        let value = if is_float {
            text.parse::<f64>().ok().and_then(Number::from_f64)
        } else {
            text.parse::<u64>()
                .ok()
                .map(Number::from)
                .or_else(|| text.parse::<f64>().ok().and_then(Number::from_f64))
        };
        value
            .map(|number| Token::Literal(Value::Number(number)))
            .ok_or_else(|| syntax(start, &format!("`{text}` is not a usable number")))
    }

    fn string(&mut self, quote: char) -> Result<Token, ExprError> {
        let start = self.position;
        self.position += 1;
        let mut text = String::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(syntax(start, "string has no closing quote"));
            };
            self.position += c.len_utf8();
            if c == quote {
                return Ok(Token::Literal(Value::String(text)));
            }
            if c == '\\' {
                let Some(escaped) = self.peek() else {
                    return Err(syntax(start, "string has no closing quote"));
                };
                self.position += escaped.len_utf8();
                text.push(match escaped {
                    'n' => '\n',
                    't' => '\t',
                    other => other,
                });
            } else {
                text.push(c);
            }
        }
    }

    fn punctuation(&mut self, c: char) -> Result<Token, ExprError> {
        let two = |second: char| self.peek_second() == Some(second);
        let (token, length) = match c {
            '.' => (Token::Dot, 1),
            ',' => (Token::Comma, 1),
            '(' => (Token::OpenParen, 1),
            ')' => (Token::CloseParen, 1),
            '[' => (Token::OpenBracket, 1),
            ']' => (Token::CloseBracket, 1),
            '-' => (Token::Minus, 1),
            '&' if two('&') => (Token::And, 2),
            '|' if two('|') => (Token::Or, 2),
            '=' if two('=') => (Token::Equal, 2),
            '!' if two('=') => (Token::NotEqual, 2),
            '!' => (Token::Not, 1),
            '<' if two('=') => (Token::LessOrEqual, 2),
            '<' => (Token::Less, 1),
            '>' if two('=') => (Token::GreaterOrEqual, 2),
            '>' => (Token::Greater, 1),
            '=' => {
                return Err(syntax(
                    self.position,
                    "`=` is not an operator; compare with `==`",
                ));
            }
            other => {
                return Err(syntax(
                    self.position,
                    &format!("unexpected character `{other}`"),
                ));
            }
        };
        self.position += length;
        Ok(token)
    }
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

fn keyword_or_word(word: &str) -> Token {
    match word {
        "true" => Token::Literal(Value::Bool(true)),
        "false" => Token::Literal(Value::Bool(false)),
        "null" => Token::Literal(Value::Null),
        "in" => Token::In,
        other => Token::Word(other.to_owned()),
    }
}

pub(crate) fn syntax(offset: usize, message: &str) -> ExprError {
    ExprError::Syntax {
        offset,
        message: message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(source: &str) -> Vec<Token> {
        match tokenize(source) {
            Ok(tokens) => tokens.into_iter().map(|(_, token)| token).collect(),
            Err(error) => panic!("{source}: {error}"),
        }
    }

    #[test]
    fn segments_after_a_dot_may_start_with_digits() {
        assert_eq!(
            kinds("tasks.2fa.status"),
            vec![
                Token::Word("tasks".into()),
                Token::Dot,
                Token::Word("2fa".into()),
                Token::Dot,
                Token::Word("status".into()),
            ]
        );
    }

    #[test]
    fn numbers_keep_integer_or_float() {
        assert_eq!(kinds("12"), vec![Token::Literal(Value::from(12u64))]);
        assert_eq!(kinds("1.5e2"), vec![Token::Literal(Value::from(150.0))]);
    }

    #[test]
    fn strings_take_either_quote_and_escapes() {
        assert_eq!(
            kinds(r#"'a"b' "c\"d""#),
            vec![
                Token::Literal(Value::from("a\"b")),
                Token::Literal(Value::from("c\"d")),
            ]
        );
    }

    #[test]
    fn errors_carry_the_offset() {
        assert_eq!(
            tokenize("a = 1"),
            Err(syntax(2, "`=` is not an operator; compare with `==`"))
        );
        assert_eq!(
            tokenize("'open"),
            Err(syntax(0, "string has no closing quote"))
        );
    }
}
