//! Whether udevd has announced a USB device yet.
//!
//! QEMU's `usb-host` finds host devices through libusb, and libusb's list
//! of devices follows udevd's announcements (a netlink message sent after
//! udevd ran its rules and wrote the device's database entry), not the
//! kernel's uevents. A device the kernel bound a moment ago can therefore
//! still be unknown to a running QEMU. QEMU 7.2's xen-usb backend then
//! connects an unopened device to the guest's port, and aborts on the
//! guest's first request to it (seen on the real Xen bed, dom0 running
//! udevd: the daemon wrote the port 280 ms after the kernel's `bind`
//! uevent, no `unbind` followed — QEMU never opened the stick — and the
//! backend aborted; with the wait, not again in three runs); a devicemodel
//! `device_add` fails with "failed to find host usb device". So a
//! QEMU-served attach first waits for udevd.
//!
//! udevd writes `<udev dir>/data/c189:<minor>` for every USB device (major
//! 189, minor `(busnum - 1) * 128 + devnum - 1`) just before it announces
//! the device. Without udevd (no `<udev dir>/control`) there is nothing to
//! wait for: QEMU's libusb then sees only the devices present when QEMU
//! started.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// The database entry udevd writes for the USB device `busnum`/`devnum`.
pub fn db_entry(udev_dir: &Path, busnum: u8, devnum: u8) -> PathBuf {
    let minor = u32::from(busnum.max(1) - 1) * 128 + u32::from(devnum.max(1) - 1);
    udev_dir.join(format!("data/c189:{minor}"))
}

/// Whether udevd runs: its control socket exists.
pub fn running(udev_dir: &Path) -> bool {
    udev_dir.join("control").exists()
}

/// Whether udevd has events queued: it keeps `<udev dir>/queue` while it
/// has (what `udevadm settle` waits on).
pub fn busy(udev_dir: &Path) -> bool {
    udev_dir.join("queue").exists()
}

/// What [`wait_announced`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Announcement {
    /// udevd does not run: nothing to wait for.
    NoUdevd,
    /// udevd announced the device, `after` this long of waiting.
    Announced {
        /// Time spent waiting (zero for a device udevd announced long ago).
        after: Duration,
    },
    /// udevd runs, has nothing queued and no entry for the device: the
    /// device predates udevd and was never replayed to it (no coldplug
    /// trigger); nothing more will come.
    Unknown,
}

/// How the wait is paced.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    /// How old the announcement must be (it follows the database write:
    /// time for the listeners, libusb's event thread among them, to take
    /// it in).
    pub settle: Duration,
    /// After this long without an entry, an idle udevd (nothing queued)
    /// means [`Announcement::Unknown`] (udevd may not even have read the
    /// kernel's uevent before).
    pub idle_after: Duration,
    /// Give up after this long.
    pub max: Duration,
}

/// Wait until udevd has announced the device `busnum`/`devnum`, and until
/// its announcement is at least `pace.settle` old. Gives up after
/// `pace.max`, returning how long it waited.
pub fn wait_announced(
    udev_dir: &Path,
    busnum: u8,
    devnum: u8,
    pace: Pace,
) -> Result<Announcement, Duration> {
    if !running(udev_dir) {
        return Ok(Announcement::NoUdevd);
    }
    let entry = db_entry(udev_dir, busnum, devnum);
    let start = Instant::now();
    loop {
        if let Ok(meta) = std::fs::metadata(&entry) {
            let age = meta
                .modified()
                .ok()
                .and_then(|m| SystemTime::now().duration_since(m).ok())
                .unwrap_or(pace.settle);
            if age < pace.settle {
                std::thread::sleep(pace.settle - age);
            }
            return Ok(Announcement::Announced {
                after: start.elapsed(),
            });
        }
        let waited = start.elapsed();
        if waited >= pace.idle_after && !busy(udev_dir) {
            return Ok(Announcement::Unknown);
        }
        if waited >= pace.max {
            return Err(waited);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const SETTLE: Duration = Duration::from_millis(100);
    const PACE: Pace = Pace {
        settle: SETTLE,
        idle_after: Duration::from_millis(400),
        max: Duration::from_secs(5),
    };

    fn udevd(dir: &Path) {
        std::fs::write(dir.join("control"), "").unwrap();
        std::fs::create_dir_all(dir.join("data")).unwrap();
    }

    #[test]
    fn the_entry_is_named_by_major_189_and_the_kernels_minor() {
        let d = Path::new("/run/udev");
        assert_eq!(db_entry(d, 1, 1), Path::new("/run/udev/data/c189:0"));
        assert_eq!(db_entry(d, 2, 3), Path::new("/run/udev/data/c189:130"));
        assert_eq!(db_entry(d, 3, 127), Path::new("/run/udev/data/c189:382"));
    }

    #[test]
    fn without_udevd_nothing_is_awaited() {
        let t = tempfile::tempdir().unwrap();
        let r = wait_announced(t.path(), 1, 2, PACE);
        assert_eq!(r, Ok(Announcement::NoUdevd));
    }

    #[test]
    fn an_entry_written_later_ends_the_wait_settle_after_it() {
        let t = tempfile::tempdir().unwrap();
        udevd(t.path());
        // udevd busy the while (its queue file), as when it processes the
        // device's uevent; an entry written after `idle_after`.
        std::fs::write(t.path().join("queue"), "").unwrap();
        let entry = db_entry(t.path(), 1, 2);
        let queue = t.path().join("queue");
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(600));
            std::fs::write(entry, "E:ID_VENDOR=x\n").unwrap();
            std::fs::remove_file(queue).unwrap();
        });
        let r = wait_announced(t.path(), 1, 2, PACE);
        writer.join().unwrap();
        match r {
            // The entry's age comes from its mtime, whose granularity
            // (a clock tick) may make it look a few ms older.
            Ok(Announcement::Announced { after }) => {
                assert!(
                    after >= Duration::from_millis(600) + SETTLE / 2,
                    "{after:?}"
                )
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_busy_udevd_that_never_announces_is_given_up_after_max() {
        let t = tempfile::tempdir().unwrap();
        udevd(t.path());
        std::fs::write(t.path().join("queue"), "").unwrap();
        let pace = Pace {
            max: Duration::from_millis(700),
            ..PACE
        };
        let r = wait_announced(t.path(), 1, 2, pace);
        assert!(
            matches!(r, Err(w) if w >= Duration::from_millis(700)),
            "{r:?}"
        );
    }

    #[test]
    fn an_idle_udevd_without_an_entry_does_not_know_the_device() {
        let t = tempfile::tempdir().unwrap();
        udevd(t.path());
        let start = Instant::now();
        let r = wait_announced(t.path(), 1, 2, PACE);
        assert_eq!(r, Ok(Announcement::Unknown));
        let waited = start.elapsed();
        assert!(waited >= PACE.idle_after && waited < PACE.max, "{waited:?}");
    }
}
