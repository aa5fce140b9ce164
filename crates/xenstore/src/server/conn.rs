//! One client connection of the [`Server`](super::Server): a thread reading
//! requests and answering them, and a thread pushing watch events caused by
//! other connections.
//!
//! Ordering matches the C daemon: the events a request causes on its own
//! connection are sent before its reply, the initial event of a `WATCH`
//! right after the `WATCH` reply. Both threads write under one lock, and a
//! request is handled and answered while holding it.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::request;
use crate::mem::{ConnId, MemStore, Op, Reply};
use crate::wire::{Decoder, Header, Message, MsgType};
use crate::{DomId, Errno, WatchEvent};

fn encode(ty: u32, req_id: u32, tx_id: u32, payload: Vec<u8>) -> Vec<u8> {
    let msg = Message {
        header: Header {
            ty,
            req_id,
            tx_id,
            len: u32::try_from(payload.len()).unwrap_or(u32::MAX),
        },
        payload,
    };
    msg.encode()
}

fn reply_payload(reply: Reply) -> Vec<u8> {
    let mut out = Vec::new();
    match reply {
        Reply::Ok => out.extend_from_slice(b"OK\0"),
        Reply::Raw(v) => out = v,
        Reply::List(names) => names.iter().for_each(|n| {
            out.extend_from_slice(n.as_bytes());
            out.push(0);
        }),
        Reply::Perms(perms) => perms.iter().for_each(|p| {
            out.extend_from_slice(p.to_string().as_bytes());
            out.push(0);
        }),
        Reply::Text(s) => {
            out.extend_from_slice(s.as_bytes());
            out.push(0);
        }
    }
    out
}

fn event_bytes(ev: &WatchEvent) -> Vec<u8> {
    let mut p = Vec::with_capacity(ev.path.len() + ev.token.len() + 2);
    p.extend_from_slice(ev.path.as_bytes());
    p.push(0);
    p.extend_from_slice(ev.token.as_bytes());
    p.push(0);
    encode(MsgType::WatchEvent.number(), 0, 0, p)
}

struct Conn {
    store: MemStore,
    id: ConnId,
    writer: Mutex<UnixStream>,
    closed: AtomicBool,
}

impl Conn {
    fn write_events(&self, out: &mut UnixStream) -> std::io::Result<()> {
        for ev in self.store.drain_events(self.id) {
            out.write_all(&event_bytes(&ev))?;
        }
        Ok(())
    }

    fn answer(&self, msg: &Message) -> std::io::Result<()> {
        let h = msg.header;
        let mut out = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let op = request::decode(h.ty, &msg.payload);
        let is_watch = matches!(op, Ok(Op::Watch(..)));
        let result = op.and_then(|op| self.store.handle(self.id, h.tx_id, op));
        let bytes = match result {
            Ok(reply) => encode(h.ty, h.req_id, h.tx_id, reply_payload(reply)),
            Err(e) => encode(MsgType::Error.number(), h.req_id, h.tx_id, errno_payload(e)),
        };
        if is_watch {
            out.write_all(&bytes)?;
            self.write_events(&mut out)
        } else {
            self.write_events(&mut out)?;
            out.write_all(&bytes)
        }
    }
}

fn errno_payload(e: Errno) -> Vec<u8> {
    let mut p = e.as_str().as_bytes().to_vec();
    p.push(0);
    p
}

/// Serves one accepted stream until the client closes it (or the server
/// shuts the stream down). Runs in the caller's thread.
pub fn serve(store: MemStore, domid: DomId, stream: UnixStream) {
    let writer = match stream.try_clone() {
        Ok(w) => w,
        Err(e) => {
            log::warn!("xenstore server: cannot clone connection stream: {e}");
            return;
        }
    };
    let id = store.raw_connect(domid);
    let conn = Arc::new(Conn {
        store: store.clone(),
        id,
        writer: Mutex::new(writer),
        closed: AtomicBool::new(false),
    });
    let pusher = {
        let conn = Arc::clone(&conn);
        std::thread::spawn(move || push_events(&conn))
    };
    if let Err(e) = read_loop(&conn, &stream) {
        log::debug!("xenstore server: connection {id} ended: {e}");
    }
    // Close it for the client even while other handles to it exist.
    let _ = stream.shutdown(std::net::Shutdown::Both);
    conn.closed.store(true, Ordering::SeqCst);
    store.raw_disconnect(id);
    if pusher.join().is_err() {
        log::warn!("xenstore server: event thread of connection {id} panicked");
    }
}

fn read_loop(conn: &Conn, mut stream: &UnixStream) -> std::io::Result<()> {
    let mut decoder = Decoder::new();
    let mut buf = vec![0u8; 8192];
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        decoder.push(&buf[..n]);
        loop {
            match decoder.next_message() {
                Ok(Some(msg)) => {
                    log::trace!(
                        "xenstore server: conn {} request type {}",
                        conn.id,
                        msg.header.ty
                    );
                    conn.answer(&msg)?;
                }
                Ok(None) => break,
                Err(e) => {
                    // As xenstored: an oversized message drops the client.
                    log::debug!("xenstore server: dropping connection {}: {e}", conn.id);
                    return Ok(());
                }
            }
        }
    }
}

fn push_events(conn: &Conn) {
    while !conn.closed.load(Ordering::SeqCst) {
        if !conn
            .store
            .wait_for_events(conn.id, Duration::from_millis(100))
        {
            continue;
        }
        let mut out = conn.writer.lock().unwrap_or_else(|e| e.into_inner());
        if conn.write_events(&mut out).is_err() {
            return;
        }
    }
}
