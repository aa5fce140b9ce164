//! End-to-end tests of `vusb config-show` with the built binary over the
//! config corpus of vusb-xlcfg (`crates/xlcfg/tests/configs`): the JSON
//! printed equals the reviewed golden, warnings go to stderr with the file
//! name, bad files exit 1 with `FILE:LINE:COL: message`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../xlcfg/tests/configs")
}

fn vusb(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vusb"))
        .args(args)
        .output()
        .unwrap()
}

fn cfgs(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "cfg"))
        .collect();
    v.sort();
    v
}

#[test]
fn shows_every_good_config_as_its_golden_json() {
    let files = cfgs(&corpus());
    assert!(files.len() >= 10);
    for cfg in files {
        let path = cfg.to_str().unwrap();
        let out = vusb(&["config-show", path]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{path}: {stderr}");
        let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let golden: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(cfg.with_extension("json")).unwrap())
                .unwrap();
        assert_eq!(shown, golden, "{path}");
        // libxl's layout: 4-space indent, one trailing newline.
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.starts_with("{\n    \"c_info\""), "{path}: {text}");
        assert!(text.ends_with("}\n"));
        // Round trip: what was shown loads back to the same JSON.
        let back = vusb_xlcfg::json::from_json(&shown).unwrap();
        assert_eq!(vusb_xlcfg::json::to_json(&back), shown, "{path}");
        // Warnings: xl's, prefixed with the file name.
        let expected: String = std::fs::read_to_string(cfg.with_extension("warn"))
            .unwrap_or_default()
            .lines()
            .map(|l| format!("{path}:{l}\n"))
            .collect();
        assert_eq!(stderr, expected, "{path}");
    }
}

#[test]
fn bad_configs_exit_1_with_file_line_col() {
    let dir = corpus().join("bad");
    let files = cfgs(&dir);
    assert!(files.len() >= 10);
    for cfg in files {
        let name = cfg.file_name().unwrap().to_str().unwrap().to_owned();
        let out = Command::new(env!("CARGO_BIN_EXE_vusb"))
            .args(["config-show", &name])
            .current_dir(&dir)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{name}");
        assert!(out.stdout.is_empty(), "{name}: nothing on stdout");
        let expected = std::fs::read_to_string(cfg.with_extension("err")).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            format!("vusb config-show: {expected}"),
            "{name}"
        );
    }
}

#[test]
fn reads_stdin_and_reports_usage_and_io_errors() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_vusb"))
        .args(["config-show", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"usbdev=['hostbus=0x3,hostaddr=010']\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["usbdevs"][0]["type.hostdev"],
        serde_json::json!({"hostbus": 3, "hostaddr": 8})
    );

    let out = vusb(&["config-show"]);
    assert_eq!(out.status.code(), Some(2));
    let out = vusb(&["config-show", "a", "b"]);
    assert_eq!(out.status.code(), Some(2));

    let out = vusb(&["config-show", "/nonexistent/guest.cfg"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("vusb config-show: reading /nonexistent/guest.cfg: "),
        "{err}"
    );
}

#[test]
fn latin1_comment_is_a_warning_not_an_error() {
    let dir = std::env::temp_dir().join(format!("vusb-cfgshow-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("latin1.cfg");
    std::fs::write(&file, b"# G\xe9rard's guest\nusbctrl=['type=pv']\n").unwrap();
    let out = vusb(&["config-show", file.to_str().unwrap()]);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(":1: warning: not valid UTF-8"), "{err}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["usbctrls"][0]["type"], "pv");
    std::fs::remove_dir_all(&dir).unwrap();
}
