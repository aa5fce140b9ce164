//! `usbdev-detach <dom> KEY=VALUE...` on Xen by every identity
//! usbdev-attach takes (busid, vendor/product[/serial], hostbus/hostaddr,
//! port path), also after the device was unplugged (resolved from vusb's
//! records under `/vusb/assigned`). End to end with the built binary on
//! the simulated host (guest2: PV with a qusb controller).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::{start, stderr};

fn qusb_guest2(sim: &support::Sim) {
    sim.ok(&["usbctrl-attach", "guest2", "type=qusb", "ports=4"]);
}

#[test]
fn detach_by_every_identity_while_present() {
    let sim = start();
    qusb_guest2(&sim);
    sim.ok(&["usbdev-attach", "guest2", "busid=1-2"]);
    sim.ok(&["usbdev-attach", "guest2", "busid=1-1"]);
    sim.ok(&["usbdev-attach", "guest2", "busid=1-3"]);
    sim.ok(&["usbdev-attach", "guest2", "busid=1-4"]);
    assert_eq!(sim.port(2, "qusb", 1).as_deref(), Some("1-2"));
    // 1-2 is 046d:c52b, 1-1 is bus 1 addr 2, 1-3 by its port path as
    // usb-assignable-list --json prints it, 1-4 by portpath= + hostbus=.
    sim.ok(&["usbdev-detach", "guest2", "vendor=046d", "product=c52b"]);
    assert_eq!(sim.port(2, "qusb", 1), None);
    sim.ok(&["usbdev-detach", "guest2", "hostbus=1", "hostaddr=2"]);
    assert_eq!(sim.port(2, "qusb", 2), None);
    sim.ok(&["usbdev-detach", "guest2", "portpath=usb1-3"]);
    assert_eq!(sim.port(2, "qusb", 3), None);
    sim.ok(&["usbdev-detach", "guest2", "hostbus=1", "portpath=4"]);
    assert_eq!(sim.port(2, "qusb", 4), None);
    assert_eq!(sim.node("/vusb/assigned/1-4"), None);
}

#[test]
fn detach_by_identity_after_unplug_uses_the_records() {
    let sim = start();
    qusb_guest2(&sim);
    sim.ok(&["usbdev-attach", "guest2", "hostbus=1", "hostaddr=3"]);
    sim.ok(&["usbdev-attach", "guest2", "busid=1-4"]);
    sim.ok(&["usbdev-attach", "guest2", "busid=1-1"]);
    let rec = sim.node("/vusb/assigned/1-2").unwrap();
    assert!(rec.contains(" vendor=046d product=c52b"), "{rec}");
    sim.unplug("1-2");
    sim.unplug("1-4");
    sim.unplug("1-1");
    sim.ok(&["usbdev-detach", "guest2", "vendor=46d", "product=0xc52b"]);
    assert_eq!(sim.port(2, "qusb", 1), None);
    assert_eq!(sim.node("/vusb/assigned/1-2"), None);
    sim.ok(&["usbdev-detach", "guest2", "hostbus=1", "hostaddr=5"]);
    assert_eq!(sim.port(2, "qusb", 2), None);
    sim.ok(&["usbdev-detach", "guest2", "portpath=1-1"]);
    assert_eq!(sim.port(2, "qusb", 3), None);
}

#[test]
fn detach_of_a_device_not_attached_names_it() {
    let sim = start();
    qusb_guest2(&sim);
    sim.ok(&["usbdev-attach", "guest2", "busid=1-2"]);
    let o = sim.fails(
        &["usbdev-detach", "guest2", "vendor=1234", "product=0003"],
        1,
    );
    let e = stderr(&o);
    assert!(e.contains("no device 1-4 attached to domain 2"), "{e}");
    let o = sim.fails(
        &["usbdev-detach", "guest2", "vendor=1234", "product=0099"],
        1,
    );
    let e = stderr(&o);
    assert!(
        e.contains("no device vendor:product 1234:0099 attached to domain 2"),
        "{e}"
    );
    // Nothing changed.
    assert_eq!(sim.port(2, "qusb", 1).as_deref(), Some("1-2"));
    // xl's numeric form still is xl's.
    let o = sim.fails(&["usbdev-detach", "guest2", "0", "1", "2"], 1);
    assert_eq!(stderr(&o).lines().next(), Some("Invalid arguments."));
}
