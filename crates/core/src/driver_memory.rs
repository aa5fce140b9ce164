//! The driver memory of pv devices: which host driver each interface was
//! bound to before it was handed to usbback, exactly as libxl keeps it
//! (reference §4.5), so that `xl` can undo vusb's work and vusb can undo
//! xl's:
//!
//! ```text
//! /libxl/usbback/<enc(busid)>                              (written first by vusb; see below)
//! /libxl/usbback/<enc(busid)>/<enc(intf)>/driver_path = "/sys/bus/usb/drivers/usbhid"
//! ```
//!
//! `enc` maps `.` → `_` and `:` → `@` ([`crate::assign::encode_key`]). The
//! value is the driver's canonical sysfs directory **as seen from the real
//! root**: with a test sysfs root the stored value still reads
//! `/sys/bus/usb/drivers/<name>`, and [`driver_name`] maps it back to a
//! driver name that the caller joins onto its own sysfs root.
//!
//! Deliberate difference: vusb creates the `<enc(busid)>` node before
//! recording any interface, so a device whose interfaces had no driver is
//! still found by `usb-recover` after a crash. libxl ignores the extra
//! (empty) node and removes the subtree the same way.
//!
//! Writes are outside transactions, like libxl's: each record must be
//! durable before the unbind that it protects.

use vusb_host::BusId;
use vusb_xenstore::{TxId, Xenstore, XenstoreExt};

use crate::assign::{decode_key, encode_key};

/// Root of the driver memory.
pub const ROOT: &str = "/libxl/usbback";

/// Where drivers live on a real host; the prefix of every stored value.
pub const REAL_DRIVERS_DIR: &str = "/sys/bus/usb/drivers";

/// A driver-memory request failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Writing a node failed.
    #[error("recording the original driver at `{path}'")]
    Record {
        /// The node.
        path: String,
        /// The cause.
        #[source]
        source: vusb_xenstore::Error,
    },
    /// Reading the memory failed.
    #[error("reading driver memory `{path}'")]
    Read {
        /// The node.
        path: String,
        /// The cause.
        #[source]
        source: vusb_xenstore::Error,
    },
    /// Removing the memory of a device failed.
    #[error("removing driver memory `{path}'")]
    Forget {
        /// The node.
        path: String,
        /// The cause.
        #[source]
        source: vusb_xenstore::Error,
    },
}

impl From<Error> for crate::Error {
    fn from(e: Error) -> crate::Error {
        match e {
            Error::Record { path, source }
            | Error::Read { path, source }
            | Error::Forget { path, source } => crate::Error::XenstorePath { path, source },
        }
    }
}

/// Result alias of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// `/libxl/usbback/<enc(busid)>`.
pub fn device_path(busid: &BusId) -> String {
    format!("{ROOT}/{}", encode_key(busid.as_str()))
}

/// `/libxl/usbback/<enc(busid)>/<enc(intf)>/driver_path`.
pub fn driver_path_node(busid: &BusId, interface: &str) -> String {
    format!(
        "{}/{}/driver_path",
        device_path(busid),
        encode_key(interface)
    )
}

/// The stored value for a driver: `/sys/bus/usb/drivers/<driver>`.
pub fn driver_path_value(driver: &str) -> String {
    format!("{REAL_DRIVERS_DIR}/{driver}")
}

/// The driver name of a stored value (its last component). Values outside
/// `/sys/bus/usb/drivers` (not written by libxl on Linux) are accepted by
/// name with a warning; an empty name is `None`.
pub fn driver_name(value: &str) -> Option<String> {
    let value = value.trim_end_matches('/');
    let name = value
        .rsplit('/')
        .next()
        .filter(|n| !n.is_empty() && *n != "..")?;
    if !value.starts_with(REAL_DRIVERS_DIR) {
        log::warn!(
            "driver memory value {value:?} is not under {REAL_DRIVERS_DIR}; using driver {name}"
        );
    }
    Some(name.to_owned())
}

/// Mark `busid` as being handed to usbback (the `<enc(busid)>` node), so
/// recovery finds it even when none of its interfaces had a driver.
pub fn begin<X: Xenstore + ?Sized>(xs: &X, busid: &BusId) -> Result<()> {
    let path = device_path(busid);
    xs.mkdir(TxId::NONE, &path)
        .map_err(|source| Error::Record { path, source })
}

/// Remember that `interface` of `busid` was bound to `driver`.
pub fn remember<X: Xenstore + ?Sized>(
    xs: &X,
    busid: &BusId,
    interface: &str,
    driver: &str,
) -> Result<()> {
    let path = driver_path_node(busid, interface);
    log::debug!("remembering {interface} was bound to {driver}");
    xs.write_str(TxId::NONE, &path, &driver_path_value(driver))
        .map_err(|source| Error::Record { path, source })
}

/// The remembered `(interface, driver)` pairs of `busid`, or `None` when
/// nothing is remembered for it. Entries with an unusable value are skipped
/// with a warning.
pub fn recall<X: Xenstore + ?Sized>(
    xs: &X,
    busid: &BusId,
) -> Result<Option<Vec<(String, String)>>> {
    let dir = device_path(busid);
    let read_err = |path: &str| {
        let path = path.to_owned();
        move |source| Error::Read { path, source }
    };
    if xs
        .read_opt(TxId::NONE, &dir)
        .map_err(read_err(&dir))?
        .is_none()
    {
        return Ok(None);
    }
    let mut out = Vec::new();
    for key in xs.directory_opt(TxId::NONE, &dir).map_err(read_err(&dir))? {
        let node = format!("{dir}/{key}/driver_path");
        let Some(value) = xs.read_opt(TxId::NONE, &node).map_err(read_err(&node))? else {
            continue;
        };
        match driver_name(&value) {
            Some(driver) => out.push((decode_key(&key), driver)),
            None => log::warn!("ignoring unusable driver memory {node} = {value:?}"),
        }
    }
    Ok(Some(out))
}

/// Forget everything remembered for `busid` (not an error if nothing is).
pub fn forget<X: Xenstore + ?Sized>(xs: &X, busid: &BusId) -> Result<()> {
    let path = device_path(busid);
    log::debug!("forgetting driver memory of {busid}");
    xs.rm_opt(TxId::NONE, &path)
        .map_err(|source| Error::Forget { path, source })
}

/// The busids that have a memory (decoded), in xenstore's order.
pub fn remembered_devices<X: Xenstore + ?Sized>(xs: &X) -> Result<Vec<String>> {
    let names = xs
        .directory_opt(TxId::NONE, ROOT)
        .map_err(|source| Error::Read {
            path: ROOT.to_owned(),
            source,
        })?;
    Ok(names.iter().map(|n| decode_key(n)).collect())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn libxl_schema() {
        assert_eq!(
            driver_path_node(&BusId::parse("3-1.2").unwrap(), "3-1.2:1.0"),
            "/libxl/usbback/3-1_2/3-1_2@1_0/driver_path"
        );
        assert_eq!(driver_path_value("usbhid"), "/sys/bus/usb/drivers/usbhid");
        assert_eq!(
            driver_name("/sys/bus/usb/drivers/usb-storage").as_deref(),
            Some("usb-storage")
        );
        assert_eq!(
            driver_name("/sys/bus/usb/drivers/usbhid/").as_deref(),
            Some("usbhid")
        );
        assert_eq!(driver_name(""), None);
    }
}
