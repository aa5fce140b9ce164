//! The simulated host's USB devices: a sysfs tree of plain files and
//! symlinks under `<sysfs_root>/bus/usb` with root hubs, recorded devices
//! and the drivers `usb`, `hub`, `usb-storage`, `usbhid` and `usbback`
//! (each with `bind`/`unbind` files and links to its interfaces).
//!
//! It has the devices, ids, addresses, interfaces and bindings of the
//! xl-peer fake host's fixture, so the real `xl` and vusb see identical
//! devices: bus 1 address 2 is a USB stick (`1-1`, one mass-storage
//! interface), bus 1 address 3 a wireless receiver (`1-2`, three HID
//! interfaces), further devices are generic mass-storage devices `B-P`
//! (100 per bus) for scale runs. Added to it (nothing `xl` reads):
//! manufacturer names, `devpath`, sub-class/protocol and `bcdDevice`.
//!
//! Writing to the `bind`/`unbind` files of a plain-file tree does nothing
//! by itself; [`super::bindemu`] plays the kernel's part for `vusb sim`.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use super::Error;

/// The drivers of the fixture.
pub const DRIVERS: [&str; 5] = ["usb", "hub", "usb-storage", "usbhid", "usbback"];

/// One recorded device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixtureDevice {
    /// Bus number.
    pub bus: u8,
    /// Port on the root hub (busid `bus-port`).
    pub port: u8,
    /// Device address (`devnum`).
    pub addr: u8,
    /// `idVendor`.
    pub vendor: &'static str,
    /// `idProduct`.
    pub product_id: String,
    /// `manufacturer` string.
    pub manufacturer: &'static str,
    /// `product` string.
    pub product: String,
    /// Interfaces: (class, bound driver).
    pub interfaces: Vec<(u8, &'static str)>,
}

impl FixtureDevice {
    /// Its bus id, `B-P`.
    pub fn busid(&self) -> String {
        format!("{}-{}", self.bus, self.port)
    }
}

/// `(hostbus, hostaddr)` of fixture device `i` (0-based).
pub fn usb_addr(i: usize) -> (u8, u8) {
    (1 + (i / 100) as u8, 2 + (i % 100) as u8)
}

/// The first `count` fixture devices.
pub fn devices(count: usize) -> Vec<FixtureDevice> {
    (0..count)
        .map(|i| {
            let bus = 1 + (i / 100) as u8;
            let port = 1 + (i % 100) as u8;
            let ((vendor, manufacturer), product_id, product, interfaces): (
                _,
                String,
                String,
                Vec<(u8, &str)>,
            ) = match i {
                0 => (
                    ("0781", "SanDisk"),
                    "5567".into(),
                    "Cruzer Blade".into(),
                    vec![(8, "usb-storage")],
                ),
                1 => (
                    ("046d", "Logitech"),
                    "c52b".into(),
                    "USB Receiver".into(),
                    vec![(3, "usbhid"), (3, "usbhid"), (3, "usbhid")],
                ),
                _ => (
                    ("1234", "vusb fixture"),
                    format!("{i:04x}"),
                    format!("Fixture device {i}"),
                    vec![(8, "usb-storage")],
                ),
            };
            FixtureDevice {
                bus,
                port,
                addr: port + 1,
                vendor,
                manufacturer,
                product_id,
                product,
                interfaces,
            }
        })
        .collect()
}

fn write(path: &Path, content: &str) -> Result<(), Error> {
    fs::write(path, content).map_err(|source| Error::WriteFixture {
        path: path.to_owned(),
        source,
    })
}

fn mkdir(path: &Path) -> Result<(), Error> {
    fs::create_dir_all(path).map_err(|source| Error::WriteFixture {
        path: path.to_owned(),
        source,
    })
}

fn link(target: &str, at: &Path) -> Result<(), Error> {
    symlink(target, at).map_err(|source| Error::WriteFixture {
        path: at.to_owned(),
        source,
    })
}

/// Builds the tree.
struct Tree {
    devs: PathBuf,
    drvs: PathBuf,
}

impl Tree {
    fn bind(&self, name: &str, driver: &str) -> Result<(), Error> {
        link(
            &format!("../../drivers/{driver}"),
            &self.devs.join(name).join("driver"),
        )?;
        link(
            &format!("../../devices/{name}"),
            &self.drvs.join(driver).join(name),
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn device(
        &self,
        busid: &str,
        bus: u8,
        addr: u8,
        class: u8,
        ids: (&str, &str),
        names: (&str, &str),
        interfaces: &[(u8, &str)],
    ) -> Result<(), Error> {
        let p = self.devs.join(busid);
        mkdir(&p)?;
        let attrs = [
            ("busnum", bus.to_string()),
            ("devnum", addr.to_string()),
            (
                "devpath",
                busid.split_once('-').map_or("0", |(_, d)| d).to_owned(),
            ),
            ("bDeviceClass", format!("{class:02x}")),
            ("bDeviceSubClass", "00".to_owned()),
            ("bDeviceProtocol", "00".to_owned()),
            ("idVendor", ids.0.to_owned()),
            ("idProduct", ids.1.to_owned()),
            ("bcdDevice", "0100".to_owned()),
            ("product", names.1.to_owned()),
            ("manufacturer", names.0.to_owned()),
            ("speed", "480".to_owned()),
            ("version", " 2.00".to_owned()),
            ("bNumInterfaces", format!(" {}", interfaces.len())),
            ("bConfigurationValue", "1".to_owned()),
        ];
        for (k, v) in attrs {
            write(&p.join(k), &format!("{v}\n"))?;
        }
        self.bind(busid, "usb")?;
        for (i, (iclass, driver)) in interfaces.iter().enumerate() {
            let intf = format!("{busid}:1.{i}");
            let q = self.devs.join(&intf);
            mkdir(&q)?;
            write(&q.join("bInterfaceClass"), &format!("{iclass:02x}\n"))?;
            write(&q.join("bInterfaceSubClass"), "00\n")?;
            write(&q.join("bInterfaceProtocol"), "00\n")?;
            write(&q.join("bInterfaceNumber"), &format!("{i:02x}\n"))?;
            if !driver.is_empty() {
                self.bind(&intf, driver)?;
            }
        }
        Ok(())
    }
}

/// Write the fixture with `count` devices under `sysfs_root/bus/usb`,
/// replacing any previous one.
pub fn write_fixture(sysfs_root: &Path, count: usize) -> Result<(), Error> {
    let usb = sysfs_root.join("bus/usb");
    if usb.exists() {
        fs::remove_dir_all(&usb).map_err(|source| Error::WriteFixture {
            path: usb.clone(),
            source,
        })?;
    }
    let tree = Tree {
        devs: usb.join("devices"),
        drvs: usb.join("drivers"),
    };
    mkdir(&tree.devs)?;
    for d in DRIVERS {
        let dir = tree.drvs.join(d);
        mkdir(&dir)?;
        write(&dir.join("bind"), "")?;
        write(&dir.join("unbind"), "")?;
    }
    let nbus = 1 + count.saturating_sub(1) / 100;
    for b in 1..=nbus as u8 {
        tree.device(
            &format!("usb{b}"),
            b,
            1,
            9,
            ("1d6b", "0002"),
            ("Linux ehci_hcd", "EHCI Host Controller"),
            &[(9, "hub")],
        )?;
    }
    for d in devices(count) {
        tree.device(
            &d.busid(),
            d.bus,
            d.addr,
            0,
            (d.vendor, &d.product_id),
            (d.manufacturer, &d.product),
            &d.interfaces,
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn fixture_has_the_recorded_devices_and_links() {
        let dir = tempfile::tempdir().unwrap();
        write_fixture(dir.path(), 3).unwrap();
        let devs = dir.path().join("bus/usb/devices");
        assert_eq!(fs::read_to_string(devs.join("1-2/devnum")).unwrap(), "3\n");
        assert_eq!(
            fs::read_to_string(devs.join("usb1/bDeviceClass")).unwrap(),
            "09\n"
        );
        let l = fs::read_link(devs.join("1-2:1.2/driver")).unwrap();
        assert_eq!(l, PathBuf::from("../../drivers/usbhid"));
        assert!(dir.path().join("bus/usb/drivers/usbhid/1-2:1.0").exists());
        assert_eq!(usb_addr(1), (1, 3));
        assert_eq!(devices(3)[2].busid(), "1-3");
    }
}
