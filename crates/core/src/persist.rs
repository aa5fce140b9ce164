//! vusb's own record of each guest's USB configuration, hot-plugged
//! devices included, so that a guest re-created under a new domid gets
//! them back (`vusb config-apply <dom> --saved`) and `vusb config-dump`
//! can show them.
//!
//! Why: libxl loses hot-plugged usbdevs from its stored configuration
//! (reference §8, BUG J1), saves config devices without `type=hostdev`
//! without their address (J2) and never shrinks the JSON on removal (J3).
//! vusb keeps its own copy, which detach updates.
//!
//! Schema (this module owns it): one file per guest,
//! `<state_dir>/domains/<uuid>.json`, keyed by the uuid (read from the name of libxl's stored
//! configuration file, else from `/local/domain/<domid>/vm`), because the domid changes
//! when a guest is re-created and the uuid does not. The document is the
//! `config-show` JSON shape (libxl's `libxl_domain_config` subset, see
//! `vusb_xlcfg::json`) plus a top-level `"vusb"` object:
//!
//! ```text
//! { "vusb": { "format": 1, "uuid": "…", "domid": 7 },
//!   "c_info": { "type": "pv" },
//!   "usbctrls": [ { "type": "pv", "devid": 0, "version": 2, "ports": 8 } ],
//!   "usbdevs": [ { "ctrl": 0, "port": 1, "type.hostdev": { "hostbus": 3, "hostaddr": 5 },
//!                  "vusb": { "busid": "3-1.2", "vendor": "046d", "product": "c52b" } } ] }
//! ```
//!
//! Entries hold **resolved** values, as libxl stores hot-plugged devices:
//! controllers with type, devid, version and ports; devices with their
//! controller, port, bus/address and busid (the physical port, which
//! survives a replug, unlike the address; reference U3). `format` is
//! bumped on any incompatible change; a newer format is refused, not
//! guessed at.
//!
//! Writes are atomic (temporary file, `fsync`, `rename`, `fsync` of the
//! directory) and serialised per guest by an exclusive `flock` on
//! `<uuid>.lock`, so concurrent attaches never lose each other's entry.
//! A domain without a `vm` node (not created by a toolstack) has no uuid
//! and is not recorded; that is logged, not an error.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use vusb_xenstore::{DomId, TxId, Xenstore};
use vusb_xlcfg::json::{from_json, to_json};
use vusb_xlcfg::{CtrlEntry, CtrlKind, DevEntry, GuestType, UsbConfig, UsbCtrlSpec, UsbDevSpec};

use crate::domain::{self, DomainType};
use crate::layout::{Controller, UsbCtrlType};
use crate::{Error, HostPaths, Result, libxl_json};

/// The schema version written (and the newest one read).
pub const FORMAT: u64 = 1;

/// A guest's saved configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Saved {
    /// The guest's uuid (the key).
    pub uuid: String,
    /// The domid it last had when the file was written.
    pub domid: Option<DomId>,
    /// Its USB configuration.
    pub config: UsbConfig,
}

/// What is recorded for an attached host device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevRecord {
    /// Controller devid.
    pub ctrl: u32,
    /// Port (1-based).
    pub port: u32,
    /// The host device's sysfs name.
    pub busid: String,
    /// Its bus number at attach time.
    pub hostbus: u8,
    /// Its device address at attach time.
    pub hostaddr: u8,
    /// idVendor, if known.
    pub vendor: Option<u16>,
    /// idProduct, if known.
    pub product: Option<u16>,
    /// iSerial, if known.
    pub serial: Option<String>,
}

/// `<state_dir>/domains`.
pub fn dir(paths: &HostPaths) -> PathBuf {
    paths.state_dir.join("domains")
}

/// The file of the guest with `uuid`.
pub fn file_path(paths: &HostPaths, uuid: &str) -> PathBuf {
    dir(paths).join(format!("{uuid}.json"))
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::SavedConfig {
        path: path.to_owned(),
        source,
    }
}

fn malformed(path: &Path, reason: impl Into<String>) -> Error {
    Error::SavedConfigMalformed {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

/// Parses a saved document.
pub fn decode(path: &Path, text: &str, uuid: &str) -> Result<Saved> {
    let v: Value = serde_json::from_str(text).map_err(|e| malformed(path, e.to_string()))?;
    let meta = v
        .get("vusb")
        .ok_or_else(|| malformed(path, "no \"vusb\" object"))?;
    let format = meta.get("format").and_then(Value::as_u64);
    match format {
        Some(FORMAT) => {}
        Some(f) => {
            return Err(malformed(
                path,
                format!("format {f} is newer than this vusb ({FORMAT})"),
            ));
        }
        None => return Err(malformed(path, "no format number")),
    }
    if meta.get("uuid").and_then(Value::as_str) != Some(uuid) {
        return Err(malformed(path, format!("not the file of uuid {uuid}")));
    }
    let domid = meta
        .get("domid")
        .and_then(Value::as_u64)
        .and_then(|d| DomId::try_from(d).ok());
    let config = from_json(&v).map_err(|e| malformed(path, e.to_string()))?;
    Ok(Saved {
        uuid: uuid.to_owned(),
        domid,
        config,
    })
}

/// The document for `saved`.
pub fn encode(saved: &Saved) -> Value {
    let mut doc = serde_json::Map::new();
    doc.insert(
        "vusb".into(),
        json!({ "format": FORMAT, "uuid": saved.uuid, "domid": saved.domid }),
    );
    if let Value::Object(m) = to_json(&saved.config) {
        doc.extend(m);
    }
    Value::Object(doc)
}

/// The saved configuration of `uuid`, if any.
pub fn load(paths: &HostPaths, uuid: &str) -> Result<Option<Saved>> {
    let path = file_path(paths, uuid);
    match crate::dryrun::read_file(paths.plan(), &path, crate::small_file::MAX_CONFIG_FILE) {
        Ok(bytes) => {
            let text = String::from_utf8(bytes).map_err(|_| malformed(&path, "not UTF-8"))?;
            decode(&path, &text, uuid).map(Some)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(&path)(e)),
    }
}

/// The saved configuration of the guest now running as `domid`: `Ok(None)`
/// when it has no uuid or nothing was saved.
pub fn load_domain<X: Xenstore + ?Sized>(
    xs: &X,
    paths: &HostPaths,
    domid: DomId,
) -> Result<Option<Saved>> {
    match guest_uuid(xs, paths, domid)? {
        Some((uuid, _)) => load(paths, &uuid),
        None => Ok(None),
    }
}

/// Writes `saved` atomically (no lock taken; see [`update`]).
pub fn store(paths: &HostPaths, saved: &Saved) -> Result<()> {
    let path = file_path(paths, &saved.uuid);
    let mut text = serde_json::to_string_pretty(&encode(saved))
        .map_err(|e| malformed(&path, e.to_string()))?;
    text.push('\n');
    crate::dryrun::write_file(paths.plan(), &path, text.as_bytes()).map_err(io_err(&path))
}

/// Removes the saved configuration of `uuid` (absent is fine).
pub fn remove(paths: &HostPaths, uuid: &str) -> Result<()> {
    let path = file_path(paths, uuid);
    crate::dryrun::remove_file(paths.plan(), &path).map_err(io_err(&path))
}

/// The guest's uuid and, when libxl keeps its configuration, that file.
/// Like `libxl_json::config_file`, this costs no xenstore request when the
/// uuid is in the name of libxl's file (`userdata-d.<domid>.<uuid>…`), so
/// hot-plug persistence adds nothing to an attach's request count; else
/// `/local/domain/<domid>/vm` is read.
fn guest_uuid<X: Xenstore + ?Sized>(
    xs: &X,
    paths: &HostPaths,
    domid: DomId,
) -> Result<Option<(String, Option<PathBuf>)>> {
    if let Some((file, _lock)) = libxl_json::config_file(xs, paths, domid)? {
        let name = file.file_name().map(|n| n.to_string_lossy().into_owned());
        let uuid = name.as_deref().and_then(|n| {
            n.strip_prefix(&format!("userdata-d.{domid}."))
                .and_then(|r| r.strip_suffix(".libxl-json"))
                .map(str::to_owned)
        });
        if let Some(uuid) = uuid {
            return Ok(Some((uuid, Some(file))));
        }
    }
    Ok(domain::uuid(xs, domid)?.map(|u| (u, None)))
}

/// The guest type for a new file: from libxl's stored `c_info.type` when
/// there is one (no request), else `/libxl/<domid>/type`.
fn guest_type<X: Xenstore + ?Sized>(
    xs: &X,
    libxl_file: Option<&Path>,
    domid: DomId,
) -> Result<GuestType> {
    let from_file = libxl_file
        .and_then(|f| crate::small_file::read(f, crate::small_file::MAX_CONFIG_FILE).ok())
        .and_then(|bytes| {
            // libxl's file ends with a NUL byte.
            let text = String::from_utf8_lossy(&bytes)
                .trim_end_matches('\0')
                .to_owned();
            serde_json::from_str::<Value>(&text).ok()
        })
        .and_then(|v| {
            v.pointer("/c_info/type")
                .and_then(Value::as_str)
                .and_then(GuestType::from_name)
        });
    if let Some(t) = from_file {
        return Ok(t);
    }
    Ok(match domain::domain_type(xs, TxId::NONE, domid)? {
        Some(DomainType::Hvm) => GuestType::Hvm,
        Some(DomainType::Pvh) => GuestType::Pvh,
        Some(DomainType::Pv) | None => GuestType::Pv,
    })
}

/// Applies `edit` to the saved configuration of the guest running as
/// `domid`, under the guest's lock, creating the file if needed. A guest
/// without a uuid is skipped (`Ok`).
pub fn update<X, F>(xs: &X, paths: &HostPaths, domid: DomId, edit: F) -> Result<()>
where
    X: Xenstore + ?Sized,
    F: FnOnce(&mut UsbConfig),
{
    let Some((uuid, libxl_file)) = guest_uuid(xs, paths, domid)? else {
        log::debug!("domain {domid} has no uuid; its USB configuration is not saved");
        return Ok(());
    };
    let lock_path = dir(paths).join(format!("{uuid}.lock"));
    if paths.plan().is_none() {
        fs::create_dir_all(dir(paths)).map_err(io_err(&dir(paths)))?;
    }
    let lock =
        crate::flock::lock_unless_dry(paths.plan(), &lock_path).map_err(io_err(&lock_path))?;
    let mut saved = match load(paths, &uuid)? {
        Some(s) => s,
        None => Saved {
            uuid: uuid.clone(),
            domid: Some(domid),
            config: UsbConfig::new(guest_type(xs, libxl_file.as_deref(), domid)?),
        },
    };
    saved.domid = Some(domid);
    edit(&mut saved.config);
    let result = store(paths, &saved);
    drop(lock); // releases the flock
    log::debug!("domain {domid}: saved USB configuration updated ({uuid})");
    result
}

/// The spec recorded for a controller (resolved values).
pub fn ctrl_spec(c: &Controller) -> UsbCtrlSpec {
    let kind = match c.ctype {
        UsbCtrlType::Pv => CtrlKind::Pv,
        UsbCtrlType::Qusb => CtrlKind::Qusb,
        UsbCtrlType::DeviceModel => CtrlKind::DeviceModel,
    };
    UsbCtrlSpec {
        kind,
        version: i32::try_from(c.version).ok(),
        ports: i32::try_from(c.ports).ok(),
        model: None,
    }
}

/// The spec recorded for a device.
pub fn dev_spec(r: &DevRecord) -> UsbDevSpec {
    UsbDevSpec {
        controller: Some(r.ctrl),
        port: Some(r.port).filter(|&p| p != 0),
        hostbus: Some(r.hostbus),
        hostaddr: Some(r.hostaddr),
        busid: Some(r.busid.clone()),
        vendor: r.vendor,
        product: r.product,
        serial: r.serial.clone(),
        ..UsbDevSpec::default()
    }
}

fn dev_at(d: &DevEntry, ctrl: u32, port: u32) -> bool {
    d.spec.controller == Some(ctrl) && d.spec.port == Some(port)
}

/// Puts a controller into `cfg` (replacing the entry with its devid).
pub fn put_ctrl(cfg: &mut UsbConfig, c: &Controller) {
    let devid = i32::try_from(c.devid).unwrap_or(i32::MAX);
    let entry = CtrlEntry {
        devid,
        spec: ctrl_spec(c),
        pos: None,
    };
    match cfg.ctrls.iter_mut().find(|e| e.devid == devid) {
        Some(e) => *e = entry,
        None => cfg.ctrls.push(entry),
    }
}

/// Puts a device into `cfg` (replacing what was at the same controller
/// port, and any older entry of the same busid).
pub fn put_dev(cfg: &mut UsbConfig, rec: &DevRecord) {
    cfg.devs.retain(|d| {
        !dev_at(d, rec.ctrl, rec.port) && d.spec.busid.as_deref() != Some(rec.busid.as_str())
    });
    cfg.devs.push(DevEntry {
        spec: dev_spec(rec),
        pos: None,
    });
}

/// Records a controller after a successful attach (replaces by devid).
pub fn record_ctrl<X: Xenstore + ?Sized>(
    xs: &X,
    paths: &HostPaths,
    domid: DomId,
    c: &Controller,
) -> Result<()> {
    update(xs, paths, domid, |cfg| put_ctrl(cfg, c))
}

/// Records a device after a successful attach (see [`put_dev`]).
pub fn record_dev<X: Xenstore + ?Sized>(
    xs: &X,
    paths: &HostPaths,
    domid: DomId,
    rec: &DevRecord,
) -> Result<()> {
    update(xs, paths, domid, |cfg| put_dev(cfg, rec))
}

/// Forgets a removed controller and every device on it.
pub fn forget_ctrl<X: Xenstore + ?Sized>(
    xs: &X,
    paths: &HostPaths,
    domid: DomId,
    devid: u32,
) -> Result<()> {
    let devid_i = i32::try_from(devid).unwrap_or(i32::MAX);
    update(xs, paths, domid, |cfg| {
        cfg.ctrls.retain(|c| c.devid != devid_i);
        cfg.devs.retain(|d| d.spec.controller != Some(devid));
    })
}

/// Forgets a removed device.
pub fn forget_dev<X: Xenstore + ?Sized>(
    xs: &X,
    paths: &HostPaths,
    domid: DomId,
    ctrl: u32,
    port: u32,
) -> Result<()> {
    update(xs, paths, domid, |cfg| {
        cfg.devs.retain(|d| !dev_at(d, ctrl, port))
    })
}

#[cfg(test)]
#[path = "persist_tests.rs"]
mod tests;
