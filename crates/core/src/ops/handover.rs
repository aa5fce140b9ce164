//! The one executor of the hand-over state machine ([`crate::journal`]):
//! it takes the steps of a controller type's attach or release plan, in
//! order, writing the journal state before the steps it announces. Used by
//! `usbdev-attach` (after placement made the claim), `usbdev-detach`,
//! `usbctrl-detach` and `usb-release` (through [`super::teardown`]),
//! `config-apply` (through those), and `usb-recover` and the next command
//! on a device (through [`resolve`]).
//!
//! The caller holds the device's lock ([`crate::lock`]) and a shared or
//! exclusive lock on its controller: nobody else changes the record, the
//! port or the interfaces meanwhile, so journal writes are single
//! requests outside transactions (the claim and the unclaim, which change
//! libxl's port node too, are transactions).

use vusb_host::BusId;
use vusb_xenstore::{TxId, Xenstore, XenstoreExt, transaction};

use super::common::{OpEnv, at};
use super::{dm, hostdev, usbback};
use crate::assign::{self, Assignment};
use crate::bookkeeping::{self, Forget};
use crate::domain::Domain;
use crate::journal::{Action, Recovery, Step, attach_plan, recovery, release_plan};
use crate::layout::Controller;
use crate::layout::read::{read_controller, read_port};
use crate::persist::DevRecord;
use crate::{Error, Result};

const ATTEMPTS: u32 = vusb_xenstore::txn::DEFAULT_ATTEMPTS;

/// Write the record (journal) as it is now: one request.
fn journal<X: Xenstore + ?Sized>(xs: &X, rec: &Assignment) -> Result<()> {
    assign::update(xs, TxId::NONE, rec)
}

/// The attach steps after the claim (the record says `step=attach`):
/// hand-over, bookkeeping, `step=done`. On failure everything done is
/// undone through the release plan and the error returned.
pub(crate) fn attach_after_claim<X: Xenstore + ?Sized>(
    env: &OpEnv<'_, X>,
    dom: &Domain,
    ctrl: &Controller,
    rec: &mut Assignment,
    book: &DevRecord,
) -> Result<()> {
    let mut booked = false;
    for action in attach_plan(ctrl.ctype) {
        let r = match action {
            Action::Claim => Ok(()), // made by the placement transaction
            Action::Rebind => usbback::give(env.xs, env.paths, &rec.busid),
            Action::QmpAdd => dm::add_device(env, dom, ctrl, rec.port, rec.hostbus, rec.hostaddr)
                .map(|qom| rec.qom_id = Some(qom)),
            Action::Book => {
                bookkeeping::record_dev(env.xs, env.paths, dom.domid, book);
                booked = true;
                Ok(())
            }
            Action::Commit => {
                rec.step = Step::Done;
                journal(env.xs, rec)
            }
            other => {
                log::error!("{other:?} is not an attach step");
                Ok(())
            }
        };
        if let Err(e) = r {
            log::debug!("{}: {action:?} failed; rolling the attach back", rec.busid);
            // A failed attach forgets only what it booked itself: an entry
            // of the saved configuration that was there before stays.
            let which = if booked {
                Forget::Both
            } else {
                Forget::LibxlOnly
            };
            if let Err(r) = release(env, dom, ctrl, rec, Step::Detach, which) {
                log::warn!(
                    "{}: rolling back the failed attach failed too ({r}); `vusb usb-recover` finishes it",
                    rec.busid
                );
            }
            return Err(e);
        }
    }
    Ok(())
}

/// Take the device of `rec` (at its controller `ctrl`) back from the
/// guest: the release plan from its start, `mark` (`Detach` or `Release`)
/// journaled first. A failing step stops the plan with the record left in
/// `mark`, so the next command or `usb-recover` finishes it; a QMP removal
/// the guest does not complete is the exception: it puts the record back
/// as it was (the device stays, listed), as libxl does.
pub(crate) fn release<X: Xenstore + ?Sized>(
    env: &OpEnv<'_, X>,
    dom: &Domain,
    ctrl: &Controller,
    rec: &mut Assignment,
    mark: Step,
    which: Forget,
) -> Result<()> {
    let xs = env.xs;
    let before = rec.step;
    for action in release_plan(ctrl.ctype) {
        match action {
            Action::MarkRelease => {
                if rec.step != mark {
                    rec.step = mark;
                    journal(xs, rec)?;
                }
            }
            Action::Unbind => usbback::take_back(xs, env.paths, &rec.busid)?,
            Action::QmpDel => {
                let qom = rec
                    .qom_id
                    .clone()
                    .unwrap_or_else(|| format!("xenusb-{}-{}", rec.hostbus, rec.hostaddr));
                if let Err(e) = dm::remove_device(env, dom, &qom) {
                    if before == Step::Done {
                        rec.step = before;
                        if let Err(r) = journal(xs, rec) {
                            log::warn!("{}: journal not restored: {r}", rec.busid);
                        }
                    }
                    return Err(e);
                }
            }
            Action::Unbook => {
                bookkeeping::forget_dev(xs, env.paths, dom.domid, ctrl.devid, rec.port, which)
            }
            Action::Unclaim => unclaim(xs, ctrl, rec)?,
            other => log::error!("{other:?} is not a release step"),
        }
    }
    log::debug!(
        "domain {}: {} released from controller {} port {}",
        dom.domid,
        rec.busid,
        ctrl.devid,
        rec.port
    );
    Ok(())
}

/// Empty the port if it still holds the device, and remove the record,
/// in one transaction.
fn unclaim<X: Xenstore + ?Sized>(xs: &X, ctrl: &Controller, rec: &Assignment) -> Result<()> {
    transaction(xs, ATTEMPTS, |tx| {
        let path = ctrl.port_path(rec.port);
        if xs.read_opt(tx, &path).map_err(at(&path))?.as_deref() == Some(rec.busid.as_str()) {
            xs.write_str(tx, &path, "").map_err(at(&path))?;
        }
        assign::release(xs, tx, &rec.busid)
    })
}

/// The record to release the device at `port` of `ctrl` by: vusb's, or,
/// for a device `xl` attached (no record), one made from sysfs.
pub(crate) fn record_for<X: Xenstore + ?Sized>(
    env: &OpEnv<'_, X>,
    ctrl: &Controller,
    port: u32,
    busid: &BusId,
) -> Result<Assignment> {
    match assign::lookup(env.xs, TxId::NONE, busid) {
        Ok(Some(r)) if r.domid == ctrl.domid && r.ctrl == ctrl.devid && r.port == port => {
            return Ok(r);
        }
        Ok(_) => {}
        Err(e) => log::warn!("ignoring the unreadable assignment record of {busid}: {e}"),
    }
    // No record of vusb's for this port: a device `xl` attached — if the
    // port still holds it (a detach that ran meanwhile emptied it).
    if read_port(env.xs, TxId::NONE, ctrl, port)?.as_deref() != Some(busid.as_str()) {
        return Err(Error::UnknownDevice {
            ctrl: ctrl.devid.to_string(),
            port: port.to_string(),
        });
    }
    let found = hostdev::find_busid(env.paths, busid);
    let identity = found.as_ref().map(|d| assign::HostIdentity {
        vendor: d.vendor_id,
        product: d.product_id,
        serial: d.serial.clone(),
    });
    let (hostbus, hostaddr) = match found {
        Some(d) => (d.busnum, d.devnum),
        None if ctrl.ctype == crate::layout::UsbCtrlType::DeviceModel => {
            // No record and gone from the host: nothing names its QEMU id.
            return Err(Error::UnknownDevice {
                ctrl: ctrl.devid.to_string(),
                port: port.to_string(),
            });
        }
        None => (0, 0),
    };
    Ok(Assignment {
        busid: busid.clone(),
        domid: ctrl.domid,
        ctrl: ctrl.devid,
        port,
        ctrl_type: ctrl.ctype,
        hostbus,
        hostaddr,
        qom_id: None,
        step: Step::Done,
        identity,
    })
}

/// What [`resolve`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolved {
    /// The record was `done`: nothing to do.
    Attached,
    /// An interrupted attach, rolled back.
    RolledBack,
    /// An interrupted detach or release, completed.
    RolledForward,
}

/// Resolve the journal of `rec` (the caller holds the device's lock, so
/// whoever wrote a step other than `done` is gone): see
/// [`crate::journal::recovery`]. A controller that no longer exists
/// leaves only the record and the driver memory to clean up.
pub(crate) fn resolve<X: Xenstore + ?Sized>(
    env: &OpEnv<'_, X>,
    rec: &Assignment,
) -> Result<Resolved> {
    let (which, outcome) = match recovery(rec.step) {
        Recovery::Keep => return Ok(Resolved::Attached),
        Recovery::RollBack => (Forget::Both, Resolved::RolledBack),
        Recovery::RollForward(which) => (which, Resolved::RolledForward),
    };
    log::info!(
        "{}: {} to domain {} controller {} port {} was interrupted; {}",
        rec.busid,
        rec.step,
        rec.domid,
        rec.ctrl,
        rec.port,
        if outcome == Resolved::RolledBack {
            "rolling it back"
        } else {
            "completing it"
        }
    );
    let mut rec = rec.clone();
    let mark = if rec.step == Step::Release {
        Step::Release
    } else {
        Step::Detach
    };
    match read_controller(env.xs, TxId::NONE, rec.domid, rec.ctrl)? {
        Some(ctrl) => {
            let dom = Domain {
                domid: rec.domid,
                arg: rec.domid.to_string(),
            };
            release(env, &dom, &ctrl, &mut rec, mark, which)?;
        }
        None => {
            // The controller is gone (removed by another toolstack, or the
            // domain died): give the interfaces back and drop the record.
            if rec.ctrl_type == crate::layout::UsbCtrlType::Pv {
                usbback::take_back(env.xs, env.paths, &rec.busid)?;
            }
            bookkeeping::forget_dev(env.xs, env.paths, rec.domid, rec.ctrl, rec.port, which);
            transaction(env.xs, ATTEMPTS, |tx| {
                assign::release(env.xs, tx, &rec.busid)
            })?;
        }
    }
    Ok(outcome)
}
