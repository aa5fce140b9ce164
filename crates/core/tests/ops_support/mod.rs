//! Shared helpers of the core operation tests: loading a `xenstore-ls -fp`
//! dump into a store, dumping a store the same way, a simulated host on the
//! in-memory store (golden initial layout, fixture sysfs, bind emulation,
//! simulated usbback/usbfront), and a dispatcher that runs an xl command
//! line through the core operations.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use vusb_core::HostPaths;
use vusb_core::domain;
use vusb_core::ops::OpEnv;
use vusb_core::ops::usb_list::{format_xl, usb_list};
use vusb_core::ops::usbctrl_attach::usbctrl_attach;
use vusb_core::ops::usbctrl_detach::usbctrl_detach;
use vusb_core::ops::usbdev_attach::usbdev_attach;
use vusb_core::ops::usbdev_detach::{DetachTarget, usbdev_detach};
use vusb_sim::bindemu::BindEmulation;
use vusb_sim::xenbus::{DriverConfig, Drivers};
use vusb_xenstore::mem::{MemConn, MemStore};
use vusb_xenstore::{Perm, TxId, Xenstore, XenstoreExt, XenstoreWatch};

/// The xl 4.17 goldens, kept in the repository (`crates/testsupport/xl-peer/golden`).
pub const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../testsupport/xl-peer/golden");

/// Parse one `xenstore-ls -fp` line: `PATH = "VALUE"   (PERMS)`.
pub fn parse_line(line: &str) -> Option<(String, String, Vec<Perm>)> {
    let (path, rest) = line.split_once(" = \"")?;
    let (value, perms) = rest.rsplit_once("\"   (")?;
    let perms = perms.strip_suffix(')')?;
    let perms = perms
        .split(',')
        .map(|p| p.parse::<Perm>().ok())
        .collect::<Option<Vec<_>>>()?;
    Some((path.to_owned(), unescape(value), perms))
}

fn unescape(v: &str) -> String {
    v.replace("\\\"", "\"").replace("\\\\", "\\")
}

/// Load a dump into the store (dom0 connection).
pub fn load<X: Xenstore + ?Sized>(xs: &X, dump: &str) {
    for line in dump.lines().filter(|l| !l.trim().is_empty()) {
        let (path, value, perms) = parse_line(line).unwrap_or_else(|| panic!("bad line {line:?}"));
        xs.write(TxId::NONE, &path, value.as_bytes()).unwrap();
        xs.set_perms(TxId::NONE, &path, &perms).unwrap();
    }
}

/// Dump the store like `xenstore-ls -fp`, depth first in directory order.
pub fn dump<X: Xenstore + ?Sized>(xs: &X) -> String {
    let mut out = String::new();
    walk(xs, "", &mut out);
    out
}

fn walk<X: Xenstore + ?Sized>(xs: &X, path: &str, out: &mut String) {
    let dir = if path.is_empty() { "/" } else { path };
    for child in xs.directory_opt(TxId::NONE, dir).unwrap() {
        let p = format!("{path}/{child}");
        let v = xs.read(TxId::NONE, &p).unwrap_or_default();
        let perms = xs.get_perms(TxId::NONE, &p).unwrap_or_default();
        let perms: Vec<String> = perms.iter().map(|p| p.to_string()).collect();
        out.push_str(&format!(
            "{p} = \"{}\"   ({})\n",
            String::from_utf8_lossy(&v),
            perms.join(",")
        ));
        walk(xs, &p, out);
    }
}

/// Lines of a dump outside `/vusb` and the `skip` prefixes, sorted.
pub fn normalized(dump: &str, skip: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = dump
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with("/vusb"))
        .filter(|l| !skip.iter().any(|p| l.starts_with(p)))
        .map(str::to_owned)
        .collect();
    v.sort();
    v
}

/// Differences between two normalized dumps, for assertion messages.
pub fn diff(want: &[String], got: &[String]) -> String {
    let mut s = String::new();
    for l in want.iter().filter(|l| !got.contains(l)) {
        s.push_str(&format!("- {l}\n"));
    }
    for l in got.iter().filter(|l| !want.contains(l)) {
        s.push_str(&format!("+ {l}\n"));
    }
    s
}

/// A simulated host on the in-memory store.
pub struct SimHost {
    pub store: MemStore,
    pub conn: MemConn,
    pub paths: HostPaths,
    pub dir: tempfile::TempDir,
    drivers: Option<Drivers>,
    _bind: Option<BindEmulation>,
}

impl SimHost {
    /// The golden scenario's initial store, the 4-device fixture (without
    /// usbback when `usbback` is false), bind emulation, drivers.
    pub fn from_golden(scenario: &str, usbback: bool, drivers: DriverConfig) -> SimHost {
        let store = MemStore::new();
        let conn = store.connect(0);
        let initial =
            std::fs::read_to_string(format!("{GOLDEN}/{scenario}/00-initial-store.txt")).unwrap();
        load(&conn, &initial);
        SimHost::with_store(store, conn, usbback, drivers)
    }

    pub fn with_store(
        store: MemStore,
        conn: MemConn,
        usbback: bool,
        drivers: DriverConfig,
    ) -> SimHost {
        let dir = tempfile::tempdir().unwrap();
        let paths = HostPaths::under(dir.path());
        vusb_sim::fixture::write_fixture(&paths.sysfs_root, 4).unwrap();
        if !usbback {
            std::fs::remove_dir_all(paths.sysfs_root.join("bus/usb/drivers/usbback")).unwrap();
        }
        std::fs::create_dir_all(paths.proc_root.join("self")).unwrap();
        std::fs::write(paths.proc_root.join("self/mountinfo"), "").unwrap();
        std::fs::write(
            paths.proc_root.join("swaps"),
            "Filename\tType\tSize\tUsed\tPriority\n",
        )
        .unwrap();
        std::fs::create_dir_all(&paths.xen_lib_dir).unwrap();
        let bind = BindEmulation::spawn(&paths.sysfs_root, &dir.path().join("sysfs.log")).unwrap();
        let drv = Drivers::spawn(store.connect(0), drivers).unwrap();
        SimHost {
            store,
            conn,
            paths,
            dir,
            drivers: Some(drv),
            _bind: Some(bind),
        }
    }

    pub fn env(&self) -> OpEnv<'_, MemConn> {
        let mut env = OpEnv::new(&self.conn, &self.paths);
        env.timeouts.backend_connect = Duration::from_secs(3);
        env.timeouts.backend_close = Duration::from_secs(3);
        env
    }

    /// Let the simulated drivers and the bind emulation finish.
    pub fn settle(&self) {
        std::thread::sleep(Duration::from_millis(250));
    }

    pub fn sysfs_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sysfs.log")).unwrap_or_default()
    }

    /// `interface -> driver` for every interface of the fixture.
    pub fn bindings(&self) -> Vec<String> {
        let devs = self.paths.sysfs_root.join("bus/usb/devices");
        let mut out = Vec::new();
        for e in std::fs::read_dir(&devs).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !name.contains(':') {
                continue;
            }
            let drv = std::fs::read_link(devs.join(&name).join("driver"))
                .ok()
                .and_then(|t| t.file_name().map(|n| n.to_string_lossy().into_owned()))
                .unwrap_or_else(|| "-".into());
            out.push(format!("{name} -> {drv}"));
        }
        out.sort();
        out
    }

    pub fn json_path(&self, domid: u32) -> PathBuf {
        self.paths.xen_lib_dir.join(format!(
            "userdata-d.{domid}.{}.libxl-json",
            vusb_sim::layout::uuid_of(domid)
        ))
    }

    pub fn stop_drivers(&mut self) {
        if let Some(d) = self.drivers.take() {
            d.stop();
        }
    }
}

impl Drop for SimHost {
    fn drop(&mut self) {
        self.stop_drivers();
        // Stops the bind emulation (its Drop wakes and joins its readers).
        drop(self._bind.take());
    }
}

/// Run an `xl ...` command line through the core operations: (rc, stdout).
pub fn run_xl<X: Xenstore + XenstoreWatch + ?Sized>(
    env: &OpEnv<'_, X>,
    cmd: &str,
) -> (i32, String) {
    let words: Vec<String> = cmd.split_whitespace().skip(1).map(str::to_owned).collect();
    let (name, args) = words.split_first().unwrap();
    let dom = match domain::resolve(env.xs, &args[0]) {
        Ok(d) => d,
        Err(_) => return (1, String::new()),
    };
    let rest = &args[1..];
    let atoi = |s: &str| -> i32 {
        let d: String = s
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '-')
            .collect();
        d.parse().unwrap_or(0)
    };
    let res: Result<String, vusb_core::Error> = match name.as_str() {
        "usb-list" => usb_list(env, &dom).map(|l| format_xl(&l)),
        "usbctrl-attach" => {
            let spec = vusb_xlcfg::parse_usbctrl_args(rest).unwrap();
            usbctrl_attach(env, &dom, &spec).map(|_| String::new())
        }
        "usbctrl-detach" => {
            usbctrl_detach(env, &dom, i64::from(atoi(&rest[0])), &rest[0]).map(|_| String::new())
        }
        "usbdev-attach" => {
            let spec = vusb_xlcfg::parse_usbdev_args(rest).unwrap();
            usbdev_attach(env, &dom, &spec).map(|_| String::new())
        }
        "usbdev-detach" => {
            let t = if rest.len() == 1 {
                DetachTarget::Host(vusb_xlcfg::parse_usbdev_args(rest).unwrap())
            } else {
                DetachTarget::Port {
                    ctrl: atoi(&rest[0]),
                    port: atoi(&rest[1]),
                }
            };
            usbdev_detach(env, &dom, &t).map(|_| String::new())
        }
        other => panic!("unknown command {other}"),
    };
    match res {
        Ok(out) => (0, out),
        Err(e) => {
            eprintln!("{cmd}: {e}");
            (1, String::new())
        }
    }
}

/// Golden step directories of a scenario, in order.
pub fn steps(scenario: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(Path::new(GOLDEN).join(scenario))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    v.sort();
    v
}
