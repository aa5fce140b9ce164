//! `usb-list` output in xl's format (reference §1.6): the header repeated
//! per controller, type `devicemodel`, BE 0, state 0, and host devices as
//! ` Bus %03x Device %03x` (hexadecimal, as xl). Devices xl cannot show get
//! a vusb extension on the port line: ` Vendor vvvv Product pppp`,
//! ` Bus %03x Port <path>`, ` Emulated <tablet|mouse|keyboard>`, or
//! ` <driver> <id>` for anything else. A plain VM's controller also names
//! its model in a last column (`model`, libvirt's name as `model=` takes
//! it): xl has no such VMs, so no xl output to stay identical to.
//! [`json`] is the same listing for `usb-list --json` (`docs/cli-json.md`).

use std::fmt::Write as _;

use super::inventory::VmController;
use crate::devicemodel::DmDevice;

/// Render the controllers as `xl usb-list` does.
pub fn render(ctrls: &[VmController]) -> String {
    let mut out = String::new();
    for c in ctrls {
        let _ = writeln!(
            out,
            "{:<6} {:<12} {:<3} {:<5} {:<7} {:<5} model",
            "Devid", "Type", "BE", "state", "usb-ver", "ports"
        );
        let _ = writeln!(
            out,
            "{:<6} {:<12} {:<3} {:<5} {:<7} {:<5} {}",
            c.devid,
            "devicemodel",
            0,
            0,
            c.driver.usb_version(),
            c.ports,
            c.driver.libvirt_name()
        );
        for (i, slot) in c.slots.iter().enumerate() {
            let _ = write!(out, "  Port {}:", i + 1);
            if let Some(dev) = slot {
                match &dev.device {
                    Some(DmDevice::HostAddr { bus, addr }) => {
                        let _ = write!(out, " Bus {bus:03x} Device {addr:03x}");
                    }
                    Some(DmDevice::HostIds { vendor, product }) => {
                        let _ = write!(out, " Vendor {vendor:04x} Product {product:04x}");
                    }
                    Some(DmDevice::HostPort { bus, path }) => {
                        let _ = write!(out, " Bus {bus:03x} Port {path}");
                    }
                    Some(DmDevice::Emulated(k)) => {
                        let _ = write!(out, " Emulated {}", k.spec_name());
                    }
                    None => {
                        let _ = write!(out, " {} {}", dev.driver, dev.id);
                    }
                }
            }
            out.push('\n');
        }
    }
    out
}

/// The controllers as JSON: the keys of the Xen `usb-list --json` where
/// they apply, plus `model` and what QEMU knows of each device.
pub fn json(ctrls: &[VmController]) -> serde_json::Value {
    use serde_json::{Value, json};
    let controllers: Vec<Value> = ctrls
        .iter()
        .map(|c| {
            let ports: Vec<Value> = c
                .slots
                .iter()
                .enumerate()
                .map(|(i, slot)| {
                    let mut p = json!({
                        "port": i + 1,
                        "hostbus": null,
                        "hostaddr": null,
                        "vendor_id": null,
                        "product_id": null,
                        "host_port": null,
                        "emulated": null,
                        "qemu_id": slot.as_ref().map(|d| d.id.clone()),
                        "qemu_driver": slot.as_ref().map(|d| d.driver.clone()),
                    });
                    match slot.as_ref().and_then(|d| d.device.as_ref()) {
                        Some(DmDevice::HostAddr { bus, addr }) => {
                            p["hostbus"] = json!(bus);
                            p["hostaddr"] = json!(addr);
                        }
                        Some(DmDevice::HostIds { vendor, product }) => {
                            p["vendor_id"] = json!(format!("{vendor:04x}"));
                            p["product_id"] = json!(format!("{product:04x}"));
                        }
                        Some(DmDevice::HostPort { bus, path }) => {
                            p["hostbus"] = json!(bus);
                            p["host_port"] = json!(path);
                        }
                        Some(DmDevice::Emulated(k)) => p["emulated"] = json!(k.spec_name()),
                        None => {}
                    }
                    p
                })
                .collect();
            json!({
                "devid": c.devid,
                "type": "devicemodel",
                "model": c.driver.libvirt_name(),
                "qemu_driver": c.driver.qemu_name(),
                "version": c.driver.usb_version(),
                "ports": ports,
            })
        })
        .collect();
    json!({ "controllers": controllers })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devicemodel::{ControllerDriver, EmulatedKind};
    use crate::qemu_vm::inventory::VmDevice;

    #[test]
    fn xl_format() {
        let mut slots = vec![None; 4];
        slots[1] = Some(VmDevice {
            id: "xenusb-1-3".into(),
            device: Some(DmDevice::HostAddr { bus: 1, addr: 10 }),
            driver: "usb-host".into(),
        });
        slots[2] = Some(VmDevice {
            id: "xenusb-0-3-tablet".into(),
            device: Some(DmDevice::Emulated(EmulatedKind::Tablet)),
            driver: "usb-tablet".into(),
        });
        let c = VmController {
            devid: 1,
            driver: ControllerDriver::NecXhci,
            ports: 4,
            slots,
        };
        assert_eq!(
            render(&[c]),
            "Devid  Type         BE  state usb-ver ports model\n\
             1      devicemodel  0   0     3       4     nec-xhci\n  Port 1:\n  Port 2: Bus 001 Device 00a\n  Port 3: Emulated tablet\n  Port 4:\n"
        );
    }
}
