//! The stores under test: the real C xenstored (a private daemon per test,
//! guests through the ring harness) and the memory server on a socket
//! (guests through a server whose connections act as the guest domain).
//! Both are driven through vusb's own socket `Client`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use vusb_testsupport::ring::GuestConn;
use vusb_testsupport::xenstored::{Xenstored, XenstoredOptions, start_or_skip};
use vusb_xenstore::client::Client;
use vusb_xenstore::mem::MemStore;
use vusb_xenstore::server::{Server, ServerHandle};
use vusb_xenstore::{DomId, Xenstore, XenstoreWatch};

/// A connection usable as a guest.
pub trait Conn: Xenstore + XenstoreWatch {}
impl<T: Xenstore + XenstoreWatch> Conn for T {}

/// One store under test.
pub trait Backend {
    /// `real` or `mem`, for messages.
    fn name(&self) -> &'static str;
    /// The socket of privileged connections.
    fn socket(&self) -> &Path;
    /// A new privileged connection.
    fn dom0(&self) -> Client {
        let c = Client::connect(self.socket()).expect("connect to the store under test");
        c.set_timeout(Duration::from_secs(5));
        c.set_relative_paths(true);
        c
    }
    /// Introduces `domid` (through `dom0`) and returns a connection acting
    /// as that unprivileged domain.
    fn guest(&self, dom0: &Client, domid: DomId) -> Box<dyn Conn>;
}

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// The real daemon.
pub struct Real {
    pub xs: Xenstored,
}

impl Real {
    pub fn start(test: &str) -> Option<Real> {
        start_or_skip(test).map(|xs| Real { xs })
    }

    pub fn start_with(test: &str, opts: &XenstoredOptions) -> Option<Real> {
        vusb_testsupport::xenstored::require_or_skip(
            &format!("{test}: real xenstored"),
            Xenstored::start_with(opts),
        )
        .map(|xs| Real { xs })
    }
}

impl Backend for Real {
    fn name(&self) -> &'static str {
        "real"
    }
    fn socket(&self) -> &Path {
        self.xs.socket_path()
    }
    fn guest(&self, dom0: &Client, domid: DomId) -> Box<dyn Conn> {
        Box::new(GuestConn::introduce(dom0, self.xs.dir(), domid).expect("guest ring connection"))
    }
}

/// The memory server.
pub struct Mem {
    pub store: MemStore,
    dir: PathBuf,
    socket: PathBuf,
    servers: std::sync::Mutex<Vec<ServerHandle>>,
}

impl Mem {
    pub fn start() -> Mem {
        Mem::start_with(vusb_xenstore::mem::Quotas::default())
    }

    pub fn start_with(quotas: vusb_xenstore::mem::Quotas) -> Mem {
        let n = SEQ.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("vxm{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let socket = dir.join("socket");
        let store = MemStore::with_quotas(quotas);
        let h = Server::new(store.clone())
            .spawn(&socket)
            .expect("memory server");
        Mem {
            store,
            dir,
            socket,
            servers: std::sync::Mutex::new(vec![h]),
        }
    }
}

impl Drop for Mem {
    fn drop(&mut self) {
        self.servers.lock().map(|mut s| s.clear()).ok();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Backend for Mem {
    fn name(&self) -> &'static str {
        "mem"
    }
    fn socket(&self) -> &Path {
        &self.socket
    }
    fn guest(&self, dom0: &Client, domid: DomId) -> Box<dyn Conn> {
        dom0.introduce(domid, 1, 7).expect("introduce");
        let path = self.dir.join(format!("socket-domid-{domid}"));
        let mut servers = self.servers.lock().expect("servers");
        if !path.exists() {
            servers.push(
                Server::new(self.store.clone())
                    .domid(domid)
                    .spawn(&path)
                    .expect("guest server"),
            );
        }
        let c = Client::connect(&path).expect("guest connection");
        c.set_timeout(Duration::from_secs(5));
        c.set_relative_paths(true);
        Box::new(c)
    }
}
