//! vusb's host-wide assignment record: which host USB device is given to
//! which guest, controller and port.
//!
//! libxl answers "is this device already attached somewhere?" by walking
//! every domain's controllers and port tables (reference §5.4: O(all ports
//! on the host) requests, bug U1 when any entry is stale, race R1). vusb
//! instead keeps one node per assigned device:
//!
//! ```text
//! /vusb                          (n0)  vusb's private prefix, dom0 only
//! /vusb/assigned                 (n0)
//! /vusb/assigned/<enc(busid)> = "v1 domid=1 ctrl=0 port=1 type=pv hostbus=3 hostaddr=5"
//! ```
//!
//! `enc` is libxl's key encoding (`.` → `_`, `:` → `@`, as for
//! `/libxl/usbback`). The value is a versioned, space-separated text record;
//! a devicemodel device also carries `qom=<QEMU id>` so it can be removed
//! from QEMU after it vanished from the host (fix U2). Records written since
//! vusb 0.1 also carry the device's identity (`vendor=VVVV product=PPPP
//! [serial=S]`, the serial percent-encoded), so `usbdev-detach` can find a
//! device by `vendor=`/`product=`/`serial=` after it was unplugged. Readers
//! ignore keys they do not know, so later versions can add fields.
//!
//! The record is claimed in the **same transaction** as the port node
//! (callers pass their [`TxId`]): a concurrent claim of the same device or
//! the same port makes one of the commits fail with `EAGAIN`, and the retry
//! then sees the winner's record. `/vusb` is created owned by dom0 with no
//! access for anybody else (`n0`), so no guest can read or forge records.

use vusb_host::BusId;
use vusb_xenstore::{DomId, Errno, Perm, PermKind, TxId, Xenstore, XenstoreExt};

use crate::error::at;
use crate::journal::Step;
use crate::layout::UsbCtrlType;
use crate::{Error, Result};

/// vusb's private xenstore prefix; everything vusb-specific lives below it.
pub const VUSB_ROOT: &str = "/vusb";
/// Directory of the assignment records.
pub const ASSIGNED_DIR: &str = "/vusb/assigned";
/// Version tag of the record format written by this module.
pub const RECORD_VERSION: &str = "v1";

/// libxl's xenstore key encoding of a busid or interface name
/// (`3-1.2:1.0` → `3-1_2@1_0`).
pub fn encode_key(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            '.' => '_',
            ':' => '@',
            other => other,
        })
        .collect()
}

/// The inverse of [`encode_key`].
pub fn decode_key(key: &str) -> String {
    key.chars()
        .map(|c| match c {
            '_' => '.',
            '@' => ':',
            other => other,
        })
        .collect()
}

/// The record node of a busid.
pub fn record_path(busid: &BusId) -> String {
    format!("{ASSIGNED_DIR}/{}", encode_key(busid.as_str()))
}

/// One assigned host device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    /// The host device's sysfs name, e.g. `3-1.2`.
    pub busid: BusId,
    /// The guest it is given to.
    pub domid: DomId,
    /// The controller's devid in that guest.
    pub ctrl: u32,
    /// The 1-based port on that controller.
    pub port: u32,
    /// The controller's type.
    pub ctrl_type: UsbCtrlType,
    /// sysfs `busnum` at attach time.
    pub hostbus: u8,
    /// sysfs `devnum` at attach time.
    pub hostaddr: u8,
    /// For devicemodel devices: the QEMU device id (`xenusb-<bus>-<addr>`).
    pub qom_id: Option<String>,
    /// The journal: which part of the hand-over is under way
    /// ([`crate::journal`]). Records without the field (written before
    /// the journal existed) are [`Step::Done`].
    pub step: Step,
    /// The device's vendor/product/serial at attach time (absent in
    /// records written before they were recorded).
    pub identity: Option<HostIdentity>,
}

/// A host device's identity as recorded at attach time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostIdentity {
    /// idVendor.
    pub vendor: u16,
    /// idProduct.
    pub product: u16,
    /// The serial string, if the device has one.
    pub serial: Option<String>,
}

/// Percent-encode everything but `[A-Za-z0-9._~-]` (a serial may hold
/// blanks or `=`, which the record format uses).
fn encode_value(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'~' | b'-') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The inverse of [`encode_value`]; `None` for a malformed escape.
fn decode_value(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

impl Assignment {
    /// The port node this record claims (reference §4.4).
    pub fn port_path(&self) -> String {
        crate::layout::Controller {
            domid: self.domid,
            devid: self.ctrl,
            ctype: self.ctrl_type,
            version: 0,
            ports: 0,
        }
        .port_path(self.port)
    }

    /// The record text stored in xenstore.
    pub fn to_record(&self) -> String {
        let mut s = format!(
            "{RECORD_VERSION} domid={} ctrl={} port={} type={} hostbus={} hostaddr={}",
            self.domid, self.ctrl, self.port, self.ctrl_type, self.hostbus, self.hostaddr
        );
        if let Some(q) = &self.qom_id {
            s.push_str(" qom=");
            s.push_str(q);
        }
        s.push_str(" step=");
        s.push_str(self.step.as_str());
        if let Some(id) = &self.identity {
            s.push_str(&format!(
                " vendor={:04x} product={:04x}",
                id.vendor, id.product
            ));
            if let Some(serial) = &id.serial {
                s.push_str(" serial=");
                s.push_str(&encode_value(serial));
            }
        }
        s
    }

    /// Parse a record stored for `busid`; `path` names the node in errors.
    pub fn from_record(busid: &BusId, path: &str, text: &str) -> Result<Assignment> {
        let bad = |reason| Error::BadAssignment {
            path: path.to_owned(),
            reason,
        };
        let mut words = text.split_ascii_whitespace();
        if words.next() != Some(RECORD_VERSION) {
            return Err(bad("unknown record version"));
        }
        let (mut domid, mut ctrl, mut port, mut ty, mut bus, mut addr, mut qom) =
            (None, None, None, None, None, None, None);
        let mut step = Some(Step::Done);
        let (mut vendor, mut product, mut serial) = (None, None, None);
        for w in words {
            let Some((k, v)) = w.split_once('=') else {
                return Err(bad("field without `='"));
            };
            match k {
                "domid" => domid = v.parse::<DomId>().ok(),
                "ctrl" => ctrl = v.parse::<u32>().ok(),
                "port" => port = v.parse::<u32>().ok(),
                "type" => ty = v.parse::<UsbCtrlType>().ok(),
                "hostbus" => bus = v.parse::<u8>().ok(),
                "hostaddr" => addr = v.parse::<u8>().ok(),
                "qom" => qom = Some(v.to_owned()).filter(|q| valid_qom(q)),
                "step" => step = v.parse::<Step>().ok(),
                "vendor" => vendor = u16::from_str_radix(v, 16).ok(),
                "product" => product = u16::from_str_radix(v, 16).ok(),
                "serial" => serial = decode_value(v),
                _ => log::debug!("{path}: ignoring unknown field {k}"),
            }
        }
        Ok(Assignment {
            busid: busid.clone(),
            domid: domid.ok_or_else(|| bad("missing or bad domid"))?,
            ctrl: ctrl.ok_or_else(|| bad("missing or bad ctrl"))?,
            port: port
                .filter(|p| *p >= 1)
                .ok_or_else(|| bad("missing or bad port"))?,
            ctrl_type: ty.ok_or_else(|| bad("missing or bad type"))?,
            hostbus: bus.ok_or_else(|| bad("missing or bad hostbus"))?,
            hostaddr: addr.ok_or_else(|| bad("missing or bad hostaddr"))?,
            qom_id: qom,
            step: step.ok_or_else(|| bad("bad step"))?,
            identity: match (vendor, product) {
                (Some(vendor), Some(product)) => Some(HostIdentity {
                    vendor,
                    product,
                    serial,
                }),
                _ => None,
            },
        })
    }
}

/// A QOM id vusb could have written (bounded, QEMU's id characters).
fn valid_qom(q: &str) -> bool {
    !q.is_empty()
        && q.len() <= 64
        && q.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// The busid a record's key names (the one place records' names are
/// parsed); a key that names no USB device is a malformed record.
fn busid_of_key(key: &str) -> Result<BusId> {
    BusId::parse(&decode_key(key)).map_err(|_| Error::BadAssignment {
        path: format!("{ASSIGNED_DIR}/{key:?}"),
        reason: "not a USB busid",
    })
}

/// Make sure `/vusb` exists and is dom0-only (`n0`). One request when it
/// already is. `usbctrl-attach` calls it; `usbdev-attach` does not (to stay
/// within its request budget): when it creates `/vusb` by writing a
/// record, the node inherits the permissions of `/`, which xenstored keeps
/// at `n0`.
pub fn ensure_prefix<X: Xenstore + ?Sized>(xs: &X, tx: TxId) -> Result<()> {
    let want = [Perm::new(PermKind::None, 0)];
    match xs.get_perms(tx, VUSB_ROOT) {
        Ok(p) if p == want => return Ok(()),
        Ok(_) => {}
        Err(e) if e.errno() == Some(Errno::ENOENT) => {
            xs.mkdir(tx, VUSB_ROOT).map_err(at(VUSB_ROOT))?;
        }
        Err(e) => return Err(at(VUSB_ROOT)(e)),
    }
    log::debug!("setting {VUSB_ROOT} to dom0-only");
    xs.set_perms(tx, VUSB_ROOT, &want).map_err(at(VUSB_ROOT))
}

/// The record of `busid`, if the device is assigned.
pub fn lookup<X: Xenstore + ?Sized>(xs: &X, tx: TxId, busid: &BusId) -> Result<Option<Assignment>> {
    let path = record_path(busid);
    match xs.read_opt(tx, &path).map_err(at(&path))? {
        None => Ok(None),
        Some(text) => Assignment::from_record(busid, &path, &text).map(Some),
    }
}

/// The record of `busid` if it is still **live**: its port node still holds
/// the device. vusb changes a port node and its record in one transaction,
/// so a record whose port node says otherwise was left behind by another
/// tool (`xl usbdev-detach` of a device vusb attached, or a domain torn down
/// without vusb). Such a stale record is released in `tx` and `None`
/// returned — unless its journal says an operation is under way (step
/// other than `done`): that record is returned as it is, for the caller to
/// resolve ([`crate::journal`]). Costs one read more than [`lookup`], and
/// only when a record exists.
pub fn lookup_live<X: Xenstore + ?Sized>(
    xs: &X,
    tx: TxId,
    busid: &BusId,
) -> Result<Option<Assignment>> {
    let Some(rec) = lookup(xs, tx, busid)? else {
        return Ok(None);
    };
    if rec.step != Step::Done {
        return Ok(Some(rec));
    }
    let port = rec.port_path();
    if xs.read_opt(tx, &port).map_err(at(&port))?.as_deref() == Some(busid.as_str()) {
        return Ok(Some(rec));
    }
    log::info!(
        "{busid}: stale assignment record (domain {} controller {} port {} no longer holds it); releasing it",
        rec.domid,
        rec.ctrl,
        rec.port
    );
    release(xs, tx, busid)?;
    Ok(None)
}

/// Every record. Malformed records are skipped with a warning (a listing
/// must not fail because of one bad entry).
pub fn list<X: Xenstore + ?Sized>(xs: &X, tx: TxId) -> Result<Vec<Assignment>> {
    let names = xs
        .directory_opt(tx, ASSIGNED_DIR)
        .map_err(at(ASSIGNED_DIR))?;
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let path = format!("{ASSIGNED_DIR}/{name}");
        let busid = match busid_of_key(&name) {
            Ok(b) => b,
            Err(e) => {
                log::warn!("skipping assignment record: {e}");
                continue;
            }
        };
        let Some(text) = xs.read_opt(tx, &path).map_err(at(&path))? else {
            continue; // removed meanwhile (outside a transaction)
        };
        match Assignment::from_record(&busid, &path, &text) {
            Ok(a) => out.push(a),
            Err(e) => log::warn!("skipping assignment record: {e}"),
        }
    }
    Ok(out)
}

/// Every record, malformed ones as errors (for reports that name them):
/// `(busid, record)` in xenstore's order.
pub fn list_all<X: Xenstore + ?Sized>(
    xs: &X,
    tx: TxId,
) -> Result<Vec<(String, Result<Assignment>)>> {
    let names = xs
        .directory_opt(tx, ASSIGNED_DIR)
        .map_err(at(ASSIGNED_DIR))?;
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let path = format!("{ASSIGNED_DIR}/{name}");
        let Some(text) = xs.read_opt(tx, &path).map_err(at(&path))? else {
            continue; // removed meanwhile (outside a transaction)
        };
        let rec = busid_of_key(&name).and_then(|b| Assignment::from_record(&b, &path, &text));
        out.push((decode_key(&name), rec));
    }
    Ok(out)
}

/// The records of one domain (O(assigned devices on the host)).
pub fn list_domain<X: Xenstore + ?Sized>(
    xs: &X,
    tx: TxId,
    domid: DomId,
) -> Result<Vec<Assignment>> {
    Ok(list(xs, tx)?
        .into_iter()
        .filter(|a| a.domid == domid)
        .collect())
}

/// Record `a`; fails with [`Error::AlreadyAssigned`] if a record for the
/// device exists. Two requests (read, write). Inside the caller's
/// transaction this is race-free: a concurrent claim conflicts at commit.
pub fn claim<X: Xenstore + ?Sized>(xs: &X, tx: TxId, a: &Assignment) -> Result<()> {
    if let Some(existing) = lookup(xs, tx, &a.busid)? {
        return Err(Error::AlreadyAssigned {
            busid: a.busid.clone(),
            domid: existing.domid,
        });
    }
    let path = record_path(&a.busid);
    log::debug!("claiming {} for domain {}", a.busid, a.domid);
    xs.write_str(tx, &path, &a.to_record()).map_err(at(&path))
}

/// Replace (or create) the record of `a.busid` unconditionally, e.g. to add
/// the QOM id once QEMU accepted the device.
pub fn update<X: Xenstore + ?Sized>(xs: &X, tx: TxId, a: &Assignment) -> Result<()> {
    let path = record_path(&a.busid);
    xs.write_str(tx, &path, &a.to_record()).map_err(at(&path))
}

/// Remove the record of `busid`; not an error when there is none.
pub fn release<X: Xenstore + ?Sized>(xs: &X, tx: TxId, busid: &BusId) -> Result<()> {
    let path = record_path(busid);
    log::debug!("releasing {busid}");
    xs.rm_opt(tx, &path).map_err(at(&path))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn b(s: &str) -> BusId {
        BusId::parse(s).unwrap()
    }

    fn sample() -> Assignment {
        Assignment {
            busid: b("3-1.2"),
            domid: 7,
            ctrl: 1,
            port: 4,
            ctrl_type: UsbCtrlType::Pv,
            hostbus: 3,
            hostaddr: 12,
            qom_id: None,
            step: Step::Done,
            identity: None,
        }
    }

    #[test]
    fn key_encoding_is_libxls() {
        assert_eq!(encode_key("3-1.2:1.0"), "3-1_2@1_0");
        assert_eq!(decode_key("3-1_2@1_0"), "3-1.2:1.0");
        assert_eq!(record_path(&b("1-1")), "/vusb/assigned/1-1");
    }

    #[test]
    fn record_round_trips() {
        let a = sample();
        let text = a.to_record();
        assert_eq!(
            text,
            "v1 domid=7 ctrl=1 port=4 type=pv hostbus=3 hostaddr=12 step=done"
        );
        // Records written before the journal existed are done.
        let old = "v1 domid=7 ctrl=1 port=4 type=pv hostbus=3 hostaddr=12";
        assert_eq!(Assignment::from_record(&b("3-1.2"), "p", old).unwrap(), a);
        let mut j = sample();
        j.step = Step::Attach;
        assert_eq!(
            Assignment::from_record(&b("3-1.2"), "p", &j.to_record()).unwrap(),
            j
        );
        assert_eq!(Assignment::from_record(&b("3-1.2"), "p", &text).unwrap(), a);
        let mut d = sample();
        d.ctrl_type = UsbCtrlType::DeviceModel;
        d.qom_id = Some("xenusb-3-12".into());
        let back = Assignment::from_record(&b("3-1.2"), "p", &d.to_record()).unwrap();
        assert_eq!(back, d);
        d.identity = Some(HostIdentity {
            vendor: 0x046d,
            product: 0xc52b,
            serial: Some("A b=c%\u{e9}".into()),
        });
        let text = d.to_record();
        assert!(
            text.ends_with(" vendor=046d product=c52b serial=A%20b%3Dc%25%C3%A9"),
            "{text}"
        );
        assert_eq!(Assignment::from_record(&b("3-1.2"), "p", &text).unwrap(), d);
    }

    #[test]
    fn bad_records_are_rejected() {
        for text in [
            "",
            "v2 domid=1",
            "v1 domid=1 ctrl=0 port=0 type=pv hostbus=1 hostaddr=2",
            "v1 domid=x ctrl=0 port=1 type=pv hostbus=1 hostaddr=2",
            "v1 domid=1 ctrl=0 port=1 type=auto hostbus=1 hostaddr=2",
            "v1 domid=1 ctrl=0 port=1 type=pv hostbus=1",
            "v1 domid=1 ctrl=0 port=1 type=pv hostbus=256 hostaddr=2",
            "v1 garbage",
            "v1 domid=1 ctrl=0 port=1 type=pv hostbus=1 hostaddr=2 step=maybe",
        ] {
            assert!(
                Assignment::from_record(&b("1-1"), "p", text).is_err(),
                "{text:?}"
            );
        }
        let extra = "v1 domid=1 ctrl=0 port=1 type=qusb hostbus=1 hostaddr=2 future=x";
        assert!(Assignment::from_record(&b("1-1"), "p", extra).is_ok());
    }

    #[test]
    fn busids_are_checked() {
        assert_eq!(busid_of_key("3-1_2").unwrap(), b("3-1.2"));
        for bad in ["", "../x", "a/b", "3-1_2@1_0", "x"] {
            assert!(busid_of_key(bad).is_err(), "{bad:?}");
        }
    }
}
