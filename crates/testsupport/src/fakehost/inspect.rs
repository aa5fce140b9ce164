//! Looking at a fake host: its store, sysfs bindings, libxl JSON, QMP
//! log, the drivers' activity; and unplugging a device.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use vusb_sim::xenbus::Drivers;

use super::{FakeHost, other};

impl FakeHost {
    /// `xenstore-ls -fp` of the whole store, without the lines of `/vusb`
    /// (vusb's own state).
    pub fn dump(&self) -> io::Result<String> {
        let out = Command::new("xenstore-ls")
            .arg("-fp")
            .env("XENSTORED_PATH", &self.socket)
            .env_remove("LD_PRELOAD")
            .output()?;
        if !out.status.success() {
            return Err(other(format!(
                "xenstore-ls: {}",
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !(l.starts_with("/vusb ") || l.starts_with("/vusb/")))
            .map(|l| format!("{l}\n"))
            .collect())
    }

    /// Wait until the simulated drivers have been quiet for 150 ms and, on
    /// hosts with few domains (≤ 16; the scale runs skip it), no backend
    /// is left in a state the drivers still have to move (1 with
    /// `online` = 1, 2 while a frontend is simulated, 5), at most 3 s; so
    /// dumps include the drivers' reactions even on a loaded machine.
    pub fn settle(&self) {
        let Some(d) = &self.drivers else { return };
        let deadline = Instant::now() + Duration::from_secs(3);
        let mut last = d.log().len();
        let mut since = Instant::now();
        let check_store = self.domains <= 16 && self.failure.is_none();
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
            let n = d.log().len();
            if n != last {
                last = n;
                since = Instant::now();
            } else if since.elapsed() >= Duration::from_millis(150)
                && !(check_store && self.backend_in_transition())
            {
                break;
            }
        }
    }

    /// True when some backend waits for the simulated drivers.
    fn backend_in_transition(&self) -> bool {
        use vusb_xenstore::{TxId, XenstoreExt};
        let Ok(xs) = self.client() else { return false };
        for root in vusb_sim::xenbus::BACKEND_ROOTS {
            for dom in xs.directory_opt(TxId::NONE, root).unwrap_or_default() {
                let dir = format!("{root}/{dom}");
                for dev in xs.directory_opt(TxId::NONE, &dir).unwrap_or_default() {
                    let be = format!("{dir}/{dev}");
                    let read =
                        |k: &str| xs.read_opt(TxId::NONE, &format!("{be}/{k}")).ok().flatten();
                    let moving = match read("state").as_deref() {
                        Some("1") => read("online").as_deref() == Some("1"),
                        Some("2") => self.frontend,
                        Some("5") => true,
                        _ => false,
                    };
                    if moving {
                        return true;
                    }
                }
            }
        }
        false
    }

    /// What the simulated drivers did so far.
    pub fn drivers_log(&self) -> Vec<String> {
        self.drivers.as_ref().map(Drivers::log).unwrap_or_default()
    }

    /// Every interface or device bound to a driver: `"<name> <driver>"`,
    /// sorted.
    pub fn sysfs_bindings(&self) -> io::Result<Vec<String>> {
        let devs = self.root().join("sys/bus/usb/devices");
        let mut out = Vec::new();
        for e in fs::read_dir(devs)? {
            let e = e?;
            if let Ok(t) = fs::read_link(e.path().join("driver")) {
                let drv = t
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                out.push(format!("{} {drv}", e.file_name().to_string_lossy()));
            }
        }
        out.sort();
        Ok(out)
    }

    /// The libxl JSON files (`var/lib/xen/*.libxl-json`) with this host's
    /// root replaced by `ROOT`, so two hosts compare equal.
    pub fn json_files(&self) -> io::Result<BTreeMap<String, String>> {
        let root = self.root().to_string_lossy().into_owned();
        let mut out = BTreeMap::new();
        for e in fs::read_dir(self.root().join("var/lib/xen"))? {
            let e = e?;
            let name = e.file_name().to_string_lossy().into_owned();
            if name.ends_with(".libxl-json") {
                let text = String::from_utf8_lossy(&fs::read(e.path())?).replace(&root, "ROOT");
                out.insert(name, text);
            }
        }
        Ok(out)
    }

    /// The QMP commands received by the HVM guests' fake device models
    /// (`qmp-<domid>.log`, canonical JSON, one per line, prefixed with the
    /// domid).
    pub fn qmp_log(&self) -> String {
        let mut logs: Vec<(u32, PathBuf)> = fs::read_dir(self.root())
            .map(|d| {
                d.flatten()
                    .filter_map(|e| {
                        let name = e.file_name().to_string_lossy().into_owned();
                        let domid = name
                            .strip_prefix("qmp-")?
                            .strip_suffix(".log")?
                            .parse()
                            .ok()?;
                        Some((domid, e.path()))
                    })
                    .collect()
            })
            .unwrap_or_default();
        logs.sort();
        let mut out = String::new();
        for (domid, p) in logs {
            for l in fs::read_to_string(&p).unwrap_or_default().lines() {
                out.push_str(&format!("{domid} {l}\n"));
            }
        }
        out
    }

    /// Unplug a device: its sysfs directory, its interfaces' and every
    /// driver's links to them disappear, as when the kernel removes it.
    pub fn unplug(&self, busid: &str) -> io::Result<()> {
        let usb = self.root().join("sys/bus/usb");
        let mine = |name: &str| name == busid || name.starts_with(&format!("{busid}:"));
        for e in fs::read_dir(usb.join("drivers"))? {
            for l in fs::read_dir(e?.path())? {
                let l = l?;
                if mine(&l.file_name().to_string_lossy()) {
                    fs::remove_file(l.path())?;
                }
            }
        }
        for e in fs::read_dir(usb.join("devices"))? {
            let e = e?;
            if mine(&e.file_name().to_string_lossy()) {
                fs::remove_dir_all(e.path())?;
            }
        }
        Ok(())
    }

    /// The sysfs operations logged by the shim (`sysfs.log`).
    pub fn sysfs_log(&self) -> String {
        fs::read_to_string(self.root().join("sysfs.log")).unwrap_or_default()
    }
}
