//! devicemodel removal logic against a scripted QMP peer (no QEMU): the
//! outcome follows QEMU's device tree, a missing `DEVICE_DELETED` is
//! checked against `qom-list`, and a server without `qom-list` (a fake,
//! never a real QEMU) degrades to libxl's trust-the-reply with a warning.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use vusb_core::devicemodel::{DmConn, Removal};
use vusb_qmp::Qmp;

/// `present`: what `qom-list /machine/peripheral` lists (None: CommandNotFound).
fn peer(present: Option<Vec<&'static str>>, deleted_event: bool) -> DmConn {
    let (a, b) = UnixStream::pair().unwrap();
    std::thread::spawn(move || {
        let mut w = b.try_clone().unwrap();
        writeln!(w, r#"{{"QMP": {{"version": {{"qemu": {{"micro": 0, "minor": 2, "major": 7}}, "package": ""}}, "capabilities": []}}}}"#).unwrap();
        for line in BufReader::new(b).lines() {
            let Ok(line) = line else { break };
            let cmd: Value = serde_json::from_str(&line).unwrap();
            let id = cmd["id"].clone();
            let reply = match cmd["execute"].as_str().unwrap() {
                "qom-list" => match &present {
                    Some(ids) => {
                        let mut list = vec![json!({"name": "type", "type": "string"})];
                        list.extend(
                            ids.iter()
                                .map(|i| json!({"name": i, "type": "child<usb-tablet>"})),
                        );
                        json!({"return": list, "id": id})
                    }
                    None => {
                        json!({"error": {"class": "CommandNotFound", "desc": "The command qom-list has not been found"}, "id": id})
                    }
                },
                _ => json!({"return": {}, "id": id}),
            };
            writeln!(w, "{reply}").unwrap();
            if deleted_event && cmd["execute"] == "device_del" {
                let dev = cmd["arguments"]["id"].as_str().unwrap();
                writeln!(w, "{}", json!({"event": "DEVICE_DELETED", "data": {"device": dev, "path": format!("/machine/peripheral/{dev}")}, "timestamp": {"seconds": 1, "microseconds": 0}})).unwrap();
            }
        }
    });
    let mut q = Qmp::new(a);
    q.set_timeout(Duration::from_secs(2));
    q.handshake().unwrap();
    DmConn::from_qmp(q)
}

#[test]
fn device_removal_outcomes() {
    let mut c = peer(Some(vec![]), true);
    assert_eq!(
        c.remove_device("t0", Duration::from_secs(1)).unwrap(),
        Removal::Removed
    );
    // No event, but gone from QOM: removed.
    let mut c = peer(Some(vec![]), false);
    assert_eq!(
        c.remove_device("t0", Duration::from_millis(50)).unwrap(),
        Removal::Removed
    );
    // No event and still there: the guest did not release it.
    let mut c = peer(Some(vec!["t0"]), false);
    assert_eq!(
        c.remove_device("t0", Duration::from_millis(50)).unwrap(),
        Removal::GuestDidNotRelease
    );
}

#[test]
fn controller_removal_outcomes() {
    let mut c = peer(Some(vec!["xenusb-0"]), false);
    let t0 = Instant::now();
    assert_eq!(
        c.remove_controller(0, Duration::from_millis(100)).unwrap(),
        Removal::GuestDidNotRelease
    );
    assert!(t0.elapsed() >= Duration::from_millis(100));
    let mut c = peer(Some(vec![]), false);
    assert_eq!(
        c.remove_controller(0, Duration::from_secs(5)).unwrap(),
        Removal::Removed
    );
    // A fake without qom-list: libxl's behaviour, at once.
    let mut c = peer(None, false);
    let t0 = Instant::now();
    assert_eq!(
        c.remove_controller(0, Duration::from_secs(5)).unwrap(),
        Removal::Removed
    );
    assert!(t0.elapsed() < Duration::from_secs(1));
}
