//! Waiting for a backend's xenbus `state` through a xenstore watch, with a
//! deadline (libxl's `libxl__wait_device_connection` and the wait for
//! `Closed` in generic removal, reference §4.7).
//!
//! Only the **backend** state is read: the backend directory is owned by
//! dom0 (`n0,r<G>`), so a guest cannot fake progress or make vusb wait
//! forever; every wait ends at its deadline.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use vusb_xenstore::{TxId, Xenstore, XenstoreExt, XenstoreWatch};

use crate::dryrun::Plan;
use crate::error::at;
use crate::{Error, Result};

/// xenbus `InitWait`.
pub const STATE_INIT_WAIT: i64 = 2;
/// xenbus `Connected`.
pub const STATE_CONNECTED: i64 = 4;
/// xenbus `Closing`.
pub const STATE_CLOSING: i64 = 5;
/// xenbus `Closed`.
pub const STATE_CLOSED: i64 = 6;

static TOKEN: AtomicU32 = AtomicU32::new(0);

/// Read `<dir>/state` as a number; `None` when absent, `Some(-1)` when not
/// a number.
pub fn read_state<X: Xenstore + ?Sized>(xs: &X, tx: TxId, dir: &str) -> Result<Option<i64>> {
    let path = format!("{dir}/state");
    let v = xs.read_opt(tx, &path).map_err(at(&path))?;
    Ok(v.map(|v| v.trim().parse::<i64>().unwrap_or(-1)))
}

/// Wait until `done(state)` holds for the backend `dir`'s `state` (absent
/// is passed as `None`), at most `timeout`. `wanted` only names the goal in
/// the timeout error. In a dry run (`plan`) the wait is recorded and
/// assumed to succeed: no backend answers a change that was not made.
pub fn wait_state<X, F>(
    xs: &X,
    plan: Option<&Plan>,
    dir: &str,
    wanted: u32,
    timeout: Duration,
    done: F,
) -> Result<()>
where
    X: Xenstore + XenstoreWatch + ?Sized,
    F: Fn(Option<i64>) -> bool,
{
    if let Some(plan) = plan {
        plan.wait(
            format_args!("backend {dir} to reach state {wanted}"),
            timeout,
        );
        return Ok(());
    }
    let path = format!("{dir}/state");
    let token = format!(
        "vusb-{}-{}",
        std::process::id(),
        TOKEN.fetch_add(1, Ordering::Relaxed)
    );
    xs.watch(&path, &token).map_err(at(&path))?;
    let wait = crate::progress::waiting(
        format_args!("backend {dir} to reach state {wanted}"),
        timeout,
    );
    let result = wait_loop(xs, dir, wanted, timeout, &done);
    drop(wait);
    if let Err(e) = xs.unwatch(&path, &token) {
        log::debug!("unwatch {path}: {e}");
    }
    result
}

fn wait_loop<X, F>(xs: &X, dir: &str, wanted: u32, timeout: Duration, done: &F) -> Result<()>
where
    X: Xenstore + XenstoreWatch + ?Sized,
    F: Fn(Option<i64>) -> bool,
{
    let deadline = Instant::now() + timeout;
    loop {
        let state = read_state(xs, TxId::NONE, dir)?;
        log::trace!("{dir}/state = {state:?}, waiting for {wanted}");
        if done(state) {
            return Ok(());
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(Error::BackendTimeout {
                path: dir.to_owned(),
                wanted,
                last: state.unwrap_or(-1),
                secs: timeout.as_secs(),
            });
        }
        // Any event (ours or not) just makes us re-read the state; so do
        // lost events (a flood overflowed the queue).
        match xs.wait_event(deadline - now) {
            Err(e) if e.is_events_overflow() => log::debug!("{dir}: {e}"),
            r => {
                r?;
            }
        }
    }
}
