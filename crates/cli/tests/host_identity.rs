//! End-to-end tests of issue 12's selections and checks with the built
//! `vusb` on a fake Xen host (`vusb_testsupport::fakehost`: the real C
//! xenstored, the simulated usbback/usbfront), whose sysfs gets an xHCI
//! with Intel-like USB2/USB3 peers, an external USB3 hub, a webcam with
//! isochronous endpoints and a storage stick that also presents a
//! keyboard (`vusb_testsupport::sysfs` fixture builder); vusb reads that
//! tree through the FUSE sysfs (`vusb_testsupport::fusesys`), which binds
//! and unbinds like the kernel:
//!
//! * `physport=` attaches and detaches the device in a connector,
//!   whichever half it enumerated on, with the SuperSpeed notice;
//! * a subtree (`physport=…/4.*`) with several devices is refused and an
//!   interface filter narrows it to one; hubs are never attached;
//! * `with-interface=` / `without-interface=` refuse a composite device;
//! * a device with isochronous endpoints is refused on a pv controller
//!   (reason and suggestion on stderr), `--force` attaches it;
//! * a config file's `usbdev=` selects by the same keys (`config-apply`).
//!
//! Every refusal must exit 1 and leave xenstore, the sysfs bindings and
//! libxl's JSON as they were. Fails under `CI=true` when the fake host or
//! FUSE is missing, skips with a reason otherwise.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeMap;
use std::path::Path;

use vusb_testsupport::fakehost::{FakeHost, FakeHostConfig, require_or_skip};
use vusb_testsupport::fusesys::{self, FuseSys};
use vusb_testsupport::sysfs::{Descriptors, DeviceSpec, IntfSpec, SysfsTree};

const BIN: &str = env!("CARGO_BIN_EXE_vusb");
const XHCI: &str = "0000:00:14.0";

/// The fake host with, on buses 3 (USB2, 6 ports) and 4 (USB3, 4 ports)
/// of xHCI 0000:00:14.0 (SS 1 ↔ HS 3, SS 2 ↔ HS 4):
/// - `4-1`: SuperSpeed stick in connector 3;
/// - `3-4` + `4-2`: a USB3 hub in connector 4, with a keyboard on `3-4.1`
///   and a SuperSpeed disk on `4-2.3`;
/// - `3-2`: a webcam (isochronous endpoint in alternate setting 1);
/// - `3-5`: a "stick" with a mass-storage and a keyboard interface.
fn host() -> Option<Bed> {
    if !fusesys::available() {
        return None;
    }
    let host = require_or_skip("host_identity", FakeHost::start(&FakeHostConfig::default()))?;
    let t = SysfsTree::at(host.root()).unwrap();
    t.root_hub(3, XHCI, "2.00", 6).unwrap();
    t.root_hub(4, XHCI, "3.10", 4).unwrap();
    for (ss, hs) in [(1, 3), (2, 4)] {
        t.peer("usb3", hs, "usb4", ss).unwrap();
    }
    let storage = || IntfSpec::new(8, Some("usb-storage")).sub(6, 0x50);
    t.device(
        "4-1",
        &DeviceSpec::new(2, 0x0951, 0x1666)
            .strings("Kingston", "DataTraveler 3.0", Some("SS-STICK"))
            .speed("5000", "3.00")
            .intf(storage()),
    )
    .unwrap();
    t.device("3-4", &DeviceSpec::hub(3, 0x2109, 0x2817))
        .unwrap();
    t.device(
        "4-2",
        &DeviceSpec::hub(3, 0x2109, 0x0817).speed("5000", "3.10"),
    )
    .unwrap();
    for p in 1..=4 {
        t.peer("3-4", p, "4-2", p).unwrap();
    }
    t.device(
        "3-4.1",
        &DeviceSpec::new(4, 0x046d, 0xc31c)
            .speed("1.5", "1.10")
            .intf(IntfSpec::new(3, Some("usbhid")).sub(1, 1)),
    )
    .unwrap();
    t.device(
        "4-2.3",
        &DeviceSpec::new(4, 0x04e8, 0x4001)
            .strings("Samsung", "PSSD T7", Some("SSD"))
            .speed("5000", "3.20")
            .intf(storage()),
    )
    .unwrap();
    t.device(
        "3-2",
        &DeviceSpec::new(5, 0x046d, 0x085c)
            .strings("Logitech", "C922 Pro Stream Webcam", None)
            .intf(IntfSpec::new(0x0e, Some("usbhid")).sub(1, 0))
            .intf(IntfSpec::new(0x0e, Some("usbhid")).sub(2, 0)),
    )
    .unwrap();
    let cam = Descriptors::new(0x046d, 0x085c)
        .interface(0, 0, 0x0e, 1, 0)
        .endpoint(0x87, 3)
        .interface(1, 0, 0x0e, 2, 0)
        .interface(1, 1, 0x0e, 2, 0)
        .endpoint(0x81, 5)
        .bytes();
    t.descriptors("3-2", &cam).unwrap();
    t.device(
        "3-5",
        &DeviceSpec::new(6, 0x1234, 0x5678)
            .intf(storage())
            .intf(IntfSpec::new(3, Some("usbhid")).sub(1, 1)),
    )
    .unwrap();
    let fuse = FuseSys::mount(&t.root()).unwrap();
    Some(Bed { host, fuse })
}

/// The fake host, and the FUSE copy of its sysfs that vusb uses.
struct Bed {
    host: FakeHost,
    fuse: FuseSys,
}

#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    xenstore: String,
    rebinds: usize,
    json: BTreeMap<String, String>,
}

fn snapshot(bed: &Bed) -> Snapshot {
    bed.host.settle();
    Snapshot {
        xenstore: bed.host.dump().unwrap(),
        rebinds: bed.fuse.log().len(),
        json: bed.host.json_files().unwrap(),
    }
}

fn vusb(bed: &Bed, args: &[&str]) -> (i32, String, String) {
    let out = bed
        .host
        .vusb_command(Path::new(BIN), args)
        .unwrap()
        .env("VUSB_SYSFS_ROOT", bed.fuse.root())
        .env("VUSB_BACKEND_TIMEOUT_MS", "2000")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `args` must fail (exit 1, nothing on stdout, `msg` on stderr) and
/// change nothing.
fn refused(host: &Bed, args: &[&str], msg: &str) {
    let before = snapshot(host);
    let (rc, out, err) = vusb(host, args);
    let after = snapshot(host);
    assert_eq!(rc, 1, "{args:?}: stderr {err}");
    assert!(out.is_empty(), "{args:?}: stdout {out:?}");
    assert!(err.contains(msg), "{args:?}: stderr {err:?} lacks {msg:?}");
    assert!(before == after, "{args:?} changed the host");
}

fn ok(host: &Bed, args: &[&str]) -> String {
    let (rc, _, err) = vusb(host, args);
    assert_eq!(rc, 0, "{args:?}: {err}");
    err
}

/// Whether some port of domain 1 holds `busid` (`usb-list --json`).
fn port_holds(host: &Bed, busid: &str) -> bool {
    let (rc, out, err) = vusb(host, &["usb-list", "1", "--json"]);
    assert_eq!(rc, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v["controllers"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| c["ports"].as_array().unwrap())
        .any(|p| p["busid"] == busid)
}

fn bed_driver(bed: &Bed, intf: &str) -> Option<String> {
    bed.fuse.driver_of(intf)
}

#[test]
fn listing_shows_one_physical_port_per_connector() {
    let Some(host) = host() else { return };
    let (rc, out, err) = vusb(&host, &["usb-assignable-list", "--all", "--json"]);
    assert_eq!(rc, 0, "{err}");
    let list: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    let port = |b: &str| {
        list.iter()
            .find(|e| e["busid"] == b)
            .unwrap_or_else(|| panic!("{b} not listed: {out}"))["physical_port"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(port("4-1"), format!("{XHCI}/3"));
    assert_eq!(port("3-4"), format!("{XHCI}/4"));
    assert_eq!(port("4-2"), format!("{XHCI}/4"));
    assert_eq!(port("4-2.3"), format!("{XHCI}/4.3"));
    assert_eq!(port("3-4.1"), format!("{XHCI}/4.1"));
    // The text table has the column too.
    let (_, text, _) = vusb(&host, &["usb-assignable-list"]);
    assert!(
        text.lines()
            .any(|l| l.starts_with("4-1 ") && l.contains(&format!("{XHCI}/3 "))),
        "{text}"
    );
}

#[test]
fn attach_and_detach_by_physical_port() {
    let Some(host) = host() else { return };
    ok(
        &host,
        &["usbctrl-attach", "1", "type=pv", "version=2", "ports=4"],
    );
    let err = ok(
        &host,
        &["usbdev-attach", "1", &format!("physport={XHCI}/3")],
    );
    assert!(port_holds(&host, "4-1"), "4-1 not attached");
    assert_eq!(bed_driver(&host, "4-1:1.0").as_deref(), Some("usbback"));
    assert!(
        err.contains("vusb: notice: 4-1 is a SuperSpeed device; on USB2 controller 0 of domain 1 it will run at high speed"),
        "{err}"
    );
    ok(
        &host,
        &["usbdev-detach", "1", &format!("physport={XHCI}/3")],
    );
    assert!(!port_holds(&host, "4-1"), "4-1 still attached");
    assert_eq!(bed_driver(&host, "4-1:1.0").as_deref(), Some("usb-storage"));
    // A connector with nothing in it.
    refused(
        &host,
        &["usbdev-attach", "1", &format!("physport={XHCI}/6")],
        "USB device is not assignable.",
    );
    // Malformed: the grammar names the key and the expected form.
    refused(
        &host,
        &["usbdev-attach", "1", "physport=4-1"],
        "Invalid value `4-1' for `physport' in usbdev spec",
    );
}

#[test]
fn subtree_is_ambiguous_until_filtered_and_never_takes_the_hub() {
    let Some(host) = host() else { return };
    ok(
        &host,
        &["usbctrl-attach", "1", "type=pv", "version=2", "ports=4"],
    );
    let below = format!("physport={XHCI}/4.*");
    refused(
        &host,
        &["usbdev-attach", "1", &below],
        "USB device is not assignable.",
    );
    // The reason lists both devices below the hub, not the hub halves.
    let (_, _, err) = vusb(&host, &["-v", "usbdev-attach", "1", &below]);
    assert!(
        err.contains(&format!(
            "physical port {XHCI}/4.* matches several host USB devices: 3-4.1, 4-2.3"
        )),
        "{err}"
    );
    ok(&host, &["usbdev-attach", "1", &below, "with-interface=08"]);
    assert!(port_holds(&host, "4-2.3"));
    assert_eq!(bed_driver(&host, "4-2.3:1.0").as_deref(), Some("usbback"));
    assert!(!port_holds(&host, "3-4") && !port_holds(&host, "4-2"));
    // The hub's connector itself names the two hub halves: refused.
    refused(
        &host,
        &["usbdev-attach", "1", &format!("physport={XHCI}/4")],
        "USB device is not assignable.",
    );
}

#[test]
fn interface_filters_refuse_a_composite_device() {
    let Some(host) = host() else { return };
    ok(
        &host,
        &["usbctrl-attach", "1", "type=pv", "version=2", "ports=4"],
    );
    refused(
        &host,
        &[
            "usbdev-attach",
            "1",
            "busid=3-5",
            "without-interface=03:*:01",
        ],
        "USB device is not assignable.",
    );
    refused(
        &host,
        &["usbdev-attach", "1", "busid=3-5", "with-interface=08"],
        "USB device is not assignable.",
    );
    let (_, _, err) = vusb(
        &host,
        &[
            "-v",
            "usbdev-attach",
            "1",
            "busid=3-5",
            "without-interface=03:*:01",
        ],
    );
    assert!(
        err.contains("interface 3-5:1.1 (03:01:01) is excluded by without-interface=03:*:01"),
        "{err}"
    );
    refused(
        &host,
        &[
            "usbdev-attach",
            "1",
            "busid=3-5",
            "with-interface=mass-storage",
        ],
        "Invalid value `mass-storage' for `with-interface'",
    );
    // Without the filter the same device goes.
    ok(&host, &["usbdev-attach", "1", "busid=3-5"]);
    assert!(port_holds(&host, "3-5"));
}

#[test]
fn isochronous_device_refused_on_pv_unless_forced() {
    let Some(host) = host() else { return };
    ok(
        &host,
        &["usbctrl-attach", "1", "type=pv", "version=2", "ports=4"],
    );
    refused(
        &host,
        &["usbdev-attach", "1", "busid=3-2"],
        "USB device 3-2 has isochronous endpoint 81 of interface 1 (alternate setting 1)",
    );
    let (_, _, err) = vusb(&host, &["usbdev-attach", "1", "busid=3-2"]);
    assert!(
        err.contains(
            "which a pv controller cannot carry: attach it to a devicemodel controller with xHCI"
        ) && err.contains("or use --force"),
        "{err}"
    );
    // Without a controller: refused before one is created for it.
    let host2 = self::host().unwrap();
    refused(&host2, &["usbdev-attach", "1", "busid=3-2"], "isochronous");
    let err = ok(&host, &["usbdev-attach", "1", "busid=3-2", "--force"]);
    assert!(port_holds(&host, "3-2"));
    assert!(
        err.contains("isochronous"),
        "the forced attach warns: {err}"
    );
}

/// The unmodified binary under `umockdev-run` on the `peers-iso`
/// recording (`crates/host/tests/data`), against the fake host's real
/// xenstored: the webcam (isochronous endpoints only in the recorded
/// `descriptors`' alternate setting 1) and the audio adapter (recorded
/// without `descriptors`, an isochronous `ep_01` in its current setting)
/// are refused on a pv controller before anything is written.
#[test]
fn recorded_isochronous_devices_refused() {
    let ok_umockdev = std::process::Command::new("umockdev-run")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok_umockdev {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "umockdev-run is required in CI"
        );
        eprintln!("skipping: umockdev-run is not installed");
        return;
    }
    let Some(bed) = host() else { return };
    ok(
        &bed,
        &["usbctrl-attach", "1", "type=pv", "version=2", "ports=4"],
    );
    let recording =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../host/tests/data/peers-iso.umockdev");
    for (busid, endpoint) in [
        ("1-4.1", "endpoint 81 of interface 1 (alternate setting 1)"),
        ("1-2", "endpoint 01 of interface 1"),
    ] {
        let before = snapshot(&bed);
        let mut cmd = std::process::Command::new("umockdev-run");
        cmd.arg("-d").arg(&recording).arg("--").arg(BIN);
        cmd.args(["usbdev-attach", "1", &format!("busid={busid}")]);
        bed.host.vusb_env(&mut cmd);
        let out = cmd.env_remove("VUSB_SYSFS_ROOT").output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{busid}: {err}");
        assert!(
            err.contains(&format!("USB device {busid} has isochronous {endpoint}")),
            "{busid}: {err}"
        );
        assert!(
            snapshot(&bed) == before,
            "{busid}: the refusal changed the host"
        );
    }
}

/// The same selections in a config file (`config-apply`): a subtree with
/// an interface filter, and a connector.
#[test]
fn config_file_selects_by_physical_port() {
    let Some(bed) = host() else { return };
    let cfg = bed.host.root().join("g1.cfg");
    std::fs::write(
        &cfg,
        format!(
            "usbctrl = [ 'type=pv,version=2,ports=4' ]\n\
             usbdev = [ 'physport={XHCI}/4.*, with-interface=08',\n\
                        'physport={XHCI}/3' ]\n"
        ),
    )
    .unwrap();
    let cfg = cfg.to_string_lossy().into_owned();
    let (rc, out, err) = vusb(&bed, &["config-apply", "1", &cfg]);
    assert_eq!(rc, 0, "{err}");
    assert!(
        out.contains("attached 4-2.3 at controller 0 port 1")
            && out.contains("attached 4-1 at controller 0 port 2"),
        "{out}"
    );
    assert!(port_holds(&bed, "4-2.3") && port_holds(&bed, "4-1"));
    // config-show parses the same file (libxl's JSON has no place for
    // vusb's selection keys; it shows the two host devices).
    let (rc, _, err) = vusb(&bed, &["config-show", &cfg]);
    assert_eq!(rc, 0, "{err}");
}
