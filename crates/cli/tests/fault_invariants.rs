//! The invariant checker of the fault-injection suite
//! (`vusb_testsupport::invariants`) on hosts built by the real `vusb`:
//! a host where pv, qusb and devicemodel devices were attached and
//! detached normally shows no violation, and each invariant is reported
//! when its state is broken by hand (so the suite can fail).
//!
//! Runs on: the real C xenstored (testsupport harness), the simulated
//! usbback/usbfront, a fake QMP device model for the HVM guest, the FUSE
//! sysfs with kernel-like bind/unbind, the built `vusb` binary. Fails
//! under `CI=true` when one of them is missing, skips otherwise.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod fault_common;

use std::fs;

use fault_common::{Bed, show, three_guests};
use vusb_testsupport::invariants::{self, Invariant};
use vusb_xenstore::{TxId, Xenstore, XenstoreExt};

/// pv 1-2 (3 usbhid interfaces) on guest 1, qusb 1-3 on guest 2,
/// devicemodel 1-4 on guest 3 (controller created by the attach).
fn attach_all(bed: &Bed) {
    bed.ok(&["usbctrl-attach", "1", "type=pv"]);
    bed.ok(&["usbdev-attach", "1", "hostbus=1", "hostaddr=3"]);
    bed.ok(&["usbctrl-attach", "2", "type=qusb"]);
    bed.ok(&["usbdev-attach", "2", "hostbus=1", "hostaddr=4"]);
    bed.ok(&["usbdev-attach", "3", "hostbus=1", "hostaddr=5"]);
}

#[test]
fn normal_attach_and_detach_leave_no_violation() {
    let Some(bed) = Bed::start(&three_guests()) else {
        return;
    };
    assert_eq!(bed.check(), [], "clean host");
    attach_all(&bed);
    let v = bed.check();
    assert!(v.is_empty(), "after attaching:\n{}", show(&v));
    assert_eq!(bed.fs.driver_of("1-2:1.1").as_deref(), Some("usbback"));
    bed.ok(&["usbdev-detach", "1", "0", "1"]);
    bed.ok(&["usbdev-detach", "2", "0", "1"]);
    bed.ok(&["usbctrl-detach", "3", "0"]);
    bed.ok(&["usbctrl-detach", "1", "0"]);
    let v = bed.check();
    assert!(v.is_empty(), "after detaching:\n{}", show(&v));
    assert_eq!(bed.fs.driver_of("1-2:1.1").as_deref(), Some("usbhid"));
}

/// Break one thing, expect `want` among the violations, put it back,
/// expect a consistent host again.
fn broken(bed: &Bed, what: &str, want: Invariant, breakit: impl FnOnce(), repair: impl FnOnce()) {
    breakit();
    let v = bed.check();
    assert!(
        v.iter().any(|v| v.invariant == want),
        "{what}: no {want:?} violation among:\n{}",
        show(&v)
    );
    eprintln!("{what}:\n{}", show(&v));
    repair();
    let v = bed.check();
    assert!(v.is_empty(), "{what} repaired:\n{}", show(&v));
}

#[test]
fn each_invariant_is_detected() {
    let Some(bed) = Bed::start(&three_guests()) else {
        return;
    };
    attach_all(&bed);
    assert_eq!(bed.check(), []);
    let xs = bed.host.client().unwrap();
    let sys = bed.fs.root().join("bus/usb/drivers");
    let put = |p: &str, v: &str| xs.write_str(TxId::NONE, p, v).unwrap();
    let get = |p: &str| xs.read_opt(TxId::NONE, p).unwrap().unwrap();

    broken(
        &bed,
        "an interface unbound behind vusb's back",
        Invariant::Driver,
        || fs::write(sys.join("usbback/unbind"), "1-2:1.1").unwrap(),
        || fs::write(sys.join("usbback/bind"), "1-2:1.1").unwrap(),
    );

    let rec = get("/vusb/assigned/1-2");
    broken(
        &bed,
        "a port without its record",
        Invariant::PortRecord,
        || xs.rm(TxId::NONE, "/vusb/assigned/1-2").unwrap(),
        || put("/vusb/assigned/1-2", &rec),
    );

    broken(
        &bed,
        "a record whose controller does not exist",
        Invariant::Controller,
        || {
            put(
                "/vusb/assigned/1-5",
                "v1 domid=1 ctrl=7 port=1 type=pv hostbus=1 hostaddr=6",
            )
        },
        || xs.rm(TxId::NONE, "/vusb/assigned/1-5").unwrap(),
    );

    let port2 = "/local/domain/0/backend/vusb/1/0/port/2";
    broken(
        &bed,
        "a device on two ports",
        Invariant::Twice,
        || put(port2, "1-2"),
        || put(port2, ""),
    );

    let mem = "/libxl/usbback/1-2/1-2@1_0/driver_path";
    let drv = get(mem);
    broken(
        &bed,
        "driver memory lost",
        Invariant::DriverMemory,
        || xs.rm(TxId::NONE, mem).unwrap(),
        || put(mem, &drv),
    );

    let fe = "/local/domain/1/device/vusb/0/event-channel";
    broken(
        &bed,
        "a controller without its frontend",
        Invariant::Controller,
        || xs.rm(TxId::NONE, "/local/domain/1/device/vusb").unwrap(),
        || {
            for (k, v) in [
                ("backend", "/local/domain/0/backend/vusb/1/0"),
                ("backend-id", "0"),
                ("state", "4"),
            ] {
                put(&format!("/local/domain/1/device/vusb/0/{k}"), v);
            }
            put(fe, "20");
        },
    );

    let p = bed.host.paths();
    let json = fs::read_dir(&p.xen_lib_dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|f| f.to_string_lossy().contains("userdata-d.1."))
        .unwrap();
    let text = fs::read(&json).unwrap();
    broken(
        &bed,
        "libxl's JSON without the device",
        Invariant::LibxlJson,
        || {
            let t = String::from_utf8_lossy(&text).replace("\"usbdevs\"", "\"x_usbdevs\"");
            fs::write(&json, t).unwrap()
        },
        || fs::write(&json, &text).unwrap(),
    );

    let saved = p
        .state_dir
        .join("domains/00000000-0000-4000-8000-000000000001.json");
    let text = fs::read(&saved).unwrap();
    broken(
        &bed,
        "the saved configuration lost",
        Invariant::SavedConfig,
        || fs::remove_file(&saved).unwrap(),
        || fs::write(&saved, &text).unwrap(),
    );

    // usb-list is checked against xenstore: a listing that disagrees.
    let lying = |domid: u32| -> Result<String, String> {
        let o = bed.vusb(&["usb-list", "--json", &domid.to_string()]);
        Ok(String::from_utf8_lossy(&o.stdout).replace("\"1-2\"", "\"1-6\""))
    };
    let v = invariants::check(&xs, &bed.inv, Some(&lying));
    assert!(
        v.iter().any(|v| v.invariant == Invariant::UsbList),
        "{}",
        show(&v)
    );
}
