//! The typed model of host USB devices that discovery produces.
//!
//! A [`BusId`] is the kernel's name of a device (`3-1.2`: bus 3, port 1 of
//! the root hub, then port 2 of that hub; `usb3` for the root hub of bus 3).
//! libxl stores it in the port node of a pv/qusb controller.

use std::fmt;

use crate::endpoints::{Endpoint, Transfer};
use crate::error::{Error, Result};

/// Why a bus number above 255 is refused: bus and device numbers are `u8`
/// throughout vusb, as libxl's `hostbus`/`hostaddr` (`uint8` in its IDL,
/// `(uint8_t) strtoul` in xl); Linux numbers buses below `USB_MAXBUS` (64)
/// and devices 1 to 127 per bus.
const BUS_RANGE: &str = "bus numbers go from 1 to 255";

/// A USB device's kernel name: `B-P[.P...]`, or `usbB` for a root hub.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BusId(String);

impl BusId {
    /// Check and wrap a busid. Interfaces (`3-1:1.0`) are refused.
    pub fn parse(s: &str) -> Result<BusId> {
        let invalid = |reason| Error::InvalidSelector {
            what: "busid",
            input: s.to_owned(),
            reason,
        };
        if let Some(bus) = s.strip_prefix("usb") {
            return match bus.parse::<u32>() {
                Ok(n) if n > 0 && !bus.starts_with('0') && n <= u32::from(u8::MAX) => {
                    Ok(BusId(s.to_owned()))
                }
                Ok(n) if n > u32::from(u8::MAX) => Err(invalid(BUS_RANGE)),
                _ => Err(invalid("a root hub is named usbN with N > 0")),
            };
        }
        let (bus, ports) = s
            .split_once('-')
            .ok_or_else(|| invalid("expected BUS-PORT[.PORT...]"))?;
        let numeric =
            |t: &str| !t.is_empty() && t.len() <= 3 && t.bytes().all(|c| c.is_ascii_digit());
        if !numeric(bus) || bus.starts_with('0') {
            return Err(invalid("the bus number must be a positive decimal number"));
        }
        if bus.parse::<u8>().is_err() {
            return Err(invalid(BUS_RANGE));
        }
        if !ports.split('.').all(numeric) {
            return Err(invalid("ports must be decimal numbers separated by dots"));
        }
        Ok(BusId(s.to_owned()))
    }

    /// The text form.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this names a root hub (`usbN`).
    pub fn is_root_hub(&self) -> bool {
        self.0.starts_with("usb")
    }

    /// The bus number the name says (checked by [`BusId::parse`]).
    pub fn bus(&self) -> u8 {
        let digits = self.0.strip_prefix("usb").unwrap_or(&self.0);
        let digits = digits.split('-').next().unwrap_or_default();
        digits.parse().unwrap_or(0)
    }

    /// The port chain below the root hub (`"1.2"`); empty for a root hub.
    pub fn ports(&self) -> &str {
        self.0.split_once('-').map(|(_, p)| p).unwrap_or("")
    }

    /// The hub this device is plugged into, by name (`3-1.2` → `3-1`,
    /// `3-1` → `usb3`); `None` for a root hub.
    pub fn parent(&self) -> Option<BusId> {
        if self.is_root_hub() {
            return None;
        }
        match self.0.rsplit_once('.') {
            Some((up, _)) => Some(BusId(up.to_owned())),
            None => Some(BusId(format!("usb{}", self.bus()))),
        }
    }
}

impl AsRef<str> for BusId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Maps keyed by busid can be searched by text (the derived `Hash`, `Eq`
/// and `Ord` are those of the text).
impl std::borrow::Borrow<str> for BusId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for BusId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for BusId {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl fmt::Display for BusId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One interface of the device's active configuration (`3-1.2:1.0`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// Kernel name, `<busid>:<config>.<number>`.
    pub name: String,
    /// `bInterfaceClass`.
    pub class: u8,
    /// `bInterfaceSubClass`.
    pub subclass: u8,
    /// `bInterfaceProtocol`.
    pub protocol: u8,
    /// The bound driver's name (the `driver` link's last component).
    pub driver: Option<String>,
}

/// The physical connector a device is plugged into: the device's `port`
/// link and that port's `peer` (the USB2/USB3 companion connector).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortLink {
    /// The port device's name (`usb3-port1`, `3-1-port4`).
    pub port: String,
    /// The companion port's name, when the kernel linked one.
    pub peer: Option<String>,
    /// The device plugged into the companion port, if any (a USB3 hub shows
    /// up on both buses).
    pub peer_device: Option<BusId>,
}

/// A USB device (not an interface), as sysfs describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct UsbDevice {
    /// Kernel name.
    pub busid: BusId,
    /// Bus number (`busnum`; the busid wins when they disagree).
    pub busnum: u8,
    /// Device address on the bus (`devnum`).
    pub devnum: u8,
    /// `idVendor`.
    pub vendor_id: u16,
    /// `idProduct`.
    pub product_id: u16,
    /// `manufacturer` string, when the device has one.
    pub manufacturer: Option<String>,
    /// `product` string.
    pub product: Option<String>,
    /// `serial` string.
    pub serial: Option<String>,
    /// Link speed in kbit/s (`speed`: 1.5 Mbit/s is 1500).
    pub speed_kbps: Option<u32>,
    /// `version` (bcdUSB) as sysfs writes it, trimmed: `"2.00"`.
    pub usb_version: Option<String>,
    /// `bDeviceClass`.
    pub device_class: u8,
    /// `bDeviceSubClass`.
    pub device_subclass: u8,
    /// `bDeviceProtocol`.
    pub device_protocol: u8,
    /// Physical port path: `<host controller>-<ports>` (`0000:00:14.0-1.2`),
    /// stable across re-plugs into the same connector and across reboots.
    pub port_path: String,
    /// The connector's identity, the same for the USB2 and USB3 halves of
    /// one connector and across bus renumbering (`0000:00:14.0/3.2`; see
    /// [`crate::physport`]).
    pub physical_port: String,
    /// The host controller's sysfs name (`0000:00:14.0`), when known.
    pub controller: Option<String>,
    /// The device's directory under the sysfs root, as components
    /// (`devices/pci0000:00/0000:00:14.0/usb3/3-1`).
    pub devpath: Vec<String>,
    /// Hubs from this device's parent up to the root hub.
    pub parents: Vec<BusId>,
    /// The connector, when sysfs has a `port` link.
    pub port: Option<PortLink>,
    /// Interfaces of the active configuration, by name.
    pub interfaces: Vec<Interface>,
    /// Endpoints of the active configuration, every alternate setting
    /// when sysfs shows them ([`crate::endpoints`]).
    pub endpoints: Vec<Endpoint>,
}

/// USB class code of hubs.
pub const CLASS_HUB: u8 = 0x09;

impl UsbDevice {
    /// Whether the device is a hub: device class 09 or any interface of
    /// class 09 (libxl checks only the former).
    pub fn is_hub(&self) -> bool {
        self.device_class == CLASS_HUB || self.interfaces.iter().any(|i| i.class == CLASS_HUB)
    }

    /// `vvvv:pppp`, lowercase.
    pub fn vid_pid(&self) -> String {
        format!("{:04x}:{:04x}", self.vendor_id, self.product_id)
    }

    /// Speed in Mbit/s as sysfs writes it (`"1.5"`, `"480"`).
    pub fn speed_mbps(&self) -> Option<f64> {
        self.speed_kbps.map(|k| f64::from(k) / 1000.0)
    }

    /// Whether the device runs at SuperSpeed (5 Gbit/s) or faster.
    pub fn is_superspeed(&self) -> bool {
        self.speed_kbps.is_some_and(|k| k >= 5_000_000)
    }

    /// The first isochronous endpoint, if the device has one (webcams,
    /// audio: PV USB cannot carry them).
    pub fn isochronous_endpoint(&self) -> Option<&Endpoint> {
        self.endpoints
            .iter()
            .find(|e| e.transfer == Transfer::Isochronous)
    }

    /// Whether `other` is this device or below it.
    pub fn contains(&self, other: &UsbDevice) -> bool {
        other.busid == self.busid || other.parents.contains(&self.busid)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn busids() {
        let b = BusId::parse("3-1.2").unwrap();
        assert_eq!(b.bus(), 3);
        assert_eq!(b.ports(), "1.2");
        assert_eq!(b.parent().unwrap().as_str(), "3-1");
        assert_eq!(b.parent().unwrap().parent().unwrap().as_str(), "usb3");
        assert!(BusId::parse("usb12").unwrap().is_root_hub());
        assert_eq!(BusId::parse("255-1").unwrap().bus(), 255);
        for bad in [
            "3-1:1.0", "3", "-1", "3-", "3-1..2", "usb0", "x-1", "03-1", "3-a", "256-1", "usb256",
        ] {
            assert!(BusId::parse(bad).is_err(), "{bad}");
        }
    }
}
