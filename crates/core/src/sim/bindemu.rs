//! The kernel's part of sysfs driver binding, played on the simulated
//! host's plain-file sysfs tree.
//!
//! On a real host, writing an interface name to
//! `bus/usb/drivers/<D>/bind` attaches it to driver `D` before `write()`
//! returns (the `driver` link appears), and `unbind` detaches it. In the
//! fixture these are plain files, so a thread polls them (every
//! [`POLL`]), and for each name written moves the links as the kernel
//! would (`devices/<intf>/driver` and `drivers/<D>/<intf>`), then empties
//! the file. Every operation is appended to `<log>` in the xl-peer shim's
//! format (`bind usbback 1-2:1.0`, `unbind usbhid 1-2:1.0`,
//! `... -> EBUSY`).
//!
//! Differences from the kernel, deliberate for a simulation: the effect is
//! asynchronous (up to a few milliseconds after the write), and a refused
//! operation (unknown interface, already bound, not bound) is logged but
//! cannot fail the writer's `write()`.

use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use super::Error;

/// How often the control files are polled.
pub const POLL: Duration = Duration::from_millis(2);

/// The running emulation; stops when dropped.
#[derive(Debug)]
pub struct BindEmulation {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl BindEmulation {
    /// Start polling the drivers under `sysfs_root/bus/usb/drivers`,
    /// logging to `log`.
    pub fn spawn(sysfs_root: &Path, log: &Path) -> Result<BindEmulation, Error> {
        let usb = sysfs_root.join("bus/usb");
        let log = log.to_owned();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("vusb-sim-bind".into())
            .spawn(move || {
                while !flag.load(Ordering::SeqCst) {
                    scan_once(&usb, &log);
                    std::thread::sleep(POLL);
                }
            })
            .map_err(Error::SpawnThread)?;
        Ok(BindEmulation {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for BindEmulation {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            if t.join().is_err() {
                log::warn!("sysfs bind emulation thread panicked");
            }
        }
    }
}

/// Process every pending write to a `bind`/`unbind` file once.
pub fn scan_once(usb: &Path, log: &Path) {
    let Ok(drivers) = fs::read_dir(usb.join("drivers")) else {
        return;
    };
    for entry in drivers.flatten() {
        let driver = entry.file_name().to_string_lossy().into_owned();
        for op in ["bind", "unbind"] {
            let ctl = entry.path().join(op);
            let Ok(content) = fs::read_to_string(&ctl) else {
                continue;
            };
            if content.is_empty() {
                continue;
            }
            if let Err(e) = fs::write(&ctl, "") {
                log::warn!("emptying {}: {e}", ctl.display());
            }
            for name in content
                .split(['\n', '\0'])
                .map(str::trim)
                .filter(|n| !n.is_empty())
            {
                let line = apply(usb, &driver, op, name);
                log::debug!("sim sysfs: {line}");
                append(log, &line);
            }
        }
    }
}

fn append(log: &Path, line: &str) {
    let r = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .and_then(|mut f| writeln!(f, "{line}"));
    if let Err(e) = r {
        log::warn!("writing {}: {e}", log.display());
    }
}

/// Perform one operation, returning its log line.
fn apply(usb: &Path, driver: &str, op: &str, name: &str) -> String {
    let dev = usb.join("devices").join(name);
    let dev_link = dev.join("driver");
    let drv_link = usb.join("drivers").join(driver).join(name);
    if fs::symlink_metadata(&dev).is_err() || name.contains('/') {
        return format!("{op} {driver} {name} -> ENODEV");
    }
    let current: Option<PathBuf> = fs::read_link(&dev_link).ok();
    let current_name = current
        .as_ref()
        .and_then(|c| c.file_name())
        .map(|n| n.to_string_lossy().into_owned());
    if op == "bind" {
        if let Some(cur) = current_name {
            return format!("bind {driver} {name} -> EBUSY (bound to {cur})");
        }
        let r = symlink(format!("../../devices/{name}"), &drv_link)
            .and_then(|()| symlink(format!("../../drivers/{driver}"), &dev_link));
        return match r {
            Ok(()) => format!("bind {driver} {name}"),
            Err(e) => format!("bind {driver} {name} -> {e}"),
        };
    }
    if current_name.as_deref() != Some(driver) {
        return format!("unbind {driver} {name} -> ENODEV (not bound)");
    }
    let r = fs::remove_file(&dev_link).and_then(|()| fs::remove_file(&drv_link));
    match r {
        Ok(()) => format!("unbind {driver} {name}"),
        Err(e) => format!("unbind {driver} {name} -> {e}"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn bind_and_unbind_move_links() {
        let dir = tempfile::tempdir().unwrap();
        super::super::fixture::write_fixture(dir.path(), 2).unwrap();
        let usb = dir.path().join("bus/usb");
        let log = dir.path().join("sysfs.log");
        fs::write(usb.join("drivers/usbhid/unbind"), "1-2:1.0").unwrap();
        scan_once(&usb, &log);
        assert!(fs::read_link(usb.join("devices/1-2:1.0/driver")).is_err());
        assert!(!usb.join("drivers/usbhid/1-2:1.0").exists());
        fs::write(usb.join("drivers/usbback/bind"), "1-2:1.0\n").unwrap();
        scan_once(&usb, &log);
        let l = fs::read_link(usb.join("devices/1-2:1.0/driver")).unwrap();
        assert_eq!(l, PathBuf::from("../../drivers/usbback"));
        fs::write(usb.join("drivers/usbback/bind"), "1-2:1.0").unwrap();
        fs::write(usb.join("drivers/usbhid/unbind"), "1-9:1.0").unwrap();
        scan_once(&usb, &log);
        let text = fs::read_to_string(&log).unwrap();
        assert!(
            text.starts_with("unbind usbhid 1-2:1.0\nbind usbback 1-2:1.0\n"),
            "{text}"
        );
        assert!(
            text.contains("bind usbback 1-2:1.0 -> EBUSY (bound to usbback)"),
            "{text}"
        );
        assert!(text.contains("unbind usbhid 1-9:1.0 -> ENODEV"), "{text}");
        assert_eq!(
            fs::read_to_string(usb.join("drivers/usbback/bind")).unwrap(),
            ""
        );
    }
}
