//! End-to-end tests of `vusb config-apply`, `config-apply --saved` and
//! `config-dump` with the built binary on the simulated host (vusb's
//! in-memory xenstored on a socket, fixture sysfs with kernel-like
//! bind/unbind, simulated usbback/usbfront): idempotence, all-or-nothing
//! on failure, bad files, and restoring a guest re-created under a new
//! domid from what vusb saved.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;

use support::Sim;
use vusb_sim::layout::uuid_of;
use vusb_xenstore::{TxId, XenstoreExt};

fn host() -> Sim {
    support::pv_guests(&[1, 3])
}

/// The store without vusb's own bookkeeping (`/vusb`) and without the
/// empty `/libxl/usbback` parent that any pv attach creates and detach,
/// like libxl, leaves in place (its children, the per-device driver
/// memory, do count).
fn state(h: &Sim) -> Vec<String> {
    h.dump()
        .into_iter()
        .filter(|l| !l.starts_with("/vusb") && l != "/libxl/usbback = ")
        .collect()
}

/// Makes domain `new` the re-creation of the guest that ran as `old`:
/// same uuid in `/local/domain/<new>/vm` and in the name of libxl's
/// stored configuration, as `xl create` leaves them.
fn recreate(h: &Sim, new: u32, old: u32) {
    h.xs()
        .write_str(
            TxId::NONE,
            &format!("/local/domain/{new}/vm"),
            &format!("/vm/{}", uuid_of(old)),
        )
        .unwrap();
    let dir = h.host.paths().xen_lib_dir;
    std::fs::rename(
        dir.join(format!("userdata-d.{new}.{}.libxl-json", uuid_of(new))),
        dir.join(format!("userdata-d.{new}.{}.libxl-json", uuid_of(old))),
    )
    .unwrap();
}

/// Waits until the simulated frontend and backend of every pv controller
/// have connected (state 4): they move on their own after an attach.
fn settle(h: &Sim) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let pending = h
            .dump()
            .into_iter()
            .filter(|l| {
                l.contains("/vusb/") && l.contains("/backend/") || l.contains("/device/vusb/")
            })
            .filter(|l| l.starts_with("/local/") && l.contains("/state = "))
            .any(|l| !l.ends_with("= 4"));
        if !pending {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "pv controllers never connected"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Lines only in `a` or only in `b`.
fn diff(a: &[String], b: &[String]) -> Vec<String> {
    let mut d: Vec<String> = a
        .iter()
        .filter(|l| !b.contains(l))
        .map(|l| format!("- {l}"))
        .collect();
    d.extend(
        b.iter()
            .filter(|l| !a.contains(l))
            .map(|l| format!("+ {l}")),
    );
    d
}

const CFG: &str = "\
name = 'guest1'
usbctrl = [ 'type=pv,version=2,ports=4' ]
usbdev = [ 'hostbus=1,hostaddr=2,controller=0,port=1',
           'hostbus=1, hostaddr=4' ]
";

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap()
}

#[test]
fn applies_in_order_and_twice_changes_nothing() {
    let h = host();
    let cfg = h.file("g1.cfg", CFG);
    let out = h.ok(&["config-apply", "1", &cfg]);
    assert_eq!(
        out,
        "created controller 0\nattached 1-1 at controller 0 port 1\nattached 1-3 at controller 0 port 2\n"
    );
    settle(&h);
    let list = h.ok(&["usb-list", "1"]);
    assert!(list.contains("  Port 1: Bus 001 Device 002\n"), "{list}");
    assert!(list.contains("  Port 2: Bus 001 Device 004\n"), "{list}");
    assert_eq!(list.matches("Devid").count(), 1, "one controller: {list}");

    let before = h.dump();
    let out = h.ok(&["config-apply", "1", &cfg]);
    assert_eq!(out, "already present: 1 controller(s), 2 device(s)\n");
    assert_eq!(h.dump(), before, "second run changed the store");
    assert_eq!(h.ok(&["usb-list", "1"]), list);

    // Controller 0 exists with 4 ports: a file asking for 8 keeps it and
    // says so.
    let other = h.file("g1-8.cfg", "usbctrl = [ 'type=pv,ports=8' ]\n");
    let o = h.run(&["config-apply", "1", &other]);
    assert!(o.status.success());
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "already present: 1 controller(s), 0 device(s)\n"
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("controller 0 is pv v2 with 4 ports, not `type=pv,ports=8'; kept as it is"),
        "{err}"
    );
    assert_eq!(h.dump(), before);

    let dumped = json(&h.ok(&["config-dump", "1"]));
    assert_eq!(
        dumped["usbctrls"],
        json(r#"[{"type":"pv","devid":0,"version":2,"ports":4}]"#)
    );
    let devs = dumped["usbdevs"].as_array().unwrap();
    assert_eq!(devs.len(), 2);
    assert_eq!(devs[0]["ctrl"], 0);
    assert_eq!(devs[0]["port"], 1);
    assert_eq!(
        devs[0]["type.hostdev"],
        json(r#"{"hostbus":1,"hostaddr":2}"#)
    );
    assert_eq!(devs[0]["vusb"]["busid"], "1-1");
    assert_eq!(devs[1]["port"], 2);
    assert_eq!(devs[1]["vusb"]["busid"], "1-3");
}

#[test]
fn a_failing_step_undoes_everything() {
    let h = host();
    let before = state(&h);
    // Both devices exist, but the second wants the port the first took:
    // the controller and the first device are in place when it fails.
    let cfg = h.file(
        "clash.cfg",
        "usbctrl=['type=pv,ports=4']\n\
         usbdev=['hostbus=1,hostaddr=2,controller=0,port=1','hostbus=1,hostaddr=4,controller=0,port=1']\n",
    );
    let o = h.run(&["config-apply", "1", &cfg]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.starts_with("vusb config-apply: "), "{err}");
    assert!(
        err.contains(
            "clash.cfg:2:52: applying usbdev 1 \
             (type=hostdev,hostbus=1,hostaddr=4,controller=0,port=1) failed: "
        ),
        "{err}"
    );
    assert!(err.contains("The controller port isn't available"), "{err}");
    assert!(o.stdout.is_empty());
    let d = diff(&before, &state(&h));
    assert!(d.is_empty(), "partial work left behind: {d:#?}");
    assert_eq!(h.ok(&["usb-list", "1"]), "");
    // The stick is free again: another guest can take it.
    h.ok(&["usbdev-attach", "3", "hostbus=1", "hostaddr=2"]);
}

#[test]
fn bad_input_is_refused_before_any_change() {
    let h = host();
    let before = state(&h);
    let cases = [
        (
            "syntax.cfg",
            "usbctrl=['type=pv'] usbdev=[]\n",
            "syntax.cfg:1:21: syntax error",
        ),
        (
            "key.cfg",
            "usbdev=['hostbus=1,speed=2']\n",
            "key.cfg:1:9: Unknown string `speed=2' in usbdev spec",
        ),
        (
            "port.cfg",
            "usbctrl=['']\nusbdev=['hostbus=1,hostaddr=2,controller=0,port=x']\n",
            "port.cfg:2:9: Invalid port `x' in usbdev spec: not a number (in `usbdev')",
        ),
        (
            "undef.cfg",
            "usbctrl=['type=pv']\nusbdev=['hostbus=1,hostaddr=2,controller=5']\n",
            "undef.cfg:2:9: usbdev 0 names controller 5, which neither the configuration nor the guest has",
        ),
        (
            "absent.cfg",
            "usbctrl=['type=pv']\nusbdev=['hostbus=1,hostaddr=2','hostbus=9,hostaddr=9']\n",
            "absent.cfg:2:32: applying usbdev 1 (type=hostdev,hostbus=9,hostaddr=9) failed: USB device is not assignable.",
        ),
        (
            "tablet.cfg",
            "usbdev=['type=tablet']\n",
            "tablet.cfg:1:9: usbdev 0 has type tablet, which config-apply cannot add to a Xen guest",
        ),
    ];
    for (name, text, expected) in cases {
        let cfg = h.file(name, text);
        let o = h.run(&["config-apply", "1", &cfg]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{name}: {err}");
        assert!(err.contains(expected), "{name}: {err}");
        let d = diff(&before, &state(&h));
        assert!(d.is_empty(), "{name} changed the store: {d:#?}");
    }
    let o = h.run(&["config-apply", "1"]);
    assert_eq!(o.status.code(), Some(2));
    let o = h.run(&["config-apply", "1", "/nonexistent.cfg"]);
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn a_recreated_guest_gets_its_devices_back_with_saved() {
    let h = host();
    let cfg = h.file("g1.cfg", CFG);
    h.ok(&["config-apply", "1", &cfg]);
    settle(&h);
    let list1 = h.ok(&["usb-list", "1"]);

    // Domain 1 goes away (vusb cleans up as libxl's destroy does) and the
    // same guest (same uuid) comes back as domain 3.
    h.ok(&["usb-release", "1"]);
    assert_eq!(h.ok(&["usb-list", "1"]), "");
    let o = h.run(&["config-dump", "3"]);
    assert_eq!(o.status.code(), Some(1), "domain 3 has nothing saved yet");
    assert!(String::from_utf8_lossy(&o.stderr).contains("no saved USB configuration for domain 3"));
    recreate(&h, 3, 1);

    let dump_before = json(&h.ok(&["config-dump", "3"]));
    let out = h.ok(&["config-apply", "3", "--saved"]);
    assert_eq!(
        out,
        "created controller 0\nattached 1-1 at controller 0 port 1\nattached 1-3 at controller 0 port 2\n"
    );
    settle(&h);
    assert_eq!(h.ok(&["usb-list", "3"]), list1);
    // Applying the saved configuration again changes nothing.
    assert_eq!(
        h.ok(&["config-apply", "3", "--saved"]),
        "already present: 1 controller(s), 2 device(s)\n"
    );
    assert_eq!(json(&h.ok(&["config-dump", "3"])), dump_before);
    let saved = h
        .host
        .paths()
        .state_dir
        .join(format!("domains/{}.json", uuid_of(1)));
    let doc = json(&std::fs::read_to_string(&saved).unwrap());
    assert_eq!(doc["vusb"]["domid"], 3);
    assert!(Path::new(&saved).exists());
}

#[test]
fn hot_plugged_devices_are_saved_and_restored() {
    let h = host();
    h.ok(&["usbctrl-attach", "1", "type=pv", "ports=2"]);
    h.ok(&["usbdev-attach", "1", "hostbus=1", "hostaddr=2"]);
    h.ok(&["usbdev-attach", "1", "hostbus=1", "hostaddr=4"]);
    // No free port left: usbdev-attach creates controller 1 for it.
    h.ok(&["usbdev-attach", "1", "hostbus=1", "hostaddr=5"]);
    h.ok(&["usbdev-detach", "1", "0", "2"]);
    let busids = |v: &serde_json::Value| -> Vec<String> {
        v["usbdevs"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|d| d["vusb"]["busid"].as_str().unwrap_or("").to_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    let devids = |v: &serde_json::Value| -> Vec<i64> {
        v["usbctrls"]
            .as_array()
            .map(|a| a.iter().filter_map(|c| c["devid"].as_i64()).collect())
            .unwrap_or_default()
    };
    let saved = json(&h.ok(&["config-dump", "1"]));
    assert_eq!(devids(&saved), [0, 1]);
    assert_eq!(busids(&saved), ["1-1", "1-4"], "detached 1-3 is forgotten");

    // Destroyed (released, which keeps the saved configuration) and
    // re-created as domain 3.
    h.ok(&["usb-release", "1"]);
    assert_eq!(json(&h.ok(&["config-dump", "1"])), saved);
    recreate(&h, 3, 1);
    let out = h.ok(&["config-apply", "3", "--saved"]);
    assert_eq!(
        out,
        "created controller 0\ncreated controller 1\n\
         attached 1-1 at controller 0 port 1\nattached 1-4 at controller 1 port 1\n"
    );
    settle(&h);
    let list = h.ok(&["usb-list", "3"]);
    assert!(
        list.contains("  Port 1: Bus 001 Device 002\n  Port 2:\n"),
        "{list}"
    );
    assert!(list.contains("  Port 1: Bus 001 Device 005\n"), "{list}");

    // An explicit controller detach forgets the controller and its devices.
    h.ok(&["usbctrl-detach", "3", "1"]);
    let saved = json(&h.ok(&["config-dump", "3"]));
    assert_eq!(devids(&saved), [0]);
    assert_eq!(busids(&saved), ["1-1"]);
}
