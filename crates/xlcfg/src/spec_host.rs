//! Values of vusb's host-selection keys that xl does not have:
//! `physport=` (a connector, or the subtree below it) and
//! `with-interface=` / `without-interface=` (interface class filters, after
//! usbguard's `with-interface`). Grammar in `docs/host-usb.md`.

use std::fmt;

use crate::error::{Error, Result};

/// `physport=ANCHOR/CHAIN`, `ANCHOR/CHAIN.*` or `ANCHOR/*`.
///
/// `ANCHOR` is the host controller's sysfs name (`0000:00:14.0`), `CHAIN`
/// port numbers from the root hub down separated by `.`, a port without
/// USB2 half written `s<N>`. `.*` selects any device strictly below that
/// port (a hub's downstream ports, any depth), `/*` any device of the
/// controller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhysPortSpec {
    /// `ANCHOR` or `ANCHOR/CHAIN`, normalised (ports without leading zeros).
    pub port: String,
    /// A subtree (`.*`, `/*`) rather than the port itself.
    pub below: bool,
}

impl fmt::Display for PhysPortSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.below, self.port.contains('/')) {
            (false, _) => f.write_str(&self.port),
            (true, true) => write!(f, "{}.*", self.port),
            (true, false) => write!(f, "{}/*", self.port),
        }
    }
}

fn invalid(key: &'static str, v: &str, expected: &'static str) -> Error {
    Error::InvalidExtensionValue {
        spec: "usbdev",
        key,
        value: v.to_owned(),
        expected,
    }
}

pub(super) fn parse_physport(v: &str) -> Result<PhysPortSpec> {
    const EXPECTED: &str = "CONTROLLER/PORTS, e.g. 0000:00:14.0/2.1, with .* for the devices below (0000:00:14.0/2.*) or /* for a whole controller";
    let bad = || invalid("physport", v, EXPECTED);
    let (base, below) = match v.strip_suffix(".*") {
        Some(b) if b.contains('/') => (b, true),
        _ => match v.strip_suffix("/*") {
            Some(b) => (b, true),
            None => (v, false),
        },
    };
    let (anchor, chain) = match base.split_once('/') {
        Some((a, c)) => (a, Some(c)),
        None => (base, None),
    };
    let anchor_ok = !anchor.is_empty()
        && anchor
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'.' | b'_' | b'-'));
    if !anchor_ok || (chain.is_none() && !below) {
        return Err(bad());
    }
    let Some(chain) = chain else {
        return Ok(PhysPortSpec {
            port: anchor.to_owned(),
            below,
        });
    };
    let mut ports = Vec::new();
    for part in chain.split('.') {
        let (ss, digits) = match part.strip_prefix('s') {
            Some(d) => ("s", d),
            None => ("", part),
        };
        let n =
            (!digits.is_empty() && digits.len() <= 3 && digits.bytes().all(|b| b.is_ascii_digit()))
                .then(|| digits.parse::<u16>().ok())
                .flatten()
                .filter(|n| (1..=255).contains(n))
                .ok_or_else(bad)?;
        ports.push(format!("{ss}{n}"));
    }
    Ok(PhysPortSpec {
        port: format!("{anchor}/{}", ports.join(".")),
        below,
    })
}

/// One `class[:subclass[:protocol]]` pattern: each part 1–2 hex digits or
/// `*`; omitted parts are `*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IntfPatternSpec {
    /// `bInterfaceClass`, `None` = any.
    pub class: Option<u8>,
    /// `bInterfaceSubClass`, `None` = any.
    pub subclass: Option<u8>,
    /// `bInterfaceProtocol`, `None` = any.
    pub protocol: Option<u8>,
}

impl fmt::Display for IntfPatternSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let part = |v: Option<u8>| v.map_or("*".to_owned(), |v| format!("{v:02x}"));
        write!(
            f,
            "{}:{}:{}",
            part(self.class),
            part(self.subclass),
            part(self.protocol)
        )
    }
}

/// Writes a pattern list back (`08:*:*+03:01:01`).
pub fn format_patterns(patterns: &[IntfPatternSpec]) -> String {
    patterns
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("+")
}

pub(super) fn parse_patterns(key: &'static str, v: &str) -> Result<Vec<IntfPatternSpec>> {
    const EXPECTED: &str = "interface classes CLASS[:SUBCLASS[:PROTOCOL]] in hex or *, several joined by +, e.g. 08 or 03:*:01+e0";
    let bad = || invalid(key, v, EXPECTED);
    let hex = |p: &str| -> Result<Option<u8>> {
        if p == "*" {
            return Ok(None);
        }
        let ok = (1..=2).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_hexdigit());
        ok.then(|| u8::from_str_radix(p, 16).ok())
            .flatten()
            .map(Some)
            .ok_or_else(bad)
    };
    let mut out = Vec::new();
    for pat in v.split('+') {
        let parts: Vec<&str> = pat.split(':').collect();
        if parts.len() > 3 {
            return Err(bad());
        }
        let get = |i: usize| parts.get(i).map_or(Ok(None), |p| hex(p));
        out.push(IntfPatternSpec {
            class: get(0)?,
            subclass: get(1)?,
            protocol: get(2)?,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn physports() {
        let p = parse_physport("0000:00:14.0/2.1").unwrap();
        assert_eq!((p.port.as_str(), p.below), ("0000:00:14.0/2.1", false));
        let p = parse_physport("0000:00:14.0/02.s4.*").unwrap();
        assert_eq!((p.port.as_str(), p.below), ("0000:00:14.0/2.s4", true));
        assert_eq!(p.to_string(), "0000:00:14.0/2.s4.*");
        let p = parse_physport("xhci-hcd.0.auto/*").unwrap();
        assert_eq!((p.port.as_str(), p.below), ("xhci-hcd.0.auto", true));
        assert_eq!(p.to_string(), "xhci-hcd.0.auto/*");
        for bad in [
            "",
            "0000:00:14.0",
            "0000:00:14.0/",
            "0000:00:14.0/0",
            "0000:00:14.0/256",
            "0000:00:14.0/1..2",
            "0000:00:14.0/1.x",
            "0000:00:14.0/1/2",
            "/1",
            "a b/1",
            "0000:00:14.0/*.*",
            "0000:00:14.0/1*",
        ] {
            let e = parse_physport(bad).unwrap_err().to_string();
            assert!(e.contains("physport"), "{bad}: {e}");
        }
    }

    #[test]
    fn interface_patterns() {
        let p = parse_patterns("with-interface", "08").unwrap();
        assert_eq!(
            p,
            [IntfPatternSpec {
                class: Some(8),
                ..Default::default()
            }]
        );
        let p = parse_patterns("with-interface", "03:*:01+E0:1").unwrap();
        assert_eq!(format_patterns(&p), "03:*:01+e0:01:*");
        for bad in ["", "1:2:3:4", "100", "g", "08+", "08:-1", "0x08"] {
            assert!(parse_patterns("with-interface", bad).is_err(), "{bad}");
        }
    }
}
