//! The invariants of a host after any vusb command, crash or recovery
//! (issue 10, item 6), checked from the outside: xenstore, sysfs, libxl's
//! stored JSON and vusb's saved configuration, read as any other tool
//! would, without vusb's own code (so a bug in vusb's readers cannot hide
//! a bug in its writers).
//!
//! | invariant | what must hold |
//! |---|---|
//! | [`Invariant::Driver`] | every interface is on its original driver, or on `usbback` with a `pv` record for its device; a `pv` record means every interface is on `usbback` |
//! | [`Invariant::PortRecord`] | every occupied port has the record naming that domain, controller and port; every record's port holds its device |
//! | [`Invariant::Controller`] | a controller's libxl, backend and frontend directories exist together; a record's controller exists |
//! | [`Invariant::Twice`] | no device on two ports |
//! | [`Invariant::DriverMemory`] | an interface taken from a driver has that driver in `/libxl/usbback`; no memory is left for a device no longer given away |
//! | [`Invariant::UsbList`] | `usb-list --json` shows exactly xenstore's controllers and ports |
//! | [`Invariant::LibxlJson`] | libxl's `usbctrls`/`usbdevs` = xenstore's controllers and occupied ports |
//! | [`Invariant::SavedConfig`] | vusb's saved configuration (`<state>/domains/<uuid>.json`) = the same |
//!
//! [`check`] returns every violation with the paths and values involved;
//! an empty list is a consistent host.

mod snapshot;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use vusb_xenstore::Xenstore;

pub use snapshot::{JsonConfig, Snapshot, decode_key, driver_of, encode_key, json_config};

/// Which invariant a violation breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Invariant {
    /// Interface bindings against records.
    Driver,
    /// Port nodes against assignment records.
    PortRecord,
    /// Controller nodes present together; records' controllers exist.
    Controller,
    /// One device on several ports.
    Twice,
    /// libxl's driver memory.
    DriverMemory,
    /// `usb-list` against xenstore.
    UsbList,
    /// libxl's stored JSON against xenstore.
    LibxlJson,
    /// vusb's saved configuration against xenstore.
    SavedConfig,
    /// Something could not be read at all.
    Readable,
}

/// One broken invariant.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Violation {
    /// Which one.
    pub invariant: Invariant,
    /// What was seen, with paths and values.
    pub detail: String,
}

impl Violation {
    /// A violation of `invariant`.
    pub fn new(invariant: Invariant, detail: impl Into<String>) -> Violation {
        Violation {
            invariant,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.invariant, self.detail)
    }
}

/// `usb-list --json <domid>` of the vusb under test (or `None` to skip
/// that invariant).
pub type UsbListFn<'a> = &'a dyn Fn(u32) -> Result<String, String>;

/// Where the host keeps its state, and what it looked like before any
/// device was given away.
#[derive(Debug, Clone)]
pub struct Host {
    /// The directory holding `bus/usb` (the sysfs root vusb uses).
    pub sysfs_root: PathBuf,
    /// vusb's state directory (saved configurations under `domains/`).
    pub state_dir: PathBuf,
    /// libxl's `/var/lib/xen` (the `*.libxl-json` files).
    pub xen_lib_dir: PathBuf,
    /// Every interface's driver on the clean host.
    pub original: BTreeMap<String, Option<String>>,
}

impl Host {
    /// Describe a host, taking the interfaces' drivers now as the
    /// original ones (call it before any device is attached).
    pub fn clean(sysfs_root: &Path, state_dir: &Path, xen_lib_dir: &Path) -> Host {
        let mut original = BTreeMap::new();
        if let Ok(entries) = fs::read_dir(sysfs_root.join("bus/usb/devices")) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.contains(':') {
                    original.insert(name, driver_of(&e.path()));
                }
            }
        }
        Host {
            sysfs_root: sysfs_root.to_owned(),
            state_dir: state_dir.to_owned(),
            xen_lib_dir: xen_lib_dir.to_owned(),
            original,
        }
    }
}

/// Check every invariant; the violations sorted, empty when consistent.
pub fn check<X: Xenstore + ?Sized>(
    xs: &X,
    host: &Host,
    usb_list: Option<UsbListFn<'_>>,
) -> Vec<Violation> {
    let mut out = Vec::new();
    let snap = Snapshot::read(xs, &host.sysfs_root, &mut out);
    let occupied = snap.occupied();
    check_twice(&occupied, &mut out);
    check_ports(&snap, &occupied, &mut out);
    check_controllers(&snap, &mut out);
    check_drivers(&snap, host, &mut out);
    if let Some(list) = usb_list {
        check_usb_list(&snap, list, &mut out);
    }
    check_json(&snap, host, &mut out);
    out.sort();
    out.dedup();
    out
}

type Occupied = BTreeMap<String, Vec<(u32, u32, u32, String)>>;

fn check_twice(occupied: &Occupied, out: &mut Vec<Violation>) {
    for (busid, places) in occupied {
        if places.len() > 1 {
            out.push(Violation::new(
                Invariant::Twice,
                format!("{busid} is on {} ports: {places:?}", places.len()),
            ));
        }
    }
}

fn check_ports(snap: &Snapshot, occupied: &Occupied, out: &mut Vec<Violation>) {
    for (busid, places) in occupied {
        for (d, c, p, ty) in places {
            let place = format!("domain {d} controller {c} port {p} ({ty})");
            match snap.records.get(busid) {
                None => out.push(Violation::new(
                    Invariant::PortRecord,
                    format!("{busid} on {place} has no record"),
                )),
                Some(r) => {
                    let same = r.num("domid") == Some(*d)
                        && r.num("ctrl") == Some(*c)
                        && r.num("port") == Some(*p)
                        && r.ctype() == ty;
                    if !same {
                        out.push(Violation::new(
                            Invariant::PortRecord,
                            format!("{busid} on {place} but its record says {:?}", r.text),
                        ));
                    }
                }
            }
        }
    }
    for (busid, r) in &snap.records {
        let (Some(d), Some(c), Some(p)) = (r.num("domid"), r.num("ctrl"), r.num("port")) else {
            out.push(Violation::new(
                Invariant::PortRecord,
                format!("record of {busid} is malformed: {:?}", r.text),
            ));
            continue;
        };
        match snap.guests.get(&d).and_then(|g| g.get(&c)) {
            None => out.push(Violation::new(
                Invariant::Controller,
                format!(
                    "record of {busid} ({:?}) names controller {c} of domain {d}, which does not exist",
                    r.text
                ),
            )),
            Some(ctrl) if ctrl.ports.get(&p) != Some(busid) => out.push(Violation::new(
                Invariant::PortRecord,
                format!(
                    "record of {busid} ({:?}) but domain {d} controller {c} port {p} holds {:?}",
                    r.text,
                    ctrl.ports.get(&p)
                ),
            )),
            Some(_) => {}
        }
    }
}

fn check_controllers(snap: &Snapshot, out: &mut Vec<Violation>) {
    let mut with_backend = BTreeSet::new();
    for (d, ctrls) in &snap.guests {
        for (c, ctrl) in ctrls {
            let kind = match ctrl.ctype.as_str() {
                "pv" => "vusb",
                "qusb" => "qusb",
                "devicemodel" => continue,
                other => {
                    out.push(Violation::new(
                        Invariant::Controller,
                        format!("/libxl/{d}/device/vusb/{c}/type is {other:?}"),
                    ));
                    continue;
                }
            };
            with_backend.insert((*d, *c));
            if !snap.backends.contains(&(kind.to_owned(), *d, *c)) {
                out.push(Violation::new(
                    Invariant::Controller,
                    format!("controller {c} of domain {d} ({kind}) has no backend directory"),
                ));
            }
            if !snap.frontends.contains(&(*d, *c)) {
                out.push(Violation::new(
                    Invariant::Controller,
                    format!("controller {c} of domain {d} has no frontend directory"),
                ));
            }
        }
    }
    for (kind, d, c) in &snap.backends {
        if !with_backend.contains(&(*d, *c)) {
            out.push(Violation::new(
                Invariant::Controller,
                format!("/local/domain/0/backend/{kind}/{d}/{c} exists without /libxl/{d}/device/vusb/{c}"),
            ));
        }
    }
    for (d, c) in &snap.frontends {
        if !with_backend.contains(&(*d, *c)) {
            out.push(Violation::new(
                Invariant::Controller,
                format!("/local/domain/{d}/device/vusb/{c} exists without a pv/qusb controller in /libxl"),
            ));
        }
    }
}

/// The busid of an interface name (`1-2:1.0` -> `1-2`).
fn busid_of(intf: &str) -> &str {
    intf.split_once(':').map_or(intf, |(b, _)| b)
}

fn check_drivers(snap: &Snapshot, host: &Host, out: &mut Vec<Violation>) {
    for (intf, now) in &snap.bindings {
        let Some(orig) = host.original.get(intf) else {
            continue;
        };
        let busid = busid_of(intf);
        let pv = snap.records.get(busid).is_some_and(|r| r.ctype() == "pv");
        let want = if pv { Some("usbback") } else { orig.as_deref() };
        if now.as_deref() != want {
            let why = if pv {
                "its device has a pv record".to_owned()
            } else {
                match snap.records.get(busid) {
                    Some(r) => format!("its device's record is {:?}", r.text),
                    None => "its device has no record".to_owned(),
                }
            };
            out.push(Violation::new(
                Invariant::Driver,
                format!("{intf} is on {now:?}, expected {want:?}: {why}"),
            ));
        }
        if let Some(o) = orig.as_deref().filter(|o| now.as_deref() != Some(*o)) {
            let stored = snap.memory.get(busid).and_then(|m| m.get(intf)).cloned();
            let expected = format!("/sys/bus/usb/drivers/{o}");
            if stored.as_ref().and_then(|s| s.as_deref()) != Some(expected.as_str()) {
                out.push(Violation::new(
                    Invariant::DriverMemory,
                    format!(
                        "{intf} was taken from {o} (now {now:?}) but /libxl/usbback/{}/{}/driver_path is {stored:?}",
                        encode_key(busid),
                        encode_key(intf)
                    ),
                ));
            }
        }
    }
    for (busid, intfs) in &snap.memory {
        let pv = snap.records.get(busid).is_some_and(|r| r.ctype() == "pv");
        let taken = snap
            .bindings
            .iter()
            .any(|(i, now)| busid_of(i) == busid && host.original.get(i).is_some_and(|o| o != now));
        if !pv && !taken {
            out.push(Violation::new(
                Invariant::DriverMemory,
                format!(
                    "/libxl/usbback/{} is left ({} interfaces) though {busid} is not given away",
                    encode_key(busid),
                    intfs.len()
                ),
            ));
        }
    }
}

/// What xenstore says a guest's configuration is: controllers as
/// (devid, type), devices as (ctrl, port, hostbus, hostaddr), the address
/// from sysfs (-1 when the device left the host).
fn expected(snap: &Snapshot, domid: u32) -> JsonConfig {
    let mut cfg = JsonConfig::default();
    for (devid, c) in snap.guests.get(&domid).into_iter().flatten() {
        cfg.ctrls.push((i64::from(*devid), c.ctype.clone()));
        for (port, busid) in &c.ports {
            let (b, a) = snap
                .addresses
                .get(busid)
                .map_or((-1, -1), |(b, a)| (i64::from(*b), i64::from(*a)));
            cfg.devs.push((i64::from(*devid), i64::from(*port), b, a));
        }
    }
    cfg.ctrls.sort();
    cfg.devs.sort();
    cfg
}

fn check_json(snap: &Snapshot, host: &Host, out: &mut Vec<Violation>) {
    let files: Vec<String> = fs::read_dir(&host.xen_lib_dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    for domid in snap.guests.keys() {
        let want = expected(snap, *domid);
        let prefix = format!("userdata-d.{domid}.");
        let Some(uuid) = files.iter().find_map(|n| {
            n.strip_prefix(&prefix)?
                .strip_suffix(".libxl-json")
                .map(str::to_owned)
        }) else {
            continue;
        };
        let libxl = host
            .xen_lib_dir
            .join(format!("userdata-d.{domid}.{uuid}.libxl-json"));
        compare_file(&libxl, false, &want, Invariant::LibxlJson, out);
        let saved = host.state_dir.join(format!("domains/{uuid}.json"));
        compare_file(&saved, true, &want, Invariant::SavedConfig, out);
    }
}

fn compare_file(
    path: &Path,
    absent_is_empty: bool,
    want: &JsonConfig,
    invariant: Invariant,
    out: &mut Vec<Violation>,
) {
    let got = match fs::read_to_string(path) {
        Ok(text) => json_config(&text),
        Err(e) if absent_is_empty && e.kind() == std::io::ErrorKind::NotFound => {
            Ok(JsonConfig::default())
        }
        Err(e) => Err(e.to_string()),
    };
    match got {
        Err(e) => out.push(Violation::new(invariant, format!("{}: {e}", path.display()))),
        Ok(got) if got != *want => out.push(Violation::new(
            invariant,
            format!(
                "{} has controllers {:?} devices {:?}; xenstore has {:?} {:?} (ctrl, port, hostbus, hostaddr)",
                path.display(),
                got.ctrls,
                got.devs,
                want.ctrls,
                want.devs
            ),
        )),
        Ok(_) => {}
    }
}

/// A listed controller: devid, type, occupied (port, busid).
type Listed = (u64, String, Vec<(u64, String)>);

fn check_usb_list(snap: &Snapshot, list: UsbListFn<'_>, out: &mut Vec<Violation>) {
    for (domid, ctrls) in &snap.guests {
        let text = match list(*domid) {
            Ok(t) => t,
            Err(e) => {
                out.push(Violation::new(
                    Invariant::UsbList,
                    format!("usb-list {domid} failed: {e}"),
                ));
                continue;
            }
        };
        let v: serde_json::Value = match serde_json::from_str(&text) {
            Ok(v) => v,
            Err(e) => {
                out.push(Violation::new(
                    Invariant::UsbList,
                    format!("usb-list --json {domid}: not JSON ({e}): {text:?}"),
                ));
                continue;
            }
        };
        let mut got: Vec<Listed> = Vec::new();
        for c in v["controllers"].as_array().into_iter().flatten() {
            let ports = c["ports"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| Some((p["port"].as_u64()?, p["busid"].as_str()?.to_owned())))
                .collect();
            got.push((
                c["devid"].as_u64().unwrap_or(u64::MAX),
                c["type"].as_str().unwrap_or("").to_owned(),
                ports,
            ));
        }
        got.sort();
        let want: Vec<Listed> = ctrls
            .iter()
            .map(|(d, c)| {
                let ports = c
                    .ports
                    .iter()
                    .map(|(p, b)| (u64::from(*p), b.clone()))
                    .collect();
                (u64::from(*d), c.ctype.clone(), ports)
            })
            .collect();
        if got != want {
            out.push(Violation::new(
                Invariant::UsbList,
                format!("usb-list {domid} shows {got:?}; xenstore has {want:?}"),
            ));
        }
    }
}
