//! Differential tests: vusb's parser against the real libxlu (libxlutil,
//! the parser `xl create` uses), through the small C oracle in
//! `tests/oracle/xlu_oracle.c`. For every input both must agree on
//! accept/reject and, when accepted, on the value of every setting.
//!
//! Needs gcc and libxlutil (Debian: libxen-dev). Without them the tests
//! are skipped with a message, except under `CI=true`, where they fail.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::{Value as Json, json};
use vusb_xlcfg::{Config, Value, ValueKind, parse};

fn oracle() -> Option<&'static Path> {
    static ORACLE: OnceLock<Option<PathBuf>> = OnceLock::new();
    ORACLE
        .get_or_init(|| {
            let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("xlu_oracle");
            let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oracle/xlu_oracle.c");
            let built = Command::new("gcc")
                .args(["-O", "-o"])
                .arg(&out)
                .arg(&src)
                .arg("-lxlutil")
                .status()
                .is_ok_and(|s| s.success());
            if built {
                Some(out)
            } else if std::env::var("CI").as_deref() == Ok("true") {
                panic!("CI=true but the libxlu oracle cannot be built (gcc, libxen-dev)");
            } else {
                eprintln!("skipping: cannot build the libxlu oracle (need gcc and libxen-dev)");
                None
            }
        })
        .as_deref()
}

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

fn to_json(v: &Value) -> Json {
    match &v.kind {
        ValueKind::Atom { text, .. } => json!(hex(text)),
        ValueKind::List(items) => Json::Array(items.iter().map(to_json).collect()),
    }
}

fn ours(cfg: &Config) -> Json {
    let mut m = serde_json::Map::new();
    for name in cfg.names() {
        if let Some(s) = cfg.get(name) {
            m.insert(name.to_owned(), to_json(&s.value));
        }
    }
    Json::Object(m)
}

/// Compares one input; returns a description of a disagreement.
fn compare(oracle: &Path, dir: &Path, n: usize, src: &str) -> Option<String> {
    let file = dir.join(format!("case{n}.cfg"));
    std::fs::write(&file, src).unwrap();
    let mine = parse(src);
    let names: Vec<String> = match &mine {
        Ok(cfg) => cfg.names().into_iter().map(str::to_owned).collect(),
        Err(_) => Vec::new(),
    };
    let out = Command::new(oracle)
        .arg(&file)
        .args(&names)
        .output()
        .unwrap();
    let theirs: Json = serde_json::from_slice(&out.stdout).unwrap();
    let ok_theirs = theirs["rc"] == json!(0);
    match (&mine, ok_theirs) {
        (Ok(cfg), true) => {
            let ours = ours(cfg);
            (ours != theirs["settings"]).then(|| {
                format!(
                    "values differ for {src:?}: ours {ours} libxlu {}",
                    theirs["settings"]
                )
            })
        }
        (Err(_), false) => None,
        (Ok(_), false) => Some(format!("we accept, libxlu rejects: {src:?}")),
        (Err(e), true) => Some(format!("we reject ({e}), libxlu accepts: {src:?}")),
    }
}

fn run_cases(cases: &[String]) {
    let Some(oracle) = oracle() else { return };
    let dir = tempdir();
    let failures: Vec<String> = cases
        .iter()
        .enumerate()
        .filter_map(|(n, src)| compare(oracle, &dir, n, src))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases disagree:\n{}",
        failures.len(),
        cases.len(),
        failures
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

fn tempdir() -> PathBuf {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let dir =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("xlu-diff-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn hand_picked_cases_agree_with_libxlu() {
    let cases: Vec<String> = [
        "",
        "\n",
        ";",
        "a=1",
        "a=1\n",
        "a=1;b=2",
        "a=1 b=2\n",
        "a = 'x'\n",
        "a=\"x\"\n",
        "a=1\n#c",
        "a=1\n#c\n",
        "a=1 # c\n",
        "a=1\n@",
        "a=1\n@ ",
        "a=1\n@\n",
        "a=1\r\n",
        "A=1\n",
        "a=name\n",
        "a=\n1\n",
        "a=[]\n",
        "a=[\n]\n",
        "a=[,]\n",
        "a=[1,]\n",
        "a=[1,,]\n",
        "a=[1\n,2\n,\n]\n",
        "a=[[1],[2,[3]]]\n",
        "a=[1 #c\n,2]\n",
        "a+=1\n",
        "a='x'\na+='y'\n",
        "a=[1]\na+=[2]\n",
        "a=[1]\na+='x'\n",
        "a='x'\na+=[1]\n",
        "a=1\na=2\n",
        "a='\\n\\t\\a\\b\\f\\r\\v\\\\\\'\\\"'\n",
        "a='\\012'\n",
        "a='\\0'\n",
        "a='\\0 12z'\n",
        "a='\\0+12'\n",
        "a='\\089'\n",
        "a='\\x41'\n",
        "a='\\q'\n",
        "a='x\n",
        "a=\"it's\"\n",
        "a='é ü'\n",
        "a=1.5\n",
        "a=(1)\n",
        "a=-1\n",
        "a=0x1F\n",
        "a=0x1f\n",
        "a=1e3\n",
        "a=12g\n",
        "a.b_c=1\n",
        "_a=1\n",
        "1=1\n",
        "a==1\n",
        "a=+1\n",
        "a=[1]]\n",
        "a=[[1]\n",
        "a='x' 'y'\n",
        "a=1;\n;b=2;",
        "a\t=\t1\t\n",
        "a=1\n\n\n",
        "usbctrl=['type=pv']\nusbdev=[]\n",
        "a='",
        "a=\"\\\"",
        "a='\\\n'",
        "a=[1,\n\n2,\n\n]\n",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    run_cases(&cases);
}

/// Every file of the corpus (`tests/configs`, good and bad): same syntax
/// verdict and values as libxlu (the spec errors of `bad/` are xl's, after
/// libxlu accepted the syntax).
#[test]
fn corpus_files_agree_with_libxlu() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/configs");
    let mut cases = Vec::new();
    for dir in [root.clone(), root.join("bad")] {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "cfg") {
                cases.push(std::fs::read_to_string(&p).unwrap());
            }
        }
    }
    assert!(cases.len() >= 20, "{}", cases.len());
    run_cases(&cases);
}

/// How many random cases to run (`XLU_DIFF_CASES` overrides, for long runs).
fn case_count(default: u64) -> u64 {
    std::env::var("XLU_DIFF_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A tiny deterministic generator (xorshift64*), so failures reproduce.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

const FRAGMENTS: &[&str] = &[
    "a", "b", "usbdev", "x.y_1", "A", "=", "+=", "=", "0", "010", "0x1f", "1e3", "'x'", "\"y\"",
    "'a,b'", "'\\n'", "'\\012'", "'\\0'", "'\\x4'", "'\\''", "\"\\\"\"", "[", "]", ",", ";", "\n",
    " ", "\t", "#c\n", "#", "@", "-", ".", "\r", "(", "'", "\"", "\\", "é",
];

const VALUES: &[&str] = &[
    "1", "0x10", "'s'", "\"t u\"", "'\\t'", "''", "'\\0 12'", "[]",
];

fn structured(rng: &mut Rng, depth: u32) -> String {
    if depth > 2 || !rng.next().is_multiple_of(3) {
        return rng.pick(VALUES).to_owned();
    }
    let n = rng.next() % 4;
    let mut s = String::from("[");
    for i in 0..n {
        if i > 0 {
            s.push_str(rng.pick(&[",", ",\n", " ,", "\n,"]));
        }
        s.push_str(rng.pick(&["", "\n", " ", "#k\n"]));
        s.push_str(&structured(rng, depth + 1));
    }
    s.push_str(rng.pick(&["", ",", "\n", ",\n"]));
    s.push(']');
    s
}

#[test]
fn random_token_soup_agrees_with_libxlu() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let cases: Vec<String> = (0..case_count(600))
        .map(|_| {
            let len = 1 + rng.next() % 12;
            (0..len).map(|_| rng.pick(FRAGMENTS)).collect()
        })
        .collect();
    run_cases(&cases);
}

#[test]
fn random_structured_configs_agree_with_libxlu() {
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let cases: Vec<String> = (0..case_count(400))
        .map(|_| {
            let mut s = String::new();
            for _ in 0..(1 + rng.next() % 5) {
                s.push_str(rng.pick(&["a", "b", "usbctrl", "c.d"]));
                s.push_str(rng.pick(&["=", " = ", "+=", " +="]));
                s.push_str(&structured(&mut rng, 0));
                s.push_str(rng.pick(&["\n", ";", " # x\n", "\n\n", ";\n"]));
            }
            // Sometimes damage one byte, to probe the error paths.
            if rng.next().is_multiple_of(4) && !s.is_empty() {
                let at = (rng.next() % s.len() as u64) as usize;
                if s.is_char_boundary(at) && s.is_char_boundary(at + 1) {
                    s.replace_range(at..at + 1, rng.pick(&["", "@", "'", "]", ",", "\n"]));
                }
            }
            s
        })
        .collect();
    run_cases(&cases);
}
