//! No races, in process: threads each on their own connection to the
//! memory store run `usbdev_attach` at the same time. One device asked by
//! 16 threads for 4 guests lands on exactly one port; 4 devices asked for
//! one guest whose only controller has 2 ports all land on distinct ports
//! (the others on controllers created concurrently, with distinct devids).
//! 16 concurrent `usbctrl-attach` on one guest all succeed with distinct
//! devids (the guest lock), and attach racing detach of one device leaves
//! it attached or free, never in between (the device lock).
//! The same properties against the real xenstored and 16 `vusb` processes
//! are in `crates/cli/tests/xl_concurrency.rs` and `concurrency_*.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod ops_support;

use std::collections::BTreeSet;
use std::sync::{Arc, Barrier};

use ops_support::{SimHost, run_xl};
use vusb_core::assign;
use vusb_core::ops::OpEnv;
use vusb_core::ops::usbdev_attach::usbdev_attach;
use vusb_sim::xenbus::DriverConfig;
use vusb_xenstore::TxId;
use vusb_xlcfg::UsbDevSpec;

fn spec(busid: &str) -> UsbDevSpec {
    UsbDevSpec {
        busid: Some(busid.into()),
        ..UsbDevSpec::default()
    }
}

/// Run `jobs` (domid, busid) at once; the results in order.
fn race(host: &SimHost, jobs: Vec<(u32, &'static str)>) -> Vec<Result<(u32, u32, u32), String>> {
    let barrier = Arc::new(Barrier::new(jobs.len()));
    std::thread::scope(|s| {
        let handles: Vec<_> = jobs
            .into_iter()
            .map(|(domid, busid)| {
                let conn = host.store.connect(0);
                let paths = host.paths.clone();
                let barrier = Arc::clone(&barrier);
                s.spawn(move || {
                    let env = OpEnv::new(&conn, &paths);
                    let dom = vusb_core::domain::resolve(&conn, &domid.to_string()).unwrap();
                    barrier.wait();
                    usbdev_attach(&env, &dom, &spec(busid))
                        .map(|a| (domid, a.ctrl, a.port))
                        .map_err(|e| e.to_string())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

#[test]
fn one_device_many_threads_one_port() {
    let host = SimHost::from_golden("qusb", true, DriverConfig::default());
    for d in 1..=4 {
        let (rc, _) = run_xl(&host.env(), &format!("xl usbctrl-attach {d} type=qusb"));
        // Domains without a device model refuse qusb; give those pv.
        if rc != 0 {
            let (rc, _) = run_xl(&host.env(), &format!("xl usbctrl-attach {d} type=pv"));
            assert_eq!(rc, 0, "controller for {d}");
        }
    }
    let jobs = (0..16).map(|i| (1 + i % 4, "1-1")).collect();
    let results = race(&host, jobs);
    let wins: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(wins.len(), 1, "{results:?}");
    for r in results.iter().filter_map(|r| r.as_ref().err()) {
        assert!(r.contains("already attached"), "{r}");
    }
    let recs = assign::list(&host.conn, TxId::NONE).unwrap();
    assert_eq!(recs.len(), 1);
    assert_eq!((recs[0].domid, recs[0].ctrl, recs[0].port), *wins[0]);
}

#[test]
fn many_devices_one_guest_distinct_ports() {
    let host = SimHost::from_golden("pv", true, DriverConfig::default());
    let (rc, _) = run_xl(&host.env(), "xl usbctrl-attach 1 ports=2");
    assert_eq!(rc, 0);
    let jobs = vec![(1, "1-1"), (1, "1-2"), (1, "1-3"), (1, "1-4")];
    let results = race(&host, jobs);
    let places: Vec<(u32, u32, u32)> = results.iter().map(|r| r.clone().unwrap()).collect();
    let distinct: BTreeSet<_> = places.iter().collect();
    assert_eq!(distinct.len(), 4, "a port was given twice: {places:?}");
    for p in &places {
        assert!((1..=8).contains(&p.2), "{places:?}");
    }
    assert_eq!(assign::list(&host.conn, TxId::NONE).unwrap().len(), 4);
}

/// 16 concurrent `usbctrl-attach` on one guest: all succeed (the guest
/// lock serialises the creations; none runs out of transaction retries),
/// with 16 distinct devids.
#[test]
fn concurrent_controller_creation_in_one_guest() {
    let host = SimHost::from_golden("pv", true, DriverConfig::default());
    let barrier = Arc::new(Barrier::new(16));
    let results: Vec<Result<u32, String>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..16)
            .map(|_| {
                let conn = host.store.connect(0);
                let paths = host.paths.clone();
                let barrier = Arc::clone(&barrier);
                s.spawn(move || {
                    let env = OpEnv::new(&conn, &paths);
                    let dom = vusb_core::domain::resolve(&conn, "1").unwrap();
                    barrier.wait();
                    let spec = vusb_xlcfg::UsbCtrlSpec {
                        kind: vusb_xlcfg::CtrlKind::Pv,
                        ..Default::default()
                    };
                    vusb_core::ops::usbctrl_attach::usbctrl_attach(&env, &dom, &spec)
                        .map(|c| c.devid)
                        .map_err(|e| e.to_string())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let devids: BTreeSet<u32> = results
        .iter()
        .map(|r| *r.as_ref().expect("every creation succeeds"))
        .collect();
    assert_eq!(devids.len(), 16, "{results:?}");
}

/// Attach and detach of the same device racing, many times: afterwards the
/// device is either attached (record, port, every interface on usbback) or
/// free (none of them), never in between, and a detach/attach works.
#[test]
fn attach_racing_detach_of_the_same_device() {
    let host = SimHost::from_golden("pv", true, DriverConfig::default());
    let (rc, _) = run_xl(&host.env(), "xl usbctrl-attach 1 ports=4");
    assert_eq!(rc, 0);
    let dom = vusb_core::domain::resolve(&host.conn, "1").unwrap();
    for trial in 0..20 {
        let barrier = Arc::new(Barrier::new(2));
        std::thread::scope(|s| {
            let a = {
                let conn = host.store.connect(0);
                let (paths, barrier, dom) = (host.paths.clone(), Arc::clone(&barrier), dom.clone());
                s.spawn(move || {
                    let env = OpEnv::new(&conn, &paths);
                    barrier.wait();
                    let _ = usbdev_attach(&env, &dom, &spec("1-2"));
                })
            };
            let d = {
                let conn = host.store.connect(0);
                let (paths, barrier, dom) = (host.paths.clone(), Arc::clone(&barrier), dom.clone());
                s.spawn(move || {
                    let env = OpEnv::new(&conn, &paths);
                    barrier.wait();
                    std::thread::sleep(std::time::Duration::from_millis(trial % 5));
                    let t = vusb_core::ops::usbdev_detach::DetachTarget::Host(spec("1-2"));
                    let _ = vusb_core::ops::usbdev_detach::usbdev_detach(&env, &dom, &t);
                })
            };
            a.join().unwrap();
            d.join().unwrap();
        });
        host.settle();
        let rec = assign::lookup(
            &host.conn,
            TxId::NONE,
            &vusb_core::BusId::parse("1-2").unwrap(),
        )
        .unwrap();
        let on_usbback = host
            .bindings()
            .iter()
            .filter(|b| b.starts_with("1-2:") && b.ends_with("-> usbback"))
            .count();
        match &rec {
            Some(r) => {
                assert_eq!(r.step, vusb_core::journal::Step::Done, "trial {trial}");
                assert_eq!(on_usbback, 3, "trial {trial}: {:?}", host.bindings());
            }
            None => assert_eq!(on_usbback, 0, "trial {trial}: {:?}", host.bindings()),
        }
        // Back to free for the next trial.
        if rec.is_some() {
            let env = OpEnv::new(&host.conn, &host.paths);
            let t = vusb_core::ops::usbdev_detach::DetachTarget::Host(spec("1-2"));
            vusb_core::ops::usbdev_detach::usbdev_detach(&env, &dom, &t).unwrap();
            host.settle();
        }
    }
}
