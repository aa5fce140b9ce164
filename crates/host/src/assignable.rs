//! Which host devices may be given to a guest, with a reason for every
//! refusal.
//!
//! libxl refuses only devices whose `bDeviceClass` is 09 (reference §5.3).
//! vusb refuses: root hubs; hubs by device class 09 **or any interface of
//! class 09**; devices the host is using (a block device below them that is
//! mounted, swap, or held by LVM/md/dm) and the hubs above such a device.
//! `force` overrides only the "in use" refusal of a non-hub device: giving
//! away a hub would take every device below it, which no flag makes safe,
//! and libxl refuses hubs unconditionally too. Whether a device is already
//! assigned to a domain is decided by the core crate (it knows xenstore).

use std::fmt;

use crate::device::{BusId, UsbDevice};
use crate::usage::BlockUse;

/// Why a device may not be assigned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A root hub (`usbN`): it is the host controller's.
    RootHub,
    /// A hub (device class 09, or an interface of class 09).
    Hub {
        /// True when only an interface says hub (libxl would accept it).
        by_interface: bool,
    },
    /// A hub above a device the host is using.
    HubAboveInUse {
        /// The device in use below.
        device: BusId,
        /// What the host does with it.
        usage: String,
    },
    /// The host is using a block device below this device.
    InUse {
        /// What the host does with it (`/dev/sdb1 is mounted on /mnt`).
        usage: String,
    },
}

impl Refusal {
    /// Whether `--force` overrides this refusal.
    pub fn forceable(&self) -> bool {
        matches!(self, Refusal::InUse { .. })
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::RootHub => f.write_str("root hub of the host controller"),
            Refusal::Hub {
                by_interface: false,
            } => f.write_str("USB hub (device class 09)"),
            Refusal::Hub { by_interface: true } => {
                f.write_str("USB hub (an interface of class 09)")
            }
            Refusal::HubAboveInUse { device, usage } => {
                write!(f, "hub above {device}, which the host is using: {usage}")
            }
            Refusal::InUse { usage } => write!(f, "in use by the host: {usage}"),
        }
    }
}

/// The host's uses that lie below `dev` (or on it).
pub fn uses_below<'a>(dev: &UsbDevice, uses: &'a [BlockUse]) -> Vec<&'a BlockUse> {
    if dev.devpath.is_empty() {
        return Vec::new();
    }
    uses.iter()
        .filter(|u| u.disk_devpath.starts_with(&dev.devpath))
        .collect()
}

/// Whether `dev` may be assigned, given every device and every use of the
/// host's block devices; `force` overrides only [`Refusal::InUse`].
pub fn check(
    dev: &UsbDevice,
    devices: &[UsbDevice],
    uses: &[BlockUse],
    force: bool,
) -> Option<Refusal> {
    if dev.busid.is_root_hub() {
        return Some(Refusal::RootHub);
    }
    if dev.is_hub() {
        let below = devices
            .iter()
            .filter(|d| d.busid != dev.busid && dev.contains(d) && !d.is_hub())
            .find_map(|d| {
                uses_below(d, uses)
                    .first()
                    .map(|u| (d.busid.clone(), u.describe()))
            });
        if let Some((device, usage)) = below {
            return Some(Refusal::HubAboveInUse { device, usage });
        }
        return Some(Refusal::Hub {
            by_interface: dev.device_class != crate::device::CLASS_HUB,
        });
    }
    let usage = uses_below(dev, uses).first().map(|u| u.describe())?;
    if force {
        log::warn!(
            "{}: in use by the host ({usage}); assigning anyway (--force)",
            dev.busid
        );
        return None;
    }
    Some(Refusal::InUse { usage })
}
