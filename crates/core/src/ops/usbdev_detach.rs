//! `usbdev-detach`: take a host device away from a guest (libxl's
//! `libxl__device_usbdev_remove`, reference §7.3).
//!
//! Addressed as xl does (`<controller> <port>`) or, a vusb extension, by
//! any host identity usbdev-attach takes (`busid=`, `vendor=`/`product=`
//! [`serial=`], `hostbus=`/`hostaddr=`, `portpath=`): matched against
//! vusb's assignment records of the domain first, so a device that was
//! unplugged is found by the identity it was attached by; sysfs is asked
//! only for what the records do not carry (a physical port path, records
//! of older versions without vendor/product). `<controller> <port>` of a devicemodel port
//! holding an emulated tablet/mouse/keyboard removes that device
//! ([`super::teardown::detach_emulated`]).
//!
//! Under the device's lock and a shared lock on its controller
//! ([`crate::lock`]), the release plan of the hand-over runs
//! ([`super::handover`], journaled: `step=detach` is written before the
//! interfaces move, so a killed detach is completed by the next command on
//! the device or `usb-recover`).
//!
//! Deliberately differs from libxl:
//! - the port's busid is used as is; it is never converted back through
//!   sysfs, so a device that was unplugged while assigned can still be
//!   detached (U1/U2): its driver memory and assignment record are dropped;
//! - the port is cleared and vusb's assignment record released in one
//!   transaction, and only if the port still holds that device;
//! - the libxl JSON entry is removed (libxl leaves it, J3), and so is the
//!   device's entry in vusb's saved configuration;
//! - devicemodel: the port is cleared after QEMU released the device (a
//!   device the guest keeps stays listed, its record as it was).
//!
//! Kept: pv interfaces leave usbback before the port is cleared, and an
//! unbind failure stops the operation with the device still listed, so it
//! can be retried.

use vusb_host::{BusId, Selector};
use vusb_xenstore::{TxId, Xenstore};
use vusb_xlcfg::UsbDevSpec;

use super::common::OpEnv;
use super::hostdev;
use super::teardown::{self, Why};
use crate::assign::{self, Assignment};
use crate::devicemodel::EmulatedKind;
use crate::domain::Domain;
use crate::layout::read::{read_controller, read_port, read_port_busid};
use crate::layout::{Controller, UsbCtrlType};
use crate::lock::{self, Mode};
use crate::{Error, Result};

/// Which device to detach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DetachTarget {
    /// xl's form: controller devid and port (after `atoi`).
    Port {
        /// Controller devid.
        ctrl: i32,
        /// Port.
        port: i32,
    },
    /// By host identity (`busid=`, or another selector).
    Host(UsbDevSpec),
}

/// What was detached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detached {
    /// Controller devid.
    pub ctrl: u32,
    /// Port.
    pub port: u32,
    /// The host device (`None` for an emulated device).
    pub busid: Option<BusId>,
    /// The emulated device removed (`type=tablet|mouse|keyboard`).
    pub emulated: Option<EmulatedKind>,
}

/// Detach the device `target` names from `dom`.
pub fn usbdev_detach<X: Xenstore + ?Sized>(
    env: &OpEnv<'_, X>,
    dom: &Domain,
    target: &DetachTarget,
) -> Result<Detached> {
    let wait = env.timeouts.lock_wait;
    match locate(env, dom, target)? {
        Located::Emulated(ctrl, port, kind) => {
            let _ctrl_lock =
                lock::controller(env.paths, dom.domid, ctrl.devid, Mode::Shared, wait)?;
            teardown::detach_emulated(env, dom, &ctrl, port, kind)?;
            Ok(Detached {
                ctrl: ctrl.devid,
                port,
                busid: None,
                emulated: Some(kind),
            })
        }
        Located::Host(ctrl, port, busid) => {
            // The device's lock, then its controller's (shared: it must not
            // be removed meanwhile). The release checks that the port
            // still holds the device (a detach that ran meanwhile).
            teardown::detach_host_locked(env, dom, &ctrl, port, &busid, Why::Detach)?;
            Ok(Detached {
                ctrl: ctrl.devid,
                port,
                busid: Some(busid),
                emulated: None,
            })
        }
    }
}

/// What a detach target names: a host device at a port, or (devicemodel
/// only) an emulated device recorded at a port whose libxl node is empty.
enum Located {
    Host(Controller, u32, BusId),
    Emulated(Controller, u32, EmulatedKind),
}

fn locate<X: Xenstore + ?Sized>(
    env: &OpEnv<'_, X>,
    dom: &Domain,
    target: &DetachTarget,
) -> Result<Located> {
    let xs = env.xs;
    match target {
        DetachTarget::Port { ctrl, port } => {
            let unknown = || Error::UnknownDevice {
                ctrl: ctrl.to_string(),
                port: port.to_string(),
            };
            let (Ok(c), Ok(p)) = (u32::try_from(*ctrl), u32::try_from(*port)) else {
                return Err(unknown());
            };
            if p < 1 {
                return Err(unknown());
            }
            let c = read_controller(xs, TxId::NONE, dom.domid, c)?.ok_or_else(unknown)?;
            if p > c.ports {
                return Err(unknown());
            }
            if let Some(busid) = read_port_busid(xs, TxId::NONE, &c, p)? {
                return Ok(Located::Host(c, p, busid));
            }
            // An empty port: on a devicemodel controller it may hold one of
            // vusb's emulated devices (one more read, only in this case).
            if c.ctype == UsbCtrlType::DeviceModel
                && let Some(kind) = crate::emulated::read(xs, TxId::NONE, dom.domid, c.devid, p)?
            {
                return Ok(Located::Emulated(c, p, kind));
            }
            Err(unknown())
        }
        DetachTarget::Host(spec) => {
            let busid = attached_busid(env, dom, spec)?;
            let not_here = || Error::DeviceNotAttached {
                busid: busid.to_string(),
                domid: dom.domid,
            };
            let rec = assign::lookup(xs, TxId::NONE, &busid)?.ok_or_else(not_here)?;
            if rec.domid != dom.domid {
                return Err(not_here());
            }
            let c = read_controller(xs, TxId::NONE, dom.domid, rec.ctrl)?.ok_or_else(not_here)?;
            if read_port(xs, TxId::NONE, &c, rec.port)?.as_deref() != Some(busid.as_str()) {
                return Err(not_here());
            }
            Ok(Located::Host(c, rec.port, busid))
        }
    }
}

/// Whether the record `r` is of the device `sel` names.
fn record_matches(r: &Assignment, sel: &Selector) -> bool {
    match sel {
        Selector::BusId(b) => r.busid == *b,
        Selector::PortPath(p) => r.busid == p.as_str(),
        Selector::BusAddr { bus, addr } => {
            *bus != 0 && *addr != 0 && r.hostbus == *bus && r.hostaddr == *addr
        }
        Selector::VidPid {
            vendor,
            product,
            serial,
        } => r.identity.as_ref().is_some_and(|id| {
            id.vendor == *vendor
                && id.product == *product
                && serial
                    .as_ref()
                    .is_none_or(|s| id.serial.as_deref() == Some(s.as_str()))
        }),
        // Not recorded: found in sysfs below.
        Selector::PhysPort { .. } => false,
    }
}

/// The busid of the device of `dom` that `spec` names: a `busid=` as is
/// (one record read follows), otherwise the domain's records, then sysfs.
fn attached_busid<X: Xenstore + ?Sized>(
    env: &OpEnv<'_, X>,
    dom: &Domain,
    spec: &UsbDevSpec,
) -> Result<BusId> {
    let sel = hostdev::selector(spec)?;
    if let Selector::BusId(b) = &sel {
        return Ok(b.clone());
    }
    let records = assign::list_domain(env.xs, TxId::NONE, dom.domid)?;
    let hits: Vec<&Assignment> = records.iter().filter(|r| record_matches(r, &sel)).collect();
    match hits.as_slice() {
        [one] => return Ok(one.busid.clone()),
        [] => {}
        many => {
            return Err(Error::Host(Box::new(vusb_host::Error::AmbiguousDevice {
                what: sel.to_string(),
                matches: many.iter().map(|r| r.busid.to_string()).collect(),
            })));
        }
    }
    // Not by the records: a physical port path, or a record of a version
    // that did not store vendor/product. The device must then be present.
    match vusb_host::lookup::locate_with(&env.paths.sysfs_root, &sel, &hostdev::filter(spec)) {
        Ok(d) => Ok(d.busid),
        Err(vusb_host::Error::DeviceNotFound { .. }) => Err(Error::DeviceNotAttached {
            busid: sel.to_string(),
            domid: dom.domid,
        }),
        Err(e) => Err(Error::Host(Box::new(e))),
    }
}
