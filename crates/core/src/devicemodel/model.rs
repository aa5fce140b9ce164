//! Controller models: resolving (version, ports, model) the way libxl's
//! `libxl__device_usbctrl_setdefault` does for `devicemodel`, plus libvirt's
//! `model=` names, and the `device_add` arguments for each model.
//!
//! libxl (reference §2.2, §6.1): version 0 → 2; v1 → `piix3-usb-uhci`,
//! always 2 ports; v2 → `usb-ehci`, always 6; v3 → `nec-usb-xhci` with
//! `p2` = `p3` = ports, default 8, at most 15. Deliberate difference: a
//! negative port count for v3 is refused (libxl bug C3 accepts it).
//!
//! `model=` (vusb extension) takes libvirt's names (`piix3-uhci`,
//! `piix4-uhci`, `ehci`, `nec-xhci`, `qemu-xhci`) or QEMU's driver names.
//! These are exactly the five USB controllers QEMU 7.2 can hot-plug
//! (reference qemu-qmp-usb §2.1); the ICH9 EHCI companion set and
//! `pci-ohci` cannot be hot-plugged and are refused here, before QEMU is
//! touched. An xHCI model without `ports=` gets libxl's default of 8.

use std::fmt;

use serde_json::Value;
use vusb_qmp::DeviceAdd;

/// The five hot-pluggable QEMU USB controllers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ControllerDriver {
    /// `piix3-usb-uhci`: USB 1.1, 2 ports (libxl version 1).
    Piix3Uhci,
    /// `piix4-usb-uhci`: USB 1.1, 2 ports.
    Piix4Uhci,
    /// `usb-ehci`: USB 2.0, 6 ports, no companions (libxl version 2).
    Ehci,
    /// `nec-usb-xhci`: USB 3, `p2`/`p3` ports, at most 15 (libxl version 3).
    NecXhci,
    /// `qemu-xhci`: USB 3, `p2`/`p3` ports, at most 15.
    QemuXhci,
}

const ALL: [ControllerDriver; 5] = [
    ControllerDriver::Piix3Uhci,
    ControllerDriver::Piix4Uhci,
    ControllerDriver::Ehci,
    ControllerDriver::NecXhci,
    ControllerDriver::QemuXhci,
];

/// Most ports QEMU gives an xHCI root hub (larger `p2`/`p3` are clamped).
pub const XHCI_MAX_PORTS: u32 = 15;
/// libxl's default port count for version 3.
pub const XHCI_DEFAULT_PORTS: u32 = 8;

impl ControllerDriver {
    /// QEMU's driver name.
    pub fn qemu_name(self) -> &'static str {
        match self {
            ControllerDriver::Piix3Uhci => "piix3-usb-uhci",
            ControllerDriver::Piix4Uhci => "piix4-usb-uhci",
            ControllerDriver::Ehci => "usb-ehci",
            ControllerDriver::NecXhci => "nec-usb-xhci",
            ControllerDriver::QemuXhci => "qemu-xhci",
        }
    }

    /// libvirt's model name.
    pub fn libvirt_name(self) -> &'static str {
        match self {
            ControllerDriver::Piix3Uhci => "piix3-uhci",
            ControllerDriver::Piix4Uhci => "piix4-uhci",
            ControllerDriver::Ehci => "ehci",
            ControllerDriver::NecXhci => "nec-xhci",
            ControllerDriver::QemuXhci => "qemu-xhci",
        }
    }

    /// From a libvirt model name or a QEMU driver name (case-insensitive).
    pub fn from_name(name: &str) -> Option<ControllerDriver> {
        ALL.into_iter().find(|d| {
            d.libvirt_name().eq_ignore_ascii_case(name) || d.qemu_name().eq_ignore_ascii_case(name)
        })
    }

    /// The USB version libxl records for it (`usb-ver`): 1, 2 or 3.
    pub fn usb_version(self) -> u32 {
        match self {
            ControllerDriver::Piix3Uhci | ControllerDriver::Piix4Uhci => 1,
            ControllerDriver::Ehci => 2,
            ControllerDriver::NecXhci | ControllerDriver::QemuXhci => 3,
        }
    }

    /// The fixed port count, for the models that have one.
    pub fn fixed_ports(self) -> Option<u32> {
        match self {
            ControllerDriver::Piix3Uhci | ControllerDriver::Piix4Uhci => Some(2),
            ControllerDriver::Ehci => Some(6),
            ControllerDriver::NecXhci | ControllerDriver::QemuXhci => None,
        }
    }

    /// libxl's driver for a USB version.
    pub fn for_version(version: u32) -> Option<ControllerDriver> {
        match version {
            1 => Some(ControllerDriver::Piix3Uhci),
            2 => Some(ControllerDriver::Ehci),
            3 => Some(ControllerDriver::NecXhci),
            _ => None,
        }
    }
}

impl fmt::Display for ControllerDriver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.qemu_name())
    }
}

/// A resolved controller: a driver and its number of ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControllerModel {
    /// QEMU driver.
    pub driver: ControllerDriver,
    /// Root-hub ports, 1-based (`1..=ports`).
    pub ports: u32,
}

/// The input alone is invalid. Messages are libxl's where libxl has one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// Version other than 0 (default), 1, 2, 3.
    #[error("Illegal USB version")]
    IllegalVersion {
        /// What was asked.
        version: i64,
    },
    /// A fixed-port model with another port count.
    #[error("Number of ports for USB controller of version {version} is always {fixed}")]
    FixedPorts {
        /// The USB version.
        version: u32,
        /// Its only port count.
        fixed: u32,
        /// What was asked.
        ports: i64,
    },
    /// xHCI with more than 15 ports.
    #[error("Number of ports for USB controller of version 3 is limited to 15")]
    TooManyPorts {
        /// What was asked.
        ports: i64,
    },
    /// xHCI with a negative port count (libxl bug C3 accepts it).
    #[error("Number of ports for USB controller of version 3 must be at least 1")]
    TooFewPorts {
        /// What was asked.
        ports: i64,
    },
    /// `model=` that is none of the five hot-pluggable controllers.
    #[error(
        "Unknown USB controller model '{model}' (known: piix3-uhci, piix4-uhci, ehci, nec-xhci, qemu-xhci)"
    )]
    UnknownModel {
        /// What was asked.
        model: String,
    },
    /// `model=` and `version=` disagree.
    #[error("USB controller model '{model}' is USB version {model_version}, not version {version}")]
    ModelVersionMismatch {
        /// The model.
        model: String,
        /// The model's version.
        model_version: u32,
        /// The version asked.
        version: i64,
    },
}

/// Resolve what the user wrote (`0` = key absent or default, as libxl)
/// into a model, or refuse it with libxl's message.
pub fn resolve_controller(
    version: i64,
    ports: i64,
    model: Option<&str>,
) -> Result<ControllerModel, ModelError> {
    let driver = match model {
        Some(name) => {
            let d = ControllerDriver::from_name(name).ok_or_else(|| ModelError::UnknownModel {
                model: name.to_string(),
            })?;
            if version != 0 && version != i64::from(d.usb_version()) {
                return Err(ModelError::ModelVersionMismatch {
                    model: name.to_string(),
                    model_version: d.usb_version(),
                    version,
                });
            }
            d
        }
        None => {
            let v = if version == 0 { 2 } else { version };
            u32::try_from(v)
                .ok()
                .and_then(ControllerDriver::for_version)
                .ok_or(ModelError::IllegalVersion { version })?
        }
    };
    let ports = match driver.fixed_ports() {
        Some(fixed) if ports == 0 || ports == i64::from(fixed) => fixed,
        Some(fixed) => {
            return Err(ModelError::FixedPorts {
                version: driver.usb_version(),
                fixed,
                ports,
            });
        }
        None if ports == 0 => XHCI_DEFAULT_PORTS,
        None if ports > i64::from(XHCI_MAX_PORTS) => {
            return Err(ModelError::TooManyPorts { ports });
        }
        None if ports < 0 => return Err(ModelError::TooFewPorts { ports }),
        None => ports as u32,
    };
    Ok(ControllerModel { driver, ports })
}

/// How numbers are typed in `device_add` arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ArgStyle {
    /// Numbers as JSON integers, `port` as a string: libxl since commit
    /// 85e12104f4 (QEMU ≥ 9.2 refuses numbers given as strings). Default.
    #[default]
    Typed,
    /// Every value a JSON string, exactly as Debian's xl 4.17 sends them
    /// (the golden `qmp.log` files). QEMU 7.2 accepts both.
    Xl417,
}

impl ArgStyle {
    /// A number in this style.
    pub fn num(self, n: u64) -> Value {
        match self {
            ArgStyle::Typed => Value::from(n),
            ArgStyle::Xl417 => Value::from(n.to_string()),
        }
    }
}

/// The QOM id of controller `devid` (libxl's `xenusb-<devid>`).
pub fn controller_id(devid: u32) -> String {
    format!("xenusb-{devid}")
}

/// The USB bus of controller `devid` (`xenusb-<devid>.0`).
pub fn controller_bus(devid: u32) -> String {
    format!("xenusb-{devid}.0")
}

/// The controller devid encoded in a QOM id `xenusb-<devid>`.
pub fn devid_of_controller_id(id: &str) -> Option<u32> {
    let n = id.strip_prefix("xenusb-")?;
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    n.parse().ok()
}

impl ControllerModel {
    /// The USB version libxl records (`usb-ver`).
    pub fn version(&self) -> u32 {
        self.driver.usb_version()
    }

    /// `device_add` arguments in libxl's order: `driver`, [`p2`, `p3`], `id`.
    pub fn device_add(&self, devid: u32, style: ArgStyle) -> DeviceAdd {
        let mut args = DeviceAdd::new().arg("driver", self.driver.qemu_name());
        if self.driver.fixed_ports().is_none() {
            args = args
                .arg("p2", style.num(u64::from(self.ports)))
                .arg("p3", style.num(u64::from(self.ports)));
        }
        args.arg("id", controller_id(devid))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn libxl_defaults_and_messages() {
        let m = resolve_controller(0, 0, None).unwrap();
        assert_eq!(
            (m.driver, m.ports, m.version()),
            (ControllerDriver::Ehci, 6, 2)
        );
        assert_eq!(resolve_controller(1, 0, None).unwrap().ports, 2);
        assert_eq!(
            resolve_controller(1, 2, None).unwrap().driver,
            ControllerDriver::Piix3Uhci
        );
        assert_eq!(resolve_controller(3, 0, None).unwrap().ports, 8);
        assert_eq!(resolve_controller(3, 15, None).unwrap().ports, 15);
        assert_eq!(resolve_controller(3, 1, None).unwrap().ports, 1);
        let msg = |v, p| resolve_controller(v, p, None).unwrap_err().to_string();
        assert_eq!(
            msg(1, 4),
            "Number of ports for USB controller of version 1 is always 2"
        );
        assert_eq!(
            msg(2, 8),
            "Number of ports for USB controller of version 2 is always 6"
        );
        assert_eq!(
            msg(3, 16),
            "Number of ports for USB controller of version 3 is limited to 15"
        );
        assert_eq!(
            msg(3, -1),
            "Number of ports for USB controller of version 3 must be at least 1"
        );
        assert_eq!(msg(4, 0), "Illegal USB version");
        assert_eq!(msg(-1, 0), "Illegal USB version");
    }

    #[test]
    fn libvirt_models() {
        let cases = [
            ("piix3-uhci", "piix3-usb-uhci", 2, 1),
            ("piix4-uhci", "piix4-usb-uhci", 2, 1),
            ("ehci", "usb-ehci", 6, 2),
            ("nec-xhci", "nec-usb-xhci", 8, 3),
            ("qemu-xhci", "qemu-xhci", 8, 3),
            ("QEMU-XHCI", "qemu-xhci", 8, 3),
            ("usb-ehci", "usb-ehci", 6, 2),
        ];
        for (name, driver, ports, version) in cases {
            let m = resolve_controller(0, 0, Some(name)).unwrap();
            assert_eq!(
                (m.driver.qemu_name(), m.ports, m.version()),
                (driver, ports, version),
                "{name}"
            );
        }
        assert_eq!(
            resolve_controller(0, 4, Some("qemu-xhci")).unwrap().ports,
            4
        );
        assert!(matches!(
            resolve_controller(0, 0, Some("ich9-ehci1")),
            Err(ModelError::UnknownModel { .. })
        ));
        assert!(matches!(
            resolve_controller(0, 0, Some("pci-ohci")),
            Err(ModelError::UnknownModel { .. })
        ));
        assert!(matches!(
            resolve_controller(2, 0, Some("qemu-xhci")),
            Err(ModelError::ModelVersionMismatch { .. })
        ));
        assert!(matches!(
            resolve_controller(0, 4, Some("ehci")),
            Err(ModelError::FixedPorts { .. })
        ));
        assert!(resolve_controller(3, 4, Some("nec-xhci")).is_ok());
    }

    #[test]
    fn device_add_arguments_in_libxls_order() {
        let m = resolve_controller(3, 4, None).unwrap();
        let typed = serde_json::Value::Object(m.device_add(1, ArgStyle::Typed).arguments().clone());
        assert_eq!(
            typed.to_string(),
            r#"{"driver":"nec-usb-xhci","p2":4,"p3":4,"id":"xenusb-1"}"#
        );
        let xl = serde_json::Value::Object(m.device_add(1, ArgStyle::Xl417).arguments().clone());
        assert_eq!(
            xl.to_string(),
            r#"{"driver":"nec-usb-xhci","p2":"4","p3":"4","id":"xenusb-1"}"#
        );
        let e = resolve_controller(2, 0, None)
            .unwrap()
            .device_add(0, ArgStyle::Typed);
        assert_eq!(
            serde_json::Value::Object(e.arguments().clone()).to_string(),
            r#"{"driver":"usb-ehci","id":"xenusb-0"}"#
        );
        assert_eq!(devid_of_controller_id("xenusb-12"), Some(12));
        assert_eq!(devid_of_controller_id("xenusb-1-2"), None);
        assert_eq!(devid_of_controller_id("xenusb-"), None);
    }
}
