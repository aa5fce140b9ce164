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
//! Module map: this file runs one command and counts its requests;
//! `compare` observes a host after a step and compares two observations
//! (and xl's with the recorded goldens); `scenarios` holds the step
//! sequences ([`PV_SCENARIO`], [`QUSB_SCENARIO`], [`DEVICEMODEL_SCENARIO`]
//! recorded in the xl-peer goldens, [`EXTRA_SCENARIO`] and
//! [`BUG_SCENARIOS`] of our own); `runner` plays a scenario on two fresh
//! hosts; [`fake_qmp`] is the HVM guests' device model.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::fakehost::{FakeHost, XEN_BIN};

mod compare;
pub mod fake_qmp;
mod runner;
mod scenarios;

pub use compare::{
    Observation, check_against_golden, compare, diff_changes, golden_dir, line_diff, observe,
};
pub use runner::{Second, StepReport, run_scenario};
pub use scenarios::{
    BUG_SCENARIOS, DEVICEMODEL_SCENARIO, ERRORS_SCENARIO, EXTRA_SCENARIO, Expect, PV_SCENARIO,
    QUSB_SCENARIO, Step,
};

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
