//! libxl's stored domain configuration (reference §8): when
//! `<xen_lib_dir>/userdata-d.<domid>.<uuid>.libxl-json` exists, vusb keeps
//! its `usbctrls` and `usbdevs` arrays in step with hot-plug, so `xl list
//! -l`, save/restore and reboot see the same configuration as with xl.
//!
//! Matches libxl: the update happens under libxl's userdata lock
//! (`userdata-l.<domid>.<uuid>.domain-userdata-lock`, an exclusive
//! `flock`), entries are replaced by identity (controller by `devid`,
//! device by (`ctrl`, `port`)) or appended, the **resolved** values are
//! stored, fields at their default are omitted, the file is printed as
//! libxl's yajl does and keeps its trailing NUL.
//!
//! Deliberately differs: on detach vusb removes the entry (libxl leaves it
//! and filters it at read time, reference J3; removing is the honest state
//! and what libxl's reader would compute anyway). Devices are stored with
//! their bus/address, as libxl does for hot-plugged devices (J1/J2 fixed
//! for what vusb writes). The file is replaced atomically (temp + rename).
//! A domain without the file (not created by xl) is left alone.

mod yajl;

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};
use vusb_xenstore::{DomId, Xenstore};

use crate::layout::Controller;
use crate::{Error, HostPaths, Result};

/// libxl_domain_config's field order, to insert a missing array where
/// libxl would print it.
const FIELD_ORDER: &[&str] = &[
    "c_info",
    "b_info",
    "disks",
    "nics",
    "pcidevs",
    "rdms",
    "dtdevs",
    "vfbs",
    "vkbs",
    "vtpms",
    "p9s",
    "pvcallsifs",
    "vdispls",
    "vsnds",
    "channels",
    "usbctrls",
    "usbdevs",
    "on_poweroff",
    "on_reboot",
    "on_watchdog",
    "on_crash",
    "on_soft_reset",
];

/// The JSON entry libxl stores for a hot-plugged controller.
pub fn ctrl_entry(c: &Controller) -> Value {
    json!({
        "type": c.ctype.as_str(),
        "devid": c.devid,
        "version": c.version,
        "ports": c.ports,
    })
}

/// The JSON entry libxl stores for a hot-plugged host device.
pub fn dev_entry(ctrl: u32, port: u32, hostbus: u8, hostaddr: u8) -> Value {
    let mut host = Map::new();
    if hostbus != 0 {
        host.insert("hostbus".into(), json!(hostbus));
    }
    if hostaddr != 0 {
        host.insert("hostaddr".into(), json!(hostaddr));
    }
    json!({ "ctrl": ctrl, "port": port, "type.hostdev": Value::Object(host) })
}

/// The stored configuration file of `domid`, if any. Reads no xenstore
/// node when exactly one file matches the domid; with several (stale files
/// of an earlier domain with the same domid) the uuid decides.
pub fn config_file<X: Xenstore + ?Sized>(
    xs: &X,
    paths: &HostPaths,
    domid: DomId,
) -> Result<Option<(PathBuf, PathBuf)>> {
    let prefix = format!("userdata-d.{domid}.");
    let suffix = ".libxl-json";
    let entries = match fs::read_dir(&paths.xen_lib_dir) {
        Ok(e) => e,
        Err(_) => return Ok(None),
    };
    let mut uuids: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter_map(|n| {
            n.strip_prefix(&prefix)
                .and_then(|r| r.strip_suffix(suffix))
                .map(str::to_owned)
        })
        .filter(|u| !u.contains('.'))
        .collect();
    let uuid = match uuids.len() {
        0 => return Ok(None),
        1 => uuids.remove(0),
        _ => match crate::domain::uuid(xs, domid)? {
            Some(u) if uuids.contains(&u) => u,
            _ => return Ok(None),
        },
    };
    let dir = &paths.xen_lib_dir;
    Ok(Some((
        dir.join(format!("userdata-d.{domid}.{uuid}.libxl-json")),
        dir.join(format!("userdata-l.{domid}.{uuid}.domain-userdata-lock")),
    )))
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::LibxlJson {
        path: path.to_owned(),
        source,
    }
}

/// Apply `edit` to the domain's stored configuration under libxl's lock.
/// No file: nothing to do.
pub fn update<X, F>(xs: &X, paths: &HostPaths, domid: DomId, edit: F) -> Result<()>
where
    X: Xenstore + ?Sized,
    F: FnOnce(&mut Map<String, Value>),
{
    let Some((file, lock)) = config_file(xs, paths, domid)? else {
        return Ok(());
    };
    let lockf = crate::flock::lock_unless_dry(paths.plan(), &lock).map_err(io_err(&lock))?;
    let raw = crate::dryrun::read_file(paths.plan(), &file, crate::small_file::MAX_CONFIG_FILE)
        .map_err(io_err(&file))?;
    let had_nul = raw.last() == Some(&0);
    let text = String::from_utf8_lossy(&raw);
    let text = text.trim_end_matches('\0');
    let mut doc: Value = serde_json::from_str(text).map_err(|e| Error::LibxlJsonMalformed {
        path: file.clone(),
        reason: e.to_string(),
    })?;
    let Some(map) = doc.as_object_mut() else {
        return Err(Error::LibxlJsonMalformed {
            path: file,
            reason: "not a JSON object".into(),
        });
    };
    edit(map);
    let mut out = yajl::to_string(&doc);
    out.push('\n');
    let mut bytes = out.into_bytes();
    if had_nul {
        bytes.push(0);
    }
    if let Some(plan) = paths.plan() {
        plan.write_file(&file, &bytes);
        return Ok(());
    }
    let tmp = file.with_extension("libxl-json.vusb-tmp");
    let mut f = File::create(&tmp).map_err(io_err(&tmp))?;
    if let Ok(meta) = fs::metadata(&file) {
        let _ = f.set_permissions(meta.permissions());
    }
    f.write_all(&bytes).map_err(io_err(&tmp))?;
    f.sync_all().map_err(io_err(&tmp))?;
    fs::rename(&tmp, &file).map_err(io_err(&file))?;
    drop(lockf); // releases the flock
    Ok(())
}

/// Insert `key` (an array) where libxl's field order puts it.
fn array_mut<'m>(map: &'m mut Map<String, Value>, key: &str) -> &'m mut Vec<Value> {
    if !map.get(key).is_some_and(Value::is_array) {
        let pos = FIELD_ORDER.iter().position(|k| *k == key).unwrap_or(0);
        let index = map
            .keys()
            .position(|k| {
                FIELD_ORDER
                    .iter()
                    .position(|f| f == k)
                    .is_some_and(|p| p > pos)
            })
            .unwrap_or(map.len());
        map.shift_insert(index, key.to_owned(), Value::Array(Vec::new()));
    }
    match map.get_mut(key) {
        Some(Value::Array(a)) => a,
        _ => unreachable!("just inserted an array"),
    }
}

fn replace_or_push(list: &mut Vec<Value>, entry: Value, same: impl Fn(&Value) -> bool) {
    match list.iter_mut().find(|e| same(e)) {
        Some(slot) => *slot = entry,
        None => list.push(entry),
    }
}

fn field(v: &Value, k: &str) -> Option<i64> {
    v.get(k).and_then(Value::as_i64)
}

/// Record a hot-plugged controller (replace by devid).
pub fn record_ctrl<X: Xenstore + ?Sized>(
    xs: &X,
    paths: &HostPaths,
    domid: DomId,
    c: &Controller,
) -> Result<()> {
    update(xs, paths, domid, |m| {
        let list = array_mut(m, "usbctrls");
        replace_or_push(list, ctrl_entry(c), |e| {
            field(e, "devid") == Some(i64::from(c.devid))
        });
    })
}

/// Record a hot-plugged device (replace by (ctrl, port)).
pub fn record_dev<X: Xenstore + ?Sized>(
    xs: &X,
    paths: &HostPaths,
    domid: DomId,
    ctrl: u32,
    port: u32,
    hostbus: u8,
    hostaddr: u8,
) -> Result<()> {
    update(xs, paths, domid, |m| {
        let list = array_mut(m, "usbdevs");
        replace_or_push(list, dev_entry(ctrl, port, hostbus, hostaddr), |e| {
            field(e, "ctrl") == Some(i64::from(ctrl)) && field(e, "port") == Some(i64::from(port))
        });
    })
}

/// Forget a removed controller and its devices.
pub fn forget_ctrl<X: Xenstore + ?Sized>(
    xs: &X,
    paths: &HostPaths,
    domid: DomId,
    devid: u32,
) -> Result<()> {
    update(xs, paths, domid, |m| {
        let d = Some(i64::from(devid));
        if let Some(Value::Array(a)) = m.get_mut("usbctrls") {
            a.retain(|e| field(e, "devid") != d);
        }
        if let Some(Value::Array(a)) = m.get_mut("usbdevs") {
            a.retain(|e| field(e, "ctrl") != d);
        }
    })
}

/// Forget a removed device.
pub fn forget_dev<X: Xenstore + ?Sized>(
    xs: &X,
    paths: &HostPaths,
    domid: DomId,
    ctrl: u32,
    port: u32,
) -> Result<()> {
    update(xs, paths, domid, |m| {
        if let Some(Value::Array(a)) = m.get_mut("usbdevs") {
            a.retain(|e| {
                !(field(e, "ctrl") == Some(i64::from(ctrl))
                    && field(e, "port") == Some(i64::from(port)))
            });
        }
    })
}
