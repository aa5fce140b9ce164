//! USB devices plugged into a devicemodel controller: the `device_add`
//! arguments and QOM ids for each way of naming one.
//!
//! * A host device by bus and address is exactly libxl's request (reference
//!   §6.3): `id` `xenusb-<bus>-<addr>`, `driver` `usb-host`, `bus`
//!   `xenusb-<ctrl>.0`, `port` (a JSON string: QEMU's port is a path),
//!   `hostbus`, `hostaddr`, in that order. QEMU opens the device at once and
//!   refuses an absent one (`failed to find host usb device B:A`).
//! * Beyond libxl: by vendor/product (`vendorid`/`productid`) or by
//!   physical port (`hostbus` + `hostport`). QEMU accepts these even when no
//!   such device is present and attaches it when it appears, and again
//!   after a re-plug — which the bus.addr form cannot do (bug U3).
//! * Beyond libxl: QEMU's emulated `usb-tablet`, `usb-mouse`, `usb-kbd`.
//!
//! Ids other than libxl's carry the controller and port, so two identical
//! devices never collide: `xenusb-<ctrl>-<port>-<what>`.

use vusb_qmp::DeviceAdd;

use super::model::{ArgStyle, controller_bus};

/// An emulated device of QEMU's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EmulatedKind {
    /// `usb-tablet` (absolute pointer).
    Tablet,
    /// `usb-mouse`.
    Mouse,
    /// `usb-kbd`.
    Keyboard,
}

impl EmulatedKind {
    /// QEMU's driver.
    pub fn qemu_driver(self) -> &'static str {
        match self {
            EmulatedKind::Tablet => "usb-tablet",
            EmulatedKind::Mouse => "usb-mouse",
            EmulatedKind::Keyboard => "usb-kbd",
        }
    }

    /// vusb's spec name (`type=tablet|mouse|keyboard`).
    pub fn spec_name(self) -> &'static str {
        match self {
            EmulatedKind::Tablet => "tablet",
            EmulatedKind::Mouse => "mouse",
            EmulatedKind::Keyboard => "keyboard",
        }
    }

    /// From QEMU's driver name.
    pub fn from_qemu_driver(driver: &str) -> Option<EmulatedKind> {
        [
            EmulatedKind::Tablet,
            EmulatedKind::Mouse,
            EmulatedKind::Keyboard,
        ]
        .into_iter()
        .find(|k| k.qemu_driver() == driver)
    }
}

/// A device to plug into a devicemodel controller.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DmDevice {
    /// A host device by bus number and device address (libxl's form).
    HostAddr {
        /// sysfs `busnum`.
        bus: u8,
        /// sysfs `devnum`.
        addr: u8,
    },
    /// A host device by USB ids; QEMU waits for it to appear.
    HostIds {
        /// idVendor.
        vendor: u16,
        /// idProduct.
        product: u16,
    },
    /// A host device by physical port: root hub `bus`, hub port chain
    /// `path` (`1.4`); QEMU waits for a device there.
    HostPort {
        /// Host bus number.
        bus: u8,
        /// Port chain below the root hub, dot-separated.
        path: String,
    },
    /// An emulated device.
    Emulated(EmulatedKind),
}

impl std::fmt::Display for DmDevice {
    /// As a user names it: `hostbus=1 hostaddr=3`, `vendor=046d product=c52b`,
    /// `busid=3-1.4`, `type=tablet`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DmDevice::HostAddr { bus, addr } => write!(f, "hostbus={bus} hostaddr={addr}"),
            DmDevice::HostIds { vendor, product } => {
                write!(f, "vendor={vendor:04x} product={product:04x}")
            }
            DmDevice::HostPort { bus, path } => write!(f, "busid={bus}-{path}"),
            DmDevice::Emulated(k) => write!(f, "type={}", k.spec_name()),
        }
    }
}

impl DmDevice {
    /// The QOM id used for this device on `ctrl`/`port`.
    pub fn qom_id(&self, ctrl: u32, port: u32) -> String {
        match self {
            DmDevice::HostAddr { bus, addr } => format!("xenusb-{bus}-{addr}"),
            DmDevice::HostIds { vendor, product } => {
                format!("xenusb-{ctrl}-{port}-{vendor:04x}-{product:04x}")
            }
            DmDevice::HostPort { bus, path } => format!("xenusb-{ctrl}-{port}-at-{bus}-{path}"),
            DmDevice::Emulated(k) => format!("xenusb-{ctrl}-{port}-{}", k.spec_name()),
        }
    }

    /// QEMU's driver.
    pub fn qemu_driver(&self) -> &'static str {
        match self {
            DmDevice::Emulated(k) => k.qemu_driver(),
            _ => "usb-host",
        }
    }

    /// `device_add` arguments: `id`, `driver`, `bus`, `port`, then the
    /// match properties (libxl's order for the bus.addr form).
    pub fn device_add(&self, ctrl: u32, port: u32, style: ArgStyle) -> DeviceAdd {
        let args = DeviceAdd::new()
            .arg("id", self.qom_id(ctrl, port))
            .arg("driver", self.qemu_driver())
            .arg("bus", controller_bus(ctrl))
            .arg("port", port.to_string());
        match self {
            DmDevice::HostAddr { bus, addr } => args
                .arg("hostbus", style.num(u64::from(*bus)))
                .arg("hostaddr", style.num(u64::from(*addr))),
            DmDevice::HostIds { vendor, product } => args
                .arg("vendorid", style.num(u64::from(*vendor)))
                .arg("productid", style.num(u64::from(*product))),
            DmDevice::HostPort { bus, path } => args
                .arg("hostbus", style.num(u64::from(*bus)))
                .arg("hostport", path.as_str()),
            DmDevice::Emulated(_) => args,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn json(d: &DeviceAdd) -> String {
        serde_json::Value::Object(d.arguments().clone()).to_string()
    }

    #[test]
    fn libxl_usb_host_request() {
        let d = DmDevice::HostAddr { bus: 1, addr: 3 };
        assert_eq!(
            json(&d.device_add(1, 2, ArgStyle::Xl417)),
            r#"{"id":"xenusb-1-3","driver":"usb-host","bus":"xenusb-1.0","port":"2","hostbus":"1","hostaddr":"3"}"#
        );
        assert_eq!(
            json(&d.device_add(1, 2, ArgStyle::Typed)),
            r#"{"id":"xenusb-1-3","driver":"usb-host","bus":"xenusb-1.0","port":"2","hostbus":1,"hostaddr":3}"#
        );
    }

    #[test]
    fn extensions() {
        let ids = DmDevice::HostIds {
            vendor: 0x1234,
            product: 0xabcd,
        };
        assert_eq!(
            json(&ids.device_add(0, 1, ArgStyle::Typed)),
            r#"{"id":"xenusb-0-1-1234-abcd","driver":"usb-host","bus":"xenusb-0.0","port":"1","vendorid":4660,"productid":43981}"#
        );
        let at = DmDevice::HostPort {
            bus: 3,
            path: "1.4".into(),
        };
        assert_eq!(at.qom_id(0, 2), "xenusb-0-2-at-3-1.4");
        assert!(
            json(&at.device_add(0, 2, ArgStyle::Typed))
                .ends_with(r#""hostbus":3,"hostport":"1.4"}"#)
        );
        let t = DmDevice::Emulated(EmulatedKind::Tablet);
        assert_eq!(
            json(&t.device_add(0, 2, ArgStyle::Typed)),
            r#"{"id":"xenusb-0-2-tablet","driver":"usb-tablet","bus":"xenusb-0.0","port":"2"}"#
        );
        assert_eq!(
            EmulatedKind::from_qemu_driver("usb-kbd"),
            Some(EmulatedKind::Keyboard)
        );
    }
}
