//! Values a guest can write, bounded (issue 10 item 4): the only node of
//! a guest's own (guest-writable) directories that vusb reads is its
//! frontend `state` (`usb-list`); it must come out as libxl's number
//! whatever the guest wrote — a value of the node quota's size, digits
//! beyond any integer, text, a sign — with bounded work, and a frontend
//! directory the guest filled with hundreds of nodes must not slow down
//! or break the controller's removal.
//!
//! Runs on the real C xenstored (testsupport's fake host) with a real guest
//! ring connection for domain 1. Fails under `CI=true` when the real
//! xenstored cannot start; skips with a reason otherwise.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use vusb_core::domain;
use vusb_core::ops::OpEnv;
use vusb_core::ops::usb_list::usb_list;
use vusb_core::ops::usbctrl_attach::usbctrl_attach;
use vusb_core::ops::usbctrl_detach::usbctrl_detach;
use vusb_testsupport::fakehost::{FakeHost, FakeHostConfig, require_or_skip};
use vusb_testsupport::ring::GuestConn;
use vusb_xenstore::{TxId, Xenstore, XenstoreExt};
use vusb_xlcfg::UsbCtrlSpec;

#[test]
fn guest_written_state_is_parsed_bounded_and_floods_do_not_hurt() {
    let Some(host) = require_or_skip(
        "real xenstored fake host",
        FakeHost::start(&FakeHostConfig::default()),
    ) else {
        return;
    };
    let xs = host.client().unwrap();
    let paths = host.paths();
    let mut env = OpEnv::new(&xs, &paths);
    env.timeouts.backend_connect = Duration::from_secs(3);
    env.timeouts.backend_close = Duration::from_secs(2);
    let d1 = domain::resolve(&xs, "1").unwrap();
    usbctrl_attach(&env, &d1, &UsbCtrlSpec::default()).unwrap();
    host.settle();

    let guest = GuestConn::introduce(&xs, &host.root().join("xs"), 1).unwrap();
    let fe = "/local/domain/1/device/vusb/0";
    let state = format!("{fe}/state");
    // The daemon's per-node quota for a guest is 2048 bytes.
    let long_digits = "7".repeat(2000);
    let long_text = "x".repeat(2000);
    let cases: &[(&str, i64)] = &[
        ("4", 4),
        ("  3", 3),
        ("6\n", 6),
        ("99999999999999999999", 999_999_999),
        (&long_digits, 777_777_777),
        (&long_text, 0),
        ("-1", 0),
        ("abc", 0),
        ("", 0),
    ];
    for (value, shown) in cases {
        guest.write(TxId::NONE, &state, value.as_bytes()).unwrap();
        let t0 = Instant::now();
        let list = usb_list(&env, &d1).unwrap();
        assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
        assert_eq!(list.controllers.len(), 1);
        assert_eq!(
            list.controllers[0].state,
            *shown,
            "state {:?}",
            &value[..value.len().min(20)]
        );
    }
    guest.rm(TxId::NONE, &state).unwrap();
    assert_eq!(usb_list(&env, &d1).unwrap().controllers[0].state, -1);

    // A flood of nodes in its frontend directory: vusb never lists it, and
    // removing the controller removes them in one request.
    for i in 0..300 {
        guest
            .write(TxId::NONE, &format!("{fe}/junk/n{i}"), b"j")
            .unwrap();
    }
    let t0 = Instant::now();
    assert_eq!(usb_list(&env, &d1).unwrap().controllers.len(), 1);
    usbctrl_detach(&env, &d1, 0, "0").unwrap();
    assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
    assert!(
        xs.read_opt(TxId::NONE, fe).unwrap().is_none(),
        "frontend left"
    );
    assert!(
        xs.directory_opt(TxId::NONE, "/libxl/1/device/vusb")
            .unwrap()
            .is_empty()
    );
}
