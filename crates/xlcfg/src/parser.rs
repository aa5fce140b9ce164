//! The xl.cfg grammar of libxlu (`tools/libs/util/libxlu_cfg_y.y`) as a
//! recursive-descent parser:
//!
//! ```text
//! file       := { [assignment] end } [assignment]      end := NEWLINE | ';'
//! assignment := NAME ('=' | '+=') value
//! value      := atom | '[' nl* [ value nl* { ',' nl* value nl* } [ ',' nl* ] ] ']'
//! ```
//!
//! So statements end with a newline or `;` (the last may end the file
//! instead), lists may span lines, nest, and have one trailing comma, and
//! an empty statement is fine. `+=` is applied as libxlu's
//! `xlu__cfg_set_store` does: joined to the previous value of the name,
//! which must be of the same kind.
//!
//! Unlike libxlu, which reports every error it meets, parsing stops at the
//! first error; its message carries the line and column.

use crate::config::{Config, Op, Setting, Value, ValueKind};
use crate::error::Error;
use crate::lexer::{Lexer, Pos, Tok, Token};

/// Lists nested deeper than this are refused (libxlu has no limit, but a
/// recursive parser needs one to stay safe on hostile input).
pub const MAX_NESTING: usize = 64;

/// Parses a whole configuration text.
pub fn parse(src: &str) -> Result<Config, Error> {
    let mut p = Parser {
        lexer: Lexer::new(src),
        look: None,
        config: Config::default(),
    };
    match p.file() {
        Ok(()) => Ok(p.config),
        Err(e) => Err(p.with_python_hint(e)),
    }
}

struct Parser<'a> {
    lexer: Lexer<'a>,
    look: Option<Token>,
    config: Config,
}

impl Parser<'_> {
    fn peek(&mut self) -> Result<&Tok, Error> {
        let token = match self.look.take() {
            Some(t) => t,
            None => self.lexer.next_token()?,
        };
        Ok(&self.look.insert(token).tok)
    }

    fn next(&mut self) -> Result<Token, Error> {
        match self.look.take() {
            Some(t) => Ok(t),
            None => self.lexer.next_token(),
        }
    }

    fn file(&mut self) -> Result<(), Error> {
        loop {
            let t = self.next()?;
            match t.tok {
                Tok::Eof => return Ok(()),
                Tok::Newline | Tok::Semi => continue,
                Tok::Ident(name) => {
                    self.assignment(name, t.pos)?;
                    let end = self.next()?;
                    match end.tok {
                        Tok::Eof => return Ok(()),
                        Tok::Newline | Tok::Semi => {}
                        other => {
                            return Err(unexpected(&other, end.pos, "`;' or end of line"));
                        }
                    }
                }
                other => return Err(unexpected(&other, t.pos, "a setting name")),
            }
        }
    }

    fn assignment(&mut self, name: String, name_pos: Pos) -> Result<(), Error> {
        let t = self.next()?;
        let op = match t.tok {
            Tok::Assign => Op::Assign,
            Tok::AddAssign => Op::Add,
            other => return Err(unexpected(&other, t.pos, "`=' or `+='")),
        };
        let mut value = self.value(0)?;
        if op == Op::Add
            && let Some(prev) = self
                .config
                .settings
                .iter_mut()
                .rev()
                .find(|s| s.name == name)
        {
            value = concat(&mut prev.value, value)?;
        }
        self.config.settings.push(Setting {
            name,
            value,
            op,
            name_pos,
        });
        Ok(())
    }

    fn value(&mut self, depth: usize) -> Result<Value, Error> {
        let t = self.next()?;
        let kind = match t.tok {
            Tok::Str(text) => ValueKind::Atom { text, quoted: true },
            Tok::Number(text) => ValueKind::Atom {
                text,
                quoted: false,
            },
            Tok::Open if depth < MAX_NESTING => ValueKind::List(self.list_items(depth + 1)?),
            Tok::Open => {
                return Err(Error::Syntax {
                    line: t.pos.line,
                    col: t.pos.col,
                    message: format!("lists nested deeper than {MAX_NESTING} levels"),
                });
            }
            other => return Err(unexpected(&other, t.pos, "a string, a number or `['")),
        };
        Ok(Value { kind, pos: t.pos })
    }

    fn skip_newlines(&mut self) -> Result<(), Error> {
        while *self.peek()? == Tok::Newline {
            self.next()?;
        }
        Ok(())
    }

    /// After `[`: items up to and including `]`.
    fn list_items(&mut self, depth: usize) -> Result<Vec<Value>, Error> {
        let mut items = Vec::new();
        self.skip_newlines()?;
        if *self.peek()? == Tok::Close {
            self.next()?;
            return Ok(items);
        }
        loop {
            items.push(self.value(depth)?);
            self.skip_newlines()?;
            let t = self.next()?;
            match t.tok {
                Tok::Close => return Ok(items),
                Tok::Comma => {
                    self.skip_newlines()?;
                    if *self.peek()? == Tok::Close {
                        self.next()?;
                        return Ok(items);
                    }
                }
                other => return Err(unexpected(&other, t.pos, "`,' or `]'")),
            }
        }
    }

    /// libxlu adds a note when the file looks like the Python configs of
    /// xend; the lexer knows whether it met such characters, also after
    /// the error, so lex to the end to decide.
    fn with_python_hint(&mut self, e: Error) -> Error {
        let mut guard = 0usize;
        while !self.lexer.likely_python && guard < 1_000_000 {
            guard += 1;
            match self.lexer.next_token() {
                Ok(Token { tok: Tok::Eof, .. }) => break,
                _ => continue,
            }
        }
        match e {
            Error::Syntax { line, col, message } if self.lexer.likely_python => Error::Syntax {
                line,
                col,
                message: format!(
                    "{message} (the file looks like it contains Python code, which xl no longer supports)"
                ),
            },
            other => other,
        }
    }
}

fn unexpected(tok: &Tok, pos: Pos, expected: &str) -> Error {
    Error::Syntax {
        line: pos.line,
        col: pos.col,
        message: format!(
            "syntax error, unexpected {}, expecting {expected}",
            tok.describe()
        ),
    }
}

/// `+=`: strings are joined, lists appended; mixing is an error. As in
/// libxlu, the items of a previous list move to the new setting (the old
/// one, no longer reachable by name, is left empty).
fn concat(prev: &mut Value, add: Value) -> Result<Value, Error> {
    let kind = match (&mut prev.kind, add.kind) {
        (
            ValueKind::Atom {
                text: a,
                quoted: qa,
            },
            ValueKind::Atom {
                text: b,
                quoted: qb,
            },
        ) => ValueKind::Atom {
            text: format!("{a}{b}"),
            quoted: *qa || qb,
        },
        (ValueKind::List(a), ValueKind::List(b)) => {
            let mut items = std::mem::take(a);
            items.extend(b);
            ValueKind::List(items)
        }
        _ => {
            return Err(Error::Syntax {
                line: add.pos.line,
                col: add.pos.col,
                message: "can't add [list] to \"string\" or vice versa".to_owned(),
            });
        }
    };
    Ok(Value { kind, pos: add.pos })
}

#[cfg(test)]
#[path = "parser_tests.rs"]
mod tests;
