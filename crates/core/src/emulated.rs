//! vusb's records of QEMU-emulated USB devices (`usb-tablet`, `usb-mouse`,
//! `usb-kbd`) plugged into a Xen HVM guest's `devicemodel` controllers.
//!
//! libxl has no such device type. Its port nodes
//! (`/libxl/<G>/device/vusb/<N>/port/<P>`) may only hold a real busid or
//! `""`: `xl usbdev-attach` checks every port node of every domain against
//! sysfs and fails on *any* value that does not resolve there (libxl bug
//! U1), so a marker such as `tablet` in a port node would break every later
//! `xl usbdev-attach` on the host. vusb therefore keeps emulated devices in
//! its own dom0-only prefix:
//!
//! ```text
//! /vusb/emulated/<G>/<N>/<P> = "tablet" | "mouse" | "keyboard"
//! ```
//!
//! written in the same transaction that checks the port node is empty.
//!
//! The value is also the device's journal ([`crate::journal`]): written as
//! `<kind> step=attach` in that transaction, before QMP `device_add`, and
//! set to `<kind>` (done) once QEMU has the device; `usbdev-detach` writes
//! `<kind> step=detach` before `device_del` and removes the record after.
//! A record in a step other than done was left by an interrupted command:
//! `usb-recover` resolves it under the controller's exclusive lock (which
//! every attach and detach holds shared) by removing the device from QEMU
//! (absent counts as removed) and dropping the record — an interrupted
//! attach is rolled back, an interrupted detach completed. Values written
//! before the journal (the kind alone) are done.
//! vusb's own free-port search on devicemodel controllers reads
//! `/vusb/emulated/<G>/<N>` (one `directory` per controller probed) and
//! treats a recorded port as occupied. Trade-off: `xl` does not know these
//! records, so it sees such a port as free; an `xl usbdev-attach` to it
//! then fails in QEMU (the port is occupied), leaving nothing behind.

use std::collections::BTreeSet;

use vusb_xenstore::{DomId, TxId, Xenstore, XenstoreExt};

use crate::devicemodel::EmulatedKind;
use crate::error::at;
use crate::journal::Step;
use crate::{Error, Result};

/// Directory of the emulated device records.
pub const EMULATED_DIR: &str = "/vusb/emulated";

/// The records' directory of one domain.
pub fn domain_dir(domid: DomId) -> String {
    format!("{EMULATED_DIR}/{domid}")
}

/// The records' directory of one controller.
pub fn ctrl_dir(domid: DomId, devid: u32) -> String {
    format!("{EMULATED_DIR}/{domid}/{devid}")
}

/// The record node of one port.
pub fn record_path(domid: DomId, devid: u32, port: u32) -> String {
    format!("{EMULATED_DIR}/{domid}/{devid}/{port}")
}

/// The kind named by a record value (`tablet`, `mouse`, `keyboard`).
pub fn kind_from_name(name: &str) -> Option<EmulatedKind> {
    [
        EmulatedKind::Tablet,
        EmulatedKind::Mouse,
        EmulatedKind::Keyboard,
    ]
    .into_iter()
    .find(|k| k.spec_name() == name)
}

/// The ports of controller `devid` holding an emulated device: one
/// `directory` request, no value read.
pub fn occupied<X: Xenstore + ?Sized>(
    xs: &X,
    tx: TxId,
    domid: DomId,
    devid: u32,
) -> Result<BTreeSet<u32>> {
    let dir = ctrl_dir(domid, devid);
    Ok(xs
        .directory_opt(tx, &dir)
        .map_err(at(&dir))?
        .iter()
        .filter_map(|p| p.parse::<u32>().ok())
        .collect())
}

/// The emulated devices of controller `devid`, by port.
pub fn list<X: Xenstore + ?Sized>(
    xs: &X,
    tx: TxId,
    domid: DomId,
    devid: u32,
) -> Result<Vec<(u32, EmulatedKind)>> {
    let mut out = Vec::new();
    for port in occupied(xs, tx, domid, devid)? {
        if let Some(k) = read(xs, tx, domid, devid, port)? {
            out.push((port, k));
        }
    }
    Ok(out)
}

/// A record's value: the kind, then an optional ` step=<step>`.
pub fn parse_value(v: &str) -> Option<(EmulatedKind, Step)> {
    let mut words = v.split(' ');
    let kind = kind_from_name(words.next()?)?;
    let step = match words.next() {
        None => Step::Done,
        Some(w) => w.strip_prefix("step=")?.parse::<Step>().ok()?,
    };
    if words.next().is_some() {
        return None;
    }
    Some((kind, step))
}

/// The value recording `kind` in `step`.
pub fn value(kind: EmulatedKind, step: Step) -> String {
    match step {
        Step::Done => kind.spec_name().to_owned(),
        s => format!("{} step={}", kind.spec_name(), s.as_str()),
    }
}

/// The emulated device recorded at a port and its journal step, if any.
pub fn read_entry<X: Xenstore + ?Sized>(
    xs: &X,
    tx: TxId,
    domid: DomId,
    devid: u32,
    port: u32,
) -> Result<Option<(EmulatedKind, Step)>> {
    let path = record_path(domid, devid, port);
    match xs.read_opt(tx, &path).map_err(at(&path))? {
        None => Ok(None),
        Some(v) => parse_value(&v)
            .map(Some)
            .ok_or(Error::BadEmulatedRecord { path, value: v }),
    }
}

/// The emulated device recorded at a port, if any (whatever its step).
pub fn read<X: Xenstore + ?Sized>(
    xs: &X,
    tx: TxId,
    domid: DomId,
    devid: u32,
    port: u32,
) -> Result<Option<EmulatedKind>> {
    Ok(read_entry(xs, tx, domid, devid, port)?.map(|(k, _)| k))
}

/// Every record not in step done: `(domid, devid, port, kind, step)`, or
/// what is wrong with one (`(node, reason)`: reported and skipped).
pub type Unfinished = std::result::Result<(DomId, u32, u32, EmulatedKind, Step), (String, String)>;

/// Every emulated record left by an interrupted command.
pub fn unfinished<X: Xenstore + ?Sized>(xs: &X, tx: TxId) -> Result<Vec<Unfinished>> {
    let mut out = Vec::new();
    for d in xs
        .directory_opt(tx, EMULATED_DIR)
        .map_err(at(EMULATED_DIR))?
    {
        let ddir = format!("{EMULATED_DIR}/{d}");
        for c in xs.directory_opt(tx, &ddir).map_err(at(&ddir))? {
            let cdir = format!("{ddir}/{c}");
            for p in xs.directory_opt(tx, &cdir).map_err(at(&cdir))? {
                let node = format!("{cdir}/{p}");
                let Some(v) = xs.read_opt(tx, &node).map_err(at(&node))? else {
                    continue;
                };
                let ids = (d.parse::<DomId>(), c.parse::<u32>(), p.parse::<u32>());
                match (ids, parse_value(&v)) {
                    ((Ok(domid), Ok(devid), Ok(port)), Some((kind, step))) => {
                        if step != Step::Done {
                            out.push(Ok((domid, devid, port, kind, step)));
                        }
                    }
                    _ => out.push(Err((node, format!("not an emulated device record: {v:?}")))),
                }
            }
        }
    }
    Ok(out)
}

/// Record `kind` at a port in journal step `step` (inside the caller's
/// transaction, or [`TxId::NONE`]).
pub fn write<X: Xenstore + ?Sized>(
    xs: &X,
    tx: TxId,
    domid: DomId,
    devid: u32,
    port: u32,
    kind: EmulatedKind,
    step: Step,
) -> Result<()> {
    let path = record_path(domid, devid, port);
    xs.write_str(tx, &path, &value(kind, step))
        .map_err(at(&path))
}

/// Remove the record of a port, and its controller's and domain's
/// directories (and `/vusb/emulated`) when they became empty.
pub fn remove<X: Xenstore + ?Sized>(
    xs: &X,
    tx: TxId,
    domid: DomId,
    devid: u32,
    port: u32,
) -> Result<()> {
    let path = record_path(domid, devid, port);
    xs.rm_opt(tx, &path).map_err(at(&path))?;
    if occupied(xs, tx, domid, devid)?.is_empty() {
        remove_ctrl(xs, tx, domid, devid)?;
    }
    Ok(())
}

fn prune_domain<X: Xenstore + ?Sized>(xs: &X, tx: TxId, domid: DomId) -> Result<()> {
    for dir in [domain_dir(domid), EMULATED_DIR.to_owned()] {
        if !xs.directory_opt(tx, &dir).map_err(at(&dir))?.is_empty() {
            break;
        }
        xs.rm_opt(tx, &dir).map_err(at(&dir))?;
    }
    Ok(())
}

/// Remove every record of a controller (and the domain's directory when
/// it became empty).
pub fn remove_ctrl<X: Xenstore + ?Sized>(xs: &X, tx: TxId, domid: DomId, devid: u32) -> Result<()> {
    let dir = ctrl_dir(domid, devid);
    xs.rm_opt(tx, &dir).map_err(at(&dir))?;
    prune_domain(xs, tx, domid)
}

/// Remove every record of a domain.
pub fn remove_domain<X: Xenstore + ?Sized>(xs: &X, tx: TxId, domid: DomId) -> Result<()> {
    let dir = domain_dir(domid);
    xs.rm_opt(tx, &dir).map_err(at(&dir))?;
    prune_domain(xs, tx, domid)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use vusb_xenstore::mem::MemStore;

    #[test]
    fn records_round_trip_and_prune() {
        let store = MemStore::new();
        let xs = store.connect(0);
        let n = TxId::NONE;
        assert!(occupied(&xs, n, 3, 0).unwrap().is_empty());
        write(&xs, n, 3, 0, 2, EmulatedKind::Tablet, Step::Done).unwrap();
        write(&xs, n, 3, 0, 5, EmulatedKind::Keyboard, Step::Attach).unwrap();
        assert_eq!(
            xs.read_opt(n, &record_path(3, 0, 5)).unwrap().as_deref(),
            Some("keyboard step=attach")
        );
        assert_eq!(
            unfinished(&xs, n).unwrap(),
            vec![Ok((3, 0, 5, EmulatedKind::Keyboard, Step::Attach))]
        );
        assert_eq!(
            occupied(&xs, n, 3, 0)
                .unwrap()
                .into_iter()
                .collect::<Vec<_>>(),
            vec![2, 5]
        );
        assert_eq!(
            list(&xs, n, 3, 0).unwrap(),
            vec![(2, EmulatedKind::Tablet), (5, EmulatedKind::Keyboard)]
        );
        remove(&xs, n, 3, 0, 2).unwrap();
        assert_eq!(read(&xs, n, 3, 0, 2).unwrap(), None);
        remove(&xs, n, 3, 0, 5).unwrap();
        assert!(xs.read_opt(n, &ctrl_dir(3, 0)).unwrap().is_none());
        assert!(xs.read_opt(n, &domain_dir(3)).unwrap().is_none());
        assert_eq!(
            parse_value("tablet"),
            Some((EmulatedKind::Tablet, Step::Done))
        );
        assert_eq!(
            parse_value("mouse step=detach"),
            Some((EmulatedKind::Mouse, Step::Detach))
        );
        for bad in [
            "",
            "mouse step=",
            "mouse x=1",
            "mouse step=detach x",
            "tablet  ",
        ] {
            assert_eq!(parse_value(bad), None, "{bad:?}");
        }
        xs.write_str(n, &record_path(3, 1, 1), "joystick").unwrap();
        assert!(matches!(
            read(&xs, n, 3, 1, 1),
            Err(Error::BadEmulatedRecord { .. })
        ));
    }
}
