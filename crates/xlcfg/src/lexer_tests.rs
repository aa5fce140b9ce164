#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

fn toks(src: &str) -> Result<Vec<Tok>, Error> {
    let mut lx = Lexer::new(src);
    let mut out = Vec::new();
    loop {
        let t = lx.next_token()?;
        if t.tok == Tok::Eof {
            return Ok(out);
        }
        out.push(t.tok);
    }
}

#[test]
fn basic_tokens() {
    assert_eq!(
        toks("name = 'x' # c\nv+=[0x1f,010];").unwrap(),
        vec![
            Tok::Ident("name".into()),
            Tok::Assign,
            Tok::Str("x".into()),
            Tok::Newline,
            Tok::Ident("v".into()),
            Tok::AddAssign,
            Tok::Open,
            Tok::Number("0x1f".into()),
            Tok::Comma,
            Tok::Number("010".into()),
            Tok::Close,
            Tok::Semi,
        ]
    );
    // Numbers keep their text and stop at characters outside [0-9a-fx].
    assert_eq!(toks("1e3").unwrap(), vec![Tok::Number("1e3".into())]);
    assert_eq!(
        toks("12g").unwrap(),
        vec![Tok::Number("12".into()), Tok::Ident("g".into())]
    );
    assert_eq!(
        toks("on_crash.x_1").unwrap(),
        vec![Tok::Ident("on_crash.x_1".into())]
    );
}

#[test]
fn escapes() {
    assert_eq!(
        toks(r#""a\"b\\c\'d""#).unwrap(),
        vec![Tok::Str("a\"b\\c'd".into())]
    );
    assert_eq!(
        toks(r#"'\a\b\f\n\r\t\v'"#).unwrap(),
        vec![Tok::Str("\u{7}\u{8}\u{c}\n\r\t\u{b}".into())]
    );
    // Octal escapes: validated, then dropped (libxlu never stores them).
    assert_eq!(toks(r#""x\012y""#).unwrap(), vec![Tok::Str("xy".into())]);
    assert_eq!(toks(r#""\0 12z""#).unwrap(), vec![Tok::Str("z".into())]);
    assert_eq!(toks(r#""\089""#).unwrap(), vec![Tok::Str(String::new())]);
    for bad in [r#""\0y""#, r#""\01x""#, r#""\x41""#, r#""\q""#, r#""\é""#] {
        let e = toks(bad).unwrap_err();
        assert!(
            matches!(
                e,
                Error::Syntax {
                    line: 1,
                    col: 1,
                    ..
                }
            ),
            "{bad}: {e}"
        );
    }
    // Quotes of the other kind need no escape; UTF-8 passes through.
    assert_eq!(
        toks(r#"'say "hi" — ü'"#).unwrap(),
        vec![Tok::Str("say \"hi\" — ü".into())]
    );
}

#[test]
fn lexical_errors_and_positions() {
    let e = toks("a=1\nMemory=2\n").unwrap_err();
    assert_eq!(
        e.to_string(),
        "2:1: config parsing error near `Memory=2': lexical error"
    );
    let e = toks("a = 1\r\n").unwrap_err();
    assert_eq!(e.position(), Some((1, 6)));
    let e = toks("x='unterminated\n").unwrap_err();
    assert_eq!(e.position(), Some((1, 3)));
    // A comment needs its newline.
    assert!(toks("a=1\n# last").is_err());
    assert!(toks("a=1\n# last\n").is_ok());
    // One bad byte at the very end is dropped, as flex does.
    assert_eq!(toks("a=1\n@").unwrap().len(), 4);
    assert!(toks("a=1\n@ ").is_err());
    // Columns count characters, not bytes.
    let e = toks("a='ü' @x").unwrap_err();
    assert_eq!(e.position(), Some((1, 7)));
}

#[test]
fn python_hint() {
    let mut lx = Lexer::new("a=(1)\n");
    while lx.next_token().is_ok_and(|t| t.tok != Tok::Eof) {}
    assert!(lx.likely_python);
    let mut lx = Lexer::new("a=@\n");
    while lx.next_token().is_ok_and(|t| t.tok != Tok::Eof) {}
    assert!(!lx.likely_python);
}
