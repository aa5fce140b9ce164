//! `usbctrl-attach`: create a virtual USB controller in a guest
//! (libxl's `libxl__device_usbctrl_add`, reference §7.1).
//!
//! Matches libxl: type resolution (HVM → devicemodel, else pv if usbback
//! is loaded, else qusb), version/ports defaults and limits with libxl's
//! messages, devid = last listed + 1, every node of §4 written in one
//! transaction, the device-model checks for qusb, the wait for the pv
//! backend, the libxl JSON entry with resolved values.
//!
//! The work is [`super::controller::create`], shared with the attach that
//! needs a new controller.
//!
//! Deliberately differs:
//! - the devid is chosen inside the writing transaction, under the guest's
//!   lock, so concurrent attaches get different devids instead of one
//!   failing (R1-like race) or running out of transaction retries;
//! - pv: libxl waits for backend state == 2 exactly; vusb accepts 2, 3 or
//!   4, because a fast backend may already have moved on to Connected
//!   before the first read;
//! - a pv backend that never comes up is rolled back (all nodes removed),
//!   instead of leaving them behind (C2);
//! - devicemodel controllers whose QMP `device_add` fails are rolled back,
//!   as libxl does.

use vusb_xenstore::{Xenstore, XenstoreWatch};
use vusb_xlcfg::UsbCtrlSpec;

use super::common::OpEnv;
use super::controller;
use crate::Result;
use crate::domain::Domain;
use crate::layout::Controller;

/// Resolve `spec` for `dom` without writing anything: the controller that
/// would be created (devid not yet chosen: 0).
pub fn resolve<X: Xenstore + ?Sized>(
    env: &OpEnv<'_, X>,
    dom: &Domain,
    spec: &UsbCtrlSpec,
) -> Result<Controller> {
    controller::resolve(env, dom, spec)
}

/// Create the controller `spec` describes and return it (with its devid).
pub fn usbctrl_attach<X: Xenstore + XenstoreWatch + ?Sized>(
    env: &OpEnv<'_, X>,
    dom: &Domain,
    spec: &UsbCtrlSpec,
) -> Result<Controller> {
    controller::create(env, dom, spec, None)
}
