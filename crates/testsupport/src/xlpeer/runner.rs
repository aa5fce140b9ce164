//! Playing a scenario on two fresh identical hosts.

use std::io;
use std::path::PathBuf;

use super::{Expect, Observation, Step, compare, line_diff, observe, run};
use crate::fakehost::FakeHost;

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
