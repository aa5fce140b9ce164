//! Removing a controller's nodes as libxl's generic device removal does
//! (reference §4.6, §7.4): one transaction writes backend `online`=0 and
//! `state`=5 (unless already 6), then vusb waits for the backend to reach
//! 6 (Closed), then one transaction removes the frontend, `/libxl` and
//! backend directories and prunes parents left empty
//! (`libxl__xs_path_cleanup`), e.g. `/local/domain/0/backend/vusb/<G>`.
//!
//! Differences from libxl, documented in `docs/xenstore-layout.md`:
//! - a backend that does not close within the timeout is removed anyway
//!   (libxl's force=AUTO does one forced retry and then the same);
//! - pruning never removes `/local/domain/<G>`, `/local/domain/0` or
//!   `/libxl/<G>` themselves, even when empty.

use std::time::Duration;

use vusb_xenstore::{TxId, Xenstore, XenstoreExt, XenstoreWatch, transaction};

use super::model::Controller;
use super::wait::{STATE_CLOSED, STATE_CLOSING, read_state, wait_state};
use crate::error::at;
use crate::{Error, Result};

const ATTEMPTS: u32 = vusb_xenstore::txn::DEFAULT_ATTEMPTS;

/// Ask the backend to close: `online`=0 and `state`=5 (unless it is
/// already 6), in one transaction. No-op for devicemodel.
pub fn begin_close<X: Xenstore + ?Sized>(xs: &X, c: &Controller) -> Result<()> {
    let Some(be) = c.backend_dir() else {
        return Ok(());
    };
    transaction(xs, ATTEMPTS, |tx| {
        let state = read_state(xs, tx, &be)?;
        if state.is_none() {
            return Ok(()); // backend already gone: nothing to close
        }
        let online = format!("{be}/online");
        xs.write_str(tx, &online, "0").map_err(at(&online))?;
        if state != Some(STATE_CLOSED) {
            let p = format!("{be}/state");
            xs.write_str(tx, &p, &STATE_CLOSING.to_string())
                .map_err(at(&p))?;
        }
        Ok::<(), Error>(())
    })
}

/// Close the backend and wait for `Closed` (6) up to `timeout`; a timeout
/// is logged and removal proceeds (forced), as libxl's force path does.
pub fn close_backend<X: Xenstore + XenstoreWatch + ?Sized>(
    xs: &X,
    plan: Option<&crate::dryrun::Plan>,
    c: &Controller,
    timeout: Duration,
) -> Result<()> {
    let Some(be) = c.backend_dir() else {
        return Ok(());
    };
    begin_close(xs, c)?;
    let closed = |s: Option<i64>| s.is_none() || s == Some(STATE_CLOSED);
    match wait_state(xs, plan, &be, STATE_CLOSED as u32, timeout, closed) {
        Ok(()) => Ok(()),
        Err(Error::BackendTimeout { last, .. }) => {
            log::warn!(
                "backend {be} did not close within {} s (state {last}); removing it anyway",
                timeout.as_secs()
            );
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Remove `path` and then every parent left without children, stopping at
/// (never removing) any path in `stop_at`.
pub fn rm_and_prune<X: Xenstore + ?Sized>(
    xs: &X,
    tx: TxId,
    path: &str,
    stop_at: &[&str],
) -> Result<()> {
    xs.rm_opt(tx, path).map_err(at(path))?;
    let mut cur = path;
    while let Some((parent, _)) = cur.rsplit_once('/') {
        if parent.is_empty() || stop_at.contains(&parent) {
            break;
        }
        let children = match xs.directory(tx, parent) {
            Ok(c) => c,
            Err(e) if e.is_not_found() => break,
            Err(e) => return Err(at(parent)(e)),
        };
        if !children.is_empty() {
            break;
        }
        xs.rm_opt(tx, parent).map_err(at(parent))?;
        cur = parent;
    }
    Ok(())
}

/// Remove the controller's frontend, `/libxl` and backend directories and
/// prune emptied parents, in transaction `tx` (libxl's
/// `libxl__device_destroy` order).
pub fn destroy_nodes<X: Xenstore + ?Sized>(xs: &X, tx: TxId, c: &Controller) -> Result<()> {
    let guest_home = format!("/local/domain/{}", c.domid);
    let libxl_home = format!("/libxl/{}", c.domid);
    let stops = [
        guest_home.as_str(),
        libxl_home.as_str(),
        "/local/domain/0",
        "/local/domain",
        "/libxl",
    ];
    if let Some(fe) = c.frontend_dir() {
        rm_and_prune(xs, tx, &fe, &stops)?;
    }
    rm_and_prune(xs, tx, &c.libxl_dir(), &stops)?;
    if let Some(be) = c.backend_dir() {
        rm_and_prune(xs, tx, &be, &stops)?;
    }
    Ok(())
}

/// [`destroy_nodes`] in its own transaction.
pub fn destroy<X: Xenstore + ?Sized>(xs: &X, c: &Controller) -> Result<()> {
    transaction(xs, ATTEMPTS, |tx| destroy_nodes(xs, tx, c))
}
