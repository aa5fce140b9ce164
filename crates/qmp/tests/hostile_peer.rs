//! The QMP client against a hostile peer over a socket pair (no QEMU: the
//! peer is a thread writing what a broken or malicious QMP server could):
//! a line that never ends, a 200 MB reply, a reply dripped one byte at a
//! time, a flood of events. Each must end in a typed error, within the
//! timeout, without vusb buffering what the peer sends.
//!
//! Regression tests for issue 10: a peer that never ended its line drove
//! vusb to 22 GB; a 200 MB reply cost 413 MB; `read_until` let a dripping
//! peer extend a 10 s timeout forever.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use vusb_qmp::{Error, MAX_LINE, MAX_QUEUED_EVENTS, Qmp};

const GREETING: &str = r#"{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "Debian"}, "capabilities": ["oob"]}}"#;

/// The process's peak resident memory (`VmHWM`), in bytes.
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .expect("VmHWM in /proc/self/status");
    let kb: u64 = line
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .expect("VmHWM in kB");
    kb * 1024
}

/// A peer that greets (unless `greet` is false), answers
/// `qmp_capabilities`, then on the next command runs `hostile` with the
/// command's id and the write half. Returns the client and a counter of the
/// bytes the peer managed to write in `hostile`.
fn hostile_peer(
    greet: bool,
    hostile: impl FnOnce(u64, &mut UnixStream, &AtomicU64) + Send + 'static,
) -> (Qmp<UnixStream>, Arc<AtomicU64>, thread::JoinHandle<()>) {
    let (a, b) = UnixStream::pair().unwrap();
    let written = Arc::new(AtomicU64::new(0));
    let w2 = Arc::clone(&written);
    let h = thread::spawn(move || {
        let mut w = b.try_clone().unwrap();
        let mut r = BufReader::new(b);
        if !greet {
            hostile(0, &mut w, &w2);
            return;
        }
        if writeln!(w, "{GREETING}\r").is_err() {
            return;
        }
        let mut line = String::new();
        // qmp_capabilities
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let cmd: serde_json::Value = serde_json::from_str(&line).unwrap();
        let _ = write!(w, "{{\"return\": {{}}, \"id\": {}}}\r\n", cmd["id"]);
        line.clear();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let cmd: serde_json::Value = serde_json::from_str(&line).unwrap();
        hostile(cmd["id"].as_u64().unwrap(), &mut w, &w2);
    });
    let mut qmp = Qmp::new(a);
    qmp.set_timeout(Duration::from_secs(5));
    (qmp, written, h)
}

/// Write `chunk` repeatedly, up to `total` bytes, until the client goes.
fn stream_chunks(w: &mut UnixStream, chunk: &[u8], total: u64, written: &AtomicU64) {
    let mut sent = 0u64;
    while sent < total {
        if w.write_all(chunk).is_err() {
            return;
        }
        sent += chunk.len() as u64;
        written.store(sent, Ordering::Relaxed);
    }
}

#[test]
fn endless_line_is_refused_at_the_limit_without_buffering() {
    let (mut qmp, written, h) = hostile_peer(true, |_, w, written| {
        // A reply that starts and never ends: 'A' forever (up to 1 GiB).
        w.write_all(br#"{"return": ""#).unwrap();
        stream_chunks(w, &[b'A'; 64 * 1024], 1 << 30, written);
    });
    qmp.handshake().unwrap();
    let t0 = Instant::now();
    let e = qmp.execute("query-status", None).unwrap_err();
    match &e {
        Error::LineTooLong {
            command,
            limit,
            received,
        } => {
            assert_eq!(command, "query-status");
            assert_eq!(*limit, MAX_LINE);
            assert!(*received > MAX_LINE && *received <= MAX_LINE + 64 * 1024);
        }
        other => panic!("expected LineTooLong, got {other:?}"),
    }
    assert!(e.is_connection_lost());
    assert!(e.to_string().contains(&MAX_LINE.to_string()), "{e}");
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    drop(qmp);
    h.join().unwrap();
    // The peer could write only what the limit and the socket buffers took.
    let w = written.load(Ordering::Relaxed);
    assert!(w < 4 * MAX_LINE as u64, "peer wrote {w} bytes");
}

#[test]
fn a_200_mb_reply_is_refused_with_bounded_memory() {
    let before = peak_rss();
    let (mut qmp, _written, h) = hostile_peer(true, |id, w, written| {
        // A complete, well-formed reply of 200 MB: one line.
        w.write_all(br#"{"return": ""#).unwrap();
        stream_chunks(w, &[b'x'; 64 * 1024], 200 << 20, written);
        let _ = write!(w, "\", \"id\": {id}}}\r\n");
    });
    qmp.handshake().unwrap();
    let e = qmp.execute("qom-list", None).unwrap_err();
    assert!(
        matches!(e, Error::LineTooLong { ref command, limit, .. } if command == "qom-list" && limit == MAX_LINE),
        "{e:?}"
    );
    drop(qmp);
    h.join().unwrap();
    let grew = peak_rss().saturating_sub(before);
    // Before the bound, this cost over 400 MB. Other tests of this binary
    // run meanwhile, but none of them allocates more than a few MiB.
    assert!(grew < 64 << 20, "peak RSS grew by {grew} bytes");
}

#[test]
fn endless_greeting_is_refused() {
    let (mut qmp, written, h) = hostile_peer(false, |_, w, written| {
        stream_chunks(w, &[b'{'; 64 * 1024], 1 << 30, written);
    });
    let e = qmp.handshake().unwrap_err();
    assert!(
        matches!(e, Error::LineTooLong { ref command, .. } if command == "greeting"),
        "{e:?}"
    );
    drop(qmp);
    h.join().unwrap();
    assert!(written.load(Ordering::Relaxed) < 4 * MAX_LINE as u64);
}

/// One byte every 20 ms, never a line end: the deadline bounds the total
/// wait (before, each byte restarted the wait and this never ended).
#[test]
fn slow_drip_reply_times_out_at_the_deadline() {
    let (mut qmp, _written, h) = hostile_peer(true, |_, w, _| {
        for _ in 0..1000 {
            if w.write_all(b" ").is_err() {
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
    });
    qmp.handshake().unwrap();
    qmp.set_timeout(Duration::from_millis(300));
    let t0 = Instant::now();
    let e = qmp.execute("query-pci", None).unwrap_err();
    let took = t0.elapsed();
    assert!(
        matches!(e, Error::Timeout { ref command, timeout } if command == "query-pci" && timeout == Duration::from_millis(300)),
        "{e:?}"
    );
    assert!(
        took >= Duration::from_millis(290) && took < Duration::from_secs(2),
        "{took:?}"
    );
    drop(qmp);
    h.join().unwrap();
}

/// A greeting dripped slowly: `handshake` is bounded by one timeout in
/// total (greeting and capabilities together).
#[test]
fn slow_drip_greeting_is_bounded() {
    let (mut qmp, _written, h) = hostile_peer(false, |_, w, _| {
        for b in GREETING.bytes().cycle().take(2000) {
            if w.write_all(&[b]).is_err() {
                return;
            }
            thread::sleep(Duration::from_millis(5));
        }
    });
    qmp.set_timeout(Duration::from_millis(300));
    let t0 = Instant::now();
    let e = qmp.handshake().unwrap_err();
    let took = t0.elapsed();
    assert!(
        matches!(e, Error::NoGreeting { timeout } if timeout == Duration::from_millis(300)),
        "{e:?}"
    );
    assert!(took < Duration::from_secs(2), "{took:?}");
    drop(qmp);
    h.join().unwrap();
}

#[test]
fn event_flood_is_refused() {
    let (mut qmp, _written, h) = hostile_peer(true, |id, w, _| {
        for i in 0..(MAX_QUEUED_EVENTS + 10) {
            let ev = format!(
                "{{\"event\": \"RTC_CHANGE\", \"data\": {{\"offset\": {i}}}, \"timestamp\": {{\"seconds\": 1, \"microseconds\": 2}}}}\r\n"
            );
            if w.write_all(ev.as_bytes()).is_err() {
                return;
            }
        }
        let _ = write!(w, "{{\"return\": {{}}, \"id\": {id}}}\r\n");
    });
    qmp.handshake().unwrap();
    let e = qmp.execute("device_del", None).unwrap_err();
    assert!(
        matches!(e, Error::TooManyEvents { ref command, limit, .. } if command == "device_del" && limit == MAX_QUEUED_EVENTS),
        "{e:?}"
    );
    assert_eq!(qmp.take_events().len(), MAX_QUEUED_EVENTS);
    drop(qmp);
    h.join().unwrap();
}

/// Large events fill the byte budget before the count.
#[test]
fn large_events_fill_the_byte_budget() {
    let (mut qmp, _written, h) = hostile_peer(true, |id, w, _| {
        let pad = "p".repeat(100 * 1024);
        for _ in 0..20 {
            let ev = format!(
                "{{\"event\": \"BIG\", \"data\": {{\"pad\": \"{pad}\"}}, \"timestamp\": {{\"seconds\": 1, \"microseconds\": 2}}}}\r\n"
            );
            if w.write_all(ev.as_bytes()).is_err() {
                return;
            }
        }
        let _ = write!(w, "{{\"return\": {{}}, \"id\": {id}}}\r\n");
    });
    qmp.handshake().unwrap();
    let e = qmp.execute("device_del", None).unwrap_err();
    assert!(matches!(e, Error::TooManyEvents { .. }), "{e:?}");
    // 1 MiB of 100 KiB events: ten fit.
    let kept = qmp.take_events().len();
    assert!((9..=10).contains(&kept), "{kept}");
    drop(qmp);
    h.join().unwrap();
}

/// A reply just under the limit still works (the bound refuses nothing
/// QEMU legitimately sends).
#[test]
fn reply_just_under_the_limit_is_accepted() {
    let (mut qmp, _written, h) = hostile_peer(true, |id, w, _| {
        let body = "y".repeat(MAX_LINE - 100);
        let _ = write!(w, "{{\"return\": \"{body}\", \"id\": {id}}}\r\n");
    });
    qmp.handshake().unwrap();
    let v = qmp.execute("qom-get", None).unwrap();
    assert_eq!(v.as_str().map(str::len), Some(MAX_LINE - 100));
    drop(qmp);
    h.join().unwrap();
}
