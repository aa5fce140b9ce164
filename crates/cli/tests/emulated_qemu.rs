//! An emulated tablet on a Xen HVM guest's devicemodel controller, with a
//! real QEMU 7.2 as the guest's device model: the simulated host provides
//! xenstore (`guest3` is HVM), QEMU's QMP socket stands in for
//! `qmp-libxl-3`. QEMU's own view (read back with `vusb --qmp ... usb-list`,
//! which asks QEMU, not xenstore) must show the tablet on the port vusb
//! recorded, and no longer after the detach. Fails under `CI=true` when
//! QEMU cannot start.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output};

use vusb_sim::host::{SimConfig, SimHost};
use vusb_testsupport::qemu::require_or_skip;

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn tablet_reaches_real_qemu_on_the_recorded_port() {
    let Some(vm) = require_or_skip("tablet_reaches_real_qemu_on_the_recorded_port") else {
        return;
    };
    let dir = tempfile::Builder::new()
        .prefix("vemuq")
        .tempdir_in("/tmp")
        .unwrap();
    let host = SimHost::start(&dir.path().join("host"), &SimConfig::default()).unwrap();
    let qmp_dir = dir.path().join("qmp");
    std::fs::create_dir_all(&qmp_dir).unwrap();
    std::os::unix::fs::symlink(vm.qmp_path(), qmp_dir.join("qmp-libxl-3")).unwrap();
    let xen = |args: &[&str]| -> Output {
        Command::new(env!("CARGO_BIN_EXE_vusb"))
            .args(args)
            .envs(host.env())
            .env("VUSB_QMP_DIR", &qmp_dir)
            .output()
            .unwrap()
    };
    let qemu_list = || -> String {
        let o = Command::new(env!("CARGO_BIN_EXE_vusb"))
            .arg("--qmp")
            .arg(vm.qmp_path())
            .args(["usb-list", "vm"])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };

    let o = xen(&["usbctrl-attach", "guest3"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = xen(&[
        "usbdev-attach",
        "guest3",
        "type=tablet",
        "controller=0",
        "port=3",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let list = qemu_list();
    assert!(list.contains("  Port 3: Emulated tablet\n"), "{list}");
    let o = xen(&["usb-list", "guest3"]);
    assert!(
        text(&o).contains("  Port 3: Emulated tablet\n"),
        "{}",
        text(&o)
    );
    // QEMU itself refuses a second device on that port: what `xl` would
    // meet, since libxl's port node stays empty.
    let o = Command::new(env!("CARGO_BIN_EXE_vusb"))
        .arg("--qmp")
        .arg(vm.qmp_path())
        .args([
            "usbdev-attach",
            "vm",
            "type=mouse",
            "controller=0",
            "port=3",
        ])
        .output()
        .unwrap();
    assert!(!o.status.success(), "{}", text(&o));

    let o = xen(&["usbdev-detach", "guest3", "0", "3"]);
    assert!(o.status.success(), "{}", text(&o));
    let list = qemu_list();
    assert!(list.contains("  Port 3:\n"), "{list}");
    assert!(!list.contains("Emulated"), "{list}");
}
