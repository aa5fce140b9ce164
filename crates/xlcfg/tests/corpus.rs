//! The corpus of real-world-style config files in `tests/configs/`:
//!
//! * every `*.cfg` parses, its USB part as JSON equals `*.json` (reviewed
//!   golden files), survives a JSON round trip, and its warnings equal
//!   `*.warn` (absent = none);
//! * every `bad/*.cfg` fails with the message in `bad/*.err`;
//! * (in `libxlu_diff.rs`) the real libxlu agrees with vusb on the syntax
//!   of every file (the spec errors of `bad/` are xl's, not libxlu's).
//!
//! `UPDATE_GOLDEN=1` rewrites the golden files (review the diff!).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use vusb_xlcfg::json::{from_json, to_json};
use vusb_xlcfg::parse_usb;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/configs")
}

fn cfg_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "cfg"))
        .collect();
    v.sort();
    v
}

fn check_golden(path: &Path, actual: &str, failures: &mut Vec<String>) {
    if std::env::var("UPDATE_GOLDEN").is_ok() {
        if actual.is_empty() {
            let _ = std::fs::remove_file(path);
        } else {
            std::fs::write(path, actual).unwrap();
        }
        return;
    }
    let expected = std::fs::read_to_string(path).unwrap_or_default();
    if expected != actual {
        failures.push(format!(
            "{}:\n--- expected\n{expected}\n--- actual\n{actual}",
            path.display()
        ));
    }
}

#[test]
fn good_configs_match_their_json() {
    let files = cfg_files(&dir());
    assert!(files.len() >= 10, "corpus too small: {}", files.len());
    let mut failures = Vec::new();
    for cfg in &files {
        let text = std::fs::read_to_string(cfg).unwrap();
        let (usb, warnings) = match parse_usb(&text) {
            Ok(v) => v,
            Err(e) => {
                failures.push(format!("{}: {}", cfg.display(), e.in_file("cfg")));
                continue;
            }
        };
        let json = to_json(&usb);
        let back = from_json(&json).unwrap();
        if to_json(&back) != json {
            failures.push(format!("{}: JSON round trip changed it", cfg.display()));
        }
        let pretty = serde_json::to_string_pretty(&json).unwrap() + "\n";
        check_golden(&cfg.with_extension("json"), &pretty, &mut failures);
        let warn: String = warnings.iter().map(|w| format!("{w}\n")).collect();
        check_golden(&cfg.with_extension("warn"), &warn, &mut failures);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn bad_configs_fail_with_their_message() {
    let files = cfg_files(&dir().join("bad"));
    assert!(files.len() >= 10, "bad corpus too small: {}", files.len());
    let mut failures = Vec::new();
    for cfg in &files {
        let text = std::fs::read_to_string(cfg).unwrap();
        let name = cfg.file_name().unwrap().to_string_lossy().into_owned();
        match parse_usb(&text) {
            Ok(_) => failures.push(format!("{name}: accepted")),
            Err(e) => {
                assert!(e.position().is_some(), "{name}: no position in {e:?}");
                let msg = e.in_file(&name) + "\n";
                check_golden(&cfg.with_extension("err"), &msg, &mut failures);
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
