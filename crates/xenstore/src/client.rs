//! The blocking xenstore client: one connection to xenstored (Unix socket)
//! or to the xenbus device, shared by threads through a mutex.
//!
//! Matches libxenstore in how it connects ([`endpoint`]), in falling back
//! from `XS_DIRECTORY` to `XS_DIRECTORY_PART` when the daemon answers
//! `E2BIG` (starting over when the node's generation changes), and in
//! queueing watch events that arrive between replies (the initial event of
//! a new watch included) for [`XenstoreWatch::wait_event`] — bounded here:
//! equal events are coalesced and at most [`MAX_QUEUED_EVENTS`] kept; past
//! that `wait_event` reports [`Error::WatchEventsOverflowed`] once, and the
//! caller re-reads the state it watches (libxenstore's queue is unbounded).
//!
//! Differs from libxenstore on purpose:
//! - every request has a timeout (default [`DEFAULT_TIMEOUT`]); libxenstore
//!   waits forever. After a timeout, a closed stream or a protocol
//!   violation the connection is *poisoned*: every later call fails at once
//!   with [`Error::Poisoned`]; open a new client.
//! - paths are checked before sending ([`crate::wire::path`]); relative
//!   paths are refused unless [`Client::set_relative_paths`] allows them,
//!   because a toolstack's relative path is almost always a missing `/`.
//! - a directory that keeps changing while read in parts gives up after
//!   [`DIRECTORY_PART_ATTEMPTS`] restarts ([`Error::DirectoryChanging`]).
//!
//! One request is in flight at a time; `wait_event` holds the connection
//! while it waits, so use a separate client for a thread that waits for
//! events while others issue requests.

mod conn;
pub mod endpoint;
mod events;

use std::fs::OpenOptions;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use conn::{Call, Conn, Stream};
pub use endpoint::{Endpoint, EndpointKind, default_endpoints, endpoints_from};
pub use events::MAX_QUEUED_EVENTS;

use crate::wire::{DirectoryPart, MsgType, Request, reply};
use crate::{DomId, Errno, Error, Perm, Result, TxId, WatchEvent, Xenstore, XenstoreWatch};

/// The request timeout of a new client.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// How often reading a directory in parts restarts before giving up.
pub const DIRECTORY_PART_ATTEMPTS: u32 = 16;

/// A connection to a xenstore daemon. `Send + Sync`; all methods take
/// `&self`.
pub struct Client {
    conn: Mutex<Conn>,
    endpoint: String,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("endpoint", &self.endpoint)
            .finish()
    }
}

impl Client {
    /// Connects where libxenstore would: see [`endpoint`]. The error lists
    /// every place tried.
    pub fn open() -> Result<Client> {
        Client::open_first(&default_endpoints())
    }

    /// Connects to the first endpoint of `endpoints` that opens.
    pub fn open_first(endpoints: &[Endpoint]) -> Result<Client> {
        let mut tried = Vec::new();
        let mut last = std::io::Error::from(std::io::ErrorKind::NotFound);
        for ep in endpoints {
            match Client::open_endpoint(ep) {
                Ok(c) => return Ok(c),
                Err(e) => {
                    log::debug!("xenstore: cannot open {ep}: {e}");
                    tried.push(format!("{ep}: {e}"));
                    last = e;
                }
            }
        }
        Err(Error::Connect {
            tried: tried.join("; "),
            source: last,
        })
    }

    fn open_endpoint(ep: &Endpoint) -> std::io::Result<Client> {
        let stream = match ep.kind {
            EndpointKind::Socket => Stream::Socket(UnixStream::connect(&ep.path)?),
            EndpointKind::Device => {
                Stream::Device(OpenOptions::new().read(true).write(true).open(&ep.path)?)
            }
        };
        log::debug!("xenstore: connected to {ep}");
        Ok(Client::with_stream(stream, ep.to_string()))
    }

    /// Connects to the daemon's Unix socket at `path`.
    pub fn connect(path: impl AsRef<Path>) -> Result<Client> {
        Client::open_first(&[Endpoint {
            kind: EndpointKind::Socket,
            path: path.as_ref().to_path_buf(),
        }])
    }

    /// Uses an already connected socket (tests, socket pairs).
    pub fn from_stream(stream: UnixStream) -> Client {
        Client::with_stream(Stream::Socket(stream), "socket (given)".to_owned())
    }

    fn with_stream(stream: Stream, endpoint: String) -> Client {
        Client {
            conn: Mutex::new(Conn::new(stream, DEFAULT_TIMEOUT)),
            endpoint,
        }
    }

    /// Where this client is connected, for messages.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    fn lock(&self, op: &'static str) -> Result<MutexGuard<'_, Conn>> {
        self.conn.lock().map_err(|_| Error::Poisoned {
            op,
            earlier: "a thread panicked while using the connection".to_owned(),
        })
    }

    /// Sets the request timeout (also bounds each wait for a reply).
    pub fn set_timeout(&self, timeout: Duration) {
        if let Ok(mut c) = self.conn.lock() {
            c.set_timeout(timeout);
        }
    }

    /// The request timeout.
    pub fn timeout(&self) -> Duration {
        self.conn
            .lock()
            .map(|c| c.timeout)
            .unwrap_or(DEFAULT_TIMEOUT)
    }

    /// Allows (or refuses, the default) paths relative to the domain home.
    pub fn set_relative_paths(&self, allowed: bool) {
        if let Ok(mut c) = self.conn.lock() {
            c.relative_ok = allowed;
        }
    }

    /// True once an earlier failure made the connection unusable.
    pub fn is_poisoned(&self) -> bool {
        self.conn
            .lock()
            .map(|c| c.poisoned.is_some())
            .unwrap_or(true)
    }

    /// Validates, sends `req` and returns the reply payload.
    fn call(&self, tx: TxId, req: &Request<'_>) -> Result<Vec<u8>> {
        let ty = req.msg_type();
        let mut conn = self.lock(ty.as_str())?;
        req.validate(conn.relative_ok)?;
        let msg = req.encode(0, tx)?;
        let subject = req.subject();
        conn.exchange(
            msg,
            &Call {
                ty,
                subject: &subject,
            },
        )
    }

    fn call_ok(&self, tx: TxId, req: &Request<'_>) -> Result<()> {
        let payload = self.call(tx, req)?;
        self.checked(reply::parse_ok(req.msg_type(), &payload))
    }

    /// Poisons the connection on a reply that does not parse.
    fn checked<T>(&self, r: Result<T>) -> Result<T> {
        if let Err(e) = &r
            && let Ok(mut c) = self.conn.lock()
        {
            c.poisoned = Some(e.to_string());
        }
        r
    }

    /// `XS_DIRECTORY_PART`: one part of `path`'s child list from byte
    /// `offset`.
    pub fn directory_part(&self, tx: TxId, path: &str, offset: u32) -> Result<DirectoryPart> {
        let payload = self.call(tx, &Request::DirectoryPart { path, offset })?;
        self.checked(reply::parse_directory_part(&payload))
    }

    /// The children of `path` read with `XS_DIRECTORY_PART` only, starting
    /// over when the generation changes (as libxenstore does).
    pub fn directory_by_parts(&self, tx: TxId, path: &str) -> Result<Vec<String>> {
        for attempt in 1..=DIRECTORY_PART_ATTEMPTS {
            let mut children = Vec::new();
            let mut offset = 0usize;
            let mut generation = None;
            loop {
                let off = u32::try_from(offset).map_err(|_| Error::Protocol {
                    op: MsgType::DirectoryPart.as_str(),
                    what: "child list offset overflow".into(),
                })?;
                let part = match self.directory_part(tx, path, off) {
                    Err(e) if e.errno() == Some(Errno::ENOSYS) => {
                        return Err(Error::Daemon {
                            op: "DIRECTORY_PART",
                            path: path.into(),
                            errno: Errno::E2BIG,
                        });
                    }
                    other => other?,
                };
                if generation.get_or_insert_with(|| part.generation.clone()) != &part.generation {
                    log::debug!("xenstore: {path} changed while read in parts (attempt {attempt})");
                    break;
                }
                if !part.complete && part.chunk_len == 0 {
                    return self.checked(Err(Error::Protocol {
                        op: MsgType::DirectoryPart.as_str(),
                        what: "empty part before the end of the list".into(),
                    }));
                }
                offset += part.chunk_len;
                children.extend(part.children);
                if part.complete {
                    return Ok(children);
                }
            }
        }
        Err(Error::DirectoryChanging {
            path: path.to_owned(),
            attempts: DIRECTORY_PART_ATTEMPTS,
        })
    }

    /// `XS_GET_DOMAIN_PATH`: the home of `domid` (`/local/domain/<domid>`).
    pub fn get_domain_path(&self, domid: DomId) -> Result<String> {
        let payload = self.call(TxId::NONE, &Request::GetDomainPath { domid })?;
        self.checked(reply::parse_string(MsgType::GetDomainPath, &payload))
    }

    /// `XS_IS_DOMAIN_INTRODUCED`.
    pub fn is_domain_introduced(&self, domid: DomId) -> Result<bool> {
        let payload = self.call(TxId::NONE, &Request::IsDomainIntroduced { domid })?;
        self.checked(reply::parse_bool(MsgType::IsDomainIntroduced, &payload))
    }

    /// `XS_INTRODUCE`: tells the daemon about a domain's ring page and
    /// event channel.
    pub fn introduce(&self, domid: DomId, mfn: u64, evtchn: u32) -> Result<()> {
        self.call_ok(TxId::NONE, &Request::Introduce { domid, mfn, evtchn })
    }

    /// `XS_RELEASE`: forgets a domain (fires `@releaseDomain`).
    pub fn release(&self, domid: DomId) -> Result<()> {
        self.call_ok(TxId::NONE, &Request::Release { domid })
    }

    /// `XS_SET_TARGET`: lets `domid` (a device model) act on `target`.
    pub fn set_target(&self, domid: DomId, target: DomId) -> Result<()> {
        self.call_ok(TxId::NONE, &Request::SetTarget { domid, target })
    }

    /// How many watch events are queued (at most [`MAX_QUEUED_EVENTS`]).
    pub fn queued_events(&self) -> usize {
        self.conn.lock().map(|c| c.events.len()).unwrap_or(0)
    }

    /// `XS_RESET_WATCHES`: drops every watch (and transaction) of this
    /// connection. Queued events are dropped too.
    pub fn reset_watches(&self) -> Result<()> {
        self.call_ok(TxId::NONE, &Request::ResetWatches)?;
        if let Ok(mut c) = self.conn.lock() {
            c.events.clear();
        }
        Ok(())
    }
}

impl Xenstore for Client {
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
            Ok(payload) => self.checked(reply::parse_list(MsgType::Directory, &payload)),
            Err(e) if e.errno() == Some(Errno::E2BIG) && matches!(e, Error::Daemon { .. }) => {
                log::debug!("xenstore: {path} too large for DIRECTORY, reading in parts");
                self.directory_by_parts(tx, path)
            }
            Err(e) => Err(e),
        }
    }

    fn get_perms(&self, tx: TxId, path: &str) -> Result<Vec<Perm>> {
        let payload = self.call(tx, &Request::GetPerms { path })?;
        self.checked(reply::parse_perms(MsgType::GetPerms, &payload))
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
        let payload = self.call(TxId::NONE, &Request::TransactionStart)?;
        self.checked(reply::parse_tx_id(MsgType::TransactionStart, &payload))
    }

    fn transaction_end(&self, tx: TxId, commit: bool) -> Result<()> {
        self.call_ok(tx, &Request::TransactionEnd { commit })
    }
}

impl XenstoreWatch for Client {
    fn watch(&self, path: &str, token: &str) -> Result<()> {
        self.call_ok(TxId::NONE, &Request::Watch { path, token })
    }

    fn unwatch(&self, path: &str, token: &str) -> Result<()> {
        self.call_ok(TxId::NONE, &Request::Unwatch { path, token })
    }

    fn wait_event(&self, timeout: Duration) -> Result<Option<WatchEvent>> {
        self.lock(MsgType::WatchEvent.as_str())?.wait_event(timeout)
    }
}

#[cfg(test)]
mod tests;
