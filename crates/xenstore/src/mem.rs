//! An in-memory xenstore with the semantics of the C xenstored 4.17, for
//! fast tests, the built-in simulated host (`vusb sim`) and the socket
//! [`server`](crate::server).
//!
//! Behaviour is the daemon's as measured against the real one (the
//! conformance suite in `tests/conformance*.rs` runs the same cases against
//! both; `docs/xenstore-memstore.md` lists the rules and the known
//! divergences):
//! - nodes with values, permissions (owner = `perms[0]`, its kind the
//!   default for others, then ACL entries; dom0 may do anything), children
//!   in creation order; a created node inherits its parent's permissions,
//!   with the owner rewritten to the creating domain unless that is dom0;
//! - transactions without snapshots but with per-node generations: commit
//!   fails with `EAGAIN` if any node the transaction read or wrote (or
//!   looked for and missed) changed meanwhile; its watch events fire at
//!   commit, once per node, in first-touch order;
//! - watches with the initial event, subtree events, removal events for
//!   watches below a removed node, the special `@introduceDomain` and
//!   `@releaseDomain`, relative watches reporting relative paths;
//! - domains: `INTRODUCE`/`RELEASE`/`IS_DOMAIN_INTRODUCED` (dom0 only),
//!   `GET_DOMAIN_PATH`; quotas on unprivileged domains (node size, watch
//!   and transaction counts).
//!
//! [`MemStore::connect`] gives a connection acting as a domain, which
//! implements [`Xenstore`] and [`XenstoreWatch`] in process.

mod nodeops;
mod path;
mod state;
mod tree;
mod watch;

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub use nodeops::Quotas;
pub(crate) use path::atoi_domid;
pub(crate) use state::{ConnId, Op, Reply};

use crate::{DomId, Errno, Error, Perm, Result, TxId, WatchEvent, Xenstore, XenstoreWatch};

#[derive(Debug)]
struct Shared {
    state: Mutex<state::State>,
    events: Condvar,
}

/// The store; cheap to clone (all clones share one tree).
#[derive(Debug, Clone)]
pub struct MemStore {
    shared: Arc<Shared>,
}

impl Default for MemStore {
    fn default() -> Self {
        MemStore::new()
    }
}

impl MemStore {
    /// A fresh store, as a just-started xenstored (`/tool/xenstored`
    /// exists, dom0 is introduced), with the daemon's default quotas.
    pub fn new() -> MemStore {
        MemStore::with_quotas(Quotas::default())
    }

    /// A fresh store with other quotas for unprivileged domains.
    pub fn with_quotas(quotas: Quotas) -> MemStore {
        MemStore {
            shared: Arc::new(Shared {
                state: Mutex::new(state::State::new(quotas)),
                events: Condvar::new(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, state::State> {
        // A panic while holding the lock cannot leave the tree half
        // written (every operation checks before it changes anything).
        self.shared.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A connection acting as domain `domid` (0: privileged, like the
    /// daemon's socket; other ids: like a guest's ring connection).
    pub fn connect(&self, domid: DomId) -> MemConn {
        let id = self.lock().connect(domid);
        MemConn {
            store: self.clone(),
            id,
        }
    }

    /// Number of nodes in the tree (including `/`).
    pub fn node_count(&self) -> usize {
        self.lock().node_count()
    }

    pub(crate) fn raw_connect(&self, domid: DomId) -> ConnId {
        self.lock().connect(domid)
    }

    pub(crate) fn raw_disconnect(&self, id: ConnId) {
        self.lock().disconnect(id);
        self.shared.events.notify_all();
    }

    /// Runs one request; wakes event waiters afterwards.
    pub(crate) fn handle(&self, id: ConnId, tx: u32, op: Op) -> std::result::Result<Reply, Errno> {
        let r = self.lock().handle(id, tx, op);
        self.shared.events.notify_all();
        r
    }

    /// The next queued event of `id`, waiting up to `timeout`.
    pub(crate) fn next_event(&self, id: ConnId, timeout: Duration) -> Option<WatchEvent> {
        let deadline = Instant::now() + timeout;
        let mut st = self.lock();
        loop {
            if let Some(ev) = st.pop_event(id) {
                return Some(ev);
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            st = match self.shared.events.wait_timeout(st, deadline - now) {
                Ok((g, _)) => g,
                Err(e) => e.into_inner().0,
            };
        }
    }

    /// The queued events of `id`, without waiting.
    pub(crate) fn drain_events(&self, id: ConnId) -> Vec<WatchEvent> {
        let mut st = self.lock();
        std::iter::from_fn(|| st.pop_event(id)).collect()
    }

    /// Waits up to `timeout` until `id` has a queued event (not taken).
    pub(crate) fn wait_for_events(&self, id: ConnId, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut st = self.lock();
        loop {
            if st.has_events(id) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            st = match self.shared.events.wait_timeout(st, deadline - now) {
                Ok((g, _)) => g,
                Err(e) => e.into_inner().0,
            };
        }
    }
}

/// One connection to a [`MemStore`], acting as one domain. Dropping it
/// drops its watches and open transactions, as closing a socket does.
#[derive(Debug)]
pub struct MemConn {
    store: MemStore,
    id: ConnId,
}

impl Drop for MemConn {
    fn drop(&mut self) {
        self.store.raw_disconnect(self.id);
    }
}

fn daemon(op: &'static str, path: &str, errno: Errno) -> Error {
    Error::Daemon {
        op,
        path: path.to_owned(),
        errno,
    }
}

impl MemConn {
    fn call(&self, op_name: &'static str, subject: &str, tx: TxId, op: Op) -> Result<Reply> {
        log::trace!("mem xenstore {op_name} {subject} (tx {})", tx.0);
        self.store
            .handle(self.id, tx.0, op)
            .map_err(|e| daemon(op_name, subject, e))
    }

    fn expect_ok(&self, name: &'static str, path: &str, tx: TxId, op: Op) -> Result<()> {
        self.call(name, path, tx, op).map(|_| ())
    }

    /// `XS_INTRODUCE` of `domid` (dom0 only; fires `@introduceDomain`).
    pub fn introduce(&self, domid: DomId) -> Result<()> {
        self.expect_ok(
            "INTRODUCE",
            &domid.to_string(),
            TxId::NONE,
            Op::Introduce(domid),
        )
    }

    /// `XS_RELEASE` of `domid` (dom0 only; fires `@releaseDomain`).
    pub fn release(&self, domid: DomId) -> Result<()> {
        self.expect_ok(
            "RELEASE",
            &domid.to_string(),
            TxId::NONE,
            Op::Release(domid),
        )
    }

    /// `XS_IS_DOMAIN_INTRODUCED` (dom0 only).
    pub fn is_domain_introduced(&self, domid: DomId) -> Result<bool> {
        let r = self.call(
            "IS_DOMAIN_INTRODUCED",
            &domid.to_string(),
            TxId::NONE,
            Op::IsDomainIntroduced(domid),
        )?;
        Ok(r == Reply::Text("T".into()))
    }

    /// `XS_GET_DOMAIN_PATH`: `/local/domain/<domid>`.
    pub fn get_domain_path(&self, domid: DomId) -> Result<String> {
        match self.call(
            "GET_DOMAIN_PATH",
            &domid.to_string(),
            TxId::NONE,
            Op::GetDomainPath(domid),
        )? {
            Reply::Text(s) => Ok(s),
            _ => Ok(path::home(domid)),
        }
    }
}

impl Xenstore for MemConn {
    fn read(&self, tx: TxId, path: &str) -> Result<Vec<u8>> {
        match self.call("READ", path, tx, Op::Read(path.to_owned()))? {
            Reply::Raw(v) => Ok(v),
            _ => Ok(Vec::new()),
        }
    }

    /// As through a socket: a request over the payload limit is refused
    /// (the client does before sending; the daemon would drop the link).
    fn write(&self, tx: TxId, path: &str, value: &[u8]) -> Result<()> {
        let len = path.len() + 1 + value.len();
        if len > crate::wire::PAYLOAD_MAX {
            return Err(Error::PayloadTooLarge {
                op: "WRITE",
                len,
                max: crate::wire::PAYLOAD_MAX,
            });
        }
        self.expect_ok(
            "WRITE",
            path,
            tx,
            Op::Write(path.to_owned(), value.to_vec()),
        )
    }

    fn mkdir(&self, tx: TxId, path: &str) -> Result<()> {
        self.expect_ok("MKDIR", path, tx, Op::Mkdir(path.to_owned()))
    }

    fn rm(&self, tx: TxId, path: &str) -> Result<()> {
        self.expect_ok("RM", path, tx, Op::Rm(path.to_owned()))
    }

    /// The whole list at once: in process there is no payload limit to
    /// work around, so `E2BIG` is answered by reading in parts internally.
    fn directory(&self, tx: TxId, path: &str) -> Result<Vec<String>> {
        match self.call("DIRECTORY", path, tx, Op::Directory(path.to_owned())) {
            Ok(Reply::List(v)) => Ok(v),
            Ok(_) => Ok(Vec::new()),
            Err(e) if e.errno() == Some(Errno::E2BIG) => self.directory_in_parts(tx, path),
            Err(e) => Err(e),
        }
    }

    fn get_perms(&self, tx: TxId, path: &str) -> Result<Vec<Perm>> {
        match self.call("GET_PERMS", path, tx, Op::GetPerms(path.to_owned()))? {
            Reply::Perms(p) => Ok(p),
            _ => Ok(Vec::new()),
        }
    }

    fn set_perms(&self, tx: TxId, path: &str, perms: &[Perm]) -> Result<()> {
        if perms.is_empty() {
            return Err(daemon("SET_PERMS", path, Errno::EINVAL));
        }
        self.expect_ok(
            "SET_PERMS",
            path,
            tx,
            Op::SetPerms(path.to_owned(), perms.to_vec()),
        )
    }

    fn transaction_start(&self) -> Result<TxId> {
        match self.call("TRANSACTION_START", "", TxId::NONE, Op::TransactionStart)? {
            Reply::Text(s) => s.parse().map(TxId).map_err(|_| Error::Protocol {
                op: "TRANSACTION_START",
                what: format!("bad transaction id {s:?}"),
            }),
            _ => Err(Error::Protocol {
                op: "TRANSACTION_START",
                what: "no transaction id".into(),
            }),
        }
    }

    fn transaction_end(&self, tx: TxId, commit: bool) -> Result<()> {
        self.expect_ok("TRANSACTION_END", "", tx, Op::TransactionEnd(commit))
    }
}

impl MemConn {
    fn directory_in_parts(&self, tx: TxId, path: &str) -> Result<Vec<String>> {
        let mut names = Vec::new();
        let mut offset = 0usize;
        loop {
            let Reply::Raw(part) = self.call(
                "DIRECTORY_PART",
                path,
                tx,
                Op::DirectoryPart(path.to_owned(), offset),
            )?
            else {
                return Ok(names);
            };
            let body = match part.iter().position(|&b| b == 0) {
                Some(i) => &part[i + 1..],
                None => return Ok(names),
            };
            if body.is_empty() || body == [0] {
                return Ok(names);
            }
            let done = body.ends_with(&[0, 0]);
            let list = if done { &body[..body.len() - 1] } else { body };
            for n in list.split(|&b| b == 0).filter(|s| !s.is_empty()) {
                names.push(String::from_utf8_lossy(n).into_owned());
            }
            offset += list.len();
            if done {
                return Ok(names);
            }
        }
    }
}

impl XenstoreWatch for MemConn {
    fn watch(&self, path: &str, token: &str) -> Result<()> {
        self.expect_ok(
            "WATCH",
            path,
            TxId::NONE,
            Op::Watch(path.to_owned(), token.to_owned()),
        )
    }

    fn unwatch(&self, path: &str, token: &str) -> Result<()> {
        self.expect_ok(
            "UNWATCH",
            path,
            TxId::NONE,
            Op::Unwatch(path.to_owned(), token.to_owned()),
        )
    }

    fn wait_event(&self, timeout: Duration) -> Result<Option<WatchEvent>> {
        Ok(self.store.next_event(self.id, timeout))
    }
}

#[cfg(test)]
mod tests;
