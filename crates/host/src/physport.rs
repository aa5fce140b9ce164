//! The physical-port identity of a device: which connector of which host
//! controller it is plugged into, the same for the USB2 and the USB3 half
//! of one connector and unchanged when bus numbers change.
//!
//! A USB3 connector is two ports to the kernel: one on a USB2 hub and one
//! on a SuperSpeed hub (the two root hubs of an xHCI, or the two halves of
//! an external USB3 hub). The kernel links the two with a `peer` symlink in
//! each port's directory (`…/usb1/1-0:1.0/usb1-port3/peer` →
//! `…/usb2/2-0:1.0/usb2-port1`). A device's `port` link names the port it
//! is plugged into.
//!
//! Format, written `ANCHOR/CHAIN`:
//!
//! * `ANCHOR` is the sysfs name of the host controller, the directory that
//!   holds the root hub (`…/0000:00:14.0/usb1` → `0000:00:14.0`, the PCI
//!   address; a platform controller's name otherwise);
//! * `CHAIN` is the port numbers from the root hub down, separated by `.`,
//!   each taken **on the USB2 half** of its connector: a port with a peer
//!   on a USB2 hub is replaced by that peer before its number is read, and
//!   the walk continues up from the USB2 hub. A port that has no USB2 half
//!   (a SuperSpeed port without a `peer` link) is written `s<N>`, so it
//!   cannot be taken for the USB2 port with the same number;
//! * a root hub's own identity is the anchor alone.
//!
//! `0000:00:14.0/3` is the connector whose USB2 half is root port 3 (high
//! speed: `1-3`; SuperSpeed: `2-1` when `usb2-port1` peers `usb1-port3`);
//! `0000:00:14.0/3.2` is port 2 of a hub in that connector, whichever half
//! the device uses.
//!
//! Without `port` links (a hand-made tree, a kernel older than 4.x) the
//! busid's chain is used as is: the two halves then differ. Without a known
//! controller (no `devices/…` link) the anchor is `usbN`, which names the
//! bus, not the controller.

use std::path::Path;

use crate::device::BusId;
use crate::parse;
use crate::sysfs::{SysfsPath, resolve_relative};

/// Speed from which a hub is SuperSpeed (kbit/s): 5 Gbit/s.
const SUPERSPEED_KBPS: u32 = 5_000_000;

/// The physical port of the device at `devpath` (components below the
/// sysfs root, as [`crate::UsbDevice::devpath`]), named `busid`, on
/// `controller` (the anchor is `usbN` when that is unknown).
pub fn of_device(
    sysfs_root: &Path,
    busid: &BusId,
    devpath: &[String],
    controller: Option<&str>,
) -> String {
    let anchor = controller
        .map(str::to_owned)
        .unwrap_or_else(|| format!("usb{}", busid.bus()));
    if busid.is_root_hub() {
        return anchor;
    }
    if !devpath.is_empty()
        && let Some((anchor, chain)) = walk(sysfs_root, devpath)
    {
        return format!("{anchor}/{chain}");
    }
    log::debug!("{busid}: no port links; physical port from the busid");
    format!("{anchor}/{}", busid.ports())
}

/// Walk from the device up to the root hub through `port` links, taking
/// each connector's USB2 half. `None` when a link is missing.
fn walk(root: &Path, devpath: &[String]) -> Option<(String, String)> {
    let mut steps: Vec<String> = Vec::new();
    let mut cur: Vec<String> = devpath.to_vec();
    // Bounded: USB allows 7 tiers; a looping tree must not hang us.
    for _ in 0..16 {
        let name = cur.last()?.clone();
        if name.starts_with("usb") && BusId::parse(&name).is_ok_and(|b| b.is_root_hub()) {
            let anchor = cur.get(cur.len().checked_sub(2)?)?.clone();
            if anchor == "devices" {
                return None;
            }
            steps.reverse();
            return Some((anchor, steps.join(".")));
        }
        let dir = root.join(cur.join("/"));
        let target = std::fs::read_link(dir.join("port")).ok()?;
        let port = resolve_relative(&dir, &target, root);
        let (port, superspeed_only) = usb2_half(root, port);
        let number = port_number(port.last()?)?;
        steps.push(if superspeed_only {
            format!("s{number}")
        } else {
            number.to_string()
        });
        // `<hub>/<hub interface>/<hub>-portN` → `<hub>`.
        cur = port[..port.len().checked_sub(2)?].to_vec();
    }
    None
}

/// The USB2 half of a port (the port itself or its peer), and whether the
/// port has no USB2 half at all (a SuperSpeed port without peer).
fn usb2_half(root: &Path, port: Vec<String>) -> (Vec<String>, bool) {
    let dir = root.join(port.join("/"));
    let peer = std::fs::read_link(dir.join("peer"))
        .ok()
        .map(|t| resolve_relative(&dir, &t, root))
        .filter(|p| p.len() > 2);
    let this_ss = hub_of_is_superspeed(root, &port);
    let Some(peer) = peer else {
        return (port, this_ss == Some(true));
    };
    match (this_ss, hub_of_is_superspeed(root, &peer)) {
        (Some(true), Some(false)) => (peer, false),
        (Some(false), Some(true)) => (port, false),
        (a, b) => {
            // Both halves look alike (unreadable speeds): a choice that
            // is the same from either side (by path, so it may change
            // with the bus numbers; never seen on a real kernel).
            log::debug!(
                "cannot tell the USB2 half of {} ({a:?}) and {} ({b:?})",
                port.join("/"),
                peer.join("/")
            );
            (std::cmp::min(port, peer), false)
        }
    }
}

/// Whether the hub owning the port directory `port` is SuperSpeed: its
/// `speed` (5000 and up), else its `bDeviceProtocol` (03: SuperSpeed hub).
fn hub_of_is_superspeed(root: &Path, port: &[String]) -> Option<bool> {
    let hub = port.get(..port.len().checked_sub(2)?)?;
    let dir = SysfsPath::new(root.join(hub.join("/")));
    if let Ok(Some(kbps)) = dir.read_speed_kbps("speed") {
        return Some(kbps >= SUPERSPEED_KBPS);
    }
    let text = dir.read_text("bDeviceProtocol").ok()?;
    parse::hex_u32(&text, 2).map(|p| p == 3)
}

/// `usb1-port3` or `1-2-port4` → the number after `-port`.
fn port_number(name: &str) -> Option<u32> {
    let (_, n) = name.rsplit_once("-port")?;
    parse::decimal_u32(n).filter(|n| *n > 0)
}

/// Whether `port` (a device's physical port) is matched by the written
/// `pattern`: equal (case-insensitively: PCI addresses are hex), or, when
/// `below`, strictly below it (`A/2` covers `A/2.1`, `A/2.1.4`; an
/// anchor-only pattern covers every port of that controller).
pub fn matches(port: &str, pattern: &str, below: bool) -> bool {
    if !below {
        return port.eq_ignore_ascii_case(pattern);
    }
    let sep = if pattern.contains('/') { '.' } else { '/' };
    port.len() > pattern.len() + 1
        && port.is_char_boundary(pattern.len())
        && port[..pattern.len()].eq_ignore_ascii_case(pattern)
        && port[pattern.len()..].starts_with(sep)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subtree_matching() {
        assert!(matches("0000:00:14.0/2", "0000:00:14.0/2", false));
        assert!(matches("0000:00:1D.0/2", "0000:00:1d.0/2", false));
        assert!(!matches("0000:00:14.0/2.1", "0000:00:14.0/2", false));
        assert!(matches("0000:00:14.0/2.1", "0000:00:14.0/2", true));
        assert!(matches("0000:00:14.0/2.1.4", "0000:00:14.0/2", true));
        assert!(!matches("0000:00:14.0/2", "0000:00:14.0/2", true));
        assert!(!matches("0000:00:14.0/21", "0000:00:14.0/2", true));
        assert!(!matches("0000:00:14.0/s2.1", "0000:00:14.0/2", true));
        assert!(matches("0000:00:14.0/2", "0000:00:14.0", true));
        assert!(matches("0000:00:14.0/s5.1", "0000:00:14.0", true));
        assert!(!matches("0000:00:14.0", "0000:00:14.0", true));
        assert!(!matches("0000:00:14.1/2", "0000:00:14.0", true));
    }

    #[test]
    fn port_numbers() {
        assert_eq!(port_number("usb1-port3"), Some(3));
        assert_eq!(port_number("1-2.4-port12"), Some(12));
        assert_eq!(port_number("usb1-port0"), None);
        assert_eq!(port_number("usb1"), None);
    }
}
