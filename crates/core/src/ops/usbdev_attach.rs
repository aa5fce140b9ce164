//! `usbdev-attach`: give a host USB device to a guest (libxl's
//! `libxl__device_usbdev_add`, reference §7.2).
//!
//! Matches libxl: an explicit controller must exist; the device must be
//! assignable ("USB device is not assignable."); a device already assigned
//! is refused ("USB device already attached to a domain"); `port` needs
//! `controller`; the first free port in controller order, or a new
//! controller with default settings; the busid in the port node; pv hands
//! the interfaces to usbback after publishing the busid and rolls back on
//! failure; the libxl JSON gets the device with resolved values.
//!
//! How: the device's lock ([`crate::lock`]), then placement
//! ([`super::placement`]: port choice and the claim transaction, which
//! writes the journal `step=attach` with the record), then the hand-over
//! executor ([`super::handover`]: rebind / QMP, bookkeeping, `step=done`).
//! A record left by an interrupted operation on the device is resolved
//! first ([`crate::journal`]), so a killed attach never blocks the next.
//!
//! Deliberately differs (each a libxl bug, reference §10.2):
//! - **constant cost, no races (U1, R1)**: "assigned anywhere?" is one read
//!   of vusb's assignment record ([`crate::assign`]), never a scan of every
//!   domain; the record is claimed and the port re-checked and written in
//!   one transaction, so concurrent attaches never share a port or device;
//! - **C1**: an explicit port outside `1..=ports` is refused;
//! - **A1**: a controller created because none had a free port goes through
//!   the full `usbctrl-attach` path (backend waited for, QEMU controller
//!   created), and is removed again if the attach then fails (unless
//!   another attach placed a device on it meanwhile);
//! - selection by `busid=`, `vendor=`/`product=`/`serial=`, `portpath=`;
//! - a device whose interfaces are on usbback without a vusb record (given
//!   away by `xl`) is refused as already attached, from sysfs alone;
//! - `type=tablet|mouse|keyboard` attaches QEMU's emulated device to a
//!   devicemodel controller instead ([`super::emulated`]), and a
//!   devicemodel port holding one (`/vusb/emulated`) is not free here
//!   either (one `directory` per devicemodel controller probed; none for
//!   pv/qusb).

use vusb_xenstore::{Xenstore, XenstoreWatch};
use vusb_xlcfg::UsbDevSpec;

use super::common::OpEnv;
use crate::Result;
use crate::domain::Domain;

pub use super::placement::Attached;

/// Attach the device `spec` names to `dom`.
pub fn usbdev_attach<X: Xenstore + XenstoreWatch + ?Sized>(
    env: &OpEnv<'_, X>,
    dom: &Domain,
    spec: &UsbDevSpec,
) -> Result<Attached> {
    super::attach::attach(env, dom, spec)
}
