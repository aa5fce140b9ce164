//! `vusb -N` against a real QEMU (qemu-system-x86_64, the `pc` machine
//! booting the ejector so controller unplugs complete): with `--qmp` (a
//! plain VM) and as a Xen HVM guest's device model (the simulated Xen host
//! of `vusb sim` provides xenstore, QEMU's QMP socket stands in for
//! `qmp-libxl-3`).
//!
//! Each dry run must leave QEMU as it was (`qom-list /machine/peripheral`
//! and `info usb`, asked over HMP), make no file-changing system call
//! (`strace -f`), and print the `device_add`/`device_del`
//! a real run then sends: after the real run, the peripherals QEMU gained
//! or lost are exactly the ids of the plan's commands. Fails under
//! `CI=true` when QEMU cannot start, skips with a reason otherwise.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use vusb_sim::host::{SimConfig, SimHost};
use vusb_testsupport::qemu::{QemuOptions, QemuVm, require_or_skip_with};
use vusb_testsupport::strace::{self, FILE_CHANGING_CALLS};

const NOTHING_CHANGED: &str = "vusb: dry run: nothing was changed";

/// `vusb`, or, for a dry run, `vusb` under `strace -f` logging to `log`.
fn vusb_cmd(dry: bool, log: &Path) -> Command {
    if !dry {
        return Command::new(env!("CARGO_BIN_EXE_vusb"));
    }
    let mut c = Command::new("strace");
    c.args(["-f", "-qq", "-e", FILE_CHANGING_CALLS, "-o"])
        .arg(log)
        .arg(env!("CARGO_BIN_EXE_vusb"));
    c
}

/// The file-changing calls in the strace log at `log` (removed after).
fn file_changes(log: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let _ = std::fs::remove_file(log);
    strace::file_changes(&text)
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// QEMU's peripheral ids (`qom-list /machine/peripheral`: the children).
fn peripherals(vm: &QemuVm) -> BTreeSet<String> {
    vm.hmp("qom-list /machine/peripheral")
        .unwrap()
        .lines()
        .filter(|l| l.contains("(child<"))
        .filter_map(|l| l.split_whitespace().next())
        .map(|s| s.trim_start_matches("{\"return\": \"").to_owned())
        .collect()
}

/// What QEMU shows of its devices.
fn qemu_state(vm: &QemuVm) -> (BTreeSet<String>, String) {
    (peripherals(vm), vm.hmp("info usb").unwrap())
}

/// The ids of the plan's `device_add` and `device_del` commands.
fn planned_ids(plan: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut add = BTreeSet::new();
    let mut del = BTreeSet::new();
    for l in plan.lines() {
        let (set, json) = if let Some(j) = l.strip_prefix("qmp device_add ") {
            (&mut add, j)
        } else if let Some(j) = l.strip_prefix("qmp device_del ") {
            (&mut del, j)
        } else {
            continue;
        };
        let v: serde_json::Value = serde_json::from_str(json).unwrap();
        set.insert(v["id"].as_str().unwrap().to_owned());
    }
    (add, del)
}

type Store = Vec<(String, String)>;

/// Runs vusb with the given arguments; `-N` first means a dry run, run
/// under strace into the given log.
type Run<'a> = &'a dyn Fn(&[&str], &Path) -> Output;

/// Dry-run then run `args` with `run`; QEMU and the xenstore tree `store`
/// returns unchanged by the dry run, QEMU changed by the real one exactly
/// as planned. Returns the plan.
fn step(
    vm: &QemuVm,
    run: Run<'_>,
    store: &dyn Fn() -> Store,
    args: &[&str],
    expect: &[&str],
) -> String {
    let before = qemu_state(vm);
    let xs_before = store();
    let mut dry = vec!["-N"];
    dry.extend_from_slice(args);
    let log = std::env::temp_dir().join(format!("vusb-dry-{}.strace", std::process::id()));
    let o = run(&dry, &log);
    assert!(o.status.success(), "-N {args:?}: {}", text(&o));
    let calls = file_changes(&log);
    assert!(calls.is_empty(), "-N {args:?} changed files: {calls:#?}");
    let plan = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(plan.trim_end().ends_with(NOTHING_CHANGED), "{plan}");
    for e in expect {
        assert!(plan.contains(e), "-N {args:?}: plan lacks {e:?}:\n{plan}");
    }
    assert_eq!(before, qemu_state(vm), "-N {args:?} changed QEMU:\n{plan}");
    assert!(
        xs_before == store(),
        "-N {args:?} changed xenstore:\n{plan}"
    );
    let o = run(args, &log);
    assert!(o.status.success(), "{args:?}: {}", text(&o));
    let after = peripherals(vm);
    let added: BTreeSet<String> = after.difference(&before.0).cloned().collect();
    let removed: BTreeSet<String> = before.0.difference(&after).cloned().collect();
    assert_eq!(
        (added, removed),
        planned_ids(&plan),
        "{args:?}: QEMU's change vs the plan:\n{plan}"
    );
    plan
}

fn vm(test: &str, dir: &Path) -> Option<QemuVm> {
    let opts = QemuOptions::with_ejector(dir).unwrap();
    let vm = require_or_skip_with(test, &opts)?;
    vm.wait_for_ejector(Duration::from_secs(60)).unwrap();
    Some(vm)
}

#[test]
fn qmp_mode_plans_what_qemu_then_gets() {
    let dir = tempfile::tempdir().unwrap();
    let Some(vm) = vm("dry_run qmp mode", dir.path()) else {
        return;
    };
    let q = vm.qmp_path().to_owned();
    let run = move |args: &[&str], log: &Path| -> Output {
        let (globals, rest) = match args.first() {
            Some(&"-N") => (&args[..1], &args[1..]),
            _ => (&args[..0], args),
        };
        vusb_cmd(!globals.is_empty(), log)
            .args(globals)
            .arg("--qmp")
            .arg(&q)
            .args(rest)
            .env("VUSB_UNPLUG_TIMEOUT_MS", "10000")
            .output()
            .unwrap()
    };
    let store = Store::new;
    // No controller yet: the attach plans the default one first.
    step(
        &vm,
        &run,
        &store,
        &["usbdev-attach", "vm", "type=mouse"],
        &[
            "qmp device_add {\"driver\":\"usb-ehci\"",
            "\"driver\":\"usb-mouse\"",
        ],
    );
    step(
        &vm,
        &run,
        &store,
        &["usbctrl-attach", "vm", "version=3", "ports=4"],
        &["qmp device_add {\"driver\":\"nec-usb-xhci\""],
    );
    step(
        &vm,
        &run,
        &store,
        &[
            "usbdev-attach",
            "vm",
            "type=tablet",
            "controller=1",
            "port=2",
        ],
        &["\"driver\":\"usb-tablet\""],
    );
    step(
        &vm,
        &run,
        &store,
        &["usbdev-detach", "vm", "1", "2"],
        &["qmp device_del {", "wait for QEMU's DEVICE_DELETED"],
    );
    // The controller with its mouse: both removals planned, in order.
    let plan = step(
        &vm,
        &run,
        &store,
        &["usbctrl-detach", "vm", "0"],
        &["wait for the guest to release controller xenusb-0"],
    );
    let (_, del) = planned_ids(&plan);
    assert_eq!(del.len(), 2, "{plan}");
    // Bad input: same error and status as without -N.
    for args in [
        &["usbdev-attach", "vm", "type=tablet", "controller=9"][..],
        &["usbctrl-detach", "vm", "7"],
    ] {
        let log = dir.path().join("bad.strace");
        let plain = run(args, &log);
        let mut dry = vec!["-N"];
        dry.extend_from_slice(args);
        let d = run(&dry, &log);
        let calls = file_changes(&log);
        assert!(calls.is_empty(), "-N {args:?} changed files: {calls:#?}");
        assert_eq!(d.status.code(), plain.status.code(), "{args:?}");
        assert_eq!(d.stdout, plain.stdout, "{args:?}");
        assert_eq!(
            String::from_utf8_lossy(&d.stderr),
            format!(
                "{}{NOTHING_CHANGED}\n",
                String::from_utf8_lossy(&plain.stderr)
            ),
            "{args:?}"
        );
    }
}

#[test]
fn xen_devicemodel_on_real_qemu_plans_what_qemu_then_gets() {
    let dir = tempfile::Builder::new()
        .prefix("vdryq")
        .tempdir_in("/tmp")
        .unwrap();
    let Some(vm) = vm("dry_run xen devicemodel", dir.path()) else {
        return;
    };
    let host = SimHost::start(&dir.path().join("host"), &SimConfig::default()).unwrap();
    let qmp_dir = dir.path().join("qmp");
    std::fs::create_dir_all(&qmp_dir).unwrap();
    std::os::unix::fs::symlink(vm.qmp_path(), qmp_dir.join("qmp-libxl-3")).unwrap();
    let env = host.env();
    let run = move |args: &[&str], log: &Path| -> Output {
        vusb_cmd(args.first() == Some(&"-N"), log)
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .env("VUSB_QMP_DIR", &qmp_dir)
            .output()
            .unwrap()
    };
    let store = || sim_tree(&host);
    let xs_before = store();
    step(
        &vm,
        &run,
        &store,
        &["usbctrl-attach", "guest3", "version=2"],
        &[
            "xenstore write /libxl/3/device/vusb/0/type = \"devicemodel\"",
            "qmp device_add {\"driver\":\"usb-ehci\"",
        ],
    );
    assert_ne!(xs_before, store(), "the real run changed xenstore");
    step(
        &vm,
        &run,
        &store,
        &[
            "usbdev-attach",
            "guest3",
            "type=tablet",
            "controller=0",
            "port=3",
        ],
        &["\"driver\":\"usb-tablet\""],
    );
    step(
        &vm,
        &run,
        &store,
        &["usbdev-detach", "guest3", "0", "3"],
        &["qmp device_del {", "xenstore rm /vusb/emulated/3/0/3"],
    );
    step(
        &vm,
        &run,
        &store,
        &["usbctrl-detach", "guest3", "0"],
        &["qmp device_del {\"id\":\"xenusb-0\"}"],
    );
}

/// Every node of the simulated host's store with its value.
fn sim_tree(host: &SimHost) -> Vec<(String, String)> {
    use vusb_xenstore::{TxId, XenstoreExt};
    let xs = vusb_xenstore::client::Client::connect(host.socket()).unwrap();
    let mut out = Vec::new();
    let mut todo = vec!["/".to_owned()];
    while let Some(p) = todo.pop() {
        let v = xs.read_opt(TxId::NONE, &p).unwrap().unwrap_or_default();
        for c in xs.directory_opt(TxId::NONE, &p).unwrap() {
            todo.push(if p == "/" {
                format!("/{c}")
            } else {
                format!("{p}/{c}")
            });
        }
        out.push((p, v));
    }
    out.sort();
    out
}
