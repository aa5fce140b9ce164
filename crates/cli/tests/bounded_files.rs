//! End-to-end tests of the built `vusb` binary given files that are not
//! small regular files — a FIFO, `/dev/zero`, a directory, a file over
//! the 4 MiB limit, and a symbolic link to each — as an xl config file
//! (`config-show`, `config-apply`), as vusb's saved configuration
//! (`config-apply --saved`, `config-dump`) and as libxl's stored JSON
//! (`usbdev-attach`'s bookkeeping). Each must end at once with an error
//! naming the file and what was wrong, and change nothing.
//!
//! Runs on the simulated host (`vusb_sim::host`: vusb's in-memory
//! xenstored on a Unix socket, fixture sysfs, simulated usbback/usbfront).
//! Regression tests for issue 10: a FIFO as config file blocked forever,
//! `/dev/zero` was read until the address space ended.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::Sim;
use vusb_sim::layout::uuid_of;

/// Runs the binary with a hard deadline: a command that blocks (as it did
/// on a FIFO) is killed and the test fails instead of hanging.
fn run(mut cmd: Command) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            let out = child.wait_with_output().unwrap();
            panic!(
                "vusb still running after 20 s (blocked?): {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn mkfifo(path: &Path) {
    let st = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(st.success(), "mkfifo {}", path.display());
}

/// The bad files, each with the reason vusb must give, and a symbolic
/// link to each. `dir` must exist.
fn bad_files(dir: &Path) -> Vec<(PathBuf, &'static str)> {
    let fifo = dir.join("fifo.cfg");
    mkfifo(&fifo);
    let big = dir.join("big.cfg");
    // Over the limit: a comment line of 4 MiB + 1 (a valid config
    // otherwise, so only the size can refuse it).
    let mut text = vec![b'#'; (4 << 20) + 1];
    text.push(b'\n');
    std::fs::write(&big, text).unwrap();
    let subdir = dir.join("dir.cfg");
    std::fs::create_dir(&subdir).unwrap();
    let mut v = vec![
        (fifo, "not a regular file (it is a FIFO)"),
        (
            PathBuf::from("/dev/zero"),
            "not a regular file (it is a character device)",
        ),
        (subdir, "not a regular file (it is a directory)"),
        (big, "too large: over 4194304 bytes"),
    ];
    for (i, (target, why)) in v.clone().into_iter().enumerate() {
        let link = dir.join(format!("link{i}.cfg"));
        std::os::unix::fs::symlink(&target, &link).unwrap();
        v.push((link, why));
    }
    v
}

#[test]
fn config_show_refuses_non_regular_and_oversized_files() {
    let d = tempfile::tempdir().unwrap();
    for (path, why) in bad_files(d.path()) {
        let p = path.to_str().unwrap();
        let t0 = Instant::now();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_vusb"));
        cmd.args(["config-show", p]);
        let o = run(cmd);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{p}: {err}");
        assert!(o.stdout.is_empty(), "{p}");
        assert!(err.contains(&format!("reading {p}")), "{p}: {err}");
        assert!(err.contains(why), "{p}: {err}");
        assert!(t0.elapsed() < Duration::from_secs(5), "{p}: slow");
    }
}

#[test]
fn config_show_cuts_stdin_at_the_limit() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_vusb"))
        .args(["config-show", "-"])
        .stdin(std::fs::File::open("/dev/zero").unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "reading /dev/zero as stdin");
        std::thread::sleep(Duration::from_millis(10));
    }
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("reading stdin"), "{err}");
    assert!(err.contains("too large: over 4194304 bytes"), "{err}");
}

fn host() -> Sim {
    support::pv_guests(&[1, 3])
}

impl Sim {
    /// `vusb` on this host, killed (and the test failed) if it blocks.
    fn vusb(&self, args: &[&str]) -> Output {
        let mut cmd = self.cmd(args);
        cmd.current_dir(self.root());
        run(cmd)
    }
}

#[test]
fn config_apply_refuses_bad_files_and_changes_nothing() {
    let h = host();
    let before = h.dump();
    let files = h.host.root().join("files");
    std::fs::create_dir(&files).unwrap();
    for (path, why) in bad_files(&files) {
        let p = path.to_str().unwrap();
        let o = h.vusb(&["config-apply", "1", p]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{p}: {err}");
        assert!(err.contains(p), "{p}: {err}");
        assert!(err.contains(why), "{p}: {err}");
    }
    assert_eq!(h.dump(), before, "a refused config-apply changed xenstore");
}

/// vusb's saved configuration (`<state_dir>/domains/<uuid>.json`) replaced
/// by a FIFO, `/dev/zero` or a directory: `config-dump` and
/// `config-apply --saved` fail naming it, at once, changing nothing.
#[test]
fn saved_config_that_is_not_a_regular_file_is_refused() {
    let h = host();
    let saved = h
        .host
        .paths()
        .state_dir
        .join("domains")
        .join(format!("{}.json", uuid_of(1)));
    std::fs::create_dir_all(saved.parent().unwrap()).unwrap();
    let files = h.host.root().join("files");
    std::fs::create_dir(&files).unwrap();
    let before = h.dump();
    for (target, why) in bad_files(&files) {
        let _ = std::fs::remove_file(&saved);
        std::os::unix::fs::symlink(&target, &saved).unwrap();
        for args in [&["config-dump", "1"][..], &["config-apply", "1", "--saved"]] {
            let o = h.vusb(args);
            let err = String::from_utf8_lossy(&o.stderr);
            assert_eq!(o.status.code(), Some(1), "{args:?} {target:?}: {err}");
            assert!(
                err.contains(saved.to_str().unwrap()),
                "{args:?} {target:?}: {err}"
            );
            assert!(err.contains(why), "{args:?} {target:?}: {err}");
        }
    }
    assert_eq!(h.dump(), before);
}

/// libxl's stored JSON of the guest replaced by a FIFO: an attach no
/// longer blocks forever in its bookkeeping; the file is named in what
/// vusb reports.
#[test]
fn libxl_json_fifo_does_not_block_an_attach() {
    let h = host();
    let dir = h.host.paths().xen_lib_dir;
    let json = dir.join(format!("userdata-d.1.{}.libxl-json", uuid_of(1)));
    assert!(json.is_file(), "{json:?}");
    std::fs::remove_file(&json).unwrap();
    mkfifo(&json);
    let t0 = Instant::now();
    let o = h.vusb(&["usbdev-attach", "1", "hostbus=1", "hostaddr=2"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(t0.elapsed() < Duration::from_secs(15), "{err}");
    assert!(err.contains(json.to_str().unwrap()), "{err}");
    assert!(err.contains("not a regular file (it is a FIFO)"), "{err}");
}

/// The assignment rules (`STATE_DIR/rules.json`, read by `usb-rule-list`
/// and the daemon) and a config file given to `usb-rule-add --config`:
/// the same bounds.
#[test]
fn rules_file_and_rule_config_are_bounded() {
    let h = host();
    let rules = h.host.paths().state_dir.join("rules.json");
    std::fs::create_dir_all(rules.parent().unwrap()).unwrap();
    let files = h.host.root().join("files");
    std::fs::create_dir(&files).unwrap();
    for (target, why) in bad_files(&files) {
        let p = target.to_str().unwrap();
        let o = h.vusb(&["usb-rule-add", "--config", p]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "--config {p}: {err}");
        assert!(err.contains(&format!("reading {p}")), "{p}: {err}");
        assert!(err.contains(why), "{p}: {err}");

        let _ = std::fs::remove_file(&rules);
        std::os::unix::fs::symlink(&target, &rules).unwrap();
        let o = h.vusb(&["usb-rule-list"]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "rules -> {p}: {err}");
        assert!(err.contains(rules.to_str().unwrap()), "{p}: {err}");
        assert!(err.contains(why), "{p}: {err}");
    }
}
