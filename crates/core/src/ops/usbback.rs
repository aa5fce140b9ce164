//! Handing a pv device's interfaces to dom0's usbback and giving them back
//! (libxl's `usbback_dev_assign` / `usbback_dev_unassign` + `usbdev_rebind`,
//! reference §5.7–5.9), as the two calls the usbdev operations need.
//!
//! The policy (record the original driver under `/libxl/usbback` before
//! unbinding, roll back midway failures, restore from the record alone)
//! belongs to [`crate::rebind`] and [`crate::driver_memory`]; this module is
//! the seam the operations call.

use vusb_host::BusId;
use vusb_xenstore::Xenstore;

use crate::{Error, HostPaths, Result, rebind};

fn rebind_err(busid: &BusId, e: rebind::Error) -> Error {
    Error::Rebind {
        busid: busid.clone(),
        source: Box::new(e),
    }
}

/// Bind every interface of `busid` to usbback, remembering the original
/// drivers; on failure every interface is back on its original driver.
pub fn give<X: Xenstore + ?Sized>(xs: &X, paths: &HostPaths, busid: &BusId) -> Result<()> {
    rebind::assign_with(xs, rebind::Drivers::of(paths), busid).map_err(|e| rebind_err(busid, e))
}

/// Unbind `busid`'s interfaces from usbback, bind them back to the
/// remembered drivers and forget the memory. A device that has left the
/// host only has its memory removed.
pub fn take_back<X: Xenstore + ?Sized>(xs: &X, paths: &HostPaths, busid: &BusId) -> Result<()> {
    let restored = rebind::restore_with(xs, rebind::Drivers::of(paths), busid)
        .map_err(|e| rebind_err(busid, e))?;
    for r in restored {
        log::debug!("{} back on {:?}", r.interface, r.driver);
    }
    Ok(())
}
