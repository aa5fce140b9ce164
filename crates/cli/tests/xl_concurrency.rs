//! No races: 16 `vusb usbdev-attach` processes started at once against the
//! real xenstored never give one port or one device to two guests
//! (libxl bug R1).
//!
//! - one device, 16 guests: exactly one attach succeeds, the 15 others
//!   fail with exit 1, and exactly one port on the host holds the device;
//! - 16 devices, one guest with one 8-port controller: every attach
//!   succeeds (controllers are created as ports run out), every device is
//!   on exactly one port and no port holds two devices.
//!
//! Needs the real xenstored (harness): fails under `CI=true` when it cannot
//! start, skips with a reason otherwise.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Child;

use vusb_testsupport::fakehost::{FakeHost, FakeHostConfig, require_or_skip};
use vusb_xenstore::{TxId, Xenstore, XenstoreExt};

const BIN: &str = env!("CARGO_BIN_EXE_vusb");

fn spawn(host: &FakeHost, args: &[String]) -> Child {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    host.vusb_command(Path::new(BIN), &args)
        .unwrap()
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

fn run_ok(host: &FakeHost, args: &[&str]) {
    let out = host
        .vusb_command(Path::new(BIN), args)
        .unwrap()
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every occupied port on the host: busid -> [(domid, devid, port)].
fn occupied(xs: &impl Xenstore) -> BTreeMap<String, Vec<(String, String, String)>> {
    let mut out: BTreeMap<String, Vec<_>> = BTreeMap::new();
    for kind in ["vusb", "qusb"] {
        let base = format!("/local/domain/0/backend/{kind}");
        for dom in xs.directory_opt(TxId::NONE, &base).unwrap() {
            for ctrl in xs
                .directory_opt(TxId::NONE, &format!("{base}/{dom}"))
                .unwrap()
            {
                let pdir = format!("{base}/{dom}/{ctrl}/port");
                for port in xs.directory_opt(TxId::NONE, &pdir).unwrap() {
                    let v = xs.read_opt(TxId::NONE, &format!("{pdir}/{port}")).unwrap();
                    if let Some(b) = v.filter(|v| !v.is_empty()) {
                        out.entry(b)
                            .or_default()
                            .push((dom.clone(), ctrl.clone(), port));
                    }
                }
            }
        }
    }
    out
}

/// Wait for all children: (successes, failures).
fn wait_all(children: Vec<Child>) -> (usize, usize, Vec<String>) {
    let (mut ok, mut failed, mut errs) = (0, 0, Vec::new());
    for c in children {
        let out = c.wait_with_output().unwrap();
        if out.status.success() {
            ok += 1;
        } else {
            assert_eq!(
                out.status.code(),
                Some(1),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            failed += 1;
            errs.push(String::from_utf8_lossy(&out.stderr).into_owned());
        }
    }
    (ok, failed, errs)
}

#[test]
fn one_device_sixteen_guests_exactly_one_wins() {
    let config = FakeHostConfig::pv_guests(16);
    let Some(host) = require_or_skip("real xenstored fake host", FakeHost::start(&config)) else {
        return;
    };
    for d in 1..=16 {
        run_ok(&host, &["usbctrl-attach", &d.to_string()]);
    }
    let children: Vec<Child> = (1..=16)
        .map(|d| {
            spawn(
                &host,
                &[
                    "usbdev-attach".into(),
                    d.to_string(),
                    "hostbus=1".into(),
                    "hostaddr=2".into(),
                ],
            )
        })
        .collect();
    let (ok, failed, errs) = wait_all(children);
    assert_eq!((ok, failed), (1, 15), "{errs:#?}");
    for e in &errs {
        assert!(e.contains("already attached"), "unexpected failure: {e}");
    }
    let xs = host.client().unwrap();
    let occ = occupied(&xs);
    assert_eq!(occ.len(), 1, "{occ:?}");
    assert_eq!(occ["1-1"].len(), 1, "device on several ports: {occ:?}");
    let rec = xs
        .read_opt(TxId::NONE, "/vusb/assigned/1-1")
        .unwrap()
        .unwrap();
    let winner = &occ["1-1"][0].0;
    assert!(
        rec.contains(&format!("domid={winner} ")),
        "{rec} vs {winner}"
    );
}

#[test]
fn sixteen_devices_one_guest_get_distinct_ports() {
    let config = FakeHostConfig {
        usb_devices: 18,
        ..FakeHostConfig::pv_guests(1)
    };
    let Some(host) = require_or_skip("real xenstored fake host", FakeHost::start(&config)) else {
        return;
    };
    run_ok(&host, &["usbctrl-attach", "1"]);
    let busids: Vec<String> = vusb_sim::fixture::devices(18)
        .iter()
        .map(|d| d.busid())
        .take(16)
        .collect();
    assert_eq!(busids.len(), 16);
    let children: Vec<Child> = busids
        .iter()
        .map(|b| {
            spawn(
                &host,
                &["usbdev-attach".into(), "1".into(), format!("busid={b}")],
            )
        })
        .collect();
    let (ok, failed, errs) = wait_all(children);
    assert_eq!((ok, failed), (16, 0), "{errs:#?}");
    let xs = host.client().unwrap();
    let occ = occupied(&xs);
    assert_eq!(occ.len(), 16, "{occ:?}");
    let mut ports = std::collections::BTreeSet::new();
    for (busid, places) in &occ {
        assert_eq!(places.len(), 1, "{busid} on several ports: {places:?}");
        assert!(
            ports.insert(places[0].clone()),
            "port given twice: {places:?}"
        );
        let rec = xs
            .read_opt(
                TxId::NONE,
                &vusb_core::assign::record_path(&vusb_core::BusId::parse(busid).unwrap()),
            )
            .unwrap()
            .unwrap();
        let (_, ctrl, port) = &places[0];
        assert!(rec.contains(&format!("ctrl={ctrl} port={port} ")), "{rec}");
    }
}
