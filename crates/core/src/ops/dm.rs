//! The seam between the usb operations and the device model side of
//! `devicemodel` controllers ([`crate::devicemodel`], QMP): add/remove a
//! controller, add/remove a `usb-host` device. The xenstore side stays in
//! the operations, which roll it back when QEMU refuses.

use vusb_xenstore::Xenstore;

use super::common::OpEnv;
use crate::domain::Domain;
use crate::layout::Controller;
use crate::{Error, Result};

/// Why the device model side could not be reached.
#[derive(Debug, thiserror::Error)]
#[error("the QMP side of devicemodel controllers is not wired into vusb yet")]
pub struct NotWired;

fn not_wired(domid: u32) -> Error {
    Error::DeviceModel {
        domid,
        source: Box::new(NotWired),
    }
}

/// `device_add` of the controller (`xenusb-<devid>`).
pub fn add_controller<X: Xenstore + ?Sized>(
    _env: &OpEnv<'_, X>,
    dom: &Domain,
    _ctrl: &Controller,
) -> Result<()> {
    Err(not_wired(dom.domid))
}

/// `device_del` of the controller.
pub fn remove_controller<X: Xenstore + ?Sized>(
    _env: &OpEnv<'_, X>,
    dom: &Domain,
    _ctrl: &Controller,
) -> Result<()> {
    Err(not_wired(dom.domid))
}

/// `device_add` of a `usb-host` device; returns its QOM id.
pub fn add_device<X: Xenstore + ?Sized>(
    _env: &OpEnv<'_, X>,
    dom: &Domain,
    _ctrl: &Controller,
    _port: u32,
    _hostbus: u16,
    _hostaddr: u16,
) -> Result<String> {
    Err(not_wired(dom.domid))
}

/// `device_del` of a `usb-host` device by QOM id.
pub fn remove_device<X: Xenstore + ?Sized>(
    _env: &OpEnv<'_, X>,
    dom: &Domain,
    _qom_id: &str,
) -> Result<()> {
    Err(not_wired(dom.domid))
}
