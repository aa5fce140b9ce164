//! The legacy HVM `usbdevice=` strings (xl.cfg(5), reference §2.5). xl and
//! libxl pass them to QEMU's `-usbdevice` untouched; vusb reads them into a
//! typed form so it can explain them and, for `host:` forms, find the
//! device. Unknown forms are kept as [`LegacyDevice::Other`], never an
//! error, since QEMU is the one to judge them.

use crate::cnum::strtoul0;

/// One `usbdevice` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LegacyDevice {
    /// `tablet`: QEMU's usb-tablet.
    Tablet,
    /// `mouse`: QEMU's usb-mouse.
    Mouse,
    /// `keyboard`: QEMU's usb-kbd.
    Keyboard,
    /// `host:BUS.ADDR` (QEMU reads both numbers with `strtoul` base 0;
    /// xl.cfg(5) tells users to strip leading zeros).
    HostBusAddr {
        /// Bus number.
        bus: u64,
        /// Device address.
        addr: u64,
    },
    /// `host:VID:PID` (hexadecimal ids).
    HostVidPid {
        /// idVendor.
        vendor: u16,
        /// idProduct.
        product: u16,
    },
    /// Anything else, passed through.
    Other(String),
}

fn dec_or_c(s: &str) -> Option<u64> {
    (!s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_hexdigit() || b == b'x' || b == b'X'))
    .then(|| strtoul0(s))
}

fn hex16(s: &str) -> Option<u16> {
    ((1..=4).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| u16::from_str_radix(s, 16).ok())
        .flatten()
}

impl LegacyDevice {
    /// Reads one entry.
    pub fn parse(s: &str) -> LegacyDevice {
        match s {
            "tablet" => return LegacyDevice::Tablet,
            "mouse" => return LegacyDevice::Mouse,
            "keyboard" => return LegacyDevice::Keyboard,
            _ => {}
        }
        let Some(rest) = s.strip_prefix("host:") else {
            return LegacyDevice::Other(s.to_owned());
        };
        if let Some((bus, addr)) = rest.split_once('.') {
            if let (Some(bus), Some(addr)) = (dec_or_c(bus), dec_or_c(addr)) {
                return LegacyDevice::HostBusAddr { bus, addr };
            }
        } else if let Some((v, p)) = rest.split_once(':')
            && let (Some(vendor), Some(product)) = (hex16(v), hex16(p))
        {
            return LegacyDevice::HostVidPid { vendor, product };
        }
        LegacyDevice::Other(s.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        assert_eq!(LegacyDevice::parse("tablet"), LegacyDevice::Tablet);
        assert_eq!(LegacyDevice::parse("mouse"), LegacyDevice::Mouse);
        assert_eq!(LegacyDevice::parse("keyboard"), LegacyDevice::Keyboard);
        assert_eq!(
            LegacyDevice::parse("host:2.5"),
            LegacyDevice::HostBusAddr { bus: 2, addr: 5 }
        );
        assert_eq!(
            LegacyDevice::parse("host:046d:c52b"),
            LegacyDevice::HostVidPid {
                vendor: 0x046d,
                product: 0xc52b
            }
        );
        assert_eq!(
            LegacyDevice::parse("host:1.2.3"),
            LegacyDevice::Other("host:1.2.3".into())
        );
        assert_eq!(
            LegacyDevice::parse("disk:foo"),
            LegacyDevice::Other("disk:foo".into())
        );
        assert_eq!(
            LegacyDevice::parse("Tablet"),
            LegacyDevice::Other("Tablet".into())
        );
    }
}
