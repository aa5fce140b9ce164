//! The seam between the usb operations and the device model side of
//! `devicemodel` controllers ([`crate::devicemodel`], QMP): add/remove a
//! controller, add/remove a `usb-host` device. The xenstore side stays in
//! the operations, which roll it back when QEMU refuses.
//!
//! Removal outcomes: a controller or device QEMU does not have
//! ([`Removal::NotPresent`], e.g. libxl's ghost controllers of bug A1) is
//! treated as removed; one the guest did not release in time is an error
//! and the xenstore entry stays, so the state shown stays true.

use vusb_xenstore::Xenstore;

use super::common::OpEnv;
use crate::devicemodel::{self, DmDevice, DmError, Removal};
use crate::domain::Domain;
use crate::layout::Controller;
use crate::{Error, Result};

fn dm_err(domid: u32, e: DmError) -> Error {
    Error::DeviceModel {
        domid,
        source: Box::new(e),
    }
}

fn removal(domid: u32, id: &str, r: std::result::Result<Removal, DmError>) -> Result<()> {
    match r.map_err(|e| dm_err(domid, e))? {
        Removal::Removed | Removal::NotPresent => Ok(()),
        Removal::GuestDidNotRelease => Err(Error::NotReleased {
            domid,
            id: id.to_owned(),
        }),
    }
}

/// Resolve a devicemodel controller's version/ports (and vusb's `model=`)
/// with libxl's rules and messages; `(version, ports)`.
pub fn resolve(version: i32, ports: i32, model: Option<&str>) -> Result<(u32, u32)> {
    let m = devicemodel::resolve_controller(i64::from(version), i64::from(ports), model)
        .map_err(|e| Error::InvalidController(e.to_string()))?;
    Ok((m.driver.usb_version(), m.ports))
}

/// `device_add` of the controller (`xenusb-<devid>`).
pub fn add_controller<X: Xenstore + ?Sized>(
    env: &OpEnv<'_, X>,
    dom: &Domain,
    ctrl: &Controller,
    model: Option<&str>,
) -> Result<()> {
    let m = devicemodel::resolve_controller(i64::from(ctrl.version), i64::from(ctrl.ports), model)
        .map_err(|e| Error::InvalidController(e.to_string()))?;
    devicemodel::add_domain_controller(env.paths, dom.domid, ctrl.devid, &m)
        .map(|_| ())
        .map_err(|e| dm_err(dom.domid, e))
}

/// `device_del` of the controller, waiting for the guest to release it.
pub fn remove_controller<X: Xenstore + ?Sized>(
    env: &OpEnv<'_, X>,
    dom: &Domain,
    ctrl: &Controller,
) -> Result<()> {
    let id = devicemodel::controller_id(ctrl.devid);
    let r = devicemodel::remove_domain_controller(
        env.paths,
        dom.domid,
        ctrl.devid,
        devicemodel::CONTROLLER_REMOVE_TIMEOUT,
    );
    removal(dom.domid, &id, r)
}

/// `device_add` of a `usb-host` device by bus/address; returns its QOM id.
pub fn add_device<X: Xenstore + ?Sized>(
    env: &OpEnv<'_, X>,
    dom: &Domain,
    ctrl: &Controller,
    port: u32,
    hostbus: u8,
    hostaddr: u8,
) -> Result<String> {
    let device = DmDevice::HostAddr {
        bus: hostbus,
        addr: hostaddr,
    };
    devicemodel::add_domain_device(env.paths, dom.domid, ctrl.devid, port, &device)
        .map_err(|e| dm_err(dom.domid, e))
}

/// `device_del` of a device by QOM id, waiting for `DEVICE_DELETED`.
pub fn remove_device<X: Xenstore + ?Sized>(
    env: &OpEnv<'_, X>,
    dom: &Domain,
    qom_id: &str,
) -> Result<()> {
    let r = devicemodel::remove_domain_device(
        env.paths,
        dom.domid,
        qom_id,
        devicemodel::DEVICE_REMOVE_TIMEOUT,
    );
    removal(dom.domid, qom_id, r)
}
