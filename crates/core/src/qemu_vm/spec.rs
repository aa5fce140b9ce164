//! From the xl spec grammar (`vusb_xlcfg`, shared with config files) to
//! what a plain VM's QEMU can do, refusing before QEMU is touched what the
//! input alone decides.
//!
//! A plain VM has no Xen and no sysfs bookkeeping of vusb's: a host device
//! is named to QEMU's `usb-host` directly. `busid=3-1.4` is the physical
//! port form (`hostbus` 3, `hostport` `1.4`); `portpath=` needs `hostbus=`;
//! `vendor=` needs `product=`; `serial=` has no QEMU match property and is
//! refused.

use vusb_xlcfg::{CtrlKind, DevKind, UsbCtrlSpec, UsbDevSpec};

use super::VmError;
use crate::devicemodel::{ControllerModel, DmDevice, EmulatedKind, resolve_controller};

/// A spec that a plain VM cannot honour (the message says why).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SpecError(pub String);

/// `usbctrl-attach` arguments → a controller model.
pub fn controller(spec: &UsbCtrlSpec) -> Result<ControllerModel, VmError> {
    if !matches!(spec.kind, CtrlKind::Auto | CtrlKind::DeviceModel) {
        return Err(unsupported(format!(
            "a plain QEMU VM has only devicemodel controllers, not type={}",
            spec.kind
        )));
    }
    Ok(resolve_controller(
        i64::from(spec.version_or_zero()),
        i64::from(spec.ports_or_zero()),
        spec.model.as_deref(),
    )?)
}

/// `usbdev-attach` arguments → (controller, port, device).
pub fn device(spec: &UsbDevSpec) -> Result<(Option<u32>, Option<u32>, DmDevice), VmError> {
    // xl's sentinels (controller=-1, port=0: any) are None already.
    let (ctrl, port) = (spec.controller, spec.port);
    let host_keys = spec.hostbus.is_some()
        || spec.hostaddr.is_some()
        || spec.busid.is_some()
        || spec.vendor.is_some()
        || spec.product.is_some()
        || spec.serial.is_some()
        || spec.portpath.is_some();
    let emulated = match spec.kind {
        DevKind::HostDev => None,
        DevKind::Tablet => Some(EmulatedKind::Tablet),
        DevKind::Mouse => Some(EmulatedKind::Mouse),
        DevKind::Keyboard => Some(EmulatedKind::Keyboard),
    };
    let dev = match emulated {
        Some(_) if host_keys => {
            return Err(unsupported(format!(
                "type={} takes no host device keys",
                spec.kind
            )));
        }
        Some(k) => DmDevice::Emulated(k),
        None => host_device(spec)?,
    };
    Ok((ctrl, port, dev))
}

fn host_device(spec: &UsbDevSpec) -> Result<DmDevice, VmError> {
    if spec.serial.is_some() {
        return Err(unsupported(
            "serial= cannot be matched by QEMU's usb-host; use vendor=/product= or busid=".into(),
        ));
    }
    match (spec.vendor, spec.product) {
        (Some(vendor), Some(product)) => return Ok(DmDevice::HostIds { vendor, product }),
        (None, None) => {}
        _ => return Err(unsupported("vendor= and product= go together".into())),
    }
    if let Some(busid) = &spec.busid {
        return busid_to_port(busid);
    }
    if let Some(path) = &spec.portpath {
        let bus = spec
            .hostbus
            .ok_or_else(|| unsupported("portpath= needs hostbus=".into()))?;
        return Ok(DmDevice::HostPort {
            bus,
            path: path.clone(),
        });
    }
    match (spec.hostbus, spec.hostaddr) {
        (Some(bus), Some(addr)) if bus != 0 && addr != 0 => Ok(DmDevice::HostAddr { bus, addr }),
        // libxl: bus or address 0 (or absent) is never an assignable device.
        _ => Err(unsupported("USB device is not assignable.".into())),
    }
}

/// `3-1.4` → bus 3, port path `1.4`.
fn busid_to_port(busid: &str) -> Result<DmDevice, VmError> {
    let bad = || {
        unsupported(format!(
            "busid={busid} is not a device below a root hub (like 3-1.4)"
        ))
    };
    let id = vusb_host::BusId::parse(busid).map_err(|_| bad())?;
    // QEMU's hostport: port numbers 1 to 255.
    if id.is_root_hub()
        || !id
            .ports()
            .split('.')
            .all(|p| p.parse::<u8>().is_ok_and(|n| n > 0))
    {
        return Err(bad());
    }
    Ok(DmDevice::HostPort {
        bus: id.bus(),
        path: id.ports().to_string(),
    })
}

fn unsupported(msg: String) -> VmError {
    VmError::Spec(SpecError(msg))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use vusb_xlcfg::{parse_usbctrl_args, parse_usbdev_args};

    fn dev(args: &[&str]) -> Result<(Option<u32>, Option<u32>, DmDevice), String> {
        let spec = parse_usbdev_args(args).map_err(|e| e.to_string())?;
        device(&spec).map_err(|e| e.to_string())
    }

    #[test]
    fn device_forms() {
        assert_eq!(
            dev(&["type=tablet", "controller=0", "port=2"]).unwrap(),
            (Some(0), Some(2), DmDevice::Emulated(EmulatedKind::Tablet))
        );
        assert_eq!(
            dev(&["hostbus=1", "hostaddr=3"]).unwrap().2,
            DmDevice::HostAddr { bus: 1, addr: 3 }
        );
        assert_eq!(
            dev(&["vendor=1234", "product=5678"]).unwrap().2,
            DmDevice::HostIds {
                vendor: 0x1234,
                product: 0x5678
            }
        );
        assert_eq!(
            dev(&["busid=3-1.4"]).unwrap().2,
            DmDevice::HostPort {
                bus: 3,
                path: "1.4".into()
            }
        );
        assert_eq!(
            dev(&["hostbus=2", "portpath=1.4"]).unwrap().2,
            DmDevice::HostPort {
                bus: 2,
                path: "1.4".into()
            }
        );
        assert!(dev(&["vendor=1234"]).is_err());
        assert!(dev(&["type=mouse", "hostbus=1"]).is_err());
        assert!(dev(&["hostbus=1"]).is_err());
        assert!(dev(&["serial=abc"]).is_err());
        assert!(dev(&["busid=usb1"]).is_err());
        for bad in ["busid=256-1", "busid=3-0", "busid=3-1:1.0", "busid=x"] {
            assert!(dev(&[bad]).is_err(), "{bad}");
        }
        // controller=-1 is xl's "any controller"; below it the parser refuses.
        assert_eq!(dev(&["type=tablet", "controller=-1"]).unwrap().0, None);
        assert!(parse_usbdev_args(&["type=tablet", "controller=-2"]).is_err());
    }

    #[test]
    fn controllers() {
        let c = |a: &[&str]| controller(&parse_usbctrl_args(a).unwrap()).map_err(|e| e.to_string());
        assert_eq!(c(&["version=3", "ports=4"]).unwrap().ports, 4);
        assert_eq!(
            c(&["version=1", "ports=4"]).unwrap_err(),
            "Number of ports for USB controller of version 1 is always 2"
        );
        assert!(c(&["type=pv"]).is_err());
        assert_eq!(
            c(&["model=qemu-xhci"]).unwrap().driver.qemu_name(),
            "qemu-xhci"
        );
    }
}
