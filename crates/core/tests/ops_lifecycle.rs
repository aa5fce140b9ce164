//! Operation tests beyond the goldens, on the in-memory store with the
//! golden initial layout: the regressions of libxl's stale-device bugs
//! (U1: one unplugged device blocks every attach; U2: it cannot be
//! detached) and `usb-release` of a domain going away.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod ops_support;

use ops_support::{SimHost, dump, run_xl};
use vusb_core::assign;
use vusb_core::ops::usb_release::usb_release;
use vusb_sim::xenbus::DriverConfig;
use vusb_xenstore::{TxId, Xenstore, XenstoreExt};

fn ok(host: &SimHost, cmd: &str) {
    let (rc, _) = run_xl(&host.env(), cmd);
    assert_eq!(rc, 0, "{cmd}");
    host.settle();
}

/// Remove a device and its interfaces from the fixture, as an unplug does.
fn unplug(host: &SimHost, busid: &str) {
    let devs = host.paths.sysfs_root.join("bus/usb/devices");
    for e in std::fs::read_dir(&devs).unwrap().flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        if n == busid || n.starts_with(&format!("{busid}:")) {
            std::fs::remove_file(e.path())
                .or_else(|_| std::fs::remove_dir_all(e.path()))
                .unwrap();
        }
    }
}

fn port(host: &SimHost, path: &str) -> Option<String> {
    host.conn.read_opt(TxId::NONE, path).unwrap()
}

#[test]
fn unplugged_device_detaches_by_busid_and_does_not_block_attaches() {
    let host = SimHost::from_golden("pv", true, DriverConfig::default());
    ok(&host, "xl usbctrl-attach 1 ports=4");
    ok(&host, "xl usbdev-attach 1 hostbus=1 hostaddr=2");
    let p1 = "/local/domain/0/backend/vusb/1/0/port/1";
    assert_eq!(port(&host, p1).as_deref(), Some("1-1"));
    assert!(
        port(&host, "/libxl/usbback/1-1").is_some(),
        "driver memory written"
    );
    unplug(&host, "1-1");
    // U1: libxl refuses every attach on the host now; vusb does not scan.
    ok(&host, "xl usbdev-attach 1 hostbus=1 hostaddr=3");
    assert_eq!(
        port(&host, "/local/domain/0/backend/vusb/1/0/port/2").as_deref(),
        Some("1-2")
    );
    // xl's usb-list shows the vanished device's port as empty.
    let (_, out) = run_xl(&host.env(), "xl usb-list 1");
    assert!(out.contains("  Port 1:\n"), "{out}");
    assert!(out.contains("  Port 2: Bus 001 Device 003\n"), "{out}");
    // U2: detach by host identity works although sysfs no longer has it.
    ok(&host, "xl usbdev-detach 1 busid=1-1");
    assert_eq!(port(&host, p1).as_deref(), Some(""));
    assert_eq!(
        assign::lookup(
            &host.conn,
            TxId::NONE,
            &vusb_core::BusId::parse("1-1").unwrap()
        )
        .unwrap(),
        None
    );
    assert!(
        port(&host, "/libxl/usbback/1-1").is_none(),
        "driver memory left"
    );
    // And the xl form on another unplugged device.
    unplug(&host, "1-2");
    ok(&host, "xl usbdev-detach 1 0 2");
    assert_eq!(
        port(&host, "/local/domain/0/backend/vusb/1/0/port/2").as_deref(),
        Some("")
    );
    assert!(assign::list(&host.conn, TxId::NONE).unwrap().is_empty());
}

#[test]
fn usb_release_clears_one_domain_and_leaves_the_others() {
    let host = SimHost::from_golden("pv", true, DriverConfig::default());
    ok(&host, "xl usbctrl-attach 1 ports=2");
    ok(&host, "xl usbdev-attach 1 hostbus=1 hostaddr=2");
    ok(&host, "xl usbdev-attach 1 hostbus=1 hostaddr=3");
    ok(&host, "xl usbdev-attach 1 hostbus=1 hostaddr=4"); // creates controller 1
    ok(&host, "xl usbctrl-attach 2 type=qusb");
    ok(&host, "xl usbdev-attach 2 hostbus=1 hostaddr=5");
    let before_other: Vec<String> = dump(&host.conn)
        .lines()
        .filter(|l| l.contains("/2/") || l.contains("/domain/2"))
        .map(str::to_owned)
        .collect();
    let dom = vusb_core::domain::resolve(&host.conn, "1").unwrap();
    let released = usb_release(&host.env(), &dom).unwrap();
    host.settle();
    assert_eq!(released.controllers, vec![0, 1]);
    let after = dump(&host.conn);
    for gone in [
        "/libxl/1/device/vusb",
        "/local/domain/1/device/vusb",
        "/local/domain/0/backend/vusb",
    ] {
        assert!(
            !after.contains(&format!("{gone} ")),
            "{gone} left:\n{after}"
        );
    }
    // libxl keeps the emptied `/libxl/usbback` itself; no device memory.
    assert!(
        !after.contains("/libxl/usbback/"),
        "driver memory left:\n{after}"
    );
    let recs = assign::list(&host.conn, TxId::NONE).unwrap();
    assert_eq!(recs.len(), 1, "{recs:?}");
    assert_eq!(recs[0].domid, 2);
    let after_other: Vec<String> = after
        .lines()
        .filter(|l| l.contains("/2/") || l.contains("/domain/2"))
        .map(str::to_owned)
        .collect();
    assert_eq!(before_other, after_other);
    // Nothing left to release: a second run is a no-op.
    let again = usb_release(&host.env(), &dom).unwrap();
    assert!(again.controllers.is_empty() && again.stale_records.is_empty());
}

#[test]
fn usb_release_cleans_records_whose_controller_vanished() {
    let host = SimHost::from_golden("qusb", true, DriverConfig::default());
    ok(&host, "xl usbctrl-attach 2 type=qusb");
    ok(&host, "xl usbdev-attach 2 hostbus=1 hostaddr=2");
    // The controller disappears behind vusb's back (e.g. xl destroy).
    host.conn.rm(TxId::NONE, "/libxl/2/device/vusb").unwrap();
    let dom = vusb_core::domain::resolve(&host.conn, "2").unwrap();
    let released = usb_release(&host.env(), &dom).unwrap();
    assert_eq!(
        released.stale_records,
        vec![vusb_core::BusId::parse("1-1").unwrap()]
    );
    assert!(assign::list(&host.conn, TxId::NONE).unwrap().is_empty());
}

#[test]
fn device_on_usbback_without_record_is_refused() {
    let host = SimHost::from_golden("pv", true, DriverConfig::default());
    ok(&host, "xl usbctrl-attach 1 ports=2");
    // Another toolstack (xl) handed 1-1 to usbback: no vusb record.
    let root = &host.paths.sysfs_root;
    vusb_host::bind::unbind(root, "1-1:1.0").unwrap();
    vusb_host::bind::bind(root, "usbback", "1-1:1.0").unwrap();
    host.settle();
    let before = dump(&host.conn);
    let (rc, _) = run_xl(&host.env(), "xl usbdev-attach 1 hostbus=1 hostaddr=2");
    assert_eq!(rc, 1);
    assert_eq!(dump(&host.conn), before);
    // Its own devices are unaffected.
    ok(&host, "xl usbdev-attach 1 hostbus=1 hostaddr=3");
}

/// Regression: `xl usbdev-detach` of a device vusb attached clears only the
/// port node (xl knows nothing of `/vusb`). The record left behind must not
/// make vusb refuse the device afterwards ("already attached").
#[test]
fn record_left_by_xl_detach_is_stale_and_released() {
    let host = SimHost::from_golden("qusb", true, DriverConfig::default());
    ok(&host, "xl usbctrl-attach 2 type=qusb ports=2");
    ok(&host, "xl usbdev-attach 2 hostbus=1 hostaddr=2");
    let p1 = "/local/domain/0/backend/qusb/2/0/port/1";
    assert_eq!(port(&host, p1).as_deref(), Some("1-1"));
    assert!(
        assign::lookup(
            &host.conn,
            TxId::NONE,
            &vusb_core::BusId::parse("1-1").unwrap()
        )
        .unwrap()
        .is_some()
    );
    // What xl 4.17's usbdev-detach does for qusb: the port node only.
    host.conn.write(TxId::NONE, p1, b"").unwrap();
    ok(
        &host,
        "xl usbdev-attach 2 hostbus=1 hostaddr=2 controller=0 port=2",
    );
    let rec = assign::lookup(
        &host.conn,
        TxId::NONE,
        &vusb_core::BusId::parse("1-1").unwrap(),
    )
    .unwrap()
    .expect("new record");
    assert_eq!((rec.domid, rec.ctrl, rec.port), (2, 0, 2));
    assert_eq!(
        port(&host, "/local/domain/0/backend/qusb/2/0/port/2").as_deref(),
        Some("1-1")
    );
    // A live record still refuses a second attach.
    let (rc, _) = run_xl(&host.env(), "xl usbdev-attach 2 hostbus=1 hostaddr=2");
    assert_eq!(rc, 1);
}
