//! Handing a pv device's interfaces to dom0's usbback and giving them back
//! (libxl's `usbback_dev_assign` / `usbback_dev_unassign` + `usbdev_rebind`,
//! reference §5.7–5.9), as the two calls the usbdev operations need.
//!
//! The policy (record the original driver under `/libxl/usbback` before
//! unbinding, roll back midway failures, restore from the record alone)
//! belongs to [`crate::rebind`] and [`crate::driver_memory`]; this module is
//! the seam the operations call.

use vusb_xenstore::Xenstore;

use crate::{Error, HostPaths, Result};

fn rebind_err(busid: &str, e: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::Rebind {
        busid: busid.to_owned(),
        source: Box::new(e),
    }
}

/// Bind every interface of `busid` to usbback, remembering the original
/// drivers; on failure every interface is back on its original driver.
pub fn give<X: Xenstore + ?Sized>(xs: &X, paths: &HostPaths, busid: &str) -> Result<()> {
    fallback::give(xs, paths, busid).map_err(|e| rebind_err(busid, e))
}

/// Unbind `busid`'s interfaces from usbback, bind them back to the
/// remembered drivers and forget the memory. A device that has left the
/// host only has its memory removed.
pub fn take_back<X: Xenstore + ?Sized>(xs: &X, paths: &HostPaths, busid: &str) -> Result<()> {
    fallback::take_back(xs, paths, busid).map_err(|e| rebind_err(busid, e))
}

/// A minimal libxl-order implementation used until `crate::rebind` lands.
mod fallback {
    use vusb_host::BusId;
    use vusb_host::bind::{self, USBBACK};
    use vusb_xenstore::{TxId, Xenstore, XenstoreExt};

    use crate::HostPaths;
    use crate::assign::encode_key;

    #[derive(Debug, thiserror::Error)]
    pub enum FbError {
        #[error("sysfs")]
        Host(#[from] vusb_host::Error),
        #[error("xenstore")]
        Xs(#[from] vusb_xenstore::Error),
    }

    fn mem_dir(busid: &str) -> String {
        format!("/libxl/usbback/{}", encode_key(busid))
    }

    pub fn give<X: Xenstore + ?Sized>(
        xs: &X,
        paths: &HostPaths,
        busid: &str,
    ) -> Result<(), FbError> {
        let root = &paths.sysfs_root;
        let b = BusId::parse(busid)?;
        let intfs = bind::interfaces_of(root, &b)?;
        let res = (|| {
            for intf in intfs.iter().rev() {
                let drv = bind::driver_of(root, intf)?;
                if drv.as_deref() == Some(USBBACK) {
                    continue;
                }
                if let Some(d) = &drv {
                    let p = format!("{}/{}/driver_path", mem_dir(busid), encode_key(intf));
                    xs.write_str(TxId::NONE, &p, &format!("/sys/bus/usb/drivers/{d}"))?;
                    bind::unbind(root, intf)?;
                }
                bind::bind(root, USBBACK, intf)?;
            }
            Ok::<(), FbError>(())
        })();
        if res.is_err() {
            if let Err(e) = take_back(xs, paths, busid) {
                log::warn!("rolling back {busid}: {e}");
            }
        }
        res
    }

    pub fn take_back<X: Xenstore + ?Sized>(
        xs: &X,
        paths: &HostPaths,
        busid: &str,
    ) -> Result<(), FbError> {
        let root = &paths.sysfs_root;
        let b = BusId::parse(busid)?;
        let intfs = bind::interfaces_of(root, &b).unwrap_or_default();
        for intf in intfs.iter().rev() {
            if bind::driver_of(root, intf)?.as_deref() == Some(USBBACK) {
                bind::unbind(root, intf)?;
            }
        }
        for intf in intfs.iter().rev() {
            let p = format!("{}/{}/driver_path", mem_dir(busid), encode_key(intf));
            if let Some(path) = xs.read_opt(TxId::NONE, &p)? {
                if let Some(name) = path.rsplit('/').next().filter(|n| !n.is_empty()) {
                    bind::bind(root, name, intf)?;
                }
            }
        }
        xs.rm_opt(TxId::NONE, &mem_dir(busid))?;
        Ok(())
    }
}
