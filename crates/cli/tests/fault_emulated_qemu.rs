//! kill -9 at every step boundary of an emulated tablet's attach and
//! detach on an HVM guest's devicemodel controller (issue 10, item 4 of
//! its leftovers): for each boundary syscall of a full run (each xenstore
//! request, each QMP write, each file write), a fresh host and a fresh
//! QEMU, the operation killed on entry of that syscall by
//! `strace -e inject=...:signal=KILL`, then `vusb usb-recover`, then:
//! the host invariants (`vusb_testsupport::invariants`), no emulated
//! record left in a journal step, and QEMU's own device list (asked over
//! its QMP socket, not xenstore) showing exactly the emulated devices
//! vusb's records show, port for port. If the operation's effect is then
//! missing, running it again must succeed, and all of that must hold
//! again.
//!
//! Runs on: the real C xenstored (testsupport harness), the FUSE sysfs,
//! a real qemu-system-x86_64 standing in for guest 3's device model
//! (`qmp-libxl-3` is a link to its QMP socket), the built `vusb` binary
//! under the real strace. Fails under `CI=true` when one is missing,
//! skips otherwise. `VUSB_SOAK=1` tries every boundary (bounded: every
//! 2nd).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod fault_common;

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;

use fault_common::{BOUNDARIES, Bed, syscalls, three_guests};
use vusb_testsupport::qemu::{QemuVm, require_or_skip};
use vusb_xenstore::{TxId, XenstoreExt};

/// A bed whose HVM guest 3 has a real QEMU as its device model.
struct QemuBed {
    bed: Bed,
    vm: QemuVm,
}

fn start(test: &str, setup: &[&[&str]]) -> Option<QemuBed> {
    let bed = Bed::start(&three_guests())?;
    let vm = require_or_skip(test)?;
    let sock = bed.host.paths().qmp_dir.join("qmp-libxl-3");
    // The fake device model's socket is put aside (and back when the bed
    // stops: the fake is stopped by connecting to it).
    std::fs::rename(&sock, sock.with_extension("fake")).unwrap();
    std::os::unix::fs::symlink(vm.qmp_path(), &sock).unwrap();
    for cmd in setup {
        bed.ok(cmd);
    }
    Some(QemuBed { bed, vm })
}

impl Drop for QemuBed {
    fn drop(&mut self) {
        let sock = self.bed.host.paths().qmp_dir.join("qmp-libxl-3");
        let _ = std::fs::remove_file(&sock);
        let _ = std::fs::rename(sock.with_extension("fake"), &sock);
    }
}

/// vusb's emulated records of guest 3's controller 0: port → value.
fn records(b: &QemuBed) -> BTreeMap<u32, String> {
    let xs = b.bed.host.client().unwrap();
    let dir = "/vusb/emulated/3/0";
    xs.directory_opt(TxId::NONE, dir)
        .unwrap()
        .into_iter()
        .filter_map(|p| {
            let v = xs.read_opt(TxId::NONE, &format!("{dir}/{p}")).unwrap()?;
            Some((p.parse().unwrap(), v))
        })
        .collect()
}

/// QEMU's own view: port → emulated kind, from `vusb --qmp <sock>
/// usb-list` (QEMU's QOM tree, no xenstore).
fn qemu_devices(b: &QemuBed) -> Result<BTreeMap<u32, String>, String> {
    let o = std::process::Command::new(fault_common::BIN)
        .arg("--qmp")
        .arg(b.vm.qmp_path())
        .args(["usb-list", "vm"])
        .output()
        .unwrap();
    if !o.status.success() {
        return Err(String::from_utf8_lossy(&o.stderr).into_owned());
    }
    Ok(String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| {
            let (port, what) = l.trim().strip_prefix("Port ")?.split_once(": ")?;
            let kind = what.strip_prefix("Emulated ")?;
            Some((port.parse().ok()?, kind.to_owned()))
        })
        .collect())
}

/// Everything that must hold once recovery ran.
fn violations(b: &QemuBed) -> Vec<String> {
    let mut out: Vec<String> = b.bed.check().iter().map(ToString::to_string).collect();
    let recs = records(b);
    for (port, v) in &recs {
        if v.contains("step=") {
            out.push(format!("emulated record of port {port} left as {v:?}"));
        }
    }
    match qemu_devices(b) {
        Err(e) => out.push(format!("QEMU's device list: {e}")),
        Ok(q) if q != recs => out.push(format!("QEMU has {q:?}, the records say {recs:?}")),
        Ok(_) => {}
    }
    out
}

struct Scenario {
    name: &'static str,
    setup: &'static [&'static [&'static str]],
    op: &'static [&'static str],
    /// Whether the tablet is on port 2 once `op` completed.
    attached_after: bool,
}

const ATTACH: Scenario = Scenario {
    name: "emulated-attach",
    setup: &[&["usbctrl-attach", "3"]],
    op: &[
        "usbdev-attach",
        "3",
        "type=tablet",
        "controller=0",
        "port=2",
    ],
    attached_after: true,
};

const DETACH: Scenario = Scenario {
    name: "emulated-detach",
    setup: &[
        &["usbctrl-attach", "3"],
        &[
            "usbdev-attach",
            "3",
            "type=tablet",
            "controller=0",
            "port=2",
        ],
    ],
    op: &["usbdev-detach", "3", "0", "2"],
    attached_after: false,
};

fn done(b: &QemuBed, s: &Scenario) -> bool {
    records(b).contains_key(&2) == s.attached_after
}

fn sweep(s: &Scenario) {
    if !fault_common::strace_available() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    // A full run: its boundaries, and that it leaves nothing wrong.
    let Some(b) = start(s.name, s.setup) else {
        return;
    };
    let log = tmp.path().join("full.strace");
    let out = b.bed.traced(s.op, &log, BOUNDARIES, None, None);
    assert!(
        out.status.success(),
        "{}: full run: {}",
        s.name,
        String::from_utf8_lossy(&out.stderr)
    );
    let v = violations(&b);
    assert!(v.is_empty(), "{}: a full run leaves {v:?}", s.name);
    assert!(done(&b, s), "{}: a full run does not do it", s.name);
    drop(b);
    let points = syscalls(&log);
    assert!(!points.is_empty(), "{}: no boundary traced", s.name);
    let stride = if std::env::var("VUSB_SOAK").as_deref() == Ok("1") {
        1
    } else {
        2
    };
    let mut bad = Vec::new();
    let mut tried = 0;
    let mut killed = 0;
    for (i, (sc, n, line)) in points.iter().enumerate() {
        if i % stride != 0 {
            continue;
        }
        tried += 1;
        let b = start(s.name, s.setup).unwrap();
        let log = tmp.path().join(format!("{i}.strace"));
        let inject = format!("{sc}:signal=KILL:when={n}");
        let out = b.bed.traced(s.op, &log, BOUNDARIES, Some(&inject), None);
        let was_killed = out.status.signal() == Some(9);
        killed += usize::from(was_killed);
        let rec = b.bed.vusb(&["usb-recover"]);
        let mut problems = violations(&b);
        if !done(&b, s) {
            let o = b.bed.vusb(s.op);
            if !o.status.success() {
                problems.push(format!(
                    "retrying failed: {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                ));
            }
            problems.extend(
                violations(&b)
                    .into_iter()
                    .map(|v| format!("after the retry: {v}")),
            );
        }
        if !problems.is_empty() {
            bad.push(format!(
                "kill {} at {sc} #{n} ({}){}; usb-recover: {}{}\n  {}\n",
                i + 1,
                line.trim(),
                if was_killed { "" } else { " [not killed]" },
                String::from_utf8_lossy(&rec.stdout).trim(),
                String::from_utf8_lossy(&rec.stderr).trim(),
                problems.join("\n  ")
            ));
        }
    }
    eprintln!(
        "{}: bad after {} of {tried} kill points ({killed} killed; {} boundaries)",
        s.name,
        bad.len(),
        points.len()
    );
    assert!(bad.is_empty(), "{}:\n{}", s.name, bad.join(""));
}

#[test]
fn kill_emulated_attach_on_real_qemu() {
    sweep(&ATTACH);
}

#[test]
fn kill_emulated_detach_on_real_qemu() {
    sweep(&DETACH);
}
