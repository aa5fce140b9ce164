//! The client against a scripted peer over a socket pair.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::*;
use crate::wire::{Decoder, Header, Message, reply};

struct Peer {
    s: UnixStream,
    d: Decoder,
}

impl Peer {
    fn recv(&mut self) -> Option<Message> {
        let mut buf = [0u8; 8192];
        loop {
            if let Some(m) = self.d.next_message().unwrap() {
                return Some(m);
            }
            match self.s.read(&mut buf) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.d.push(&buf[..n]),
            }
        }
    }
    fn send(&mut self, m: &Message) {
        self.s.write_all(&m.encode()).unwrap();
    }
    fn reply(&mut self, req: &Message, payload: &[u8]) {
        let ty = req.msg_type().unwrap();
        let mut m = Message::new(
            ty,
            req.header.req_id,
            TxId(req.header.tx_id),
            payload.to_vec(),
        )
        .unwrap();
        m.header.req_id = req.header.req_id;
        self.send(&m);
    }
    fn error(&mut self, req: &Message, errno: Errno) {
        self.send(&reply::error_message(
            req.header.req_id,
            TxId(req.header.tx_id),
            errno,
        ));
    }
    fn event(&mut self, path: &str, token: &str) {
        self.send(&reply::watch_event_message(path, token).unwrap());
    }
}

fn scripted(script: impl FnOnce(&mut Peer) + Send + 'static) -> (Client, JoinHandle<()>) {
    let (a, b) = UnixStream::pair().unwrap();
    let h = thread::spawn(move || {
        script(&mut Peer {
            s: b,
            d: Decoder::new(),
        })
    });
    let c = Client::from_stream(a);
    c.set_timeout(Duration::from_secs(5));
    (c, h)
}

#[test]
fn client_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Client>();
}

#[test]
fn requests_and_replies_match_by_id() {
    let (c, h) = scripted(|p| {
        let r = p.recv().unwrap();
        assert_eq!(r.msg_type(), Ok(MsgType::Write));
        assert_eq!(r.payload, b"/a\0v1");
        p.reply(&r, b"OK\0");
        let r2 = p.recv().unwrap();
        assert_ne!(r2.header.req_id, r.header.req_id);
        assert_eq!(r2.header.tx_id, 7);
        p.reply(&r2, b"v1");
        let r3 = p.recv().unwrap();
        p.reply(&r3, b"n0\0r3\0");
    });
    c.write(TxId::NONE, "/a", b"v1").unwrap();
    assert_eq!(c.read(TxId(7), "/a").unwrap(), b"v1");
    assert_eq!(c.get_perms(TxId::NONE, "/a").unwrap().len(), 2);
    h.join().unwrap();
}

#[test]
fn interleaved_watch_events_are_queued_in_order() {
    let (c, h) = scripted(|p| {
        let w = p.recv().unwrap();
        assert_eq!(w.payload, b"/w\0tok\0");
        p.event("/early", "tok");
        p.reply(&w, b"OK\0");
        p.event("/w", "tok"); // the initial event, after the ack
        let r = p.recv().unwrap();
        p.event("/w/x", "tok");
        p.reply(&r, b"val");
        p.event("/w/y", "tok");
    });
    c.watch("/w", "tok").unwrap();
    assert_eq!(c.read(TxId::NONE, "/w/x").unwrap(), b"val");
    let mut got = Vec::new();
    while let Some(ev) = c.wait_event(Duration::from_secs(2)).unwrap() {
        assert_eq!(ev.token, "tok");
        got.push(ev.path);
        if got.len() == 4 {
            break;
        }
    }
    assert_eq!(got, ["/early", "/w", "/w/x", "/w/y"]);
    h.join().unwrap();
    // Nothing more: a timeout, not an error, and not poisoned.
    let t = Instant::now();
    assert!(matches!(
        c.wait_event(Duration::from_millis(100)),
        Ok(None) | Err(Error::Closed { .. })
    ));
    assert!(t.elapsed() < Duration::from_secs(2));
}

#[test]
fn wait_event_timeout_does_not_poison() {
    let (c, h) = scripted(|p| {
        let r = p.recv().unwrap();
        p.reply(&r, b"x");
    });
    let t = Instant::now();
    assert!(c.wait_event(Duration::from_millis(150)).unwrap().is_none());
    assert!(t.elapsed() >= Duration::from_millis(150));
    assert!(!c.is_poisoned());
    assert_eq!(c.read(TxId::NONE, "/a").unwrap(), b"x");
    h.join().unwrap();
}

#[test]
fn daemon_error_is_typed_and_does_not_poison() {
    let (c, h) = scripted(|p| {
        let r = p.recv().unwrap();
        p.error(&r, Errno::ENOENT);
        let r = p.recv().unwrap();
        p.error(&r, Errno::EACCES);
        let r = p.recv().unwrap();
        p.reply(&r, b"ok");
    });
    let e = c.read(TxId::NONE, "/nope").unwrap_err();
    assert!(e.is_not_found());
    assert!(matches!(&e, Error::Daemon { op: "READ", path, .. } if path == "/nope"));
    assert_eq!(
        c.write(TxId::NONE, "/x", b"").unwrap_err().errno(),
        Some(Errno::EACCES)
    );
    assert_eq!(c.read(TxId::NONE, "/a").unwrap(), b"ok");
    h.join().unwrap();
}

#[test]
fn close_mid_reply_is_closed_then_poisoned() {
    let (c, h) = scripted(|p| {
        let r = p.recv().unwrap();
        let hdr = Header {
            ty: 2,
            req_id: r.header.req_id,
            tx_id: 0,
            len: 10,
        };
        p.s.write_all(&hdr.encode()).unwrap();
        p.s.write_all(b"abc").unwrap();
    });
    let e = c.read(TxId::NONE, "/a").unwrap_err();
    assert!(matches!(e, Error::Closed { op: "READ" }), "{e}");
    h.join().unwrap();
    assert!(c.is_poisoned());
    assert!(matches!(
        c.read(TxId::NONE, "/a"),
        Err(Error::Poisoned { .. })
    ));
}

#[test]
fn unknown_reply_type_is_protocol_error() {
    let (c, h) = scripted(|p| {
        let r = p.recv().unwrap();
        let hdr = Header {
            ty: 99,
            req_id: r.header.req_id,
            tx_id: 0,
            len: 0,
        };
        p.s.write_all(&hdr.encode()).unwrap();
        let _ = p.recv();
    });
    let e = c.read(TxId::NONE, "/a").unwrap_err();
    assert!(
        matches!(&e, Error::Protocol { what, .. } if what.contains("unknown message type 99")),
        "{e}"
    );
    assert!(matches!(
        c.read(TxId::NONE, "/a"),
        Err(Error::Poisoned { .. })
    ));
    drop(c);
    h.join().unwrap();
}

#[test]
fn mismatched_reply_id_or_type_is_protocol_error() {
    let (c, h) = scripted(|p| {
        let r = p.recv().unwrap();
        let m = Message::new(
            MsgType::Read,
            r.header.req_id + 5,
            TxId::NONE,
            b"x".to_vec(),
        )
        .unwrap();
        p.send(&m);
        let _ = p.recv();
    });
    let e = c.read(TxId::NONE, "/a").unwrap_err();
    assert!(
        matches!(&e, Error::Protocol { what, .. } if what.contains("does not match")),
        "{e}"
    );
    drop(c);
    h.join().unwrap();

    let (c, h) = scripted(|p| {
        let r = p.recv().unwrap();
        let m = Message::new(
            MsgType::Write,
            r.header.req_id,
            TxId::NONE,
            b"OK\0".to_vec(),
        )
        .unwrap();
        p.send(&m);
        let _ = p.recv();
    });
    let e = c.read(TxId::NONE, "/a").unwrap_err();
    assert!(
        matches!(&e, Error::Protocol { what, .. } if what.contains("WRITE reply to a READ")),
        "{e}"
    );
    drop(c);
    h.join().unwrap();
}

#[test]
fn oversize_reply_length_is_refused() {
    let (c, h) = scripted(|p| {
        let r = p.recv().unwrap();
        let hdr = Header {
            ty: 2,
            req_id: r.header.req_id,
            tx_id: 0,
            len: 1 << 30,
        };
        p.s.write_all(&hdr.encode()).unwrap();
        let _ = p.recv();
    });
    let t = Instant::now();
    let e = c.read(TxId::NONE, "/a").unwrap_err();
    assert!(
        matches!(
            e,
            Error::MessageTooLarge {
                len: 1073741824,
                max: 4096
            }
        ),
        "{e}"
    );
    assert!(t.elapsed() < Duration::from_secs(2));
    assert!(c.is_poisoned());
    drop(c);
    h.join().unwrap();
}

#[test]
fn silent_peer_times_out_then_poisoned() {
    let (c, h) = scripted(|p| {
        let _r = p.recv().unwrap();
        // Never answer; wait for the client to go away.
        let _ = p.recv();
    });
    c.set_timeout(Duration::from_millis(300));
    let t = Instant::now();
    let e = c.read(TxId::NONE, "/slow").unwrap_err();
    let took = t.elapsed();
    assert!(
        matches!(
            &e,
            Error::Timeout {
                op: "READ",
                timeout_ms: 300,
                ..
            }
        ),
        "{e}"
    );
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(3),
        "{took:?}"
    );
    let t = Instant::now();
    assert!(matches!(
        c.write(TxId::NONE, "/a", b""),
        Err(Error::Poisoned { op: "WRITE", .. })
    ));
    assert!(t.elapsed() < Duration::from_millis(100));
    drop(c);
    h.join().unwrap();
}

#[test]
fn bad_input_is_refused_before_sending() {
    let (c, h) = scripted(|p| {
        // The first request the peer sees is the valid one.
        let r = p.recv().unwrap();
        assert_eq!(r.payload, b"/ok\0");
        p.reply(&r, b"fine");
        assert!(p.recv().is_none());
    });
    let long = format!("/{}", "a".repeat(3072));
    let big = vec![b'v'; 4096];
    let errs = [
        c.read(TxId::NONE, "/a\0b").unwrap_err(),
        c.read(TxId::NONE, &long).unwrap_err(),
        c.read(TxId::NONE, "relative/path").unwrap_err(),
        c.write(TxId::NONE, "/a", &big).unwrap_err(),
        c.write(TxId::NONE, "/a b", b"").unwrap_err(),
        c.watch("/a", "to\0k").unwrap_err(),
        c.watch("@nonsense", "t").unwrap_err(),
        c.set_perms(TxId::NONE, "/a", &[]).unwrap_err(),
    ];
    assert!(matches!(
        errs[0],
        Error::InvalidPath {
            why: "contains a NUL byte",
            ..
        }
    ));
    assert!(matches!(errs[1], Error::InvalidPath { .. }));
    assert!(matches!(
        errs[2],
        Error::InvalidPath {
            why: "relative path where an absolute one is needed",
            ..
        }
    ));
    assert!(matches!(
        errs[3],
        Error::PayloadTooLarge { op: "WRITE", .. }
    ));
    assert!(matches!(errs[4], Error::InvalidPath { .. }));
    assert!(matches!(errs[5], Error::InvalidToken { .. }));
    assert!(matches!(errs[6], Error::InvalidPath { .. }));
    assert!(matches!(errs[7], Error::BadRequest { .. }));
    assert!(!c.is_poisoned());
    assert_eq!(c.read(TxId::NONE, "/ok").unwrap(), b"fine");
    drop(c);
    h.join().unwrap();
}

#[test]
fn directory_falls_back_to_parts_and_restarts_on_generation_change() {
    let names: Vec<String> = (0..400)
        .map(|i| format!("entry-{i:05}-{}", "z".repeat(20)))
        .collect();
    let list = reply::list_payload(&names);
    let expect = names.clone();
    let (c, h) = scripted(move |p| {
        let r = p.recv().unwrap();
        assert_eq!(r.msg_type(), Ok(MsgType::Directory));
        p.error(&r, Errno::E2BIG);
        let mut parts = 0;
        while let Some(r) = p.recv() {
            assert_eq!(r.msg_type(), Ok(MsgType::DirectoryPart));
            let args = crate::wire::request::split_strings(&r.payload).unwrap();
            let off: usize = args[1].parse().unwrap();
            parts += 1;
            // The second part claims a new generation: the client restarts.
            let generation = if parts == 2 { "b" } else { "a" };
            p.reply(&r, &reply::directory_part_payload(generation, &list, off));
        }
        assert!(parts >= 4, "{parts}");
    });
    assert_eq!(c.directory(TxId::NONE, "/big").unwrap(), expect);
    drop(c);
    h.join().unwrap();
}

#[test]
fn directory_part_unsupported_gives_e2big() {
    let (c, h) = scripted(|p| {
        let r = p.recv().unwrap();
        p.error(&r, Errno::E2BIG);
        let r = p.recv().unwrap();
        p.error(&r, Errno::ENOSYS);
    });
    let e = c.directory(TxId::NONE, "/big").unwrap_err();
    assert_eq!(e.errno(), Some(Errno::E2BIG));
    h.join().unwrap();
}

#[test]
fn endpoint_order_follows_libxenstore() {
    use std::ffi::OsString;
    use std::path::PathBuf;
    let env = |pairs: &'static [(&'static str, &'static str)]| {
        move |k: &str| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| OsString::from(v))
        }
    };
    let paths = |eps: Vec<Endpoint>| {
        eps.into_iter()
            .map(|e| (e.kind, e.path))
            .collect::<Vec<_>>()
    };
    let s = EndpointKind::Socket;
    let d = EndpointKind::Device;
    assert_eq!(
        paths(endpoints_from(
            env(&[("XENSTORED_PATH", "/x/s"), ("XENSTORED_RUNDIR", "/r")]),
            |_| true
        )),
        [(s, PathBuf::from("/x/s")), (d, PathBuf::from("/x/s"))]
    );
    assert_eq!(
        paths(endpoints_from(env(&[("XENSTORED_RUNDIR", "/r")]), |_| true)),
        [
            (s, PathBuf::from("/r/socket")),
            (d, PathBuf::from("/dev/xen/xenbus"))
        ]
    );
    assert_eq!(
        paths(endpoints_from(env(&[]), |_| false)),
        [
            (s, PathBuf::from("/var/run/xenstored/socket")),
            (d, PathBuf::from("/proc/xen/xenbus"))
        ]
    );
}

#[test]
fn connect_error_lists_every_place_tried() {
    let dir = std::env::temp_dir().join(format!("vusb-xs-noconn-{}", std::process::id()));
    let eps = endpoints_from(
        |k| (k == "XENSTORED_RUNDIR").then(|| dir.clone().into_os_string()),
        |_| true,
    );
    let e = Client::open_first(&eps).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, Error::Connect { .. }));
    assert!(
        msg.contains("socket") && msg.contains("vusb-xs-noconn") && msg.contains("/dev/xen/xenbus"),
        "{msg}"
    );
}

/// Deterministic xorshift, so failures reproduce.
fn rng(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

#[test]
fn garbage_replies_never_panic_or_hang() {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for case in 0..300 {
        let mut bytes = Vec::new();
        let n = (rng(&mut seed) % 64) as usize;
        let mode = case % 3;
        let s2 = rng(&mut seed);
        let (c, h) = scripted(move |p| {
            let Some(r) = p.recv() else { return };
            let mut s = s2;
            if mode > 0 {
                // A plausible header: right id, a known or unknown type,
                // a small length; then random bytes.
                let ty = if mode == 1 {
                    r.header.ty
                } else {
                    (rng(&mut s) % 30) as u32
                };
                let len = (rng(&mut s) % 40) as u32;
                bytes.extend(
                    Header {
                        ty,
                        req_id: r.header.req_id,
                        tx_id: 0,
                        len,
                    }
                    .encode(),
                );
            }
            for _ in 0..n {
                bytes.push(rng(&mut s) as u8);
            }
            let _ = p.s.write_all(&bytes);
        });
        c.set_timeout(Duration::from_millis(500));
        let t = Instant::now();
        let ops: [&dyn Fn() -> bool; 5] = [
            &|| c.read(TxId::NONE, "/a").is_ok(),
            &|| c.directory(TxId::NONE, "/a").is_ok(),
            &|| c.get_perms(TxId::NONE, "/a").is_ok(),
            &|| c.transaction_start().is_ok(),
            &|| c.is_domain_introduced(1).is_ok(),
        ];
        let _ = ops[case % 5]();
        let _ = c.wait_event(Duration::from_millis(10));
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "case {case} took {:?}",
            t.elapsed()
        );
        drop(c);
        h.join().unwrap();
    }
}
