//! A kernel-like sysfs for tests, served over FUSE (`fuser`): a copy of a
//! fixture tree ([`crate::sysfs::SysfsTree`]) in which writing an interface
//! name to `bus/usb/drivers/<D>/bind` binds it the way the kernel does —
//! the interface's `driver` link and the driver's link to the interface
//! appear **before the write returns** — and `unbind` undoes it.
//!
//! Errors as the kernel's driver core returns them: `bind` of an unknown
//! device → `ENODEV`, of an interface that already has a driver → `EBUSY`;
//! `unbind` of a device not bound to that driver → `ENODEV`.
//!
//! Failure injection: [`FuseSys::fail_bind`] makes the n-th bind to a
//! driver fail with an errno (nothing changes), [`FuseSys::block_bind`]
//! makes it wait until [`FuseSys::release`] (a crash test kills the writer
//! meanwhile; the blocked write then fails with `EINTR` and changes
//! nothing). [`FuseSys::set_latency`] makes every bind/unbind take a
//! while, as a driver's probe does. [`FuseSys::log`] lists every applied
//! bind/unbind in order.
//!
//! Needs `/dev/fuse` and root (or fusermount3). The mount lives under a
//! fresh temporary directory `BASE/sys` (`HostPaths::under(BASE)` finds
//! it) and is unmounted on drop.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use fuser::{
    Errno, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, LockOwner, OpenFlags,
    ReplyAttr, ReplyData, ReplyDirectory, ReplyEntry, ReplyOpen, ReplyWrite, Request, WriteFlags,
};

mod tree;

use tree::{Kind, Node, Tree, up};

const TTL: Duration = Duration::ZERO;

/// Which driver-core operation a fault applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// A write to `drivers/<D>/bind`.
    Bind,
    /// A write to `drivers/<D>/unbind`.
    Unbind,
}

#[derive(Debug, Clone)]
enum Action {
    Fail(i32),
    Block,
}

#[derive(Debug, Clone)]
struct Fault {
    op: Op,
    driver: String,
    nth: usize,
    action: Action,
}

#[derive(Debug, Default)]
struct Gate {
    blocked: bool,
    released: bool,
}

#[derive(Debug, Default)]
struct Shared {
    tree: Mutex<Tree>,
    faults: Mutex<Vec<Fault>>,
    counts: Mutex<HashMap<(String, bool), usize>>,
    log: Mutex<Vec<String>>,
    gate: Mutex<Gate>,
    gate_cv: Condvar,
    latency: Mutex<Duration>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Shared {
    /// The fault for this attempt, counting attempts per (driver, op).
    fn fault(&self, op: Op, driver: &str) -> Option<Action> {
        let n = {
            let mut counts = lock(&self.counts);
            let c = counts
                .entry((driver.to_owned(), op == Op::Bind))
                .or_insert(0);
            *c += 1;
            *c
        };
        lock(&self.faults)
            .iter()
            .find(|f| f.op == op && f.driver == driver && f.nth == n)
            .map(|f| f.action.clone())
    }

    fn wait_gate(&self) {
        let mut g = lock(&self.gate);
        g.blocked = true;
        self.gate_cv.notify_all();
        while !g.released {
            g = self
                .gate_cv
                .wait(g)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
    }

    fn driver_write(&self, driver: &str, op: Op, data: &[u8]) -> Result<(), Errno> {
        let name = String::from_utf8_lossy(data)
            .trim_end_matches('\n')
            .to_owned();
        {
            let tree = lock(&self.tree);
            let drv_dir = format!("bus/usb/drivers/{driver}");
            match op {
                Op::Bind => {
                    let Some(dev) = tree.device_dir(&name) else {
                        return Err(Errno::ENODEV);
                    };
                    let Some(dev_ino) = tree.find(&dev) else {
                        return Err(Errno::ENODEV);
                    };
                    if tree.child(dev_ino, "driver").is_some() {
                        return Err(Errno::EBUSY);
                    }
                    let _ = drv_dir;
                }
                Op::Unbind => {
                    if tree.find(&format!("{drv_dir}/{name}")).is_none() {
                        return Err(Errno::ENODEV);
                    }
                }
            }
        }
        match self.fault(op, driver) {
            Some(Action::Fail(errno)) => return Err(Errno::from_i32(errno)),
            Some(Action::Block) => {
                self.wait_gate();
                return Err(Errno::from_i32(libc::EINTR));
            }
            None => {}
        }
        let latency = *lock(&self.latency);
        if !latency.is_zero() {
            std::thread::sleep(latency);
        }
        let mut tree = lock(&self.tree);
        let dev = tree.device_dir(&name).ok_or(Errno::ENODEV)?;
        let dev_ino = tree.find(&dev).ok_or(Errno::ENODEV)?;
        let drv_ino = tree
            .find(&format!("bus/usb/drivers/{driver}"))
            .ok_or(Errno::ENODEV)?;
        match op {
            Op::Bind => {
                if tree.child(dev_ino, "driver").is_some() {
                    return Err(Errno::EBUSY);
                }
                let to_drv = format!("{}bus/usb/drivers/{driver}", up(&dev));
                tree.add(dev_ino, "driver", Kind::Link(to_drv.into()));
                let to_dev = format!("../../../../{dev}");
                tree.add(drv_ino, &name, Kind::Link(to_dev.into()));
                lock(&self.log).push(format!("bind {driver} {name}"));
            }
            Op::Unbind => {
                tree.remove(dev_ino, "driver");
                tree.remove(drv_ino, &name);
                lock(&self.log).push(format!("unbind {driver} {name}"));
            }
        }
        Ok(())
    }
}

struct Fs(Arc<Shared>);

impl Filesystem for Fs {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let tree = lock(&self.0.tree);
        match tree
            .child(parent.0, &name.to_string_lossy())
            .and_then(|i| tree.attr(i))
        {
            Some(a) => reply.entry(&TTL, &a, Generation(0)),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match lock(&self.0.tree).attr(ino.0) {
            Some(a) => reply.attr(&TTL, &a),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        _mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<fuser::TimeOrNow>,
        _mtime: Option<fuser::TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let mut tree = lock(&self.0.tree);
        if let (
            Some(size),
            Some(Node {
                kind: Kind::File(data),
                ..
            }),
        ) = (size, tree.nodes.get_mut(&ino.0))
        {
            data.resize(size as usize, 0);
        }
        match tree.attr(ino.0) {
            Some(a) => reply.attr(&TTL, &a),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        match lock(&self.0.tree).nodes.get(&ino.0).map(|n| &n.kind) {
            Some(Kind::Link(t)) => reply.data(t.as_os_str().as_encoded_bytes()),
            _ => reply.error(Errno::EINVAL),
        }
    }

    fn open(&self, _req: &Request, _ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        reply.opened(FileHandle(0), FopenFlags::FOPEN_DIRECT_IO);
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        match lock(&self.0.tree).nodes.get(&ino.0).map(|n| &n.kind) {
            Some(Kind::File(data)) => {
                let start = (offset as usize).min(data.len());
                let end = (start + size as usize).min(data.len());
                reply.data(&data[start..end]);
            }
            Some(Kind::Dir(_)) => reply.error(Errno::EISDIR),
            _ => reply.error(Errno::EINVAL),
        }
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let path = lock(&self.0.tree).path_of(ino.0);
        let parts: Vec<&str> = path.split('/').collect();
        if let ["bus", "usb", "drivers", driver, file @ ("bind" | "unbind")] = parts.as_slice() {
            let op = if *file == "bind" {
                Op::Bind
            } else {
                Op::Unbind
            };
            match self.0.driver_write(driver, op, data) {
                Ok(()) => reply.written(data.len() as u32),
                Err(e) => reply.error(e),
            }
            return;
        }
        let mut tree = lock(&self.0.tree);
        match tree.nodes.get_mut(&ino.0).map(|n| &mut n.kind) {
            Some(Kind::File(content)) => {
                let end = offset as usize + data.len();
                if content.len() < end {
                    content.resize(end, 0);
                }
                content[offset as usize..end].copy_from_slice(data);
                reply.written(data.len() as u32);
            }
            _ => reply.error(Errno::EINVAL),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let tree = lock(&self.0.tree);
        let Some(node) = tree.nodes.get(&ino.0) else {
            reply.error(Errno::ENOENT);
            return;
        };
        let Kind::Dir(children) = &node.kind else {
            reply.error(Errno::ENOTDIR);
            return;
        };
        let mut entries = vec![
            (ino.0, FileType::Directory, ".".to_owned()),
            (node.parent, FileType::Directory, "..".to_owned()),
        ];
        for (name, child) in children {
            if let Some(a) = tree.attr(*child) {
                entries.push((*child, a.kind, name.clone()));
            }
        }
        for (i, (ino, kind, name)) in entries.into_iter().enumerate().skip(offset as usize) {
            if reply.add(INodeNo(ino), (i + 1) as u64, kind, &name) {
                break;
            }
        }
        reply.ok();
    }
}

/// A mounted kernel-like sysfs.
pub struct FuseSys {
    base: tempfile::TempDir,
    session: Option<fuser::BackgroundSession>,
    shared: Arc<Shared>,
}

impl FuseSys {
    /// Mount a copy of the sysfs tree at `sysfs_root` (a fixture tree's
    /// `sys` directory) under a fresh `BASE/sys`.
    pub fn mount(sysfs_root: &Path) -> io::Result<FuseSys> {
        let shared = Arc::new(Shared {
            tree: Mutex::new(Tree::load(sysfs_root)?),
            ..Shared::default()
        });
        let base = tempfile::Builder::new().prefix("vusb-fusesys-").tempdir()?;
        let mountpoint = base.path().join("sys");
        std::fs::create_dir_all(&mountpoint)?;
        let mut config = fuser::Config::default();
        config.mount_options = vec![
            fuser::MountOption::FSName("vusb-fusesys".into()),
            fuser::MountOption::DefaultPermissions,
        ];
        config.n_threads = Some(4);
        let session = fuser::spawn_mount(Fs(shared.clone()), &mountpoint, &config)?;
        // The mount is usable once the root answers.
        for _ in 0..200 {
            if std::fs::read_dir(mountpoint.join("bus")).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(FuseSys {
            base,
            session: Some(session),
            shared,
        })
    }

    /// The directory holding `sys` (for `HostPaths::under`).
    pub fn base(&self) -> &Path {
        self.base.path()
    }

    /// The mounted sysfs root.
    pub fn root(&self) -> PathBuf {
        self.base.path().join("sys")
    }

    /// The `nth` (1-based, counted per driver from the mount) bind to
    /// `driver` fails with `errno` and changes nothing.
    pub fn fail_bind(&self, driver: &str, nth: usize, errno: i32) {
        self.fault(Op::Bind, driver, nth, Action::Fail(errno));
    }

    /// The `nth` unbind from `driver` fails with `errno`.
    pub fn fail_unbind(&self, driver: &str, nth: usize, errno: i32) {
        self.fault(Op::Unbind, driver, nth, Action::Fail(errno));
    }

    /// Every bind and unbind takes `latency` before it applies (a driver's
    /// probe or remove; real ones take milliseconds), which widens the
    /// windows concurrency tests look into.
    pub fn set_latency(&self, latency: Duration) {
        *lock(&self.shared.latency) = latency;
    }

    /// The `nth` bind to `driver` waits until [`FuseSys::release`], then
    /// fails with `EINTR` and changes nothing.
    pub fn block_bind(&self, driver: &str, nth: usize) {
        self.fault(Op::Bind, driver, nth, Action::Block);
    }

    fn fault(&self, op: Op, driver: &str, nth: usize, action: Action) {
        lock(&self.shared.faults).push(Fault {
            op,
            driver: driver.to_owned(),
            nth,
            action,
        });
    }

    /// Wait until a write is held by [`FuseSys::block_bind`]; false on timeout.
    pub fn wait_blocked(&self, timeout: Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        let mut g = lock(&self.shared.gate);
        while !g.blocked {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return false;
            }
            g = self
                .shared
                .gate_cv
                .wait_timeout(g, left)
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        }
        true
    }

    /// Let held writes go on (they fail with `EINTR`).
    pub fn release(&self) {
        lock(&self.shared.gate).released = true;
        self.shared.gate_cv.notify_all();
    }

    /// Every applied operation in order: `bind usbback 1-1:1.0`, `unbind usbhid 1-1:1.0`.
    pub fn log(&self) -> Vec<String> {
        lock(&self.shared.log).clone()
    }

    /// The driver `interface` is bound to now (from the in-memory state).
    pub fn driver_of(&self, interface: &str) -> Option<String> {
        let tree = lock(&self.shared.tree);
        let dev = tree.device_dir(interface)?;
        let ino = tree.find(&format!("{dev}/driver"))?;
        match &tree.nodes.get(&ino)?.kind {
            Kind::Link(t) => t.file_name().map(|n| n.to_string_lossy().into_owned()),
            _ => None,
        }
    }
}

impl Drop for FuseSys {
    fn drop(&mut self) {
        self.release();
        if let Some(s) = self.session.take()
            && let Err(e) = s.umount_and_join()
        {
            log::warn!("unmounting {}: {e}", self.root().display());
        }
    }
}

/// Whether FUSE can be used here (`/dev/fuse` exists). Tests that need it
/// fail under `CI=true` when it cannot, and skip with a reason otherwise.
pub fn available() -> bool {
    let ok = Path::new("/dev/fuse").exists();
    if !ok {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("FUSE (/dev/fuse) is required in CI");
        }
        eprintln!("skipping: /dev/fuse is not available");
    }
    ok
}
