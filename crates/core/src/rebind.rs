//! Handing a device's interfaces to usbback and giving them back, crash-safe.
//!
//! Order (libxl's `usbback_dev_assign`, reference §5.7): for each interface,
//! **record** its driver in [`crate::driver_memory`], **unbind** it, **bind**
//! it to usbback. The record is durable in xenstore before the unbind it
//! protects, so after a crash at any point the memory alone says how to undo
//! the work: [`restore`] unbinds whatever sits on usbback and binds every
//! remembered interface back, whatever state each one was left in.
//!
//! Differences from libxl, on purpose:
//! - the `/libxl/usbback/<busid>` node is created before the first
//!   interface is touched, so a crash is recoverable even when no interface
//!   had a driver;
//! - on a failure midway, [`assign`] restores every interface and returns
//!   the first error; when the rollback itself fails the memory is **kept**
//!   (libxl deletes it) so that `vusb usb-recover` can finish the job;
//! - [`restore`] removes the memory only when every interface is back.
//!
//! The sysfs side goes through [`Drivers`]: the kernel's, or in a dry run
//! (`vusb -N`, [`crate::dryrun`]) the plan's, which records each bind and
//! unbind and answers later looks with the planned driver.

use std::path::Path;

use vusb_host::BusId;
use vusb_host::bind::{self, USBBACK};
use vusb_xenstore::Xenstore;

use crate::dryrun::{Effect, Plan};
use crate::{HostPaths, driver_memory};

/// A rebinding step failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The device is not (or no longer) on the host.
    #[error("host USB device {busid} is not present")]
    DeviceGone {
        /// The device.
        busid: BusId,
    },
    /// The usbback driver is not registered (`bus/usb/drivers/usbback`
    /// absent): nothing was changed.
    #[error("the usbback driver is not loaded; cannot hand {busid} to it")]
    UsbbackNotLoaded {
        /// The device.
        busid: BusId,
    },
    /// A sysfs step (list, read driver, bind, unbind) failed; the host error
    /// names the interface and driver.
    #[error("changing drivers of {busid}")]
    Sysfs {
        /// The device.
        busid: BusId,
        /// The cause.
        #[source]
        source: vusb_host::Error,
    },
    /// The driver memory could not be read or written.
    #[error("driver memory of {busid}")]
    Memory {
        /// The device.
        busid: BusId,
        /// The cause.
        #[source]
        source: driver_memory::Error,
    },
    /// Assigning failed and so did the rollback; the memory is kept for
    /// `vusb usb-recover`. The source is the rollback's error; `cause` the
    /// assignment's.
    #[error(
        "handing {busid} to usbback failed ({cause}), and restoring its drivers failed too; run `vusb usb-recover`"
    )]
    RollbackFailed {
        /// The device.
        busid: BusId,
        /// Why the assignment failed.
        cause: Box<Error>,
        /// Why the rollback failed.
        #[source]
        source: Box<Error>,
    },
}

/// Result alias of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Where one interface ended up after [`restore`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restored {
    /// The interface.
    pub interface: String,
    /// The driver it is bound to now (`None`: left unbound, it had none).
    pub driver: Option<String>,
}

fn sysfs(busid: &BusId) -> impl Fn(vusb_host::Error) -> Error + '_ {
    move |source| Error::Sysfs {
        busid: busid.clone(),
        source,
    }
}

fn memory(busid: &BusId) -> impl Fn(driver_memory::Error) -> Error + '_ {
    move |source| Error::Memory {
        busid: busid.clone(),
        source,
    }
}

/// The sysfs side of rebinding: the kernel's drivers under a sysfs root,
/// or, in a dry run, that tree as the plan leaves it (binds and unbinds
/// recorded, not written; later looks see the planned driver).
#[derive(Debug, Clone, Copy)]
pub struct Drivers<'a> {
    root: &'a Path,
    plan: Option<&'a Plan>,
}

impl<'a> Drivers<'a> {
    /// The drivers under `root`, changed for real.
    pub fn real(root: &'a Path) -> Drivers<'a> {
        Drivers { root, plan: None }
    }

    /// The drivers of `paths`' sysfs, planned only in a dry run.
    pub fn of(paths: &'a HostPaths) -> Drivers<'a> {
        Drivers {
            root: &paths.sysfs_root,
            plan: paths.plan(),
        }
    }

    fn driver_of(&self, intf: &str) -> vusb_host::Result<Option<String>> {
        match self.plan.and_then(|p| p.planned_driver(intf)) {
            Some(planned) => Ok(planned),
            None => bind::driver_of(self.root, intf),
        }
    }

    fn unbind(&self, intf: &str) -> vusb_host::Result<Option<String>> {
        let Some(plan) = self.plan else {
            return bind::unbind(self.root, intf);
        };
        let Some(driver) = self.driver_of(intf)? else {
            return Ok(None);
        };
        plan.record(Effect::SysfsWrite {
            path: vusb_host::discover::devices_dir(self.root)
                .join(intf)
                .join("driver/unbind"),
            value: intf.to_owned(),
            note: format!("unbind from {driver}"),
        });
        plan.set_driver(intf, None);
        Ok(Some(driver))
    }

    fn bind(&self, driver: &str, intf: &str) -> vusb_host::Result<()> {
        let Some(plan) = self.plan else {
            return bind::bind(self.root, driver, intf);
        };
        if self.driver_of(intf)?.as_deref() == Some(driver) {
            return Ok(());
        }
        plan.record(Effect::SysfsWrite {
            path: bind::driver_dir(self.root, driver).join("bind"),
            value: intf.to_owned(),
            note: format!("bind to {driver}"),
        });
        plan.set_driver(intf, Some(driver));
        Ok(())
    }
}

fn present(sysfs_root: &Path, busid: &BusId) -> bool {
    std::fs::symlink_metadata(vusb_host::discover::devices_dir(sysfs_root).join(busid.as_str()))
        .is_ok()
}

/// Bind every interface of `busid` to usbback, remembering each original
/// driver first. On failure every interface is back on its original driver
/// (and the memory removed) before the error is returned.
pub fn assign<X: Xenstore + ?Sized>(xs: &X, sysfs_root: &Path, busid: &BusId) -> Result<()> {
    assign_with(xs, Drivers::real(sysfs_root), busid)
}

/// [`assign`] through `drivers` (planned only in a dry run).
pub fn assign_with<X: Xenstore + ?Sized>(
    xs: &X,
    drivers: Drivers<'_>,
    busid: &BusId,
) -> Result<()> {
    let sysfs_root = drivers.root;
    if !present(sysfs_root, busid) {
        return Err(Error::DeviceGone {
            busid: busid.clone(),
        });
    }
    if !bind::driver_loaded(sysfs_root, USBBACK) {
        return Err(Error::UsbbackNotLoaded {
            busid: busid.clone(),
        });
    }
    match assign_steps(xs, drivers, busid) {
        Ok(()) => Ok(()),
        Err(cause) => {
            log::debug!("handing {busid} to usbback failed; restoring its drivers");
            match restore_with(xs, drivers, busid) {
                Ok(_) => Err(cause),
                Err(rollback) => Err(Error::RollbackFailed {
                    busid: busid.clone(),
                    cause: Box::new(cause),
                    source: Box::new(rollback),
                }),
            }
        }
    }
}

fn assign_steps<X: Xenstore + ?Sized>(xs: &X, d: Drivers<'_>, busid: &BusId) -> Result<()> {
    let root = d.root;
    let interfaces = bind::interfaces_of(root, busid).map_err(sysfs(busid))?;
    if interfaces.is_empty() && !present(root, busid) {
        return Err(Error::DeviceGone {
            busid: busid.clone(),
        });
    }
    // The device's memory node must exist before the first interface goes
    // to usbback, so recovery finds the device after a crash. Writing a
    // driver_path creates it; only an interface with no driver needs the
    // explicit marker (one request saved in the common case).
    let mut marked = false;
    for intf in &interfaces {
        let driver = d.driver_of(intf).map_err(sysfs(busid))?;
        match driver.as_deref() {
            Some(USBBACK) => continue,
            Some(from) => {
                driver_memory::remember(xs, busid, intf, from).map_err(memory(busid))?;
                marked = true;
                d.unbind(intf).map_err(sysfs(busid))?;
            }
            None if !marked => {
                driver_memory::begin(xs, busid).map_err(memory(busid))?;
                marked = true;
            }
            None => {}
        }
        d.bind(USBBACK, intf).map_err(sysfs(busid))?;
        log::debug!("{intf} is on {USBBACK}");
    }
    Ok(())
}

/// Give `busid`'s interfaces back to the drivers remembered for them,
/// working from the memory alone: interfaces on usbback are unbound, every
/// remembered interface not on its driver is bound to it, interfaces with
/// no memory stay unbound. The memory is removed once all is done; a device
/// that left the host only has its memory removed. Nothing remembered:
/// only usbback is left (interfaces unbound), nothing else changes.
pub fn restore<X: Xenstore + ?Sized>(
    xs: &X,
    sysfs_root: &Path,
    busid: &BusId,
) -> Result<Vec<Restored>> {
    restore_with(xs, Drivers::real(sysfs_root), busid)
}

/// [`restore`] through `drivers` (planned only in a dry run).
pub fn restore_with<X: Xenstore + ?Sized>(
    xs: &X,
    drivers: Drivers<'_>,
    busid: &BusId,
) -> Result<Vec<Restored>> {
    let sysfs_root = drivers.root;
    let remembered = driver_memory::recall(xs, busid)
        .map_err(memory(busid))?
        .unwrap_or_default();
    if !present(sysfs_root, busid) {
        log::info!("{busid} has left the host; forgetting its driver memory");
        driver_memory::forget(xs, busid).map_err(memory(busid))?;
        return Ok(Vec::new());
    }
    let interfaces = bind::interfaces_of(sysfs_root, busid).map_err(sysfs(busid))?;
    let mut first_error = None;
    let mut out = Vec::new();
    for intf in &interfaces {
        let wanted = remembered
            .iter()
            .find(|(i, _)| i == intf)
            .map(|(_, d)| d.clone());
        match restore_one(drivers, intf, wanted.as_deref()) {
            Ok(driver) => out.push(Restored {
                interface: intf.clone(),
                driver,
            }),
            Err(e) => {
                log::warn!("restoring {intf}: {}", vusb_host::discover::error_chain(&e));
                first_error.get_or_insert(e);
            }
        }
    }
    for (intf, _) in &remembered {
        if !interfaces.contains(intf) {
            log::info!("{intf} no longer exists; dropping its memory");
        }
    }
    if let Some(e) = first_error {
        return Err(sysfs(busid)(e));
    }
    driver_memory::forget(xs, busid).map_err(memory(busid))?;
    Ok(out)
}

fn restore_one(
    d: Drivers<'_>,
    intf: &str,
    wanted: Option<&str>,
) -> vusb_host::Result<Option<String>> {
    let current = d.driver_of(intf)?;
    if current.as_deref() == Some(USBBACK) && wanted != Some(USBBACK) {
        d.unbind(intf)?;
    } else if current.is_some() {
        if current.as_deref() != wanted && wanted.is_some() {
            log::warn!(
                "{intf} is on {} but was remembered on {}; leaving it",
                current.as_deref().unwrap_or("-"),
                wanted.unwrap_or("-")
            );
        }
        return Ok(current);
    }
    if let Some(wanted_driver) = wanted {
        d.bind(wanted_driver, intf)?;
        log::debug!("{intf} is back on {wanted_driver}");
    }
    Ok(wanted.map(str::to_owned))
}
