//! The command line explains itself: `--help`, `help [CMD]`, `CMD -h`,
//! unknown commands with a suggestion, `--version`, non-UTF-8 arguments
//! (never a panic), warnings without module paths, progress on a terminal.
//! End to end with the built binary; commands that need a host run on the
//! simulated host (`vusb_sim`), the progress test under `script(1)` for a
//! terminal.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::process::Command;

use support::{bare, start, stderr, stdout, text};

/// Every visible command (a unit test in main.rs checks this list against
/// the CLI description).
const COMMANDS: &[&str] = &[
    "usbctrl-attach",
    "usbctrl-detach",
    "usbdev-attach",
    "usbdev-detach",
    "usb-list",
    "usb-assignable-list",
    "usb-recover",
    "usb-release",
    "config-show",
    "config-apply",
    "config-dump",
    "sim",
    "help",
    "completions",
    "manpage",
];

#[test]
fn top_help_lists_every_command_and_option() {
    for args in [&["--help"][..], &["-h"], &["help"]] {
        let o = bare(args).output().unwrap();
        assert!(o.status.success(), "{args:?}");
        let out = stdout(&o);
        for c in COMMANDS {
            assert!(out.contains(&format!("\n  {c} ")), "{c} missing in {out}");
        }
        for opt in [
            "--sysfs-root",
            "--state-dir",
            "--qmp-dir",
            "--qmp <PATH>",
            "--version",
            "usbdev-attach --force",
            "usb-list --json",
            "usb-assignable-list -a, --all",
        ] {
            assert!(out.contains(opt), "{opt} missing in {out}");
        }
    }
}

#[test]
fn every_command_has_its_own_help() {
    for c in COMMANDS {
        let by_help = bare(&["help", c]).output().unwrap();
        assert!(by_help.status.success(), "help {c}: {}", text(&by_help));
        let h = stdout(&by_help);
        assert!(h.contains(&format!("Usage: vusb {c}")), "{c}: {h}");
        for flag in ["-h", "--help"] {
            let o = bare(&[c, flag]).output().unwrap();
            assert!(o.status.success(), "{c} {flag}: {}", text(&o));
            assert_eq!(stdout(&o), h, "{c} {flag}");
        }
    }
    // vusb's selectors and extensions are in the xl commands' help.
    let h = stdout(&bare(&["usbdev-attach", "-h"]).output().unwrap());
    for s in [
        "busid=",
        "vendor=V product=P [serial=S]",
        "portpath=",
        "hostbus=B hostaddr=A",
        "--force",
        "type=tablet|mouse|keyboard",
        "controller=C [port=P]",
        // xl's description stays, for scripts that grep it.
        "Attach a USB device to a domain",
    ] {
        assert!(h.contains(s), "{s} missing in {h}");
    }
    let h = stdout(&bare(&["help", "usbdev-d"]).output().unwrap());
    assert!(h.contains("after an unplug"), "{h}");
    // config-show -h no longer reads a file called -h; `--` still can.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("-h"), "usbctrl = ['type=pv']\n").unwrap();
    let o = bare(&["config-show", "--", "-h"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(stdout(&o).contains("\"type\": \"pv\""), "{}", text(&o));
}

#[test]
fn unknown_commands_are_named_with_the_closest() {
    let o = bare(&["usb-lsit", "guest1"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        stderr(&o),
        "vusb: unknown command \"usb-lsit\"; did you mean `usb-list`?\nvusb: `vusb help` lists the commands\n"
    );
    let o = bare(&["frobnicate"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).starts_with("vusb: unknown command \"frobnicate\"\n"));
    let o = bare(&["help", "usbdev-atach"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("did you mean `usbdev-attach`?"),
        "{}",
        text(&o)
    );
    let o = bare(&["--sysfs-rot", "x", "usb-list"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("did you mean `--sysfs-root`?"),
        "{}",
        text(&o)
    );
    // xl's unambiguous prefixes still work; an ambiguous one is unknown.
    assert!(bare(&["help", "usb-l"]).output().unwrap().status.success());
    assert_eq!(bare(&["usbc"]).output().unwrap().status.code(), Some(2));
}

#[test]
fn version_names_commit_and_compatible_versions() {
    for flag in ["--version", "-V"] {
        let o = bare(&[flag]).output().unwrap();
        assert!(o.status.success());
        let out = stdout(&o);
        let first = out.lines().next().unwrap();
        assert!(
            first.starts_with(&format!("vusb {} (commit ", env!("CARGO_PKG_VERSION"))),
            "{out}"
        );
        let commit = first
            .rsplit("commit ")
            .next()
            .unwrap()
            .trim_end_matches(')');
        assert!(
            commit == "unknown"
                || (commit.len() >= 7 && commit.bytes().all(|b| b.is_ascii_hexdigit())),
            "{out}"
        );
        assert!(out.contains("Xen 4.17"), "{out}");
        assert!(out.contains("QEMU 7.2"), "{out}");
    }
}

#[test]
fn non_utf8_arguments_never_panic() {
    let sim = start();
    let bad = OsStr::from_bytes(b"a\xffb");
    let dir = tempfile::tempdir().unwrap();
    let bad_path = dir.path().join(OsStr::from_bytes(b"cfg\xff"));
    let mut runs: Vec<Vec<&OsStr>> = Vec::new();
    for c in COMMANDS {
        let c = OsStr::new(*c);
        runs.push(vec![c, bad]);
        runs.push(vec![c, OsStr::new("guest1"), bad]);
        runs.push(vec![c, bad, bad]);
        runs.push(vec![OsStr::new("--qmp"), bad, c, OsStr::new("vm"), bad]);
    }
    runs.push(vec![bad]);
    runs.push(vec![
        OsStr::new("--sysfs-root"),
        bad,
        OsStr::new("usb-assignable-list"),
    ]);
    runs.push(vec![OsStr::new("config-show"), bad_path.as_os_str()]);
    runs.push(vec![
        OsStr::new("config-apply"),
        OsStr::new("guest1"),
        bad_path.as_os_str(),
    ]);
    for args in &runs {
        let o = sim.cmd(&[]).args(args).output().unwrap();
        let t = text(&o);
        assert!(!t.contains("panicked"), "{args:?}: {t}");
        let code = o.status.code();
        assert!(matches!(code, Some(0..=2)), "{args:?}: {code:?} {t}");
        if code != Some(0) {
            assert!(!stderr(&o).is_empty(), "{args:?}: silent failure");
        }
    }
    // The typical case is a clear message with the bytes shown escaped.
    let o = sim
        .cmd(&[])
        .args([OsStr::new("usb-list"), bad])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "vusb: argument 1 (\"a\\xFFb\") is not valid UTF-8: domain names, selectors and numbers must be text\n"
    );
    let o = sim.cmd(&["config-show"]).arg(&bad_path).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("cfg\u{fffd}"), "{}", text(&o));
    // Nothing was attached by any of it.
    assert!(!sim.ok(&["usb-list", "guest1"]).contains("Port 1:"));
}

#[test]
fn warnings_are_vusb_warnings_without_module_paths() {
    let sim = start();
    // A device directory gone while its interface is still listed: the
    // listing skips it with a warning.
    let devs = sim.sysfs().join("bus/usb/devices");
    std::fs::remove_dir_all(devs.join("1-3")).unwrap();
    let o = sim.run(&["usb-assignable-list"]);
    assert!(o.status.success(), "{}", text(&o));
    let err = stderr(&o);
    assert!(
        err.contains("vusb: warning: interface 1-3:1.0 has no readable device 1-3; ignored"),
        "{err}"
    );
    assert!(!err.contains("vusb_host"), "{err}");
    let o = sim.run(&["-v", "usb-assignable-list"]);
    assert!(
        stderr(&o).contains("[WARN  vusb_host::discover] interface 1-3:1.0"),
        "{}",
        text(&o)
    );
}

/// A backend that never answers makes usbctrl-attach wait its whole
/// timeout: on a terminal the wait is announced, elsewhere nothing is.
#[test]
fn long_waits_are_announced_on_a_terminal() {
    use vusb_sim::host::SimConfig;
    use vusb_sim::xenbus::{DriverConfig, Failure};
    let sim = support::start_with(&SimConfig {
        drivers: DriverConfig {
            failure: Some(Failure::BackendNeverInitWait),
            ..DriverConfig::default()
        },
        ..SimConfig::default()
    });
    let exe = env!("CARGO_BIN_EXE_vusb");
    let o = Command::new("script")
        .args([
            "-qec",
            &format!("{exe} usbctrl-attach guest1 type=pv"),
            "/dev/null",
        ])
        .envs(sim.host.env())
        .env("VUSB_BACKEND_TIMEOUT_MS", "2500")
        .output()
        .expect("script(1) from util-linux");
    let t = text(&o);
    assert!(
        t.contains("vusb: waiting for backend /local/domain/0/backend/vusb/1/0 to reach state 2 (at most 3 s)"),
        "{t}"
    );
    // Not a terminal: no progress line, only the error.
    let o = sim
        .cmd(&["usbctrl-attach", "guest1", "type=pv"])
        .env("VUSB_BACKEND_TIMEOUT_MS", "1500")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(!stderr(&o).contains("waiting for"), "{}", text(&o));
}
