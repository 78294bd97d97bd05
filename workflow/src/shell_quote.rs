//! Templates in a shell command (`shell`'s `command`, `test_runner`'s `command`, a deploy
//! command): each value is quoted for the place it stands in, so that no value (a run
//! variable, a model's output) can end the author's quoting and become code.
//!
//! - outside quotes, a value is one single-quoted word: `'it'\''s'`;
//! - inside `'...'`, its `'` become `'\''` (the quote is closed, an escaped quote
//!   written, the quote opened again);
//! - inside `"..."`, its `\`, `"`, `$` and `` ` `` are escaped with a backslash.
//!
//! A template right after a backslash, or inside `$'...'` (where backslashes are
//! escapes), cannot be quoted safely and is refused.

use crate::errors::TemplateError;

/// Where in the command a piece of text stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Place {
    Bare,
    Single,
    Double,
    /// `$'...'`, bash's ANSI-C quoting.
    AnsiC,
}

/// Follows the author's literal text through the shell's quoting rules.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Lexer {
    place: Place,
    /// The last character was an unquoted (or double-quoted) backslash.
    escaped: bool,
    /// The last character was a bare `$`.
    dollar: bool,
}

impl Default for Lexer {
    fn default() -> Self {
        Self {
            place: Place::Bare,
            escaped: false,
            dollar: false,
        }
    }
}

impl Lexer {
    /// Reads the author's literal `text`.
    pub(crate) fn read(&mut self, text: &str) {
        for c in text.chars() {
            self.step(c);
        }
    }

    fn step(&mut self, c: char) {
        let was_dollar = std::mem::replace(&mut self.dollar, false);
        match self.place {
            Place::Single => {
                if c == '\'' {
                    self.place = Place::Bare;
                }
            }
            Place::Bare | Place::Double | Place::AnsiC if self.escaped => self.escaped = false,
            Place::Bare => match c {
                '\\' => self.escaped = true,
                '\'' if was_dollar => self.place = Place::AnsiC,
                '\'' => self.place = Place::Single,
                '"' => self.place = Place::Double,
                '$' => self.dollar = true,
                _ => {}
            },
            Place::Double => match c {
                '\\' => self.escaped = true,
                '"' => self.place = Place::Bare,
                _ => {}
            },
            Place::AnsiC => match c {
                '\\' => self.escaped = true,
                '\'' => self.place = Place::Bare,
                _ => {}
            },
        }
    }

    /// `value` written so that the shell reads it as data where the lexer stands; the
    /// lexer stays where it was (a quoted value ends in the context it began in).
    pub(crate) fn quote(&self, value: &str, offset: usize) -> Result<String, TemplateError> {
        if self.escaped {
            return Err(TemplateError::ShellPlace {
                offset,
                place: "right after a backslash",
            });
        }
        Ok(match self.place {
            Place::Bare => format!("'{}'", value.replace('\'', r"'\''")),
            Place::Single => value.replace('\'', r"'\''"),
            Place::Double => {
                let mut quoted = String::with_capacity(value.len());
                for c in value.chars() {
                    if matches!(c, '\\' | '"' | '$' | '`') {
                        quoted.push('\\');
                    }
                    quoted.push(c);
                }
                quoted
            }
            Place::AnsiC => {
                return Err(TemplateError::ShellPlace {
                    offset,
                    place: "inside $'...'",
                });
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::Lexer;

    /// `before{value}after` as the shell sees it: the words `printf '%s\n'` prints.
    fn through_sh(before: &str, value: &str, after: &str) -> String {
        let mut lexer = Lexer::default();
        lexer.read(before);
        let command = format!(
            "printf '%s\\n' {before}{}{after}",
            lexer.quote(value, 0).unwrap()
        );
        let output = Command::new("sh").args(["-c", &command]).output().unwrap();
        assert!(output.status.success(), "{command}");
        String::from_utf8(output.stdout).unwrap()
    }

    /// The attack: values that would end the author's quoting and run `id`, in each
    /// place a template can stand. Each comes out as the data it is.
    #[test]
    fn hostile_values_stay_data_wherever_the_template_stands() {
        let hostile = [
            "x; id",
            "x' ; id ; echo '",
            "x\" ; id ; echo \"",
            "$(id)",
            "`id`",
            "\\'; id",
            "a\nid",
            "",
        ];
        for value in hostile {
            assert_eq!(through_sh("", value, ""), format!("{value}\n"), "bare");
            assert_eq!(
                through_sh("'Hello, ", value, "!'"),
                format!("Hello, {value}!\n"),
                "in single quotes"
            );
            assert_eq!(
                through_sh("\"Hello, ", value, "!\""),
                format!("Hello, {value}!\n"),
                "in double quotes"
            );
            assert_eq!(
                through_sh("pre-", value, "-post"),
                format!("pre-{value}-post\n"),
                "inside a bare word"
            );
        }
    }

    #[test]
    fn places_that_cannot_be_quoted_are_refused() {
        for before in ["echo \\", "echo $'a", "echo \"\\"] {
            let mut lexer = Lexer::default();
            lexer.read(before);
            assert!(lexer.quote("x", 5).is_err(), "{before}");
        }
        let mut lexer = Lexer::default();
        lexer.read("echo 'a\\' \"$x\" ");
        assert_eq!(lexer.quote("v", 0).unwrap(), "'v'", "back outside quotes");
    }
}
