//! Component tests of the QMP transport against a scripted peer over a
//! socket pair: greeting, replies matched by id, events queued, EOF, a
//! silent peer, a peer that is not QMP, garbage.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use vusb_qmp::{DeviceAdd, Error, Qmp};

const GREETING: &str = r#"{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "Debian"}, "capabilities": ["oob"]}}"#;

/// A peer that greets, then for each received command calls `reply`
/// with the parsed command and writes the lines it returns.
fn peer(
    greet: bool,
    mut reply: impl FnMut(&Value) -> Vec<String> + Send + 'static,
) -> (Qmp<UnixStream>, thread::JoinHandle<Vec<Value>>) {
    let (a, b) = UnixStream::pair().unwrap();
    let h = thread::spawn(move || {
        let mut w = b.try_clone().unwrap();
        if greet {
            writeln!(w, "{GREETING}\r").unwrap();
        }
        let mut got = Vec::new();
        for line in BufReader::new(b).lines() {
            let Ok(line) = line else { break };
            let cmd: Value = serde_json::from_str(&line).unwrap();
            for out in reply(&cmd) {
                if out == "CLOSE" {
                    got.push(cmd);
                    return got;
                }
                let bytes = match out.strip_prefix("RAW:") {
                    Some(raw) => raw.to_string(),
                    None => format!("{out}\r\n"),
                };
                if w.write_all(bytes.as_bytes()).is_err() {
                    break;
                }
            }
            got.push(cmd);
        }
        got
    });
    let mut qmp = Qmp::new(a);
    qmp.set_timeout(Duration::from_millis(500));
    (qmp, h)
}

fn ok(cmd: &Value) -> String {
    format!(r#"{{"return": {{}}, "id": {}}}"#, cmd["id"])
}

#[test]
fn handshake_then_command_with_interleaved_event() {
    let (mut qmp, h) = peer(true, |cmd| {
        match cmd["execute"].as_str().unwrap() {
        "device_del" => vec![
            r#"{"event": "RESUME", "data": {}, "timestamp": {"seconds": 1, "microseconds": 2}}"#.into(),
            // a stale reply to an id never sent must be skipped
            r#"{"return": {"stale": true}, "id": 999}"#.into(),
            ok(cmd),
            r#"{"event": "DEVICE_DELETED", "data": {"device": "tab0", "path": "/machine/peripheral/tab0"}, "timestamp": {"seconds": 1, "microseconds": 3}}"#.into(),
        ],
        _ => vec![ok(cmd)],
    }
    });
    let g = qmp.handshake().unwrap();
    assert_eq!(g.version, (7, 2, 22));
    qmp.record_sent();
    qmp.device_del("tab0").unwrap();
    assert!(
        qmp.wait_device_deleted("tab0", Duration::from_secs(1))
            .unwrap()
    );
    let evs = qmp.take_events();
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0].name, "RESUME");
    assert_eq!(
        qmp.sent(),
        [r#"{"execute":"device_del","id":2,"arguments":{"id":"tab0"}}"#]
    );
    drop(qmp);
    let got = h.join().unwrap();
    assert_eq!(got[0]["execute"], "qmp_capabilities");
}

#[test]
fn qemu_error_is_typed() {
    let (mut qmp, _h) = peer(true, |cmd| match cmd["execute"].as_str().unwrap() {
        "device_del" => vec![format!(
            r#"{{"error": {{"class": "DeviceNotFound", "desc": "Device 'nope' not found"}}, "id": {}}}"#,
            cmd["id"]
        )],
        _ => vec![ok(cmd)],
    });
    qmp.handshake().unwrap();
    let e = qmp.device_del("nope").unwrap_err();
    assert!(e.is_device_not_found(), "{e:?}");
    assert_eq!(
        e.to_string(),
        "QEMU refused device_del: Device 'nope' not found"
    );
    // The connection is still usable afterwards.
    qmp.device_add(&DeviceAdd::new().arg("driver", "usb-tablet"))
        .unwrap();
}

#[test]
fn eof_during_greeting_is_closed_not_panic() {
    let (a, b) = UnixStream::pair().unwrap();
    drop(b);
    let mut qmp = Qmp::new(a);
    let e = qmp.handshake().unwrap_err();
    assert!(
        matches!(e, Error::Closed { ref command } if command == "greeting"),
        "{e:?}"
    );
}

#[test]
fn peer_dying_mid_command_is_closed() {
    let (mut qmp, _h) = peer(true, |cmd| match cmd["execute"].as_str().unwrap() {
        "device_add" => vec![r#"RAW:{"return": "#.into(), "CLOSE".into()],
        _ => vec![ok(cmd)],
    });
    qmp.handshake().unwrap();
    let e = qmp
        .device_add(&DeviceAdd::new().arg("driver", "usb-tablet"))
        .unwrap_err();
    assert!(matches!(e, Error::Closed { .. }), "{e:?}");
    assert!(e.is_connection_lost());
    // Later commands fail too, without panicking.
    let e2 = qmp.execute("query-status", None).unwrap_err();
    assert!(e2.is_connection_lost(), "{e2:?}");
}

#[test]
fn silent_peer_times_out() {
    let (mut qmp, _h) = peer(true, |cmd| match cmd["execute"].as_str().unwrap() {
        "qmp_capabilities" => vec![ok(cmd)],
        _ => vec![],
    });
    qmp.handshake().unwrap();
    qmp.set_timeout(Duration::from_millis(150));
    let t0 = Instant::now();
    let e = qmp.execute("query-status", None).unwrap_err();
    let took = t0.elapsed();
    assert!(
        matches!(e, Error::Timeout { ref command, timeout } if command == "query-status" && timeout == Duration::from_millis(150)),
        "{e:?}"
    );
    assert!(
        took >= Duration::from_millis(140) && took < Duration::from_secs(2),
        "{took:?}"
    );
}

#[test]
fn peer_that_is_not_qmp() {
    let (a, b) = UnixStream::pair().unwrap();
    let h = thread::spawn(move || {
        let mut b = b;
        b.write_all(b"SSH-2.0-OpenSSH_9.2\r\n").unwrap();
        thread::sleep(Duration::from_millis(200));
    });
    let mut qmp = Qmp::new(a);
    let e = qmp.handshake().unwrap_err();
    assert!(matches!(e, Error::NotQmp { .. }), "{e:?}");
    h.join().unwrap();

    let (mut qmp, _h) = peer(false, |_| vec![]);
    let (a2, b2) = UnixStream::pair().unwrap();
    drop(std::mem::replace(&mut qmp, Qmp::new(a2)));
    let mut w = b2;
    w.write_all(br#"{"return": {}}"#).unwrap();
    w.write_all(b"\n").unwrap();
    let e = qmp.handshake().unwrap_err();
    assert!(matches!(e, Error::NotQmp { .. }), "{e:?}");
}

#[test]
fn events_wait_times_out_with_none() {
    let (mut qmp, _h) = peer(true, |cmd| vec![ok(cmd)]);
    qmp.handshake().unwrap();
    let got = qmp
        .wait_device_deleted("x", Duration::from_millis(50))
        .unwrap();
    assert!(!got);
}

#[test]
fn connect_to_missing_socket_is_connect_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nope.qmp");
    let e = Qmp::connect(&path, Duration::from_millis(200)).unwrap_err();
    assert!(matches!(e, Error::Connect { .. }), "{e:?}");
    assert!(e.to_string().contains("nope.qmp"));
}

#[test]
fn typed_queries_decode() {
    let (mut qmp, _h) = peer(true, |cmd| {
        let id = &cmd["id"];
        match cmd["execute"].as_str().unwrap() {
            "qom-list" => vec![format!(
                r#"{{"return": [{{"name": "type", "type": "string"}}, {{"name": "xenusb-0", "type": "child<nec-usb-xhci>"}}], "id": {id}}}"#
            )],
            "query-pci" => vec![format!(
                r#"{{"return": [{{"bus": 0, "devices": [{{"bus": 0, "slot": 5, "function": 0, "qdev_id": "xenusb-0", "class_info": {{"desc": "USB controller"}}, "id": {{"vendor": 4147, "device": 404}}}}]}}], "id": {id}}}"#
            )],
            _ => vec![ok(cmd)],
        }
    });
    qmp.handshake().unwrap();
    let p = qmp.peripherals().unwrap();
    assert_eq!(p.len(), 1);
    assert_eq!(
        (p[0].id.as_str(), p[0].driver.as_str()),
        ("xenusb-0", "nec-usb-xhci")
    );
    let pci = qmp.query_pci().unwrap();
    assert_eq!(pci[0].qdev_id, "xenusb-0");
    assert_eq!((pci[0].vendor, pci[0].device), (0x1033, 0x0194));
}

#[test]
fn silent_socket_gives_no_greeting_error() {
    let (a, _b) = UnixStream::pair().unwrap();
    let mut qmp = Qmp::new(a);
    qmp.set_timeout(Duration::from_millis(100));
    let e = qmp.handshake().unwrap_err();
    assert!(
        matches!(e, Error::NoGreeting { timeout } if timeout == Duration::from_millis(100)),
        "{e:?}"
    );
    assert!(e.to_string().contains("another client"));
}

/// Deterministic pseudo-random garbage never panics the decoder or the
/// client, and replies split at every byte boundary still decode.
#[test]
fn garbage_and_split_replies() {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let alphabet = br#"{}[]":,QMPreturnerrorevent0123456789 \ntrue"#;
    for _ in 0..3000 {
        let len = (next() % 80) as usize;
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                let r = next();
                if r % 4 == 0 {
                    (r >> 8) as u8
                } else {
                    alphabet[(r >> 8) as usize % alphabet.len()]
                }
            })
            .collect();
        let _ = vusb_qmp::message::parse(&bytes);
    }
    // One reply delivered one byte at a time.
    let (a, b) = UnixStream::pair().unwrap();
    let h = thread::spawn(move || {
        let mut b = b;
        let mut r = BufReader::new(b.try_clone().unwrap());
        let script = format!("{GREETING}\r\n");
        for byte in script.as_bytes() {
            b.write_all(&[*byte]).unwrap();
        }
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        for byte in br#"{"return": {}, "id": 1}"#.iter().chain(b"\r\n") {
            b.write_all(&[*byte]).unwrap();
            thread::sleep(Duration::from_micros(50));
        }
        thread::sleep(Duration::from_millis(100));
    });
    let mut qmp = Qmp::new(a);
    qmp.handshake().unwrap();
    h.join().unwrap();
}
