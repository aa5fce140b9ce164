//! End-to-end tests of the built `vusb` binary on the simulated host
//! (`vusb_sim::host`: vusb's in-memory xenstored on a Unix socket, fixture
//! sysfs, simulated usbback/usbfront): a devid, controller or port that is
//! not a number is refused with a message naming it, exit 1, and xenstore
//! unchanged. xl's `atoi` makes each of them 0 (`xl usbctrl-detach guest1
//! nan` removes controller 0 and its device, exit 0: issue 10); the same
//! cases against the real xl are in `xl_compat.rs` (BUG scenario N1).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::Sim;

fn host() -> Sim {
    support::pv_guests(&[1])
}

/// Waits until the pv controller's frontend and backend are connected, so
/// that the store no longer moves on its own.
fn settle(h: &Sim) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while h.dump().iter().any(|l| {
        l.starts_with("/local/")
            && l.contains("/vusb/")
            && l.contains("/state = ")
            && !l.ends_with("= 4")
    }) {
        assert!(
            std::time::Instant::now() < deadline,
            "never connected: {:?}",
            h.dump()
                .into_iter()
                .filter(|l| l.starts_with("/local/") && l.contains("/state = "))
                .collect::<Vec<_>>()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn non_numeric_devid_controller_or_port_is_refused_without_change() {
    let h = host();
    h.ok(&["usbctrl-attach", "1", "type=pv", "ports=2"]);
    h.ok(&["usbdev-attach", "1", "hostbus=1", "hostaddr=2"]);
    settle(&h);
    let before = h.dump();
    assert!(
        before.iter().any(|l| l.ends_with("/port/1 = 1-1")),
        "device attached at 0/1"
    );
    let cases: &[(&[&str], &str)] = &[
        (
            &["usbctrl-detach", "1", "nan"],
            "Invalid devid `nan': not a number",
        ),
        (
            &["usbctrl-detach", "1", ""],
            "Invalid devid `': not a number",
        ),
        (
            &["usbctrl-detach", "1", "0x0"],
            "Invalid devid `0x0': not a number",
        ),
        (
            &["usbctrl-detach", "1", "4294967296"],
            "Invalid devid `4294967296': out of range",
        ),
        (
            &["usbdev-detach", "1", "x", "1"],
            "Invalid controller `x': not a number",
        ),
        (
            &["usbdev-detach", "1", "0", ""],
            "Invalid port `': not a number",
        ),
        (
            &["usbdev-detach", "1", "", "1"],
            "Invalid controller `': not a number",
        ),
        (
            &["usbdev-detach", "1", "0", "1.0"],
            "Invalid port `1.0': not a number",
        ),
    ];
    for (args, msg) in cases {
        let o = h.run(args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
        assert_eq!(err.trim_end(), *msg, "{args:?}");
        assert_eq!(h.dump(), before, "{args:?} changed xenstore");
    }
    // Numbers as xl reads them still work: blanks and a sign.
    h.ok(&["usbdev-detach", "1", " 0", "+1"]);
    h.ok(&["usbctrl-detach", "1", "0 "]);
    assert!(!h.dump().iter().any(|l| l.contains("/device/vusb/0")));
}

/// usbdev specs: xl's sentinels are "any" (`controller=-1`, `port=0`),
/// other negative values are refused before anything is touched.
#[test]
fn usbdev_sentinels_and_negative_values() {
    let h = host();
    h.ok(&["usbctrl-attach", "1", "type=pv", "ports=2"]);
    settle(&h);
    let before = h.dump();
    for (args, msg) in [
        (
            ["usbdev-attach", "1", "hostbus=1", "hostaddr=2", "port=-1"],
            "Invalid port `-1' in usbdev spec: out of range (ports are numbered from 1; 0 means any port)",
        ),
        (
            [
                "usbdev-attach",
                "1",
                "hostbus=1",
                "hostaddr=2",
                "controller=-2",
            ],
            "Invalid controller `-2' in usbdev spec: out of range (a controller devid is 0 or more; -1 means any controller)",
        ),
    ] {
        let o = h.run(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains(msg), "{args:?}: {err}");
        assert_eq!(h.dump(), before, "{args:?} changed xenstore");
    }
    // controller=-1 port=0: any controller, any port (xl's meaning).
    h.ok(&[
        "usbdev-attach",
        "1",
        "hostbus=1",
        "hostaddr=2",
        "controller=-1",
        "port=0",
    ]);
    assert!(h.dump().iter().any(|l| l.ends_with("/port/1 = 1-1")));
}
