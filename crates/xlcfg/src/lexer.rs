//! Tokens of the xl.cfg syntax, exactly as libxlu's flex lexer
//! (`tools/libs/util/libxlu_cfg_l.l`) cuts them:
//!
//! * identifiers `[a-z][._0-9a-z]*` (lower case only: `Memory` is an error);
//! * numbers `[0-9][0-9a-fx]*`, kept as text (`0x1f`, `010`, `1e3`); libxlu
//!   has no number type, a number is a string the getters convert later;
//! * strings in `'…'` or `"…"` on one line; a backslash escapes any
//!   character, see [`dequote`] for what it turns into;
//! * `,` `[` `]` `=` `+=` `;`, blanks (space and tab only), and a newline or
//!   a `#` comment *including its newline* as one end-of-line token.
//!
//! Anything else is a lexical error covering the bad character and the rest
//! of its word. Faithful oddities, each pinned by a test against libxlu:
//! a comment on the last line without a final newline is an error (the
//! comment rule needs its `\n`); a single bad character as the very last
//! byte of the file is silently dropped (flex reaches end of input in the
//! error state before reporting); `\r` is an error, so CRLF files are
//! rejected, as by `xl create`.

use crate::error::Error;

/// A 1-based line and column (columns count characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Pos {
    /// Line, from 1.
    pub line: u32,
    /// Column, from 1, in characters.
    pub col: u32,
}

/// One token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tok {
    /// A setting name.
    Ident(String),
    /// A number, as written.
    Number(String),
    /// A quoted string, unescaped.
    Str(String),
    /// `,`
    Comma,
    /// `[`
    Open,
    /// `]`
    Close,
    /// `=`
    Assign,
    /// `+=`
    AddAssign,
    /// `;`
    Semi,
    /// A newline, or a comment with its newline.
    Newline,
    /// End of input.
    Eof,
}

impl Tok {
    /// How the token is named in syntax errors.
    pub fn describe(&self) -> String {
        match self {
            Tok::Ident(s) => format!("name `{s}'"),
            Tok::Number(s) => format!("number `{s}'"),
            Tok::Str(_) => "string".to_owned(),
            Tok::Comma => "`,'".to_owned(),
            Tok::Open => "`['".to_owned(),
            Tok::Close => "`]'".to_owned(),
            Tok::Assign => "`='".to_owned(),
            Tok::AddAssign => "`+='".to_owned(),
            Tok::Semi => "`;'".to_owned(),
            Tok::Newline => "end of line".to_owned(),
            Tok::Eof => "end of file".to_owned(),
        }
    }
}

/// A token and where it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// The token.
    pub tok: Tok,
    /// Its first character.
    pub pos: Pos,
}

/// The lexer: an iterator of tokens over the whole text.
pub struct Lexer<'a> {
    src: &'a str,
    at: usize,
    pos: Pos,
    /// Set once a character typical of Python (`+ - . ( ) :`) was rejected.
    pub likely_python: bool,
}

fn is_ident_rest(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '_'
}
fn is_number_rest(c: char) -> bool {
    c.is_ascii_digit() || ('a'..='f').contains(&c) || c == 'x'
}

impl<'a> Lexer<'a> {
    /// A lexer at the start of `src`.
    pub fn new(src: &'a str) -> Self {
        Lexer {
            src,
            at: 0,
            pos: Pos { line: 1, col: 1 },
            likely_python: false,
        }
    }

    fn rest(&self) -> &'a str {
        &self.src[self.at..]
    }

    /// Consumes `n` bytes (a whole number of characters) and moves the
    /// position accordingly.
    fn bump(&mut self, n: usize) -> &'a str {
        let text = &self.src[self.at..self.at + n];
        for c in text.chars() {
            if c == '\n' {
                self.pos.line += 1;
                self.pos.col = 1;
            } else {
                self.pos.col += 1;
            }
        }
        self.at += n;
        text
    }

    fn take_while(&mut self, first_len: usize, pred: fn(char) -> bool) -> &'a str {
        let rest = self.rest();
        let len = rest[first_len..]
            .char_indices()
            .find(|&(_, c)| !pred(c))
            .map_or(rest.len(), |(i, _)| i + first_len);
        self.bump(len)
    }

    /// The next token, or the lexical error libxlu reports here.
    pub fn next_token(&mut self) -> Result<Token, Error> {
        loop {
            let start = self.pos;
            let Some(c) = self.rest().chars().next() else {
                return Ok(Token {
                    tok: Tok::Eof,
                    pos: start,
                });
            };
            let tok = match c {
                ' ' | '\t' => {
                    self.bump(1);
                    continue;
                }
                'a'..='z' => Tok::Ident(self.take_while(1, is_ident_rest).to_owned()),
                '0'..='9' => Tok::Number(self.take_while(1, is_number_rest).to_owned()),
                ',' => self.punct(Tok::Comma),
                '[' => self.punct(Tok::Open),
                ']' => self.punct(Tok::Close),
                '=' => self.punct(Tok::Assign),
                ';' => self.punct(Tok::Semi),
                '+' if self.rest().starts_with("+=") => {
                    self.bump(2);
                    Tok::AddAssign
                }
                '\n' => self.punct(Tok::Newline),
                '#' => match self.rest().find('\n') {
                    Some(nl) => {
                        self.bump(nl + 1);
                        Tok::Newline
                    }
                    None => return self.bad_char(start, c),
                },
                '\'' | '"' => match string_len(self.rest(), c) {
                    Some(len) => {
                        let text = self.bump(len);
                        Tok::Str(dequote(text, start)?)
                    }
                    None => return self.bad_char(start, c),
                },
                _ => return self.bad_char(start, c),
            };
            return Ok(Token { tok, pos: start });
        }
    }

    fn punct(&mut self, tok: Tok) -> Tok {
        self.bump(1);
        tok
    }

    /// flex's error state: the bad character plus the rest of its word (or
    /// the one blank or newline after it) is reported as a lexical error.
    /// A bad character that is the last byte of the input is dropped.
    fn bad_char(&mut self, start: Pos, c: char) -> Result<Token, Error> {
        if matches!(c, '+' | '-' | '.' | '(' | ')' | ':') {
            self.likely_python = true;
        }
        let clen = c.len_utf8();
        // flex works on bytes: only a one-byte character can be the last
        // byte on its own (the tail of a multi-byte one forms a "word").
        if self.rest().len() == 1 {
            self.bump(clen);
            return Ok(Token {
                tok: Tok::Eof,
                pos: self.pos,
            });
        }
        let after = &self.rest()[clen..];
        let word_len = match after.chars().next() {
            Some(' ' | '\t' | '\n') => 1,
            _ => after.find([' ', '\t', '\n']).unwrap_or(after.len()),
        };
        let text = self.bump(clen + word_len);
        let shown: String = text
            .trim_end_matches([' ', '\t', '\n'])
            .chars()
            .map(|c| {
                if c.is_control() {
                    c.escape_debug().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect();
        let hint = if c == '\r' {
            " (carriage return: xl does not accept CRLF line ends)"
        } else {
            ""
        };
        Err(Error::Syntax {
            line: start.line,
            col: start.col,
            message: format!("config parsing error near `{shown}': lexical error{hint}"),
        })
    }
}

/// Length in bytes of a quoted string starting at `s` (which begins with
/// `quote`), or `None` if it is not closed on this line. A backslash
/// escapes any character but a newline.
fn string_len(s: &str, quote: char) -> Option<usize> {
    let mut chars = s.char_indices().skip(1);
    while let Some((i, c)) = chars.next() {
        match c {
            '\n' => return None,
            '\\' => match chars.next() {
                Some((_, '\n')) | None => return None,
                Some(_) => {}
            },
            c if c == quote => return Some(i + 1),
            _ => {}
        }
    }
    None
}

/// Unescapes a quoted string as `xlu__cfgl_dequote` does:
///
/// * `\\` `\"` `\'` and `\a \b \f \n \r \t \v` give the usual characters;
/// * `\x…` is always rejected (libxlu's digit check cannot pass for hex);
/// * `\` followed by an octal digit takes up to three more characters read
///   with `strtoul(…, 10)`; fewer than two consumed is an error, and the
///   character is then *dropped*, not inserted (libxlu never stores it):
///   `"a\012b"` is `ab`, `"\0"` alone is an error;
/// * any other escaped character is an error.
///
/// A NUL character makes libxlu abort, so it is rejected here.
pub fn dequote(text: &str, pos: Pos) -> Result<String, Error> {
    let err = |message: &str| Error::Syntax {
        line: pos.line,
        col: pos.col,
        message: format!("config parsing error near `{text}': {message}"),
    };
    let inner = &text[1..text.len() - 1];
    if inner.contains('\0') {
        return Err(err("NUL character in quoted string"));
    }
    let mut out = String::with_capacity(inner.len());
    let mut rest = inner;
    while let Some(c) = rest.chars().next() {
        rest = &rest[c.len_utf8()..];
        if c != '\\' {
            out.push(c);
            continue;
        }
        let Some(nc) = rest.chars().next() else {
            return Err(err("backslash at end of quoted string"));
        };
        rest = &rest[nc.len_utf8()..];
        match nc {
            '"' | '\'' | '\\' => out.push(nc),
            'a' => out.push('\u{7}'),
            'b' => out.push('\u{8}'),
            'f' => out.push('\u{c}'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'v' => out.push('\u{b}'),
            'x' => {
                return Err(err(
                    "invalid digit after backslash in hex numerical character escape in quoted string",
                ));
            }
            '0'..='7' => {
                // Up to three bytes (strncpy), parsed as strtoul base 10.
                let window: Vec<u8> = rest.bytes().take(3).collect();
                let used = strtoul10_len(&window);
                if used <= 1 {
                    return Err(err(
                        "invalid digit after backslash in octal numerical character escape in quoted string",
                    ));
                }
                // The consumed bytes are ASCII (blanks, sign, digits).
                rest = &rest[used..];
            }
            _ => return Err(err("invalid character after backslash in quoted string")),
        }
    }
    Ok(out)
}

/// How many bytes `strtoul(buf, &ep, 10)` consumes (0 when no digit).
fn strtoul10_len(buf: &[u8]) -> usize {
    let mut i = 0;
    while i < buf.len() && matches!(buf[i], b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r') {
        i += 1;
    }
    if i < buf.len() && matches!(buf[i], b'+' | b'-') {
        i += 1;
    }
    let digits = buf[i..].iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 { 0 } else { i + digits }
}

#[cfg(test)]
#[path = "lexer_tests.rs"]
mod tests;
