//! A guest-domain connection to the **real** xenstored of
//! [`crate::xenstored`]: after dom0 sends `XS_INTRODUCE` for domain N, the
//! harness shim maps the file `DIR/ring-N` as that domain's xenstore ring
//! page; [`GuestConn`] plays the guest side of it, and pokes the daemon
//! through the `DIR/evtchn` FIFO. The daemon then enforces permissions as
//! for a real unprivileged guest.
//!
//! The page layout is `struct xenstore_domain_interface` of `xs_wire.h`:
//! request ring at 0, response ring at 1024 (1024 bytes each), then the
//! indexes `req_cons`, `req_prod`, `rsp_cons`, `rsp_prod` (little-endian
//! `u32` at 2048..2064). Access is by `pread`/`pwrite` on the file (the
//! daemon has it mapped shared, so both see one page cache page), without
//! `mmap` and without `unsafe`. The guest polls for responses (the shim
//! does not signal guests).

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use vusb_xenstore::wire::{Decoder, Message, MsgType, Request, reply};
use vusb_xenstore::{
    DomId, Error, Perm, Result, TxId, WatchEvent, Xenstore, XenstoreWatch, client::Client,
};

const RING: u64 = 1024;
const REQ: u64 = 0;
const RSP: u64 = 1024;
const REQ_CONS: u64 = 2048;
const REQ_PROD: u64 = 2052;
const RSP_CONS: u64 = 2056;
const RSP_PROD: u64 = 2060;
/// Any port other than the VIRQ one just wakes the daemon's main loop.
const WAKE_PORT: u32 = 0x7ff0;

/// Writes a little-endian port number into the fake event channel FIFO.
pub fn kick_evtchn(fifo: &Path, port: u32) -> io::Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(fifo)?;
    match f.write(&port.to_le_bytes()) {
        Ok(_) => Ok(()),
        // A full FIFO already holds wake-ups enough.
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
        Err(e) => Err(e),
    }
}

struct State {
    decoder: Decoder,
    events: VecDeque<WatchEvent>,
}

/// The guest side of domain `domid`'s ring page.
pub struct GuestConn {
    domid: DomId,
    ring: File,
    evtchn: PathBuf,
    timeout: Duration,
    state: Mutex<State>,
}

impl std::fmt::Debug for GuestConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuestConn")
            .field("domid", &self.domid)
            .finish()
    }
}

fn io_err(op: &'static str, source: io::Error) -> Error {
    Error::Io { op, source }
}

impl GuestConn {
    /// Introduces `domid` through the privileged `dom0` connection, then
    /// opens its ring in `dir` (the daemon's instance directory).
    pub fn introduce(dom0: &Client, dir: &Path, domid: DomId) -> Result<GuestConn> {
        dom0.introduce(domid, 1, 7)?;
        GuestConn::open(dir, domid)
    }

    /// Opens the ring of an already introduced `domid`.
    pub fn open(dir: &Path, domid: DomId) -> Result<GuestConn> {
        let path = dir.join(format!("ring-{domid}"));
        let ring = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| io_err("INTRODUCE", e))?;
        Ok(GuestConn {
            domid,
            ring,
            evtchn: dir.join("evtchn"),
            timeout: Duration::from_secs(5),
            state: Mutex::new(State {
                decoder: Decoder::new(),
                events: VecDeque::new(),
            }),
        })
    }

    /// The domain this connection acts as.
    pub fn domid(&self) -> DomId {
        self.domid
    }

    fn u32_at(&self, off: u64) -> io::Result<u32> {
        let mut b = [0u8; 4];
        self.ring.read_exact_at(&mut b, off)?;
        Ok(u32::from_le_bytes(b))
    }

    fn set_u32(&self, off: u64, v: u32) -> io::Result<()> {
        self.ring.write_all_at(&v.to_le_bytes(), off)
    }

    fn kick(&self) -> io::Result<()> {
        kick_evtchn(&self.evtchn, WAKE_PORT)
    }

    fn send(&self, bytes: &[u8]) -> io::Result<()> {
        let deadline = Instant::now() + self.timeout;
        let mut rest = bytes;
        while !rest.is_empty() {
            let cons = self.u32_at(REQ_CONS)?;
            let prod = self.u32_at(REQ_PROD)?;
            let used = prod.wrapping_sub(cons) as u64;
            let free = RING.saturating_sub(used) as usize;
            if free == 0 {
                if Instant::now() > deadline {
                    return Err(io::Error::new(io::ErrorKind::TimedOut, "request ring full"));
                }
                std::thread::sleep(Duration::from_micros(200));
                continue;
            }
            let n = free.min(rest.len());
            let start = prod as u64 % RING;
            let first = ((RING - start) as usize).min(n);
            self.ring.write_all_at(&rest[..first], REQ + start)?;
            if first < n {
                self.ring.write_all_at(&rest[first..n], REQ)?;
            }
            self.set_u32(REQ_PROD, prod.wrapping_add(n as u32))?;
            self.kick()?;
            rest = &rest[n..];
        }
        Ok(())
    }

    /// Moves available response bytes into the decoder; true if any.
    fn pull(&self, st: &mut State) -> io::Result<bool> {
        let cons = self.u32_at(RSP_CONS)?;
        let prod = self.u32_at(RSP_PROD)?;
        let avail = prod.wrapping_sub(cons) as u64;
        if avail == 0 {
            return Ok(false);
        }
        let mut buf = vec![0u8; avail.min(RING) as usize];
        let start = cons as u64 % RING;
        let first = (RING - start).min(buf.len() as u64) as usize;
        self.ring.read_exact_at(&mut buf[..first], RSP + start)?;
        if first < buf.len() {
            self.ring.read_exact_at(&mut buf[first..], RSP)?;
        }
        self.set_u32(RSP_CONS, cons.wrapping_add(buf.len() as u32))?;
        // The daemon may be waiting for room to write more.
        self.kick()?;
        st.decoder.push(&buf);
        Ok(true)
    }

    /// The next message that is not a watch event (events are queued).
    fn next_reply(&self, st: &mut State, op: &'static str, deadline: Instant) -> Result<Message> {
        loop {
            while let Some(msg) = st.decoder.next_message()? {
                if msg.header.ty == MsgType::WatchEvent.number() {
                    st.events.push_back(reply::parse_watch_event(&msg.payload)?);
                    continue;
                }
                return Ok(msg);
            }
            if !self.pull(st).map_err(|e| io_err(op, e))? {
                if Instant::now() > deadline {
                    return Err(Error::Timeout {
                        op,
                        path: String::new(),
                        timeout_ms: self.timeout.as_millis() as u64,
                    });
                }
                std::thread::sleep(Duration::from_micros(200));
            }
        }
    }

    /// Sends `req` and returns the reply payload, or the daemon's error.
    fn call(&self, tx: TxId, req: &Request<'_>) -> Result<Vec<u8>> {
        let ty = req.msg_type();
        let op = ty.as_str();
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let msg = req.encode(0, tx)?;
        self.send(&msg.encode()).map_err(|e| io_err(op, e))?;
        let deadline = Instant::now() + self.timeout;
        let reply_msg = self.next_reply(&mut st, op, deadline)?;
        if reply_msg.header.ty == MsgType::Error.number() {
            let errno = reply::parse_error(ty, &reply_msg.payload)?;
            return Err(Error::Daemon {
                op,
                path: req.subject(),
                errno,
            });
        }
        if reply_msg.header.ty != ty.number() {
            return Err(Error::Protocol {
                op,
                what: format!("reply of type {} to {op}", reply_msg.header.ty),
            });
        }
        Ok(reply_msg.payload)
    }

    fn call_ok(&self, tx: TxId, req: &Request<'_>) -> Result<()> {
        let p = self.call(tx, req)?;
        reply::parse_ok(req.msg_type(), &p)
    }

    /// `XS_GET_DOMAIN_PATH`.
    pub fn get_domain_path(&self, domid: DomId) -> Result<String> {
        let p = self.call(TxId::NONE, &Request::GetDomainPath { domid })?;
        reply::parse_string(MsgType::GetDomainPath, &p)
    }

    /// `XS_IS_DOMAIN_INTRODUCED` (a guest gets `EACCES`).
    pub fn is_domain_introduced(&self, domid: DomId) -> Result<bool> {
        let p = self.call(TxId::NONE, &Request::IsDomainIntroduced { domid })?;
        reply::parse_bool(MsgType::IsDomainIntroduced, &p)
    }

    /// `XS_INTRODUCE` sent by the guest itself (the daemon refuses it).
    pub fn introduce_other(&self, domid: DomId) -> Result<()> {
        self.call_ok(
            TxId::NONE,
            &Request::Introduce {
                domid,
                mfn: 1,
                evtchn: 7,
            },
        )
    }

    /// `XS_DIRECTORY_PART` raw reply parse.
    pub fn directory_part(
        &self,
        tx: TxId,
        path: &str,
        offset: u32,
    ) -> Result<reply::DirectoryPart> {
        let p = self.call(tx, &Request::DirectoryPart { path, offset })?;
        reply::parse_directory_part(&p)
    }
}

impl Xenstore for GuestConn {
    fn read(&self, tx: TxId, path: &str) -> Result<Vec<u8>> {
        self.call(tx, &Request::Read { path })
    }

    fn write(&self, tx: TxId, path: &str, value: &[u8]) -> Result<()> {
        self.call_ok(tx, &Request::Write { path, value })
    }

    fn mkdir(&self, tx: TxId, path: &str) -> Result<()> {
        self.call_ok(tx, &Request::Mkdir { path })
    }

    fn rm(&self, tx: TxId, path: &str) -> Result<()> {
        self.call_ok(tx, &Request::Rm { path })
    }

    fn directory(&self, tx: TxId, path: &str) -> Result<Vec<String>> {
        match self.call(tx, &Request::Directory { path }) {
            Ok(p) => reply::parse_list(MsgType::Directory, &p),
            Err(e) if e.errno() == Some(vusb_xenstore::Errno::E2BIG) => {
                let mut out = Vec::new();
                let mut offset = 0u32;
                loop {
                    let part = self.directory_part(tx, path, offset)?;
                    out.extend(part.children);
                    if part.complete {
                        return Ok(out);
                    }
                    offset += part.chunk_len as u32;
                }
            }
            Err(e) => Err(e),
        }
    }

    fn get_perms(&self, tx: TxId, path: &str) -> Result<Vec<Perm>> {
        let p = self.call(tx, &Request::GetPerms { path })?;
        reply::parse_perms(MsgType::GetPerms, &p)
    }

    fn set_perms(&self, tx: TxId, path: &str, perms: &[Perm]) -> Result<()> {
        self.call_ok(
            tx,
            &Request::SetPerms {
                path,
                perms: perms.to_vec(),
            },
        )
    }

    fn transaction_start(&self) -> Result<TxId> {
        let p = self.call(TxId::NONE, &Request::TransactionStart)?;
        reply::parse_tx_id(MsgType::TransactionStart, &p)
    }

    fn transaction_end(&self, tx: TxId, commit: bool) -> Result<()> {
        self.call_ok(tx, &Request::TransactionEnd { commit })
    }
}

impl XenstoreWatch for GuestConn {
    fn watch(&self, path: &str, token: &str) -> Result<()> {
        self.call_ok(TxId::NONE, &Request::Watch { path, token })
    }

    fn unwatch(&self, path: &str, token: &str) -> Result<()> {
        self.call_ok(TxId::NONE, &Request::Unwatch { path, token })
    }

    fn wait_event(&self, timeout: Duration) -> Result<Option<WatchEvent>> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(ev) = st.events.pop_front() {
                return Ok(Some(ev));
            }
            while let Some(msg) = st.decoder.next_message()? {
                if msg.header.ty == MsgType::WatchEvent.number() {
                    st.events.push_back(reply::parse_watch_event(&msg.payload)?);
                } else {
                    return Err(Error::Protocol {
                        op: "WATCH_EVENT",
                        what: format!("unexpected message type {} on the ring", msg.header.ty),
                    });
                }
            }
            if !st.events.is_empty() {
                continue;
            }
            if !self.pull(&mut st).map_err(|e| io_err("WATCH_EVENT", e))? {
                if Instant::now() >= deadline {
                    return Ok(None);
                }
                std::thread::sleep(Duration::from_micros(500));
            }
        }
    }
}
