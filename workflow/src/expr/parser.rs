//! Recursive descent over tokens, with every recursion counted against the depth limit.
//!
//! Precedence, loosest first: `||`, `&&`, comparisons and `in` (not chainable), unary
//! `!` and `-`, then literals, lists, names, calls and parentheses.

use crate::errors::ExprError;
use crate::limits::{EXPRESSION_BYTES_MAX, EXPRESSION_DEPTH_MAX};

use super::lexer::{Token, syntax, tokenize};
use super::{BinaryOp, Expr, Function};

/// Parses one expression, the text between `{{` and `}}`.
pub fn parse(source: &str) -> Result<Expr, ExprError> {
    if source.len() > EXPRESSION_BYTES_MAX {
        return Err(ExprError::TooLong {
            length: source.len(),
            limit: EXPRESSION_BYTES_MAX,
        });
    }
    let tokens = tokenize(source)?;
    let mut parser = Parser {
        tokens,
        position: 0,
        depth: 0,
        end: source.len(),
    };
    if parser.tokens.is_empty() {
        return Err(syntax(0, "expression is empty"));
    }
    let expr = parser.or()?;
    match parser.tokens.get(parser.position) {
        None => Ok(expr),
        Some((offset, token)) => Err(syntax(*offset, &format!("unexpected {}", describe(token)))),
    }
}

struct Parser {
    tokens: Vec<(usize, Token)>,
    position: usize,
    depth: usize,
    end: usize,
}

impl Parser {
    fn enter(&mut self) -> Result<(), ExprError> {
        self.depth += 1;
        if self.depth > EXPRESSION_DEPTH_MAX {
            return Err(ExprError::TooDeep {
                limit: EXPRESSION_DEPTH_MAX,
            });
        }
        Ok(())
    }

    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.position).map(|(_, token)| token)
    }

    fn offset(&self) -> usize {
        self.tokens
            .get(self.position)
            .map_or(self.end, |(offset, _)| *offset)
    }

    fn eat(&mut self, expected: &Token) -> bool {
        let found = self.peek() == Some(expected);
        if found {
            self.position += 1;
        }
        found
    }

    fn expect(&mut self, expected: &Token, what: &str) -> Result<(), ExprError> {
        if self.eat(expected) {
            return Ok(());
        }
        let found = self.peek().map_or("the end".to_owned(), describe);
        Err(syntax(
            self.offset(),
            &format!("expected {what}, found {found}"),
        ))
    }

    /// Left-associative chains such as `a || b || c`; each link counts as one level,
    /// because evaluating the resulting tree recurses once per link.
    fn chain(
        &mut self,
        operator: &Token,
        op: BinaryOp,
        operand: fn(&mut Self) -> Result<Expr, ExprError>,
    ) -> Result<Expr, ExprError> {
        let saved = self.depth;
        let mut left = operand(self)?;
        while self.eat(operator) {
            self.enter()?;
            let right = operand(self)?;
            left = Expr::Binary(op, Box::new(left), Box::new(right));
        }
        self.depth = saved;
        Ok(left)
    }

    fn or(&mut self) -> Result<Expr, ExprError> {
        self.chain(&Token::Or, BinaryOp::Or, Self::and)
    }

    fn and(&mut self) -> Result<Expr, ExprError> {
        self.chain(&Token::And, BinaryOp::And, Self::comparison)
    }

    fn comparison(&mut self) -> Result<Expr, ExprError> {
        let left = self.unary()?;
        let Some(op) = self.peek().and_then(comparison_op) else {
            return Ok(left);
        };
        self.position += 1;
        let right = self.unary()?;
        if self.peek().and_then(comparison_op).is_some() {
            return Err(syntax(
                self.offset(),
                "comparisons do not chain; join them with `&&`",
            ));
        }
        Ok(Expr::Binary(op, Box::new(left), Box::new(right)))
    }

    fn unary(&mut self) -> Result<Expr, ExprError> {
        let wrap: fn(Box<Expr>) -> Expr = match self.peek() {
            Some(Token::Not) => Expr::Not,
            Some(Token::Minus) => Expr::Negate,
            _ => return self.primary(),
        };
        self.position += 1;
        self.enter()?;
        let inner = self.unary()?;
        self.depth -= 1;
        Ok(wrap(Box::new(inner)))
    }

    fn primary(&mut self) -> Result<Expr, ExprError> {
        let offset = self.offset();
        let Some((_, token)) = self.tokens.get(self.position).cloned() else {
            return Err(syntax(offset, "expected a value, found the end"));
        };
        self.position += 1;
        match token {
            Token::Literal(value) => Ok(Expr::Literal(value)),
            Token::OpenParen => {
                self.enter()?;
                let inner = self.or()?;
                self.expect(&Token::CloseParen, "`)`")?;
                self.depth -= 1;
                Ok(inner)
            }
            Token::OpenBracket => {
                self.enter()?;
                let items = self.items(&Token::CloseBracket, "`,` or `]`")?;
                self.depth -= 1;
                Ok(Expr::List(items))
            }
            Token::Word(word) if self.peek() == Some(&Token::OpenParen) => self.call(offset, &word),
            Token::Word(word) => self.path(word),
            other => Err(syntax(
                offset,
                &format!("expected a value, found {}", describe(&other)),
            )),
        }
    }

    /// Comma-separated expressions up to `close`, which is consumed; a trailing comma is fine.
    fn items(&mut self, close: &Token, what: &str) -> Result<Vec<Expr>, ExprError> {
        let mut items = Vec::new();
        while !self.eat(close) {
            items.push(self.or()?);
            if !self.eat(&Token::Comma) {
                self.expect(close, what)?;
                break;
            }
        }
        Ok(items)
    }

    fn call(&mut self, offset: usize, name: &str) -> Result<Expr, ExprError> {
        let Some(function) = Function::from_name(name) else {
            return Err(syntax(
                offset,
                &format!("unknown function `{name}`; the functions are len, contains and default"),
            ));
        };
        self.position += 1;
        self.enter()?;
        let arguments = self.items(&Token::CloseParen, "`,` or `)`")?;
        self.depth -= 1;
        if arguments.len() != function.arity() {
            return Err(syntax(
                offset,
                &format!(
                    "`{}` takes {} argument(s), found {}",
                    function.name(),
                    function.arity(),
                    arguments.len()
                ),
            ));
        }
        Ok(Expr::Call(function, arguments))
    }

    fn path(&mut self, first: String) -> Result<Expr, ExprError> {
        let mut segments = vec![first];
        while self.eat(&Token::Dot) {
            match self.tokens.get(self.position) {
                Some((_, Token::Word(word))) => {
                    segments.push(word.clone());
                    self.position += 1;
                }
                _ => return Err(syntax(self.offset(), "expected a name after `.`")),
            }
        }
        Ok(Expr::Path(segments))
    }
}

fn comparison_op(token: &Token) -> Option<BinaryOp> {
    Some(match token {
        Token::Equal => BinaryOp::Equal,
        Token::NotEqual => BinaryOp::NotEqual,
        Token::Less => BinaryOp::Less,
        Token::LessOrEqual => BinaryOp::LessOrEqual,
        Token::Greater => BinaryOp::Greater,
        Token::GreaterOrEqual => BinaryOp::GreaterOrEqual,
        Token::In => BinaryOp::In,
        _ => return None,
    })
}

fn describe(token: &Token) -> String {
    match token {
        Token::Literal(value) => format!("`{value}`"),
        Token::Word(word) => format!("`{word}`"),
        Token::Dot => "`.`".into(),
        Token::Comma => "`,`".into(),
        Token::OpenParen => "`(`".into(),
        Token::CloseParen => "`)`".into(),
        Token::OpenBracket => "`[`".into(),
        Token::CloseBracket => "`]`".into(),
        Token::Not => "`!`".into(),
        Token::Minus => "`-`".into(),
        Token::And => "`&&`".into(),
        Token::Or => "`||`".into(),
        Token::Equal => "`==`".into(),
        Token::NotEqual => "`!=`".into(),
        Token::Less => "`<`".into(),
        Token::LessOrEqual => "`<=`".into(),
        Token::Greater => "`>`".into(),
        Token::GreaterOrEqual => "`>=`".into(),
        Token::In => "`in`".into(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn path(text: &str) -> Box<Expr> {
        Box::new(Expr::Path(text.split('.').map(str::to_owned).collect()))
    }

    #[test]
    fn precedence_binds_comparison_tighter_than_and_than_or() {
        let parsed = parse("a.x > 1 && !b.y || c.z").ok();
        let expected = Expr::Binary(
            BinaryOp::Or,
            Box::new(Expr::Binary(
                BinaryOp::And,
                Box::new(Expr::Binary(
                    BinaryOp::Greater,
                    path("a.x"),
                    Box::new(Expr::Literal(json!(1))),
                )),
                Box::new(Expr::Not(path("b.y"))),
            )),
            path("c.z"),
        );
        assert_eq!(parsed, Some(expected));
    }

    #[test]
    fn lists_calls_and_membership() {
        let parsed = parse("len([1, 'a',]) in [2]").ok();
        let expected = Expr::Binary(
            BinaryOp::In,
            Box::new(Expr::Call(
                Function::Len,
                vec![Expr::List(vec![
                    Expr::Literal(json!(1)),
                    Expr::Literal(json!("a")),
                ])],
            )),
            Box::new(Expr::List(vec![Expr::Literal(json!(2))])),
        );
        assert_eq!(parsed, Some(expected));
    }

    #[test]
    fn syntax_errors_say_where_and_what() {
        assert_eq!(
            parse("1 +").err().map(|e| e.to_string()),
            Some("syntax error at character 2: unexpected character `+`".into())
        );
        assert_eq!(
            parse("(1").err().map(|e| e.to_string()),
            Some("syntax error at character 2: expected `)`, found the end".into())
        );
        assert_eq!(
            parse("len(1, 2)").err().map(|e| e.to_string()),
            Some("syntax error at character 0: `len` takes 1 argument(s), found 2".into())
        );
        assert_eq!(
            parse("1 < 2 < 3").err().map(|e| e.to_string()),
            Some(
                "syntax error at character 6: comparisons do not chain; join them with `&&`".into()
            )
        );
        assert_eq!(
            parse("foo(1)").err().map(|e| e.to_string()),
            Some("syntax error at character 0: unknown function `foo`; the functions are len, contains and default".into())
        );
        assert_eq!(
            parse("   ").err().map(|e| e.to_string()),
            Some("syntax error at character 0: expression is empty".into())
        );
    }

    #[test]
    fn thousand_deep_parentheses_are_refused() {
        let deep = format!("{}1{}", "(".repeat(1000), ")".repeat(1000));
        assert_eq!(
            parse(&deep),
            Err(ExprError::TooDeep {
                limit: EXPRESSION_DEPTH_MAX
            })
        );
        let shallow = format!("{}1{}", "(".repeat(60), ")".repeat(60));
        assert_eq!(parse(&shallow), Ok(Expr::Literal(json!(1))));
    }

    #[test]
    fn long_chains_and_unary_runs_are_refused() {
        let chain = vec!["1"; 1000].join("&&");
        assert_eq!(
            parse(&chain),
            Err(ExprError::TooDeep {
                limit: EXPRESSION_DEPTH_MAX
            })
        );
        let nots = format!("{}true", "!".repeat(1000));
        assert_eq!(
            parse(&nots),
            Err(ExprError::TooDeep {
                limit: EXPRESSION_DEPTH_MAX
            })
        );
    }

    #[test]
    fn overlong_input_is_refused() {
        let long = "1".repeat(EXPRESSION_BYTES_MAX + 1);
        assert_eq!(
            parse(&long),
            Err(ExprError::TooLong {
                length: EXPRESSION_BYTES_MAX + 1,
                limit: EXPRESSION_BYTES_MAX
            })
        );
    }
}
