//! Taking devices off a guest's controller, once, for every command that
//! does it: `usbdev-detach`, `usbctrl-detach` and `usb-release` (through
//! [`super::controller::remove`]), and the rollbacks of `config-apply`.
//!
//! - a host device goes through the release plan of the hand-over
//!   executor ([`super::handover::release`]): journaled, so a crash
//!   midway is finished by the next command or `usb-recover`;
//! - an emulated tablet/mouse/keyboard ([`crate::emulated`]) is removed
//!   from QEMU (`device_del`, waiting for `DEVICE_DELETED`; a device QEMU
//!   no longer has counts as removed), then its record.
//!
//! The caller holds the device's lock and a lock on the controller
//! ([`crate::lock`]).

use vusb_host::BusId;
use vusb_xenstore::{TxId, Xenstore};

use super::common::OpEnv;
use super::handover;
use crate::bookkeeping::Forget;
use crate::devicemodel::{DmDevice, EmulatedKind};
use crate::domain::Domain;
use crate::journal::Step;
use crate::layout::{Controller, UsbCtrlType};
use crate::lock::{self, Mode};
use crate::{Error, Result, emulated};

const ATTEMPTS: u32 = vusb_xenstore::txn::DEFAULT_ATTEMPTS;

/// Why devices are taken off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// An explicit detach (`usbdev-detach`, `usbctrl-detach`, a rollback):
    /// the saved configuration forgets the device.
    Detach,
    /// `usb-release`: the guest is going away; the saved configuration
    /// keeps the device for `config-apply --saved`.
    Release,
}

impl Why {
    fn step(self) -> Step {
        match self {
            Why::Detach => Step::Detach,
            Why::Release => Step::Release,
        }
    }

    fn forget(self) -> Forget {
        match self {
            Why::Detach => Forget::Both,
            Why::Release => Forget::LibxlOnly,
        }
    }
}

/// Take the host device `busid` at `port` of `ctrl` back from the guest.
pub fn detach_host<X: Xenstore + ?Sized>(
    env: &OpEnv<'_, X>,
    dom: &Domain,
    ctrl: &Controller,
    port: u32,
    busid: &BusId,
    why: Why,
) -> Result<()> {
    let mut rec = handover::record_for(env, ctrl, port, busid)?;
    log::debug!(
        "domain {}: detaching {busid} from controller {} port {port}",
        dom.domid,
        ctrl.devid
    );
    handover::release(env, dom, ctrl, &mut rec, why.step(), why.forget())
}

/// [`detach_host`] under the device's lock and a shared lock on the
/// controller (what `usbdev-detach` and `config-apply`'s rollback use).
pub fn detach_host_locked<X: Xenstore + ?Sized>(
    env: &OpEnv<'_, X>,
    dom: &Domain,
    ctrl: &Controller,
    port: u32,
    busid: &BusId,
    why: Why,
) -> Result<()> {
    let wait = env.timeouts.lock_wait;
    let _dev_lock = lock::device(env.paths, busid, wait)?;
    let _ctrl_lock = lock::controller(env.paths, dom.domid, ctrl.devid, Mode::Shared, wait)?;
    detach_host(env, dom, ctrl, port, busid, why)
}

/// Remove the emulated `kind` at `port` of `ctrl`: the record's journal
/// set to `step=detach`, QMP `device_del` of its QOM id (absent counts as
/// removed), then the record removed. One the guest keeps is an error and
/// the record stays (in `step=detach`, for `usb-recover` or a retry).
pub fn detach_emulated<X: Xenstore + ?Sized>(
    env: &OpEnv<'_, X>,
    dom: &Domain,
    ctrl: &Controller,
    port: u32,
    kind: EmulatedKind,
) -> Result<()> {
    let qom = DmDevice::Emulated(kind).qom_id(ctrl.devid, port);
    log::debug!(
        "domain {}: removing emulated {} ({qom}) from controller {} port {port}",
        dom.domid,
        kind.spec_name(),
        ctrl.devid
    );
    emulated::write(
        env.xs,
        TxId::NONE,
        dom.domid,
        ctrl.devid,
        port,
        kind,
        Step::Detach,
    )?;
    super::dm::remove_device(env, dom, &qom)?;
    vusb_xenstore::transaction(env.xs, ATTEMPTS, |tx| {
        emulated::remove(env.xs, tx, dom.domid, ctrl.devid, port)
    })
}

/// Remove every emulated device of devicemodel controller `ctrl`;
/// nothing, and no request, for pv/qusb.
pub fn detach_all_emulated<X: Xenstore + ?Sized>(
    env: &OpEnv<'_, X>,
    dom: &Domain,
    ctrl: &Controller,
) -> Result<()> {
    if ctrl.ctype != UsbCtrlType::DeviceModel {
        return Ok(());
    }
    for (port, kind) in emulated::list(env.xs, TxId::NONE, dom.domid, ctrl.devid)? {
        detach_emulated(env, dom, ctrl, port, kind).map_err(|e| Error::Remove {
            what: format!(
                "the emulated {} at controller {} port {port}",
                kind.spec_name(),
                ctrl.devid
            ),
            domid: dom.domid,
            source: Box::new(e),
        })?;
    }
    Ok(())
}
