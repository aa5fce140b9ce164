//! Serialisation across vusb processes: one `flock`ed file per host
//! device, per guest controller and per guest, in
//! [`crate::HostPaths::lock_dir`].
//!
//! | lock | file | taken by |
//! |---|---|---|
//! | device | `dev-<busid>` | exclusive: every operation that changes the device (attach, detach, recovery), sysfs steps included |
//! | controller | `ctrl-<domid>-<devid>` | shared: an operation that places a device on it or takes one off; exclusive: its removal (usbctrl-detach, usb-release, the rollback of a controller an attach created) |
//! | guest | `dom-<domid>` | exclusive: controller creation (usbctrl-attach, an attach that found no free port) |
//!
//! **Lock order**: device locks (several: sorted by busid), then the guest
//! lock, then controller locks. Every operation takes them in this order,
//! so no two operations can wait for each other in a circle. Waits are
//! bounded ([`crate::ops::Timeouts::lock_wait`]); a wait that times out
//! fails with [`Error::Busy`] naming the holder recorded in the file (its
//! pid and command line, written by each holder once it has the lock).
//!
//! `flock` locks belong to the open file and vanish with the process, so a
//! killed command never leaves a lock behind; what it left half done is in
//! the journal ([`crate::journal`]), which the next holder resolves.
//! Converting a held shared lock to exclusive ([`Held::try_upgrade`]) never
//! waits: if another process holds the lock too, the caller gives up
//! (and, as `flock` converts by unlocking first, holds nothing any more).
//!
//! A dry run (`vusb -N`, [`crate::dryrun`]) takes no lock and creates no
//! lock file: every lock is granted at once, without a file.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use vusb_xenstore::DomId;

use crate::{Error, HostPaths, Result};

/// How a lock is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Several holders at once (users of a controller).
    Shared,
    /// One holder (changing a device, removing a controller).
    Exclusive,
}

/// A held lock; released when dropped (or when the process ends).
#[derive(Debug)]
pub struct Held {
    /// `None` in a dry run, which takes no locks (see [`planned`]).
    file: Option<File>,
    name: String,
    mode: Mode,
}

impl Held {
    /// The lock's name (`dev-3-1.2`, `ctrl-7-0`, `dom-7`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How it is held.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Try, without waiting, to turn a shared hold into an exclusive one.
    /// `Ok(None)`: another process holds it too; the lock is then no longer
    /// held at all (`flock` converts by unlocking first).
    pub fn try_upgrade(self) -> Result<Option<Held>> {
        let Some(file) = self.file.as_ref().filter(|_| self.mode == Mode::Shared) else {
            return Ok(Some(Held {
                mode: Mode::Exclusive,
                ..self
            }));
        };
        match file.try_lock() {
            Ok(()) => {
                record_holder(file);
                Ok(Some(Held {
                    mode: Mode::Exclusive,
                    ..self
                }))
            }
            Err(TryLockError::WouldBlock) => Ok(None),
            Err(TryLockError::Error(source)) => Err(Error::Lock {
                name: self.name.clone(),
                source,
            }),
        }
    }
}

/// The name of a device's lock.
pub fn device_name(busid: &vusb_host::BusId) -> String {
    format!("dev-{busid}")
}

/// The name of a controller's lock.
pub fn controller_name(domid: DomId, devid: u32) -> String {
    format!("ctrl-{domid}-{devid}")
}

/// The name of a guest's lock.
pub fn guest_name(domid: DomId) -> String {
    format!("dom-{domid}")
}

/// Lock host device `busid` exclusively, waiting up to `wait`.
pub fn device(paths: &HostPaths, busid: &vusb_host::BusId, wait: Duration) -> Result<Held> {
    acquire(paths, &device_name(busid), Mode::Exclusive, wait)
}

/// Lock controller `devid` of `domid` in `mode`, waiting up to `wait`.
pub fn controller(
    paths: &HostPaths,
    domid: DomId,
    devid: u32,
    mode: Mode,
    wait: Duration,
) -> Result<Held> {
    acquire(paths, &controller_name(domid, devid), mode, wait)
}

/// Lock guest `domid` (controller creation), waiting up to `wait`.
pub fn guest(paths: &HostPaths, domid: DomId, wait: Duration) -> Result<Held> {
    acquire(paths, &guest_name(domid), Mode::Exclusive, wait)
}

/// Try once, without waiting: `Ok(None)` when somebody else holds it.
pub fn try_acquire(paths: &HostPaths, name: &str, mode: Mode) -> Result<Option<Held>> {
    if paths.dry_run.is_some() {
        return planned(name, mode).map(Some);
    }
    let file = open(paths, name)?;
    match try_lock(&file, mode) {
        Ok(()) => {
            record_holder(&file);
            Ok(Some(Held {
                file: Some(file),
                name: name.to_owned(),
                mode,
            }))
        }
        Err(TryLockError::WouldBlock) => Ok(None),
        Err(TryLockError::Error(source)) => Err(Error::Lock {
            name: name.to_owned(),
            source,
        }),
    }
}

/// Lock `name` in `mode`, polling until `wait` has passed; then
/// [`Error::Busy`] with the recorded holder.
pub fn acquire(paths: &HostPaths, name: &str, mode: Mode, wait: Duration) -> Result<Held> {
    if paths.dry_run.is_some() {
        return planned(name, mode);
    }
    let file = open(paths, name)?;
    let start = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        match try_lock(&file, mode) {
            Ok(()) => {
                record_holder(&file);
                if start.elapsed() > Duration::from_millis(50) {
                    log::debug!("waited {:?} for lock {name}", start.elapsed());
                }
                return Ok(Held {
                    file: Some(file),
                    name: name.to_owned(),
                    mode,
                });
            }
            Err(TryLockError::WouldBlock) => {}
            Err(TryLockError::Error(source)) => {
                return Err(Error::Lock {
                    name: name.to_owned(),
                    source,
                });
            }
        }
        if start.elapsed() >= wait {
            return Err(Error::Busy {
                what: describe(name),
                holder: holder(&file),
                secs: wait.as_secs_f64(),
            });
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// The holder recorded in lock `name` (for messages), if any.
pub fn recorded_holder(paths: &HostPaths, name: &str) -> String {
    match open(paths, name) {
        Ok(f) => holder(&f),
        Err(_) => "unknown".to_owned(),
    }
}

/// A dry run takes no lock and creates no lock file: it changes nothing
/// another command could trip over (the name is still checked). What it
/// plans may therefore differ from what a later real run, after other
/// commands ran, does.
fn planned(name: &str, mode: Mode) -> Result<Held> {
    check_name(name)?;
    Ok(Held {
        file: None,
        name: name.to_owned(),
        mode,
    })
}

fn check_name(name: &str) -> Result<()> {
    if name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | ':' | '_'))
    {
        return Ok(());
    }
    Err(Error::Lock {
        name: name.to_owned(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a lock name"),
    })
}

fn try_lock(file: &File, mode: Mode) -> std::result::Result<(), TryLockError> {
    match mode {
        Mode::Shared => file.try_lock_shared(),
        Mode::Exclusive => file.try_lock(),
    }
}

fn path_of(paths: &HostPaths, name: &str) -> PathBuf {
    paths.lock_dir().join(name)
}

fn open(paths: &HostPaths, name: &str) -> Result<File> {
    let dir = paths.lock_dir();
    let lock_err = |source| Error::Lock {
        name: name.to_owned(),
        source,
    };
    check_name(name)?;
    create_dir(&dir).map_err(lock_err)?;
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(path_of(paths, name))
        .map_err(lock_err)
}

fn create_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    match std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
    {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Write "pid command line" into the lock file (best effort: the lock is
/// what counts, the text only serves messages).
fn record_holder(mut file: &File) {
    let cmd: Vec<String> = std::env::args().collect();
    let text = format!("pid {} ({})\n", std::process::id(), cmd.join(" "));
    let res = file
        .set_len(0)
        .and_then(|()| file.seek(SeekFrom::Start(0)))
        .and_then(|_| file.write_all(text.as_bytes()));
    if let Err(e) = res {
        log::debug!("recording the lock holder: {e}");
    }
}

fn holder(mut file: &File) -> String {
    let mut text = String::new();
    let _ = file.seek(SeekFrom::Start(0));
    let _ = file.take(512).read_to_string(&mut text);
    let text = text.trim();
    if text.is_empty() {
        "an unknown process".to_owned()
    } else {
        text.to_owned()
    }
}

fn describe(name: &str) -> String {
    if let Some(b) = name.strip_prefix("dev-") {
        format!("host USB device {b}")
    } else if let Some(rest) = name.strip_prefix("ctrl-") {
        match rest.split_once('-') {
            Some((d, c)) => format!("controller {c} of domain {d}"),
            None => name.to_owned(),
        }
    } else if let Some(d) = name.strip_prefix("dom-") {
        format!("controller creation in domain {d}")
    } else {
        name.to_owned()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_dry_run_takes_no_lock_and_creates_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let real = HostPaths::under(dir.path());
        let dry = HostPaths {
            dry_run: Some(crate::dryrun::Plan::new()),
            ..real.clone()
        };
        let held = acquire(&real, "dev-1-1", Mode::Exclusive, Duration::ZERO).unwrap();
        // Held for real elsewhere: the dry run does not wait for it.
        let busid = vusb_host::BusId::parse("1-1").unwrap();
        let planned = device(&dry, &busid, Duration::ZERO).unwrap();
        assert_eq!(
            planned.try_upgrade().unwrap().unwrap().mode(),
            Mode::Exclusive
        );
        drop(held);
        guest(&dry, 7, Duration::ZERO).unwrap();
        assert!(!real.lock_dir().join("dom-7").exists());
        assert!(try_acquire(&dry, "bad/name", Mode::Shared).is_err());
    }

    #[test]
    fn exclusive_excludes_and_times_out_naming_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let paths = HostPaths::under(dir.path());
        let b = vusb_host::BusId::parse("1-1").unwrap();
        let a = device(&paths, &b, Duration::from_millis(10)).unwrap();
        let e = device(&paths, &b, Duration::from_millis(30)).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("host USB device 1-1"), "{msg}");
        assert!(
            msg.contains(&format!("pid {}", std::process::id())),
            "{msg}"
        );
        drop(a);
        device(&paths, &b, Duration::from_millis(10)).unwrap();
    }

    #[test]
    fn shared_holders_block_removal_and_upgrade() {
        let dir = tempfile::tempdir().unwrap();
        let paths = HostPaths::under(dir.path());
        let w = Duration::from_millis(10);
        let s1 = controller(&paths, 1, 0, Mode::Shared, w).unwrap();
        let s2 = controller(&paths, 1, 0, Mode::Shared, w).unwrap();
        assert!(controller(&paths, 1, 0, Mode::Exclusive, w).is_err());
        // Another holder: no upgrade (and s1 is gone).
        assert!(s1.try_upgrade().unwrap().is_none());
        let x = s2.try_upgrade().unwrap().unwrap();
        assert_eq!(x.mode(), Mode::Exclusive);
        assert!(
            try_acquire(&paths, &controller_name(1, 0), Mode::Shared)
                .unwrap()
                .is_none()
        );
        drop(x);
        assert!(
            try_acquire(&paths, &controller_name(1, 0), Mode::Shared)
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn names_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let paths = HostPaths::under(dir.path());
        assert!(acquire(&paths, "dev-../x", Mode::Exclusive, Duration::ZERO).is_err());
        assert!(acquire(&paths, "dev-a/b", Mode::Exclusive, Duration::ZERO).is_err());
    }
}
