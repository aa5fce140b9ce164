//! The one way vusb takes a file lock: open (creating) the lock file and
//! `flock` it exclusively, as libxl does for its userdata lock. Used for
//! libxl's `domain-userdata-lock` ([`crate::libxl_json`]) and vusb's own
//! per-guest lock ([`crate::persist`]). The lock lasts as long as the
//! returned file is open.

use std::fs::{File, OpenOptions};
use std::path::Path;

/// [`lock_exclusive`], except in a dry run (`plan`), which takes no lock
/// and creates no lock file (`Ok(None)`): it changes nothing.
pub(crate) fn lock_unless_dry(
    plan: Option<&crate::dryrun::Plan>,
    path: &Path,
) -> std::io::Result<Option<File>> {
    match plan {
        Some(_) => Ok(None),
        None => lock_exclusive(path).map(Some),
    }
}

/// Open `path` (created if absent, never truncated) and wait for an
/// exclusive `flock` on it.
pub(crate) fn lock_exclusive(path: &Path) -> std::io::Result<File> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)?;
    file.lock()?;
    Ok(file)
}
