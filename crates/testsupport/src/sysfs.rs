//! Fixture sysfs trees laid out like the kernel's: `devices/...` holds the
//! real directories (root hubs under their PCI controller, hubs nested,
//! interfaces inside their device, `port` links and `peer` companions, block
//! devices under a mass-storage interface), `bus/usb/devices/*` and
//! `block/*` are relative links into it, `bus/usb/drivers/<D>` has `bind`
//! and `unbind` files and a link per bound interface.
//!
//! A [`SysfsTree`] lives in a temporary directory `ROOT` laid out as
//! `HostPaths::under(ROOT)` expects (`ROOT/sys`, `ROOT/proc`); mounts and
//! swaps go to `ROOT/proc/self/mountinfo` and `ROOT/proc/swaps`.
//!
//! The plain tree does not react to writes (a write to `bind` just stores
//! bytes); [`crate::fusesys`] serves the same tree with kernel behaviour.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// One interface of a fixture device.
#[derive(Debug, Clone)]
pub struct IntfSpec {
    /// `bInterfaceClass`.
    pub class: u8,
    /// `bInterfaceSubClass`.
    pub subclass: u8,
    /// `bInterfaceProtocol`.
    pub protocol: u8,
    /// Bound driver, if any.
    pub driver: Option<String>,
}

impl IntfSpec {
    /// An interface of `class` bound to `driver`.
    pub fn new(class: u8, driver: Option<&str>) -> IntfSpec {
        IntfSpec {
            class,
            subclass: 0,
            protocol: 0,
            driver: driver.map(str::to_owned),
        }
    }
    /// Set subclass and protocol.
    pub fn sub(mut self, subclass: u8, protocol: u8) -> IntfSpec {
        self.subclass = subclass;
        self.protocol = protocol;
        self
    }
}

/// A fixture USB device (not a root hub).
#[derive(Debug, Clone)]
pub struct DeviceSpec {
    /// `devnum`.
    pub devnum: u32,
    /// `idVendor`.
    pub vendor: u16,
    /// `idProduct`.
    pub product: u16,
    /// `bDeviceClass`.
    pub class: u8,
    /// `manufacturer`, omitted when `None`.
    pub manufacturer: Option<String>,
    /// `product`, omitted when `None`.
    pub product_name: Option<String>,
    /// `serial`, omitted when `None`.
    pub serial: Option<String>,
    /// `speed` as sysfs writes it (`"480"`, `"1.5"`).
    pub speed: String,
    /// `version` as bcdUSB (`"2.00"`), written with sysfs' leading space.
    pub version: String,
    /// Interfaces, numbered 0.. in configuration 1.
    pub interfaces: Vec<IntfSpec>,
}

impl DeviceSpec {
    /// A high-speed USB 2.0 device with no strings and no interfaces.
    pub fn new(devnum: u32, vendor: u16, product: u16) -> DeviceSpec {
        DeviceSpec {
            devnum,
            vendor,
            product,
            class: 0,
            manufacturer: None,
            product_name: None,
            serial: None,
            speed: "480".into(),
            version: "2.00".into(),
            interfaces: Vec::new(),
        }
    }
    /// Set the strings.
    pub fn strings(
        mut self,
        manufacturer: &str,
        product: &str,
        serial: Option<&str>,
    ) -> DeviceSpec {
        self.manufacturer = Some(manufacturer.into());
        self.product_name = Some(product.into());
        self.serial = serial.map(str::to_owned);
        self
    }
    /// Add an interface.
    pub fn intf(mut self, i: IntfSpec) -> DeviceSpec {
        self.interfaces.push(i);
        self
    }
    /// Set `bDeviceClass`.
    pub fn class(mut self, class: u8) -> DeviceSpec {
        self.class = class;
        self
    }
    /// Set speed and version.
    pub fn speed(mut self, speed: &str, version: &str) -> DeviceSpec {
        self.speed = speed.into();
        self.version = version.into();
        self
    }
    /// A hub: device class 09 and one hub interface bound to `hub`.
    pub fn hub(devnum: u32, vendor: u16, product: u16) -> DeviceSpec {
        DeviceSpec::new(devnum, vendor, product)
            .class(9)
            .intf(IntfSpec::new(9, Some("hub")))
    }
}

/// A fixture tree in a temporary directory.
pub struct SysfsTree {
    base: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    newline: bool,
}

impl SysfsTree {
    /// An empty tree in a fresh temporary directory.
    pub fn new() -> io::Result<SysfsTree> {
        let tmp = tempfile::Builder::new().prefix("vusb-sysfs-").tempdir()?;
        let tree = SysfsTree {
            base: tmp.path().to_owned(),
            _tmp: Some(tmp),
            newline: true,
        };
        tree.init()?;
        Ok(tree)
    }

    /// An empty tree under `base` (kept after the test).
    pub fn at(base: &Path) -> io::Result<SysfsTree> {
        let tree = SysfsTree {
            base: base.to_owned(),
            _tmp: None,
            newline: true,
        };
        tree.init()?;
        Ok(tree)
    }

    fn init(&self) -> io::Result<()> {
        for d in [
            "sys/bus/usb/devices",
            "sys/bus/usb/drivers",
            "sys/block",
            "sys/devices",
            "proc/self",
        ] {
            std::fs::create_dir_all(self.base.join(d))?;
        }
        self.driver("usb")?;
        self.driver("hub")
    }

    /// Write attributes without the trailing newline from now on (some
    /// recordings lack it).
    pub fn without_newlines(mut self) -> SysfsTree {
        self.newline = false;
        self
    }

    /// The directory holding `sys` and `proc` (for `HostPaths::under`).
    pub fn base(&self) -> &Path {
        &self.base
    }

    /// The sysfs root.
    pub fn root(&self) -> PathBuf {
        self.base.join("sys")
    }

    /// The proc root.
    pub fn proc_root(&self) -> PathBuf {
        self.base.join("proc")
    }

    fn attr(&self, dir: &Path, name: &str, value: &str) -> io::Result<()> {
        let nl = if self.newline { "\n" } else { "" };
        std::fs::write(dir.join(name), format!("{value}{nl}"))
    }

    /// A relative symlink at `link` (below the sysfs root) to `target`
    /// (below the sysfs root), as the kernel makes them.
    pub fn link(&self, link: &str, target: &str) -> io::Result<()> {
        let depth = Path::new(link)
            .parent()
            .map(|p| p.components().count())
            .unwrap_or(0);
        let rel = format!("{}{target}", "../".repeat(depth));
        let at = self.root().join(link);
        if let Some(parent) = at.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let _ = std::fs::remove_file(&at);
        std::os::unix::fs::symlink(rel, at)
    }

    /// Register a driver: `bus/usb/drivers/<name>` with `bind`/`unbind`.
    pub fn driver(&self, name: &str) -> io::Result<()> {
        let dir = self.root().join("bus/usb/drivers").join(name);
        std::fs::create_dir_all(&dir)?;
        for f in ["bind", "unbind", "uevent"] {
            if !dir.join(f).exists() {
                std::fs::write(dir.join(f), "")?;
            }
        }
        Ok(())
    }

    /// The device directory of `busid` below the sysfs root
    /// (`devices/pci0000:00/0000:00:14.0/usb3/3-1`).
    pub fn devpath(&self, busid: &str) -> io::Result<String> {
        let link = self.root().join("bus/usb/devices").join(busid);
        let target = std::fs::read_link(&link)?;
        let s = target.to_string_lossy();
        Ok(s.trim_start_matches("../").to_owned())
    }

    fn hub_intf(busid: &str) -> String {
        match busid.strip_prefix("usb") {
            Some(bus) => format!("{bus}-0:1.0"),
            None => format!("{busid}:1.0"),
        }
    }

    fn port_name(hub: &str, port: u32) -> String {
        format!("{hub}-port{port}")
    }

    /// The port directory of `hub`'s `port`, below the sysfs root.
    pub fn port_dir(&self, hub: &str, port: u32) -> io::Result<String> {
        Ok(format!(
            "{}/{}/{}",
            self.devpath(hub)?,
            Self::hub_intf(hub),
            Self::port_name(hub, port)
        ))
    }

    /// A root hub `usb<bus>` of the PCI controller `controller`, with
    /// `ports` ports. `version` is `"2.00"` or `"3.00"`.
    pub fn root_hub(
        &self,
        bus: u32,
        controller: &str,
        version: &str,
        ports: u32,
    ) -> io::Result<()> {
        let name = format!("usb{bus}");
        let devpath = format!("devices/pci0000:00/{controller}/{name}");
        let (vendor, product, speed) = if version.starts_with('3') {
            (0x1d6b, 3, "5000")
        } else {
            (0x1d6b, 2, "480")
        };
        let spec = DeviceSpec {
            devnum: 1,
            vendor,
            product,
            class: 9,
            manufacturer: Some(format!(
                "Linux 6.1.0 {}",
                if version.starts_with('3') {
                    "xhci-hcd"
                } else {
                    "ehci_hcd"
                }
            )),
            product_name: Some("xHCI Host Controller".into()),
            serial: Some(controller.into()),
            speed: speed.into(),
            version: version.into(),
            interfaces: vec![IntfSpec::new(9, Some("hub"))],
        };
        self.write_device(&name, bus, &devpath, &spec)?;
        for p in 1..=ports {
            self.make_port(&name, p)?;
        }
        Ok(())
    }

    fn make_port(&self, hub: &str, port: u32) -> io::Result<String> {
        let dir = self.port_dir(hub, port)?;
        let abs = self.root().join(&dir);
        if !abs.exists() {
            std::fs::create_dir_all(&abs)?;
            self.attr(&abs, "connect_type", "hotplug")?;
        }
        Ok(dir)
    }

    /// A device at `busid` (its parent hub must exist).
    pub fn device(&self, busid: &str, spec: &DeviceSpec) -> io::Result<()> {
        let (bus, ports) = busid
            .split_once('-')
            .ok_or_else(|| io::Error::other("busid B-P"))?;
        let bus: u32 = bus.parse().map_err(io::Error::other)?;
        let parent = match ports.rsplit_once('.') {
            Some((up, _)) => format!("{bus}-{up}"),
            None => format!("usb{bus}"),
        };
        let port: u32 = ports
            .rsplit('.')
            .next()
            .unwrap_or("0")
            .parse()
            .map_err(io::Error::other)?;
        let devpath = format!("{}/{busid}", self.devpath(&parent)?);
        self.write_device(busid, bus, &devpath, spec)?;
        let port_dir = self.make_port(&parent, port)?;
        self.link(&format!("{devpath}/port"), &port_dir)?;
        if spec.class == 9 || spec.interfaces.iter().any(|i| i.class == 9) {
            for p in 1..=4 {
                self.make_port(busid, p)?;
            }
        }
        Ok(())
    }

    fn write_device(
        &self,
        busid: &str,
        bus: u32,
        devpath: &str,
        spec: &DeviceSpec,
    ) -> io::Result<()> {
        let dir = self.root().join(devpath);
        std::fs::create_dir_all(&dir)?;
        self.attr(&dir, "busnum", &bus.to_string())?;
        self.attr(&dir, "devnum", &spec.devnum.to_string())?;
        self.attr(&dir, "idVendor", &format!("{:04x}", spec.vendor))?;
        self.attr(&dir, "idProduct", &format!("{:04x}", spec.product))?;
        self.attr(&dir, "bDeviceClass", &format!("{:02x}", spec.class))?;
        self.attr(&dir, "bDeviceSubClass", "00")?;
        self.attr(&dir, "bDeviceProtocol", "00")?;
        self.attr(
            &dir,
            "bNumInterfaces",
            &format!("{:2}", spec.interfaces.len()),
        )?;
        self.attr(&dir, "bConfigurationValue", "1")?;
        self.attr(&dir, "speed", &spec.speed)?;
        self.attr(&dir, "version", &format!(" {}", spec.version))?;
        for (name, v) in [
            ("manufacturer", &spec.manufacturer),
            ("product", &spec.product_name),
            ("serial", &spec.serial),
        ] {
            if let Some(v) = v {
                self.attr(&dir, name, v)?;
            }
        }
        self.link(&format!("bus/usb/devices/{busid}"), devpath)?;
        self.link(&format!("{devpath}/driver"), "bus/usb/drivers/usb")?;
        self.link(&format!("bus/usb/drivers/usb/{busid}"), devpath)?;
        for (i, intf) in spec.interfaces.iter().enumerate() {
            let name = format!(
                "{}:1.{i}",
                if busid.starts_with("usb") {
                    format!("{bus}-0")
                } else {
                    busid.to_owned()
                }
            );
            let ipath = format!("{devpath}/{name}");
            let idir = self.root().join(&ipath);
            std::fs::create_dir_all(&idir)?;
            self.attr(&idir, "bInterfaceNumber", &format!("{i:02x}"))?;
            self.attr(&idir, "bInterfaceClass", &format!("{:02x}", intf.class))?;
            self.attr(
                &idir,
                "bInterfaceSubClass",
                &format!("{:02x}", intf.subclass),
            )?;
            self.attr(
                &idir,
                "bInterfaceProtocol",
                &format!("{:02x}", intf.protocol),
            )?;
            self.link(&format!("bus/usb/devices/{name}"), &ipath)?;
            if let Some(d) = &intf.driver {
                self.driver(d)?;
                self.link(&format!("{ipath}/driver"), &format!("bus/usb/drivers/{d}"))?;
                self.link(&format!("bus/usb/drivers/{d}/{name}"), &ipath)?;
            }
        }
        Ok(())
    }

    /// An endpoint directory `ep_<addr>` in interface `intf` (`1-3:1.1`)
    /// with `bEndpointAddress`, `bmAttributes` and `type`, as the kernel
    /// shows the endpoints of an interface's current alternate setting.
    pub fn endpoint(&self, intf: &str, address: u8, bm_attributes: u8) -> io::Result<()> {
        let ilink = std::fs::read_link(self.root().join("bus/usb/devices").join(intf))?;
        let ipath = ilink.to_string_lossy().trim_start_matches("../").to_owned();
        let dir = self.root().join(ipath).join(format!("ep_{address:02x}"));
        std::fs::create_dir_all(&dir)?;
        self.attr(&dir, "bEndpointAddress", &format!("{address:02x}"))?;
        self.attr(&dir, "bmAttributes", &format!("{bm_attributes:02x}"))?;
        let kind = ["Control", "Isoc", "Bulk", "Interrupt"][usize::from(bm_attributes & 3)];
        self.attr(&dir, "type", kind)?;
        self.attr(
            &dir,
            "direction",
            if address & 0x80 != 0 { "in" } else { "out" },
        )
    }

    /// The binary `descriptors` file of device `busid` (device descriptor,
    /// then the active configuration's descriptors).
    pub fn descriptors(&self, busid: &str, raw: &[u8]) -> io::Result<()> {
        let dir = self.root().join(self.devpath(busid)?);
        std::fs::write(dir.join("descriptors"), raw)
    }

    /// Link two ports as USB2/USB3 companions (`peer` both ways).
    pub fn peer(&self, hub_a: &str, port_a: u32, hub_b: &str, port_b: u32) -> io::Result<()> {
        let a = self.make_port(hub_a, port_a)?;
        let b = self.make_port(hub_b, port_b)?;
        self.link(&format!("{a}/peer"), &b)?;
        self.link(&format!("{b}/peer"), &a)
    }

    /// A SCSI disk `disk` (`sdb`, `major:minor` `majmin`) below interface
    /// `intf` of a mass-storage device, with partitions `(name, majmin)`.
    pub fn block_device(
        &self,
        intf: &str,
        disk: &str,
        majmin: &str,
        partitions: &[(&str, &str)],
    ) -> io::Result<()> {
        let ilink = std::fs::read_link(self.root().join("bus/usb/devices").join(intf))?;
        let ipath = ilink.to_string_lossy().trim_start_matches("../").to_owned();
        let dpath = format!("{ipath}/host6/target6:0:0/6:0:0:0/block/{disk}");
        let dir = self.root().join(&dpath);
        std::fs::create_dir_all(dir.join("holders"))?;
        self.attr(&dir, "dev", majmin)?;
        self.attr(&dir, "size", "31260672")?;
        for (p, mm) in partitions {
            let pdir = dir.join(p);
            std::fs::create_dir_all(pdir.join("holders"))?;
            self.attr(&pdir, "dev", mm)?;
            self.attr(&pdir, "partition", p.trim_start_matches(disk))?;
        }
        self.link(&format!("block/{disk}"), &dpath)
    }

    /// Make `holder` (`dm-0`) hold `block` (a disk or `disk/partition`).
    pub fn holder(&self, block: &str, holder: &str) -> io::Result<()> {
        let dir = self.root().join("block").join(block).join("holders");
        std::fs::create_dir_all(&dir)?;
        std::os::unix::fs::symlink(
            format!("../../../devices/virtual/block/{holder}"),
            dir.join(holder),
        )
    }

    /// Append a mount of `source` (`/dev/sdb1`, `major:minor` `majmin`) on
    /// `mount_point` to `proc/self/mountinfo`.
    pub fn mount(&self, source: &str, majmin: &str, mount_point: &str) -> io::Result<()> {
        let path = self.proc_root().join("self/mountinfo");
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        let mp = mount_point.replace(' ', "\\040");
        writeln!(
            f,
            "90 29 {majmin} / {mp} rw,nosuid,nodev,relatime shared:50 - vfat {source} rw,fmask=0022"
        )
    }

    /// Append `source` as active swap to `proc/swaps`.
    pub fn swap(&self, source: &str) -> io::Result<()> {
        let path = self.proc_root().join("swaps");
        let fresh = !path.exists();
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        if fresh {
            writeln!(f, "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority")?;
        }
        writeln!(
            f,
            "{source}                               partition\t1048572\t\t0\t\t-2"
        )
    }

    /// Remove a device (and its `bus/usb/devices` entries), as an unplug.
    pub fn unplug(&self, busid: &str) -> io::Result<()> {
        let devpath = self.devpath(busid)?;
        let devices = self.root().join("bus/usb/devices");
        for entry in std::fs::read_dir(&devices)? {
            let name = entry?.file_name().to_string_lossy().into_owned();
            if name == busid
                || name.starts_with(&format!("{busid}:"))
                || name.starts_with(&format!("{busid}."))
            {
                std::fs::remove_file(devices.join(&name))?;
            }
        }
        std::fs::remove_dir_all(self.root().join(devpath))
    }
}

/// A typical host used by many tests: xHCI `0000:00:14.0` with USB2 bus 1
/// and USB3 bus 2 (companion ports 1..4), a keyboard on `1-1` (usbhid
/// interfaces 0 and 1), a hub on `1-2` with a flash drive on `1-2.1`
/// (mounted `sdb1`), and a USB3 disk on `2-1`.
pub fn typical_host() -> io::Result<SysfsTree> {
    let t = SysfsTree::new()?;
    t.root_hub(1, "0000:00:14.0", "2.00", 4)?;
    t.root_hub(2, "0000:00:14.0", "3.00", 4)?;
    for p in 1..=4 {
        t.peer("usb1", p, "usb2", p)?;
    }
    t.device(
        "1-1",
        &DeviceSpec::new(2, 0x046d, 0xc31c)
            .strings("Logitech", "USB Keyboard", None)
            .speed("1.5", "1.10")
            .intf(IntfSpec::new(3, Some("usbhid")).sub(1, 1))
            .intf(IntfSpec::new(3, Some("usbhid"))),
    )?;
    t.device(
        "1-2",
        &DeviceSpec::hub(3, 0x05e3, 0x0608).strings("GenesysLogic", "USB2.0 Hub", None),
    )?;
    t.device(
        "1-2.1",
        &DeviceSpec::new(4, 0x0781, 0x5567)
            .strings("SanDisk", "Cruzer Blade", Some("4C530001230419117062"))
            .intf(IntfSpec::new(8, Some("usb-storage")).sub(6, 0x50)),
    )?;
    t.block_device("1-2.1:1.0", "sdb", "8:16", &[("sdb1", "8:17")])?;
    t.mount("/dev/sdb1", "8:17", "/media/user/CRUZER")?;
    t.device(
        "2-1",
        &DeviceSpec::new(2, 0x0bc2, 0x2322)
            .strings("Seagate", "Expansion", Some("NAAB1234"))
            .speed("5000", "3.00")
            .intf(IntfSpec::new(8, Some("uas")).sub(6, 0x62)),
    )?;
    t.block_device("2-1:1.0", "sdc", "8:32", &[("sdc1", "8:33")])?;
    Ok(t)
}

/// Raw USB descriptors as a device's sysfs `descriptors` file holds them:
/// the 18-byte device descriptor, then one configuration descriptor and
/// the interface and endpoint descriptors that follow it (every alternate
/// setting). Built in order: `interface(..)` then its `endpoint(..)`s.
#[derive(Debug, Clone)]
pub struct Descriptors {
    raw: Vec<u8>,
}

impl Descriptors {
    /// A device descriptor for `vendor:product` and an empty configuration.
    pub fn new(vendor: u16, product: u16) -> Descriptors {
        let [vl, vh] = vendor.to_le_bytes();
        let [pl, ph] = product.to_le_bytes();
        let mut raw = vec![
            18, 1, 0x00, 0x02, 0xef, 0x02, 0x01, 64, vl, vh, pl, ph, 0x00, 0x01, 1, 2, 3, 1,
        ];
        raw.extend([9, 2, 0, 0, 0, 1, 0, 0x80, 250]);
        Descriptors { raw }
    }

    /// An interface descriptor (`number`, alternate setting `alt`).
    pub fn interface(mut self, number: u8, alt: u8, class: u8, sub: u8, proto: u8) -> Self {
        self.raw
            .extend([9, 4, number, alt, 0, class, sub, proto, 0]);
        self
    }

    /// An endpoint descriptor of the last interface.
    pub fn endpoint(mut self, address: u8, bm_attributes: u8) -> Self {
        self.raw
            .extend([7, 5, address, bm_attributes, 0x00, 0x04, 1]);
        self
    }

    /// The bytes, with the configuration's total length and interface
    /// count filled in.
    pub fn bytes(&self) -> Vec<u8> {
        let mut raw = self.raw.clone();
        let total = u16::try_from(raw.len() - 18).unwrap_or(u16::MAX);
        raw[20..22].copy_from_slice(&total.to_le_bytes());
        let mut numbers: Vec<u8> = Vec::new();
        let mut at = 27;
        while at + 2 < raw.len() {
            if raw[at + 1] == 4 && !numbers.contains(&raw[at + 2]) {
                numbers.push(raw[at + 2]);
            }
            at += usize::from(raw[at].max(1));
        }
        raw[22] = u8::try_from(numbers.len()).unwrap_or(u8::MAX);
        raw
    }
}
