//! Announcing a wait that may be long (a backend changing state, QEMU's
//! `DEVICE_DELETED`, a guest releasing a controller), so a front end can
//! tell its user what it is waiting for and for how long at most. Through
//! the `log` facade, on its own target: `"waiting for …"` when the wait
//! starts, [`DONE`] when it ends (the guard's drop). The CLI shows a wait
//! that lasts more than a second on a terminal; logs at `-v` show both.

use std::fmt::Display;
use std::time::Duration;

/// The log target of progress records.
pub const TARGET: &str = "vusb_progress";
/// The message that ends a wait.
pub const DONE: &str = "done";

/// Ends the announced wait when dropped.
#[must_use = "the wait is over when this is dropped"]
pub struct Waiting(());

/// Announce a wait for `what`, bounded by `max`.
pub fn waiting(what: impl Display, max: Duration) -> Waiting {
    log::info!(
        target: TARGET,
        "waiting for {what} (at most {} s)",
        max.as_secs_f64().ceil()
    );
    Waiting(())
}

impl Drop for Waiting {
    fn drop(&mut self) {
        log::info!(target: TARGET, "{DONE}");
    }
}
