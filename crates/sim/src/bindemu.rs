//! The kernel's part of sysfs driver binding, played on the simulated
//! host's plain-file sysfs tree.
//!
//! On a real host, writing an interface name to
//! `bus/usb/drivers/<D>/bind` attaches it to driver `D` before `write()`
//! returns (the `driver` link appears), and `unbind` detaches it. In the
//! simulated tree every `bind`/`unbind` file is replaced by a named pipe
//! (FIFO) read by one thread each; every `write()` received (one read
//! chunk, split at newlines) is applied, in batches of what arrived within
//! [`BATCH`] with unbinds first, as the kernel would: the links
//! `devices/<intf>/driver` and `drivers/<D>/<intf>` move. Every operation
//! is appended to the log in the xl-peer shim's format (`bind usbback
//! 1-2:1.0`, `unbind usbhid 1-2:1.0`, `... -> EBUSY (bound to usbhid)`).
//! Pipes keep every write and their order per file, which polling plain
//! files did not (a quick unbind/bind sequence lost writes).
//!
//! Differences from the kernel, deliberate for a simulation: the effect
//! follows the writer's `write()` by microseconds instead of happening
//! inside it, and a refused operation (unknown interface, already bound,
//! not bound) is logged but cannot fail the writer's `write()`. When the
//! emulation stops, the pipes become plain files again, so a later writer
//! never blocks on a pipe nobody reads.

use std::fs::{self, OpenOptions};
use std::io::{Read as _, Write as _};
use std::os::unix::fs::{OpenOptionsExt as _, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

use super::Error;

/// The running emulation; stops when dropped.
#[derive(Debug)]
pub struct BindEmulation {
    stop: Arc<AtomicBool>,
    fifos: Vec<PathBuf>,
    threads: Vec<JoinHandle<()>>,
}

struct Shared {
    usb: PathBuf,
    log: PathBuf,
}

/// One write received on a pipe.
struct Op {
    op: &'static str,
    driver: String,
    name: String,
}

/// How long the applier collects operations before applying them.
pub const BATCH: Duration = Duration::from_millis(2);

impl BindEmulation {
    /// Turn every `bind`/`unbind` file under `sysfs_root/bus/usb/drivers`
    /// into a pipe and start serving them, logging to `log`.
    pub fn spawn(sysfs_root: &Path, log: &Path) -> Result<BindEmulation, Error> {
        let usb = sysfs_root.join("bus/usb");
        let drivers = usb.join("drivers");
        let shared = Shared {
            usb,
            log: log.to_owned(),
        };
        let (tx, rx) = mpsc::channel::<Op>();
        let stop = Arc::new(AtomicBool::new(false));
        let mut emu = BindEmulation {
            stop: Arc::clone(&stop),
            fifos: Vec::new(),
            threads: Vec::new(),
        };
        let entries = fs::read_dir(&drivers).map_err(|source| Error::WriteFixture {
            path: drivers.clone(),
            source,
        })?;
        for entry in entries.flatten() {
            let driver = entry.file_name().to_string_lossy().into_owned();
            for op in ["bind", "unbind"] {
                let fifo = entry.path().join(op);
                make_fifo(&fifo)?;
                emu.fifos.push(fifo.clone());
                let (tx, stop, driver) = (tx.clone(), Arc::clone(&stop), driver.clone());
                let t = std::thread::Builder::new()
                    .name(format!("vusb-sim-{op}-{driver}"))
                    .spawn(move || serve(&fifo, &tx, &stop, &driver, op))
                    .map_err(Error::SpawnThread)?;
                emu.threads.push(t);
            }
        }
        drop(tx);
        let t = std::thread::Builder::new()
            .name("vusb-sim-sysfs".into())
            .spawn(move || apply_loop(&rx, &shared))
            .map_err(Error::SpawnThread)?;
        emu.threads.push(t);
        Ok(emu)
    }
}

fn make_fifo(path: &Path) -> Result<(), Error> {
    let err = |source| Error::WriteFixture {
        path: path.to_owned(),
        source,
    };
    if fs::symlink_metadata(path).is_ok() {
        fs::remove_file(path).map_err(err)?;
    }
    let out = Command::new("mkfifo")
        .arg("-m")
        .arg("0600")
        .arg(path)
        .output()
        .map_err(err)?;
    if !out.status.success() {
        return Err(err(std::io::Error::other(
            String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        )));
    }
    Ok(())
}

/// One pipe's reader: each chunk read is one or more (newline separated)
/// interface names written by one `write()`; they go to the applier.
///
/// The pipe is opened read-write, so it always has a reader *and* a writer:
/// a writer's `open()` never blocks, the reader never sees end-of-file,
/// and a writer can never hit a moment with no reader (which made its
/// `write()` fail with `EPIPE` when two writes followed each other closely
/// and the reader was between a close and the next open). [`Drop`] wakes
/// the reader with a blank line.
fn serve(fifo: &Path, tx: &Sender<Op>, stop: &AtomicBool, driver: &str, op: &'static str) {
    let mut buf = [0u8; 4096];
    let mut f = match OpenOptions::new().read(true).write(true).open(fifo) {
        Ok(f) => f,
        Err(e) => {
            log::warn!("sysfs emulation: opening {}: {e}", fifo.display());
            return;
        }
    };
    while !stop.load(Ordering::SeqCst) {
        let n = match f.read(&mut buf) {
            Ok(0) => continue,
            Ok(n) => n,
            Err(e) => {
                log::warn!("sysfs emulation: reading {}: {e}", fifo.display());
                return;
            }
        };
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        for name in text
            .split(['\n', '\0'])
            .map(str::trim)
            .filter(|n| !n.is_empty())
        {
            let sent = tx.send(Op {
                op,
                driver: driver.to_owned(),
                name: name.to_owned(),
            });
            if sent.is_err() {
                return;
            }
        }
    }
}

/// Applies operations in batches: everything that arrived within
/// [`BATCH`] of the first, unbinds before binds (a rebind writes `unbind`
/// to the old driver, then `bind` to the new one, to two different pipes
/// whose readers may wake in either order).
fn apply_loop(rx: &Receiver<Op>, shared: &Shared) {
    while let Ok(first) = rx.recv() {
        std::thread::sleep(BATCH);
        let mut batch = vec![first];
        batch.extend(rx.try_iter());
        batch.sort_by_key(|o| o.op == "bind");
        for o in batch {
            for name in split_names(&shared.usb, &o.name) {
                let line = apply(&shared.usb, &o.driver, o.op, &name);
                log::debug!("sim sysfs: {line}");
                append(&shared.log, &line);
            }
        }
    }
}

impl Drop for BindEmulation {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake every reader blocked in read() with a blank line; the pipe
        // always has its reader open, so this open never blocks.
        for fifo in &self.fifos {
            let woke = OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(fifo)
                .and_then(|mut f| f.write_all(b"\n"));
            if let Err(e) = woke {
                log::debug!("waking the reader of {}: {e}", fifo.display());
            }
        }
        // Never block here: a reader still stuck in open() after the
        // deadline (or the applier waiting on it) is left detached rather
        // than joined, so dropping the emulation always returns.
        let applier_deadline = std::time::Instant::now() + Duration::from_millis(500);
        for t in self.threads.drain(..) {
            while !t.is_finished() && std::time::Instant::now() < applier_deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            if !t.is_finished() {
                log::warn!("sysfs bind emulation thread did not stop; leaving it detached");
                continue;
            }
            if t.join().is_err() {
                log::warn!("sysfs bind emulation thread panicked");
            }
        }
        for fifo in &self.fifos {
            if fs::remove_file(fifo)
                .and_then(|()| fs::write(fifo, ""))
                .is_err()
            {
                log::warn!("restoring {} as a plain file failed", fifo.display());
            }
        }
    }
}

/// Writes that reached a pipe while its reader still had it open arrive
/// as one chunk without separator (`1-2:1.21-2:1.1`): split such a chunk
/// into names of existing devices and interfaces when that is possible,
/// else keep it whole (it is then reported as unknown, `ENODEV`).
fn split_names(usb: &Path, chunk: &str) -> Vec<String> {
    let names: Vec<String> = fs::read_dir(usb.join("devices"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    if names.iter().any(|n| n == chunk) {
        return vec![chunk.to_owned()];
    }
    // split[i]: a split of chunk[i..] into existing names, if any.
    let n = chunk.len();
    let mut split: Vec<Option<Vec<String>>> = vec![None; n + 1];
    split[n] = Some(Vec::new());
    for i in (0..n).rev() {
        for name in &names {
            if chunk[i..].starts_with(name.as_str())
                && let Some(rest) = &split[i + name.len()]
            {
                let mut v = vec![name.clone()];
                v.extend(rest.iter().cloned());
                split[i] = Some(v);
                break;
            }
        }
    }
    split[0].take().unwrap_or_else(|| vec![chunk.to_owned()])
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
    use std::time::{Duration, Instant};

    fn wait_for(what: impl Fn() -> bool) -> bool {
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(5) {
            if what() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        false
    }

    #[test]
    fn bind_and_unbind_move_links_in_order() {
        let dir = tempfile::tempdir().unwrap();
        crate::fixture::write_fixture(dir.path(), 2).unwrap();
        let usb = dir.path().join("bus/usb");
        let log = dir.path().join("sysfs.log");
        let emu = BindEmulation::spawn(dir.path(), &log).unwrap();
        // A quick sequence like a rebind of three interfaces.
        for i in [2, 1, 0] {
            fs::write(usb.join("drivers/usbhid/unbind"), format!("1-2:1.{i}")).unwrap();
            fs::write(usb.join("drivers/usbback/bind"), format!("1-2:1.{i}")).unwrap();
        }
        let bound = |i: u32, d: &str| {
            fs::read_link(usb.join(format!("devices/1-2:1.{i}/driver")))
                .is_ok_and(|l| l.as_os_str() == format!("../../drivers/{d}").as_str())
        };
        let ok = wait_for(|| (0..3).all(|i| bound(i, "usbback")));
        assert!(ok, "{}", fs::read_to_string(&log).unwrap_or_default());
        assert!(!usb.join("drivers/usbhid/1-2:1.0").exists());
        fs::write(usb.join("drivers/usbback/bind"), "1-2:1.0").unwrap();
        fs::write(usb.join("drivers/usbhid/unbind"), "1-9:1.0").unwrap();
        assert!(wait_for(|| fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .count()
            == 8));
        drop(emu);
        let text = fs::read_to_string(&log).unwrap();
        for i in 0..3 {
            let unbind = text.find(&format!("unbind usbhid 1-2:1.{i}\n"));
            let bind = text.find(&format!("\nbind usbback 1-2:1.{i}\n"));
            assert!(
                unbind.is_some() && bind.is_some() && unbind < bind,
                "{text}"
            );
        }
        assert!(
            text.contains("bind usbback 1-2:1.0 -> EBUSY (bound to usbback)"),
            "{text}"
        );
        assert!(text.contains("unbind usbhid 1-9:1.0 -> ENODEV"), "{text}");
        // Plain files again: a write no longer blocks.
        fs::write(usb.join("drivers/usbback/bind"), "x").unwrap();
    }
}
