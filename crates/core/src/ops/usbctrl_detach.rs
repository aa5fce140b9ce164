//! `usbctrl-detach`: remove a virtual USB controller (libxl's
//! `libxl__initiate_device_usbctrl_remove`, reference §7.4).
//!
//! Matches libxl: every attached device is detached first (pv: interfaces
//! back to their host drivers); pv/qusb: backend `online`=0, `state`=5,
//! wait for 6, then the frontend, `/libxl` and backend directories are
//! removed and emptied parents pruned; devicemodel: QMP `device_del`, then
//! the `/libxl` directory.
//!
//! Deliberately differs: devices are detached one after another (libxl:
//! in parallel); a device that left the host does not block the removal
//! (U2); the libxl JSON entries of the controller and its devices are
//! removed (J3); a backend that does not close in time is removed anyway
//! (libxl's forced retry ends the same way).
//!
//! The work is [`super::controller::remove`] (shared with `usb-release`
//! and the rollback of an attach that created a controller): under the
//! locks of its devices and its own exclusive lock, so no attach places a
//! device on it meanwhile and no rollback removes it under another
//! command's claim.
//!
//! vusb extension: a devicemodel controller's emulated devices
//! (`/vusb/emulated`, [`super::emulated`]) are removed from QEMU and their
//! records dropped before the controller goes.

use vusb_xenstore::{TxId, Xenstore, XenstoreWatch};

use super::common::OpEnv;
use super::controller;
use super::teardown::Why;
use crate::domain::Domain;
use crate::layout::read::read_controller;
use crate::{Error, Result};

/// Remove controller `devid` of `dom` (`devid_arg` is what the user typed,
/// for the "Unknown device" message).
pub fn usbctrl_detach<X: Xenstore + XenstoreWatch + ?Sized>(
    env: &OpEnv<'_, X>,
    dom: &Domain,
    devid: i64,
    devid_arg: &str,
) -> Result<()> {
    let unknown = || Error::UnknownController {
        domid: dom.domid,
        devid: devid_arg.to_owned(),
    };
    let devid = u32::try_from(devid).map_err(|_| unknown())?;
    let ctrl = read_controller(env.xs, TxId::NONE, dom.domid, devid)?.ok_or_else(unknown)?;
    // An explicit detach also forgets it in the saved configuration
    // (usb-release keeps what was saved).
    if !controller::remove(env, dom, &ctrl, Why::Detach)? {
        return Err(unknown());
    }
    Ok(())
}
