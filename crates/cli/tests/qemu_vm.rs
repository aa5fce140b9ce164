//! End-to-end: the built `vusb` binary managing a plain QEMU VM through its
//! QMP socket (`vusb --qmp PATH ...`), as the README shows. One real QEMU
//! per test; fails under `CI=true` when QEMU cannot start.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::os::unix::net::UnixListener;
use std::path::Path;

use serde_json::json;
use std::process::{Command, Output};
use std::time::Duration;

use vusb_testsupport::qemu::{QemuOptions, require_or_skip, require_or_skip_with};

fn vusb(qmp: &Path, args: &[&str]) -> Output {
    vusb_waiting(qmp, args, 400)
}

fn vusb_waiting(qmp: &Path, args: &[&str], unplug_ms: u32) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vusb"))
        .arg("--qmp")
        .arg(qmp)
        .args(args)
        .env("VUSB_UNPLUG_TIMEOUT_MS", unplug_ms.to_string())
        .output()
        .expect("run vusb")
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "status {:?}, stderr {}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn fails(o: &Output, code: i32) -> String {
    assert_eq!(
        o.status.code(),
        Some(code),
        "stdout {} stderr {}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.stdout.is_empty());
    String::from_utf8(o.stderr.clone()).unwrap()
}

const LIST_WITH_TABLET: &str = "Devid  Type         BE  state usb-ver ports model\n\
0      devicemodel  0   0     3       4     nec-xhci\n  Port 1:\n  Port 2: Emulated tablet\n  Port 3:\n  Port 4:\n";

#[test]
fn readme_flow_controller_tablet_list_and_cleanup() {
    let dir = tempfile::tempdir().unwrap();
    let opts = QemuOptions::with_ejector(dir.path()).unwrap();
    let Some(vm) = require_or_skip_with("readme_flow", &opts) else {
        return;
    };
    vm.wait_for_ejector(Duration::from_secs(60)).unwrap();
    let q = vm.qmp_path();
    assert_eq!(
        ok(&vusb(q, &["usbctrl-attach", "vm", "version=3", "ports=4"])),
        ""
    );
    assert_eq!(
        ok(&vusb(
            q,
            &[
                "usbdev-attach",
                "vm",
                "type=tablet",
                "controller=0",
                "port=2"
            ]
        )),
        ""
    );
    assert_eq!(ok(&vusb(q, &["usb-list", "vm"])), LIST_WITH_TABLET);
    // --json, anywhere, as for Xen guests.
    let v: serde_json::Value =
        serde_json::from_str(&ok(&vusb(q, &["usb-list", "--json", "vm"]))).unwrap();
    assert_eq!(v["vm"], "vm");
    let c = &v["controllers"][0];
    assert_eq!(
        (&c["devid"], &c["model"], &c["qemu_driver"], &c["version"]),
        (
            &json!(0),
            &json!("nec-xhci"),
            &json!("nec-usb-xhci"),
            &json!(3)
        )
    );
    assert_eq!(c["ports"].as_array().unwrap().len(), 4);
    assert_eq!(c["ports"][1]["emulated"], "tablet");
    assert_eq!(c["ports"][1]["port"], 2);
    assert_eq!(c["ports"][0]["qemu_id"], serde_json::Value::Null);
    assert_eq!(ok(&vusb(q, &["usbdev-detach", "vm", "0", "2"])), "");
    assert!(ok(&vusb(q, &["usb-list", "vm"])).contains("  Port 2:\n"));
    assert_eq!(
        ok(&vusb_waiting(q, &["usbctrl-detach", "vm", "0"], 10_000)),
        ""
    );
    assert_eq!(ok(&vusb(q, &["usb-list", "vm"])), "");
}

#[test]
fn paused_vm_controller_detach_reports_the_guest_did_not_release() {
    let Some(vm) = require_or_skip("paused_detach") else {
        return;
    };
    let q = vm.qmp_path();
    ok(&vusb(q, &["usbctrl-attach", "vm", "version=3", "ports=4"]));
    ok(&vusb(
        q,
        &[
            "usbdev-attach",
            "vm",
            "type=tablet",
            "controller=0",
            "port=2",
        ],
    ));
    let err = fails(&vusb(q, &["usbctrl-detach", "vm", "0"]), 1);
    assert!(err.contains("guest did not release it"), "{err}");
    // The tablet was removed first; the controller stays, honestly listed.
    assert_eq!(
        ok(&vusb(q, &["usb-list", "vm"])),
        LIST_WITH_TABLET.replace(" Emulated tablet", "")
    );
}

#[test]
fn attach_rules_auto_controller_port_checks_and_qemu_errors() {
    let Some(vm) = require_or_skip("attach_rules") else {
        return;
    };
    let q = vm.qmp_path();
    // No controller: one is created in QEMU (libxl bug A1 fixed): EHCI, 6 ports.
    ok(&vusb(q, &["usbdev-attach", "vm", "type=keyboard"]));
    ok(&vusb(q, &["usbdev-attach", "vm", "type=mouse"]));
    let list = ok(&vusb(q, &["usb-list", "vm"]));
    assert!(list.starts_with("Devid  Type         BE  state usb-ver ports model\n0      devicemodel  0   0     2       6     ehci\n  Port 1: Emulated keyboard\n  Port 2: Emulated mouse\n"), "{list}");
    let err = fails(
        &vusb(
            q,
            &[
                "usbdev-attach",
                "vm",
                "type=tablet",
                "controller=0",
                "port=1",
            ],
        ),
        1,
    );
    assert!(
        err.ends_with("The controller port isn't available\n"),
        "{err}"
    );
    let err = fails(
        &vusb(
            q,
            &[
                "usbdev-attach",
                "vm",
                "type=tablet",
                "controller=0",
                "port=7",
            ],
        ),
        1,
    );
    assert!(
        err.contains("port 7 is out of range: controller 0 has ports 1 to 6"),
        "{err}"
    );
    let err = fails(
        &vusb(q, &["usbdev-attach", "vm", "type=tablet", "port=3"]),
        1,
    );
    assert!(
        err.contains("USB controller must be specified if you specify port"),
        "{err}"
    );
    let err = fails(
        &vusb(q, &["usbdev-attach", "vm", "type=tablet", "controller=4"]),
        1,
    );
    assert!(err.contains("Unknown device 4."), "{err}");
    // QEMU answers an error: no such host device here.
    let err = fails(
        &vusb(
            q,
            &[
                "usbdev-attach",
                "vm",
                "hostbus=1",
                "hostaddr=2",
                "controller=0",
            ],
        ),
        1,
    );
    assert!(err.contains("failed to find host usb device 1:2"), "{err}");
    // vendor:product is accepted and waits.
    ok(&vusb(
        q,
        &[
            "usbdev-attach",
            "vm",
            "vendor=1234",
            "product=5678",
            "controller=0",
            "port=4",
        ],
    ));
    assert!(ok(&vusb(q, &["usb-list", "vm"])).contains("  Port 4: Vendor 1234 Product 5678\n"));
    let err = fails(&vusb(q, &["usbdev-detach", "vm", "0", "5"]), 1);
    assert!(
        err.contains("Unknown device at controller 0 port 5."),
        "{err}"
    );
    // Detached by the identity it was attached with (vusb extension).
    ok(&vusb(
        q,
        &["usbdev-detach", "vm", "vendor=1234", "product=5678"],
    ));
    assert!(ok(&vusb(q, &["usb-list", "vm"])).contains("  Port 4:\n"));
    let err = fails(
        &vusb(q, &["usbdev-detach", "vm", "vendor=1234", "product=5678"]),
        1,
    );
    assert!(
        err.contains("no such device attached to the VM: vendor=1234 product=5678"),
        "{err}"
    );
    let err = fails(&vusb(q, &["usbdev-detach", "vm", "0", "1", "2"]), 1);
    assert!(err.contains("Invalid arguments."), "{err}");
    assert_eq!(
        vusb(q, &["usb-list", "vm", "extra"]).status.code(),
        Some(255)
    );
}

#[test]
fn bad_input_is_refused_before_qemu_is_touched() {
    // The socket does not exist: any error naming the input, not the
    // socket, proves the input was judged first.
    let dir = tempfile::tempdir().unwrap();
    let q = dir.path().join("absent.qmp");
    let cases: [(&[&str], &str); 6] = [
        (
            &["usbctrl-attach", "vm", "version=1", "ports=4"],
            "Number of ports for USB controller of version 1 is always 2",
        ),
        (
            &["usbctrl-attach", "vm", "version=4"],
            "Illegal USB version",
        ),
        (
            &["usbctrl-attach", "vm", "version=3", "ports=16"],
            "Number of ports for USB controller of version 3 is limited to 15",
        ),
        (
            &["usbctrl-attach", "vm", "model=ich9-ehci1"],
            "Unknown USB controller model 'ich9-ehci1'",
        ),
        (
            &["usbctrl-attach", "vm", "speed=2"],
            "Unknown string `speed=2' in usbctrl spec",
        ),
        (
            &["usbdev-attach", "vm", "type=tablet", "hostbus=1"],
            "type=tablet takes no host device keys",
        ),
    ];
    for (args, want) in cases {
        let err = fails(&vusb(&q, args), 1);
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(!err.contains("QMP"), "{args:?}: {err}");
    }
    let err = fails(&vusb(&q, &["usb-list", "vm"]), 1);
    assert!(
        err.contains("connecting to the QMP socket") && err.contains("absent.qmp"),
        "{err}"
    );
}

#[test]
fn a_socket_that_is_not_qemus() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fake.qmp");
    let listener = UnixListener::bind(&path).unwrap();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let _ = s.write_all(b"220 smtp.example ESMTP\r\n");
        std::thread::sleep(Duration::from_millis(300));
    });
    let err = fails(&vusb(&path, &["usb-list", "vm"]), 1);
    assert!(err.contains("not a QMP server"), "{err}");
    server.join().unwrap();
    let file = dir.path().join("file.qmp");
    std::fs::write(&file, "").unwrap();
    let t0 = std::time::Instant::now();
    let err = fails(&vusb(&file, &["usb-list", "vm"]), 1);
    assert!(err.contains("file.qmp is not a socket"), "{err}");
    assert!(t0.elapsed() < Duration::from_secs(2));
}

#[test]
fn q35_controllers_go_onto_free_pcie_root_ports() {
    let opts = QemuOptions {
        machine: "q35".into(),
        extra_args: ["-device", "pcie-root-port,id=rp1,chassis=1,slot=1"]
            .map(String::from)
            .to_vec(),
        ..QemuOptions::default()
    };
    let Some(vm) = require_or_skip_with("q35_root_ports", &opts) else {
        return;
    };
    let q = vm.qmp_path();
    ok(&vusb(
        q,
        &["usbctrl-attach", "vm", "model=qemu-xhci", "ports=4"],
    ));
    ok(&vusb(
        q,
        &[
            "usbdev-attach",
            "vm",
            "type=tablet",
            "controller=0",
            "port=1",
        ],
    ));
    {
        let mut qmp = vusb_qmp::Qmp::connect(q, Duration::from_secs(10)).unwrap();
        let bus = qmp
            .qom_get("/machine/peripheral/xenusb-0", "parent_bus")
            .unwrap();
        assert_eq!(bus, serde_json::Value::from("/machine/peripheral/rp1/rp1"));
    } // QEMU serves one QMP client at a time
    assert!(ok(&vusb(q, &["usb-list", "vm"])).contains("  Port 1: Emulated tablet\n"));
    // The only root port is taken now.
    let err = fails(&vusb(q, &["usbctrl-attach", "vm", "version=2"]), 1);
    assert!(err.contains("no free pcie-root-port"), "{err}");
    assert!(
        err.contains("Bus 'pcie.0' does not support hotplugging"),
        "{err}"
    );
}
