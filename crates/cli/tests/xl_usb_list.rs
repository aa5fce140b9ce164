//! `vusb usb-list`: the domain named by name or domid, xl's text, the
//! `--json` schema of `docs/cli-json.md`, and xl's argument errors.
//!
//! Runs the built `vusb` on a fake host with the real xenstored; fails
//! under `CI=true` when it cannot start, skips with a reason otherwise.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use vusb_testsupport::fakehost::{FakeHost, FakeHostConfig, require_or_skip};

const BIN: &str = env!("CARGO_BIN_EXE_vusb");

fn vusb(host: &FakeHost, args: &[&str]) -> (i32, String, String) {
    let out = host
        .vusb_command(Path::new(BIN), args)
        .unwrap()
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn usb_list_text_json_and_errors() {
    let Some(host) = require_or_skip(
        "real xenstored fake host",
        FakeHost::start(&FakeHostConfig::default()),
    ) else {
        return;
    };
    // No controller: nothing printed, as xl.
    assert_eq!(
        vusb(&host, &["usb-list", "1"]),
        (0, String::new(), String::new())
    );
    assert_eq!(vusb(&host, &["usbctrl-attach", "guest1", "ports=2"]).0, 0);
    assert_eq!(
        vusb(
            &host,
            &[
                "usbdev-attach",
                "1",
                "hostbus=1",
                "hostaddr=3",
                "controller=0",
                "port=2"
            ]
        )
        .0,
        0
    );
    host.settle();
    let text = "Devid  Type         BE  state usb-ver ports\n\
                0      pv           0   4     2       2    \n  Port 1:\n  Port 2: Bus 001 Device 003\n";
    assert_eq!(vusb(&host, &["usb-list", "guest1"]).1, text);
    assert_eq!(vusb(&host, &["usb-l", "1"]).1, text);
    let (rc, out, _) = vusb(&host, &["usb-list", "--json", "1"]);
    assert_eq!(rc, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v,
        serde_json::json!({
            "domid": 1,
            "controllers": [{
                "devid": 0, "type": "pv", "backend_domid": 0, "state": 4, "version": 2,
                "ports": [
                    { "port": 1, "busid": null, "hostbus": null, "hostaddr": null, "emulated": null, "state": "empty" },
                    { "port": 2, "busid": "1-2", "hostbus": 1, "hostaddr": 3, "emulated": null, "state": "attached" }
                ]
            }]
        })
    );
    // xl's argument handling.
    let (rc, out, err) = vusb(&host, &["usb-list", "1", "2"]);
    assert_eq!(
        (rc, out.as_str(), err.trim()),
        (255, "", "Invalid arguments.")
    );
    let (rc, out, _) = vusb(&host, &["usb-list"]);
    assert_eq!(rc, 2);
    assert!(
        out.starts_with("Usage: xl [-vtT] usb-list <Domain>\n\n"),
        "{out}"
    );
    let (rc, out, _) = vusb(&host, &["usb-list", "-h"]);
    assert_eq!(
        (rc, out.contains("List information about all USB")),
        (0, true)
    );
    assert_eq!(vusb(&host, &["usb-list", "-x", "1"]).0, 2);
    let (rc, _, err) = vusb(&host, &["usb-list", "nosuch"]);
    assert_eq!(rc, 1);
    assert!(
        err.contains("nosuch is an invalid domain identifier"),
        "{err}"
    );
    let (rc, _, err) = vusb(&host, &["usbdev-detach", "1", "0", "1", "2"]);
    assert_eq!((rc, err.trim()), (1, "Invalid arguments."));
}
