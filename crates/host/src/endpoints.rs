//! Endpoints of a device, to tell whether it needs isochronous transfers
//! (webcams, audio), which PV USB cannot carry.
//!
//! Two sysfs sources, both read:
//!
//! * the device's binary `descriptors` file: the device descriptor, then
//!   the raw descriptors of the active configuration, **every alternate
//!   setting included**. This matters: a UVC camera's or an audio device's
//!   streaming interface has no endpoint in alternate setting 0 (zero
//!   bandwidth while idle); its isochronous endpoints exist only in the
//!   alternate settings a driver selects when streaming;
//! * the `ep_XX/` directories of each interface (`bEndpointAddress`,
//!   `bmAttributes`): the endpoints of the *current* alternate setting
//!   only, used when `descriptors` is absent or unreadable (recordings).
//!
//! `bmAttributes` bits 1..0 give the transfer type: 0 control, 1
//! isochronous, 2 bulk, 3 interrupt (USB 2.0 §9.6.6).

use std::fmt;

use crate::device::Interface;
use crate::sysfs::SysfsPath;

/// A transfer type (`bmAttributes & 3`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transfer {
    /// Control.
    Control,
    /// Isochronous.
    Isochronous,
    /// Bulk.
    Bulk,
    /// Interrupt.
    Interrupt,
}

impl Transfer {
    /// From an endpoint's `bmAttributes`.
    pub fn from_attributes(bm: u8) -> Transfer {
        match bm & 3 {
            0 => Transfer::Control,
            1 => Transfer::Isochronous,
            2 => Transfer::Bulk,
            _ => Transfer::Interrupt,
        }
    }
}

/// One endpoint of the active configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `bInterfaceNumber` of the interface it belongs to.
    pub interface: u8,
    /// `bAlternateSetting` of that interface (0 when read from `ep_XX/`,
    /// which show the current setting).
    pub alternate: u8,
    /// `bEndpointAddress` (bit 7: IN).
    pub address: u8,
    /// Transfer type.
    pub transfer: Transfer,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "endpoint {:02x} of interface {} (alternate setting {})",
            self.address, self.interface, self.alternate
        )
    }
}

const DT_INTERFACE: u8 = 4;
const DT_ENDPOINT: u8 = 5;

/// Every endpoint described in a `descriptors` blob (device descriptor,
/// then configuration descriptors). Malformed input ends the walk: a zero
/// or short length, or a descriptor running past the end. Never panics.
pub fn parse_descriptors(raw: &[u8]) -> Vec<Endpoint> {
    let mut out = Vec::new();
    let (mut interface, mut alternate) = (0u8, 0u8);
    let mut at = 0usize;
    while at + 2 <= raw.len() {
        let len = usize::from(raw[at]);
        if len < 2 || at + len > raw.len() {
            break;
        }
        let d = &raw[at..at + len];
        match d[1] {
            DT_INTERFACE if len >= 4 => {
                interface = d[2];
                alternate = d[3];
            }
            DT_ENDPOINT if len >= 4 => out.push(Endpoint {
                interface,
                alternate,
                address: d[2],
                transfer: Transfer::from_attributes(d[3]),
            }),
            _ => {}
        }
        at += len;
    }
    out
}

/// The endpoints of device `dev`: from `descriptors` when it parses to
/// anything, else from its interfaces' `ep_XX/` directories (an unreadable
/// endpoint is skipped with a debug message).
pub fn read(dev: &SysfsPath, interfaces: &[Interface]) -> Vec<Endpoint> {
    if let Ok(raw) = dev.read_bytes("descriptors") {
        let eps = parse_descriptors(&raw);
        if !eps.is_empty() {
            return eps;
        }
    }
    let mut out = Vec::new();
    for intf in interfaces {
        let dir = dev.join(&intf.name);
        let number = intf
            .name
            .rsplit_once('.')
            .and_then(|(_, n)| n.parse::<u8>().ok())
            .unwrap_or(0);
        let Ok(names) = dir.list() else { continue };
        for ep in names.iter().filter(|n| n.starts_with("ep_")) {
            let epdir = dir.join(ep);
            match (
                epdir.read_hex8("bEndpointAddress"),
                epdir.read_hex8("bmAttributes"),
            ) {
                (Ok(address), Ok(bm)) => out.push(Endpoint {
                    interface: number,
                    alternate: 0,
                    address,
                    transfer: Transfer::from_attributes(bm),
                }),
                (Err(e), _) | (_, Err(e)) => {
                    log::debug!("skipping {}: {e}", epdir.path().display())
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A webcam-like configuration: interface 1 alt 0 has no endpoint,
    /// alt 1 an isochronous IN endpoint; interface 0 an interrupt one.
    #[test]
    fn isochronous_endpoint_in_an_alternate_setting() {
        let mut raw = vec![18, 1, 0, 2, 0xef, 2, 1, 64];
        raw.resize(18, 0);
        raw.extend([9, 2, 0, 0, 2, 1, 0, 0x80, 250]);
        raw.extend([9, 4, 0, 0, 1, 0x0e, 1, 0, 0]);
        raw.extend([7, 5, 0x87, 3, 16, 0, 6]);
        raw.extend([9, 4, 1, 0, 0, 0x0e, 2, 0, 0]);
        raw.extend([9, 4, 1, 1, 1, 0x0e, 2, 0, 0]);
        raw.extend([7, 5, 0x81, 5, 0x80, 0x0b, 1]);
        let eps = parse_descriptors(&raw);
        assert_eq!(eps.len(), 2);
        assert_eq!(eps[0].transfer, Transfer::Interrupt);
        assert_eq!(
            eps[1],
            Endpoint {
                interface: 1,
                alternate: 1,
                address: 0x81,
                transfer: Transfer::Isochronous
            }
        );
        assert_eq!(
            eps[1].to_string(),
            "endpoint 81 of interface 1 (alternate setting 1)"
        );
        // Truncated in the middle of the last endpoint: that one is gone.
        assert_eq!(parse_descriptors(&raw[..raw.len() - 1]).len(), 1);
    }

    #[test]
    fn garbage_never_panics() {
        let mut x: u32 = 0x1234_5678;
        for _ in 0..5000 {
            let len = (x % 64) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|i| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    if i % 7 == 0 { (x % 10) as u8 } else { x as u8 }
                })
                .collect();
            for ep in parse_descriptors(&bytes) {
                let _ = ep.to_string();
            }
        }
        assert!(parse_descriptors(&[0, 5, 7, 5, 1, 1]).is_empty());
    }
}
