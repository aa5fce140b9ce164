//! Constant cost: `vusb usbdev-attach` costs the same number of xenstore
//! requests on a host with 1 guest and with 100 guests, at most 15, counted
//! from the real xenstored's `-T` trace (libxl: 25 + 6·N). Also checks
//! that usb-list and usbdev-detach do not grow with the number of domains.
//!
//! Needs the real xenstored (harness): fails under `CI=true` when it cannot
//! start, skips with a reason otherwise.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use vusb_testsupport::fakehost::{FakeHost, FakeHostConfig, require_or_skip};
use vusb_testsupport::xlpeer;

const BIN: &str = env!("CARGO_BIN_EXE_vusb");

fn vusb(host: &FakeHost, args: &[&str]) -> xlpeer::Outcome {
    let cmd = host.vusb_command(Path::new(BIN), args).unwrap();
    xlpeer::run(host, cmd).unwrap()
}

/// Requests of (attach, list, detach) on a host with `n` pv guests whose
/// every guest already has a controller; the device goes to guest 1.
fn costs(n: u32) -> Option<(usize, usize, usize, usize)> {
    let config = FakeHostConfig {
        trace: true,
        ..FakeHostConfig::pv_guests(n)
    };
    let host = require_or_skip("real xenstored fake host", FakeHost::start(&config))?;
    for d in 1..=n {
        let o = vusb(&host, &["usbctrl-attach", &d.to_string()]);
        assert_eq!(o.rc, 0, "usbctrl-attach {d}: {}", o.stderr);
    }
    let a = vusb(&host, &["usbdev-attach", "1", "hostbus=1", "hostaddr=2"]);
    assert_eq!(a.rc, 0, "attach: {}", a.stderr);
    let l = vusb(&host, &["usb-list", "1"]);
    assert_eq!(l.rc, 0, "list: {}", l.stderr);
    assert!(
        l.stdout.contains("Port 1: Bus 001 Device 002"),
        "{}",
        l.stdout
    );
    let d = vusb(&host, &["usbdev-detach", "1", "0", "1"]);
    assert_eq!(d.rc, 0, "detach: {}", d.stderr);
    // The three-interface receiver: one driver memory write per interface.
    let a3 = vusb(&host, &["usbdev-attach", "1", "hostbus=1", "hostaddr=3"]);
    assert_eq!(a3.rc, 0, "attach 1-2: {}", a3.stderr);
    Some((
        a.requests.unwrap(),
        l.requests.unwrap(),
        d.requests.unwrap(),
        a3.requests.unwrap(),
    ))
}

#[test]
fn usbdev_attach_cost_is_flat_and_at_most_15() {
    let Some(one) = costs(1) else { return };
    let Some(hundred) = costs(100) else { return };
    eprintln!(
        "requests (attach, list, detach, attach 3 interfaces): 1 domain {one:?}, 100 domains {hundred:?}"
    );
    assert!(one.0 <= 15, "attach with 1 domain: {} requests", one.0);
    assert!(
        one.3 <= 15,
        "3-interface attach with 1 domain: {} requests",
        one.3
    );
    // xl's usbdev-detach costs 15-17 on the same host; vusb also releases
    // its record. A check on the hot path (e.g. for emulated devices) once
    // made it 19.
    assert!(one.2 <= 16, "detach with 1 domain: {} requests", one.2);
    assert_eq!(one, hundred, "cost grows with the number of domains");
}
