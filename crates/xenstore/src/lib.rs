//! Xenstore for vusb: the wire protocol of `xen/include/public/io/xs_wire.h`,
//! a blocking client that connects the way libxenstore does, an in-memory
//! store with the same semantics, and a server that speaks the wire protocol
//! over a Unix socket so the CLI can talk to it exactly as to xenstored.
//!
//! Everything above this crate talks to xenstore through the small
//! [`Xenstore`] trait (and [`XenstoreWatch`] for watches), implemented by the
//! socket [`client::Client`] and by the in-process [`mem::MemStore`].
//!
//! Module map:
//! - [`wire`]: pure encoding/decoding of messages (no I/O), limits.
//! - [`client`]: the socket / `/dev/xen/xenbus` client, timeouts, watches.
//! - [`mem`]: the in-memory store (permissions, transactions, watches).
//! - [`server`]: serves a [`mem::MemStore`] on a Unix socket.
//! - [`txn`]: the retry-on-`EAGAIN` transaction helper.

pub mod client;
mod error;
pub mod mem;
mod perms;
pub mod server;
pub mod txn;
pub mod wire;

pub use error::{Errno, Error, Result};
pub use perms::{Perm, PermKind};
pub use txn::transaction;

/// A transaction id; [`TxId::NONE`] (0) means "outside any transaction".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TxId(pub u32);

impl TxId {
    /// No transaction.
    pub const NONE: TxId = TxId(0);
}

/// A domain id as xenstore knows it (dom0 is 0).
pub type DomId = u32;

/// The operations a toolstack needs from xenstore, on one connection.
///
/// Implemented by the socket client and by the in-memory store, so policy
/// code never knows which it has. Paths are absolute (`/local/...`) or
/// relative to the connection's domain home (`domid`), as in xenstore.
pub trait Xenstore {
    /// `XS_READ`: the value of `path`.
    fn read(&self, tx: TxId, path: &str) -> Result<Vec<u8>>;
    /// `XS_WRITE`: set `path` to `value`, creating missing parents.
    fn write(&self, tx: TxId, path: &str, value: &[u8]) -> Result<()>;
    /// `XS_MKDIR`: create `path` (and parents) with an empty value if absent.
    fn mkdir(&self, tx: TxId, path: &str) -> Result<()>;
    /// `XS_RM`: remove `path` and its subtree.
    fn rm(&self, tx: TxId, path: &str) -> Result<()>;
    /// `XS_DIRECTORY` (or `XS_DIRECTORY_PART` when the list is too large):
    /// the names of the children of `path`, in the store's order.
    fn directory(&self, tx: TxId, path: &str) -> Result<Vec<String>>;
    /// `XS_GET_PERMS`: owner first, then the ACL entries.
    fn get_perms(&self, tx: TxId, path: &str) -> Result<Vec<Perm>>;
    /// `XS_SET_PERMS`: `perms[0]` names the owner and the default for others.
    fn set_perms(&self, tx: TxId, path: &str, perms: &[Perm]) -> Result<()>;
    /// `XS_TRANSACTION_START`.
    fn transaction_start(&self) -> Result<TxId>;
    /// `XS_TRANSACTION_END`: commit (`true`) or abort; `EAGAIN` on conflict.
    fn transaction_end(&self, tx: TxId, commit: bool) -> Result<()>;
}

/// A watch event: the path that changed (or the watched special path,
/// `@introduceDomain` / `@releaseDomain`) and the watch's token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchEvent {
    /// The path that fired.
    pub path: String,
    /// The token given to [`XenstoreWatch::watch`].
    pub token: String,
}

/// Watches, on a connection that also implements [`Xenstore`].
///
/// A new watch fires once immediately for its own path (the initial
/// event), as xenstored does.
pub trait XenstoreWatch {
    /// `XS_WATCH` on `path` (a subtree, or a special `@...` path).
    fn watch(&self, path: &str, token: &str) -> Result<()>;
    /// `XS_UNWATCH`.
    fn unwatch(&self, path: &str, token: &str) -> Result<()>;
    /// The next queued or arriving event, or `None` after `timeout`.
    fn wait_event(&self, timeout: std::time::Duration) -> Result<Option<WatchEvent>>;
}

/// Blanket helpers over [`Xenstore`]; every implementation gets them.
pub trait XenstoreExt: Xenstore {
    /// Read `path` as UTF-8 text; `Ok(None)` when it does not exist.
    fn read_opt(&self, tx: TxId, path: &str) -> Result<Option<String>> {
        match self.read(tx, path) {
            Ok(v) => Ok(Some(String::from_utf8_lossy(&v).into_owned())),
            Err(e) if e.errno() == Some(Errno::ENOENT) => Ok(None),
            Err(e) => Err(e),
        }
    }
    /// Write a string value.
    fn write_str(&self, tx: TxId, path: &str, value: &str) -> Result<()> {
        self.write(tx, path, value.as_bytes())
    }
    /// The children of `path`; an empty list when it does not exist.
    fn directory_opt(&self, tx: TxId, path: &str) -> Result<Vec<String>> {
        match self.directory(tx, path) {
            Ok(v) => Ok(v),
            Err(e) if e.errno() == Some(Errno::ENOENT) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }
    /// Remove `path`; not an error when it is already gone.
    fn rm_opt(&self, tx: TxId, path: &str) -> Result<()> {
        match self.rm(tx, path) {
            Err(e) if e.errno() == Some(Errno::ENOENT) => Ok(()),
            other => other,
        }
    }
}

impl<T: Xenstore + ?Sized> XenstoreExt for T {}

impl<T: Xenstore + ?Sized> Xenstore for &T {
    fn read(&self, tx: TxId, path: &str) -> Result<Vec<u8>> {
        (**self).read(tx, path)
    }
    fn write(&self, tx: TxId, path: &str, value: &[u8]) -> Result<()> {
        (**self).write(tx, path, value)
    }
    fn mkdir(&self, tx: TxId, path: &str) -> Result<()> {
        (**self).mkdir(tx, path)
    }
    fn rm(&self, tx: TxId, path: &str) -> Result<()> {
        (**self).rm(tx, path)
    }
    fn directory(&self, tx: TxId, path: &str) -> Result<Vec<String>> {
        (**self).directory(tx, path)
    }
    fn get_perms(&self, tx: TxId, path: &str) -> Result<Vec<Perm>> {
        (**self).get_perms(tx, path)
    }
    fn set_perms(&self, tx: TxId, path: &str, perms: &[Perm]) -> Result<()> {
        (**self).set_perms(tx, path, perms)
    }
    fn transaction_start(&self) -> Result<TxId> {
        (**self).transaction_start()
    }
    fn transaction_end(&self, tx: TxId, commit: bool) -> Result<()> {
        (**self).transaction_end(tx, commit)
    }
}
