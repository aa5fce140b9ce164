//! Running a closure inside a xenstore transaction, re-running it when the
//! commit reports a conflict (`EAGAIN`), with a bound.
//!
//! libxl retries without bound (reference §7.8); vusb gives up after
//! [`DEFAULT_ATTEMPTS`] and says so with [`Error::TransactionConflict`].

use crate::{Error, Result, TxId, Xenstore};

/// How many times [`transaction`] runs the closure before giving up.
pub const DEFAULT_ATTEMPTS: u32 = 32;

/// Run `body` in a fresh transaction and commit it; on an `EAGAIN` commit
/// run it again in a new transaction, up to `attempts` times.
///
/// If `body` fails, the transaction is aborted and its error returned as is
/// (no retry). The closure must therefore not have side effects outside
/// xenstore that it cannot repeat.
pub fn transaction<X, T, E, F>(xs: &X, attempts: u32, mut body: F) -> std::result::Result<T, E>
where
    X: Xenstore + ?Sized,
    E: From<Error>,
    F: FnMut(TxId) -> std::result::Result<T, E>,
{
    let attempts = attempts.max(1);
    for attempt in 1..=attempts {
        let tx = xs.transaction_start()?;
        let value = match body(tx) {
            Ok(v) => v,
            Err(e) => {
                if let Err(abort) = xs.transaction_end(tx, false) {
                    log::debug!("aborting xenstore transaction {} failed: {abort}", tx.0);
                }
                return Err(e);
            }
        };
        match xs.transaction_end(tx, true) {
            Ok(()) => return Ok(value),
            Err(e) if e.is_again() => {
                log::debug!("xenstore transaction conflict, attempt {attempt} of {attempts}");
                continue;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(Error::TransactionConflict { attempts }.into())
}

/// [`transaction`] with [`DEFAULT_ATTEMPTS`] and this crate's error type.
pub fn transaction_default<X, T, F>(xs: &X, body: F) -> Result<T>
where
    X: Xenstore + ?Sized,
    F: FnMut(TxId) -> Result<T>,
{
    transaction(xs, DEFAULT_ATTEMPTS, body)
}
