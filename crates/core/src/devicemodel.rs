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
    let mut conn = DmConn::connect(&qmp_socket_path(paths, domid), QMP_TIMEOUT)?;
    conn.set_plan(paths.dry_run.clone());
    Ok(conn)
}

/// How long a removal waits for QEMU: a USB device's `DEVICE_DELETED`
/// (normally ~60 ms after `device_del`).
pub const DEVICE_REMOVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// How long a controller removal waits for the guest's ACPI eject (libxl's
/// 10 s operation timeout).
pub const CONTROLLER_REMOVE_TIMEOUT: std::time::Duration = QMP_TIMEOUT;

/// One operation on domain `domid`'s device model: connect (libxl: one
/// connection per operation), `device_add` the controller `xenusb-<devid>`.
/// Resolve `model` first with [`resolve_controller`], before any xenstore
/// write, so bad input never reaches QEMU.
pub fn add_domain_controller(
    paths: &HostPaths,
    domid: vusb_xenstore::DomId,
    devid: u32,
    model: &ControllerModel,
) -> Result<String, DmError> {
    connect_domain(paths, domid)?.add_controller(devid, model)
}

/// Connect and remove the controller `xenusb-<devid>`, waiting up to
/// `timeout` for the guest to release it. [`Removal::GuestDidNotRelease`]
/// is an honest "not done"; [`Removal::NotPresent`] means QEMU never had it
/// (libxl's ghost controllers of bug A1), so the xenstore entry can go.
pub fn remove_domain_controller(
    paths: &HostPaths,
    domid: vusb_xenstore::DomId,
    devid: u32,
    timeout: std::time::Duration,
) -> Result<Removal, DmError> {
    connect_domain(paths, domid)?.remove_controller(devid, timeout)
}

/// Connect and `device_add` a device on controller `ctrl`, port `port`;
/// returns the QOM id to keep for the removal.
pub fn add_domain_device(
    paths: &HostPaths,
    domid: vusb_xenstore::DomId,
    ctrl: u32,
    port: u32,
    device: &DmDevice,
) -> Result<String, DmError> {
    connect_domain(paths, domid)?.add_device(ctrl, port, device)
}

/// Connect, `device_del` the device `qom_id` and wait up to `timeout` for
/// its `DEVICE_DELETED`.
pub fn remove_domain_device(
    paths: &HostPaths,
    domid: vusb_xenstore::DomId,
    qom_id: &str,
    timeout: std::time::Duration,
) -> Result<Removal, DmError> {
    connect_domain(paths, domid)?.remove_device(qom_id, timeout)
}
