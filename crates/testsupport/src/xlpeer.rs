//! The real Xen 4.17 `xl` as a reference peer: run the same command with
//! `xl` on one [`FakeHost`] and with vusb on an identical one, and compare
//! what each left behind — the xenstore tree (without `/vusb`), stdout,
//! exit status, sysfs driver bindings, and (reported, not required to
//! match: libxl leaves stale entries on detach) libxl's JSON.
//!
//! `xl` runs unmodified under an `LD_PRELOAD` shim (`xl-peer/xlshim.c`,
//! compiled with gcc on first use) that fakes the few libxenctrl calls the
//! USB paths reach, redirects `/sys/bus/usb`, `/var/lib/xen` and
//! `/var/run/xen` into the fake host, and gives the fixture's
//! `bind`/`unbind` files the kernel's semantics.
//!
//! [`PV_SCENARIO`] and [`QUSB_SCENARIO`] are the step sequences recorded
//! in the xl-peer goldens (in order, each on a fresh host pair);
//! [`EXTRA_SCENARIO`] adds steps of our own.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::fakehost::{FakeHost, XEN_BIN};

pub mod fake_qmp;

const SHIM_SRC: &str = include_str!("../xl-peer/xlshim.c");

/// True when the real `xl` is installed.
pub fn xl_available() -> bool {
    Path::new(XEN_BIN).join("xl").exists()
}

/// The shim, compiled once per source version into
/// `$TMPDIR/vusb-xlshim-<uid>/xlshim-<hash>.so`.
pub fn shim_so() -> io::Result<PathBuf> {
    static SO: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    SO.get_or_init(|| build_shim().map_err(|e| e.to_string()))
        .clone()
        .map_err(io::Error::other)
}

fn build_shim() -> io::Result<PathBuf> {
    let hash = SHIM_SRC.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    });
    let uid = fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
        .unwrap_or(0);
    let dir = std::env::temp_dir().join(format!("vusb-xlshim-{uid}"));
    fs::create_dir_all(&dir)?;
    let so = dir.join(format!("xlshim-{hash:016x}.so"));
    if so.exists() {
        return Ok(so);
    }
    let src = dir.join(format!("xlshim-{hash:016x}.c"));
    fs::write(&src, SHIM_SRC)?;
    let tmp = dir.join(format!("xlshim-{hash:016x}.{}.tmp", std::process::id()));
    let out = Command::new(std::env::var("CC").unwrap_or_else(|_| "gcc".into()))
        .args([
            "-O2",
            "-Wall",
            "-Wno-format-truncation",
            "-Wno-nonnull-compare",
        ])
        .args(["-shared", "-fPIC", "-fvisibility=hidden", "-o"])
        .arg(&tmp)
        .arg(&src)
        .arg("-ldl")
        .env_remove("LD_PRELOAD")
        .output()?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "compiling the xl shim: {}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    fs::rename(&tmp, &so)?;
    Ok(so)
}

/// How one command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Its stdout.
    pub stdout: String,
    /// Its stderr.
    pub stderr: String,
    /// Exit status, or minus the signal number (`-11` for a segfault).
    pub rc: i32,
    /// Wall time from spawn to exit.
    pub wall: Duration,
    /// Xenstore requests of its own connections (only on a traced host).
    pub requests: Option<usize>,
}

/// Run `cmd` to completion; on a traced `host`, count its requests.
pub fn run(host: &FakeHost, mut cmd: Command) -> io::Result<Outcome> {
    let trace = host.trace_path();
    let offset = fs::metadata(&trace).map(|m| m.len()).ok();
    let t0 = Instant::now();
    let out = cmd.output()?;
    let wall = t0.elapsed();
    let rc = match (
        out.status.code(),
        std::os::unix::process::ExitStatusExt::signal(&out.status),
    ) {
        (Some(c), _) => c,
        (None, Some(s)) => -s,
        (None, None) => -1,
    };
    let requests = match offset {
        Some(off) => Some(count_requests(&read_from(&trace, off)?).0),
        None => None,
    };
    Ok(Outcome {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        rc,
        wall,
        requests,
    })
}

fn read_from(path: &Path, off: u64) -> io::Result<String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = fs::File::open(path)?;
    f.seek(SeekFrom::Start(off))?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf)?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// In a segment of xenstored's `-T` trace: the requests (`IN` lines) of
/// the connections created inside the segment, and the requests by type.
pub fn count_requests(segment: &str) -> (usize, BTreeMap<String, usize>) {
    let mut new = std::collections::HashSet::new();
    let mut n = 0;
    let mut by = BTreeMap::new();
    for line in segment.lines() {
        if let Some(rest) = line.strip_prefix("CREATE connection ") {
            if let Some(id) = rest.split_whitespace().next() {
                new.insert(id.to_owned());
            }
            continue;
        }
        let mut f = line.split_whitespace();
        if f.next() != Some("IN") {
            continue;
        }
        let Some(conn) = f.next() else { continue };
        if !new.contains(conn) {
            continue;
        }
        let ty = f.nth(2).unwrap_or("?").to_owned();
        n += 1;
        *by.entry(ty).or_insert(0) += 1;
    }
    (n, by)
}

/// Everything compared after one step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    /// How the command ended.
    pub outcome: Outcome,
    /// `xenstore-ls -fp` without `/vusb`.
    pub store: String,
    /// Bound interfaces and devices.
    pub bindings: Vec<String>,
    /// libxl JSON files.
    pub json: BTreeMap<String, String>,
    /// QMP commands received by the fake device models (during the step,
    /// in [`run_scenario`]).
    pub qmp: String,
}

/// Let the drivers react, then observe the host.
pub fn observe(host: &FakeHost, outcome: Outcome) -> io::Result<Observation> {
    host.settle();
    Ok(Observation {
        outcome,
        store: host.dump()?,
        bindings: host.sysfs_bindings()?,
        json: host.json_files()?,
        qmp: host.qmp_log(),
    })
}

/// Differences between the peer's and vusb's observations that must not
/// exist (stdout, exit status, store, bindings), as readable lines; JSON
/// differences go to `notes`.
pub fn compare(xl: &Observation, vusb: &Observation, notes: &mut Vec<String>) -> Vec<String> {
    let mut d = Vec::new();
    if xl.outcome.rc != vusb.outcome.rc {
        d.push(format!(
            "exit status: xl {} vusb {} (vusb stderr: {})",
            xl.outcome.rc,
            vusb.outcome.rc,
            vusb.outcome.stderr.trim()
        ));
    }
    if xl.outcome.stdout != vusb.outcome.stdout {
        d.push(format!(
            "stdout:\n--- xl\n{}--- vusb\n{}",
            xl.outcome.stdout, vusb.outcome.stdout
        ));
    }
    let diff = line_diff(&xl.store, &vusb.store);
    if !diff.is_empty() {
        d.push(format!("xenstore (- xl, + vusb):\n{}", diff.join("\n")));
    }
    if xl.bindings != vusb.bindings {
        let a = xl.bindings.join("\n");
        let b = vusb.bindings.join("\n");
        d.push(format!(
            "sysfs bindings (- xl, + vusb):\n{}",
            line_diff(&a, &b).join("\n")
        ));
    }
    if xl.qmp != vusb.qmp {
        d.push(format!(
            "QMP commands (- xl, + vusb):\n{}",
            line_diff(&xl.qmp, &vusb.qmp).join("\n")
        ));
    }
    if xl.json != vusb.json {
        for (k, v) in &xl.json {
            let other = vusb.json.get(k).map(String::as_str).unwrap_or("");
            if v != other {
                notes.push(format!(
                    "json {k} (- xl, + vusb):\n{}",
                    line_diff(v, other).join("\n")
                ));
            }
        }
    }
    d
}

/// Lines only in `a` (prefixed `-`) and only in `b` (`+`), order kept
/// (a multiset difference: enough to read what changed).
pub fn line_diff(a: &str, b: &str) -> Vec<String> {
    let mut count: BTreeMap<&str, i64> = BTreeMap::new();
    for l in a.lines() {
        *count.entry(l).or_insert(0) += 1;
    }
    for l in b.lines() {
        *count.entry(l).or_insert(0) -= 1;
    }
    let mut out = Vec::new();
    let mut left = count.clone();
    for l in a.lines() {
        if let Some(c) = left.get_mut(l) {
            if *c > 0 {
                *c -= 1;
                out.push(format!("-{l}"));
            }
        }
    }
    for l in b.lines() {
        if let Some(c) = left.get_mut(l) {
            if *c < 0 {
                *c += 1;
                out.push(format!("+{l}"));
            }
        }
    }
    out
}

/// What is expected of vusb at a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Same as xl.
    Same,
    /// xl crashes here (a libxl bug); vusb must exit 1 with an error and
    /// change nothing.
    XlCrashes,
    /// xl accepts input it should refuse (a libxl bug, e.g. C1: a port
    /// beyond the controller); vusb must exit 1 and change nothing.
    XlAcceptsVusbRefuses,
    /// xl fails where it should not (a libxl bug, e.g. U1/U2 after an
    /// unplug); vusb must succeed. The hosts differ afterwards.
    XlFailsVusbSucceeds,
}

/// One step: name, arguments (as typed after `xl`), expectation.
/// Arguments `!unplug <busid>` are not a command: the device is unplugged
/// from both hosts' sysfs ([`FakeHost::unplug`]).
pub type Step = (&'static str, &'static str, Expect);

/// The golden `pv` scenario (domain 1: PV, no device model).
pub const PV_SCENARIO: &[Step] = &[
    ("01-usb-list-empty", "usb-list 1", Expect::Same),
    (
        "02-usbctrl-attach-pv-v2-4ports",
        "usbctrl-attach 1 type=pv version=2 ports=4",
        Expect::Same,
    ),
    ("03-usb-list-ctrl", "usb-list 1", Expect::Same),
    (
        "04-usbdev-attach-auto-3intf",
        "usbdev-attach 1 hostbus=1 hostaddr=3",
        Expect::Same,
    ),
    (
        "05-usbdev-attach-ctrl0-port3",
        "usbdev-attach 1 hostbus=1 hostaddr=2 controller=0 port=3",
        Expect::Same,
    ),
    ("06-usb-list-2dev", "usb-list 1", Expect::Same),
    ("07-usbdev-detach-0-1", "usbdev-detach 1 0 1", Expect::Same),
    (
        "08-usbctrl-detach-with-dev",
        "usbctrl-detach 1 0",
        Expect::Same,
    ),
    ("09-usb-list-after", "usb-list 1", Expect::Same),
    ("10-usbctrl-attach-auto", "usbctrl-attach 1", Expect::Same),
    ("11-usbctrl-detach-auto", "usbctrl-detach 1 0", Expect::Same),
    (
        "12-usbdev-attach-no-ctrl",
        "usbdev-attach 1 hostbus=1 hostaddr=2",
        Expect::Same,
    ),
    ("13-usb-list-implicit-ctrl", "usb-list 1", Expect::Same),
    (
        "14-err-usbdev-attach-already",
        "usbdev-attach 1 hostbus=1 hostaddr=2",
        Expect::Same,
    ),
    (
        "15-err-usbdev-attach-hub",
        "usbdev-attach 1 hostbus=1 hostaddr=1",
        Expect::Same,
    ),
    (
        "16-err-usbdev-attach-nodev",
        "usbdev-attach 1 hostbus=9 hostaddr=9",
        Expect::Same,
    ),
    (
        "17-err-usbdev-attach-port-in-use",
        "usbdev-attach 1 hostbus=1 hostaddr=3 controller=0 port=1",
        Expect::Same,
    ),
    (
        "18-err-usbctrl-attach-pv-v3",
        "usbctrl-attach 1 type=pv version=3",
        Expect::Same,
    ),
    (
        "19-err-usbctrl-attach-qusb-no-dm",
        "usbctrl-attach 1 type=qusb",
        Expect::Same,
    ),
    (
        "20-err-usbdev-detach-unknown",
        "usbdev-detach 1 5 1",
        Expect::XlCrashes,
    ),
    (
        "21-err-usbctrl-detach-unknown",
        "usbctrl-detach 1 7",
        Expect::Same,
    ),
    (
        "22-usbctrl-detach-implicit",
        "usbctrl-detach 1 0",
        Expect::Same,
    ),
];

/// The golden `qusb` scenario (domain 2: PV with a QEMU backend).
pub const QUSB_SCENARIO: &[Step] = &[
    (
        "01-usbctrl-attach-qusb-v1-2ports",
        "usbctrl-attach 2 type=qusb version=1 ports=2",
        Expect::Same,
    ),
    (
        "02-usbdev-attach",
        "usbdev-attach 2 hostbus=1 hostaddr=2",
        Expect::Same,
    ),
    ("03-usb-list", "usb-list 2", Expect::Same),
    ("04-usbdev-detach", "usbdev-detach 2 0 1", Expect::Same),
    ("05-usbctrl-detach", "usbctrl-detach 2 0", Expect::Same),
    (
        "06-usbctrl-attach-auto-pvqemu",
        "usbctrl-attach 2",
        Expect::Same,
    ),
    ("07-usb-list-auto", "usb-list 2", Expect::Same),
    ("08-usbctrl-detach-auto", "usbctrl-detach 2 0", Expect::Same),
];

/// The golden `devicemodel` scenario (domain 3: HVM, fake QMP device model).
pub const DEVICEMODEL_SCENARIO: &[Step] = &[
    (
        "01-usbctrl-attach-auto-hvm",
        "usbctrl-attach 3",
        Expect::Same,
    ),
    (
        "02-usbctrl-attach-v3-4ports",
        "usbctrl-attach 3 version=3 ports=4",
        Expect::Same,
    ),
    (
        "03-usbdev-attach-auto",
        "usbdev-attach 3 hostbus=1 hostaddr=2",
        Expect::Same,
    ),
    (
        "04-usbdev-attach-ctrl1-port2",
        "usbdev-attach 3 hostbus=1 hostaddr=3 controller=1 port=2",
        Expect::Same,
    ),
    ("05-usb-list", "usb-list 3", Expect::Same),
    ("06-usbdev-detach-0-1", "usbdev-detach 3 0 1", Expect::Same),
    (
        "07-usbctrl-detach-1-with-dev",
        "usbctrl-detach 3 1",
        Expect::Same,
    ),
    ("08-usbctrl-detach-0", "usbctrl-detach 3 0", Expect::Same),
    (
        "09-err-usbctrl-attach-v1-4ports",
        "usbctrl-attach 3 version=1 ports=4",
        Expect::Same,
    ),
    (
        "10-usbctrl-attach-v1",
        "usbctrl-attach 3 version=1",
        Expect::Same,
    ),
    ("11-usb-list-v1", "usb-list 3", Expect::Same),
];

/// Steps of our own: both guests at once, names instead of domids, two
/// controllers, a device moving between guests, version 1 pv.
pub const EXTRA_SCENARIO: &[Step] = &[
    (
        "01-usbctrl-attach-by-name",
        "usbctrl-attach guest1 type=pv version=1 ports=2",
        Expect::Same,
    ),
    (
        "02-usbctrl-attach-qusb-v2",
        "usbctrl-attach 2 type=qusb version=2 ports=8",
        Expect::Same,
    ),
    (
        "03-usbctrl-attach-second-pv",
        "usbctrl-attach 1 type=pv ports=3",
        Expect::Same,
    ),
    (
        "04-usbdev-attach-ctrl1",
        "usbdev-attach 1 hostbus=1 hostaddr=2 controller=1 port=2",
        Expect::Same,
    ),
    (
        "05-usbdev-attach-qusb",
        "usbdev-attach guest2 hostbus=1 hostaddr=3",
        Expect::Same,
    ),
    ("06-usb-list-1", "usb-list guest1", Expect::Same),
    ("07-usb-list-2", "usb-list 2", Expect::Same),
    (
        "08-err-attach-elsewhere",
        "usbdev-attach 2 hostbus=1 hostaddr=2",
        Expect::Same,
    ),
    (
        "09-usbdev-detach-1-1-2",
        "usbdev-detach 1 1 2",
        Expect::Same,
    ),
    (
        "10-usbdev-attach-moved",
        "usbdev-attach 2 hostbus=1 hostaddr=2",
        Expect::Same,
    ),
    ("11-usb-list-2-moved", "usb-list 2", Expect::Same),
    (
        "12-usbctrl-detach-qusb-with-devs",
        "usbctrl-detach 2 0",
        Expect::Same,
    ),
    ("13-usbctrl-detach-1-0", "usbctrl-detach 1 0", Expect::Same),
    ("14-usbctrl-detach-1-1", "usbctrl-detach 1 1", Expect::Same),
    ("15-usb-list-empty", "usb-list 1", Expect::Same),
];

/// libxl bugs vusb fixes, one scenario each (the hosts differ after the
/// buggy step): C1 (port beyond the controller, negative port), U1/U2 (a
/// device unplugged while assigned blocks every later attach and its own
/// detach).
pub const BUG_SCENARIOS: &[(&str, &[Step])] = &[
    (
        "c1-port-beyond-count",
        &[
            (
                "01-usbctrl-attach",
                "usbctrl-attach 1 type=pv ports=2",
                Expect::Same,
            ),
            (
                "02-usbdev-attach-port-5-of-2",
                "usbdev-attach 1 hostbus=1 hostaddr=2 controller=0 port=5",
                Expect::XlAcceptsVusbRefuses,
            ),
        ],
    ),
    (
        "c1-negative-port",
        &[
            (
                "01-usbctrl-attach",
                "usbctrl-attach 1 type=pv ports=2",
                Expect::Same,
            ),
            (
                "02-usbdev-attach-port-minus-1",
                "usbdev-attach 1 hostbus=1 hostaddr=2 controller=0 port=-1",
                Expect::XlAcceptsVusbRefuses,
            ),
        ],
    ),
    (
        "u1-u2-unplugged-while-assigned",
        &[
            (
                "01-usbctrl-attach",
                "usbctrl-attach 1 type=pv ports=2",
                Expect::Same,
            ),
            (
                "02-usbdev-attach",
                "usbdev-attach 1 hostbus=1 hostaddr=2",
                Expect::Same,
            ),
            ("03-unplug-1-1", "!unplug 1-1", Expect::Same),
            (
                "04-usbdev-attach-other-device",
                "usbdev-attach 1 hostbus=1 hostaddr=3",
                Expect::XlFailsVusbSucceeds,
            ),
            (
                "05-usbdev-detach-unplugged",
                "usbdev-detach 1 0 1",
                Expect::XlFailsVusbSucceeds,
            ),
        ],
    ),
];

/// The result of one step on both hosts.
#[derive(Debug)]
pub struct StepReport {
    /// Step name.
    pub name: &'static str,
    /// Arguments.
    pub args: &'static str,
    /// Differences that must not exist (empty: the step passes).
    pub diffs: Vec<String>,
    /// Reported differences that do not fail the step (JSON).
    pub notes: Vec<String>,
    /// What xl changed in the store (`-`/`+` lines, see [`line_diff`]).
    pub xl_changes: Vec<String>,
    /// xl's observation.
    pub xl: Observation,
    /// vusb's observation.
    pub vusb: Observation,
}

/// Which program plays the second host: vusb, or xl again (to check the
/// harness itself: the diff must then be empty).
#[derive(Debug, Clone)]
pub enum Second {
    /// The vusb binary at this path.
    Vusb(PathBuf),
    /// The real xl again.
    Xl,
}

/// Run a scenario on two fresh identical hosts (built from `config`):
/// every step with xl on the first and with `second` on the other.
pub fn run_scenario(
    config: &crate::fakehost::FakeHostConfig,
    steps: &[Step],
    second: &Second,
) -> io::Result<Vec<StepReport>> {
    let a = FakeHost::start(config)?;
    let b = FakeHost::start(config)?;
    let mut reports = Vec::new();
    for &(name, args, expect) in steps {
        let argv: Vec<&str> = args.split_whitespace().collect();
        if let ["!unplug", busid] = argv.as_slice() {
            a.unplug(busid)?;
            b.unplug(busid)?;
            continue;
        }
        let before_a = a.dump()?;
        let bindings_b = b.sysfs_bindings()?;
        let before_b = b.dump()?;
        let (qmp_a, qmp_b) = (a.qmp_log().len(), b.qmp_log().len());
        let mut xl = observe(&a, run(&a, a.xl_command(&argv)?)?)?;
        let cmd = match second {
            Second::Vusb(bin) => b.vusb_command(bin, &argv)?,
            Second::Xl => b.xl_command(&argv)?,
        };
        let mut vusb = observe(&b, run(&b, cmd)?)?;
        // Only this step's QMP commands (the logs only grow).
        xl.qmp = xl.qmp.get(qmp_a..).unwrap_or_default().to_owned();
        vusb.qmp = vusb.qmp.get(qmp_b..).unwrap_or_default().to_owned();
        let mut notes = Vec::new();
        let diffs = match (expect, second) {
            (Expect::XlCrashes, Second::Vusb(_)) => {
                let mut d = Vec::new();
                if vusb.outcome.rc != 1 {
                    d.push(format!(
                        "exit status: vusb {} (expected 1: xl crashes here)",
                        vusb.outcome.rc
                    ));
                }
                let diff = line_diff(&before_b, &vusb.store);
                if !diff.is_empty() {
                    d.push(format!(
                        "xenstore changed by a failing command:\n{}",
                        diff.join("\n")
                    ));
                }
                notes.push(format!("xl exit status {} (libxl bug)", xl.outcome.rc));
                d
            }
            (Expect::XlAcceptsVusbRefuses, Second::Vusb(_)) => {
                let mut d = Vec::new();
                if vusb.outcome.rc != 1 {
                    d.push(format!(
                        "exit status: vusb {} (expected 1: refused)",
                        vusb.outcome.rc
                    ));
                }
                let diff = line_diff(&before_b, &vusb.store);
                if !diff.is_empty() {
                    d.push(format!(
                        "xenstore changed by a refused command:\n{}",
                        diff.join("\n")
                    ));
                }
                if vusb.bindings != bindings_b {
                    d.push("sysfs bindings changed by a refused command".to_owned());
                }
                notes.push(format!(
                    "xl exit status {} (libxl accepts this)",
                    xl.outcome.rc
                ));
                d
            }
            (Expect::XlFailsVusbSucceeds, Second::Vusb(_)) => {
                let mut d = Vec::new();
                if vusb.outcome.rc != 0 {
                    d.push(format!(
                        "exit status: vusb {} (expected 0), stderr: {}",
                        vusb.outcome.rc,
                        vusb.outcome.stderr.trim()
                    ));
                }
                notes.push(format!(
                    "xl exit status {} (libxl bug): {}",
                    xl.outcome.rc,
                    xl.outcome.stderr.trim()
                ));
                d
            }
            _ => compare(&xl, &vusb, &mut notes),
        };
        reports.push(StepReport {
            name,
            args,
            diffs,
            notes,
            xl_changes: line_diff(&before_a, &xl.store),
            xl,
            vusb,
        });
    }
    Ok(reports)
}

/// The recorded goldens of the real xl kept in the repository
/// (`xl-peer/golden/<scenario>/<step>/{cmd,stdout,rc,xenstore.diff}`).
pub fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("xl-peer/golden")
}

/// The changed lines of a recorded `xenstore.diff` (without headers), sorted.
pub fn diff_changes(unified: &str) -> Vec<String> {
    let mut v: Vec<String> = unified
        .lines()
        .filter(|l| {
            (l.starts_with('+') && !l.starts_with("+++"))
                || (l.starts_with('-') && !l.starts_with("---"))
        })
        .map(str::to_owned)
        .collect();
    v.sort();
    v
}

/// Check a step's xl run against the recorded golden of the same step:
/// stdout, exit status and the store changes. Returns the mismatches.
pub fn check_against_golden(scenario: &str, report: &StepReport) -> io::Result<Vec<String>> {
    let dir = golden_dir().join(scenario).join(report.name);
    let mut d = Vec::new();
    let stdout = fs::read_to_string(dir.join("stdout"))?;
    if stdout != report.xl.outcome.stdout {
        d.push(format!(
            "stdout differs from the golden:\n{}",
            report.xl.outcome.stdout
        ));
    }
    let rc: i32 = fs::read_to_string(dir.join("rc"))?
        .trim()
        .parse()
        .map_err(io::Error::other)?;
    if rc != report.xl.outcome.rc {
        d.push(format!(
            "exit status {} (golden {rc}), stderr: {}",
            report.xl.outcome.rc,
            report.xl.outcome.stderr.trim()
        ));
    }
    let golden = diff_changes(&fs::read_to_string(dir.join("xenstore.diff"))?);
    let mut ours = report.xl_changes.clone();
    ours.sort();
    if golden != ours {
        d.push(format!(
            "store changes differ from the golden:\n{}",
            line_diff(&golden.join("\n"), &ours.join("\n")).join("\n")
        ));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_of_new_connections_are_counted() {
        let seg = "IN 0x1 20231121 09:00:00 READ (/a )\n\
                   CREATE connection 0x2\n\
                   IN 0x2 20231121 09:00:00 READ (/a )\n\
                   OUT 0x2 20231121 09:00:00 READ (x )\n\
                   IN 0x2 20231121 09:00:00 WRITE (/b x )\n";
        let (n, by) = count_requests(seg);
        assert_eq!(n, 2);
        assert_eq!(by.get("READ"), Some(&1));
        assert_eq!(by.get("WRITE"), Some(&1));
    }

    #[test]
    fn line_diff_shows_both_sides() {
        let d = line_diff("a\nb\nc\n", "a\nc\nd\n");
        assert_eq!(d, vec!["-b".to_owned(), "+d".to_owned()]);
        assert!(line_diff("x\ny\n", "x\ny\n").is_empty());
    }
}
