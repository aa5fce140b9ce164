//! The hand-over of one device to a guest and back, as data: the steps of
//! each controller type's attach and release, the journal state that is
//! written **before** the steps it announces, and what recovery does with
//! each state. The executor that takes the steps is
//! [`crate::ops::handover`]; the journal itself is the `step=` field of
//! the device's assignment record (`/vusb/assigned/<busid>`,
//! [`crate::assign`]), so writing it costs no extra request where the
//! record is written anyway (the claim transaction).
//!
//! ```text
//!            Claim (port + record step=attach, one transaction)
//!   free ───────────────────────────────────────────────▶ Attach
//!                                                            │ Rebind (pv) / QmpAdd (devicemodel), Book
//!                                                            ▼ Commit (record step=done)
//!   free ◀── Unclaim ◀── Unbook ◀── Unbind / QmpDel ◀──── Done
//!         (port "" + record rm,        ▲ MarkRelease (record step=detach | release)
//!          one transaction)
//! ```
//!
//! Recovery rule (whoever finds a record whose step is not `done` while
//! holding the device's lock, i.e. its owner is dead): the **release
//! plan** is run from its start. For `attach` that is a roll-back (the
//! device goes back to the host, as a failed attach leaves it); for
//! `detach`/`release` a roll-forward (the detach completes). Every release
//! step is idempotent — the driver memory ([`crate::driver_memory`]) says
//! which interfaces to give back, a device QEMU no longer has counts as
//! removed, a bookkeeping entry already gone is fine, the port is emptied
//! only if it still holds the device — so a recovery killed midway is
//! resumed by the next one.
//!
//! Controllers have a journal of their own, beside the records:
//!
//! ```text
//! /vusb/ctrl/<domid>/<devid> = "attach" | "detach" | "release"
//! ```
//!
//! `attach` is written in the transaction that creates the controller's
//! nodes and removed once its bookkeeping is written; `detach`/`release`
//! before a removal starts, and removed in the transaction that deletes
//! the nodes. Recovery (the creator's guest lock, or the remover's
//! controller lock, free): an interrupted creation is rolled back when
//! nothing was placed on the controller meanwhile, else completed (its
//! bookkeeping written); an interrupted removal is completed.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use vusb_xenstore::{DomId, TxId, Xenstore, XenstoreExt};

use crate::bookkeeping::Forget;
use crate::error::at;
use crate::layout::UsbCtrlType;
use crate::{Error, HostPaths, Result};

/// The journal state of an assignment record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Step {
    /// Claimed; the hand-over may be partly done.
    Attach,
    /// Attached, bookkeeping written.
    Done,
    /// An explicit detach (or an attach's rollback) is under way.
    Detach,
    /// `usb-release` is under way (the saved configuration is kept).
    Release,
}

impl Step {
    /// The word stored in the record.
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Attach => "attach",
            Step::Done => "done",
            Step::Detach => "detach",
            Step::Release => "release",
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Step {
    type Err = ();
    fn from_str(s: &str) -> Result<Step, ()> {
        Ok(match s {
            "attach" => Step::Attach,
            "done" => Step::Done,
            "detach" => Step::Detach,
            "release" => Step::Release,
            _ => return Err(()),
        })
    }
}

/// One step of a hand-over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// The port node and the record (`step=attach`), one transaction
    /// ([`crate::ops::placement`]).
    Claim,
    /// pv: every interface to usbback, its driver remembered first.
    Rebind,
    /// devicemodel: QMP `device_add usb-host`.
    QmpAdd,
    /// libxl's JSON and the saved configuration get the device.
    Book,
    /// The record says `step=done` (devicemodel: with the QOM id).
    Commit,
    /// The record says `step=detach` or `step=release`.
    MarkRelease,
    /// pv: interfaces back on their remembered drivers.
    Unbind,
    /// devicemodel: QMP `device_del`, waiting for the guest.
    QmpDel,
    /// libxl's JSON (and for a detach the saved configuration) forget it.
    Unbook,
    /// The port node emptied (if it still holds the device) and the record
    /// removed, one transaction.
    Unclaim,
}

/// The attach steps of a controller type, in order.
pub fn attach_plan(t: UsbCtrlType) -> &'static [Action] {
    use Action::*;
    match t {
        UsbCtrlType::Pv => &[Claim, Rebind, Book, Commit],
        // libxl reports success once the port node is written (Q1).
        UsbCtrlType::Qusb => &[Claim, Book, Commit],
        UsbCtrlType::DeviceModel => &[Claim, QmpAdd, Book, Commit],
    }
}

/// The release steps (detach, rollback, recovery) of a controller type.
pub fn release_plan(t: UsbCtrlType) -> &'static [Action] {
    use Action::*;
    match t {
        UsbCtrlType::Pv => &[MarkRelease, Unbind, Unbook, Unclaim],
        UsbCtrlType::Qusb => &[MarkRelease, Unbook, Unclaim],
        UsbCtrlType::DeviceModel => &[MarkRelease, QmpDel, Unbook, Unclaim],
    }
}

/// What recovery does with a record in `step` whose owner is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recovery {
    /// Nothing: the device is attached.
    Keep,
    /// An interrupted attach: run the release plan (roll back).
    RollBack,
    /// An interrupted detach or release: run the release plan to its end
    /// (roll forward), keeping the saved configuration for a release.
    RollForward(Forget),
}

/// The recovery rule.
pub fn recovery(step: Step) -> Recovery {
    match step {
        Step::Done => Recovery::Keep,
        Step::Attach => Recovery::RollBack,
        Step::Detach => Recovery::RollForward(Forget::Both),
        Step::Release => Recovery::RollForward(Forget::LibxlOnly),
    }
}

/// Directory of the controller journal.
pub const CTRL_DIR: &str = "/vusb/ctrl";

/// The journal node of a controller.
pub fn ctrl_path(domid: DomId, devid: u32) -> String {
    format!("{CTRL_DIR}/{domid}/{devid}")
}

/// Journal a controller step (`Attach`, `Detach` or `Release`).
pub fn ctrl_write<X: Xenstore + ?Sized>(
    xs: &X,
    tx: TxId,
    domid: DomId,
    devid: u32,
    step: Step,
) -> Result<()> {
    let path = ctrl_path(domid, devid);
    xs.write_str(tx, &path, step.as_str()).map_err(at(&path))
}

/// The step a controller's journal says, if any (`None`: no entry, or
/// one that is not a step: [`ctrl_list`] reports those).
pub fn ctrl_read<X: Xenstore + ?Sized>(
    xs: &X,
    tx: TxId,
    domid: DomId,
    devid: u32,
) -> Result<Option<Step>> {
    let path = ctrl_path(domid, devid);
    Ok(xs
        .read_opt(tx, &path)
        .map_err(at(&path))?
        .and_then(|v| v.parse::<Step>().ok()))
}

/// The removal hint of a controller: a file beside its lock
/// (`<lock_dir>/ctrl-<G>-<N>.removing`), created before a removal writes
/// its journal entry and deleted after the entry is dropped. It costs an
/// attach no xenstore request to see that no removal of the controller it
/// chose can be pending (no hint); only with a hint is the journal read
/// (a hint left by a crash before the entry was written, or after it was
/// dropped, costs that one read and is deleted). Placement uses it so that
/// no device lands on a controller whose removal was interrupted.
pub fn removal_hint_path(paths: &HostPaths, domid: DomId, devid: u32) -> PathBuf {
    paths.lock_dir().join(format!(
        "{}.removing",
        crate::lock::controller_name(domid, devid)
    ))
}

/// Create the removal hint (see [`removal_hint_path`]). A dry run creates
/// no file (as it takes no lock, [`crate::lock`]).
pub fn hint_removal(paths: &HostPaths, domid: DomId, devid: u32) -> Result<()> {
    if paths.dry_run.is_some() {
        return Ok(());
    }
    let path = removal_hint_path(paths, domid, devid);
    let err = |source| Error::Lock {
        name: format!("{}.removing", crate::lock::controller_name(domid, devid)),
        source,
    };
    std::fs::create_dir_all(paths.lock_dir()).map_err(err)?;
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map(drop)
        .map_err(err)
}

/// Whether a removal hint exists.
pub fn removal_hinted(paths: &HostPaths, domid: DomId, devid: u32) -> bool {
    removal_hint_path(paths, domid, devid).exists()
}

/// Delete the removal hint (absent is fine; a failure is only logged: a
/// stale hint costs one read later).
pub fn clear_removal_hint(paths: &HostPaths, domid: DomId, devid: u32) {
    if paths.dry_run.is_some() {
        return;
    }
    let path = removal_hint_path(paths, domid, devid);
    match std::fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => log::warn!("{}: {e}", path.display()),
    }
}

/// Drop a controller's journal (and its domain's directory once empty).
pub fn ctrl_clear<X: Xenstore + ?Sized>(xs: &X, tx: TxId, domid: DomId, devid: u32) -> Result<()> {
    let path = ctrl_path(domid, devid);
    xs.rm_opt(tx, &path).map_err(at(&path))?;
    let dir = format!("{CTRL_DIR}/{domid}");
    if xs.directory_opt(tx, &dir).map_err(at(&dir))?.is_empty() {
        xs.rm_opt(tx, &dir).map_err(at(&dir))?;
    }
    Ok(())
}

/// Drop every controller journal of a domain.
pub fn ctrl_clear_domain<X: Xenstore + ?Sized>(xs: &X, tx: TxId, domid: DomId) -> Result<()> {
    let dir = format!("{CTRL_DIR}/{domid}");
    xs.rm_opt(tx, &dir).map_err(at(&dir))
}

/// One controller journal entry: `(domid, devid, step)`, or what is wrong
/// with it (`(node, reason)`), so one bad entry is reported and skipped.
pub type CtrlEntry = std::result::Result<(DomId, u32, Step), (String, String)>;

/// Every controller journal entry.
pub fn ctrl_list<X: Xenstore + ?Sized>(xs: &X, tx: TxId) -> Result<Vec<CtrlEntry>> {
    let mut out = Vec::new();
    for d in xs.directory_opt(tx, CTRL_DIR).map_err(at(CTRL_DIR))? {
        let ddir = format!("{CTRL_DIR}/{d}");
        for c in xs.directory_opt(tx, &ddir).map_err(at(&ddir))? {
            let node = format!("{ddir}/{c}");
            let Some(v) = xs.read_opt(tx, &node).map_err(at(&node))? else {
                continue;
            };
            let entry = match (d.parse::<DomId>(), c.parse::<u32>(), v.parse::<Step>()) {
                (Ok(domid), Ok(devid), Ok(step)) if step != Step::Done => Ok((domid, devid, step)),
                _ => Err((node, format!("not a controller journal entry: {v:?}"))),
            };
            out.push(entry);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_plan_is_claim_first_and_unclaim_last() {
        for t in [UsbCtrlType::Pv, UsbCtrlType::Qusb, UsbCtrlType::DeviceModel] {
            let a = attach_plan(t);
            assert_eq!(a.first(), Some(&Action::Claim));
            assert_eq!(a.last(), Some(&Action::Commit));
            let r = release_plan(t);
            assert_eq!(r.first(), Some(&Action::MarkRelease));
            assert_eq!(r.last(), Some(&Action::Unclaim));
            // Every attach step that touches the host has its undo.
            if a.contains(&Action::Rebind) {
                assert!(r.contains(&Action::Unbind));
            }
            if a.contains(&Action::QmpAdd) {
                assert!(r.contains(&Action::QmpDel));
            }
        }
    }

    #[test]
    fn steps_round_trip() {
        for s in [Step::Attach, Step::Done, Step::Detach, Step::Release] {
            assert_eq!(s.as_str().parse::<Step>(), Ok(s));
        }
        assert!("x".parse::<Step>().is_err());
        assert_eq!(recovery(Step::Done), Recovery::Keep);
        assert_eq!(recovery(Step::Attach), Recovery::RollBack);
    }
}
