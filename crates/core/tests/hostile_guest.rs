//! A hostile guest (issue 6 item 12, libxl's XSA-178 hardening): with a
//! real guest connection to the real xenstored (the harness's ring), the
//! guest writes garbage into its frontend directory — absurd states,
//! backend pointers to another domain, huge values, fake controllers,
//! deleted nodes — and vusb's operations still only act on the guest's own
//! nodes, never touch another domain, never bind or unbind a device the
//! user did not name, and never hang. The guest also cannot read or write
//! `/vusb`, `/libxl` or its backend directory.
//!
//! Fails under `CI=true` when the real xenstored cannot start; skips with
//! a reason otherwise.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use vusb_core::domain;
use vusb_core::ops::OpEnv;
use vusb_core::ops::usb_list::usb_list;
use vusb_core::ops::usbctrl_attach::usbctrl_attach;
use vusb_core::ops::usbctrl_detach::usbctrl_detach;
use vusb_core::ops::usbdev_attach::usbdev_attach;
use vusb_core::ops::usbdev_detach::{DetachTarget, usbdev_detach};
use vusb_sim::bindemu::BindEmulation;
use vusb_testsupport::fakehost::{FakeHost, FakeHostConfig, require_or_skip};
use vusb_testsupport::ring::GuestConn;
use vusb_xenstore::{Errno, TxId, Xenstore, XenstoreExt};
use vusb_xlcfg::{UsbCtrlSpec, UsbDevSpec};

/// Nodes of domain 2 (its home, `/libxl/2`, and dom0's backends for it).
fn other_domain_lines(dump: &str) -> Vec<String> {
    let is_dom2 = |path: &str| {
        let p: Vec<&str> = path.split('/').collect();
        path.starts_with("/local/domain/2/")
            || path == "/local/domain/2"
            || path.starts_with("/libxl/2")
            || (path.starts_with("/local/domain/0/device-model/") && p.get(5) == Some(&"2"))
            || (path.starts_with("/local/domain/0/backend/") && p.get(6) == Some(&"2"))
    };
    dump.lines()
        .filter(|l| l.split(" = ").next().is_some_and(is_dom2))
        .map(str::to_owned)
        .collect()
}

/// Every interface name the bind emulation saw written to a `bind` or
/// `unbind` file (its log lines are `bind usbback 1-1:1.0`).
fn bind_writes(log: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2).map(str::to_owned))
        .collect()
}

fn dev(busid: &str) -> UsbDevSpec {
    UsbDevSpec {
        busid: Some(busid.into()),
        ..UsbDevSpec::default()
    }
}

#[test]
fn hostile_frontend_cannot_steer_vusb() {
    let Some(host) = require_or_skip(
        "real xenstored fake host",
        FakeHost::start(&FakeHostConfig::default()),
    ) else {
        return;
    };
    let xs = host.client().unwrap();
    let paths = host.paths();
    // Kernel-like bind/unbind on the fixture (vusb checks that its writes
    // move the `driver` link), with a log of every write.
    let bind_log = host.root().join("bind.log");
    let _bind = BindEmulation::spawn(&paths.sysfs_root, &bind_log).unwrap();
    let mut env = OpEnv::new(&xs, &paths);
    env.timeouts.backend_connect = Duration::from_secs(3);
    env.timeouts.backend_close = Duration::from_secs(2);
    let d1 = domain::resolve(&xs, "1").unwrap();
    let t0 = Instant::now();
    let c = usbctrl_attach(&env, &d1, &UsbCtrlSpec::default()).unwrap();
    assert_eq!(c.devid, 0);
    usbdev_attach(&env, &d1, &dev("1-1")).unwrap();
    host.settle();
    let other_before = other_domain_lines(&host.dump().unwrap());

    let guest = GuestConn::introduce(&xs, &host.root().join("xs"), 1).unwrap();
    let fe = "/local/domain/1/device/vusb/0";
    // What the guest may not do at all.
    for path in ["/vusb/assigned/1-1", "/libxl/1/device/vusb/0/type"] {
        let e = guest.read(TxId::NONE, path).unwrap_err();
        assert_eq!(e.errno(), Some(Errno::EACCES), "guest read {path}");
    }
    for path in [
        "/vusb/assigned/1-2",
        "/libxl/1/device/vusb/0/num-ports",
        "/local/domain/0/backend/vusb/1/0/port/2",
        "/local/domain/0/backend/vusb/1/0/state",
    ] {
        let e = guest.write(TxId::NONE, path, b"1-3").unwrap_err();
        assert_eq!(e.errno(), Some(Errno::EACCES), "guest write {path}");
    }
    // What it may do: garbage in its own frontend directory.
    let huge = vec![b'x'; 2000]; // the daemon's per-node quota for guests is 2048
    let writes: Vec<(String, Vec<u8>)> = vec![
        (format!("{fe}/state"), b"99999999999999999999".to_vec()),
        (
            format!("{fe}/backend"),
            b"/local/domain/0/backend/vusb/2/0".to_vec(),
        ),
        (format!("{fe}/backend-id"), b"2".to_vec()),
        (format!("{fe}/garbage"), huge),
        (
            "/local/domain/1/device/vusb/7/backend".into(),
            b"/local/domain/0/backend/qusb/2/0".to_vec(),
        ),
        ("/local/domain/1/device/vusb/7/state".into(), b"4".to_vec()),
        (
            "/local/domain/1/device/vusb/8/type".into(),
            b"devicemodel".to_vec(),
        ),
    ];
    for (p, v) in &writes {
        guest.write(TxId::NONE, p, v).unwrap();
    }
    guest.rm(TxId::NONE, &format!("{fe}/backend-id")).unwrap();

    // vusb keeps working on the guest's real controller only.
    let list = usb_list(&env, &d1).unwrap();
    assert_eq!(list.controllers.len(), 1, "{list:?}");
    assert_eq!(list.controllers[0].devid, 0);
    assert_eq!(list.controllers[0].ports[0].busid.as_deref(), Some("1-1"));
    let a = usbdev_attach(&env, &d1, &dev("1-2")).unwrap();
    assert_eq!((a.ctrl, a.port), (0, 2));
    guest
        .write(TxId::NONE, &format!("{fe}/state"), b"abc")
        .unwrap();
    usbdev_detach(&env, &d1, &DetachTarget::Port { ctrl: 0, port: 1 }).unwrap();
    guest.rm(TxId::NONE, &format!("{fe}/state")).unwrap();
    usbctrl_detach(&env, &d1, 0, "0").unwrap();
    assert!(
        t0.elapsed() < Duration::from_secs(30),
        "took {:?}",
        t0.elapsed()
    );
    host.settle();

    let after = host.dump().unwrap();
    assert_eq!(
        other_domain_lines(&after),
        other_before,
        "another domain was touched"
    );
    assert!(!after.contains("/local/domain/0/backend/vusb/1"), "{after}");
    assert!(!after.contains("/libxl/1/device/vusb"), "{after}");
    assert!(
        xs.read_opt(TxId::NONE, "/local/domain/0/backend/qusb/2/0")
            .unwrap()
            .is_none(),
        "guest's pointer followed"
    );
    let names = bind_writes(&bind_log);
    assert!(!names.is_empty(), "the emulation saw no bind at all");
    for name in names {
        assert!(
            name.starts_with("1-1:") || name.starts_with("1-2:"),
            "bound or unbound an interface nobody named: {name}"
        );
    }
    assert!(
        vusb_core::assign::list(&xs, TxId::NONE).unwrap().is_empty(),
        "records left"
    );
}
