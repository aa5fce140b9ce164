//! `vusb usb-assignable-list`: every host USB device with whether it may be
//! given to a guest and, when not, why. An extension: xl has no such
//! command. The JSON form is documented in `docs/cli-json.md`.
//!
//! Refusals come from [`vusb_host::assignable`] (root hubs, hubs by device
//! or interface class, devices the host uses and the hubs above them), from
//! the assignment record ([`crate::assign`]: assigned to a domain), and from
//! the binding itself: a device with an interface on usbback belongs to a
//! pv backend even without a vusb record (assigned by xl).
//!
//! Works without xenstore: then nothing is known to be assigned, and the
//! caller says why on stderr.

use serde::Serialize;
use vusb_host::{UsbDevice, bind::USBBACK};
use vusb_xenstore::{DomId, TxId, Xenstore};

use crate::{Error, HostPaths, Result};

/// One device and its verdict.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The device as discovered.
    pub device: UsbDevice,
    /// `None` when assignable, else a short sentence.
    pub reason: Option<String>,
    /// The domain it is assigned to, per the assignment record.
    pub assigned_to: Option<DomId>,
}

/// Every host USB device with its verdict, in bus/busid order. `xs` is the
/// xenstore connection, `None` when none could be made.
pub fn usb_assignable_list(paths: &HostPaths, xs: Option<&dyn Xenstore>) -> Result<Vec<Entry>> {
    let host_err = |e: vusb_host::Error| Error::Host(Box::new(e));
    let devices = vusb_host::discover(&paths.sysfs_root).map_err(host_err)?;
    let uses = match vusb_host::usage::block_uses(&paths.sysfs_root, &paths.proc_root) {
        Ok(u) => u,
        Err(e) => {
            log::warn!(
                "cannot tell which block devices the host uses: {}",
                vusb_host::discover::error_chain(&e)
            );
            Vec::new()
        }
    };
    let assigned = match xs.map(|xs| crate::assign::list(xs, TxId::NONE)) {
        Some(Ok(list)) => list,
        Some(Err(e)) => {
            log::warn!(
                "cannot tell which devices are assigned to domains: {}",
                vusb_host::discover::error_chain(&e)
            );
            Vec::new()
        }
        None => Vec::new(),
    };
    let mut out = Vec::with_capacity(devices.len());
    for dev in &devices {
        let assigned_to = assigned
            .iter()
            .find(|a| a.busid == dev.busid.as_str())
            .map(|a| a.domid);
        let reason = if let Some(domid) = assigned_to {
            Some(format!("assigned to domain {domid}"))
        } else if let Some(r) = vusb_host::assignable::check(dev, &devices, &uses, false) {
            Some(r.to_string())
        } else if dev
            .interfaces
            .iter()
            .any(|i| i.driver.as_deref() == Some(USBBACK))
        {
            Some(format!(
                "its interfaces are bound to {USBBACK} (assigned by another toolstack)"
            ))
        } else {
            None
        };
        out.push(Entry {
            device: dev.clone(),
            reason,
            assigned_to,
        });
    }
    Ok(out)
}

/// One interface in the JSON form.
#[derive(Debug, Serialize)]
pub struct InterfaceJson {
    /// Kernel name (`3-1.2:1.0`).
    pub name: String,
    /// `bInterfaceClass`, 2 lowercase hex digits.
    pub class: String,
    /// Bound driver, `null` when unbound.
    pub driver: Option<String>,
}

/// One device in the JSON form (`docs/cli-json.md`): exactly these keys.
#[derive(Debug, Serialize)]
pub struct EntryJson {
    /// Kernel name.
    pub busid: String,
    /// Bus number.
    pub hostbus: u8,
    /// Device address.
    pub hostaddr: u8,
    /// 4 lowercase hex digits.
    pub vendor_id: String,
    /// 4 lowercase hex digits.
    pub product_id: String,
    /// String descriptor or `null`.
    pub manufacturer: Option<String>,
    /// String descriptor or `null`.
    pub product: Option<String>,
    /// String descriptor or `null`.
    pub serial: Option<String>,
    /// Mbit/s (1.5, 12, 480, 5000...), `null` when the kernel says unknown.
    pub speed_mbps: Option<serde_json::Number>,
    /// bcdUSB as sysfs writes it (`"2.00"`).
    pub usb_version: Option<String>,
    /// `bDeviceClass`, 2 lowercase hex digits.
    pub device_class: String,
    /// Physical port path (`0000:00:14.0-1.2`): one half of the connector.
    pub port_path: String,
    /// The connector, the same for both halves of a USB3 connector and
    /// across bus renumbering (`0000:00:14.0/1.2`; `physport=` takes it).
    pub physical_port: String,
    /// Whether it may be assigned.
    pub assignable: bool,
    /// Why not, `null` when assignable.
    pub reason: Option<String>,
    /// The domain it is assigned to.
    pub assigned_to: Option<DomId>,
    /// Interfaces of the active configuration.
    pub interfaces: Vec<InterfaceJson>,
}

fn speed_number(kbps: u32) -> Option<serde_json::Number> {
    if kbps.is_multiple_of(1000) {
        Some(serde_json::Number::from(kbps / 1000))
    } else {
        serde_json::Number::from_f64(f64::from(kbps) / 1000.0)
    }
}

impl From<&Entry> for EntryJson {
    fn from(e: &Entry) -> EntryJson {
        let d = &e.device;
        EntryJson {
            busid: d.busid.to_string(),
            hostbus: d.busnum,
            hostaddr: d.devnum,
            vendor_id: format!("{:04x}", d.vendor_id),
            product_id: format!("{:04x}", d.product_id),
            manufacturer: d.manufacturer.clone(),
            product: d.product.clone(),
            serial: d.serial.clone(),
            speed_mbps: d.speed_kbps.and_then(speed_number),
            usb_version: d.usb_version.clone(),
            device_class: format!("{:02x}", d.device_class),
            port_path: d.port_path.clone(),
            physical_port: d.physical_port.clone(),
            assignable: e.reason.is_none(),
            reason: e.reason.clone(),
            assigned_to: e.assigned_to,
            interfaces: d
                .interfaces
                .iter()
                .map(|i| InterfaceJson {
                    name: i.name.clone(),
                    class: format!("{:02x}", i.class),
                    driver: i.driver.clone(),
                })
                .collect(),
        }
    }
}
