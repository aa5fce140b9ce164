//! An attach waits until udevd has announced the device (QEMU's libusb
//! knows only the devices udevd announced; QEMU 7.2's xen-usb aborts when
//! a guest talks to a port whose device it could not open: see
//! `vusb_host::udev`). End to end with the built binary on the simulated
//! host (guest2: PV with a qusb controller), udevd played by the test: its
//! runtime directory (`VUSB_UDEV_DIR`) with a `control` socket file, a
//! `queue` file while it has events to process and, when the device is
//! announced, its database entry `data/c189:<minor>`.
//! The real udevd is exercised on the real Xen bed (`xenbed_daemon`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use support::{Sim, start, stderr};

/// Device 1-1 of the simulated host is bus 1, address 2: minor 1.
const ENTRY_1_1: &str = "data/c189:1";

fn udev_dir(sim: &Sim) -> PathBuf {
    let d = sim.root().join("run/udev");
    std::fs::create_dir_all(d.join("data")).unwrap();
    std::fs::write(d.join("control"), "").unwrap();
    d
}

/// The qusb controller of guest2, connected (its simulated frontend
/// answers asynchronously).
fn qusb_controller(sim: &Sim) {
    sim.ok(&["usbctrl-attach", "guest2", "type=qusb", "ports=2"]);
    let t = Instant::now();
    while sim.node("/local/domain/2/device/vusb/0/state").as_deref() != Some("4") {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "usbfront never connected"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn attach(sim: &Sim, udev: &Path) -> std::process::Output {
    sim.cmd(&["usbdev-attach", "guest2", "busid=1-1"])
        .env("VUSB_UDEV_DIR", udev)
        .output()
        .unwrap()
}

#[test]
fn a_device_a_busy_udevd_never_announced_is_refused_and_nothing_changes() {
    let sim = start();
    qusb_controller(&sim);
    let udev = udev_dir(&sim);
    std::fs::write(udev.join("queue"), "").unwrap();
    let before = sim.dump();
    let t = Instant::now();
    let out = attach(&sim, &udev);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("udev has not announced 1-1 after"),
        "{}",
        stderr(&out)
    );
    assert!(t.elapsed() >= Duration::from_secs(5), "{:?}", t.elapsed());
    assert_eq!(sim.dump(), before, "the refused attach changed xenstore");
    assert_eq!(sim.port(2, "qusb", 1), None);
}

#[test]
fn an_attach_waits_for_the_announcement_then_proceeds() {
    let sim = start();
    qusb_controller(&sim);
    let udev = udev_dir(&sim);
    let entry = udev.join(ENTRY_1_1);
    let queue = udev.join("queue");
    std::fs::write(&queue, "").unwrap();
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        std::fs::write(entry, "E:ID_VENDOR_ID=0781\n").unwrap();
        std::fs::remove_file(queue).unwrap();
    });
    let t = Instant::now();
    let out = attach(&sim, &udev);
    writer.join().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        t.elapsed() >= Duration::from_millis(1500),
        "did not wait: {:?}",
        t.elapsed()
    );
    assert_eq!(sim.port(2, "qusb", 1).as_deref(), Some("1-1"));
}

#[test]
fn without_udevd_or_with_an_old_announcement_nothing_is_awaited() {
    let sim = start();
    qusb_controller(&sim);
    // A udev directory without the control socket: udevd does not run.
    let idle = sim.root().join("run/no-udevd");
    std::fs::create_dir_all(&idle).unwrap();
    let out = attach(&sim, &idle);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    sim.ok(&["usbdev-detach", "guest2", "busid=1-1"]);
    // udevd runs, idle, without an entry for the device (it predates
    // udevd): the attach goes on after a second.
    let udev = udev_dir(&sim);
    let t = Instant::now();
    let out = attach(&sim, &udev);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(t.elapsed() >= Duration::from_secs(1), "{:?}", t.elapsed());
    sim.ok(&["usbdev-detach", "guest2", "busid=1-1"]);
    // udevd runs and announced the device long ago.
    let udev = udev_dir(&sim);
    std::fs::write(udev.join(ENTRY_1_1), "").unwrap();
    std::thread::sleep(Duration::from_millis(150));
    let t = Instant::now();
    let out = attach(&sim, &udev);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    assert_eq!(sim.port(2, "qusb", 1).as_deref(), Some("1-1"));
}
