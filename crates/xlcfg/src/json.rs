//! The USB part of a domain configuration in libxl's own JSON shape
//! (`libxl_domain_config`, reference §8), written by `config-show` and
//! `config-dump` and stored by vusb's persistence.
//!
//! ```text
//! { "c_info":   { "type": "hvm" },
//!   "b_info":   { "type.hvm": { "usb": "True", "usbversion": 2,
//!                               "usbdevice": "tablet", "usbdevice_list": ["tablet"] } },
//!   "usbctrls": [ { "type": "pv", "devid": 0, "version": 2, "ports": 8 } ],
//!   "usbdevs":  [ { "ctrl": 0, "port": 1, "type.hostdev": { "hostbus": 3, "hostaddr": 5 } } ] }
//! ```
//!
//! As libxl's generated `_gen_json`, a field is left out when it holds its
//! init value (usbctrl `type` auto, `devid` −1, `version`/`ports` 0; usbdev
//! `ctrl` −1, `port` 0, `hostbus`/`hostaddr` 0; empty arrays). `b_info` is
//! written only when a legacy HVM option holds a value other than its
//! default. Deliberate differences:
//!
//! * a host device always carries `type.hostdev`, also when the spec had no
//!   `type=` (libxl stores an empty object there, BUG J2);
//! * vusb's extension keys go into a `"vusb"` object inside the entry
//!   (`model`; `type` for tablet/mouse/keyboard, `busid`, `vendor` and
//!   `product` as 4 hex digits, `serial`, `portpath`). libxl's JSON reader
//!   ignores keys it does not know, so the document stays loadable by libxl.

use serde_json::{Map, Value, json};

use crate::error::{Error, Result};
use crate::spec::{CtrlKind, DevKind, UsbCtrlSpec, UsbDevSpec};
use crate::usb::{CtrlEntry, DevEntry, GuestType, LegacyUsb, UsbConfig};

/// libxl's JSON of one controller.
pub fn ctrl_to_json(devid: i32, spec: &UsbCtrlSpec) -> Value {
    let mut m = Map::new();
    if spec.kind != CtrlKind::Auto {
        m.insert("type".into(), json!(spec.kind.as_str()));
    }
    if devid != -1 {
        m.insert("devid".into(), json!(devid));
    }
    if spec.version_or_zero() != 0 {
        m.insert("version".into(), json!(spec.version_or_zero()));
    }
    if spec.ports_or_zero() != 0 {
        m.insert("ports".into(), json!(spec.ports_or_zero()));
    }
    if let Some(model) = &spec.model {
        m.insert("vusb".into(), json!({ "model": model }));
    }
    Value::Object(m)
}

/// libxl's JSON of one device.
pub fn dev_to_json(spec: &UsbDevSpec) -> Value {
    let mut m = Map::new();
    if let Some(c) = spec.controller {
        m.insert("ctrl".into(), json!(c));
    }
    if let Some(p) = spec.port {
        m.insert("port".into(), json!(p));
    }
    if spec.kind == DevKind::HostDev {
        let mut h = Map::new();
        if let Some(b) = spec.hostbus.filter(|&b| b != 0) {
            h.insert("hostbus".into(), json!(b));
        }
        if let Some(a) = spec.hostaddr.filter(|&a| a != 0) {
            h.insert("hostaddr".into(), json!(a));
        }
        m.insert("type.hostdev".into(), Value::Object(h));
    }
    let mut x = Map::new();
    if spec.kind != DevKind::HostDev {
        x.insert("type".into(), json!(spec.kind.as_str()));
    }
    if let Some(v) = &spec.busid {
        x.insert("busid".into(), json!(v));
    }
    if let Some(v) = spec.vendor {
        x.insert("vendor".into(), json!(format!("{v:04x}")));
    }
    if let Some(v) = spec.product {
        x.insert("product".into(), json!(format!("{v:04x}")));
    }
    if let Some(v) = &spec.serial {
        x.insert("serial".into(), json!(v));
    }
    if let Some(v) = &spec.portpath {
        x.insert("portpath".into(), json!(v));
    }
    if !x.is_empty() {
        m.insert("vusb".into(), Value::Object(x));
    }
    Value::Object(m)
}

fn legacy_to_json(l: &LegacyUsb) -> Value {
    let mut m = Map::new();
    if let Some(b) = l.usb {
        m.insert("usb".into(), json!(if b { "True" } else { "False" }));
    }
    if let Some(v) = l.usbversion.filter(|&v| v != 0) {
        m.insert("usbversion".into(), json!(v));
    }
    if let Some(v) = &l.usbdevice {
        m.insert("usbdevice".into(), json!(v));
    }
    if let Some(v) = &l.usbdevice_list {
        m.insert("usbdevice_list".into(), json!(v));
    }
    Value::Object(m)
}

/// The whole USB part in libxl's shape.
pub fn to_json(cfg: &UsbConfig) -> Value {
    let mut m = Map::new();
    m.insert("c_info".into(), json!({ "type": cfg.guest_type.as_str() }));
    // Only when something differs from libxl's defaults (`usbversion=0`
    // is set but is the default: no `b_info`).
    let legacy = legacy_to_json(&cfg.legacy);
    if legacy.as_object().is_some_and(|o| !o.is_empty()) {
        let key = format!("type.{}", cfg.guest_type.as_str());
        m.insert("b_info".into(), json!({ key: legacy }));
    }
    if !cfg.ctrls.is_empty() {
        let ctrls = cfg
            .ctrls
            .iter()
            .map(|c| ctrl_to_json(c.devid, &c.spec))
            .collect();
        m.insert("usbctrls".into(), Value::Array(ctrls));
    }
    if !cfg.devs.is_empty() {
        let devs = cfg.devs.iter().map(|d| dev_to_json(&d.spec)).collect();
        m.insert("usbdevs".into(), Value::Array(devs));
    }
    Value::Object(m)
}

fn bad(path: impl Into<String>, expected: &'static str) -> Error {
    Error::InvalidJson {
        path: path.into(),
        expected,
    }
}

fn object<'v>(v: &'v Value, path: &str) -> Result<&'v Map<String, Value>> {
    v.as_object().ok_or_else(|| bad(path, "an object"))
}

fn opt_int<T: TryFrom<i64>>(m: &Map<String, Value>, key: &str, path: &str) -> Result<Option<T>> {
    match m.get(key) {
        None => Ok(None),
        Some(v) => v
            .as_i64()
            .and_then(|i| T::try_from(i).ok())
            .map(Some)
            .ok_or_else(|| bad(format!("{path}.{key}"), "an integer in range")),
    }
}

fn opt_str<'v>(m: &'v Map<String, Value>, key: &str, path: &str) -> Result<Option<&'v str>> {
    match m.get(key) {
        None => Ok(None),
        Some(v) => v
            .as_str()
            .map(Some)
            .ok_or_else(|| bad(format!("{path}.{key}"), "a string")),
    }
}

/// Reads one controller entry.
pub fn ctrl_from_json(v: &Value, path: &str) -> Result<CtrlEntry> {
    let m = object(v, path)?;
    let kind = match opt_str(m, "type", path)? {
        None => CtrlKind::Auto,
        Some(t) => CtrlKind::from_name(t)
            .ok_or_else(|| bad(format!("{path}.type"), "a controller type"))?,
    };
    let model = match m.get("vusb") {
        None => None,
        Some(x) => {
            let xp = format!("{path}.vusb");
            opt_str(object(x, &xp)?, "model", &xp)?.map(str::to_owned)
        }
    };
    let spec = UsbCtrlSpec {
        kind,
        version: opt_int(m, "version", path)?,
        ports: opt_int(m, "ports", path)?,
        model,
    };
    Ok(CtrlEntry {
        devid: opt_int(m, "devid", path)?.unwrap_or(-1),
        spec,
        pos: None,
    })
}

fn hex_id(x: &Map<String, Value>, key: &str, path: &str) -> Result<Option<u16>> {
    match opt_str(x, key, path)? {
        None => Ok(None),
        Some(s) => u16::from_str_radix(s, 16)
            .map(Some)
            .map_err(|_| bad(format!("{path}.{key}"), "4 hexadecimal digits")),
    }
}

/// Reads one device entry. An entry with neither `type.hostdev` nor a
/// vusb `type` (what libxl writes for a spec without `type=`) is a host
/// device.
pub fn dev_from_json(v: &Value, path: &str) -> Result<DevEntry> {
    let m = object(v, path)?;
    // libxl's sentinels: ctrl -1 = any controller, port 0 = any port.
    let ctrl: Option<i64> = opt_int(m, "ctrl", path)?;
    let port: Option<i64> = opt_int(m, "port", path)?;
    let mut spec = UsbDevSpec {
        controller: match ctrl {
            None | Some(-1) => None,
            Some(c) => Some(
                u32::try_from(c)
                    .map_err(|_| bad(format!("{path}.ctrl"), "a controller devid or -1"))?,
            ),
        },
        port: match port {
            None | Some(0) => None,
            Some(p) => Some(
                u32::try_from(p).map_err(|_| bad(format!("{path}.port"), "a port number or 0"))?,
            ),
        },
        ..UsbDevSpec::default()
    };
    if let Some(h) = m.get("type.hostdev") {
        let hp = format!("{path}.type.hostdev");
        let h = object(h, &hp)?;
        spec.hostbus = opt_int(h, "hostbus", &hp)?;
        spec.hostaddr = opt_int(h, "hostaddr", &hp)?;
    }
    if let Some(x) = m.get("vusb") {
        let xp = format!("{path}.vusb");
        let x = object(x, &xp)?;
        if let Some(t) = opt_str(x, "type", &xp)? {
            spec.kind =
                DevKind::from_name(t).ok_or_else(|| bad(format!("{xp}.type"), "a device type"))?;
        }
        spec.busid = opt_str(x, "busid", &xp)?.map(str::to_owned);
        spec.vendor = hex_id(x, "vendor", &xp)?;
        spec.product = hex_id(x, "product", &xp)?;
        spec.serial = opt_str(x, "serial", &xp)?.map(str::to_owned);
        spec.portpath = opt_str(x, "portpath", &xp)?.map(str::to_owned);
    }
    Ok(DevEntry { spec, pos: None })
}

fn legacy_from_json(v: &Value, path: &str) -> Result<LegacyUsb> {
    let m = object(v, path)?;
    let usb = match opt_str(m, "usb", path)? {
        None | Some("<default>") => None,
        Some("True") => Some(true),
        Some("False") => Some(false),
        Some(_) => return Err(bad(format!("{path}.usb"), "\"True\" or \"False\"")),
    };
    let usbdevice_list = match m.get("usbdevice_list") {
        None => None,
        Some(l) => Some(
            l.as_array()
                .and_then(|a| a.iter().map(|s| s.as_str().map(str::to_owned)).collect())
                .ok_or_else(|| bad(format!("{path}.usbdevice_list"), "a list of strings"))?,
        ),
    };
    Ok(LegacyUsb {
        usb,
        usbversion: opt_int(m, "usbversion", path)?,
        usbdevice: opt_str(m, "usbdevice", path)?.map(str::to_owned),
        usbdevice_list,
    })
}

/// Reads the USB part of a libxl-shaped domain configuration (vusb's own
/// or libxl's full `libxl-json`; other keys are ignored). Without
/// `c_info.type` the guest is taken as PV, like xl's default.
pub fn from_json(v: &Value) -> Result<UsbConfig> {
    let m = object(v, "$")?;
    let guest_type = match m.get("c_info") {
        None => GuestType::Pv,
        Some(c) => match opt_str(object(c, "c_info")?, "type", "c_info")? {
            None => GuestType::Pv,
            Some(t) => {
                GuestType::from_name(t).ok_or_else(|| bad("c_info.type", "pv, pvh or hvm"))?
            }
        },
    };
    let mut cfg = UsbConfig::new(guest_type);
    if let Some(b) = m.get("b_info") {
        let key = format!("type.{}", guest_type.as_str());
        if let Some(u) = object(b, "b_info")?.get(&key)
            && guest_type == GuestType::Hvm
        {
            cfg.legacy = legacy_from_json(u, &format!("b_info.{key}"))?;
        }
    }
    for (name, into_ctrls) in [("usbctrls", true), ("usbdevs", false)] {
        let Some(list) = m.get(name) else { continue };
        let items = list.as_array().ok_or_else(|| bad(name, "a list"))?;
        for (i, item) in items.iter().enumerate() {
            let path = format!("{name}[{i}]");
            if into_ctrls {
                cfg.ctrls.push(ctrl_from_json(item, &path)?);
            } else {
                cfg.devs.push(dev_from_json(item, &path)?);
            }
        }
    }
    Ok(cfg)
}

#[cfg(test)]
#[path = "json_tests.rs"]
mod tests;
