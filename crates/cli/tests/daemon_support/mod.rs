//! Shared by the daemon tests: a test bed that is either the simulated
//! host (`vusb_sim::host::SimHost`: vusb's in-memory xenstored on a
//! socket, kernel-like bind/unbind on the fixture sysfs, simulated
//! usbback/usbfront) or the fake host on the **real C xenstored**
//! (`vusb_testsupport::fakehost`, bind/unbind by the xl-peer shim), and a
//! running `vusb daemon` fed uevents over its Unix datagram socket.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use vusb_core::HostPaths;
use vusb_sim::host::{SimConfig, SimHost};
use vusb_testsupport::fakehost::{FakeHost, FakeHostConfig, require_or_skip};
use vusb_xenstore::client::Client;
use vusb_xenstore::{TxId, XenstoreExt};

pub const VUSB: &str = env!("CARGO_BIN_EXE_vusb");
/// The daemon-only binary.
pub const VUSBD: &str = env!("CARGO_BIN_EXE_vusbd");

/// Where a test runs.
pub enum Bed {
    /// The simulated host.
    Sim(SimHost, tempfile::TempDir),
    /// The fake host on the real C xenstored.
    Real(FakeHost),
}

impl Bed {
    pub fn sim() -> Bed {
        let dir = tempfile::Builder::new()
            .prefix("vdm")
            .tempdir_in("/tmp")
            .unwrap();
        let sim = SimHost::start(dir.path(), &SimConfig::default()).unwrap();
        let bed = Bed::Sim(sim, dir);
        bed.introduce(&[1, 2, 3]);
        bed
    }

    /// `None` (skipped) when the real xenstored cannot start outside CI.
    pub fn real(test: &str) -> Option<Bed> {
        let host = require_or_skip(test, FakeHost::start(&FakeHostConfig::default()))?;
        let bed = Bed::Real(host);
        bed.introduce(&[1, 2]);
        Some(bed)
    }

    pub fn name(&self) -> &'static str {
        match self {
            Bed::Sim(..) => "simulated host",
            Bed::Real(_) => "real xenstored",
        }
    }

    fn introduce(&self, domids: &[u32]) {
        let xs = self.client();
        for d in domids {
            xs.introduce(*d, 1, 7).unwrap();
        }
    }

    pub fn root(&self) -> &Path {
        match self {
            Bed::Sim(s, _) => s.root(),
            Bed::Real(h) => h.root(),
        }
    }

    pub fn paths(&self) -> HostPaths {
        HostPaths::under(self.root())
    }

    pub fn client(&self) -> Client {
        match self {
            Bed::Sim(s, _) => Client::connect(s.socket()).unwrap(),
            Bed::Real(h) => h.client().unwrap(),
        }
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        self.cmd_of(Path::new(VUSB), args)
    }

    /// `program` (`vusb` or `vusbd`) with this host's environment.
    pub fn cmd_of(&self, program: &Path, args: &[&str]) -> Command {
        let mut c = match self {
            Bed::Sim(s, _) => {
                let mut c = Command::new(program);
                c.args(args).envs(s.env());
                c
            }
            Bed::Real(h) => h.vusb_command(program, args).unwrap(),
        };
        c.env("VUSB_BACKEND_TIMEOUT_MS", "5000")
            .current_dir(self.root())
            .stdin(Stdio::null());
        c
    }

    pub fn vusb(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.vusb(args);
        assert!(
            o.status.success(),
            "vusb {args:?} on the {}: {}{}",
            self.name(),
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    }

    pub fn uevent_socket(&self) -> PathBuf {
        self.root().join("uevent.sock")
    }

    /// Unplug `busid` from the fixture and tell the daemon.
    pub fn unplug(&self, busid: &str) {
        vusb_sim::hotplug::unplug(&self.paths().sysfs_root, busid).unwrap();
        vusb_sim::hotplug::announce(&self.uevent_socket(), "remove", busid).unwrap();
    }

    /// Plug it back (optionally on another bus) and tell the daemon;
    /// returns the busid and when the uevents were sent.
    pub fn plug(&self, busid: &str, bus: Option<u32>) -> (String, Instant) {
        let b = vusb_sim::hotplug::plug(&self.paths().sysfs_root, busid, bus).unwrap();
        let sent = Instant::now();
        vusb_sim::hotplug::announce(&self.uevent_socket(), "add", &b).unwrap();
        (b, sent)
    }

    /// Unplug `busid` and plug it back as another vendor:product (a
    /// firmware-update re-enumeration), on the same port.
    pub fn reenumerate_as(&self, busid: &str, vendor: &str, product: &str) -> (String, Instant) {
        self.unplug(busid);
        std::thread::sleep(Duration::from_millis(100));
        vusb_sim::hotplug::set_identity(&self.paths().sysfs_root, busid, vendor, product).unwrap();
        self.plug(busid, None)
    }

    /// The value of a port node of a pv controller of `domid`.
    pub fn port(&self, domid: u32, ctrl: u32, port: u32) -> Option<String> {
        self.port_of("vusb", domid, ctrl, port)
    }

    /// The value of a port node of a qusb controller of `domid`.
    pub fn qusb_port(&self, domid: u32, ctrl: u32, port: u32) -> Option<String> {
        self.port_of("qusb", domid, ctrl, port)
    }

    /// A port node under backend `kind` (`vusb`, `qusb`), when not empty.
    fn port_of(&self, kind: &str, domid: u32, ctrl: u32, port: u32) -> Option<String> {
        let path = format!("/local/domain/0/backend/{kind}/{domid}/{ctrl}/port/{port}");
        self.client()
            .read_opt(TxId::NONE, &path)
            .unwrap()
            .filter(|v| !v.is_empty())
    }

    /// The driver an interface is bound to.
    pub fn driver(&self, intf: &str) -> Option<String> {
        let l = self
            .paths()
            .sysfs_root
            .join("bus/usb/devices")
            .join(intf)
            .join("driver");
        std::fs::read_link(l)
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
    }

    /// Domain death as `xl destroy` leaves xenstore: the domain's home and
    /// libxl's nodes gone, then `XS_RELEASE` (fires `@releaseDomain`).
    pub fn destroy(&self, domid: u32) {
        let xs = self.client();
        for p in [format!("/local/domain/{domid}"), format!("/libxl/{domid}")] {
            xs.rm_opt(TxId::NONE, &p).unwrap();
        }
        xs.release(domid).unwrap();
    }

    pub fn daemon(&self) -> Daemon {
        Daemon::start(self)
    }

    /// `vusb daemon` with one more environment variable.
    pub fn daemon_env(&self, key: &str, value: &Path) -> Daemon {
        let mut cmd = self.daemon_cmd();
        cmd.env(key, value);
        Daemon::start_cmd(self, cmd)
    }

    /// The `vusb daemon` command reading this bed's uevent socket.
    fn daemon_cmd(&self) -> Command {
        let sock = format!("unix:{}", self.uevent_socket().display());
        self.cmd(&["daemon", "--uevents", &sock])
    }

    /// The same daemon as the `vusbd` binary.
    pub fn vusbd(&self) -> Daemon {
        Daemon::start_vusbd(self)
    }
}

/// A running `vusb daemon`, killed (SIGKILL) when dropped.
pub struct Daemon {
    pub child: Child,
    pub log: PathBuf,
    paths: HostPaths,
}

impl Daemon {
    pub fn start(bed: &Bed) -> Daemon {
        Self::start_cmd(bed, bed.daemon_cmd())
    }

    pub fn start_vusbd(bed: &Bed) -> Daemon {
        let sock = format!("unix:{}", bed.uevent_socket().display());
        Self::start_cmd(bed, bed.cmd_of(Path::new(VUSBD), &["--uevents", &sock]))
    }

    fn start_cmd(bed: &Bed, mut cmd: Command) -> Daemon {
        let log = bed
            .root()
            .join(format!("daemon-{}.log", std::process::id()));
        let err = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let child = cmd.stdout(Stdio::null()).stderr(err).spawn().unwrap();
        let d = Daemon {
            child,
            log,
            paths: bed.paths(),
        };
        d.wait_ready();
        d
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(s) = self.status_opt()
                && s["ready"] == true
                && s["pid"] == self.child.id()
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("daemon not ready in 20 s; log:\n{}", self.log_text());
    }

    fn status_opt(&self) -> std::io::Result<serde_json::Value> {
        let text = vusb_core::daemon::control::request(&self.paths, "status")?;
        serde_json::from_str(&text).map_err(std::io::Error::other)
    }

    pub fn status(&self) -> serde_json::Value {
        self.status_opt().unwrap()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Audit lines that contain `needle`.
    pub fn audit_count(&self, needle: &str) -> usize {
        self.log_text()
            .lines()
            .filter(|l| l.contains("audit: ") && l.contains(needle))
            .count()
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Wait up to `limit` for `cond`; returns the time it took.
pub fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if cond() {
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    None
}
