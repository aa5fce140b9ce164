//! No races, in process: threads each on their own connection to the
//! memory store run `usbdev_attach` at the same time. One device asked by
//! 16 threads for 4 guests lands on exactly one port; 4 devices asked for
//! one guest whose only controller has 2 ports all land on distinct ports
//! (the others on controllers created concurrently, with distinct devids).
//! The same properties against the real xenstored and 16 `vusb` processes
//! are in `crates/cli/tests/xl_concurrency.rs`.
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
