//! `usbdev-attach`: give a host USB device to a guest (libxl's
//! `libxl__device_usbdev_add`, reference §7.2).
//!
//! Matches libxl: an explicit controller must exist; the device must be
//! assignable ("USB device is not assignable."); a device already assigned
//! is refused ("USB device already attached to a domain"); `port` needs
//! `controller`; the first free port in controller order, or a new
//! controller with default settings; the busid in the port node; pv hands
//! the interfaces to usbback after publishing the busid and rolls back on
//! failure; the libxl JSON gets the device with resolved values.
//!
//! Deliberately differs (each a libxl bug, reference §10.2):
//! - **constant cost, no races (U1, R1)**: "assigned anywhere?" is one read
//!   of vusb's assignment record ([`crate::assign`]), never a scan of every
//!   domain; the record is claimed and the port re-checked and written in
//!   one transaction, so concurrent attaches never share a port or device;
//! - **C1**: an explicit port outside `1..=ports` is refused;
//! - **A1**: a controller created because none had a free port goes through
//!   the full `usbctrl-attach` path (backend waited for, QEMU controller
//!   created), and is removed again if the attach then fails;
//! - selection by `busid=`, `vendor=`/`product=`/`serial=`, `portpath=`;
//! - a device whose interfaces are on usbback without a vusb record (given
//!   away by `xl`) is refused as already attached, from sysfs alone;
//! - `type=tablet|mouse|keyboard` attaches QEMU's emulated device to a
//!   devicemodel controller instead ([`super::emulated`]), and a
//!   devicemodel port holding one (`/vusb/emulated`) is not free here
//!   either (one `directory` per devicemodel controller probed; none for
//!   pv/qusb).

use vusb_xenstore::{TxId, Xenstore, XenstoreExt, XenstoreWatch};
use vusb_xlcfg::{UsbCtrlSpec, UsbDevSpec};

use super::common::{OpEnv, at};
use super::emulated::{occupied_if_dm, port_free};
use super::usbctrl_attach;
use super::usbctrl_detach::remove_controller;
use super::{dm, hostdev, usbback};
use crate::assign::{self, Assignment};
use crate::devicemodel::EmulatedKind;
use crate::domain::Domain;
use crate::layout::read::{list_devids, read_controller};
use crate::layout::{Controller, UsbCtrlType};
use crate::{Error, Result, libxl_json};

const ATTEMPTS: u32 = vusb_xenstore::txn::DEFAULT_ATTEMPTS;

/// Where the device went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attached {
    /// Controller devid.
    pub ctrl: u32,
    /// Port.
    pub port: u32,
    /// The host device.
    pub busid: String,
    /// The controller devid if one had to be created for this device.
    pub created_ctrl: Option<u32>,
    /// For `type=tablet|mouse|keyboard`: the emulated device (then
    /// `busid` is empty).
    pub emulated: Option<EmulatedKind>,
    /// What the user should know although it worked (a SuperSpeed device
    /// on a USB2 controller runs at high speed); the CLI prints each as
    /// `vusb: notice: …`.
    pub notices: Vec<String>,
}

/// Where a device can go: a free port, or nowhere yet (create a controller).
pub(super) enum Choice {
    Port(Controller, u32),
    NeedController,
}

/// Attach the host device `spec` names to `dom`.
pub fn usbdev_attach<X: Xenstore + XenstoreWatch + ?Sized>(
    env: &OpEnv<'_, X>,
    dom: &Domain,
    spec: &UsbDevSpec,
) -> Result<Attached> {
    if let Some(kind) = super::emulated::spec_kind(spec) {
        return super::emulated::attach(env, dom, spec, kind);
    }
    let xs = env.xs;
    let mut explicit = match spec.controller {
        None => None,
        Some(devid) => {
            let missing = || Error::MissingNode {
                path: format!("/libxl/{}/device/vusb/{devid}", dom.domid),
            };
            Some(read_controller(xs, TxId::NONE, dom.domid, devid)?.ok_or_else(missing)?)
        }
    };
    let dev = hostdev::select_assignable(env.paths, spec, env.force)?;
    let busid = dev.busid.to_string();
    // A device given away by xl has no vusb record, but its interfaces sit
    // on usbback: refuse it too (a sysfs look, no xenstore request).
    if dev
        .interfaces
        .iter()
        .any(|i| i.driver.as_deref() == Some(vusb_host::bind::USBBACK))
    {
        return Err(Error::BoundToUsbback { busid });
    }
    let port_wanted = spec.port;
    if port_wanted.is_some() && explicit.is_none() {
        return Err(Error::PortWithoutController);
    }
    // `/vusb` is made dom0-only by usbctrl-attach; if a controller made by
    // xl is used first, the record write creates it, inheriting `/`'s `n0`.
    let mut created: Option<Controller> = None;
    let mut record = Assignment {
        busid: busid.clone(),
        domid: dom.domid,
        ctrl: 0,
        port: 0,
        ctrl_type: UsbCtrlType::Pv,
        hostbus: u16::try_from(dev.busnum).unwrap_or(u16::MAX),
        hostaddr: u16::try_from(dev.devnum).unwrap_or(u16::MAX),
        qom_id: None,
        identity: Some(crate::assign::HostIdentity {
            vendor: dev.vendor_id,
            product: dev.product_id,
            serial: dev.serial.clone(),
        }),
    };
    let mut placed: Option<Controller> = None;
    for attempt in 1..=ATTEMPTS {
        let tx = xs.transaction_start()?;
        let want = Wanted {
            explicit: explicit.as_ref(),
            port: port_wanted,
            dev: &dev,
            force: env.force,
        };
        let choice = match claim_in(xs, tx, dom, &want, &mut record) {
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
                    // A controller we just made has no free port: only a
                    // concurrent attach can have taken it; try again.
                    continue;
                }
                // The controller that would be made must be able to carry
                // the device: refuse before creating it.
                let proto = usbctrl_attach::resolve(env, dom, &UsbCtrlSpec::default())?;
                hostdev::check_controller(&dev, &proto, env.force)?;
                let c = usbctrl_attach::attach_resolved(env, dom, proto, None)?;
                log::debug!(
                    "domain {}: created controller {} for {busid}",
                    dom.domid,
                    c.devid
                );
                explicit = Some(c.clone());
                created = Some(c);
                continue;
            }
            Choice::Port(c, _) => match xs.transaction_end(tx, true) {
                Ok(()) => {
                    placed = Some(c);
                    break;
                }
                Err(e) if e.is_again() => {
                    log::debug!("attach transaction conflict, attempt {attempt}");
                    continue;
                }
                Err(e) => return Err(undo_created(env, dom, created.as_ref(), e.into())),
            },
        }
    }
    let Some(ctrl) = placed else {
        let e = Error::Xenstore(vusb_xenstore::Error::TransactionConflict { attempts: ATTEMPTS });
        return Err(undo_created(env, dom, created.as_ref(), e));
    };
    log::debug!(
        "domain {}: {busid} published at controller {} port {}",
        dom.domid,
        ctrl.devid,
        record.port
    );
    if let Err(e) = hand_over(env, dom, &ctrl, &mut record) {
        unpublish(xs, &ctrl, &record);
        return Err(undo_created(env, dom, created.as_ref(), e));
    }
    if let Err(e) = libxl_json::record_dev(
        xs,
        env.paths,
        dom.domid,
        ctrl.devid,
        record.port,
        record.hostbus,
        record.hostaddr,
    ) {
        log::warn!("libxl's stored configuration not updated: {e}");
    }
    let saved = crate::persist::DevRecord {
        ctrl: ctrl.devid,
        port: record.port,
        busid: busid.clone(),
        hostbus: record.hostbus,
        hostaddr: record.hostaddr,
        vendor: Some(dev.vendor_id),
        product: Some(dev.product_id),
        serial: dev.serial.clone(),
    };
    if let Err(e) = crate::persist::record_dev(xs, env.paths, dom.domid, &saved) {
        log::warn!("vusb's saved configuration not updated: {e}");
    }
    Ok(Attached {
        ctrl: ctrl.devid,
        port: record.port,
        busid,
        created_ctrl: created.map(|c| c.devid),
        emulated: None,
        notices: hostdev::speed_notice(&dev, &ctrl).into_iter().collect(),
    })
}

pub(super) fn abort<X: Xenstore + ?Sized>(xs: &X, tx: TxId) {
    if let Err(e) = xs.transaction_end(tx, false) {
        log::debug!("aborting transaction: {e}");
    }
}

/// Where the user wants the device and what it is.
struct Wanted<'a> {
    explicit: Option<&'a Controller>,
    port: Option<u32>,
    dev: &'a vusb_host::UsbDevice,
    force: bool,
}

/// Inside `tx`: refuse an assigned device, choose the port, refuse a
/// controller that cannot carry the device, write the port node and the
/// assignment record.
fn claim_in<X: Xenstore + ?Sized>(
    xs: &X,
    tx: TxId,
    dom: &Domain,
    want: &Wanted<'_>,
    record: &mut Assignment,
) -> Result<Choice> {
    if let Some(other) = assign::lookup_live(xs, tx, &record.busid)? {
        return Err(Error::AlreadyAssigned {
            busid: record.busid.clone(),
            domid: other.domid,
        });
    }
    let choice = choose(xs, tx, dom, want.explicit, want.port, false)?;
    if let Choice::Port(c, port) = &choice {
        hostdev::check_controller(want.dev, c, want.force)?;
        let path = c.port_path(*port);
        xs.write_str(tx, &path, &record.busid).map_err(at(&path))?;
        record.ctrl = c.devid;
        record.port = *port;
        record.ctrl_type = c.ctype;
        assign::update(xs, tx, record)?;
    }
    Ok(choice)
}

/// Inside `tx`: the port a device goes to — on `explicit` (the given port,
/// which must be in range and free, or its first free port), else the
/// first free port in controller order, skipping all but devicemodel
/// controllers when `only_devicemodel` (emulated devices). A devicemodel
/// port holding an emulated device is not free.
pub(super) fn choose<X: Xenstore + ?Sized>(
    xs: &X,
    tx: TxId,
    dom: &Domain,
    explicit: Option<&Controller>,
    port_wanted: Option<u32>,
    only_devicemodel: bool,
) -> Result<Choice> {
    if let Some(c) = explicit {
        // Ports with an emulated device (devicemodel only: one directory
        // request; none for pv/qusb) are taken too.
        let emu = occupied_if_dm(xs, tx, c)?;
        if let Some(p) = port_wanted {
            let port =
                Some(p)
                    .filter(|p| (1..=c.ports).contains(p))
                    .ok_or(Error::PortOutOfRange {
                        devid: c.devid,
                        port: i64::from(p),
                        ports: c.ports,
                    })?;
            if !port_free(xs, tx, c, port, &emu)? {
                return Err(Error::PortInUse {
                    devid: c.devid,
                    port,
                });
            }
            return Ok(Choice::Port(c.clone(), port));
        }
        for port in 1..=c.ports {
            if port_free(xs, tx, c, port, &emu)? {
                return Ok(Choice::Port(c.clone(), port));
            }
        }
        return Err(Error::NoFreePort { devid: c.devid });
    }
    for devid in list_devids(xs, tx, dom.domid)? {
        let Some(c) = read_controller(xs, tx, dom.domid, devid)? else {
            continue;
        };
        if only_devicemodel && c.ctype != UsbCtrlType::DeviceModel {
            continue;
        }
        let emu = occupied_if_dm(xs, tx, &c)?;
        for port in 1..=c.ports {
            if port_free(xs, tx, &c, port, &emu)? {
                return Ok(Choice::Port(c, port));
            }
        }
    }
    Ok(Choice::NeedController)
}

/// The type-specific part after the busid is published.
fn hand_over<X: Xenstore + ?Sized>(
    env: &OpEnv<'_, X>,
    dom: &Domain,
    ctrl: &Controller,
    record: &mut Assignment,
) -> Result<()> {
    match ctrl.ctype {
        UsbCtrlType::Pv => usbback::give(env.xs, env.paths, &record.busid),
        // libxl reports success once the port node is written (Q1).
        UsbCtrlType::Qusb => Ok(()),
        UsbCtrlType::DeviceModel => {
            let qom = dm::add_device(env, dom, ctrl, record.port, record.hostbus, record.hostaddr)?;
            record.qom_id = Some(qom);
            vusb_xenstore::transaction(env.xs, ATTEMPTS, |tx| assign::update(env.xs, tx, record))
        }
    }
}

/// Roll back a published device: port emptied, record released.
fn unpublish<X: Xenstore + ?Sized>(xs: &X, ctrl: &Controller, record: &Assignment) {
    let res = vusb_xenstore::transaction(xs, ATTEMPTS, |tx| {
        let path = ctrl.port_path(record.port);
        if xs.read_opt(tx, &path).map_err(at(&path))?.as_deref() == Some(record.busid.as_str()) {
            xs.write_str(tx, &path, "").map_err(at(&path))?;
        }
        assign::release(xs, tx, &record.busid)
    });
    if let Err(e) = res {
        log::warn!(
            "could not roll back {} after a failed attach: {e}",
            record.busid
        );
    }
}

/// Remove a controller this attach created, then return `e`.
/// Remove a controller this attach created (if any) after a failure, and
/// return the failure.
pub(super) fn undo_created<X: Xenstore + XenstoreWatch + ?Sized>(
    env: &OpEnv<'_, X>,
    dom: &Domain,
    created: Option<&Controller>,
    e: Error,
) -> Error {
    if let Some(c) = created {
        if let Err(r) = remove_controller(env, dom, c) {
            log::warn!(
                "could not remove controller {} created for this attach: {r}",
                c.devid
            );
        } else if let Err(r) = crate::persist::forget_ctrl(env.xs, env.paths, dom.domid, c.devid) {
            log::warn!("vusb's saved configuration not updated: {r}");
        }
    }
    e
}
