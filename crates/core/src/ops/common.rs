//! What the USB operations share: the environment they run in (xenstore
//! connection, host paths, timeouts), controller type resolution and
//! libxl's defaults and limits (reference §2.2, §2.4), and the device-model
//! checks of hot-plug (§6.5, `libxl__dm_check_start`).

use std::time::Duration;

use vusb_xenstore::{DomId, TxId, Xenstore, XenstoreExt};
use vusb_xlcfg::CtrlKind;

use crate::domain::{DomainType, domain_type};
use crate::layout::UsbCtrlType;
use crate::{Error, HostPaths, Result};

/// libxl's `LIBXL_INIT_TIMEOUT` / `LIBXL_DESTROY_TIMEOUT`: 10 s.
pub const LIBXL_TIMEOUT: Duration = Duration::from_secs(10);

/// How long operations wait for other parties.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// pv controller add: backend reaching InitWait (libxl: 10 s).
    pub backend_connect: Duration,
    /// pv/qusb controller removal: backend reaching Closed (libxl: 10 s).
    pub backend_close: Duration,
    /// How long a command waits for another one holding the device,
    /// controller or guest it needs ([`crate::lock`]).
    pub lock_wait: Duration,
    /// How long an attach waits for udevd to announce the device
    /// ([`super::hostdev::await_udev`]).
    pub udev_wait: Duration,
}

/// Default [`Timeouts::lock_wait`]: longer than the slowest step another
/// command may hold a lock for (a backend wait, a QMP removal: 10 s).
pub const LOCK_WAIT: Duration = Duration::from_secs(30);

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            backend_connect: LIBXL_TIMEOUT,
            backend_close: LIBXL_TIMEOUT,
            lock_wait: LOCK_WAIT,
            udev_wait: super::hostdev::UDEV_WAIT,
        }
    }
}

/// The environment of one operation.
#[derive(Debug)]
pub struct OpEnv<'a, X: ?Sized> {
    /// The xenstore connection (also used for watches).
    pub xs: &'a X,
    /// Host locations.
    pub paths: &'a HostPaths,
    /// Timeouts.
    pub timeouts: Timeouts,
    /// `--force`: attach a device although the host is using it (a mounted
    /// filesystem, swap or a holder below it). Never overrides the refusal
    /// of hubs and root hubs.
    pub force: bool,
}

impl<'a, X: ?Sized> OpEnv<'a, X> {
    /// An environment with libxl's timeouts.
    pub fn new(xs: &'a X, paths: &'a HostPaths) -> Self {
        OpEnv {
            xs,
            paths,
            timeouts: Timeouts::default(),
            force: false,
        }
    }
}

pub(crate) use crate::error::at;

/// Whether dom0's kernel usbback driver is registered (libxl's
/// `usbback_is_loaded`: `lstat` of `<sysfs>/bus/usb/drivers/usbback`).
pub fn usbback_loaded(paths: &HostPaths) -> bool {
    vusb_host::bind::driver_loaded(&paths.sysfs_root, vusb_host::bind::USBBACK)
}

/// Resolve a controller type as libxl's setdefault does: HVM → devicemodel;
/// anything else → pv when usbback is loaded, else qusb.
pub fn resolve_ctrl_type<X: Xenstore + ?Sized>(
    xs: &X,
    paths: &HostPaths,
    domid: DomId,
    kind: CtrlKind,
) -> Result<UsbCtrlType> {
    Ok(match kind {
        CtrlKind::Pv => UsbCtrlType::Pv,
        CtrlKind::Qusb => UsbCtrlType::Qusb,
        CtrlKind::DeviceModel => UsbCtrlType::DeviceModel,
        CtrlKind::Auto => {
            if domain_type(xs, TxId::NONE, domid)? == Some(DomainType::Hvm) {
                UsbCtrlType::DeviceModel
            } else if usbback_loaded(paths) {
                UsbCtrlType::Pv
            } else {
                UsbCtrlType::Qusb
            }
        }
    })
}

/// libxl's version/ports defaults and limits for a resolved type
/// (`libxl__device_usbctrl_setdefault`), with libxl's messages. Unlike
/// libxl, devicemodel v3 rejects ports < 1 (bug C3).
pub fn ctrl_defaults(ctype: UsbCtrlType, version: i32, ports: i32) -> Result<(u32, u32)> {
    let invalid = |m: &str| Err(Error::InvalidController(m.to_owned()));
    match ctype {
        UsbCtrlType::Pv | UsbCtrlType::Qusb => {
            let version = if version == 0 { 2 } else { version };
            if version != 1 && version != 2 {
                return invalid("USB version for paravirtualized devices must be 1 or 2");
            }
            let ports = if ports == 0 { 8 } else { ports };
            if !(1..=31).contains(&ports) {
                return invalid("Number of ports for USB controller is limited to 31");
            }
            Ok((version as u32, ports as u32))
        }
        UsbCtrlType::DeviceModel => {
            let version = if version == 0 { 2 } else { version };
            match version {
                1 if ports == 0 || ports == 2 => Ok((1, 2)),
                1 => invalid("Number of ports for USB controller of version 1 is always 2"),
                2 if ports == 0 || ports == 6 => Ok((2, 6)),
                2 => invalid("Number of ports for USB controller of version 2 is always 6"),
                3 if ports == 0 => Ok((3, 8)),
                3 if ports > 15 => {
                    invalid("Number of ports for USB controller of version 3 is limited to 15")
                }
                3 if ports < 1 => invalid("Number of ports for USB controller must be at least 1"),
                3 => Ok((3, ports as u32)),
                _ => invalid("Illegal USB version"),
            }
        }
    }
}

/// libxl's `libxl__dm_check_start` for types that need a device model
/// (qusb, devicemodel): `/local/domain/<G>/image/device-model-pid` must
/// exist. For qusb also the device model must advertise the backend under
/// `/local/domain/0/device-model/<G>/backends/qusb`.
pub fn check_device_model<X: Xenstore + ?Sized>(
    xs: &X,
    domid: DomId,
    ctype: UsbCtrlType,
) -> Result<()> {
    if ctype == UsbCtrlType::Pv {
        return Ok(());
    }
    let pid = format!("/local/domain/{domid}/image/device-model-pid");
    if xs.read_opt(TxId::NONE, &pid).map_err(at(&pid))?.is_none() {
        return Err(Error::DeviceModelNotRunning { domid });
    }
    if ctype == UsbCtrlType::Qusb {
        let q = format!("/local/domain/0/device-model/{domid}/backends/qusb");
        if xs.read_opt(TxId::NONE, &q).map_err(at(&q))?.is_none() {
            return Err(Error::QusbNotSupported { domid });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn msg(r: Result<(u32, u32)>) -> String {
        r.err().map(|e| e.to_string()).unwrap_or_default()
    }

    #[test]
    fn defaults_and_limits_are_libxls() {
        use UsbCtrlType::*;
        assert_eq!(ctrl_defaults(Pv, 0, 0).unwrap(), (2, 8));
        assert_eq!(ctrl_defaults(Qusb, 1, 2).unwrap(), (1, 2));
        assert_eq!(ctrl_defaults(Pv, 0, 31).unwrap(), (2, 31));
        assert_eq!(
            msg(ctrl_defaults(Pv, 3, 0)),
            "USB version for paravirtualized devices must be 1 or 2"
        );
        assert_eq!(
            msg(ctrl_defaults(Pv, 2, 32)),
            "Number of ports for USB controller is limited to 31"
        );
        assert!(ctrl_defaults(Pv, 2, -1).is_err());
        assert_eq!(ctrl_defaults(DeviceModel, 0, 0).unwrap(), (2, 6));
        assert_eq!(ctrl_defaults(DeviceModel, 1, 0).unwrap(), (1, 2));
        assert_eq!(ctrl_defaults(DeviceModel, 3, 4).unwrap(), (3, 4));
        assert_eq!(ctrl_defaults(DeviceModel, 3, 0).unwrap(), (3, 8));
        assert_eq!(
            msg(ctrl_defaults(DeviceModel, 1, 4)),
            "Number of ports for USB controller of version 1 is always 2"
        );
        assert_eq!(
            msg(ctrl_defaults(DeviceModel, 2, 8)),
            "Number of ports for USB controller of version 2 is always 6"
        );
        assert_eq!(
            msg(ctrl_defaults(DeviceModel, 3, 16)),
            "Number of ports for USB controller of version 3 is limited to 15"
        );
        assert!(ctrl_defaults(DeviceModel, 3, -2).is_err());
        assert_eq!(msg(ctrl_defaults(DeviceModel, 4, 0)), "Illegal USB version");
    }
}
