//! Plain QEMU/KVM VMs reached only through a QMP socket (`vusb --qmp PATH
//! <command> <label> ...`): the devicemodel machinery without Xen.
//!
//! The label names the VM for the user and the logs only. All bookkeeping
//! lives in QEMU itself ([`inventory`]): controllers are the devices with
//! ids `xenusb-<devid>`, and each device's controller and port are read
//! back with `qom-get parent_bus` / `port`. So there is no state file to
//! go stale, and two vusb processes see the same truth. The operations
//! ([`ops`]) apply libxl's port rules with its bugs fixed, and the listing
//! ([`list`]) prints xl's `usb-list` format.

pub mod inventory;
pub mod list;
pub mod ops;
pub mod spec;

pub use inventory::{VmController, VmDevice};
pub use ops::{
    Placement, usb_list, usb_list_json, usbctrl_attach, usbctrl_detach, usbdev_attach,
    usbdev_detach, usbdev_detach_device,
};

use std::time::Duration;

use crate::devicemodel::{DmError, ModelError};

/// How long a USB device's `DEVICE_DELETED` is awaited (it normally comes
/// about 60 ms after `device_del`).
pub const DEVICE_UNPLUG_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a controller's unplug is awaited (needs the guest's ACPI eject;
/// about 50 ms with a cooperating guest, never without one).
pub const CONTROLLER_UNPLUG_TIMEOUT: Duration = Duration::from_secs(5);

/// Errors of the plain-VM commands. Messages are xl's where xl has one.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VmError {
    /// A QMP request to the VM failed.
    #[error(transparent)]
    DeviceModel(#[from] DmError),
    /// The controller arguments are invalid (checked before QEMU is touched).
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The arguments ask for something a plain VM cannot do.
    #[error(transparent)]
    Spec(#[from] spec::SpecError),
    /// Reading the VM's USB devices failed.
    #[error("reading the VM's USB controllers and devices from QEMU")]
    Query(#[source] vusb_qmp::Error),
    /// The placement and lookup refusals shared with the Xen operations
    /// (`port=` without `controller=`, a port out of range or in use, no
    /// free port, nothing at a controller port): core's variants, with
    /// core's messages.
    #[error(transparent)]
    Core(#[from] crate::Error),
    /// No controller with this devid (core's variant names a domain; a
    /// plain VM has none).
    #[error("Unknown device {devid}.")]
    UnknownController {
        /// The devid.
        devid: u32,
    },
    /// No device of the VM matches the one named.
    #[error("no such device attached to the VM: {device}")]
    DeviceNotAttached {
        /// What was looked for.
        device: crate::devicemodel::DmDevice,
    },
    /// QEMU's root bus cannot hot-plug (q35's `pcie.0`) and no free PCIe
    /// root port exists.
    #[error(
        "QEMU cannot hot-plug a controller on the VM's root bus, and the VM has no free pcie-root-port (start it with e.g. -device pcie-root-port,id=rp1,chassis=1,slot=1)"
    )]
    NoHotplugSlot(#[source] DmError),
    /// QEMU accepted the removal but the guest did not complete it.
    #[error(
        "QEMU accepted the removal of {id}, but the guest did not release it within {secs} s; it stays until the guest ejects it or the VM is reset"
    )]
    NotReleased {
        /// QOM id.
        id: String,
        /// The timeout, in seconds.
        secs: f64,
    },
}
