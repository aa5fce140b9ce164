//! Attaching a host device to a Xen guest, shared by `usbdev-attach`
//! ([`super::usbdev_attach`], whose doc says what matches libxl and what
//! differs) and `config-apply`: the device's lock, an interrupted journal
//! on it resolved, placement ([`super::placement`]), then the hand-over
//! executor ([`super::handover`]).

use vusb_xenstore::{TxId, Xenstore, XenstoreExt, XenstoreWatch};
use vusb_xlcfg::{UsbCtrlSpec, UsbDevSpec};

use super::common::{OpEnv, at};
use super::placement::{self, Claim, Request, explicit_controller};
use super::{handover, hostdev};
use crate::assign::{self, Assignment};
use crate::domain::Domain;
use crate::journal::Step;
use crate::layout::{Controller, UsbCtrlType};
use crate::persist::DevRecord;
use crate::{Error, Result, lock};

pub use super::placement::Attached;

/// The host device's claim: refuse it when assigned, write the port node
/// and the record (journal `step=attach`).
struct HostClaim<'a, 'r, X: ?Sized> {
    xs: &'a X,
    record: &'r mut Assignment,
    dev: &'a vusb_host::UsbDevice,
    force: bool,
}

impl<X: Xenstore + ?Sized> Claim for HostClaim<'_, '_, X> {
    fn check(&mut self, tx: TxId) -> Result<()> {
        let busid = &self.record.busid;
        match assign::lookup_live(self.xs, tx, busid)? {
            None => Ok(()),
            Some(other) if other.step != Step::Done => Err(Error::Interrupted {
                busid: busid.clone(),
                domid: other.domid,
                step: other.step.as_str(),
            }),
            Some(other) => Err(Error::AlreadyAssigned {
                busid: busid.clone(),
                domid: other.domid,
            }),
        }
    }

    fn fits(&mut self, proto: &Controller) -> Result<()> {
        hostdev::check_controller(self.dev, proto, self.force)
    }

    fn write(&mut self, tx: TxId, ctrl: &Controller, port: u32) -> Result<()> {
        // A controller that cannot carry the device is refused.
        hostdev::check_controller(self.dev, ctrl, self.force)?;
        let rec = &mut *self.record;
        let path = ctrl.port_path(port);
        self.xs
            .write_str(tx, &path, rec.busid.as_str())
            .map_err(at(&path))?;
        rec.ctrl = ctrl.devid;
        rec.port = port;
        rec.ctrl_type = ctrl.ctype;
        rec.step = Step::Attach;
        assign::update(self.xs, tx, rec)
    }
}

/// Attach the host device `spec` names to `dom` (QEMU's emulated devices
/// through [`super::emulated`]).
pub fn attach<X: Xenstore + XenstoreWatch + ?Sized>(
    env: &OpEnv<'_, X>,
    dom: &Domain,
    spec: &UsbDevSpec,
) -> Result<Attached> {
    if let Some(kind) = super::emulated::spec_kind(spec) {
        return super::emulated::attach(env, dom, spec, kind);
    }
    let xs = env.xs;
    let explicit = explicit_controller(xs, dom, spec.controller)?;
    let dev = hostdev::select_assignable(env.paths, spec, env.force)?;
    let busid = dev.busid.clone();
    let _dev_lock = lock::device(env.paths, &busid, env.timeouts.lock_wait)?;
    // Before anything is written: a QEMU-served port must not be handed a
    // device QEMU cannot see yet.
    hostdev::await_udev(env.paths, &dev, env.timeouts.udev_wait)?;
    // A device given away by xl has no vusb record, but its interfaces sit
    // on usbback: refuse it too (a sysfs look, no xenstore request) —
    // unless vusb's journal says an interrupted operation left it so.
    if dev
        .interfaces
        .iter()
        .any(|i| i.driver.as_deref() == Some(vusb_host::bind::USBBACK))
    {
        match assign::lookup(xs, TxId::NONE, &busid)? {
            Some(rec) if rec.step != Step::Done => {
                handover::resolve(env, &rec)?;
            }
            Some(rec) => {
                return Err(Error::AlreadyAssigned {
                    busid,
                    domid: rec.domid,
                });
            }
            None => return Err(Error::BoundToUsbback { busid }),
        }
    }
    let port_wanted = spec.port;
    if port_wanted.is_some() && explicit.is_none() {
        return Err(Error::PortWithoutController);
    }
    // `/vusb` is made dom0-only by usbctrl-attach; if a controller made by
    // xl is used first, the record write creates it, inheriting `/`'s `n0`.
    let mut record = Assignment {
        busid: busid.clone(),
        domid: dom.domid,
        ctrl: 0,
        port: 0,
        ctrl_type: UsbCtrlType::Pv,
        hostbus: dev.busnum,
        hostaddr: dev.devnum,
        qom_id: None,
        step: Step::Attach,
        identity: Some(crate::assign::HostIdentity {
            vendor: dev.vendor_id,
            product: dev.product_id,
            serial: dev.serial.clone(),
        }),
    };
    let req = Request {
        explicit,
        port: port_wanted,
        only_devicemodel: false,
        new_ctrl: UsbCtrlSpec::default(),
    };
    let placed = {
        let mut claim = HostClaim {
            xs,
            record: &mut record,
            dev: &dev,
            force: env.force,
        };
        match placement::place(env, dom, &req, &mut claim) {
            Err(Error::Interrupted { .. }) => {
                // A dead command's journal on this device: resolve it
                // (we hold the device's lock), then place again.
                if let Some(rec) = assign::lookup(xs, TxId::NONE, &busid)? {
                    handover::resolve(env, &rec)?;
                }
                placement::place(env, dom, &req, &mut claim)?
            }
            other => other?,
        }
    };
    log::debug!(
        "domain {}: {busid} claimed at controller {} port {}",
        dom.domid,
        placed.ctrl.devid,
        placed.port
    );
    let book = DevRecord {
        ctrl: placed.ctrl.devid,
        port: placed.port,
        busid: busid.to_string(),
        hostbus: record.hostbus,
        hostaddr: record.hostaddr,
        vendor: Some(dev.vendor_id),
        product: Some(dev.product_id),
        serial: dev.serial.clone(),
    };
    if let Err(e) = handover::attach_after_claim(env, dom, &placed.ctrl, &mut record, &book) {
        return Err(placement::undo_created(
            env,
            dom,
            &placed.created,
            Some(placed.ctrl_lock),
            e,
        ));
    }
    Ok(Attached {
        ctrl: placed.ctrl.devid,
        port: placed.port,
        busid: Some(busid),
        created_ctrl: placed.created.last().map(|c| c.devid),
        emulated: None,
        notices: hostdev::speed_notice(&dev, &placed.ctrl)
            .into_iter()
            .collect(),
    })
}
