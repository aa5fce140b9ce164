//! The whole simulated host of `vusb sim`, in one directory:
//! vusb's in-memory xenstore served on `DIR/xenstored.sock` (the wire
//! protocol, as the C xenstored), dom0 and two guests laid out as libxl
//! leaves them, the simulated usbback/usbfront, the sysfs fixture with
//! kernel-like bind/unbind, libxl's JSON under `var/lib/xen`, and the
//! environment that points every other vusb command at it.
//!
//! The default guests are `guest1` (domid 1, PV: `pv` controllers, served
//! by the simulated usbback with driver rebinding), `guest2` (domid 2, PV
//! with a device model advertising the `qusb` backend: `qusb` controllers,
//! no rebinding) and `guest3` (domid 3, HVM: `devicemodel` controllers,
//! its device model a fake QMP server, [`super::qmp`]). The issue asked
//! for two guests; the third shows the third controller type.

use std::fs;
use std::path::{Path, PathBuf};

use vusb_core::HostPaths;
use vusb_xenstore::DomId;
use vusb_xenstore::mem::MemStore;
use vusb_xenstore::server::{Server, ServerHandle};

use super::Error;
use super::bindemu::BindEmulation;
use super::fixture::write_fixture;
use super::layout::{self, DomainKind, GuestSpec};
use super::qmp::FakeQmp;
use super::xenbus::{DriverConfig, Drivers};

/// What to simulate.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// The guests.
    pub domains: Vec<GuestSpec>,
    /// Number of recorded USB devices besides the root hub (≥ 2 gives the
    /// stick `1-1` and the receiver `1-2`).
    pub usb_devices: usize,
    /// Driver behaviour.
    pub drivers: DriverConfig,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            domains: vec![
                GuestSpec::new(1, DomainKind::Pv),
                GuestSpec::new(2, DomainKind::PvQemu),
                GuestSpec::new(3, DomainKind::Hvm),
            ],
            usb_devices: 4,
            drivers: DriverConfig::default(),
        }
    }
}

/// A running simulated host; stops when dropped (the directory stays).
pub struct SimHost {
    root: PathBuf,
    socket: PathBuf,
    drivers: Drivers,
    _bind: BindEmulation,
    qmp: Vec<(DomId, FakeQmp)>,
    _server: ServerHandle,
}

impl std::fmt::Debug for SimHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimHost")
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::WriteFixture {
        path: path.to_owned(),
        source,
    }
}

impl SimHost {
    /// Lay the host out under `root` (created if needed; a previous
    /// simulation there is replaced) and start serving it.
    pub fn start(root: &Path, config: &SimConfig) -> Result<SimHost, Error> {
        fs::create_dir_all(root).map_err(io_err(root))?;
        let root = fs::canonicalize(root).map_err(io_err(root))?;
        let paths = HostPaths::under(&root);
        for d in [&paths.xen_lib_dir, &paths.qmp_dir, &paths.state_dir] {
            fs::create_dir_all(d).map_err(io_err(d))?;
        }
        let proc_self = paths.proc_root.join("self");
        fs::create_dir_all(&proc_self).map_err(io_err(&proc_self))?;
        let mountinfo = proc_self.join("mountinfo");
        fs::write(&mountinfo, "").map_err(io_err(&mountinfo))?;
        let swaps = paths.proc_root.join("swaps");
        fs::write(&swaps, "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n")
            .map_err(io_err(&swaps))?;
        write_fixture(&paths.sysfs_root, config.usb_devices)?;
        let sysfs_log = root.join("sysfs.log");
        fs::write(&sysfs_log, "").map_err(io_err(&sysfs_log))?;

        let store = MemStore::new();
        let xs = store.connect(0);
        layout::write_dom0(&xs)?;
        let json0 = paths
            .xen_lib_dir
            .join(format!("userdata-d.0.{}.libxl-json", layout::uuid_of(0)));
        fs::write(&json0, layout::dom0_json()).map_err(io_err(&json0))?;
        let kernel = root.join("vmlinuz");
        let disk = root.join("disk.img");
        for f in [&kernel, &disk] {
            fs::write(f, "").map_err(io_err(f))?;
        }
        let dm_pid = std::process::id();
        let mut qmp = Vec::new();
        for g in &config.domains {
            let g = GuestSpec {
                dm_pid,
                ..g.clone()
            };
            if g.kind.is_hvm() {
                let sock = paths.qmp_dir.join(format!("qmp-libxl-{}", g.domid));
                let log = root.join(format!("qmp-{}.log", g.domid));
                qmp.push((g.domid, FakeQmp::start(&sock, &log)?));
            }
            layout::write_guest(&xs, &g)?;
            let json = paths.xen_lib_dir.join(format!(
                "userdata-d.{}.{}.libxl-json",
                g.domid,
                layout::uuid_of(g.domid)
            ));
            let text = layout::guest_json(&g, &kernel.to_string_lossy(), &disk.to_string_lossy());
            fs::write(&json, text).map_err(io_err(&json))?;
        }
        let drivers = Drivers::spawn(store.connect(0), config.drivers.clone())?;
        let bind = BindEmulation::spawn(&paths.sysfs_root, &sysfs_log)?;
        let socket = root.join("xenstored.sock");
        let server = Server::new(store)
            .spawn(&socket)
            .map_err(|source| Error::Serve {
                path: socket.clone(),
                source,
            })?;
        Ok(SimHost {
            root,
            socket,
            drivers,
            _bind: bind,
            qmp,
            _server: server,
        })
    }

    /// The host's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The xenstore socket (`XENSTORED_PATH`).
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The host locations vusb must use.
    pub fn paths(&self) -> HostPaths {
        HostPaths::under(&self.root)
    }

    /// What the simulated drivers did so far.
    pub fn drivers_log(&self) -> Vec<String> {
        self.drivers.log()
    }

    /// The device models' state-changing QMP commands so far, one per
    /// line, prefixed with the domid.
    pub fn qmp_log(&self) -> String {
        let mut out = String::new();
        for (domid, _) in &self.qmp {
            let text = fs::read_to_string(self.root.join(format!("qmp-{domid}.log")));
            for l in text.unwrap_or_default().lines() {
                out.push_str(&format!("{domid} {l}\n"));
            }
        }
        out
    }

    /// The sysfs bind/unbind operations done so far.
    pub fn sysfs_log(&self) -> String {
        fs::read_to_string(self.root.join("sysfs.log")).unwrap_or_default()
    }

    /// The environment pointing vusb at this host: `(name, value)`.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let p = self.paths();
        let s = |p: &Path| p.to_string_lossy().into_owned();
        vec![
            ("XENSTORED_PATH", s(&self.socket)),
            ("VUSB_SYSFS_ROOT", s(&p.sysfs_root)),
            ("VUSB_PROC_ROOT", s(&p.proc_root)),
            ("VUSB_STATE_DIR", s(&p.state_dir)),
            ("VUSB_QMP_DIR", s(&p.qmp_dir)),
            ("VUSB_XEN_LIB_DIR", s(&p.xen_lib_dir)),
        ]
    }
}
