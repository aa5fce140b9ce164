//! `usb-release`: tear down all USB state of a domain that is going away
//! (libxl does this inside domain destroy, reference §7.6).
//!
//! Every controller is removed as `usbctrl-detach` does (devices first;
//! pv devices go back to their original host drivers; the journal says
//! `release`, so the saved configuration keeps them), then assignment
//! records still naming the domain (a controller removed behind vusb's
//! back, a crash midway) are cleaned up: pv devices are given back to
//! their drivers and the records released. Work continues after a failure;
//! the first error is returned at the end.
//!
//! Differs from libxl's destroy: devicemodel controllers are removed over
//! QMP when the device model still answers (libxl skips them because QEMU
//! is killed first); when QEMU is gone the nodes are removed anyway.
//! Emulated devices (`/vusb/emulated`) go with their controllers, and any
//! record of the domain left after that is dropped.

use vusb_xenstore::{TxId, Xenstore, XenstoreWatch};

use super::common::OpEnv;
use super::controller;
use super::teardown::Why;
use super::usbback;
use crate::domain::Domain;
use crate::layout::UsbCtrlType;
use crate::layout::read::{list_devids, read_controller};
use crate::layout::remove::destroy;
use crate::{Error, Result};
use crate::{assign, lock};

/// What was released.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Released {
    /// Controllers removed.
    pub controllers: Vec<u32>,
    /// Stale assignment records cleaned up (busids).
    pub stale_records: Vec<vusb_host::BusId>,
}

/// Release every controller and device of `dom`.
pub fn usb_release<X: Xenstore + XenstoreWatch + ?Sized>(
    env: &OpEnv<'_, X>,
    dom: &Domain,
) -> Result<Released> {
    let xs = env.xs;
    let mut first_err: Option<Error> = None;
    let mut out = Released::default();
    for devid in list_devids(xs, TxId::NONE, dom.domid)? {
        let ctrl = match read_controller(xs, TxId::NONE, dom.domid, devid) {
            Ok(Some(c)) => c,
            Ok(None) => continue,
            Err(e) => {
                log::warn!("domain {}: controller {devid} unreadable: {e}", dom.domid);
                first_err.get_or_insert(e);
                continue;
            }
        };
        match controller::remove(env, dom, &ctrl, Why::Release) {
            Ok(true) => out.controllers.push(devid),
            Ok(false) => {}
            Err(e) => {
                log::warn!("domain {}: removing controller {devid}: {e}", dom.domid);
                // A devicemodel controller whose QEMU is gone: its nodes
                // must still go, the domain is being destroyed.
                if ctrl.ctype == UsbCtrlType::DeviceModel && destroy(xs, &ctrl).is_ok() {
                    out.controllers.push(devid);
                }
                first_err.get_or_insert(e);
            }
        }
    }
    for rec in assign::list_domain(xs, TxId::NONE, dom.domid)? {
        let _dev_lock = match lock::device(env.paths, &rec.busid, env.timeouts.lock_wait) {
            Ok(l) => l,
            Err(e) => {
                first_err.get_or_insert(e);
                continue;
            }
        };
        log::debug!(
            "domain {}: cleaning up stale record of {}",
            dom.domid,
            rec.busid
        );
        if rec.ctrl_type == UsbCtrlType::Pv
            && let Err(e) = usbback::take_back(xs, env.paths, &rec.busid)
        {
            first_err.get_or_insert(e);
            continue;
        }
        match vusb_xenstore::transaction(xs, vusb_xenstore::txn::DEFAULT_ATTEMPTS, |tx| {
            assign::release(xs, tx, &rec.busid)
        }) {
            Ok(()) => out.stale_records.push(rec.busid),
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    // Emulated device records left behind (QEMU gone, controller removed
    // behind vusb's back): the domain is going away, drop them all.
    if let Err(e) = crate::emulated::remove_domain(xs, TxId::NONE, dom.domid) {
        first_err.get_or_insert(e);
    }
    // Controller journal entries of controllers removed behind our back.
    if let Err(e) = crate::journal::ctrl_clear_domain(xs, TxId::NONE, dom.domid) {
        first_err.get_or_insert(e);
    }
    match first_err {
        None => Ok(out),
        Some(e) => Err(Error::Remove {
            what: "the USB devices".into(),
            domid: dom.domid,
            source: Box::new(e),
        }),
    }
}
