//! `vusb -N` (dry run) of every changing command on Xen, end to end with
//! the built `vusb` on a fake Xen host (`vusb_testsupport::fakehost`): the
//! real C xenstored (traced with `-T`), the simulated usbback/usbfront and
//! qusb backend, the fixture sysfs whose binds and unbinds the shim
//! performs like the kernel, the fake device model of the HVM guest (a
//! QMP server logging every command it gets).
//!
//! For each step, on pv (domain 1), qusb (domain 2) and devicemodel
//! (domain 3) controllers:
//! - `vusb -N <step>` exits 0, prints the plan's key effects and
//!   `vusb: dry run: nothing was changed`, and changes nothing: the whole
//!   xenstore tree (with values and permissions, `/vusb` included), every
//!   file, symlink and directory of the host (sysfs bindings, libxl JSON,
//!   vusb's state dir, lock files) and the device model (no `device_add`
//!   or `device_del` reached it) are as before;
//! - then the step runs for real, and the xenstore changes its own
//!   connection sent (read from xenstored's trace) are the plan's, in the
//!   same order with the same values and permissions (a real run's
//!   `mkdir` of a node that exists or `rm` of one that does not, and the
//!   requests of transactions it aborted, change nothing and are not in a
//!   plan); the binds/unbinds the shim performed are the plan's, in order;
//!   the device model got the planned `device_add`/`device_del`, with the
//!   same arguments, in order.
//!   No value differs: the only one a real run learns (the pid of a qusb
//!   backend QEMU it starts, `<pid>` in a plan) does not occur here.
//!
//! The same for `config-apply`, `usb-recover` (a device left on usbback
//! with its driver memory) and `usb-release`. The qusb backend QEMU a PV
//! guest without a device model needs is planned (command line, records,
//! wait), not started. Rules (`usb-rule-add`/`-remove`) are planned file
//! writes. Read-only commands print what they print without `-N`.
//!
//! Bad input under `-N` gives the same stdout, error and exit status as
//! without it, then `vusb: dry run: nothing was changed` on stderr.
//!
//! Needs the real xenstored (harness): fails under `CI=true` when it cannot
//! start, skips with a reason otherwise.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

use vusb_sim::layout::{DomainKind, GuestSpec};
use vusb_testsupport::fakehost::{FakeHost, FakeHostConfig, require_or_skip};
use vusb_testsupport::strace::{FILE_CHANGING_CALLS, file_changes};
use vusb_testsupport::xlpeer;
use vusb_xenstore::{TxId, Xenstore, XenstoreExt};

const BIN: &str = env!("CARGO_BIN_EXE_vusb");
const NOTHING_CHANGED: &str = "vusb: dry run: nothing was changed";

fn host() -> Option<FakeHost> {
    let config = FakeHostConfig {
        domains: vec![
            GuestSpec::new(1, DomainKind::Pv),
            GuestSpec::new(2, DomainKind::PvQemu),
            GuestSpec::new(3, DomainKind::Hvm),
        ],
        trace: true,
        ..FakeHostConfig::default()
    };
    require_or_skip("dry_run (real xenstored)", FakeHost::start(&config))
}

fn vusb(host: &FakeHost, args: &[&str]) -> xlpeer::Outcome {
    let mut cmd = host.vusb_command(Path::new(BIN), args).unwrap();
    cmd.env("VUSB_BACKEND_TIMEOUT_MS", "3000");
    xlpeer::run(host, cmd).unwrap()
}

/// Every node of the store: path → (value, permissions).
fn tree(host: &FakeHost) -> BTreeMap<String, (Vec<u8>, String)> {
    let xs = host.client().unwrap();
    let mut out = BTreeMap::new();
    let mut todo = vec!["/".to_owned()];
    while let Some(p) = todo.pop() {
        let Ok(value) = xs.read(TxId::NONE, &p) else {
            continue;
        };
        let perms: Vec<String> = xs
            .get_perms(TxId::NONE, &p)
            .unwrap_or_default()
            .iter()
            .map(ToString::to_string)
            .collect();
        for c in xs.directory_opt(TxId::NONE, &p).unwrap() {
            todo.push(if p == "/" {
                format!("/{c}")
            } else {
                format!("{p}/{c}")
            });
        }
        out.insert(p, (value, perms.join(" ")));
    }
    out
}

/// Every directory, file (with content) and symlink (with target) under
/// the host's root, but xenstored's own files and the logs the fake
/// parties append to (the fake device model logs queries too).
fn files(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut todo = vec![root.to_owned()];
    while let Some(d) = todo.pop() {
        for e in fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            if rel == "xs" || rel.ends_with(".log") {
                continue;
            }
            let t = e.file_type().unwrap();
            let what = if t.is_symlink() {
                format!("-> {}", fs::read_link(&p).unwrap().display())
            } else if t.is_dir() {
                todo.push(p.clone());
                "dir".to_owned()
            } else if t.is_file() {
                String::from_utf8_lossy(&fs::read(&p).unwrap_or_default()).into_owned()
            } else {
                "special".to_owned()
            };
            out.insert(rel, what);
        }
    }
    out
}

/// The state-changing commands the fake device models received.
fn qmp_changes(host: &FakeHost) -> Vec<String> {
    host.qmp_log()
        .lines()
        .filter(|l| l.contains("device_add") || l.contains("device_del"))
        .map(str::to_owned)
        .collect()
}

#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    tree: BTreeMap<String, (Vec<u8>, String)>,
    files: BTreeMap<String, String>,
    qmp: Vec<String>,
}

fn snapshot(host: &FakeHost) -> Snapshot {
    host.settle();
    Snapshot {
        tree: tree(host),
        files: files(host.root()),
        qmp: qmp_changes(host),
    }
}

/// One xenstore change: request, path, and the value (`WRITE`) or the
/// permissions (`SET_PERMS`), as text.
type Change = (String, String, String);

fn unquote(v: &str) -> String {
    let v = v
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(v);
    v.replace("\\\"", "\"").replace("\\\\", "\\")
}

/// The xenstore changes of a plan, in order (transaction lines dropped:
/// only committed transactions are in a plan).
fn plan_changes(plan: &str) -> Vec<Change> {
    let mut out = Vec::new();
    for l in plan.lines() {
        let Some(rest) = l.strip_prefix("xenstore ") else {
            continue;
        };
        let (op, rest) = rest.split_once(' ').unwrap_or((rest, ""));
        let change = match op {
            "write" => {
                let (path, value) = rest.split_once(" = ").unwrap();
                ("WRITE", path.to_owned(), unquote(value))
            }
            "mkdir" => ("MKDIR", rest.to_owned(), String::new()),
            "rm" => ("RM", rest.to_owned(), String::new()),
            "set_perms" => {
                let (path, perms) = rest.split_once(' ').unwrap();
                ("SET_PERMS", path.to_owned(), perms.to_owned())
            }
            _ => continue, // transaction start/commit
        };
        out.push((change.0.to_owned(), change.1, change.2));
    }
    out
}

/// The changes the connections created in this trace segment (the
/// command's own) made, in order: those of aborted transactions dropped,
/// and a `MKDIR` of a node that existed or an `RM` of one that did not
/// (no change) dropped too, replaying from the store as it was (`before`).
fn trace_changes(segment: &str, before: &BTreeSet<String>) -> Vec<Change> {
    let mut mine = BTreeSet::new();
    let mut exists = before.clone();
    let mut out = Vec::new();
    let mut in_tx: Option<Vec<Change>> = None;
    for line in segment.lines() {
        if let Some(rest) = line.strip_prefix("CREATE connection ") {
            if let Some(id) = rest.split_whitespace().next() {
                mine.insert(id.to_owned());
            }
            continue;
        }
        let Some(rest) = line.strip_prefix("IN ") else {
            continue;
        };
        let mut w = rest.splitn(5, ' ');
        let conn = w.next().unwrap_or_default();
        if !mine.contains(conn) {
            continue;
        }
        let (_, _) = (w.next(), w.next()); // date, time
        let op = w.next().unwrap_or_default();
        let payload = w.next().unwrap_or_default();
        let payload = payload
            .strip_prefix('(')
            .and_then(|p| p.strip_suffix(')'))
            .unwrap_or(payload);
        let (path, arg) = payload.split_once(' ').unwrap_or((payload, ""));
        let change: Change = match op {
            "TRANSACTION_START" => {
                in_tx = Some(Vec::new());
                continue;
            }
            "TRANSACTION_END" => {
                let committed = payload.trim() == "T";
                let changes = in_tx.take().unwrap_or_default();
                if committed {
                    out.extend(changes);
                }
                continue;
            }
            "WRITE" => ("WRITE".into(), path.into(), arg.into()),
            "SET_PERMS" => ("SET_PERMS".into(), path.into(), arg.trim_end().into()),
            "MKDIR" | "RM" => (op.into(), path.into(), String::new()),
            _ => continue,
        };
        let below = format!("{}/", change.1);
        let changed = match change.0.as_str() {
            "MKDIR" | "WRITE" => {
                let new = !exists.contains(&change.1);
                let mut p = change.1.as_str();
                loop {
                    exists.insert(p.to_owned());
                    match p.rsplit_once('/') {
                        Some((parent, _)) if !parent.is_empty() => p = parent,
                        _ => break,
                    }
                }
                change.0 == "WRITE" || new
            }
            "RM" => {
                let had = exists.contains(&change.1);
                exists.retain(|p| p != &change.1 && !p.starts_with(&below));
                had
            }
            _ => true,
        };
        if changed {
            match &mut in_tx {
                Some(tx) => tx.push(change),
                None => out.push(change),
            }
        }
    }
    out
}

fn trace_len(host: &FakeHost) -> u64 {
    fs::metadata(host.trace_path()).map(|m| m.len()).unwrap()
}

fn trace_since(host: &FakeHost, off: u64) -> String {
    let all = fs::read(host.trace_path()).unwrap();
    String::from_utf8_lossy(&all[off as usize..]).into_owned()
}

/// The sysfs writes the shim performed since `off` bytes of its log.
fn sysfs_writes_since(host: &FakeHost, off: usize) -> Vec<String> {
    host.sysfs_log()[off..].lines().map(str::to_owned).collect()
}

/// `vusb -N args` under strace: its outcome, and the file-changing calls
/// it made (none expected).
fn dry_run(host: &FakeHost, args: &[&str]) -> (xlpeer::Outcome, Vec<String>) {
    let log = host.root().join("dry.strace");
    let mut st = vec![
        "-f",
        "-qq",
        "-e",
        FILE_CHANGING_CALLS,
        "-o",
        log.to_str().unwrap(),
        BIN,
        "-N",
    ];
    st.extend_from_slice(args);
    let mut cmd = host.vusb_command(Path::new("strace"), &st).unwrap();
    cmd.env("VUSB_BACKEND_TIMEOUT_MS", "3000");
    let out = xlpeer::run(host, cmd).unwrap();
    let text = fs::read_to_string(&log).unwrap_or_default();
    fs::remove_file(&log).unwrap();
    (out, file_changes(&text))
}

/// Dry-run `args`: exit 0, `expect` in the plan, nothing changed. Then run
/// it for real and compare what it changed with the plan. Returns the plan.
fn step(host: &FakeHost, args: &[&str], expect: &[&str]) -> String {
    let before = snapshot(host);
    let (dry, calls) = dry_run(host, args);
    assert_eq!(dry.rc, 0, "-N {args:?}: {}", dry.stderr);
    assert!(
        calls.is_empty(),
        "-N {args:?} changed files, even if only for a while: {calls:#?}"
    );
    let after = snapshot(host);
    assert_eq!(
        before.tree, after.tree,
        "-N {args:?} changed xenstore; plan:\n{}",
        dry.stdout
    );
    assert_eq!(before.files, after.files, "-N {args:?} changed files");
    assert_eq!(
        before.qmp, after.qmp,
        "-N {args:?} changed the device model"
    );
    let plan = dry.stdout.clone();
    assert!(
        plan.trim_end().ends_with(NOTHING_CHANGED),
        "-N {args:?}: {plan}"
    );
    for e in expect {
        assert!(plan.contains(e), "-N {args:?}: plan lacks {e:?}:\n{plan}");
    }

    // The same step for real: what it changed is what the plan said.
    let off = trace_len(host);
    let sys_off = host.sysfs_log().len();
    let real = vusb(host, args);
    assert_eq!(real.rc, 0, "{args:?}: {}", real.stderr);
    let existed: BTreeSet<String> = before.tree.keys().cloned().collect();
    let done = trace_changes(&trace_since(host, off), &existed);
    assert_eq!(
        done,
        plan_changes(&plan),
        "{args:?}: the real run's xenstore changes (left) are not the plan's (right):\n{plan}"
    );
    // The device model got exactly the planned device_add/device_del.
    let qmp_done: Vec<serde_json::Value> = qmp_changes(host)[before.qmp.len()..]
        .iter()
        .map(|l| serde_json::from_str(l.split_once(' ').unwrap().1).unwrap())
        .collect();
    let qmp_planned: Vec<serde_json::Value> = plan
        .lines()
        .filter_map(|l| l.strip_prefix("qmp "))
        .filter(|l| l.starts_with("device_"))
        .map(|l| {
            let (cmd, args) = l.split_once(' ').unwrap();
            let mut args: serde_json::Value = serde_json::from_str(args).unwrap();
            // As the fake device model logs them: scalars as strings.
            for v in args.as_object_mut().unwrap().values_mut() {
                if let serde_json::Value::Number(n) = v {
                    *v = serde_json::Value::String(n.to_string());
                }
            }
            serde_json::json!({"execute": cmd, "arguments": args})
        })
        .collect();
    assert_eq!(
        qmp_done, qmp_planned,
        "{args:?}: QMP commands QEMU got (left) vs the plan's (right):\n{plan}"
    );
    // Each file the plan writes has, after the real run, the size the plan
    // gave its last write (the plan reads back what it planned to write).
    let mut sizes = BTreeMap::new();
    for l in plan.lines() {
        if let Some(rest) = l.strip_prefix("file write ") {
            let (path, n) = rest.rsplit_once(" (").unwrap();
            let n: u64 = n.trim_end_matches(" bytes)").parse().unwrap();
            sizes.insert(path.to_owned(), Some(n));
        } else if let Some(path) = l.strip_prefix("file remove ") {
            sizes.insert(path.to_owned(), None);
        }
    }
    for (path, n) in &sizes {
        let real = fs::metadata(path).ok().map(|m| m.len());
        assert_eq!(
            &real, n,
            "{args:?}: {path} after the real run vs the plan:\n{plan}"
        );
    }
    // The binds/unbinds the shim performed are the plan's, in order.
    let sys_done = sysfs_writes_since(host, sys_off);
    let sys_planned: Vec<String> = plan
        .lines()
        .filter(|l| l.starts_with("sysfs write "))
        .map(|l| {
            let (_, value) = l.split_once(" = \"").unwrap();
            let (intf, note) = value.split_once("\" (").unwrap();
            let note = note.trim_end_matches(')');
            match note.split_once(' ') {
                Some(("unbind", drv)) => {
                    format!("unbind {} {intf}", drv.trim_start_matches("from "))
                }
                Some(("bind", drv)) => format!("bind {} {intf}", drv.trim_start_matches("to ")),
                _ => panic!("unknown sysfs note {note:?}"),
            }
        })
        .collect();
    assert_eq!(
        sys_done, sys_planned,
        "{args:?}: the shim's binds/unbinds (left) are not the plan's (right):\n{plan}"
    );
    plan
}

/// pv (domain 1): real xenstored, simulated usbback/usbfront, the shim's
/// kernel-like bind/unbind on the fixture sysfs.
#[test]
fn pv_controller_and_device_plans_match_the_real_run() {
    let Some(host) = host() else { return };
    step(
        &host,
        &["usbctrl-attach", "1", "type=pv", "version=2", "ports=4"],
        &[
            "xenstore write /local/domain/0/backend/vusb/1/0/num-ports = \"4\"",
            "wait for backend /local/domain/0/backend/vusb/1/0 to reach state",
        ],
    );
    // 1-2 has three interfaces, each on its driver: three unbinds, three
    // binds to usbback, the driver memory first.
    let plan = step(
        &host,
        &["usbdev-attach", "1", "hostbus=1", "hostaddr=3"],
        &[
            "xenstore write /local/domain/0/backend/vusb/1/0/port/1 = \"1-2\"",
            "xenstore write /libxl/usbback/1-2/1-2@1_0/driver_path = \"/sys/bus/usb/drivers/usbhid\"",
            "/bus/usb/devices/1-2:1.0/driver/unbind = \"1-2:1.0\"",
            "/bus/usb/drivers/usbback/bind = \"1-2:1.2\" (bind to usbback)",
            "file write ",
        ],
    );
    let memory = plan.find("driver_path").unwrap();
    let unbind = plan.find("driver/unbind").unwrap();
    assert!(memory < unbind, "memory after unbind:\n{plan}");
    step(
        &host,
        &["usbdev-detach", "1", "0", "1"],
        &[
            "xenstore write /local/domain/0/backend/vusb/1/0/port/1 = \"\"",
            "(unbind from usbback)",
            "xenstore rm /libxl/usbback/1-2",
        ],
    );
    step(
        &host,
        &["usbdev-attach", "1", "busid=1-1"],
        &["xenstore write /local/domain/0/backend/vusb/1/0/port/1 = \"1-1\""],
    );
    // Removing the controller takes its device off first.
    step(
        &host,
        &["usbctrl-detach", "1", "0"],
        &[
            "xenstore write /local/domain/0/backend/vusb/1/0/port/1 = \"\"",
            "(unbind from usbback)",
            "xenstore write /local/domain/0/backend/vusb/1/0/state = \"5\"",
            "wait for backend /local/domain/0/backend/vusb/1/0 to reach state 6",
            "xenstore rm /local/domain/1/device/vusb/0",
        ],
    );
    step(&host, &["usbctrl-attach", "1"], &["xenstore mkdir "]);
    step(
        &host,
        &["usbdev-attach", "1", "busid=1-1"],
        &["(bind to usbback)"],
    );
    step(
        &host,
        &["usb-release", "1"],
        &[
            "xenstore write /local/domain/0/backend/vusb/1/0/port/1 = \"\"",
            "(unbind from usbback)",
            "xenstore rm /local/domain/1/device/vusb/0",
        ],
    );
}

/// qusb (domain 2, a PV guest with a device model): real xenstored, the
/// simulated qusb backend.
#[test]
fn qusb_controller_and_device_plans_match_the_real_run() {
    let Some(host) = host() else { return };
    step(
        &host,
        &["usbctrl-attach", "2", "type=qusb"],
        &["xenstore write /local/domain/0/backend/qusb/2/0/num-ports = \"8\""],
    );
    step(
        &host,
        &["usbdev-attach", "2", "hostbus=1", "hostaddr=2"],
        &["xenstore write /local/domain/0/backend/qusb/2/0/port/1 = \"1-1\""],
    );
    step(
        &host,
        &["usbdev-detach", "2", "busid=1-1"],
        &["xenstore write /local/domain/0/backend/qusb/2/0/port/1 = \"\""],
    );
    step(&host, &["usbctrl-detach", "2", "0"], &["xenstore rm "]);
}

/// devicemodel (domain 3, HVM): real xenstored, the fake device model (a
/// QMP server; the real QEMU is in `dry_run_qemu.rs`).
#[test]
fn devicemodel_plans_match_the_real_run() {
    let Some(host) = host() else { return };
    step(
        &host,
        &["usbctrl-attach", "3", "version=2"],
        &["qmp device_add {", "\"id\":\"xenusb-0\""],
    );
    step(
        &host,
        &["usbdev-attach", "3", "hostbus=1", "hostaddr=5"],
        &["qmp device_add {", "\"driver\":\"usb-host\""],
    );
    step(
        &host,
        &["usbdev-detach", "3", "0", "1"],
        &["qmp device_del {", "wait for QEMU's DEVICE_DELETED"],
    );
    step(
        &host,
        &["usbctrl-detach", "3", "0"],
        &["qmp device_del {\"id\":\"xenusb-0\"}"],
    );
}

/// pv, no controller yet: real xenstored, simulated usbback, shim sysfs.
#[test]
fn an_attach_that_creates_its_controller_plans_both() {
    let Some(host) = host() else { return };
    // No controller yet: the attach creates one and waits for its backend.
    step(
        &host,
        &["usbdev-attach", "1", "hostbus=1", "hostaddr=2"],
        &[
            "wait for backend /local/domain/0/backend/vusb/1/0 to reach state",
            "xenstore write /local/domain/0/backend/vusb/1/0/port/1 = \"1-1\"",
            "(bind to usbback)",
        ],
    );
}

/// Bad input: with `-N` the same stdout, error lines and exit status as
/// without (usage errors included), then the dry run's last line on
/// stderr; nothing changes either way.
#[test]
fn bad_input_fails_the_same_and_changes_nothing() {
    let Some(host) = host() else { return };
    let o = vusb(&host, &["usbctrl-attach", "1", "type=pv"]);
    assert_eq!(o.rc, 0, "{}", o.stderr);
    for args in [
        &["usbdev-attach", "1", "hostbus=1", "hostaddr=99"][..],
        &["usbdev-attach", "1", "busid=1-1", "hostbus=1", "hostaddr=3"],
        &["usbdev-attach", "nosuchguest", "busid=1-1"],
        &["usbdev-detach", "1", "0", "7"],
        &["usbctrl-attach", "1", "type=pv", "ports=99"],
        &["usbctrl-detach", "1", "5"],
        &["usbdev-attach", "1"],
        &["usb-rule-remove", "42"],
    ] {
        // The plain run first: it may create a lock file (a rules lock).
        let plain = vusb(&host, args);
        let before = snapshot(&host);
        let (dry, calls) = dry_run(&host, args);
        assert!(calls.is_empty(), "-N {args:?}: {calls:#?}");
        let after = snapshot(&host);
        assert_ne!(plain.rc, 0, "{args:?} succeeded");
        assert_eq!(
            dry.rc, plain.rc,
            "{args:?}: {} / {}",
            plain.stderr, dry.stderr
        );
        assert_eq!(dry.stdout, plain.stdout, "{args:?}");
        let expected = format!("{}{NOTHING_CHANGED}\n", plain.stderr);
        assert_eq!(dry.stderr, expected, "{args:?}");
        assert!(before == after, "-N {args:?} changed the host");
    }
}

/// Rules files (`usb-rule-add`/`usb-rule-remove`) on the fake host's state
/// directory.
#[test]
fn rules_are_planned_not_written() {
    let Some(host) = host() else { return };
    let before = snapshot(&host);
    let (dry, calls) = dry_run(
        &host,
        &["usb-rule-add", "guest1", "vendor=0x1234", "product=0x5678"],
    );
    assert!(calls.is_empty(), "{calls:#?}");
    assert_eq!(dry.rc, 0, "{}", dry.stderr);
    assert!(dry.stdout.contains("file write "), "{}", dry.stdout);
    assert!(dry.stdout.contains("rules"), "{}", dry.stdout);
    assert_eq!(before, snapshot(&host), "-N usb-rule-add changed the host");
    let list = vusb(&host, &["usb-rule-list"]);
    assert!(!list.stdout.contains("0x5678"), "{}", list.stdout);
    // For real, then a planned removal.
    let real = vusb(
        &host,
        &["usb-rule-add", "guest1", "vendor=0x1234", "product=0x5678"],
    );
    assert_eq!(real.rc, 0, "{}", real.stderr);
    let before = snapshot(&host);
    let (dry, calls) = dry_run(&host, &["usb-rule-remove", "1"]);
    assert!(calls.is_empty(), "{calls:#?}");
    assert_eq!(dry.rc, 0, "{}", dry.stderr);
    assert!(dry.stdout.contains("file write "), "{}", dry.stdout);
    assert_eq!(
        before,
        snapshot(&host),
        "-N usb-rule-remove changed the host"
    );
}

/// Read-only commands on the real xenstored and fixture sysfs; `daemon`.
#[test]
fn read_only_commands_run_as_usual_and_long_running_ones_refuse() {
    let Some(host) = host() else { return };
    let plain = vusb(&host, &["usb-assignable-list"]);
    let (dry, calls) = dry_run(&host, &["usb-assignable-list"]);
    assert!(calls.is_empty(), "{calls:#?}");
    assert_eq!((dry.rc, &dry.stdout), (plain.rc, &plain.stdout));
    let plain = vusb(&host, &["usb-list", "1"]);
    let dry = vusb(&host, &["--dry-run", "usb-list", "1"]);
    assert_eq!((dry.rc, &dry.stdout), (plain.rc, &plain.stdout));
    let (d, calls) = dry_run(&host, &["daemon"]);
    assert!(calls.is_empty(), "{calls:#?}");
    assert_eq!(d.rc, 1, "{}", d.stderr);
    assert!(
        d.stderr.contains("does not implement -N (dryrun) option"),
        "{}",
        d.stderr
    );
}

/// `config-apply` of an xl.cfg on domain 1: real xenstored, simulated
/// usbback, shim sysfs.
#[test]
fn config_apply_plans_match_the_real_run() {
    let Some(host) = host() else { return };
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("g1.cfg");
    fs::write(
        &cfg,
        "usbctrl = [ 'type=pv,version=2,ports=4' ]\n\
         usbdev = [ 'hostbus=1,hostaddr=2,controller=0,port=1', 'hostbus=1, hostaddr=4' ]\n",
    )
    .unwrap();
    let cfg = cfg.to_str().unwrap();
    let plan = step(
        &host,
        &["config-apply", "1", cfg],
        &[
            "wait for backend /local/domain/0/backend/vusb/1/0 to reach state",
            "xenstore write /local/domain/0/backend/vusb/1/0/port/1 = \"1-1\"",
            "xenstore write /local/domain/0/backend/vusb/1/0/port/2 = \"1-3\"",
            "(bind to usbback)",
        ],
    );
    // What the command prints comes before the plan, as without -N.
    assert!(
        plan.starts_with("created controller 0\nattached 1-1 at controller 0 port 1\n"),
        "{plan}"
    );
    // Applied already: no xenstore, sysfs or QMP change (the saved
    // configuration is rewritten, as a real run does).
    let (dry, calls) = dry_run(&host, &["config-apply", "1", cfg]);
    assert!(calls.is_empty(), "{calls:#?}");
    assert_eq!(dry.rc, 0, "{}", dry.stderr);
    assert!(
        dry.stdout
            .starts_with("already present: 1 controller(s), 2 device(s)\n"),
        "{}",
        dry.stdout
    );
    assert!(
        !dry.stdout
            .lines()
            .any(|l| l.starts_with("xenstore") || l.starts_with("sysfs") || l.starts_with("qmp")),
        "{}",
        dry.stdout
    );
}

/// A device left on usbback with its driver memory but no assignment (a
/// record lost behind vusb's back): `usb-recover` gives it back.
#[test]
fn usb_recover_plans_match_the_real_run() {
    let Some(host) = host() else { return };
    let o = vusb(&host, &["usbdev-attach", "1", "busid=1-2"]);
    assert_eq!(o.rc, 0, "{}", o.stderr);
    host.settle();
    let xs = host.client().unwrap();
    xs.rm(TxId::NONE, "/vusb/assigned/1-2").unwrap();
    xs.write(TxId::NONE, "/local/domain/0/backend/vusb/1/0/port/1", b"")
        .unwrap();
    step(
        &host,
        &["usb-recover"],
        &[
            "/bus/usb/devices/1-2:1.0/driver/unbind = \"1-2:1.0\" (unbind from usbback)",
            "/bus/usb/drivers/usbhid/bind = \"1-2:1.0\" (bind to usbhid)",
            "xenstore rm /libxl/usbback/1-2",
        ],
    );
}

/// A PV guest without a device model gets its qusb backend QEMU started
/// on demand: the plan shows the QEMU command line, the records (the pid
/// only a real start learns is `<pid>`) and the wait; nothing is started
/// (the fake host has no such QEMU: a start attempt would fail the
/// command). The real start is covered on the real Xen test bed.
#[test]
fn qusb_backend_start_is_planned_not_done() {
    let Some(host) = host() else { return };
    let before = snapshot(&host);
    let (dry, calls) = dry_run(&host, &["usbctrl-attach", "1", "type=qusb"]);
    assert!(calls.is_empty(), "{calls:#?}");
    assert_eq!(dry.rc, 0, "{}", dry.stderr);
    let qemu = host.paths().qemu_xen;
    for e in [
        format!("start {} -xen-domid 1 -no-shutdown", qemu.display()),
        "xenstore write /local/domain/1/image/device-model-pid = \"<pid>\"".to_owned(),
        "xenstore write /vusb/qusb-backend/1 = \"<pid>\"".to_owned(),
        "wait for QEMU to write \"running\" to /local/domain/0/device-model/1/state (at most 60 s)"
            .to_owned(),
        "xenstore write /local/domain/0/backend/qusb/1/0/num-ports = \"8\"".to_owned(),
    ] {
        assert!(dry.stdout.contains(&e), "plan lacks {e:?}:\n{}", dry.stdout);
    }
    assert_eq!(before, snapshot(&host), "-N changed the host");
}

/// The documented difference from xl (reference §1.1, test 30): the real
/// `xl` (xen-utils-4.17, under the xl-peer shim on the same fake host)
/// refuses `-N` for every USB command with exit 1; vusb prints a plan.
/// Neither changes anything.
#[test]
fn xl_refuses_dry_run_where_vusb_plans() {
    if !xlpeer::xl_available() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "the real xl is not installed"
        );
        eprintln!("SKIP: the real xl is not installed");
        return;
    }
    let Some(host) = host() else { return };
    let before = snapshot(&host);
    for args in [
        &["usbctrl-attach", "1"][..],
        &["usbdev-attach", "1", "hostbus=1", "hostaddr=2"],
        &["usbdev-detach", "1", "0", "1"],
        &["usbctrl-detach", "1", "0"],
    ] {
        let mut dry = vec!["-N"];
        dry.extend_from_slice(args);
        let xl = xlpeer::run(&host, host.xl_command(&dry).unwrap()).unwrap();
        assert_eq!(xl.rc, 1, "xl {dry:?}: {}", xl.stderr);
        assert!(
            xl.stderr
                .contains("command does not implement -N (dryrun) option"),
            "xl {dry:?}: {}",
            xl.stderr
        );
    }
    let (v, calls) = dry_run(&host, &["usbctrl-attach", "1"]);
    assert!(calls.is_empty(), "{calls:#?}");
    assert_eq!(v.rc, 0, "{}", v.stderr);
    assert!(v.stdout.contains("xenstore "), "{}", v.stdout);
    assert_eq!(before, snapshot(&host), "a dry run changed the host");
}

/// Removing the last qusb controller of a guest whose QEMU backend vusb
/// started (recorded as `/vusb/qusb-backend/<domid>` = the pid in
/// `device-model-pid`; here the record is written by the test for guest
/// 2's device model) plans QEMU's stop: QMP `quit`, the wait for the
/// process, the records and nodes libxl's destroy removes. Only dry-run:
/// the fake device model is no process vusb could stop.
#[test]
fn qusb_backend_stop_is_planned_not_done() {
    let Some(host) = host() else { return };
    let o = vusb(&host, &["usbctrl-attach", "2", "type=qusb"]);
    assert_eq!(o.rc, 0, "{}", o.stderr);
    let xs = host.client().unwrap();
    let pid = xs
        .read_opt(TxId::NONE, "/local/domain/2/image/device-model-pid")
        .unwrap()
        .unwrap();
    xs.write(TxId::NONE, "/vusb/qusb-backend/2", pid.as_bytes())
        .unwrap();
    let before = snapshot(&host);
    let (dry, calls) = dry_run(&host, &["usbctrl-detach", "2", "0"]);
    assert!(calls.is_empty(), "{calls:#?}");
    assert_eq!(dry.rc, 0, "{}", dry.stderr);
    let plan = &dry.stdout;
    for e in [
        "xenstore rm /local/domain/2/device/vusb/0".to_owned(),
        "qmp quit".to_owned(),
        format!("wait for QEMU pid {pid} to end (at most 10 s)"),
        "xenstore rm /local/domain/0/device-model/2".to_owned(),
        "xenstore rm /local/domain/2/image/device-model-pid".to_owned(),
        "xenstore rm /vusb/qusb-backend/2".to_owned(),
    ] {
        assert!(plan.contains(&e), "plan lacks {e:?}:\n{plan}");
    }
    let quit = plan.find("qmp quit").unwrap();
    let gone = plan
        .find("xenstore rm /local/domain/2/device/vusb/0")
        .unwrap();
    assert!(
        gone < quit,
        "QEMU stopped before its controller went:\n{plan}"
    );
    assert_eq!(before, snapshot(&host), "-N changed the host");
}

/// `-N --json`: the plan as one JSON document, the command's own output
/// inside it; `--json` alone is a usage error.
#[test]
fn json_plan_is_one_document() {
    let Some(host) = host() else { return };
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("g1.cfg");
    fs::write(
        &cfg,
        "usbctrl = [ 'type=pv,ports=4' ]\nusbdev = [ 'busid=1-1' ]\n",
    )
    .unwrap();
    let before = snapshot(&host);
    let (o, calls) = dry_run(
        &host,
        &["--json", "config-apply", "1", cfg.to_str().unwrap()],
    );
    assert!(calls.is_empty(), "{calls:#?}");
    assert_eq!(o.rc, 0, "{}", o.stderr);
    let doc: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(doc["command"], "config-apply");
    assert_eq!(doc["changed"], false);
    assert!(
        doc["output"]
            .as_str()
            .unwrap()
            .contains("attached 1-1 at controller 0 port 1"),
        "{doc:#}"
    );
    let effects = doc["effects"].as_array().unwrap();
    let port = serde_json::json!({"kind": "xenstore-write",
        "path": "/local/domain/0/backend/vusb/1/0/port/1", "value": "1-1"});
    assert!(effects.contains(&port), "{doc:#}");
    assert!(
        effects
            .iter()
            .any(|e| e["kind"] == "wait" && e["max_secs"].as_f64().unwrap() > 0.0),
        "{doc:#}"
    );
    assert!(
        effects
            .iter()
            .any(|e| e["kind"] == "sysfs-write" && e["note"] == "bind to usbback"),
        "{doc:#}"
    );
    assert_eq!(before, snapshot(&host), "-N --json changed the host");
    let o = vusb(&host, &["--json", "usbctrl-attach", "1"]);
    assert_eq!(o.rc, 2, "{}", o.stderr);
    assert_eq!(
        before,
        snapshot(&host),
        "--json without -N changed the host"
    );
}
