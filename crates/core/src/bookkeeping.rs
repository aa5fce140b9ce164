//! Bookkeeping: the two files that must agree with xenstore after every
//! operation — libxl's stored domain configuration
//! ([`crate::libxl_json`], what `xl` and save/restore see) and vusb's
//! saved configuration ([`crate::persist`], what `config-apply --saved`
//! brings back). Every operation goes through these functions, and they
//! run as steps of the journaled hand-over ([`crate::journal`]), so that a
//! crash between a xenstore change and its bookkeeping is repaired by the
//! recovery that resolves the journal.
//!
//! Policy, in one place: a controller whose libxl JSON entry cannot be
//! written is not created (the caller rolls it back, as libxl fails); every
//! other bookkeeping failure is logged here, once, and the operation
//! continues (xenstore is the truth; a later `config-apply --saved` or
//! operation rewrites the entry). Removals by `usb-release` keep the saved
//! configuration (the guest is going away and comes back with it); explicit
//! detaches and rolled-back attaches forget it.

use vusb_xenstore::{DomId, Xenstore};

use crate::layout::Controller;
use crate::persist::{self, DevRecord};
use crate::{HostPaths, Result, libxl_json};

/// Which of the two files a removal updates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forget {
    /// libxl's JSON and vusb's saved configuration (explicit detach,
    /// rolled-back attach).
    Both,
    /// libxl's JSON only (`usb-release`: the saved configuration keeps
    /// what the guest should get back).
    LibxlOnly,
}

fn warn_libxl(domid: DomId, e: &crate::Error) {
    log::warn!(
        "domain {domid}: libxl's stored configuration not updated: {}",
        chain(e)
    );
}

fn warn_saved(domid: DomId, e: &crate::Error) {
    log::warn!(
        "domain {domid}: vusb's saved configuration not updated: {}",
        chain(e)
    );
}

fn chain(e: &crate::Error) -> String {
    let mut s = e.to_string();
    let mut cur: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// A created controller in libxl's JSON (an error: the caller rolls the
/// controller back).
pub fn libxl_record_ctrl<X: Xenstore + ?Sized>(
    xs: &X,
    paths: &HostPaths,
    domid: DomId,
    c: &Controller,
) -> Result<()> {
    libxl_json::record_ctrl(xs, paths, domid, c)
}

/// A created controller in the saved configuration.
pub fn saved_record_ctrl<X: Xenstore + ?Sized>(
    xs: &X,
    paths: &HostPaths,
    domid: DomId,
    c: &Controller,
) {
    if let Err(e) = persist::record_ctrl(xs, paths, domid, c) {
        warn_saved(domid, &e);
    }
}

/// A removed controller (and its devices) out of libxl's JSON.
pub fn libxl_forget_ctrl<X: Xenstore + ?Sized>(
    xs: &X,
    paths: &HostPaths,
    domid: DomId,
    devid: u32,
) {
    if let Err(e) = libxl_json::forget_ctrl(xs, paths, domid, devid) {
        warn_libxl(domid, &e);
    }
}

/// A removed controller (and its devices) out of the saved configuration.
pub fn saved_forget_ctrl<X: Xenstore + ?Sized>(
    xs: &X,
    paths: &HostPaths,
    domid: DomId,
    devid: u32,
) {
    if let Err(e) = persist::forget_ctrl(xs, paths, domid, devid) {
        warn_saved(domid, &e);
    }
}

/// An attached host device, in both files.
pub fn record_dev<X: Xenstore + ?Sized>(xs: &X, paths: &HostPaths, domid: DomId, d: &DevRecord) {
    if let Err(e) = libxl_json::record_dev(xs, paths, domid, d.ctrl, d.port, d.hostbus, d.hostaddr)
    {
        warn_libxl(domid, &e);
    }
    if let Err(e) = persist::record_dev(xs, paths, domid, d) {
        warn_saved(domid, &e);
    }
}

/// A removed host device (at `ctrl`/`port`), out of libxl's JSON and, for
/// [`Forget::Both`], the saved configuration.
pub fn forget_dev<X: Xenstore + ?Sized>(
    xs: &X,
    paths: &HostPaths,
    domid: DomId,
    ctrl: u32,
    port: u32,
    which: Forget,
) {
    if let Err(e) = libxl_json::forget_dev(xs, paths, domid, ctrl, port) {
        warn_libxl(domid, &e);
    }
    if which == Forget::Both
        && let Err(e) = persist::forget_dev(xs, paths, domid, ctrl, port)
    {
        warn_saved(domid, &e);
    }
}
