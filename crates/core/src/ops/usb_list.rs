//! `usb-list`: a guest's controllers and the devices on their ports, in
//! xl 4.17's exact text (reference §1.6) or as JSON (`docs/cli-json.md`).
//!
//! Matches xl byte for byte: the header is repeated before every
//! controller (in `/libxl` directory order), columns `%-6s %-12s %-3s %-5s
//! %-7s %-5s`, rows keep the trailing padding, bus and device numbers are
//! printed in **hexadecimal** `%03x` (D3, kept for compatibility), a
//! controller that cannot be read prints its header only, `state` is the
//! frontend's state (-1 when absent, 0 for devicemodel), and a port whose
//! device left the host shows as empty, as in xl.
//!
//! The JSON form additionally names the busid of every occupied port, even
//! when the device left the host (then `hostbus`/`hostaddr` are null).
//!
//! vusb extension, the truth about each port (`"state"` in JSON, text
//! unchanged): `empty`, `attached`, `emulated`, `gone` (the port still
//! names a device that left the host) or `replugged` (a device is at that
//! busid, but not the one given to the guest: it was enumerated anew —
//! another address than vusb's assignment record holds — or, on a `pv`
//! controller, its interfaces are on host drivers rather than usbback).
//! One read of the record per occupied port, so the cost stays flat.
//!
//! vusb extension: a devicemodel port holding one of QEMU's emulated
//! devices (`/vusb/emulated`, see [`crate::emulated`]) prints
//! `  Port N: Emulated tablet` (as `usb-list --qmp` does for plain QEMU
//! VMs; xl would print the port as empty) and has `"emulated": "tablet"`
//! in JSON. Only devicemodel controllers cost the extra `directory`.

use serde::Serialize;
use vusb_host::BusId;
use vusb_xenstore::{DomId, TxId, Xenstore};

use super::common::OpEnv;
use super::hostdev::find_busid;
use crate::Result;
use crate::domain::Domain;
use crate::layout::UsbCtrlType;
use crate::layout::read::{frontend_state, list_devids, read_controller, read_port};

/// One port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PortEntry {
    /// 1-based port number.
    pub port: u32,
    /// The busid stored in the port node, `null` when free.
    pub busid: Option<String>,
    /// sysfs `busnum` of that device now, `null` when free or gone.
    pub hostbus: Option<u8>,
    /// sysfs `devnum` of that device now, `null` when free or gone.
    pub hostaddr: Option<u8>,
    /// The emulated device on this port (`tablet`, `mouse`, `keyboard`;
    /// devicemodel controllers only), `null` otherwise.
    pub emulated: Option<String>,
    /// `empty`, `attached`, `emulated`, `gone` or `replugged` (module doc).
    pub state: &'static str,
}

/// The truth about an occupied port (see the module doc).
fn port_state<X: Xenstore + ?Sized>(
    xs: &X,
    ctrl: &crate::layout::Controller,
    busid: &BusId,
    dev: Option<&vusb_host::UsbDevice>,
) -> &'static str {
    let Some(dev) = dev else {
        return "gone";
    };
    match crate::assign::lookup(xs, TxId::NONE, busid) {
        Ok(Some(rec)) if rec.hostbus != dev.busnum || rec.hostaddr != dev.devnum => {
            return "replugged";
        }
        Ok(_) => {}
        Err(e) => log::debug!("{busid}: assignment record unreadable: {e}"),
    }
    let on_host = |i: &vusb_host::Interface| {
        i.driver
            .as_deref()
            .is_some_and(|d| d != vusb_host::bind::USBBACK)
    };
    if ctrl.ctype == UsbCtrlType::Pv && dev.interfaces.iter().any(on_host) {
        return "replugged";
    }
    "attached"
}

/// One controller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CtrlEntry {
    /// Controller devid.
    pub devid: u32,
    /// `pv`, `qusb` or `devicemodel`; `null` when the controller could not
    /// be read (xl prints only the header then).
    #[serde(rename = "type")]
    pub ctype: Option<String>,
    /// Backend domain (always 0 for controllers xl or vusb create).
    pub backend_domid: DomId,
    /// Frontend xenbus state (-1 absent; 0 for devicemodel).
    pub state: i64,
    /// USB version.
    pub version: u32,
    /// Ports, 1..=num-ports.
    pub ports: Vec<PortEntry>,
}

/// Everything `usb-list` shows for a domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UsbList {
    /// The domain.
    pub domid: DomId,
    /// Its controllers in xenstore order.
    pub controllers: Vec<CtrlEntry>,
}

/// Gather the listing.
pub fn usb_list<X: Xenstore + ?Sized>(env: &OpEnv<'_, X>, dom: &Domain) -> Result<UsbList> {
    let xs = env.xs;
    let mut controllers = Vec::new();
    for devid in list_devids(xs, TxId::NONE, dom.domid)? {
        let ctrl = match read_controller(xs, TxId::NONE, dom.domid, devid) {
            Ok(Some(c)) => c,
            Ok(None) | Err(_) => {
                controllers.push(CtrlEntry {
                    devid,
                    ctype: None,
                    backend_domid: 0,
                    state: -1,
                    version: 0,
                    ports: Vec::new(),
                });
                continue;
            }
        };
        let state = frontend_state(xs, TxId::NONE, &ctrl)?;
        let emu = if ctrl.ctype == UsbCtrlType::DeviceModel {
            crate::emulated::list(xs, TxId::NONE, dom.domid, devid)?
        } else {
            Vec::new()
        };
        let mut ports = Vec::with_capacity(ctrl.ports as usize);
        for port in 1..=ctrl.ports {
            let busid = read_port(xs, TxId::NONE, &ctrl, port)?;
            // A port node holding no busid names no host device: "gone".
            let parsed = busid.as_deref().and_then(|b| BusId::parse(b).ok());
            let dev = parsed.as_ref().and_then(|b| find_busid(env.paths, b));
            let emulated = match busid {
                Some(_) => None,
                None => emu
                    .iter()
                    .find(|(p, _)| *p == port)
                    .map(|(_, k)| k.spec_name().to_owned()),
            };
            let state = match (&busid, &emulated) {
                (Some(_), _) => match &parsed {
                    Some(b) => port_state(xs, &ctrl, b, dev.as_ref()),
                    None => "gone",
                },
                (None, Some(_)) => "emulated",
                (None, None) => "empty",
            };
            ports.push(PortEntry {
                state,
                port,
                hostbus: dev.as_ref().map(|d| d.busnum),
                hostaddr: dev.as_ref().map(|d| d.devnum),
                busid,
                emulated,
            });
        }
        controllers.push(CtrlEntry {
            devid,
            ctype: Some(ctrl.ctype.as_str().to_owned()),
            backend_domid: 0,
            state,
            version: ctrl.version,
            ports,
        });
    }
    Ok(UsbList {
        domid: dom.domid,
        controllers,
    })
}

/// xl's text for a listing.
pub fn format_xl(list: &UsbList) -> String {
    let mut out = String::new();
    for c in &list.controllers {
        out.push_str(&format!(
            "{:<6} {:<12} {:<3} {:<5} {:<7} {:<5}\n",
            "Devid", "Type", "BE", "state", "usb-ver", "ports"
        ));
        let Some(t) = &c.ctype else {
            continue;
        };
        out.push_str(&format!(
            "{:<6} {:<12} {:<3} {:<5} {:<7} {:<5}\n",
            c.devid,
            t,
            c.backend_domid,
            c.state,
            c.version,
            c.ports.len()
        ));
        for p in &c.ports {
            match (p.hostbus, p.hostaddr, &p.emulated) {
                (Some(b), Some(a), _) => out.push_str(&format!(
                    "  Port {}: Bus {:03x} Device {:03x}\n",
                    p.port, b, a
                )),
                (_, _, Some(k)) => out.push_str(&format!("  Port {}: Emulated {k}\n", p.port)),
                _ => out.push_str(&format!("  Port {}:\n", p.port)),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_xls() {
        let list = UsbList {
            domid: 1,
            controllers: vec![CtrlEntry {
                devid: 0,
                ctype: Some("pv".into()),
                backend_domid: 0,
                state: 4,
                version: 2,
                ports: vec![
                    PortEntry {
                        port: 1,
                        busid: Some("1-2".into()),
                        hostbus: Some(1),
                        hostaddr: Some(10),
                        emulated: None,
                        state: "attached",
                    },
                    PortEntry {
                        port: 2,
                        busid: None,
                        hostbus: None,
                        hostaddr: None,
                        emulated: None,
                        state: "empty",
                    },
                ],
            }],
        };
        assert_eq!(
            format_xl(&list),
            "Devid  Type         BE  state usb-ver ports\n\
             0      pv           0   4     2       2    \n  Port 1: Bus 001 Device 00a\n  Port 2:\n"
        );
    }
}
