//! Discovery: every USB device under `<sysfs root>/bus/usb/devices`.
//!
//! libxl reads only `busnum`/`devnum` there (reference §5.1). vusb reads the
//! whole description, tolerantly: a device whose mandatory attributes are
//! missing or malformed is skipped with a `log::warn!`, never fatal; an
//! interface likewise. When a file disagrees with what the sysfs path says
//! (`busnum` against the busid, the parent chain against the directory
//! nesting), the path wins and a warning says so.

use std::collections::BTreeMap;
use std::path::Path;

use crate::device::{BusId, Interface, PortLink, UsbDevice};
use crate::error::{Error, Result};
use crate::sysfs::{SysfsPath, list_dir, resolve_relative};

/// `<root>/bus/usb/devices`.
pub fn devices_dir(sysfs_root: &Path) -> std::path::PathBuf {
    sysfs_root.join("bus/usb/devices")
}

/// Every USB device, sorted by bus then busid, with its interfaces. Fails
/// only when the devices directory itself cannot be listed (an absent one
/// means no USB: an empty list).
pub fn discover(sysfs_root: &Path) -> Result<Vec<UsbDevice>> {
    let dir = devices_dir(sysfs_root);
    let names = list_dir(&dir)?;
    let mut devices: BTreeMap<SortKey, UsbDevice> = BTreeMap::new();
    let mut interfaces: Vec<(String, String)> = Vec::new();
    for name in names {
        if let Some((owner, _)) = name.split_once(':') {
            interfaces.push((interface_owner(owner), name.clone()));
            continue;
        }
        if name.contains("-port") {
            // A port device (`usb1-port1`) some recordings list here.
            log::debug!("ignoring port entry {name}");
            continue;
        }
        match read_device(sysfs_root, &name) {
            Ok(dev) => {
                devices.insert(sort_key(&dev.busid), dev);
            }
            Err(e) => log::warn!("skipping USB device {name}: {}", error_chain(&e)),
        }
    }
    let by_name: BTreeMap<String, SortKey> = devices
        .iter()
        .map(|(k, d)| (d.busid.to_string(), k.clone()))
        .collect();
    for (owner, name) in interfaces {
        let Some(key) = by_name.get(&owner) else {
            log::warn!("interface {name} has no readable device {owner}; ignored");
            continue;
        };
        match read_interface(&SysfsPath::new(dir.join(&name))) {
            Ok(intf) => {
                if let Some(dev) = devices.get_mut(key) {
                    dev.interfaces.push(intf);
                }
            }
            Err(e) => log::warn!("skipping USB interface {name}: {}", error_chain(&e)),
        }
    }
    let mut list: Vec<UsbDevice> = devices.into_values().collect();
    for dev in &mut list {
        let dir = SysfsPath::new(dir.join(dev.busid.as_str()));
        dev.endpoints = crate::endpoints::read(&dir, &dev.interfaces);
    }
    link_peers(&mut list);
    Ok(list)
}

/// Bus number, then the port chain numerically (`1-2` before `1-10`); the
/// root hub (no ports) first on its bus.
type SortKey = (u8, Vec<u32>, String);

fn sort_key(busid: &BusId) -> SortKey {
    let ports = busid
        .ports()
        .split('.')
        .filter_map(|p| p.parse().ok())
        .collect();
    (busid.bus(), ports, busid.to_string())
}

/// The device an interface name's prefix means: `3-0` is the root hub
/// `usb3` (its interface is `3-0:1.0`).
fn interface_owner(prefix: &str) -> String {
    match prefix.strip_suffix("-0") {
        Some(bus) if bus.bytes().all(|c| c.is_ascii_digit()) => format!("usb{bus}"),
        _ => prefix.to_owned(),
    }
}

/// One device by busid, with its interfaces. Its `port.peer_device` stays
/// `None`: naming the device on the companion port needs every device
/// ([`discover`] fills it in).
pub fn read_one(sysfs_root: &Path, busid: &BusId) -> Result<UsbDevice> {
    let mut dev = read_device(sysfs_root, busid.as_str())?;
    let dir = devices_dir(sysfs_root);
    // An interface belongs to the device its prefix names (`3-0:1.0` is
    // the root hub `usb3`'s), exactly as in `discover`.
    let owned = |n: &str| {
        n.split_once(':')
            .is_some_and(|(prefix, _)| interface_owner(prefix) == busid.as_str())
    };
    for name in list_dir(&dir)?.into_iter().filter(|n| owned(n)) {
        match read_interface(&SysfsPath::new(dir.join(&name))) {
            Ok(intf) => dev.interfaces.push(intf),
            Err(e) => log::warn!("skipping USB interface {name}: {}", error_chain(&e)),
        }
    }
    dev.endpoints =
        crate::endpoints::read(&SysfsPath::new(dir.join(busid.as_str())), &dev.interfaces);
    Ok(dev)
}

/// The `Display` of an error followed by its sources, for warnings.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn read_device(sysfs_root: &Path, name: &str) -> Result<UsbDevice> {
    let busid = BusId::parse(name)?;
    let entries = devices_dir(sysfs_root);
    let dev = SysfsPath::new(entries.join(name));
    // A real kernel makes every entry a link into `devices/...`; a
    // hand-made tree may use plain directories (no nesting information).
    let devpath = match std::fs::read_link(dev.path()) {
        Ok(target) => resolve_relative(&entries, &target, sysfs_root),
        Err(_) => Vec::new(),
    };
    let busnum_file = dev.read_decimal("busnum")?;
    if busnum_file != u32::from(busid.bus()) {
        log::warn!(
            "{name}: busnum says {busnum_file}, the name says bus {}; using the name",
            busid.bus()
        );
    }
    let devnum = dev.read_devnum("devnum")?;
    let parents = parent_chain(&busid, &devpath);
    let controller = controller_of(&busid, &devpath);
    let port_path = match (&controller, busid.is_root_hub()) {
        (Some(c), true) => c.clone(),
        (Some(c), false) => format!("{c}-{}", busid.ports()),
        (None, true) => format!("usb{}", busid.bus()),
        (None, false) => format!("usb{}-{}", busid.bus(), busid.ports()),
    };
    let physical_port =
        crate::physport::of_device(sysfs_root, &busid, &devpath, controller.as_deref());
    let port = match dev.read_link_opt("port") {
        Ok(Some(target)) => {
            let port_name = target.file_name().map(|n| n.to_string_lossy().into_owned());
            let peer = dev
                .join("port")
                .read_link_opt("peer")
                .ok()
                .flatten()
                .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()));
            port_name.map(|port| PortLink {
                port,
                peer,
                peer_device: None,
            })
        }
        _ => None,
    };
    Ok(UsbDevice {
        busnum: busid.bus(),
        devnum,
        vendor_id: dev.read_hex16("idVendor")?,
        product_id: dev.read_hex16("idProduct")?,
        manufacturer: dev.read_string_opt("manufacturer")?,
        product: dev.read_string_opt("product")?,
        serial: dev.read_string_opt("serial")?,
        speed_kbps: if dev.has("speed") {
            dev.read_speed_kbps("speed")?
        } else {
            None
        },
        usb_version: if dev.has("version") {
            Some(dev.read_version("version")?)
        } else {
            None
        },
        device_class: dev.read_hex8("bDeviceClass")?,
        device_subclass: optional_hex8(&dev, "bDeviceSubClass"),
        device_protocol: optional_hex8(&dev, "bDeviceProtocol"),
        port_path,
        physical_port,
        controller,
        devpath,
        parents,
        port,
        interfaces: Vec::new(),
        endpoints: Vec::new(),
        busid,
    })
}

fn optional_hex8(dev: &SysfsPath, attr: &str) -> u8 {
    match dev.read_hex8(attr) {
        Ok(v) => v,
        Err(Error::ReadFile { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            log::debug!("{}: no {attr}; taking 00", dev.name());
            0
        }
        Err(e) => {
            log::warn!("{}: {}; taking 00", dev.name(), error_chain(&e));
            0
        }
    }
}

/// Parents from the directory nesting when the entry is a link into
/// `devices/...`, checked against the name; the nesting wins.
fn parent_chain(busid: &BusId, devpath: &[String]) -> Vec<BusId> {
    let mut by_name = Vec::new();
    let mut up = busid.parent();
    while let Some(p) = up {
        up = p.parent();
        by_name.push(p);
    }
    let Some((_, above)) = devpath.split_last() else {
        return by_name;
    };
    let by_path: Vec<BusId> = above
        .iter()
        .rev()
        .filter_map(|c| BusId::parse(c).ok())
        .collect();
    if by_path.is_empty() {
        return by_name;
    }
    if by_path != by_name {
        let show = |v: &[BusId]| v.iter().map(BusId::as_str).collect::<Vec<_>>().join(" < ");
        log::warn!(
            "{busid}: sysfs nesting says parents {}, the name says {}; using the nesting",
            show(&by_path),
            show(&by_name)
        );
    }
    by_path
}

/// The sysfs name of the directory holding the root hub (`0000:00:14.0`).
fn controller_of(busid: &BusId, devpath: &[String]) -> Option<String> {
    let root = format!("usb{}", busid.bus());
    let pos = devpath.iter().position(|c| *c == root)?;
    pos.checked_sub(1)
        .map(|p| devpath[p].clone())
        .filter(|c| c != "devices")
}

fn read_interface(dir: &SysfsPath) -> Result<Interface> {
    let driver = dir
        .read_link_opt("driver")?
        .and_then(|t| t.file_name().map(|n| n.to_string_lossy().into_owned()));
    Ok(Interface {
        name: dir.name(),
        class: dir.read_hex8("bInterfaceClass")?,
        subclass: optional_hex8(dir, "bInterfaceSubClass"),
        protocol: optional_hex8(dir, "bInterfaceProtocol"),
        driver,
    })
}

/// Fill `peer_device`: the device whose `port` is the peer of this one's.
fn link_peers(devices: &mut [UsbDevice]) {
    let by_port: BTreeMap<String, BusId> = devices
        .iter()
        .filter_map(|d| d.port.as_ref().map(|p| (p.port.clone(), d.busid.clone())))
        .collect();
    for dev in devices.iter_mut() {
        if let Some(port) = dev.port.as_mut() {
            port.peer_device = port.peer.as_ref().and_then(|p| by_port.get(p).cloned());
        }
    }
}
