//! The kill -9 sweep shared by `fault_kill.rs` (bounded, in `cargo test`)
//! and the soak (`VUSB_SOAK=1`): for one operation, count its boundary
//! syscalls on a full run, then for each chosen N start a fresh host, set
//! it up, run the operation under strace with SIGKILL injected on entry of
//! the N-th boundary, run `vusb usb-recover`, check the invariants; then
//! run the operation again if its effect is missing (it must succeed: a
//! device must never be stuck) and check again.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use vusb_testsupport::invariants::{Violation, encode_key};
use vusb_xenstore::{TxId, XenstoreExt};

use crate::fault_common::proxy::{Commit, HoldingProxy};
use crate::fault_common::{
    BOUNDARIES, Bed, Reaper, show, syscalls, three_guests, transaction_ends,
};

/// One operation to interrupt.
pub struct Scenario {
    /// Short name for reports.
    pub name: &'static str,
    /// Commands that bring a fresh host to the starting state.
    pub setup: &'static [&'static [&'static str]],
    /// The operation killed at every boundary.
    pub op: &'static [&'static str],
    /// The device it is about.
    pub busid: &'static str,
    /// Whether the device is attached once `op` completed.
    pub attached_after: bool,
    /// A controller (domid, devid) that `op` removes.
    pub ctrl_gone: Option<(u32, u32)>,
}

/// What is done to the operation.
#[derive(Debug, Clone)]
pub enum Fault {
    /// SIGKILL on entry of the `.1`-th call of syscall `.0`.
    Kill(String, usize),
    /// The `.0`-th `TRANSACTION_END` reaches xenstored, but the client's
    /// connection is cut before the answer: it cannot know whether it
    /// committed (as after a timeout).
    TxEndLost(usize),
    /// The same, but the `TRANSACTION_END` is held back and reaches
    /// xenstored only after the operation has exited: it commits after the
    /// client's error path ran.
    TxEndLate(usize),
}

impl Fault {
    fn inject(&self) -> Option<String> {
        match self {
            Fault::Kill(sc, n) => Some(format!("{sc}:signal=KILL:when={n}")),
            Fault::TxEndLost(_) | Fault::TxEndLate(_) => None,
        }
    }

    fn proxy(&self) -> Option<(usize, Commit)> {
        match self {
            Fault::Kill(..) => None,
            Fault::TxEndLost(k) => Some((*k, Commit::Now)),
            Fault::TxEndLate(k) => Some((*k, Commit::Later)),
        }
    }
}

/// The result of one kill point.
#[derive(Debug)]
pub struct Trial {
    /// 1-based index among the faults of the scenario.
    pub n: usize,
    /// The fault.
    pub at: Fault,
    /// Whether the process died of SIGKILL (false: it took another path,
    /// or the fault is not a kill).
    pub killed: bool,
    /// How the operation ended: exit status and stderr.
    pub op: String,
    /// `usb-recover`'s output and exit status.
    pub recover: String,
    /// Violations right after recovery.
    pub after_recover: Vec<Violation>,
    /// The retry of the operation (when its effect was missing): output
    /// on failure.
    pub retry_failed: Option<String>,
    /// Violations after the retry.
    pub after_retry: Vec<Violation>,
}

impl Trial {
    /// Any violation or a stuck device.
    pub fn bad(&self) -> bool {
        !self.after_recover.is_empty()
            || self.retry_failed.is_some()
            || !self.after_retry.is_empty()
    }
}

impl std::fmt::Display for Trial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "fault {} ({:?}){}; usb-recover: {}",
            self.n,
            self.at,
            if self.killed {
                String::new()
            } else {
                format!(" [not killed: {}]", self.op)
            },
            self.recover.trim()
        )?;
        if !self.after_recover.is_empty() {
            write!(f, " after usb-recover:\n{}", show(&self.after_recover))?;
        }
        if let Some(e) = &self.retry_failed {
            writeln!(f, " retrying the operation failed: {}", e.trim())?;
        }
        if !self.after_retry.is_empty() && self.after_retry != self.after_recover {
            write!(f, " after the retry:\n{}", show(&self.after_retry))?;
        }
        Ok(())
    }
}

fn setup(s: &Scenario) -> Option<Bed> {
    let bed = Bed::start(&three_guests())?;
    for cmd in s.setup {
        bed.ok(cmd);
    }
    Some(bed)
}

fn attached(bed: &Bed, busid: &str) -> bool {
    let xs = bed.host.client().unwrap();
    xs.read_opt(TxId::NONE, &format!("/vusb/assigned/{}", encode_key(busid)))
        .unwrap()
        .is_some()
}

/// Whether the operation's effect is there: the device attached or not as
/// `s.attached_after` says, and for a controller detach, the controller gone.
fn done(bed: &Bed, s: &Scenario) -> bool {
    if attached(bed, s.busid) != s.attached_after {
        return false;
    }
    match s.ctrl_gone {
        None => true,
        Some((domid, devid)) => {
            let xs = bed.host.client().unwrap();
            xs.read_opt(
                TxId::NONE,
                &format!("/libxl/{domid}/device/vusb/{devid}/type"),
            )
            .unwrap()
            .is_none()
        }
    }
}

/// The faults of a full run of the operation: a kill at each boundary
/// syscall, then each `TRANSACTION_END` lost and late (and that a full run
/// leaves no violation).
pub fn count(s: &Scenario, tmp: &std::path::Path, reaper: &mut Reaper) -> Option<Vec<Fault>> {
    let bed = setup(s)?;
    let log = tmp.join(format!("{}-full.strace", s.name));
    let out = bed.traced(s.op, &log, BOUNDARIES, None, None);
    assert!(
        out.status.success(),
        "{}: full run failed: {}",
        s.name,
        String::from_utf8_lossy(&out.stderr)
    );
    let v = bed.check();
    assert!(v.is_empty(), "{}: a full run leaves:\n{}", s.name, show(&v));
    assert!(done(&bed, s), "{}: a full run does not do it", s.name);
    let mut faults: Vec<Fault> = syscalls(&log)
        .into_iter()
        .map(|(sc, n, _)| Fault::Kill(sc, n))
        .collect();
    let ends = transaction_ends(&log);
    faults.extend((1..=ends).map(Fault::TxEndLost));
    faults.extend((1..=ends).map(Fault::TxEndLate));
    reaper.later(bed);
    Some(faults)
}

/// Apply fault `n` (1-based) of `faults`.
pub fn trial(
    s: &Scenario,
    faults: &[Fault],
    n: usize,
    tmp: &std::path::Path,
    reaper: &mut Reaper,
) -> Option<Trial> {
    let bed = setup(s)?;
    let at = faults[n - 1].clone();
    let log = tmp.join(format!("{}-{n}.strace", s.name));
    let proxy = at.proxy().map(|(k, commit)| {
        HoldingProxy::start(&tmp.join(format!("p{n}")), bed.host.socket(), k, commit)
    });
    let out = bed.traced(
        s.op,
        &log,
        BOUNDARIES,
        at.inject().as_deref(),
        proxy.as_ref().map(HoldingProxy::path),
    );
    let late = proxy.as_ref().map(HoldingProxy::release);
    if std::env::var_os("VUSB_FAULT_KEEP_LOGS").is_some() {
        let _ = std::fs::copy(
            &log,
            std::env::temp_dir().join(format!("vusb-{}-{n}.strace", s.name)),
        );
    }
    use std::os::unix::process::ExitStatusExt;
    let killed = out.status.signal() == Some(9);
    let op = format!(
        "{:?}: {}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr).trim(),
        late.map_or(String::new(), |r| format!(
            "; xenstored's answer to the lost TRANSACTION_END: {r:?}"
        ))
    );
    let rec = bed.vusb(&["usb-recover"]);
    let recover = format!(
        "exit {:?}: {}{}",
        rec.status.code(),
        String::from_utf8_lossy(&rec.stdout),
        String::from_utf8_lossy(&rec.stderr)
    );
    let after_recover = bed.check();
    let mut retry_failed = None;
    let mut after_retry = after_recover.clone();
    if !done(&bed, s) {
        let o = bed.vusb(s.op);
        if !o.status.success() {
            retry_failed = Some(String::from_utf8_lossy(&o.stderr).into_owned());
        }
        after_retry = bed.check();
    }
    reaper.later(bed);
    Some(Trial {
        n,
        at,
        killed,
        op,
        recover,
        after_recover,
        retry_failed,
        after_retry,
    })
}

/// What a sweep found.
#[derive(Debug, Default)]
pub struct Summary {
    /// Boundary syscalls of a full run (kill points).
    pub boundaries: usize,
    /// `TRANSACTION_END`s of a full run.
    pub txn_ends: usize,
    /// The trials run.
    pub trials: Vec<Trial>,
}

impl Summary {
    /// One line: faults, bad ones, and per invariant the number of trials
    /// breaking it after `usb-recover`; stuck = the retry failed.
    pub fn line(&self, name: &str) -> String {
        let mut per: std::collections::BTreeMap<String, usize> = Default::default();
        for t in &self.trials {
            let mut seen: Vec<String> = t
                .after_recover
                .iter()
                .map(|v| format!("{:?}", v.invariant))
                .collect();
            seen.dedup();
            for k in seen {
                *per.entry(k).or_default() += 1;
            }
        }
        let count = |kind: fn(&Fault) -> bool, bad: bool| {
            self.trials
                .iter()
                .filter(|t| kind(&t.at) && (!bad || t.bad()))
                .count()
        };
        let kill = |f: &Fault| matches!(f, Fault::Kill(..));
        let timeout = |f: &Fault| matches!(f, Fault::TxEndLost(..));
        let late = |f: &Fault| matches!(f, Fault::TxEndLate(..));
        format!(
            "{name}: bad after {} of {} kill points, {} of {} lost TRANSACTION_END answers, {} of {} late commits; per invariant after usb-recover: {per:?}; stuck: {}",
            count(kill, true),
            count(kill, false),
            count(timeout, true),
            count(timeout, false),
            count(late, true),
            count(late, false),
            self.trials
                .iter()
                .filter(|t| t.retry_failed.is_some())
                .count()
        )
    }
}

/// Which faults of a scenario to apply.
#[derive(Debug, Clone, Copy)]
pub enum Select {
    /// Every kill point and every lost or late `TRANSACTION_END`.
    All,
    /// Every `k`-th kill point (1, 1+k, ...) and every lost or late `TRANSACTION_END`.
    Stride(usize),
}

/// Sweep the selected faults of a scenario, or `None` when the bed cannot
/// run here.
pub fn sweep(s: &Scenario, select: Select) -> Option<Summary> {
    let tmp = tempfile::tempdir().unwrap();
    let mut reaper = Reaper::default();
    let faults = count(s, tmp.path(), &mut reaper)?;
    let points: Vec<usize> = (1..=faults.len())
        .filter(|n| match (select, &faults[n - 1]) {
            (Select::All, _) | (_, Fault::TxEndLost(_) | Fault::TxEndLate(_)) => true,
            (Select::Stride(k), Fault::Kill(..)) => (n - 1) % k == 0,
        })
        .collect();
    let start = Instant::now();
    let mut trials = Vec::new();
    for n in points {
        trials.push(trial(s, &faults, n, tmp.path(), &mut reaper)?);
    }
    for t in &trials {
        if !t.killed || !matches!(t.at, Fault::Kill(..)) {
            eprintln!(
                "{}: fault {} ({:?}): {}; usb-recover {}",
                s.name,
                t.n,
                t.at,
                t.op,
                t.recover.trim()
            );
        }
    }
    let kills = faults
        .iter()
        .filter(|f| matches!(f, Fault::Kill(..)))
        .count();
    let sum = Summary {
        boundaries: kills,
        txn_ends: (faults.len() - kills) / 2,
        trials,
    };
    eprintln!(
        "{} ({} boundaries, {} TRANSACTION_END x2, {:.1} s)",
        sum.line(s.name),
        sum.boundaries,
        sum.txn_ends,
        start.elapsed().as_secs_f64()
    );
    Some(sum)
}

/// pv attach of 1-2 (three usbhid interfaces) to guest 1, controller there.
pub const PV_ATTACH: Scenario = Scenario {
    name: "pv-attach",
    setup: &[&["usbctrl-attach", "1", "type=pv"]],
    op: &["usbdev-attach", "1", "hostbus=1", "hostaddr=3"],
    busid: "1-2",
    attached_after: true,
    ctrl_gone: None,
};

/// pv attach of 1-2 to guest 1 with no controller yet (created by the attach).
pub const PV_ATTACH_NEW_CTRL: Scenario = Scenario {
    name: "pv-attach-new-ctrl",
    setup: &[],
    op: &["usbdev-attach", "1", "hostbus=1", "hostaddr=3"],
    busid: "1-2",
    attached_after: true,
    ctrl_gone: None,
};

/// pv detach of 1-2 from guest 1.
pub const PV_DETACH: Scenario = Scenario {
    name: "pv-detach",
    setup: &[
        &["usbctrl-attach", "1", "type=pv"],
        &["usbdev-attach", "1", "hostbus=1", "hostaddr=3"],
    ],
    op: &["usbdev-detach", "1", "0", "1"],
    busid: "1-2",
    attached_after: false,
    ctrl_gone: None,
};

/// usbctrl-detach of guest 1's pv controller holding 1-2.
pub const PV_CTRL_DETACH: Scenario = Scenario {
    name: "pv-ctrl-detach",
    setup: &[
        &["usbctrl-attach", "1", "type=pv"],
        &["usbdev-attach", "1", "hostbus=1", "hostaddr=3"],
    ],
    op: &["usbctrl-detach", "1", "0"],
    busid: "1-2",
    attached_after: false,
    ctrl_gone: Some((1, 0)),
};

/// qusb attach of 1-3 to guest 2.
pub const QUSB_ATTACH: Scenario = Scenario {
    name: "qusb-attach",
    setup: &[&["usbctrl-attach", "2", "type=qusb"]],
    op: &["usbdev-attach", "2", "hostbus=1", "hostaddr=4"],
    busid: "1-3",
    attached_after: true,
    ctrl_gone: None,
};

/// qusb detach of 1-3 from guest 2.
pub const QUSB_DETACH: Scenario = Scenario {
    name: "qusb-detach",
    setup: &[
        &["usbctrl-attach", "2", "type=qusb"],
        &["usbdev-attach", "2", "hostbus=1", "hostaddr=4"],
    ],
    op: &["usbdev-detach", "2", "0", "1"],
    busid: "1-3",
    attached_after: false,
    ctrl_gone: None,
};

/// devicemodel attach of 1-4 to the HVM guest 3 (fake QMP), controller there.
pub const DM_ATTACH: Scenario = Scenario {
    name: "devicemodel-attach",
    setup: &[&["usbctrl-attach", "3"]],
    op: &["usbdev-attach", "3", "hostbus=1", "hostaddr=5"],
    busid: "1-4",
    attached_after: true,
    ctrl_gone: None,
};

/// devicemodel detach of 1-4 from guest 3.
pub const DM_DETACH: Scenario = Scenario {
    name: "devicemodel-detach",
    setup: &[
        &["usbctrl-attach", "3"],
        &["usbdev-attach", "3", "hostbus=1", "hostaddr=5"],
    ],
    op: &["usbdev-detach", "3", "0", "1"],
    busid: "1-4",
    attached_after: false,
    ctrl_gone: None,
};

/// Every scenario.
pub const ALL: &[&Scenario] = &[
    &PV_ATTACH,
    &PV_ATTACH_NEW_CTRL,
    &PV_DETACH,
    &PV_CTRL_DETACH,
    &QUSB_ATTACH,
    &QUSB_DETACH,
    &DM_ATTACH,
    &DM_DETACH,
];

/// What must follow an interrupted operation: `then` (an attach of
/// `then_busid`) run on the host the kill left, before any recovery.
pub struct Then {
    /// Short name for reports.
    pub name: &'static str,
    /// The command.
    pub then: &'static [&'static str],
    /// The device it attaches.
    pub then_busid: &'static str,
    /// Whether it names its controller (then a refusal naming the
    /// controller is fine; without, it must succeed).
    pub explicit: bool,
}

/// The controller (domid, devid) of `busid`'s record, if it has one.
fn record_ctrl(bed: &Bed, busid: &str) -> Option<(u32, u32)> {
    let xs = bed.host.client().unwrap();
    let rec = xs
        .read_opt(TxId::NONE, &format!("/vusb/assigned/{}", encode_key(busid)))
        .unwrap()?;
    let field = |k: &str| {
        rec.split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{k}=")))
            .and_then(|v| v.parse::<u32>().ok())
    };
    Some((field("domid")?, field("ctrl")?))
}

/// Kill `s` at its selected boundaries; after each, run `then.then` at
/// once (no `usb-recover` first) and check that it never claims a port on
/// a controller whose removal journal (`/vusb/ctrl/<G>/<N>`) is pending,
/// that it leaves the invariants holding (it completes the interrupted
/// removal first), and that after `usb-recover` they still hold. Returns
/// the number of kill points tried and a report of each bad one.
pub fn sweep_then(s: &Scenario, then: &Then, select: Select) -> Option<(usize, Vec<String>)> {
    let tmp = tempfile::tempdir().unwrap();
    let mut reaper = Reaper::default();
    let faults: Vec<Fault> = count(s, tmp.path(), &mut reaper)?
        .into_iter()
        .filter(|f| matches!(f, Fault::Kill(..)))
        .collect();
    let start = Instant::now();
    let mut tried = 0;
    let mut bad = Vec::new();
    for (i, at) in faults.iter().enumerate() {
        if let Select::Stride(k) = select
            && i % k != 0
        {
            continue;
        }
        tried += 1;
        let bed = setup(s)?;
        let log = tmp.path().join(format!("{}-then-{i}.strace", s.name));
        let out = bed.traced(s.op, &log, BOUNDARIES, at.inject().as_deref(), None);
        let killed = {
            use std::os::unix::process::ExitStatusExt;
            out.status.signal() == Some(9)
        };
        let o = bed.vusb(then.then);
        let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
        let mut problems = Vec::new();
        if o.status.success() {
            match record_ctrl(&bed, then.then_busid) {
                None => problems.push("attach succeeded without a record".to_owned()),
                Some((domid, devid)) => {
                    let xs = bed.host.client().unwrap();
                    let j = xs
                        .read_opt(TxId::NONE, &format!("/vusb/ctrl/{domid}/{devid}"))
                        .unwrap();
                    if matches!(j.as_deref(), Some("detach" | "release")) {
                        problems.push(format!(
                            "attach claimed a port on controller {devid}, whose removal journal says {j:?}"
                        ));
                    }
                }
            }
        } else if !then.explicit {
            problems.push(format!("attach failed: {}", stderr.trim()));
        } else if !stderr.contains("controller 0") {
            problems.push(format!(
                "attach refused without naming the controller: {}",
                stderr.trim()
            ));
        }
        let after_then = bed.check();
        if !after_then.is_empty() {
            problems.push(format!("after the attach:\n{}", show(&after_then)));
        }
        let rec = bed.vusb(&["usb-recover"]);
        let after_recover = bed.check();
        if !after_recover.is_empty() {
            problems.push(format!(
                "after usb-recover ({}):\n{}",
                String::from_utf8_lossy(&rec.stdout).trim(),
                show(&after_recover)
            ));
        }
        if !problems.is_empty() {
            bad.push(format!(
                "fault {} ({at:?}){}; then {:?}: exit {:?} {}\n  {}\n",
                i + 1,
                if killed { "" } else { " [not killed]" },
                then.then,
                o.status.code(),
                stderr.trim(),
                problems.join("\n  ")
            ));
        }
        reaper.later(bed);
    }
    eprintln!(
        "{} then {}: bad after {} of {} kill points ({} boundaries, {:.1} s)",
        s.name,
        then.name,
        bad.len(),
        tried,
        faults.len(),
        start.elapsed().as_secs_f64()
    );
    Some((tried, bad))
}

/// After a killed `usbctrl-detach 1 0`: attach 1-3 to guest 1 by
/// automatic placement (controller 0 has free ports).
pub const THEN_ATTACH_AUTO: Then = Then {
    name: "attach-auto",
    then: &["usbdev-attach", "1", "hostbus=1", "hostaddr=4"],
    then_busid: "1-3",
    explicit: false,
};

/// The same with `controller=0`, the controller being removed.
pub const THEN_ATTACH_EXPLICIT: Then = Then {
    name: "attach-controller-0",
    then: &[
        "usbdev-attach",
        "1",
        "hostbus=1",
        "hostaddr=4",
        "controller=0",
    ],
    then_busid: "1-3",
    explicit: true,
};
