//! What vusb manages in a plain VM, read back from QEMU itself: the
//! controllers are the peripherals with ids `xenusb-<devid>` and a USB
//! controller driver; a device belongs to controller N when its
//! `parent_bus` is `/machine/peripheral/xenusb-N/xenusb-N.0`, at the port
//! `qom-get port` reports. No state file can go stale this way, and a VM
//! restarted without the controllers simply has none.

use vusb_qmp::{Qmp, Stream};

use crate::devicemodel::model::devid_of_controller_id;
use crate::devicemodel::{ControllerDriver, DmDevice, EmulatedKind};

/// A controller found in QEMU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmController {
    /// Its devid (from the id `xenusb-<devid>`).
    pub devid: u32,
    /// QEMU driver.
    pub driver: ControllerDriver,
    /// Root-hub ports.
    pub ports: u32,
    /// The device on each port, index 0 = port 1.
    pub slots: Vec<Option<VmDevice>>,
}

/// A USB device found on one of vusb's controllers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmDevice {
    /// QOM id.
    pub id: String,
    /// What it is, when vusb knows the driver.
    pub device: Option<DmDevice>,
    /// QEMU driver.
    pub driver: String,
}

impl VmController {
    /// The device on `port` (1-based), if any.
    pub fn at(&self, port: u32) -> Option<&VmDevice> {
        let i = usize::try_from(port).ok()?.checked_sub(1)?;
        self.slots.get(i)?.as_ref()
    }

    /// The first free port.
    pub fn first_free(&self) -> Option<u32> {
        self.slots
            .iter()
            .position(Option::is_none)
            .map(|i| i as u32 + 1)
    }
}

/// Read the controllers (by devid) and their devices from QEMU.
pub fn read<S: Stream>(qmp: &mut Qmp<S>) -> Result<Vec<VmController>, vusb_qmp::Error> {
    let peripherals = qmp.peripherals()?;
    let mut ctrls = Vec::new();
    for p in &peripherals {
        let (Some(devid), Some(driver)) = (
            devid_of_controller_id(&p.id),
            ControllerDriver::from_name(&p.driver),
        ) else {
            continue;
        };
        let ports = match driver.fixed_ports() {
            Some(n) => n,
            None => {
                let path = format!("/machine/peripheral/{}", p.id);
                let p2 = qmp.qom_get(&path, "p2")?.as_u64().unwrap_or(0);
                let p3 = qmp.qom_get(&path, "p3")?.as_u64().unwrap_or(0);
                p2.max(p3).min(15) as u32
            }
        };
        ctrls.push(VmController {
            devid,
            driver,
            ports,
            slots: vec![None; ports as usize],
        });
    }
    ctrls.sort_by_key(|c| c.devid);
    for p in &peripherals {
        if !(p.driver == "usb-host"
            || EmulatedKind::from_qemu_driver(&p.driver).is_some()
            || p.driver.starts_with("usb-"))
        {
            continue;
        }
        let path = format!("/machine/peripheral/{}", p.id);
        let bus = qmp.qom_get(&path, "parent_bus")?;
        let Some(devid) = bus.as_str().and_then(devid_of_bus_path) else {
            continue;
        };
        let port = qmp.qom_get(&path, "port")?;
        let Some(port) = port.as_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Some(ctrl) = ctrls.iter_mut().find(|c| c.devid == devid) else {
            continue;
        };
        let device = describe(qmp, &path, &p.driver)?;
        if let Some(slot) = port
            .checked_sub(1)
            .and_then(|i| ctrl.slots.get_mut(i as usize))
        {
            *slot = Some(VmDevice {
                id: p.id.clone(),
                device,
                driver: p.driver.clone(),
            });
        }
    }
    Ok(ctrls)
}

/// PCIe root ports QEMU can hot-plug a controller into.
const ROOT_PORTS: [&str; 2] = ["pcie-root-port", "ioh3420"];

/// The first cold-plugged PCIe root port (by id) with nothing behind it:
/// where a controller goes on q35, whose `pcie.0` cannot hot-plug. A port's
/// bus `/machine/peripheral/<id>/<id>` lists its devices as `child[N]`.
pub fn free_root_port<S: Stream>(qmp: &mut Qmp<S>) -> Result<Option<String>, vusb_qmp::Error> {
    let mut ports: Vec<String> = qmp
        .peripherals()?
        .into_iter()
        .filter(|p| ROOT_PORTS.contains(&p.driver.as_str()))
        .map(|p| p.id)
        .collect();
    ports.sort();
    for id in ports {
        let bus = qmp.qom_list(&format!("/machine/peripheral/{id}/{id}"))?;
        if !bus.iter().any(|(name, _)| name.starts_with("child[")) {
            return Ok(Some(id));
        }
    }
    Ok(None)
}

/// `/machine/peripheral/xenusb-N/xenusb-N.0` → N.
fn devid_of_bus_path(path: &str) -> Option<u32> {
    let rest = path.strip_prefix("/machine/peripheral/")?;
    let (ctrl, bus) = rest.split_once('/')?;
    let devid = devid_of_controller_id(ctrl)?;
    (bus == format!("{ctrl}.0")).then_some(devid)
}

fn describe<S: Stream>(
    qmp: &mut Qmp<S>,
    path: &str,
    driver: &str,
) -> Result<Option<DmDevice>, vusb_qmp::Error> {
    if let Some(k) = EmulatedKind::from_qemu_driver(driver) {
        return Ok(Some(DmDevice::Emulated(k)));
    }
    if driver != "usb-host" {
        return Ok(None);
    }
    // QEMU's properties are uint32; vusb's ids are u16 and bus/address
    // u8 (as libxl's): a value out of range is reported, not truncated.
    let mut num = |prop: &str, max: u64| -> Result<u64, vusb_qmp::Error> {
        let v = qmp.qom_get(path, prop)?.as_u64().unwrap_or(0);
        if v > max {
            return Err(vusb_qmp::Error::UnexpectedReturn {
                command: format!("qom-get {path} {prop}"),
                detail: format!("{v} is above {max}"),
            });
        }
        Ok(v)
    };
    let (vendor, product) = (num("vendorid", 0xffff)?, num("productid", 0xffff)?);
    let (bus, addr) = (num("hostbus", 0xff)?, num("hostaddr", 0xff)?);
    let hostport = qmp.qom_get(path, "hostport")?;
    let hostport = hostport.as_str().unwrap_or("");
    Ok(Some(if vendor != 0 || product != 0 {
        DmDevice::HostIds {
            vendor: u16::try_from(vendor).unwrap_or_default(),
            product: u16::try_from(product).unwrap_or_default(),
        }
    } else if !hostport.is_empty() {
        DmDevice::HostPort {
            bus: u8::try_from(bus).unwrap_or_default(),
            path: hostport.to_string(),
        }
    } else {
        DmDevice::HostAddr {
            bus: u8::try_from(bus).unwrap_or_default(),
            addr: u8::try_from(addr).unwrap_or_default(),
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::devid_of_bus_path;

    #[test]
    fn bus_paths() {
        assert_eq!(
            devid_of_bus_path("/machine/peripheral/xenusb-3/xenusb-3.0"),
            Some(3)
        );
        assert_eq!(devid_of_bus_path("/machine/peripheral/xhci0/xhci0.0"), None);
        assert_eq!(
            devid_of_bus_path("/machine/peripheral/xenusb-3/xenusb-4.0"),
            None
        );
    }
}
