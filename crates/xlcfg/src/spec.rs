//! The USB spec grammar shared by config files (`usbctrl=`, `usbdev=`) and
//! the command-line arguments of `usbctrl-attach` / `usbdev-attach`.
//!
//! Matches xl (`tools/xl/xl_parse.c`, `parse_usbctrl_config`,
//! `parse_usbdev_config`; reference §1.1, §2.1–2.3):
//!
//! * a field is `KEY=VALUE`, the key matched as an exact, case-sensitive
//!   `KEY=` prefix; anything else (including an empty field) is
//!   ``Unknown string `<field>' in usbctrl spec`` / `usbdev spec`;
//! * `type=` values are compared case-insensitively;
//! * `version=`, `ports=` use C `atoi` (garbage is 0, which libxl then
//!   treats as "default"), `controller=` and `port=` too, but see below;
//! * `hostbus=`, `hostaddr=` use `strtoul(v, NULL, 0)` truncated to 8 bits
//!   (`0x0a` = 10, `010` = 8, `008` = 0, `256` = 0);
//! * repeated keys: the last one wins;
//! * in a config list item, fields are split on `,` like `strtok` (empty
//!   fields skipped) and leading spaces (not tabs) stripped, trailing kept;
//!   on the command line each argument is one field, never split, so
//!   `hostbus=1,hostaddr=2` sets hostbus 1 and leaves hostaddr unset.
//!
//! Deliberate differences:
//!
//! * a bad usbdev `type=` names the value (xl prints `optarg`, BUG D2);
//! * usbdev `controller=` and `port=` must be numbers (blanks around and a
//!   sign allowed; the value is then `atoi`'s): xl's `atoi` turns a typo
//!   such as `port=l` into 0, "choose a port", and the device silently
//!   lands elsewhere. xl's sentinels `controller=-1` and `port=0` ("any")
//!   become `None`, like an absent key; other negative values, which libxl
//!   only refuses later or not at all (`port=-1`), are refused here;
//! * usbdev `type=` may also be `tablet`, `mouse` or `keyboard` (emulated
//!   devices of the guest's QEMU), and a spec without `type=` is a host
//!   device for every consumer, the saved JSON included (fix of BUG J2);
//! * extension keys, which xl rejects as unknown: usbctrl `model=` (QEMU
//!   device model of a `devicemodel` controller, e.g. `qemu-xhci`); usbdev
//!   `busid=` (sysfs name such as `3-1.2`), `vendor=` / `product=` (USB ids,
//!   hexadecimal as lsusb prints them, optional `0x`), `serial=` (the
//!   device's iSerial string), `portpath=` (the hub port chain on
//!   `hostbus=`, e.g. `1.4`, as QEMU's `hostport=`) and `physport=` (the
//!   connector, the same for both halves of a USB3 connector and across
//!   bus renumbering: `0000:00:14.0/2.1`; `0000:00:14.0/2.*` for any
//!   device below port 2). They select the host device by something more
//!   stable than the bus address (reference U3). `with-interface=` and
//!   `without-interface=` (`08`, `03:*:01+e0`) filter it by interface
//!   class, after usbguard's `with-interface` (`spec_host.rs`).
//!
//! A spec is "what the user wrote": nothing is defaulted or resolved here.

use std::fmt;

use crate::cnum::{atoi, strtoul0_u8};
use crate::error::{Error, Result};

#[path = "spec_host.rs"]
mod host;
pub use host::{IntfPatternSpec, PhysPortSpec, format_patterns};
#[path = "spec_values.rs"]
mod values;
use values::{non_empty, parse_busid, parse_controller, parse_port, parse_portpath, parse_usb_id};

/// A controller type as written (`type=`); `Auto` when absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum CtrlKind {
    /// `auto`: resolved at attach time (HVM → devicemodel, else pv/qusb).
    #[default]
    Auto,
    /// `pv`: kernel usbback backend.
    Pv,
    /// `qusb`: PV USB with QEMU as the backend.
    Qusb,
    /// `devicemodel`: controller emulated by the guest's QEMU.
    DeviceModel,
}

impl CtrlKind {
    /// libxl's lower-case name (`auto`, `pv`, `qusb`, `devicemodel`).
    pub fn as_str(self) -> &'static str {
        match self {
            CtrlKind::Auto => "auto",
            CtrlKind::Pv => "pv",
            CtrlKind::Qusb => "qusb",
            CtrlKind::DeviceModel => "devicemodel",
        }
    }

    /// Parses a type name case-insensitively, as libxl's `from_string`.
    pub fn from_name(name: &str) -> Option<Self> {
        [
            CtrlKind::Auto,
            CtrlKind::Pv,
            CtrlKind::Qusb,
            CtrlKind::DeviceModel,
        ]
        .into_iter()
        .find(|k| k.as_str().eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for CtrlKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A usbdev type as written (`type=`); `HostDev` when absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DevKind {
    /// `hostdev`: a host USB device passed through (libxl's only type).
    #[default]
    HostDev,
    /// vusb extension: QEMU's emulated `usb-tablet`.
    Tablet,
    /// vusb extension: QEMU's emulated `usb-mouse`.
    Mouse,
    /// vusb extension: QEMU's emulated `usb-kbd`.
    Keyboard,
}

impl DevKind {
    /// The name used in specs (`hostdev`, `tablet`, `mouse`, `keyboard`).
    pub fn as_str(self) -> &'static str {
        match self {
            DevKind::HostDev => "hostdev",
            DevKind::Tablet => "tablet",
            DevKind::Mouse => "mouse",
            DevKind::Keyboard => "keyboard",
        }
    }

    /// Parses a type name case-insensitively.
    pub fn from_name(name: &str) -> Option<Self> {
        [
            DevKind::HostDev,
            DevKind::Tablet,
            DevKind::Mouse,
            DevKind::Keyboard,
        ]
        .into_iter()
        .find(|k| k.as_str().eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for DevKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `usbctrl` spec as the user wrote it. `None` = key absent; libxl treats
/// an absent key and a written 0 alike ("default").
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UsbCtrlSpec {
    /// `type=`.
    pub kind: CtrlKind,
    /// `version=` (after `atoi`).
    pub version: Option<i32>,
    /// `ports=` (after `atoi`).
    pub ports: Option<i32>,
    /// `model=` (vusb extension).
    pub model: Option<String>,
}

impl UsbCtrlSpec {
    /// The version as libxl holds it (0 = default).
    pub fn version_or_zero(&self) -> i32 {
        self.version.unwrap_or(0)
    }

    /// The port count as libxl holds it (0 = default).
    pub fn ports_or_zero(&self) -> i32 {
        self.ports.unwrap_or(0)
    }

    /// Applies one `KEY=VALUE` field.
    pub fn apply_field(&mut self, field: &str) -> Result<()> {
        if let Some(v) = field.strip_prefix("type=") {
            self.kind = CtrlKind::from_name(v).ok_or_else(|| Error::InvalidCtrlType {
                value: v.to_owned(),
            })?;
        } else if let Some(v) = field.strip_prefix("version=") {
            self.version = Some(atoi(v));
        } else if let Some(v) = field.strip_prefix("ports=") {
            self.ports = Some(atoi(v));
        } else if let Some(v) = field.strip_prefix("model=") {
            self.model = Some(non_empty("usbctrl", "model", v, "a QEMU device name")?);
        } else {
            return Err(Error::UnknownCtrlKey {
                token: field.to_owned(),
            });
        }
        Ok(())
    }
}

impl fmt::Display for UsbCtrlSpec {
    /// Writes the spec back in config-item form (`type=pv,version=2`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut fields = Vec::new();
        if self.kind != CtrlKind::Auto {
            fields.push(format!("type={}", self.kind));
        }
        if let Some(v) = self.version {
            fields.push(format!("version={v}"));
        }
        if let Some(p) = self.ports {
            fields.push(format!("ports={p}"));
        }
        if let Some(m) = &self.model {
            fields.push(format!("model={m}"));
        }
        f.write_str(&fields.join(","))
    }
}

/// A numeric command argument as xl reads it with `atoi` (`usbctrl-detach
/// <dom> <devid>`, `usbdev-detach <dom> <controller> <port>`), but refused
/// when it is not a whole number within C's `int`: xl's `atoi` turns `nan`
/// or `""` into 0, so `xl usbctrl-detach guest nan` removes controller 0.
/// `what` names the argument in the message (``Invalid devid `nan': not a
/// number``).
pub fn parse_number_arg(what: &'static str, value: &str) -> Result<i32> {
    crate::cnum::atoi_strict(value).map_err(|e| Error::InvalidNumberArg {
        what,
        value: value.to_owned(),
        reason: e.reason(),
    })
}

/// A `usbdev` spec as the user wrote it. `None` = key absent (for
/// `controller` and `port` also xl's "any" sentinels `-1` and `0`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UsbDevSpec {
    /// `type=`.
    pub kind: DevKind,
    /// `hostbus=` (strtoul base 0, truncated to 8 bits).
    pub hostbus: Option<u8>,
    /// `hostaddr=` (strtoul base 0, truncated to 8 bits).
    pub hostaddr: Option<u8>,
    /// `controller=`: the controller's devid; `None` = any controller
    /// (key absent, or xl's sentinel `controller=-1`).
    pub controller: Option<u32>,
    /// `port=`: the 1-based port; `None` = any port (key absent, or xl's
    /// sentinel `port=0`).
    pub port: Option<u32>,
    /// `busid=` (extension): sysfs device name, e.g. `3-1.2`.
    pub busid: Option<String>,
    /// `vendor=` (extension): idVendor.
    pub vendor: Option<u16>,
    /// `product=` (extension): idProduct.
    pub product: Option<u16>,
    /// `serial=` (extension): the iSerial string.
    pub serial: Option<String>,
    /// `portpath=` (extension): hub port chain below the root hub of
    /// `hostbus`, e.g. `1.4`.
    pub portpath: Option<String>,
    /// `physport=` (extension): the physical port (connector), or the
    /// subtree below it.
    pub physport: Option<PhysPortSpec>,
    /// `with-interface=` (extension): every interface of the device must
    /// match one of these.
    pub with_interface: Option<Vec<IntfPatternSpec>>,
    /// `without-interface=` (extension): no interface may match these.
    pub without_interface: Option<Vec<IntfPatternSpec>>,
}

impl UsbDevSpec {
    /// True when one of vusb's extension selectors is present.
    pub fn uses_extensions(&self) -> bool {
        self.busid.is_some()
            || self.vendor.is_some()
            || self.product.is_some()
            || self.serial.is_some()
            || self.portpath.is_some()
            || self.physport.is_some()
            || self.with_interface.is_some()
            || self.without_interface.is_some()
            || self.kind != DevKind::HostDev
    }

    /// Applies one `KEY=VALUE` field.
    pub fn apply_field(&mut self, field: &str) -> Result<()> {
        if let Some(v) = field.strip_prefix("type=") {
            self.kind = DevKind::from_name(v).ok_or_else(|| Error::InvalidDevType {
                value: v.to_owned(),
            })?;
        } else if let Some(v) = field.strip_prefix("hostbus=") {
            self.hostbus = Some(strtoul0_u8(v));
        } else if let Some(v) = field.strip_prefix("hostaddr=") {
            self.hostaddr = Some(strtoul0_u8(v));
        } else if let Some(v) = field.strip_prefix("controller=") {
            self.controller = parse_controller(v)?;
        } else if let Some(v) = field.strip_prefix("port=") {
            self.port = parse_port(v)?;
        } else if let Some(v) = field.strip_prefix("busid=") {
            self.busid = Some(parse_busid(v)?);
        } else if let Some(v) = field.strip_prefix("vendor=") {
            self.vendor = Some(parse_usb_id("vendor", v)?);
        } else if let Some(v) = field.strip_prefix("product=") {
            self.product = Some(parse_usb_id("product", v)?);
        } else if let Some(v) = field.strip_prefix("serial=") {
            self.serial = Some(non_empty("usbdev", "serial", v, "a non-empty string")?);
        } else if let Some(v) = field.strip_prefix("portpath=") {
            self.portpath = Some(parse_portpath(v)?);
        } else if let Some(v) = field.strip_prefix("physport=") {
            self.physport = Some(host::parse_physport(v)?);
        } else if let Some(v) = field.strip_prefix("with-interface=") {
            self.with_interface = Some(host::parse_patterns("with-interface", v)?);
        } else if let Some(v) = field.strip_prefix("without-interface=") {
            self.without_interface = Some(host::parse_patterns("without-interface", v)?);
        } else {
            return Err(Error::UnknownDevKey {
                token: field.to_owned(),
            });
        }
        Ok(())
    }
}

impl fmt::Display for UsbDevSpec {
    /// Writes the spec back in config-item form; `type=` is always written
    /// so that xl too reads it as a host device (BUG J2).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut fields = vec![format!("type={}", self.kind)];
        if let Some(v) = self.hostbus {
            fields.push(format!("hostbus={v}"));
        }
        if let Some(v) = self.hostaddr {
            fields.push(format!("hostaddr={v}"));
        }
        if let Some(v) = self.controller {
            fields.push(format!("controller={v}"));
        }
        if let Some(v) = self.port {
            fields.push(format!("port={v}"));
        }
        if let Some(v) = &self.busid {
            fields.push(format!("busid={v}"));
        }
        if let Some(v) = self.vendor {
            fields.push(format!("vendor={v:04x}"));
        }
        if let Some(v) = self.product {
            fields.push(format!("product={v:04x}"));
        }
        if let Some(v) = &self.serial {
            fields.push(format!("serial={v}"));
        }
        if let Some(v) = &self.portpath {
            fields.push(format!("portpath={v}"));
        }
        if let Some(v) = &self.physport {
            fields.push(format!("physport={v}"));
        }
        if let Some(v) = &self.with_interface {
            fields.push(format!("with-interface={}", format_patterns(v)));
        }
        if let Some(v) = &self.without_interface {
            fields.push(format!("without-interface={}", format_patterns(v)));
        }
        f.write_str(&fields.join(","))
    }
}

/// Splits a config list item into fields as xl does with `strtok(s, ",")`
/// followed by skipping leading spaces: empty fields are dropped, leading
/// `' '` (only) stripped, trailing whitespace kept.
fn config_fields(item: &str) -> impl Iterator<Item = &str> {
    item.split(',')
        .filter(|f| !f.is_empty())
        .map(|f| f.trim_start_matches(' '))
}

/// Parses one `usbctrl=` config list item (e.g. `"type=pv,version=2"`).
/// An empty item yields an all-default spec, as in xl.
pub fn parse_usbctrl_item(item: &str) -> Result<UsbCtrlSpec> {
    let mut spec = UsbCtrlSpec::default();
    for field in config_fields(item) {
        spec.apply_field(field)?;
    }
    Ok(spec)
}

/// Parses one `usbdev=` config list item (e.g. `"hostbus=1,hostaddr=3"`).
pub fn parse_usbdev_item(item: &str) -> Result<UsbDevSpec> {
    let mut spec = UsbDevSpec::default();
    for field in config_fields(item) {
        spec.apply_field(field)?;
    }
    Ok(spec)
}

/// Parses `usbctrl-attach` arguments: each argument is one field, never
/// split on commas and not stripped (xl's `main_usbctrl_attach`).
pub fn parse_usbctrl_args<S: AsRef<str>>(args: &[S]) -> Result<UsbCtrlSpec> {
    let mut spec = UsbCtrlSpec::default();
    for arg in args {
        spec.apply_field(arg.as_ref())?;
    }
    Ok(spec)
}

/// Parses `usbdev-attach` arguments: each argument is one field, never
/// split on commas (`hostbus=1,hostaddr=2` sets hostbus 1 only, as xl).
pub fn parse_usbdev_args<S: AsRef<str>>(args: &[S]) -> Result<UsbDevSpec> {
    let mut spec = UsbDevSpec::default();
    for arg in args {
        spec.apply_field(arg.as_ref())?;
    }
    Ok(spec)
}

#[cfg(test)]
#[path = "spec_tests.rs"]
mod tests;
