//! Observing a fake host after a step, comparing xl's and vusb's
//! observations, and checking xl's against the recorded goldens.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::{Outcome, StepReport};
use crate::fakehost::FakeHost;

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
        if let Some(c) = left.get_mut(l)
            && *c > 0
        {
            *c -= 1;
            out.push(format!("-{l}"));
        }
    }
    for l in b.lines() {
        if let Some(c) = left.get_mut(l)
            && *c < 0
        {
            *c += 1;
            out.push(format!("+{l}"));
        }
    }
    out
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
