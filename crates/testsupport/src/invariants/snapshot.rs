//! Reading a host into a [`Snapshot`]: xenstore (controllers, ports,
//! assignment records, driver memory), sysfs bindings, libxl's JSON and
//! vusb's saved configuration. Reading never fails as a whole: what cannot
//! be read or parsed becomes a [`Violation`] of its own.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use serde_json::Value;
use vusb_xenstore::{TxId, Xenstore, XenstoreExt};

use super::{Invariant, Violation};

/// One controller of a guest, from libxl's `/libxl/<domid>/device/vusb/<devid>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ctrl {
    /// `pv`, `qusb` or `devicemodel` (the `type` node; empty if missing).
    pub ctype: String,
    /// Its port table: port -> busid (empty ports left out).
    pub ports: BTreeMap<u32, String>,
}

/// An assignment record `/vusb/assigned/<enc(busid)>`, fields by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The raw text.
    pub text: String,
    /// `key=value` words.
    pub fields: BTreeMap<String, String>,
}

impl Record {
    fn parse(text: &str) -> Record {
        let fields = text
            .split_ascii_whitespace()
            .filter_map(|w| w.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        Record {
            text: text.to_owned(),
            fields,
        }
    }

    /// A numeric field.
    pub fn num(&self, key: &str) -> Option<u32> {
        self.fields.get(key).and_then(|v| v.parse().ok())
    }

    /// The record's type field.
    pub fn ctype(&self) -> &str {
        self.fields.get("type").map_or("", String::as_str)
    }
}

/// Everything the checker looks at, read once.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Guests (`/local/domain/*` but dom0) -> controllers by devid.
    pub guests: BTreeMap<u32, BTreeMap<u32, Ctrl>>,
    /// Backend directories `/local/domain/0/backend/{vusb,qusb}/<d>/<devid>`
    /// and frontend directories `/local/domain/<d>/device/vusb/<devid>`.
    pub backends: Vec<(String, u32, u32)>,
    /// Frontend directories: (domid, devid).
    pub frontends: Vec<(u32, u32)>,
    /// Records by busid.
    pub records: BTreeMap<String, Record>,
    /// Driver memory: busid -> interface -> stored driver path.
    pub memory: BTreeMap<String, BTreeMap<String, Option<String>>>,
    /// sysfs: interface -> driver now.
    pub bindings: BTreeMap<String, Option<String>>,
    /// sysfs: busid -> (busnum, devnum).
    pub addresses: BTreeMap<String, (u32, u32)>,
}

/// libxl's key encoding (`.` -> `_`, `:` -> `@`) reversed.
pub fn decode_key(key: &str) -> String {
    key.replace('_', ".").replace('@', ":")
}

/// libxl's key encoding.
pub fn encode_key(name: &str) -> String {
    name.replace('.', "_").replace(':', "@")
}

fn dir<X: Xenstore + ?Sized>(xs: &X, path: &str, out: &mut Vec<Violation>) -> Vec<String> {
    xs.directory_opt(TxId::NONE, path).unwrap_or_else(|e| {
        out.push(Violation::new(
            Invariant::Readable,
            format!("directory {path}: {e}"),
        ));
        Vec::new()
    })
}

fn read<X: Xenstore + ?Sized>(xs: &X, path: &str, out: &mut Vec<Violation>) -> Option<String> {
    xs.read_opt(TxId::NONE, path).unwrap_or_else(|e| {
        out.push(Violation::new(
            Invariant::Readable,
            format!("read {path}: {e}"),
        ));
        None
    })
}

fn nums(v: Vec<String>) -> Vec<u32> {
    v.iter().filter_map(|s| s.parse().ok()).collect()
}

impl Snapshot {
    /// Read xenstore and sysfs (`sysfs_root` is the directory holding `bus`).
    pub fn read<X: Xenstore + ?Sized>(
        xs: &X,
        sysfs_root: &Path,
        out: &mut Vec<Violation>,
    ) -> Snapshot {
        let mut s = Snapshot::default();
        for domid in nums(dir(xs, "/local/domain", out)) {
            if domid == 0 {
                continue;
            }
            let base = format!("/libxl/{domid}/device/vusb");
            let mut ctrls = BTreeMap::new();
            for devid in nums(dir(xs, &base, out)) {
                let cdir = format!("{base}/{devid}");
                let ctype = read(xs, &format!("{cdir}/type"), out).unwrap_or_default();
                let pdir = match ctype.as_str() {
                    "pv" => format!("/local/domain/0/backend/vusb/{domid}/{devid}/port"),
                    "qusb" => format!("/local/domain/0/backend/qusb/{domid}/{devid}/port"),
                    _ => format!("{cdir}/port"),
                };
                let mut ports = BTreeMap::new();
                for p in nums(dir(xs, &pdir, out)) {
                    if let Some(b) = read(xs, &format!("{pdir}/{p}"), out).filter(|b| !b.is_empty())
                    {
                        ports.insert(p, b);
                    }
                }
                ctrls.insert(devid, Ctrl { ctype, ports });
            }
            s.guests.insert(domid, ctrls);
            for devid in nums(dir(xs, &format!("/local/domain/{domid}/device/vusb"), out)) {
                s.frontends.push((domid, devid));
            }
        }
        for kind in ["vusb", "qusb"] {
            let root = format!("/local/domain/0/backend/{kind}");
            for domid in nums(dir(xs, &root, out)) {
                for devid in nums(dir(xs, &format!("{root}/{domid}"), out)) {
                    s.backends.push((kind.to_owned(), domid, devid));
                }
            }
        }
        for key in dir(xs, "/vusb/assigned", out) {
            let text = read(xs, &format!("/vusb/assigned/{key}"), out).unwrap_or_default();
            s.records.insert(decode_key(&key), Record::parse(&text));
        }
        for key in dir(xs, "/libxl/usbback", out) {
            let mut intfs = BTreeMap::new();
            for ikey in dir(xs, &format!("/libxl/usbback/{key}"), out) {
                let path = format!("/libxl/usbback/{key}/{ikey}/driver_path");
                intfs.insert(decode_key(&ikey), read(xs, &path, out));
            }
            s.memory.insert(decode_key(&key), intfs);
        }
        s.read_sysfs(sysfs_root, out);
        s
    }

    fn read_sysfs(&mut self, sysfs_root: &Path, out: &mut Vec<Violation>) {
        let devs = sysfs_root.join("bus/usb/devices");
        let entries = match fs::read_dir(&devs) {
            Ok(e) => e,
            Err(e) => {
                out.push(Violation::new(
                    Invariant::Readable,
                    format!("{}: {e}", devs.display()),
                ));
                return;
            }
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.contains(':') {
                self.bindings.insert(name, driver_of(&e.path()));
            } else {
                let num = |f: &str| {
                    fs::read_to_string(e.path().join(f))
                        .ok()
                        .and_then(|v| v.trim().parse().ok())
                };
                if let (Some(b), Some(d)) = (num("busnum"), num("devnum")) {
                    self.addresses.insert(name, (b, d));
                }
            }
        }
    }

    /// Every occupied port: busid -> [(domid, devid, port, type)].
    pub fn occupied(&self) -> BTreeMap<String, Vec<(u32, u32, u32, String)>> {
        let mut out: BTreeMap<String, Vec<_>> = BTreeMap::new();
        for (domid, ctrls) in &self.guests {
            for (devid, c) in ctrls {
                for (port, busid) in &c.ports {
                    out.entry(busid.clone()).or_default().push((
                        *domid,
                        *devid,
                        *port,
                        c.ctype.clone(),
                    ));
                }
            }
        }
        out
    }
}

/// The driver an interface or device directory is bound to.
pub fn driver_of(dev_dir: &Path) -> Option<String> {
    fs::read_link(dev_dir.join("driver"))
        .ok()
        .and_then(|t| t.file_name().map(|n| n.to_string_lossy().into_owned()))
}

/// A USB configuration as stored in a JSON document (libxl's or vusb's):
/// controllers as (devid, type), devices as (ctrl, port) -> (hostbus,
/// hostaddr, busid when the document has one).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JsonConfig {
    /// (devid, type).
    pub ctrls: Vec<(i64, String)>,
    /// (ctrl, port, hostbus, hostaddr).
    pub devs: Vec<(i64, i64, i64, i64)>,
}

/// Parse the `usbctrls` / `usbdevs` arrays of a JSON document (a trailing
/// NUL, as libxl writes, is allowed).
pub fn json_config(text: &str) -> Result<JsonConfig, String> {
    let v: Value =
        serde_json::from_str(text.trim_end_matches('\0')).map_err(|e| format!("not JSON: {e}"))?;
    let int = |v: &Value, k: &str| v.get(k).and_then(Value::as_i64).unwrap_or(-1);
    let arr = |k: &str| {
        v.get(k)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let mut cfg = JsonConfig::default();
    for c in arr("usbctrls") {
        let ty = c
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        cfg.ctrls.push((int(&c, "devid"), ty));
    }
    for d in arr("usbdevs") {
        let host = d.get("type.hostdev").cloned().unwrap_or(Value::Null);
        cfg.devs.push((
            int(&d, "ctrl"),
            int(&d, "port"),
            int(&host, "hostbus"),
            int(&host, "hostaddr"),
        ));
    }
    cfg.ctrls.sort();
    cfg.devs.sort();
    Ok(cfg)
}
