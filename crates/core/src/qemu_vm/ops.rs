//! The five xl commands for a plain VM, over one [`DmConn`].
//!
//! Port choice is the Xen operations' ([`crate::ops::placement`]'s
//! `pick`), over QEMU's inventory. Port bookkeeping follows libxl's rules
//! (reference §2.3) with its bugs
//! fixed: `port=` needs `controller=`; an explicit port must exist (bug C1)
//! and be free; without `controller=` the first free port of the lowest
//! controller is taken, and when there is none a default controller
//! (version 2, `usb-ehci`, 6 ports) is really created in QEMU first (bug
//! A1). A removal that QEMU accepts but the guest never completes is an
//! error saying so, not a silent success (bug Q1).

use std::time::Duration;

use vusb_qmp::Stream;

use super::VmError;
use super::inventory::{self, VmController};
use crate::Error;
use crate::devicemodel::{
    ControllerModel, DmConn, DmDevice, Removal, controller_id, resolve_controller,
};
use crate::ops::placement::{Pick, pick};

/// Where a device was plugged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// Controller devid.
    pub ctrl: u32,
    /// Port (1-based).
    pub port: u32,
    /// QOM id of the device.
    pub id: String,
    /// True when the controller was created for this device.
    pub created_controller: bool,
}

fn controllers<S: Stream>(conn: &mut DmConn<S>) -> Result<Vec<VmController>, VmError> {
    inventory::read(conn.qmp()).map_err(VmError::Query)
}

fn next_devid(ctrls: &[VmController]) -> u32 {
    ctrls.iter().map(|c| c.devid + 1).max().unwrap_or(0)
}

/// `usbctrl-attach`: add a controller with the next free devid.
pub fn usbctrl_attach<S: Stream>(
    conn: &mut DmConn<S>,
    model: &ControllerModel,
) -> Result<u32, VmError> {
    let devid = next_devid(&controllers(conn)?);
    add_controller(conn, devid, model)?;
    Ok(devid)
}

/// Hot-plug a controller on the root bus (pc), or, when QEMU says the root
/// bus cannot hot-plug (q35's `pcie.0`), onto a free cold-plugged PCIe
/// root port. libxl never needs this: Xen's device model is i440fx-based.
fn add_controller<S: Stream>(
    conn: &mut DmConn<S>,
    devid: u32,
    model: &ControllerModel,
) -> Result<(), VmError> {
    let err = match conn.add_controller(devid, model) {
        Ok(_) => return Ok(()),
        Err(e) => e,
    };
    let root_bus_refused = err
        .qmp()
        .qemu_desc()
        .is_some_and(|d| d.contains("does not support hotplugging"));
    if !root_bus_refused {
        return Err(err.into());
    }
    match inventory::free_root_port(conn.qmp()).map_err(VmError::Query)? {
        Some(port) => {
            log::debug!("root bus cannot hot-plug; using root port {port}");
            conn.add_controller_on_bus(devid, model, &port)?;
            Ok(())
        }
        None => Err(VmError::NoHotplugSlot(err)),
    }
}

/// `usbctrl-detach`: remove every device of the controller, then the
/// controller, waiting up to `timeout` for the guest to release it.
pub fn usbctrl_detach<S: Stream>(
    conn: &mut DmConn<S>,
    devid: u32,
    timeout: Duration,
) -> Result<(), VmError> {
    let ctrls = controllers(conn)?;
    let ctrl = ctrls
        .iter()
        .find(|c| c.devid == devid)
        .ok_or(VmError::UnknownController { devid })?;
    for dev in ctrl.slots.iter().flatten() {
        match conn.remove_device(&dev.id, timeout)? {
            Removal::Removed | Removal::NotPresent => {}
            Removal::GuestDidNotRelease => return Err(not_released(&dev.id, timeout)),
        }
    }
    match conn.remove_controller(devid, timeout)? {
        Removal::Removed | Removal::NotPresent => Ok(()),
        Removal::GuestDidNotRelease => Err(not_released(&controller_id(devid), timeout)),
    }
}

/// `usbdev-attach`: place the device and `device_add` it.
pub fn usbdev_attach<S: Stream>(
    conn: &mut DmConn<S>,
    ctrl: Option<u32>,
    port: Option<u32>,
    device: &DmDevice,
) -> Result<Placement, VmError> {
    let ctrls = controllers(conn)?;
    if ctrl.is_none() && port.is_some() {
        return Err(Error::PortWithoutController.into());
    }
    let explicit = match ctrl {
        Some(devid) => Some(
            ctrls
                .iter()
                .find(|c| c.devid == devid)
                .ok_or(VmError::UnknownController { devid })?,
        ),
        None => None,
    };
    // The port choice shared with the Xen operations.
    let picked = pick(
        explicit,
        port,
        ctrls.iter().map(Ok::<_, VmError>),
        |c: &&VmController| (c.devid, c.ports),
        |c: &&VmController, p| Ok(c.at(p).is_none()),
    )?;
    let (ctrl, port, created) = match picked {
        Pick::Port(c, p) => (c.devid, p, false),
        Pick::NoneFree => {
            let model = resolve_controller(0, 0, None)?;
            let devid = next_devid(&ctrls);
            add_controller(conn, devid, &model)?;
            (devid, 1, true)
        }
    };
    let id = conn.add_device(ctrl, port, device)?;
    Ok(Placement {
        ctrl,
        port,
        id,
        created_controller: created,
    })
}

/// `usbdev-detach <ctrl> <port>`: remove the device there and wait for
/// QEMU's `DEVICE_DELETED`.
pub fn usbdev_detach<S: Stream>(
    conn: &mut DmConn<S>,
    ctrl: u32,
    port: u32,
    timeout: Duration,
) -> Result<String, VmError> {
    let ctrls = controllers(conn)?;
    let dev = ctrls
        .iter()
        .find(|c| c.devid == ctrl)
        .and_then(|c| c.at(port))
        .ok_or(Error::UnknownDevice {
            ctrl: ctrl.to_string(),
            port: port.to_string(),
        })?;
    let id = dev.id.clone();
    match conn.remove_device(&id, timeout)? {
        Removal::Removed | Removal::NotPresent => Ok(id),
        Removal::GuestDidNotRelease => Err(not_released(&id, timeout)),
    }
}

/// `usbdev-detach <spec>` (vusb extension): remove the device named the
/// way it was attached (`busid=`, `vendor=`/`product=`, `hostbus=`/
/// `hostaddr=`, `type=`); the first match in controller/port order.
pub fn usbdev_detach_device<S: Stream>(
    conn: &mut DmConn<S>,
    device: &DmDevice,
    timeout: Duration,
) -> Result<(u32, u32), VmError> {
    let ctrls = controllers(conn)?;
    let (ctrl, port) = ctrls
        .iter()
        .find_map(|c| {
            c.slots.iter().enumerate().find_map(|(i, s)| {
                let dev = s.as_ref()?;
                (dev.device.as_ref() == Some(device)).then_some((c.devid, i as u32 + 1))
            })
        })
        .ok_or_else(|| VmError::DeviceNotAttached {
            device: device.clone(),
        })?;
    usbdev_detach(conn, ctrl, port, timeout)?;
    Ok((ctrl, port))
}

/// `usb-list`: the controllers and devices in xl's format.
pub fn usb_list<S: Stream>(conn: &mut DmConn<S>) -> Result<String, VmError> {
    Ok(super::list::render(&controllers(conn)?))
}

/// `usb-list --json` of a plain VM ([`super::list::json`]).
pub fn usb_list_json<S: Stream>(conn: &mut DmConn<S>) -> Result<serde_json::Value, VmError> {
    Ok(super::list::json(&controllers(conn)?))
}

fn not_released(id: &str, timeout: Duration) -> VmError {
    VmError::NotReleased {
        id: id.to_string(),
        secs: timeout.as_secs_f64(),
    }
}
