//! Bad input (issue 6): unknown domain, controller or port; a port beyond
//! the controller's count or below 1 (libxl accepts them, C1); a port
//! already used; pv with version 3; a hub; a device assigned elsewhere; a
//! backend that never comes up. Each must fail with exit status 1, print
//! nothing on stdout, and leave xenstore (including `/vusb`), the sysfs
//! driver bindings and libxl's JSON exactly as they were.
//!
//! Runs the built `vusb` on a fake host with the real xenstored; fails
//! under `CI=true` when it cannot start, skips with a reason otherwise.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::Path;

use vusb_sim::xenbus::{DriverConfig, Failure};
use vusb_testsupport::fakehost::{FakeHost, FakeHostConfig, require_or_skip};

const BIN: &str = env!("CARGO_BIN_EXE_vusb");

#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    xenstore: String,
    bindings: Vec<String>,
    json: BTreeMap<String, String>,
}

fn snapshot(host: &FakeHost) -> Snapshot {
    host.settle();
    Snapshot {
        xenstore: host.dump().unwrap(),
        bindings: host.sysfs_bindings().unwrap(),
        json: host.json_files().unwrap(),
    }
}

fn vusb(host: &FakeHost, args: &[&str]) -> (i32, String, String) {
    let out = host
        .vusb_command(Path::new(BIN), args)
        .unwrap()
        .env("VUSB_BACKEND_TIMEOUT_MS", "700")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn refused_without_trace(host: &FakeHost, args: &[&str], msg: &str, failures: &mut Vec<String>) {
    let before = snapshot(host);
    let (rc, out, err) = vusb(host, args);
    let after = snapshot(host);
    if rc != 1 {
        failures.push(format!("{args:?}: exit {rc}, want 1 (stderr {err:?})"));
    }
    if !out.is_empty() {
        failures.push(format!("{args:?}: stdout {out:?}"));
    }
    if !err.contains(msg) {
        failures.push(format!("{args:?}: stderr {err:?} lacks {msg:?}"));
    }
    if before != after {
        let lines = |s: &str| s.lines().map(str::to_owned).collect::<Vec<_>>();
        let (b, a) = (lines(&before.xenstore), lines(&after.xenstore));
        let gone: Vec<_> = b.iter().filter(|l| !a.contains(l)).collect();
        let new: Vec<_> = a.iter().filter(|l| !b.contains(l)).collect();
        failures.push(format!(
            "{args:?} changed the host: xenstore -{gone:?} +{new:?}; bindings {:?} -> {:?}; json equal: {}",
            before.bindings,
            after.bindings,
            before.json == after.json
        ));
    }
}

fn ok(host: &FakeHost, args: &[&str]) {
    let (rc, _, err) = vusb(host, args);
    assert_eq!(rc, 0, "{args:?}: {err}");
}

#[test]
fn bad_input_is_refused_and_leaves_no_trace() {
    let Some(host) = require_or_skip(
        "real xenstored fake host",
        FakeHost::start(&FakeHostConfig::default()),
    ) else {
        return;
    };
    ok(&host, &["usbctrl-attach", "1", "ports=4"]);
    ok(&host, &["usbdev-attach", "1", "hostbus=1", "hostaddr=2"]);
    let mut f = Vec::new();
    let h = &host;
    refused_without_trace(
        h,
        &["usbdev-attach", "99", "hostbus=1", "hostaddr=3"],
        "invalid domain",
        &mut f,
    );
    refused_without_trace(h, &["usbctrl-attach", "nosuch"], "invalid domain", &mut f);
    refused_without_trace(h, &["usb-list", "99"], "invalid domain", &mut f);
    refused_without_trace(
        h,
        &[
            "usbdev-attach",
            "1",
            "hostbus=1",
            "hostaddr=3",
            "controller=5",
        ],
        "xenstore read failed",
        &mut f,
    );
    refused_without_trace(
        h,
        &["usbctrl-detach", "1", "7"],
        "Unknown device 7.",
        &mut f,
    );
    refused_without_trace(
        h,
        &["usbdev-detach", "1", "0", "3"],
        "Unknown device at controller 0 port 3.",
        &mut f,
    );
    refused_without_trace(
        h,
        &["usbdev-detach", "1", "5", "1"],
        "Unknown device at controller 5 port 1.",
        &mut f,
    );
    refused_without_trace(
        h,
        &["usbdev-detach", "1", "busid=1-3"],
        "no device 1-3",
        &mut f,
    );
    for port in ["5", "-1", "99"] {
        let p = format!("port={port}");
        refused_without_trace(
            h,
            &[
                "usbdev-attach",
                "1",
                "hostbus=1",
                "hostaddr=3",
                "controller=0",
                &p,
            ],
            "out of range",
            &mut f,
        );
    }
    refused_without_trace(
        h,
        &[
            "usbdev-attach",
            "1",
            "hostbus=1",
            "hostaddr=3",
            "controller=0",
            "port=1",
        ],
        "The controller port isn't available",
        &mut f,
    );
    refused_without_trace(
        h,
        &["usbdev-attach", "1", "hostbus=1", "hostaddr=3", "port=2"],
        "USB controller must be specified",
        &mut f,
    );
    refused_without_trace(
        h,
        &["usbctrl-attach", "1", "type=pv", "version=3"],
        "must be 1 or 2",
        &mut f,
    );
    refused_without_trace(
        h,
        &["usbctrl-attach", "1", "ports=32"],
        "limited to 31",
        &mut f,
    );
    refused_without_trace(
        h,
        &["usbdev-attach", "1", "hostbus=1", "hostaddr=1"],
        "not assignable",
        &mut f,
    );
    refused_without_trace(
        h,
        &["usbdev-attach", "1", "hostbus=9", "hostaddr=9"],
        "not assignable",
        &mut f,
    );
    // Assigned to guest 1; guest 2 has no controller: nothing may be created.
    refused_without_trace(
        h,
        &["usbdev-attach", "2", "hostbus=1", "hostaddr=2"],
        "already attached",
        &mut f,
    );
    refused_without_trace(
        h,
        &["usbdev-attach", "1", "busid=1-1"],
        "already attached",
        &mut f,
    );
    refused_without_trace(
        h,
        &["usbctrl-attach", "1", "type=qusb"],
        "device model required",
        &mut f,
    );
    assert!(f.is_empty(), "{}", f.join("\n"));
}

#[test]
fn backend_that_never_comes_up_leaves_no_trace() {
    let config = FakeHostConfig {
        drivers: Some(DriverConfig {
            failure: Some(Failure::BackendNeverInitWait),
            ..DriverConfig::default()
        }),
        ..FakeHostConfig::default()
    };
    let Some(host) = require_or_skip("real xenstored fake host", FakeHost::start(&config)) else {
        return;
    };
    let mut f = Vec::new();
    refused_without_trace(
        &host,
        &["usbctrl-attach", "1"],
        "did not reach state 2",
        &mut f,
    );
    // No controller: the one usbdev-attach creates cannot come up either.
    refused_without_trace(
        &host,
        &["usbdev-attach", "1", "hostbus=1", "hostaddr=2"],
        "did not reach state 2",
        &mut f,
    );
    assert!(f.is_empty(), "{}", f.join("\n"));
}
