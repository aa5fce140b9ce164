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

use std::fmt;
use std::str::FromStr;

use crate::bookkeeping::Forget;
use crate::layout::UsbCtrlType;

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
