//! Interface filters, after usbguard's `with-interface`: a device may be
//! required to have only interfaces of given classes, or refused when one
//! of its interfaces is of an excluded class.
//!
//! A pattern is `class:subclass:protocol`, each part a number or "any"
//! (the spec grammar in `vusb-xlcfg` writes `08:*:*`, `03:01:01`). Two
//! lists:
//!
//! * `only`: every interface of the device must match one of the patterns
//!   (usbguard's `with-interface equals { … }` with wildcards), and the
//!   device must have an interface;
//! * `exclude`: no interface may match any of them (usbguard's
//!   `with-interface none-of { … }`).

use std::fmt;

use crate::device::{Interface, UsbDevice};

/// `class:subclass:protocol`, `None` meaning any.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct InterfacePattern {
    /// `bInterfaceClass`.
    pub class: Option<u8>,
    /// `bInterfaceSubClass`.
    pub subclass: Option<u8>,
    /// `bInterfaceProtocol`.
    pub protocol: Option<u8>,
}

impl InterfacePattern {
    /// Whether `intf` matches.
    pub fn matches(&self, intf: &Interface) -> bool {
        self.class.is_none_or(|c| c == intf.class)
            && self.subclass.is_none_or(|s| s == intf.subclass)
            && self.protocol.is_none_or(|p| p == intf.protocol)
    }
}

impl fmt::Display for InterfacePattern {
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

fn list(patterns: &[InterfacePattern]) -> String {
    patterns
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("+")
}

/// The interface conditions of one selection. The default lets everything
/// through.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InterfaceFilter {
    /// `with-interface=`: every interface must match one of these.
    pub only: Option<Vec<InterfacePattern>>,
    /// `without-interface=`: no interface may match any of these.
    pub exclude: Vec<InterfacePattern>,
}

/// Why a device does not pass an [`InterfaceFilter`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilterRefusal {
    /// The device has no interface, and `with-interface=` is given.
    NoInterfaces {
        /// The patterns required.
        only: String,
    },
    /// An interface matches none of `with-interface=`.
    NotAllowed {
        /// The interface's name (`1-4:1.3`).
        interface: String,
        /// Its `class:subclass:protocol`.
        class: String,
        /// The patterns required.
        only: String,
    },
    /// An interface matches `without-interface=`.
    Excluded {
        /// The interface's name.
        interface: String,
        /// Its `class:subclass:protocol`.
        class: String,
        /// The pattern it matched.
        pattern: String,
    },
}

impl fmt::Display for FilterRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FilterRefusal::NoInterfaces { only } => {
                write!(f, "it has no interface, with-interface={only} wants one")
            }
            FilterRefusal::NotAllowed {
                interface,
                class,
                only,
            } => write!(
                f,
                "interface {interface} ({class}) is not allowed by with-interface={only}"
            ),
            FilterRefusal::Excluded {
                interface,
                class,
                pattern,
            } => write!(
                f,
                "interface {interface} ({class}) is excluded by without-interface={pattern}"
            ),
        }
    }
}

fn class_of(i: &Interface) -> String {
    format!("{:02x}:{:02x}:{:02x}", i.class, i.subclass, i.protocol)
}

impl InterfaceFilter {
    /// True when the filter lets everything through.
    pub fn is_empty(&self) -> bool {
        self.only.is_none() && self.exclude.is_empty()
    }

    /// Whether `dev` passes; the first reason when not.
    pub fn check(&self, dev: &UsbDevice) -> Result<(), FilterRefusal> {
        if let Some(only) = &self.only {
            if dev.interfaces.is_empty() {
                return Err(FilterRefusal::NoInterfaces { only: list(only) });
            }
            if let Some(i) = dev
                .interfaces
                .iter()
                .find(|i| !only.iter().any(|p| p.matches(i)))
            {
                return Err(FilterRefusal::NotAllowed {
                    interface: i.name.clone(),
                    class: class_of(i),
                    only: list(only),
                });
            }
        }
        for i in &dev.interfaces {
            if let Some(p) = self.exclude.iter().find(|p| p.matches(i)) {
                return Err(FilterRefusal::Excluded {
                    interface: i.name.clone(),
                    class: class_of(i),
                    pattern: p.to_string(),
                });
            }
        }
        Ok(())
    }
}

impl fmt::Display for InterfaceFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(only) = &self.only {
            parts.push(format!("with-interface={}", list(only)));
        }
        if !self.exclude.is_empty() {
            parts.push(format!("without-interface={}", list(&self.exclude)));
        }
        f.write_str(&parts.join(" "))
    }
}
