//! `usbdev-attach <dom> type=tablet|mouse|keyboard [controller=C [port=P]]`
//! on Xen HVM guests, and the removal of such devices (a vusb extension:
//! libxl has no emulated USB device type at run time).
//!
//! The device is QEMU's `usb-tablet`/`usb-mouse`/`usb-kbd`, plugged with
//! QMP `device_add` into a `devicemodel` controller (QOM id
//! `xenusb-<N>-<P>-<kind>`). No host device, assignability check or
//! assignment record is involved. The port is recorded in
//! `/vusb/emulated/<G>/<N>/<P>` ([`crate::emulated`]), never in libxl's port
//! node (bug U1: xl's host-wide scan would fail on it), in the transaction
//! that finds the port free; QEMU refusing the device removes the record
//! again (and a controller created for it).
//!
//! Port choice follows `usbdev-attach`: an explicit controller must exist
//! and be `devicemodel` (else an error naming it, nothing changed); without
//! one, the first devicemodel controller with a free port, else a new
//! controller through `usbctrl-attach` (HVM guests only: a PV/PVH guest is
//! refused before anything changes).

use vusb_xenstore::{TxId, Xenstore, XenstoreExt, XenstoreWatch};
use vusb_xlcfg::{CtrlKind, DevKind, UsbCtrlSpec, UsbDevSpec};

use super::common::{OpEnv, at};
use super::usbctrl_attach::usbctrl_attach;
use super::usbdev_attach::{Attached, Choice, abort, choose, undo_created};
use crate::devicemodel::{self, DmDevice, EmulatedKind};
use crate::domain::{Domain, DomainType, domain_type};
use crate::layout::read::read_controller;
use crate::layout::{Controller, UsbCtrlType};
use crate::{Error, Result, assign, emulated};

const ATTEMPTS: u32 = vusb_xenstore::txn::DEFAULT_ATTEMPTS;

/// The emulated kind a spec asks for; `None` for a host device.
pub fn spec_kind(spec: &UsbDevSpec) -> Option<EmulatedKind> {
    match spec.kind {
        DevKind::HostDev => None,
        DevKind::Tablet => Some(EmulatedKind::Tablet),
        DevKind::Mouse => Some(EmulatedKind::Mouse),
        DevKind::Keyboard => Some(EmulatedKind::Keyboard),
    }
}

/// Whether `port` of `c` is free: the libxl port node empty and, for
/// devicemodel controllers, no emulated record in `emu` (the ports
/// [`emulated::occupied`] returned for `c`).
pub(crate) fn port_free<X: Xenstore + ?Sized>(
    xs: &X,
    tx: TxId,
    c: &Controller,
    port: u32,
    emu: &std::collections::BTreeSet<u32>,
) -> Result<bool> {
    if emu.contains(&port) {
        return Ok(false);
    }
    let path = c.port_path(port);
    Ok(xs.read_opt(tx, &path).map_err(at(&path))?.as_deref() == Some(""))
}

/// The emulated records of `c` if it is a devicemodel controller (one
/// request), nothing (no request) for pv/qusb.
pub(crate) fn occupied_if_dm<X: Xenstore + ?Sized>(
    xs: &X,
    tx: TxId,
    c: &Controller,
) -> Result<std::collections::BTreeSet<u32>> {
    if c.ctype == UsbCtrlType::DeviceModel {
        emulated::occupied(xs, tx, c.domid, c.devid)
    } else {
        Ok(Default::default())
    }
}

fn need_dm(c: &Controller) -> Result<()> {
    if c.ctype == UsbCtrlType::DeviceModel {
        Ok(())
    } else {
        Err(Error::EmulatedNeedsDeviceModel {
            devid: c.devid,
            ctype: c.ctype.as_str().to_owned(),
        })
    }
}

/// Attach QEMU's emulated `kind` to HVM guest `dom` (see the module doc).
pub fn attach<X: Xenstore + XenstoreWatch + ?Sized>(
    env: &OpEnv<'_, X>,
    dom: &Domain,
    spec: &UsbDevSpec,
    kind: EmulatedKind,
) -> Result<Attached> {
    let xs = env.xs;
    let mut explicit = match spec.controller {
        None => None,
        Some(devid) => {
            let missing = || Error::MissingNode {
                path: format!("/libxl/{}/device/vusb/{devid}", dom.domid),
            };
            let ctrl = read_controller(xs, TxId::NONE, dom.domid, devid)?.ok_or_else(missing)?;
            need_dm(&ctrl)?;
            Some(ctrl)
        }
    };
    let port_wanted = spec.port;
    if port_wanted.is_some() && explicit.is_none() {
        return Err(Error::PortWithoutController);
    }
    if explicit.is_none() && domain_type(xs, TxId::NONE, dom.domid)? != Some(DomainType::Hvm) {
        return Err(Error::EmulatedNeedsHvm { domid: dom.domid });
    }
    assign::ensure_prefix(xs, TxId::NONE)?;
    let mut created: Option<Controller> = None;
    let mut placed: Option<(Controller, u32)> = None;
    for attempt in 1..=ATTEMPTS {
        let tx = xs.transaction_start()?;
        let choice = match choose(xs, tx, dom, explicit.as_ref(), port_wanted, true) {
            Ok(Choice::Port(c, port)) => {
                match emulated::write(xs, tx, dom.domid, c.devid, port, kind) {
                    Ok(()) => Choice::Port(c, port),
                    Err(e) => {
                        abort(xs, tx);
                        return Err(undo_created(env, dom, created.as_ref(), e));
                    }
                }
            }
            Ok(c) => c,
            Err(e) => {
                abort(xs, tx);
                return Err(undo_created(env, dom, created.as_ref(), e));
            }
        };
        match choice {
            Choice::NeedController => {
                abort(xs, tx);
                if created.is_some() {
                    continue;
                }
                let ctrl_spec = UsbCtrlSpec {
                    kind: CtrlKind::DeviceModel,
                    ..UsbCtrlSpec::default()
                };
                let c = usbctrl_attach(env, dom, &ctrl_spec)?;
                log::debug!(
                    "domain {}: created controller {} for an emulated {}",
                    dom.domid,
                    c.devid,
                    kind.spec_name()
                );
                explicit = Some(c.clone());
                created = Some(c);
            }
            Choice::Port(c, port) => match xs.transaction_end(tx, true) {
                Ok(()) => {
                    placed = Some((c, port));
                    break;
                }
                Err(e) if e.is_again() => {
                    log::debug!("emulated attach transaction conflict, attempt {attempt}");
                }
                Err(e) => return Err(undo_created(env, dom, created.as_ref(), e.into())),
            },
        }
    }
    let Some((ctrl, port)) = placed else {
        let e = Error::Xenstore(vusb_xenstore::Error::TransactionConflict { attempts: ATTEMPTS });
        return Err(undo_created(env, dom, created.as_ref(), e));
    };
    let device = DmDevice::Emulated(kind);
    if let Err(e) = devicemodel::add_domain_device(env.paths, dom.domid, ctrl.devid, port, &device)
    {
        let e = Error::DeviceModel {
            domid: dom.domid,
            source: Box::new(e),
        };
        forget(xs, dom, ctrl.devid, port);
        return Err(undo_created(env, dom, created.as_ref(), e));
    }
    log::debug!(
        "domain {}: emulated {} at controller {} port {port}",
        dom.domid,
        kind.spec_name(),
        ctrl.devid
    );
    Ok(Attached {
        ctrl: ctrl.devid,
        port,
        busid: String::new(),
        created_ctrl: created.map(|c| c.devid),
        emulated: Some(kind),
        notices: Vec::new(),
    })
}

/// Remove the record of a port, logging a failure (rollback paths).
fn forget<X: Xenstore + ?Sized>(xs: &X, dom: &Domain, devid: u32, port: u32) {
    let r = vusb_xenstore::transaction(xs, ATTEMPTS, |tx| {
        emulated::remove(xs, tx, dom.domid, devid, port)
    });
    if let Err(e) = r {
        log::warn!(
            "could not remove the emulated device record of controller {devid} port {port}: {e}"
        );
    }
}

/// Remove the emulated `kind` at `port` of `ctrl`: QMP `device_del` of
/// its QOM id, waiting for `DEVICE_DELETED` as for host devices, then the
/// record. A device QEMU no longer has counts as removed; one the guest
/// keeps is an error and the record stays.
pub fn detach_at<X: Xenstore + ?Sized>(
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
    super::dm::remove_device(env, dom, &qom)?;
    vusb_xenstore::transaction(env.xs, ATTEMPTS, |tx| {
        emulated::remove(env.xs, tx, dom.domid, ctrl.devid, port)
    })
}

/// Remove every emulated device of devicemodel controller `ctrl` (before
/// the controller itself goes); nothing, and no request, for pv/qusb.
pub fn detach_all<X: Xenstore + ?Sized>(
    env: &OpEnv<'_, X>,
    dom: &Domain,
    ctrl: &Controller,
) -> Result<()> {
    if ctrl.ctype != UsbCtrlType::DeviceModel {
        return Ok(());
    }
    for (port, kind) in emulated::list(env.xs, TxId::NONE, dom.domid, ctrl.devid)? {
        detach_at(env, dom, ctrl, port, kind).map_err(|e| Error::Remove {
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
