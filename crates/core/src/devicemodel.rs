//! The QEMU side of libxl's `devicemodel` USB controllers (Xen HVM guests),
//! also used for plain QEMU/KVM VMs ([`crate::qemu_vm`]).
//!
//! * [`model`]: (version, ports, `model=`) → a QEMU controller, with
//!   libxl's defaults and exact validation messages, checked before QEMU is
//!   touched.
//! * [`device`]: host devices (bus.addr as libxl; vendor:product and
//!   physical port beyond libxl) and emulated tablet/mouse/keyboard.
//! * [`conn`]: one QMP connection and add/remove of controllers and
//!   devices, with honest completion of removals.
//!
//! No xenstore here: the `/libxl/<domid>/device/vusb/<devid>` bookkeeping
//! belongs to the operations (`ops::usbctrl_*`, `ops::usbdev_*`), which call
//! these functions. Differences from libxl are listed in `docs/qmp.md`:
//! integers instead of strings in `device_add` by default ([`ArgStyle`]),
//! removal completion checked instead of assumed (bug Q1), v3 ports < 1
//! refused (bug C3), extra device identities and models.

pub mod conn;
pub mod device;
pub mod error;
pub mod model;

use std::path::PathBuf;

pub use conn::{DmConn, Removal};
pub use device::{DmDevice, EmulatedKind};
pub use error::DmError;
pub use model::{
    ArgStyle, ControllerDriver, ControllerModel, ModelError, controller_bus, controller_id,
    resolve_controller,
};

use crate::env::HostPaths;

/// libxl's timeout for one QMP operation (10 s).
pub const QMP_TIMEOUT: std::time::Duration = vusb_qmp::DEFAULT_TIMEOUT;

/// The QMP socket of domain `domid`'s device model:
/// `<qmp_dir>/qmp-libxl-<domid>` (libxl's name).
pub fn qmp_socket_path(paths: &HostPaths, domid: vusb_xenstore::DomId) -> PathBuf {
    paths.qmp_dir.join(format!("qmp-libxl-{domid}"))
}

/// Connect to domain `domid`'s device model (one connection per
/// operation, as libxl).
pub fn connect_domain(paths: &HostPaths, domid: vusb_xenstore::DomId) -> Result<DmConn, DmError> {
    DmConn::connect(&qmp_socket_path(paths, domid), QMP_TIMEOUT)
}
