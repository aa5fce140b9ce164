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
//! that finds the port free, journaled `step=attach` until QEMU has the
//! device (then done: one request more); QEMU refusing the device removes
//! the record again (and a controller created for it). A command killed
//! in between leaves the journal for `usb-recover`.
//!
//! Port choice follows `usbdev-attach`: an explicit controller must exist
//! and be `devicemodel` (else an error naming it, nothing changed); without
//! one, the first devicemodel controller with a free port, else a new
//! controller through `usbctrl-attach` (HVM guests only: a PV/PVH guest is
//! refused before anything changes). The placement loop is the host
//! devices' ([`super::placement`]); removal is in [`super::teardown`].

use vusb_xenstore::{TxId, Xenstore, XenstoreWatch};
use vusb_xlcfg::{CtrlKind, DevKind, UsbCtrlSpec, UsbDevSpec};

use super::common::OpEnv;
use super::placement::{self, Attached, Claim, Request, explicit_controller};
use crate::devicemodel::{self, DmDevice, EmulatedKind};
use crate::domain::{Domain, DomainType, domain_type};
use crate::journal::Step;
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

/// The emulated device's claim: its `/vusb/emulated` record.
struct EmuClaim<'a, X: ?Sized> {
    xs: &'a X,
    domid: u32,
    kind: EmulatedKind,
}

impl<X: Xenstore + ?Sized> Claim for EmuClaim<'_, X> {
    fn check(&mut self, _tx: TxId) -> Result<()> {
        Ok(())
    }

    fn write(&mut self, tx: TxId, ctrl: &Controller, port: u32) -> Result<()> {
        emulated::write(
            self.xs,
            tx,
            self.domid,
            ctrl.devid,
            port,
            self.kind,
            Step::Attach,
        )
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
    let explicit = explicit_controller(xs, dom, spec.controller)?;
    if let Some(c) = &explicit {
        need_dm(c)?;
    }
    let port_wanted = spec.port;
    if port_wanted.is_some() && explicit.is_none() {
        return Err(Error::PortWithoutController);
    }
    if explicit.is_none() && domain_type(xs, TxId::NONE, dom.domid)? != Some(DomainType::Hvm) {
        return Err(Error::EmulatedNeedsHvm { domid: dom.domid });
    }
    assign::ensure_prefix(xs, TxId::NONE)?;
    let req = Request {
        explicit,
        port: port_wanted,
        only_devicemodel: true,
        new_ctrl: UsbCtrlSpec {
            kind: CtrlKind::DeviceModel,
            ..UsbCtrlSpec::default()
        },
    };
    let mut claim = EmuClaim {
        xs,
        domid: dom.domid,
        kind,
    };
    let placed = placement::place(env, dom, &req, &mut claim)?;
    let (ctrl, port) = (&placed.ctrl, placed.port);
    let device = DmDevice::Emulated(kind);
    if let Err(e) = devicemodel::add_domain_device(env.paths, dom.domid, ctrl.devid, port, &device)
    {
        let e = Error::DeviceModel {
            domid: dom.domid,
            source: Box::new(e),
        };
        forget(xs, dom, ctrl.devid, port);
        return Err(placement::undo_created(
            env,
            dom,
            &placed.created,
            Some(placed.ctrl_lock),
            e,
        ));
    }
    // Journal: done. Failing here leaves `step=attach` with the device in
    // QEMU; the error says so and `usb-recover` rolls it back.
    emulated::write(
        xs,
        TxId::NONE,
        dom.domid,
        ctrl.devid,
        port,
        kind,
        Step::Done,
    )?;
    log::debug!(
        "domain {}: emulated {} at controller {} port {port}",
        dom.domid,
        kind.spec_name(),
        ctrl.devid
    );
    Ok(Attached {
        ctrl: ctrl.devid,
        port,
        busid: None,
        created_ctrl: placed.created.last().map(|c| c.devid),
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
