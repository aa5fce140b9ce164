//! The driver-binding primitives libxl uses (reference §5.6), over an
//! injectable sysfs root. Only interfaces move between drivers; the device
//! itself stays with the generic `usb` driver.
//!
//! - current driver: the `driver` link of `<devices>/<intf>` (its last
//!   component); absent means unbound;
//! - unbind: write the interface name to `<devices>/<intf>/driver/unbind`;
//! - bind to `D`: done if `<drivers>/D/<intf>` exists, else write the name
//!   to `<drivers>/D/bind`.
//!
//! Writes are one `write(2)` of the bare name, no newline, as libxl does.
//!
//! Unlike libxl, a write that returned success is checked: the `driver`
//! link must show the change. A kernel moves the link before the write
//! returns, so the first look (one `readlink`) passes; a driver that binds
//! asynchronously — or the simulated host's sysfs, where the change follows
//! the write by a few milliseconds — is waited for up to
//! [`SETTLE_TIMEOUT`], and a bind the driver silently refused is an error
//! instead of a success nobody checked.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::device::BusId;
use crate::discover::devices_dir;
use crate::error::{Error, Result};
use crate::sysfs::{SysfsPath, list_dir};

/// The driver of the Xen pv USB backend.
pub const USBBACK: &str = "usbback";

/// `<root>/bus/usb/drivers/<driver>`.
pub fn driver_dir(sysfs_root: &Path, driver: &str) -> PathBuf {
    sysfs_root.join("bus/usb/drivers").join(driver)
}

/// Whether a driver is registered (`<root>/bus/usb/drivers/<driver>` exists).
pub fn driver_loaded(sysfs_root: &Path, driver: &str) -> bool {
    std::fs::symlink_metadata(driver_dir(sysfs_root, driver)).is_ok()
}

/// The interfaces of `busid` currently in sysfs, sorted (libxl §5.5: names
/// starting with `<busid>:`).
pub fn interfaces_of(sysfs_root: &Path, busid: &BusId) -> Result<Vec<String>> {
    let prefix = format!("{busid}:");
    Ok(list_dir(&devices_dir(sysfs_root))?
        .into_iter()
        .filter(|n| n.starts_with(&prefix))
        .collect())
}

/// The name of the driver `interface` is bound to, `None` when unbound.
pub fn driver_of(sysfs_root: &Path, interface: &str) -> Result<Option<String>> {
    let dir = SysfsPath::new(devices_dir(sysfs_root).join(interface));
    Ok(dir
        .read_link_opt("driver")?
        .and_then(|t| t.file_name().map(|n| n.to_string_lossy().into_owned())))
}

fn write_name(path: &Path, interface: &str) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new().write(true).open(path)?;
    f.write_all(interface.as_bytes())
}

/// Unbind `interface` from its driver; nothing to do when it is unbound.
/// Returns the driver it was bound to.
pub fn unbind(sysfs_root: &Path, interface: &str) -> Result<Option<String>> {
    let Some(driver) = driver_of(sysfs_root, interface)? else {
        return Ok(None);
    };
    let path = devices_dir(sysfs_root)
        .join(interface)
        .join("driver/unbind");
    log::debug!("unbinding {interface} from {driver}");
    let failed = |source| Error::Unbind {
        interface: interface.to_owned(),
        driver: driver.clone(),
        source,
    };
    write_name(&path, interface).map_err(failed)?;
    let moved = settle(sysfs_root, interface, |now| now != Some(driver.as_str()))?;
    if !moved {
        return Err(failed(not_settled("the interface is still on its driver")));
    }
    Ok(Some(driver))
}

/// How long a bind or unbind may take to show in the `driver` link after
/// its write returned (see the module doc).
pub const SETTLE_TIMEOUT: Duration = Duration::from_secs(2);

/// Wait until the driver `interface` is bound to satisfies `done`; `false`
/// after [`SETTLE_TIMEOUT`]. The first look is immediate.
fn settle(sysfs_root: &Path, interface: &str, done: impl Fn(Option<&str>) -> bool) -> Result<bool> {
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    let mut pause = Duration::from_millis(1);
    loop {
        if done(driver_of(sysfs_root, interface)?.as_deref()) {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

fn not_settled(what: &str) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!(
            "the write succeeded but {what} after {} s",
            SETTLE_TIMEOUT.as_secs()
        ),
    )
}

/// Bind `interface` to `driver`, unless it is bound there already.
pub fn bind(sysfs_root: &Path, driver: &str, interface: &str) -> Result<()> {
    let dir = driver_dir(sysfs_root, driver);
    if std::fs::symlink_metadata(dir.join(interface)).is_ok() {
        log::debug!("{interface} is already bound to {driver}");
        return Ok(());
    }
    log::debug!("binding {interface} to {driver}");
    let failed = |source| Error::Bind {
        interface: interface.to_owned(),
        driver: driver.to_owned(),
        source,
    };
    write_name(&dir.join("bind"), interface).map_err(failed)?;
    if !settle(sysfs_root, interface, |now| now == Some(driver))? {
        return Err(failed(not_settled("the interface is not on the driver")));
    }
    Ok(())
}
