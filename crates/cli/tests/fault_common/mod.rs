//! Shared bed of the fault-injection and concurrency suites: a fake host
//! with the **real C xenstored** (testsupport harness), the simulated
//! usbback/usbfront on their own connection, fake QMP device models for
//! HVM guests, and the fixture sysfs served by the **FUSE sysfs** (atomic,
//! kernel-like bind/unbind); the built `vusb` binary runs against it, under
//! `strace` when a kill point is injected.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod procs;
pub mod proxy;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use vusb_sim::layout::{DomainKind, GuestSpec};
use vusb_testsupport::fakehost::{FakeHost, FakeHostConfig, require_or_skip};
use vusb_testsupport::fusesys::{self, FuseSys};
use vusb_testsupport::invariants::{self, Host, Violation};

/// The vusb binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_vusb");

/// The syscalls that are step boundaries: every xenstore request
/// (`sendto` on the socket), every sysfs write and file write (`write`,
/// `pwrite64`, `writev`), every rename/unlink of a state file.
pub const BOUNDARIES: &str =
    "sendto,sendmsg,write,pwrite64,writev,rename,renameat,renameat2,unlink,unlinkat";

/// A fake host with a FUSE sysfs and the invariants' view of it.
pub struct Bed {
    pub host: FakeHost,
    pub fs: FuseSys,
    pub inv: Host,
}

/// Guests 1 (pv), 2 (pv with QEMU: qusb), 3 (hvm: devicemodel).
pub fn three_guests() -> FakeHostConfig {
    FakeHostConfig {
        domains: vec![
            GuestSpec::new(1, DomainKind::Pv),
            GuestSpec::new(2, DomainKind::PvQemu),
            GuestSpec::new(3, DomainKind::Hvm),
        ],
        usb_devices: 6,
        ..FakeHostConfig::default()
    }
}

/// Whether strace can run here (under `CI=true` it must).
pub fn strace_available() -> bool {
    let ok = Command::new("strace")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "strace is required under CI (scripts/install-deps)"
        );
        eprintln!("SKIP: strace is not installed");
    }
    ok
}

impl Bed {
    /// Start a bed, or `None` (skip) when FUSE or the harness is missing
    /// outside CI.
    pub fn start(config: &FakeHostConfig) -> Option<Bed> {
        if !fusesys::available() {
            return None;
        }
        let host = require_or_skip("real xenstored fake host", FakeHost::start(config))?;
        let fs = FuseSys::mount(&host.root().join("sys")).unwrap();
        let p = host.paths();
        let inv = Host::clean(&fs.root(), &p.state_dir, &p.xen_lib_dir);
        Some(Bed { host, fs, inv })
    }

    /// `vusb` with every host location on this bed (no LD_PRELOAD shim:
    /// sysfs is the FUSE mount).
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        self.env(&mut c);
        c.args(args);
        c
    }

    fn env(&self, c: &mut Command) {
        self.host.vusb_env(c);
        c.env("VUSB_SYSFS_ROOT", self.fs.root());
        c.stdin(Stdio::null());
    }

    /// Run `vusb args`.
    pub fn vusb(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Run `vusb args`, which must succeed.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.vusb(args);
        assert!(
            o.status.success(),
            "vusb {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// `vusb args` under `strace -f`, tracing the syscalls `trace` into
    /// `log`, with an optional `-e inject=` spec (e.g.
    /// `write:signal=KILL:when=3`), talking to xenstored through `socket`
    /// (a proxy) when given.
    pub fn traced(
        &self,
        args: &[&str],
        log: &Path,
        trace: &str,
        inject: Option<&str>,
        socket: Option<&Path>,
    ) -> Output {
        let mut c = Command::new("strace");
        c.args(["-f", "-qq", "-e", &format!("trace={trace}"), "-o"])
            .arg(log);
        if let Some(spec) = inject {
            c.arg("-e").arg(format!("inject={spec}"));
        }
        c.arg(BIN).args(args);
        self.env(&mut c);
        if let Some(sock) = socket {
            c.env("XENSTORED_PATH", sock);
        }
        c.output().unwrap()
    }

    /// Every invariant, with `usb-list --json` of this vusb.
    pub fn check(&self) -> Vec<Violation> {
        self.host.settle();
        let xs = self.host.client().unwrap();
        let list = |domid: u32| -> Result<String, String> {
            let o = self.vusb(&["usb-list", "--json", &domid.to_string()]);
            if o.status.success() {
                Ok(String::from_utf8_lossy(&o.stdout).into_owned())
            } else {
                Err(String::from_utf8_lossy(&o.stderr).into_owned())
            }
        };
        invariants::check(&xs, &self.inv, Some(&list))
    }

    /// The host's root (for logs).
    pub fn root(&self) -> PathBuf {
        self.host.root().to_owned()
    }
}

/// The syscalls of a strace log in order: (syscall, its 1-based
/// invocation number among calls of the same name, the line).
pub fn syscalls(log: &Path) -> Vec<(String, usize, String)> {
    let text = std::fs::read_to_string(log).unwrap();
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    let mut out = Vec::new();
    for line in text.lines() {
        // "PID name(args..." or "PID <... name resumed>": count entries only.
        let rest = line.split_once(' ').map_or(line, |(_, r)| r).trim_start();
        if rest.starts_with("<...") || rest.starts_with("+++") || rest.starts_with("---") {
            continue;
        }
        let Some((name, _)) = rest.split_once('(') else {
            continue;
        };
        let n = counts.entry(name.to_owned()).or_default();
        *n += 1;
        out.push((name.to_owned(), *n, line.to_owned()));
    }
    out
}

/// Print violations one per line (for failure messages and soak logs).
pub fn show(v: &[Violation]) -> String {
    v.iter().map(|v| format!("  {v}\n")).collect()
}

/// How many `XS_TRANSACTION_END` requests (message type 7) a strace log
/// tracing `sendto` shows.
pub fn transaction_ends(log: &Path) -> usize {
    syscalls(log)
        .iter()
        .filter(|(name, _, line)| {
            let payload = line.split_once(", \"").map_or("", |(_, p)| p);
            name == "sendto" && payload.starts_with("\\7\\0\\0\\0")
        })
        .count()
}

/// Stops beds beside the next trial (stopping xenstored takes about a
/// second) and waits for every one of them when dropped, so no daemon
/// outlives the test.
#[derive(Default)]
pub struct Reaper(Vec<std::thread::JoinHandle<()>>);

impl Reaper {
    /// Stop `bed` in the background.
    pub fn later(&mut self, bed: Bed) {
        self.0.push(std::thread::spawn(move || drop(bed)));
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        for h in self.0.drain(..) {
            let _ = h.join();
        }
    }
}
