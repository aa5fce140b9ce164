//! A raw wire connection, for what the client refuses to send (bad paths,
//! unknown types, oversized payloads) and for exact byte transcripts.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// A raw connection.
pub struct Raw {
    s: UnixStream,
    req: u32,
    /// Watch events received while waiting for replies (payloads).
    pub events: Vec<Vec<u8>>,
}

/// NUL-terminated strings.
pub fn z(parts: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in parts {
        out.extend_from_slice(p.as_bytes());
        out.push(0);
    }
    out
}

/// Message types used here.
pub mod ty {
    pub const DIRECTORY: u32 = 1;
    pub const READ: u32 = 2;
    pub const GET_PERMS: u32 = 3;
    pub const WATCH: u32 = 4;
    pub const UNWATCH: u32 = 5;
    pub const TRANSACTION_START: u32 = 6;
    pub const TRANSACTION_END: u32 = 7;
    pub const INTRODUCE: u32 = 8;
    pub const RELEASE: u32 = 9;
    pub const GET_DOMAIN_PATH: u32 = 10;
    pub const WRITE: u32 = 11;
    pub const MKDIR: u32 = 12;
    pub const RM: u32 = 13;
    pub const SET_PERMS: u32 = 14;
    pub const WATCH_EVENT: u32 = 15;
    pub const ERROR: u32 = 16;
    pub const IS_DOMAIN_INTRODUCED: u32 = 17;
    pub const RESET_WATCHES: u32 = 21;
    pub const DIRECTORY_PART: u32 = 22;
}

impl Raw {
    pub fn connect(p: &Path) -> Raw {
        let s = UnixStream::connect(p).expect("raw connect");
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        Raw {
            s,
            req: 0,
            events: Vec::new(),
        }
    }

    pub fn send(&mut self, t: u32, tx: u32, payload: &[u8]) -> u32 {
        self.req += 1;
        let mut m = Vec::new();
        for v in [t, self.req, tx, payload.len() as u32] {
            m.extend_from_slice(&v.to_le_bytes());
        }
        m.extend_from_slice(payload);
        self.s.write_all(&m).expect("raw send");
        self.req
    }

    /// One message; `None` on timeout or close.
    pub fn recv(&mut self, timeout: Duration) -> Option<(u32, u32, Vec<u8>)> {
        self.s.set_read_timeout(Some(timeout)).ok()?;
        let mut h = [0u8; 16];
        self.s.read_exact(&mut h).ok()?;
        let w = |i: usize| u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
        let mut body = vec![0u8; w(12) as usize];
        self.s.read_exact(&mut body).ok()?;
        Some((w(0), w(4), body))
    }

    /// Sends a request and returns `(type, payload)` of its reply; watch
    /// events in between are kept in `events`.
    pub fn call(&mut self, t: u32, tx: u32, payload: &[u8]) -> (u32, Vec<u8>) {
        let id = self.send(t, tx, payload);
        loop {
            let (rt, rid, body) = self.recv(Duration::from_secs(5)).expect("reply");
            if rt == ty::WATCH_EVENT {
                self.events.push(body);
                continue;
            }
            assert_eq!(rid, id, "reply to the request sent");
            return (rt, body);
        }
    }

    /// The error name of a reply, or `None` if it was not `XS_ERROR`.
    pub fn err(&mut self, t: u32, tx: u32, payload: &[u8]) -> Option<String> {
        match self.call(t, tx, payload) {
            (ty::ERROR, b) => Some(
                String::from_utf8_lossy(&b)
                    .trim_end_matches('\0')
                    .to_owned(),
            ),
            _ => None,
        }
    }

    /// Every message received within `quiet` of the previous one:
    /// `(type, req_id, payload)`.
    pub fn drain(&mut self, quiet: Duration) -> Vec<(u32, u32, Vec<u8>)> {
        std::iter::from_fn(|| self.recv(quiet)).collect()
    }
}
