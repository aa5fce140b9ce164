//! Where the client connects, chosen exactly as libxenstore 4.17 chooses
//! (`xs_open` → `xs_daemon_socket()`, then `xs_domain_dev()`):
//!
//! 1. the Unix socket `$XENSTORED_PATH` if set, otherwise
//!    `$XENSTORED_RUNDIR/socket`, otherwise the default
//!    `/var/run/xenstored/socket` (libxenstore's built-in `XEN_RUN_STORED`,
//!    checked with `strings libxenstore.so.4` on Debian's 4.17);
//! 2. the xenbus character device: `$XENSTORED_PATH` again if set (opened
//!    as a file, as libxenstore does), otherwise `/dev/xen/xenbus`, or
//!    `/proc/xen/xenbus` on old kernels where `/dev/xen/xenbus` is absent.
//!
//! Both speak the same wire protocol.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

/// libxenstore's default run directory (`XEN_RUN_STORED`).
pub const DEFAULT_RUNDIR: &str = "/var/run/xenstored";
/// The xenbus device of current Linux kernels.
pub const XENBUS_DEV: &str = "/dev/xen/xenbus";
/// The xenbus device of old Linux kernels.
pub const XENBUS_PROC: &str = "/proc/xen/xenbus";

/// How an endpoint is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointKind {
    /// `connect(2)` to a Unix stream socket.
    Socket,
    /// `open(2)` of a character device.
    Device,
}

/// One place a daemon may be reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// How to open it.
    pub kind: EndpointKind,
    /// Where.
    pub path: PathBuf,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            EndpointKind::Socket => "socket",
            EndpointKind::Device => "device",
        };
        write!(f, "{kind} {}", self.path.display())
    }
}

/// The endpoints [`super::Client::open`] tries, in order, from this
/// process's environment and file system.
pub fn default_endpoints() -> Vec<Endpoint> {
    endpoints_from(|k| std::env::var_os(k), |p| p.exists())
}

/// The endpoints for a given environment (`env`) and file system
/// (`exists`), in the order libxenstore tries them.
pub fn endpoints_from(
    env: impl Fn(&str) -> Option<OsString>,
    exists: impl Fn(&Path) -> bool,
) -> Vec<Endpoint> {
    let explicit = env("XENSTORED_PATH")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from);
    let socket = explicit.clone().unwrap_or_else(|| {
        let rundir = env("XENSTORED_RUNDIR")
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_RUNDIR));
        rundir.join("socket")
    });
    let device = explicit.unwrap_or_else(|| {
        if exists(Path::new(XENBUS_DEV)) {
            PathBuf::from(XENBUS_DEV)
        } else {
            PathBuf::from(XENBUS_PROC)
        }
    });
    vec![
        Endpoint {
            kind: EndpointKind::Socket,
            path: socket,
        },
        Endpoint {
            kind: EndpointKind::Device,
            path: device,
        },
    ]
}
