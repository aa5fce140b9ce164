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
//! vusb extension: the QEMU backend vusb started for a PV guest's qusb
//! controllers ([`crate::qusb_backend`]) stops with the last of them.
//!
//! vusb extension: a devicemodel controller's emulated devices
//! (`/vusb/emulated`, [`super::emulated`]) are removed from QEMU and their
//! records dropped before the controller goes.

use vusb_xenstore::{TxId, Xenstore, XenstoreWatch};

use super::common::OpEnv;
use super::dm;
use super::usbdev_detach::detach_at;
use crate::domain::Domain;
use crate::layout::read::{read_controller, read_port};
use crate::layout::remove::{close_backend, destroy};
use crate::layout::{Controller, UsbCtrlType};
use crate::{Error, Result, libxl_json};

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
    remove_controller(env, dom, &ctrl)?;
    // Only an explicit detach forgets it: usb-release keeps what was saved.
    if let Err(e) = crate::persist::forget_ctrl(env.xs, env.paths, dom.domid, ctrl.devid) {
        log::warn!("vusb's saved configuration not updated: {e}");
    }
    Ok(())
}

/// Remove a controller that exists: its devices, then its nodes.
pub fn remove_controller<X: Xenstore + XenstoreWatch + ?Sized>(
    env: &OpEnv<'_, X>,
    dom: &Domain,
    ctrl: &Controller,
) -> Result<()> {
    for port in 1..=ctrl.ports {
        if let Some(busid) = read_port(env.xs, TxId::NONE, ctrl, port)? {
            detach_at(env, dom, ctrl, port, &busid).map_err(|e| Error::Remove {
                what: format!("the device at controller {} port {port}", ctrl.devid),
                domid: dom.domid,
                source: Box::new(e),
            })?;
        }
    }
    // vusb's emulated devices (devicemodel only; no request for pv/qusb).
    super::emulated::detach_all(env, dom, ctrl)?;
    match ctrl.ctype {
        UsbCtrlType::Pv | UsbCtrlType::Qusb => {
            close_backend(env.xs, ctrl, env.timeouts.backend_close)?;
        }
        UsbCtrlType::DeviceModel => dm::remove_controller(env, dom, ctrl)?,
    }
    destroy(env.xs, ctrl)?;
    if ctrl.ctype == UsbCtrlType::DeviceModel {
        crate::emulated::remove_ctrl(env.xs, TxId::NONE, dom.domid, ctrl.devid)?;
    }
    log::debug!("domain {}: removed controller {}", dom.domid, ctrl.devid);
    if ctrl.ctype == UsbCtrlType::Qusb
        && let Err(e) = crate::qusb_backend::stop_if_unused(env.xs, env.paths, dom)
    {
        log::warn!("{e}");
    }
    if let Err(e) = libxl_json::forget_ctrl(env.xs, env.paths, dom.domid, ctrl.devid) {
        log::warn!("libxl's stored configuration not updated: {e}");
    }
    Ok(())
}
