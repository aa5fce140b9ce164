//! Every host location vusb touches, with its default, in one place.
//!
//! Nothing else in vusb spells a host path: code receives a [`HostPaths`]
//! and joins onto it, so tests and the simulated host point everything at a
//! temporary directory. The xenstore socket is chosen by the xenstore
//! client itself, the way libxenstore does (`XENSTORED_PATH`, then
//! `XENSTORED_RUNDIR/socket`, then the default socket, then
//! `/dev/xen/xenbus`).

use std::path::PathBuf;

/// Host locations, each overridable by a CLI option and an environment
/// variable (named in the field docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPaths {
    /// Root of sysfs (`--sysfs-root`, `VUSB_SYSFS_ROOT`; default `/sys`).
    pub sysfs_root: PathBuf,
    /// Root of procfs, for mounts and swaps (`VUSB_PROC_ROOT`; default `/proc`).
    pub proc_root: PathBuf,
    /// vusb's own state (`--state-dir`, `VUSB_STATE_DIR`; default `/var/lib/vusb`).
    pub state_dir: PathBuf,
    /// Where QEMU's QMP sockets `qmp-libxl-<domid>` live (`--qmp-dir`,
    /// `VUSB_QMP_DIR`; default `/var/run/xen`).
    pub qmp_dir: PathBuf,
    /// libxl's userdata directory with the domains' stored JSON
    /// (`VUSB_XEN_LIB_DIR`; default `/var/lib/xen`).
    pub xen_lib_dir: PathBuf,
    /// The QEMU that serves a PV guest's qusb backend, started on demand
    /// as libxl would ([`crate::qusb_backend`]; `VUSB_QEMU_XEN`; default
    /// Debian's `/usr/libexec/xen-qemu-system-i386`).
    pub qemu_xen: PathBuf,
    /// Where libxl keeps QEMU's logs `qemu-dm-<name>.log`
    /// (`VUSB_XEN_LOG_DIR`; default `/var/log/xen`).
    pub xen_log_dir: PathBuf,
    /// udevd's runtime directory (`VUSB_UDEV_DIR`), when set; otherwise
    /// [`HostPaths::udev_dir`] derives it.
    pub udev_dir: Option<PathBuf>,
    /// `Some` in a dry run (`vusb -N`): every change to the host is
    /// recorded in this plan instead of made ([`crate::dryrun`]).
    pub dry_run: Option<crate::dryrun::Plan>,
}

impl Default for HostPaths {
    fn default() -> Self {
        HostPaths {
            sysfs_root: PathBuf::from("/sys"),
            proc_root: PathBuf::from("/proc"),
            state_dir: PathBuf::from("/var/lib/vusb"),
            qmp_dir: PathBuf::from("/var/run/xen"),
            xen_lib_dir: PathBuf::from("/var/lib/xen"),
            qemu_xen: PathBuf::from("/usr/libexec/xen-qemu-system-i386"),
            xen_log_dir: PathBuf::from("/var/log/xen"),
            udev_dir: None,
            dry_run: None,
        }
    }
}

impl HostPaths {
    /// The defaults, overridden by the `VUSB_*` environment variables.
    pub fn from_env() -> HostPaths {
        let mut paths = HostPaths::default();
        let vars: [(&str, &mut PathBuf); 7] = [
            ("VUSB_SYSFS_ROOT", &mut paths.sysfs_root),
            ("VUSB_PROC_ROOT", &mut paths.proc_root),
            ("VUSB_STATE_DIR", &mut paths.state_dir),
            ("VUSB_QMP_DIR", &mut paths.qmp_dir),
            ("VUSB_XEN_LIB_DIR", &mut paths.xen_lib_dir),
            ("VUSB_QEMU_XEN", &mut paths.qemu_xen),
            ("VUSB_XEN_LOG_DIR", &mut paths.xen_log_dir),
        ];
        for (name, slot) in vars {
            if let Some(v) = std::env::var_os(name).filter(|v| !v.is_empty()) {
                *slot = PathBuf::from(v);
            }
        }
        paths.udev_dir = std::env::var_os("VUSB_UDEV_DIR")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from);
        paths
    }

    /// udevd's runtime directory, whose announcements a QEMU-served attach
    /// waits for ([`vusb_host::udev`]): `VUSB_UDEV_DIR` when set, else
    /// `/run/udev` on the real host (`sysfs_root` is `/sys`), else none (a
    /// test tree has no udevd).
    pub fn udev_dir(&self) -> Option<PathBuf> {
        match &self.udev_dir {
            Some(d) => Some(d.clone()),
            None if self.sysfs_root == std::path::Path::new("/sys") => {
                Some(PathBuf::from("/run/udev"))
            }
            None => None,
        }
    }

    /// The dry run's plan, if this is one.
    pub fn plan(&self) -> Option<&crate::dryrun::Plan> {
        self.dry_run.as_ref()
    }

    /// Where vusb's lock files live ([`crate::lock`]): `<state_dir>/locks`.
    /// Under the state directory so that every host (and every test's
    /// fake host) has its own.
    pub fn lock_dir(&self) -> PathBuf {
        self.state_dir.join("locks")
    }

    /// All locations under one root directory, as the simulated host and
    /// the tests lay them out (`ROOT/sys`, `ROOT/proc`, `ROOT/var/lib/vusb`,
    /// `ROOT/var/run/xen`, `ROOT/var/lib/xen`, `ROOT/usr/libexec/...`,
    /// `ROOT/var/log/xen`).
    pub fn under(root: &std::path::Path) -> HostPaths {
        HostPaths {
            sysfs_root: root.join("sys"),
            proc_root: root.join("proc"),
            state_dir: root.join("var/lib/vusb"),
            qmp_dir: root.join("var/run/xen"),
            xen_lib_dir: root.join("var/lib/xen"),
            qemu_xen: root.join("usr/libexec/xen-qemu-system-i386"),
            xen_log_dir: root.join("var/log/xen"),
            udev_dir: None,
            dry_run: None,
        }
    }
}
