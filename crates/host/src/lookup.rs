//! Finding the device a user means: by `hostbus`/`hostaddr` (xl's only
//! way), by busid, by `vendor:product[:serial]`, by physical port path, or
//! by physical-port identity (one connector, or the subtree below it),
//! optionally narrowed by an interface filter ([`InterfaceFilter`]).
//!
//! Which identities survive what (see `docs/host-usb.md`): bus/addr changes
//! at every re-plug (the address is allocated anew); the busid survives a
//! re-plug into the same connector but not a move, and its bus number may
//! change across reboots; vendor:product:serial follows the device anywhere
//! (when the device has a unique serial); the port path (`<controller>-
//! <ports>`) names one half of the connector, stable across re-plugs and
//! reboots; the physical port (`<controller>/<ports>`) names the
//! connector whichever half the device uses ([`crate::physport`]).

use std::fmt;

use std::path::Path;

use crate::device::{BusId, UsbDevice};
use crate::discover::{devices_dir, discover, read_one};
use crate::error::{Error, Result};
use crate::filter::InterfaceFilter;
use crate::parse::{hex_u32, xl_uint8};
use crate::sysfs::{SysfsPath, list_dir};

/// How the user named a host device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// `hostbus=`/`hostaddr=`, already reduced to 8 bits as xl does.
    BusAddr {
        /// Bus number.
        bus: u8,
        /// Device address.
        addr: u8,
    },
    /// A busid (`3-1.2`).
    BusId(BusId),
    /// `vendor:product[:serial]`.
    VidPid {
        /// idVendor.
        vendor: u16,
        /// idProduct.
        product: u16,
        /// The serial string, when given.
        serial: Option<String>,
    },
    /// A physical port path (`0000:00:14.0-1.2`); a busid-form path
    /// (`3-1.2`) is accepted too.
    PortPath(String),
    /// A physical-port identity ([`crate::physport`]): the device in that
    /// connector (`below: false`), or any device strictly below it
    /// (`below: true`; hubs there are never selected, the devices on
    /// their ports are). `0000:00:14.0/2`, or the anchor alone with
    /// `below` for every device of a controller.
    PhysPort {
        /// The identity as written, without the `.*` / `/*` suffix.
        port: String,
        /// The subtree below it rather than the port itself.
        below: bool,
    },
}

impl Selector {
    /// `hostbus`/`hostaddr` as xl parses them (`strtoul` base 0, then
    /// truncated to 8 bits).
    pub fn bus_addr(hostbus: &str, hostaddr: &str) -> Selector {
        Selector::BusAddr {
            bus: xl_uint8(hostbus),
            addr: xl_uint8(hostaddr),
        }
    }

    /// `vvvv:pppp[:serial]` with hex ids (optional `0x`); the serial is
    /// everything after the second colon.
    pub fn parse_vid_pid(text: &str) -> Result<Selector> {
        let invalid = |reason| Error::InvalidSelector {
            what: "vendor:product",
            input: text.to_owned(),
            reason,
        };
        let mut parts = text.splitn(3, ':');
        let vendor = parts
            .next()
            .and_then(|v| hex_u32(v, 4))
            .ok_or_else(|| invalid("the vendor id must be 1 to 4 hex digits"))?;
        let product = parts
            .next()
            .and_then(|v| hex_u32(v, 4))
            .ok_or_else(|| invalid("the product id must be 1 to 4 hex digits"))?;
        let serial = parts.next().map(str::to_owned);
        if serial.as_deref() == Some("") {
            return Err(invalid("the serial after the second colon is empty"));
        }
        Ok(Selector::VidPid {
            vendor: vendor as u16,
            product: product as u16,
            serial,
        })
    }

    fn matches(&self, dev: &UsbDevice) -> bool {
        match self {
            Selector::BusAddr { bus, addr } => dev.busnum == *bus && dev.devnum == *addr,
            Selector::BusId(b) => dev.busid == *b,
            Selector::VidPid {
                vendor,
                product,
                serial,
            } => {
                dev.vendor_id == *vendor
                    && dev.product_id == *product
                    && serial
                        .as_ref()
                        .is_none_or(|s| dev.serial.as_deref() == Some(s.as_str()))
            }
            Selector::PortPath(p) => dev.port_path == *p || dev.busid.as_str() == p,
            Selector::PhysPort { port, below } => {
                crate::physport::matches(&dev.physical_port, port, *below)
                    && !(*below && dev.is_hub())
            }
        }
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Selector::BusAddr { bus, addr } => write!(f, "hostbus {bus} hostaddr {addr}"),
            Selector::BusId(b) => write!(f, "busid {b}"),
            Selector::VidPid {
                vendor,
                product,
                serial: None,
            } => write!(f, "vendor:product {vendor:04x}:{product:04x}"),
            Selector::VidPid {
                vendor,
                product,
                serial: Some(s),
            } => {
                write!(f, "vendor:product:serial {vendor:04x}:{product:04x}:{s}")
            }
            Selector::PortPath(p) => write!(f, "port path {p}"),
            Selector::PhysPort { port, below: false } => write!(f, "physical port {port}"),
            Selector::PhysPort { port, below: true } => {
                let sep = if port.contains('/') { '.' } else { '/' };
                write!(f, "physical port {port}{sep}*")
            }
        }
    }
}

/// The one device `selector` names among `devices`. Bus or address 0 never
/// match (xl: "not found"). Several matches are an error listing them.
/// The device `selector` names, reading only as much of sysfs as the
/// selector needs: a busid is read alone; a bus.addr reads `devnum` only of
/// the devices whose busid puts them on that bus (the path wins over the
/// `busnum` file, as in [`discover`]), then the match alone; the other
/// selectors read every device. Same device and errors as [`find`] over
/// [`discover`]'s list, without reading every attribute of every device on
/// a host with many (an attach must not grow with the host's devices) —
/// except that a device read alone has `port.peer_device` (the device on
/// the companion port, a fact about *another* device) left `None`.
pub fn locate(sysfs_root: &Path, selector: &Selector) -> Result<UsbDevice> {
    let not_found = || Error::DeviceNotFound {
        what: selector.to_string(),
    };
    match selector {
        Selector::BusAddr { bus, addr } if *bus != 0 && *addr != 0 => {
            let dir = devices_dir(sysfs_root);
            let mut found: Vec<BusId> = Vec::new();
            for name in list_dir(&dir)? {
                let Ok(id) = BusId::parse(&name) else {
                    continue; // interfaces and other entries
                };
                if id.bus() != *bus {
                    continue;
                }
                match SysfsPath::new(dir.join(&name)).read_devnum("devnum") {
                    Ok(n) if n == *addr => found.push(id),
                    Ok(_) => {}
                    Err(e) => log::warn!("skipping USB device {name}: {e}"),
                }
            }
            match found.as_slice() {
                [] => Err(not_found()),
                [one] => read_one(sysfs_root, one),
                many => Err(Error::AmbiguousDevice {
                    what: selector.to_string(),
                    matches: many.iter().map(ToString::to_string).collect(),
                }),
            }
        }
        Selector::BusId(b) => {
            if !devices_dir(sysfs_root).join(b.as_str()).exists() {
                return Err(not_found());
            }
            read_one(sysfs_root, b)
        }
        _ => {
            let devices = discover(sysfs_root)?;
            find(&devices, selector).cloned()
        }
    }
}

/// [`locate`], then `filter` (a refused device is
/// [`Error::FilteredOut`]); a selector that may name several devices
/// (vendor:product, physical ports) is resolved with the filter applied
/// first, as [`find_with`].
pub fn locate_with(
    sysfs_root: &Path,
    selector: &Selector,
    filter: &InterfaceFilter,
) -> Result<UsbDevice> {
    match selector {
        Selector::BusAddr { .. } | Selector::BusId(_) => {
            let dev = locate(sysfs_root, selector)?;
            match filter.check(&dev) {
                Ok(()) => Ok(dev),
                Err(r) => Err(Error::FilteredOut {
                    what: selector.to_string(),
                    refusals: vec![format!("{}: {r}", dev.busid)],
                }),
            }
        }
        _ => {
            let devices = discover(sysfs_root)?;
            find_with(&devices, selector, filter).cloned()
        }
    }
}

/// The one device of `devices` that `selector` names.
pub fn find<'a>(devices: &'a [UsbDevice], selector: &Selector) -> Result<&'a UsbDevice> {
    find_with(devices, selector, &InterfaceFilter::default())
}

/// The one device of `devices` that `selector` names and that passes
/// `filter`. Among several devices the selector names (a subtree, a
/// vendor:product), the filter picks; when the selector names devices but
/// none passes, the error gives each one's reason.
pub fn find_with<'a>(
    devices: &'a [UsbDevice],
    selector: &Selector,
    filter: &InterfaceFilter,
) -> Result<&'a UsbDevice> {
    if let Selector::BusAddr { bus: 0, .. } | Selector::BusAddr { addr: 0, .. } = selector {
        return Err(Error::DeviceNotFound {
            what: selector.to_string(),
        });
    }
    let named: Vec<&UsbDevice> = devices.iter().filter(|d| selector.matches(d)).collect();
    let mut refusals = Vec::new();
    let mut found = Vec::new();
    for d in named {
        match filter.check(d) {
            Ok(()) => found.push(d),
            Err(r) => refusals.push(format!("{}: {r}", d.busid)),
        }
    }
    if found.is_empty() && !refusals.is_empty() {
        return Err(Error::FilteredOut {
            what: selector.to_string(),
            refusals,
        });
    }
    match found.as_slice() {
        [] => Err(Error::DeviceNotFound {
            what: selector.to_string(),
        }),
        [one] => Ok(one),
        many => Err(Error::AmbiguousDevice {
            what: selector.to_string(),
            matches: many.iter().map(|d| d.busid.to_string()).collect(),
        }),
    }
}
