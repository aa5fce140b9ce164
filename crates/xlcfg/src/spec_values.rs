//! Checks of the values of vusb's extension keys (xl has none of these
//! keys, so these are vusb's own rules).

use crate::cnum::atoi_strict;
use crate::error::{Error, Result};

pub(super) fn non_empty(
    spec: &'static str,
    key: &'static str,
    v: &str,
    expected: &'static str,
) -> Result<String> {
    if v.is_empty() {
        return Err(Error::InvalidExtensionValue {
            spec,
            key,
            value: v.to_owned(),
            expected,
        });
    }
    Ok(v.to_owned())
}

/// A USB id: 1–4 hex digits, optional `0x`/`0X` prefix (`046d`, `0x46d`).
pub(super) fn parse_usb_id(key: &'static str, v: &str) -> Result<u16> {
    let digits = v
        .strip_prefix("0x")
        .or_else(|| v.strip_prefix("0X"))
        .unwrap_or(v);
    let ok = (1..=4).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_hexdigit());
    ok.then(|| u16::from_str_radix(digits, 16).ok())
        .flatten()
        .ok_or_else(|| Error::InvalidExtensionValue {
            spec: "usbdev",
            key,
            value: v.to_owned(),
            expected: "1 to 4 hexadecimal digits, e.g. 046d",
        })
}

/// Dot-separated decimal port numbers 1..=255 (`1`, `1.4`, `2.1.3`).
fn is_port_chain(s: &str) -> bool {
    !s.is_empty()
        && s.split('.').all(|p| {
            !p.is_empty()
                && p.len() <= 3
                && p.bytes().all(|b| b.is_ascii_digit())
                && p.parse::<u16>().is_ok_and(|n| (1..=255).contains(&n))
        })
}

/// A sysfs device name `<bus>-<port chain>`, e.g. `3-1.2`.
pub(super) fn parse_busid(v: &str) -> Result<String> {
    let ok = v.split_once('-').is_some_and(|(bus, chain)| {
        !bus.is_empty()
            && bus.len() <= 3
            && bus.bytes().all(|b| b.is_ascii_digit())
            && bus.parse::<u16>().is_ok_and(|n| (1..=255).contains(&n))
            && is_port_chain(chain)
    });
    if ok {
        Ok(v.to_owned())
    } else {
        Err(Error::InvalidExtensionValue {
            spec: "usbdev",
            key: "busid",
            value: v.to_owned(),
            expected: "a sysfs device name such as 3-1.2",
        })
    }
}

pub(super) fn parse_portpath(v: &str) -> Result<String> {
    // A chain below `hostbus`'s root hub (`1.4`), or anchored as
    // `usb-assignable-list` prints it: `<controller>-<chain>` (`usb1-1`,
    // `0000:00:14.0-1.2`), a busid (`1-1.2`), or `<controller>/<chain>`.
    let anchored = v.rsplit_once(['-', '/']).is_some_and(|(anchor, chain)| {
        !anchor.is_empty()
            && anchor
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'.' | b'_'))
            && is_port_chain(chain)
    });
    if is_port_chain(v) || anchored {
        Ok(v.to_owned())
    } else {
        Err(Error::InvalidExtensionValue {
            spec: "usbdev",
            key: "portpath",
            value: v.to_owned(),
            expected: "hub ports separated by dots, e.g. 1.4, optionally after `<controller>-` as usb-assignable-list prints it (usb1-1.4, 0000:00:14.0-1.4)",
        })
    }
}

/// usbdev `controller=`: a devid, or xl's `-1` for "any controller",
/// which becomes `None` here (libxl's sentinel stops at the parser).
pub(super) fn parse_controller(v: &str) -> Result<Option<u32>> {
    match atoi_strict(v) {
        Ok(-1) => Ok(None),
        Ok(n) => u32::try_from(n)
            .map(Some)
            .map_err(|_| Error::InvalidDevNumber {
                key: "controller",
                value: v.to_owned(),
                reason: "out of range (a controller devid is 0 or more; -1 means any controller)",
            }),
        Err(e) => Err(Error::InvalidDevNumber {
            key: "controller",
            value: v.to_owned(),
            reason: e.reason(),
        }),
    }
}

/// usbdev `port=`: a port number, or xl's `0` for "any port", which
/// becomes `None` here.
pub(super) fn parse_port(v: &str) -> Result<Option<u32>> {
    match atoi_strict(v) {
        Ok(0) => Ok(None),
        Ok(n) => u32::try_from(n)
            .map(Some)
            .map_err(|_| Error::InvalidDevNumber {
                key: "port",
                value: v.to_owned(),
                reason: "out of range (ports are numbered from 1; 0 means any port)",
            }),
        Err(e) => Err(Error::InvalidDevNumber {
            key: "port",
            value: v.to_owned(),
            reason: e.reason(),
        }),
    }
}
