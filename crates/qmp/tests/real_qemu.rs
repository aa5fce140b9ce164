//! The QMP client against a real QEMU (one VM per test): handshake,
//! queries, errors, events queued while a command runs, and QEMU killed
//! while the client waits. Fails under `CI=true` when QEMU cannot start.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use serde_json::Value;
use vusb_qmp::{DeviceAdd, Error, Qmp};
use vusb_testsupport::qemu::require_or_skip;

#[test]
fn handshake_queries_and_errors() {
    let Some(vm) = require_or_skip("qmp_handshake") else {
        return;
    };
    let mut q = Qmp::connect(vm.qmp_path(), Duration::from_secs(10)).unwrap();
    let g = q.greeting().unwrap().clone();
    assert!(g.version.0 >= 7, "{g:?}");
    let st = q.execute("query-status", None).unwrap();
    assert_eq!(st["status"], Value::from("prelaunch"));
    // -nodefaults: no USB at all yet.
    let e = q.x_query_usb().unwrap_err();
    assert_eq!(e.qemu_desc(), Some("USB support not enabled"));
    let e = q.execute("query-usb", None).unwrap_err();
    assert_eq!(e.qemu_class(), Some("CommandNotFound"));
    let e = q.device_del("nope").unwrap_err();
    assert!(e.is_device_not_found());
    // A controller and a tablet, seen by every query.
    q.device_add(
        &DeviceAdd::new()
            .arg("driver", "qemu-xhci")
            .arg("id", "x0")
            .arg("p2", 4)
            .arg("p3", 4),
    )
    .unwrap();
    q.device_add(
        &DeviceAdd::new()
            .arg("driver", "usb-tablet")
            .arg("id", "t0")
            .arg("bus", "x0.0")
            .arg("port", "1"),
    )
    .unwrap();
    let usb = q.x_query_usb().unwrap();
    assert!(
        usb.contains("Port 1, Speed 480 Mb/s, Product QEMU USB Tablet, ID: t0"),
        "{usb}"
    );
    let p = q.peripherals().unwrap();
    assert!(
        p.iter().any(|p| p.id == "t0" && p.driver == "usb-tablet"),
        "{p:?}"
    );
    assert!(
        q.query_pci()
            .unwrap()
            .iter()
            .any(|f| f.qdev_id == "x0" && f.vendor == 0x1b36)
    );
    assert_eq!(
        q.qom_get("/machine/peripheral/t0", "parent_bus").unwrap(),
        Value::from("/machine/peripheral/x0/x0.0")
    );
    // device_del answers first, DEVICE_DELETED follows.
    q.device_del("t0").unwrap();
    assert!(q.wait_device_deleted("t0", Duration::from_secs(2)).unwrap());
}

#[test]
fn events_arriving_during_a_command_are_queued() {
    let Some(vm) = require_or_skip("qmp_events") else {
        return;
    };
    let mut q = Qmp::connect(vm.qmp_path(), Duration::from_secs(10)).unwrap();
    q.execute("system_reset", None).unwrap();
    q.execute("query-status", None).unwrap();
    let ev = q
        .wait_event(Duration::from_secs(2), |e| e.name == "RESET")
        .unwrap();
    assert!(ev.is_some(), "no RESET event");
    assert!(ev.unwrap().timestamp_us > 0);
}

#[test]
fn qemu_killed_while_waiting() {
    let Some(mut vm) = require_or_skip("qmp_killed") else {
        return;
    };
    let mut q = Qmp::connect(vm.qmp_path(), Duration::from_secs(10)).unwrap();
    let pid = vm.pid();
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(150));
        let _ = std::process::Command::new("kill")
            .arg("-9")
            .arg(pid.to_string())
            .status();
    });
    let e = q
        .wait_event(Duration::from_secs(10), |_| false)
        .unwrap_err();
    killer.join().unwrap();
    assert!(matches!(e, Error::Closed { .. }), "{e:?}");
    let e = q.execute("query-status", None).unwrap_err();
    assert!(e.is_connection_lost(), "{e:?}");
    vm.kill();
}
