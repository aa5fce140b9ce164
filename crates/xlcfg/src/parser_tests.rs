#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

fn atom(cfg: &Config, name: &str) -> String {
    cfg.get(name)
        .and_then(|s| s.value.as_atom())
        .unwrap()
        .to_owned()
}

fn shape(v: &Value) -> String {
    match &v.kind {
        ValueKind::Atom { text, .. } => text.clone(),
        ValueKind::List(items) => {
            format!(
                "[{}]",
                items.iter().map(shape).collect::<Vec<_>>().join(",")
            )
        }
    }
}

#[test]
fn statements_and_separators() {
    let cfg = parse("a=1;b='x';;c=\"y\"\n\n d = 0x1f # hex\ne=2").unwrap();
    assert_eq!(cfg.names(), ["a", "b", "c", "d", "e"]);
    assert_eq!(atom(&cfg, "d"), "0x1f");
    assert_eq!(atom(&cfg, "e"), "2");
    assert_eq!(parse("").unwrap().settings.len(), 0);
    assert_eq!(parse("\n;\n").unwrap().settings.len(), 0);
}

#[test]
fn lists() {
    let cfg = parse("a=[]\nb=[\n]\nc=[1,]\nd=[\n 'x' ,\n # note\n 'y'\n ,\n]\ne=[[1,2],[],'z']\n")
        .unwrap();
    let get = |n: &str| shape(&cfg.get(n).unwrap().value);
    assert_eq!(get("a"), "[]");
    assert_eq!(get("b"), "[]");
    assert_eq!(get("c"), "[1]");
    assert_eq!(get("d"), "[x,y]");
    assert_eq!(get("e"), "[[1,2],[],z]");
    for bad in ["a=[,]\n", "a=[1,,2]\n", "a=[1 2]\n", "a=[1\n", "a=[\n,1]\n"] {
        assert!(parse(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn repeated_and_add() {
    let cfg = parse("a=1\nb=2\na=3\n").unwrap();
    assert_eq!(atom(&cfg, "a"), "3");
    let cfg = parse("s='ab'\ns+=\"cd\"\nl=[1]\nl+=[2]\nl+=[3,4]\nn+=[9]\n").unwrap();
    assert_eq!(atom(&cfg, "s"), "abcd");
    assert_eq!(shape(&cfg.get("l").unwrap().value), "[1,2,3,4]");
    assert_eq!(shape(&cfg.get("n").unwrap().value), "[9]");
    assert_eq!(cfg.get("s").unwrap().op, Op::Add);
    let e = parse("l=[1]\nl+='x'\n").unwrap_err();
    assert_eq!(e.position(), Some((2, 4)));
    assert!(e.to_string().contains("can't add [list]"));
}

#[test]
fn syntax_errors_carry_positions() {
    let e = parse("a=1 b=2\n").unwrap_err();
    assert_eq!(e.position(), Some((1, 5)));
    let e = parse("a=\n1\n").unwrap_err();
    assert_eq!(e.position(), Some((1, 3)));
    assert!(e.to_string().contains("unexpected end of line"), "{e}");
    let e = parse("=1\n").unwrap_err();
    assert_eq!(e.position(), Some((1, 1)));
    let e = parse("a 1\n").unwrap_err();
    assert_eq!(e.position(), Some((1, 3)));
    let e = parse("a=name\n").unwrap_err();
    assert_eq!(e.position(), Some((1, 3)));
    let e = parse("memory = 1.5\n").unwrap_err();
    assert!(e.to_string().contains("Python"), "{e}");
}

#[test]
fn deep_nesting_is_refused_not_a_crash() {
    let deep = format!("a={}{}\n", "[".repeat(10_000), "]".repeat(10_000));
    assert!(parse(&deep).is_err());
    let ok = format!("a={}{}\n", "[".repeat(MAX_NESTING), "]".repeat(MAX_NESTING));
    assert!(parse(&ok).is_ok());
}

#[test]
fn getters_like_libxlu() {
    let cfg =
        parse("n=0x10\nq='12'\nbad='12x'\nl=[1]\nadd+=1\nbig=99999999999999999999\noct=010\n")
            .unwrap();
    assert_eq!(cfg.get_long("n").unwrap(), Some(16));
    assert_eq!(cfg.get_long("q").unwrap(), Some(12));
    assert_eq!(cfg.get_long("oct").unwrap(), Some(8));
    assert_eq!(cfg.get_long("absent").unwrap(), None);
    assert_eq!(
        cfg.get_long("bad").unwrap_err().message,
        "parameter `bad' is not a valid number"
    );
    assert_eq!(
        cfg.get_long("l").unwrap_err().message,
        "parameter `l' is a list but should be a single value"
    );
    assert!(
        cfg.get_long("add")
            .unwrap_err()
            .message
            .contains("can't use +=")
    );
    assert!(
        cfg.get_long("big")
            .unwrap_err()
            .message
            .contains("out of range")
    );
    let w = cfg.get_list("n").unwrap_err();
    assert_eq!(
        w.to_string(),
        "1: warning: parameter `n' is a single value but should be a list"
    );
    assert_eq!(cfg.get_defbool("n").unwrap(), Some(true));
}
