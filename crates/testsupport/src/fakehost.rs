//! A fake Xen host in a temporary directory: a private **real** xenstored
//! (the harness in `harness/`), dom0 as the real `xen-init-dom0` leaves it
//! (run under the xl shim, falling back to vusb's own layout when the Xen
//! tools are missing), guests laid out like libxl leaves them
//! ([`vusb_sim::layout`]), the sysfs fixture
//! ([`vusb_sim::fixture`]), libxl's JSON under `var/lib/xen`, the QMP
//! socket directory, and the simulated usbback/usbfront
//! ([`crate::xenbus_sim`]) on their own connection.
//!
//! Layout of the root (kept short: the socket path must be < 108 bytes):
//! `xs/` (daemon state, socket, optional `-T` trace), `domains` (the xl
//! shim's domain list), `sys/bus/usb`, `proc/` (empty mountinfo, swaps),
//! `var/lib/xen`, `var/run/xen`, `var/lib/vusb`, `sysfs.log` (bind/unbind
//! done under the shim).
//!
//! Both the real `xl` ([`FakeHost::xl_command`]) and vusb
//! ([`FakeHost::vusb_command`]) run against it; vusb runs under the same
//! shim only for its kernel-like `bind`/`unbind` on the fixture (see
//! `xl-peer/xlshim.c`), with every path given explicitly.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

use vusb_core::HostPaths;
use vusb_sim::fixture::write_fixture;
use vusb_sim::layout::{self, DomainKind, GuestSpec};
use vusb_sim::xenbus::{DriverConfig, Drivers};
use vusb_xenstore::client::Client;

use crate::xlpeer;
use crate::xlpeer::fake_qmp::FakeQmp;

mod inspect;

/// Directory of the xenstored harness scripts.
fn harness_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("harness")
}

/// Where Debian installs the Xen 4.17 tools.
pub const XEN_BIN: &str = "/usr/lib/xen-4.17/bin";

/// How to build a fake host.
#[derive(Debug, Clone)]
pub struct FakeHostConfig {
    /// The guests (default `1:pv,2:pvqemu`).
    pub domains: Vec<GuestSpec>,
    /// Number of non-hub fixture devices (default 4).
    pub usb_devices: usize,
    /// Run xenstored with `-T xs/trace` (request counting).
    pub trace: bool,
    /// The simulated drivers, or `None` for no drivers at all.
    pub drivers: Option<DriverConfig>,
}

impl Default for FakeHostConfig {
    fn default() -> Self {
        FakeHostConfig {
            domains: vec![
                GuestSpec::new(1, DomainKind::Pv),
                GuestSpec::new(2, DomainKind::PvQemu),
            ],
            usb_devices: 4,
            trace: false,
            drivers: Some(DriverConfig::default()),
        }
    }
}

impl FakeHostConfig {
    /// `n` PV guests, domids 1..=n, each with its vif (as the xl-peer
    /// scale runs), and `n + 1` fixture devices.
    pub fn pv_guests(n: u32) -> FakeHostConfig {
        FakeHostConfig {
            domains: (1..=n).map(|d| GuestSpec::new(d, DomainKind::Pv)).collect(),
            usb_devices: n as usize + 1,
            ..FakeHostConfig::default()
        }
    }
}

/// A running fake host; everything stops and is removed on drop.
pub struct FakeHost {
    dir: tempfile::TempDir,
    socket: PathBuf,
    drivers: Option<Drivers>,
    qmp: Vec<FakeQmp>,
    domains: usize,
    frontend: bool,
    failure: Option<vusb_sim::xenbus::Failure>,
}

impl std::fmt::Debug for FakeHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeHost")
            .field("root", &self.dir.path())
            .finish_non_exhaustive()
    }
}

fn other(what: impl std::fmt::Display) -> io::Error {
    io::Error::other(what.to_string())
}

fn xs_err(e: impl std::error::Error) -> io::Error {
    let mut msg = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    other(msg)
}

impl FakeHost {
    /// Build and start a host.
    pub fn start(config: &FakeHostConfig) -> io::Result<FakeHost> {
        let dir = tempfile::Builder::new().prefix("vfh").tempdir_in("/tmp")?;
        let root = dir.path().to_owned();
        for d in [
            "xs",
            "var/lib/xen",
            "var/run/xen",
            "var/lib/vusb",
            "proc/self",
        ] {
            fs::create_dir_all(root.join(d))?;
        }
        fs::write(root.join("proc/self/mountinfo"), "")?;
        fs::write(
            root.join("proc/swaps"),
            "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n",
        )?;
        fs::write(root.join("vmlinuz"), "")?;
        fs::write(root.join("disk.img"), "")?;
        let mut doms = format!("0 pv {} 4194304\n", layout::uuid_of(0));
        for g in &config.domains {
            let ty = if g.kind.is_hvm() { "hvm" } else { "pv" };
            doms.push_str(&format!(
                "{} {ty} {} 1048576\n",
                g.domid,
                layout::uuid_of(g.domid)
            ));
        }
        fs::write(root.join("domains"), doms)?;
        write_fixture(&root.join("sys"), config.usb_devices).map_err(xs_err)?;

        let xs_dir = root.join("xs");
        let mut start = Command::new(harness_dir().join("start.sh"));
        start.arg(&xs_dir);
        if config.trace {
            start.arg("-T").arg(xs_dir.join("trace"));
        }
        let out = start.env_remove("LD_PRELOAD").output()?;
        if !out.status.success() {
            return Err(other(format!(
                "starting xenstored: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        let socket = xs_dir.join("socket");
        let mut host = FakeHost {
            dir,
            socket,
            drivers: None,
            qmp: Vec::new(),
            domains: config.domains.len(),
            frontend: config.drivers.as_ref().is_some_and(|c| c.frontend),
            failure: config.drivers.as_ref().and_then(|c| c.failure),
        };
        host.init_dom0()?;
        let xs = host.client()?;
        let dm_pid = std::process::id();
        for g in &config.domains {
            let g = GuestSpec {
                dm_pid,
                ..g.clone()
            };
            if g.kind.is_hvm() {
                let sock = root.join(format!("var/run/xen/qmp-libxl-{}", g.domid));
                let log = root.join(format!("qmp-{}.log", g.domid));
                host.qmp.push(FakeQmp::start(&sock, &log).map_err(xs_err)?);
            }
            layout::write_guest(&xs, &g).map_err(xs_err)?;
            let json = layout::guest_json(
                &g,
                &root.join("vmlinuz").to_string_lossy(),
                &root.join("disk.img").to_string_lossy(),
            );
            let name = format!(
                "userdata-d.{}.{}.libxl-json",
                g.domid,
                layout::uuid_of(g.domid)
            );
            fs::write(root.join("var/lib/xen").join(name), json)?;
        }
        if let Some(cfg) = &config.drivers {
            host.drivers = Some(Drivers::spawn(host.client()?, cfg.clone()).map_err(xs_err)?);
        }
        Ok(host)
    }

    /// Dom0 as the real `xen-init-dom0` leaves it (under the xl shim), or
    /// vusb's own equivalent when the tool is not installed.
    fn init_dom0(&self) -> io::Result<()> {
        let tool = Path::new(XEN_BIN).join("xen-init-dom0");
        if tool.exists() {
            let out = self.shim_env(Command::new(&tool))?.output()?;
            if out.status.success() {
                return Ok(());
            }
            log::warn!(
                "xen-init-dom0 failed ({}), laying dom0 out ourselves",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        layout::write_dom0(&self.client()?).map_err(xs_err)?;
        let name = format!("userdata-d.0.{}.libxl-json", layout::uuid_of(0));
        fs::write(
            self.root().join("var/lib/xen").join(name),
            layout::dom0_json(),
        )
    }

    /// The host's root directory.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// The xenstored socket (`XENSTORED_PATH`).
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The host locations vusb must use.
    pub fn paths(&self) -> HostPaths {
        HostPaths::under(self.root())
    }

    /// A new dom0 client connection.
    pub fn client(&self) -> io::Result<Client> {
        Client::connect(&self.socket).map_err(xs_err)
    }

    /// The xenstored trace file (only with [`FakeHostConfig::trace`]).
    pub fn trace_path(&self) -> PathBuf {
        self.root().join("xs/trace")
    }

    fn shim_env(&self, mut cmd: Command) -> io::Result<Command> {
        cmd.env("XENSTORED_PATH", &self.socket)
            .env("XLSHIM_ROOT", self.root())
            .env("LD_PRELOAD", xlpeer::shim_so()?);
        Ok(cmd)
    }

    /// The real `xl` with `args`, under the shim, on this host.
    pub fn xl_command(&self, args: &[&str]) -> io::Result<Command> {
        let mut cmd = self.shim_env(Command::new(Path::new(XEN_BIN).join("xl")))?;
        cmd.args(args);
        Ok(cmd)
    }

    /// The vusb binary `bin` with `args`, every host location pointing at
    /// this host, under the shim for kernel-like `bind`/`unbind`.
    pub fn vusb_command(&self, bin: &Path, args: &[&str]) -> io::Result<Command> {
        let mut cmd = self.shim_env(Command::new(bin))?;
        self.vusb_env(&mut cmd);
        cmd.args(args);
        Ok(cmd)
    }

    /// Set the `VUSB_*` variables and `XENSTORED_PATH` on `cmd`.
    pub fn vusb_env(&self, cmd: &mut Command) {
        let p = self.paths();
        cmd.env("XENSTORED_PATH", &self.socket)
            .env("VUSB_SYSFS_ROOT", &p.sysfs_root)
            .env("VUSB_PROC_ROOT", &p.proc_root)
            .env("VUSB_STATE_DIR", &p.state_dir)
            .env("VUSB_QMP_DIR", &p.qmp_dir)
            .env("VUSB_XEN_LIB_DIR", &p.xen_lib_dir)
            .env("VUSB_QEMU_XEN", &p.qemu_xen)
            .env("VUSB_XEN_LOG_DIR", &p.xen_log_dir);
    }
}

impl Drop for FakeHost {
    fn drop(&mut self) {
        if let Some(d) = self.drivers.take() {
            d.stop();
        }
        self.qmp.clear();
        let r = Command::new(harness_dir().join("stop.sh"))
            .arg(self.root().join("xs"))
            .env_remove("LD_PRELOAD")
            .output();
        if let Err(e) = r {
            eprintln!("stopping the fake host's xenstored: {e}");
        }
    }
}

/// Policy for tests needing a fake host: under `CI=true` a failure to
/// start panics; elsewhere it prints `SKIP: ...` and returns `None`.
pub fn require_or_skip(what: &str, r: io::Result<FakeHost>) -> Option<FakeHost> {
    match r {
        Ok(h) => Some(h),
        Err(e) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("{what}: the fake host could not start under CI: {e}")
        }
        Err(e) => {
            eprintln!("SKIP: {what}: the fake host could not start: {e}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::time::Duration;
    use vusb_sim::xenbus::Failure;

    fn host(cfg: &FakeHostConfig) -> Option<FakeHost> {
        require_or_skip("fakehost test", FakeHost::start(cfg))
    }

    /// The initial store equals the recorded one of the xl-peer host for
    /// the same guests (lines of domains 1 and 2, dom0 and the pool).
    #[test]
    fn initial_store_matches_the_recorded_host() {
        let Some(h) = host(&FakeHostConfig::default()) else {
            return;
        };
        let dump = h.dump().unwrap();
        let golden = include_str!("../xl-peer/golden/pv/00-initial-store.txt");
        let wanted: Vec<&str> = golden
            .lines()
            .filter(|l| {
                ![
                    "/local/domain/3",
                    "/local/domain/4",
                    "/libxl/3",
                    "/libxl/4",
                    "/vm/00000000-0000-4000-8000-000000000003",
                    "/vm/00000000-0000-4000-8000-000000000004",
                    "/local/domain/0/backend/vif/3",
                    "/local/domain/0/backend/vif/4",
                    "/local/domain/0/device-model/3",
                    "/local/domain/0/device-model/4",
                ]
                .iter()
                .any(|p| l.starts_with(&format!("{p} ")) || l.starts_with(&format!("{p}/")))
            })
            .map(|l| {
                if l.starts_with("/local/domain/2/image/device-model-pid") {
                    "PID"
                } else {
                    l
                }
            })
            .collect();
        let ours: Vec<&str> = dump
            .lines()
            .map(|l| {
                if l.starts_with("/local/domain/2/image/device-model-pid") {
                    "PID"
                } else {
                    l
                }
            })
            .collect();
        assert_eq!(ours, wanted);
    }

    /// With the real xenstored and the real xl: the simulated drivers
    /// connect a pv controller (backend and frontend at 4, rings written)
    /// and close it on detach.
    #[test]
    fn drivers_connect_and_close_a_controller_for_xl() {
        if !crate::xlpeer::xl_available() {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "xl missing under CI"
            );
            eprintln!("SKIP: xl not installed");
            return;
        }
        let Some(h) = host(&FakeHostConfig::default()) else {
            return;
        };
        let o = crate::xlpeer::run(
            &h,
            h.xl_command(&["usbctrl-attach", "1", "type=pv"]).unwrap(),
        )
        .unwrap();
        assert_eq!(o.rc, 0, "{}", o.stderr);
        h.settle();
        let dump = h.dump().unwrap();
        assert!(
            dump.contains("/local/domain/0/backend/vusb/1/0/state = \"4\""),
            "{dump}"
        );
        assert!(
            dump.contains("/local/domain/1/device/vusb/0/urb-ring-ref = \"8\""),
            "{dump}"
        );
        assert!(
            dump.contains("/local/domain/1/device/vusb/0/state = \"4\""),
            "{dump}"
        );
        let o =
            crate::xlpeer::run(&h, h.xl_command(&["usbctrl-detach", "1", "0"]).unwrap()).unwrap();
        assert_eq!(o.rc, 0, "{}", o.stderr);
        assert!(o.wall < Duration::from_secs(5), "xl waited for a timeout");
        let log = h.drivers_log().join("\n");
        assert!(log.contains("backend 5 -> 6"), "{log}");
        assert!(!h.dump().unwrap().contains("backend/vusb"));
    }

    /// A backend that never reaches 2 makes xl's pv attach time out (10 s
    /// in libxl): the failure mode is visible to the toolstack.
    #[test]
    fn backend_never_initwait_leaves_state_1() {
        let cfg = FakeHostConfig {
            drivers: Some(DriverConfig {
                failure: Some(Failure::BackendNeverInitWait),
                ..DriverConfig::default()
            }),
            ..FakeHostConfig::default()
        };
        let Some(h) = host(&cfg) else { return };
        let xs = h.client().unwrap();
        use vusb_xenstore::{TxId, XenstoreExt};
        let be = "/local/domain/0/backend/vusb/1/0";
        xs.write_str(TxId::NONE, &format!("{be}/state"), "1")
            .unwrap();
        xs.write_str(TxId::NONE, &format!("{be}/online"), "1")
            .unwrap();
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(
            xs.read_opt(TxId::NONE, &format!("{be}/state"))
                .unwrap()
                .as_deref(),
            Some("1")
        );
        assert!(h.drivers_log().is_empty());
    }

    /// A frontend that never connects leaves the backend at 2; a backend
    /// that never closes ignores state 5.
    #[test]
    fn frontend_never_connects_and_backend_never_closes() {
        use vusb_xenstore::{TxId, XenstoreExt};
        for (failure, write_state, expect) in [
            (Failure::FrontendNeverConnects, "1", "2"),
            (Failure::BackendNeverCloses, "5", "5"),
        ] {
            let cfg = FakeHostConfig {
                drivers: Some(DriverConfig {
                    failure: Some(failure),
                    ..DriverConfig::default()
                }),
                ..FakeHostConfig::default()
            };
            let Some(h) = host(&cfg) else { return };
            let xs = h.client().unwrap();
            let be = "/local/domain/0/backend/qusb/2/0";
            let fe = "/local/domain/2/device/vusb/0";
            xs.write_str(TxId::NONE, &format!("{fe}/state"), "1")
                .unwrap();
            xs.write_str(TxId::NONE, &format!("{be}/frontend"), fe)
                .unwrap();
            xs.write_str(TxId::NONE, &format!("{be}/online"), "1")
                .unwrap();
            xs.write_str(TxId::NONE, &format!("{be}/state"), write_state)
                .unwrap();
            std::thread::sleep(Duration::from_millis(300));
            let st = xs.read_opt(TxId::NONE, &format!("{be}/state")).unwrap();
            assert_eq!(st.as_deref(), Some(expect), "{failure:?}");
            assert_eq!(
                xs.read_opt(TxId::NONE, &format!("{fe}/state"))
                    .unwrap()
                    .as_deref(),
                Some("1")
            );
        }
    }
}
