//! The USB part of a guest configuration, read from a parsed file exactly
//! as `xl create` reads it (`tools/xl/xl_parse.c`, reference §2.1, §2.5):
//!
//! * `usbctrl=` and `usbdev=` must be lists; a single value gives xl's
//!   warning ``parameter `usbctrl' is a single value but should be a list``
//!   and the setting is ignored. Both are read for every guest type.
//! * Each string item is a spec ([`crate::spec`]); a bad field is an error
//!   (xl exits). Controllers get `devid` = their index in the list.
//! * xl stops at the first item that is itself a list and ignores it and
//!   every later item; vusb does the same and adds a warning.
//! * The legacy options `usb=`, `usbversion=` and `usbdevice=` (a list, or
//!   a single string kept apart as libxl's `usbdevice`) are read only for
//!   HVM guests, with libxlu's number rules (warnings, then ignored).
//! * The guest type follows xl's quirky prefix match: `type=` is HVM if
//!   its value is a prefix of `hvm` (so `h` and even `""` are HVM), else
//!   PV for a prefix of `pv`, else PVH for a prefix of `pvh`; the legacy
//!   `builder=` (`hvm` / `generic`) must agree; the default is PV.

use crate::config::{Config, Warning};
use crate::error::{Error, Result};
use crate::lexer::Pos;
use crate::spec::{UsbCtrlSpec, UsbDevSpec, parse_usbctrl_item, parse_usbdev_item};

/// libxl's domain types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GuestType {
    /// Paravirtualised guest.
    Pv,
    /// PVH guest.
    Pvh,
    /// Fully virtualised guest with a device model.
    Hvm,
}

impl GuestType {
    /// libxl's name (`pv`, `pvh`, `hvm`).
    pub fn as_str(self) -> &'static str {
        match self {
            GuestType::Pv => "pv",
            GuestType::Pvh => "pvh",
            GuestType::Hvm => "hvm",
        }
    }

    /// Parses libxl's name exactly.
    pub fn from_name(s: &str) -> Option<Self> {
        [GuestType::Pv, GuestType::Pvh, GuestType::Hvm]
            .into_iter()
            .find(|t| t.as_str() == s)
    }
}

/// One controller of the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CtrlEntry {
    /// The devid xl gives it (index in `usbctrl=`).
    pub devid: i32,
    /// What was written.
    pub spec: UsbCtrlSpec,
    /// Where the item is in the file, if it came from one.
    pub pos: Option<Pos>,
}

/// One device of the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevEntry {
    /// What was written.
    pub spec: UsbDevSpec,
    /// Where the item is in the file, if it came from one.
    pub pos: Option<Pos>,
}

/// The legacy HVM USB options (libxl's `b_info.u.hvm` fields).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LegacyUsb {
    /// `usb=` (defbool: absent = default).
    pub usb: Option<bool>,
    /// `usbversion=`.
    pub usbversion: Option<i64>,
    /// `usbdevice="DEV"` (the single-string form).
    pub usbdevice: Option<String>,
    /// `usbdevice=["DEV", …]`.
    pub usbdevice_list: Option<Vec<String>>,
}

impl LegacyUsb {
    /// True when none of the options is set.
    pub fn is_empty(&self) -> bool {
        *self == LegacyUsb::default()
    }
}

/// The USB part of a domain configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsbConfig {
    /// The guest type (decides whether the legacy options count).
    pub guest_type: GuestType,
    /// `usbctrl=` entries in order.
    pub ctrls: Vec<CtrlEntry>,
    /// `usbdev=` entries in order.
    pub devs: Vec<DevEntry>,
    /// Legacy HVM options (always empty for PV/PVH).
    pub legacy: LegacyUsb,
}

impl UsbConfig {
    /// An empty configuration for a guest type.
    pub fn new(guest_type: GuestType) -> Self {
        UsbConfig {
            guest_type,
            ctrls: Vec::new(),
            devs: Vec::new(),
            legacy: LegacyUsb::default(),
        }
    }
}

/// Reads the USB settings of a parsed file. Returns the configuration and
/// the warnings xl would print (each `LINE: warning: …`).
pub fn usb_config(cfg: &Config) -> Result<(UsbConfig, Vec<Warning>)> {
    let mut warnings = Vec::new();
    let guest_type = guest_type(cfg, &mut warnings)?;
    let mut out = UsbConfig::new(guest_type);

    for (index, (text, pos)) in string_items(cfg, "usbctrl", &mut warnings)
        .into_iter()
        .enumerate()
    {
        let spec = parse_usbctrl_item(text).map_err(|e| in_file("usbctrl", pos, e))?;
        let devid = i32::try_from(index).unwrap_or(i32::MAX);
        out.ctrls.push(CtrlEntry {
            devid,
            spec,
            pos: Some(pos),
        });
    }
    for (text, pos) in string_items(cfg, "usbdev", &mut warnings) {
        let spec = parse_usbdev_item(text).map_err(|e| in_file("usbdev", pos, e))?;
        out.devs.push(DevEntry {
            spec,
            pos: Some(pos),
        });
    }
    if guest_type == GuestType::Hvm {
        out.legacy = legacy(cfg, &mut warnings);
    }
    undefined_controllers(&out, &mut warnings);
    Ok((out, warnings))
}

/// vusb's own warning: a device naming a controller the file does not
/// define makes `xl create` fail (libxl cannot read the controller). It
/// is no error here, as `config-apply` to a running guest that has the
/// controller is fine.
fn undefined_controllers(cfg: &UsbConfig, warnings: &mut Vec<Warning>) {
    for (index, d) in cfg.devs.iter().enumerate() {
        let Some(c) = d.spec.controller else {
            continue;
        };
        if !cfg.ctrls.iter().any(|e| i64::from(e.devid) == i64::from(c)) {
            let pos = d.pos.unwrap_or_default();
            warnings.push(Warning {
                line: pos.line,
                col: Some(pos.col),
                message: format!(
                    "usbdev {index} names controller {c}, which this file does not define (xl create would fail)"
                ),
            });
        }
    }
}

fn in_file(key: &str, pos: Pos, source: Error) -> Error {
    Error::SpecInFile {
        key: key.to_owned(),
        line: pos.line,
        col: pos.col,
        source: Box::new(source),
    }
}

/// The leading string items of a list setting, as xl's
/// `xlu_cfg_get_listitem` loop sees them.
fn string_items<'c>(
    cfg: &'c Config,
    key: &str,
    warnings: &mut Vec<Warning>,
) -> Vec<(&'c str, Pos)> {
    let items = match cfg.get_list(key) {
        Ok(Some((_, items))) => items,
        Ok(None) => return Vec::new(),
        Err(w) => {
            warnings.push(w);
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for item in items {
        match item.as_atom() {
            Some(text) => out.push((text, item.pos)),
            None => {
                warnings.push(Warning {
                    line: item.pos.line,
                    col: Some(item.pos.col),
                    message: format!(
                        "item {} of `{key}' is a list; xl ignores it and every later item",
                        out.len()
                    ),
                });
                break;
            }
        }
    }
    out
}

fn is_prefix_of(value: &str, word: &str) -> bool {
    word.starts_with(value)
}

fn guest_type(cfg: &Config, warnings: &mut Vec<Warning>) -> Result<GuestType> {
    let invalid = |name: &str, value: &str| {
        let pos = cfg.get(name).map(|s| s.value.pos).unwrap_or_default();
        Error::Setting {
            line: pos.line,
            col: pos.col,
            message: format!("Invalid domain type {value}."),
        }
    };
    let mut ty = None;
    match cfg.get_string("type") {
        Ok(Some(v)) => {
            ty = Some(if is_prefix_of(v, "hvm") {
                GuestType::Hvm
            } else if is_prefix_of(v, "pv") {
                GuestType::Pv
            } else if is_prefix_of(v, "pvh") {
                GuestType::Pvh
            } else {
                return Err(invalid("type", v));
            });
        }
        Ok(None) => {}
        Err(w) => warnings.push(w),
    }
    match cfg.get_string("builder") {
        Ok(Some(v)) => {
            let builder = if is_prefix_of(v, "hvm") {
                GuestType::Hvm
            } else if is_prefix_of(v, "generic") {
                GuestType::Pv
            } else {
                return Err(invalid("builder", v));
            };
            if ty.is_some_and(|t| t != builder) {
                let pos = cfg.get("builder").map(|s| s.value.pos).unwrap_or_default();
                return Err(Error::Setting {
                    line: pos.line,
                    col: pos.col,
                    message: "Contradicting \"builder\" and \"type\" options specified.".to_owned(),
                });
            }
            ty = Some(builder);
        }
        Ok(None) => {}
        Err(w) => warnings.push(w),
    }
    Ok(ty.unwrap_or(GuestType::Pv))
}

fn legacy(cfg: &Config, warnings: &mut Vec<Warning>) -> LegacyUsb {
    let mut out = LegacyUsb::default();
    match cfg.get_defbool("usb") {
        Ok(v) => out.usb = v,
        Err(w) => warnings.push(w),
    }
    match cfg.get_long("usbversion") {
        Ok(v) => out.usbversion = v,
        Err(w) => warnings.push(w),
    }
    if let Some(set) = cfg.get("usbdevice") {
        match set.value.as_list() {
            // libxl's string list ends at the first non-string item.
            Some(items) => {
                out.usbdevice_list = Some(
                    items
                        .iter()
                        .map_while(|v| v.as_atom().map(str::to_owned))
                        .collect(),
                );
            }
            None => out.usbdevice = set.value.as_atom().map(str::to_owned),
        }
    }
    let redirection = cfg
        .get_long("spiceusbredirection")
        .ok()
        .flatten()
        .unwrap_or(0);
    let new_style = out.usbversion.unwrap_or(0) != 0 || redirection > 0;
    let old_style =
        out.usb == Some(true) || out.usbdevice.is_some() || out.usbdevice_list.is_some();
    if new_style && old_style {
        let line = cfg
            .get("usbversion")
            .or(cfg.get("usb"))
            .map_or(0, |s| s.line());
        warnings.push(Warning {
            line,
            col: None,
            message: "usbversion and/or usbredirection cannot be enabled with usb and/or usbdevice parameters (libxl will refuse to create the guest)".to_owned(),
        });
    }
    out
}

#[cfg(test)]
#[path = "usb_tests.rs"]
mod tests;
