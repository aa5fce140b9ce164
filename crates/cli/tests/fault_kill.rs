//! kill -9 at every step boundary of attach and detach (issue 10, item 6):
//! each xenstore request (`sendto`), each sysfs write and file write
//! (`write`), each rename of a state file, counted on a full run; for each
//! one a fresh host, the operation killed on entry of that syscall by
//! `strace -e inject=...:signal=KILL`, then `vusb usb-recover`, then the
//! invariants (`vusb_testsupport::invariants`); if the operation's effect
//! is then missing, running it again must succeed, and the invariants
//! must hold again. Also each `TRANSACTION_END` whose answer is lost
//! (the connection cut by a proxy, as after a timeout), committing at
//! once or only after the operation exited.
//!
//! Runs on: the real C xenstored (testsupport harness, reached through a
//! forwarding proxy for the `TRANSACTION_END` faults), the simulated
//! usbback/usbfront, a fake QMP device model (devicemodel scenarios), the
//! FUSE sysfs with kernel-like bind/unbind, the built `vusb` binary under
//! the real strace. Fails under `CI=true` when one is missing, skips
//! otherwise. `VUSB_SOAK=1` is the longer run (`docs/reliability.md`).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod fault_common;
mod fault_sweep;

use fault_sweep::{Scenario, Select, sweep};

/// Bounded (`cargo test`): the pv attach and detach at every boundary, the
/// others at every 12th; every lost and late `TRANSACTION_END`. `VUSB_SOAK=1`:
/// every boundary of every scenario, `VUSB_SOAK_ROUNDS` times (default 1).
fn run(s: &Scenario, bounded: Select) {
    if !fault_common::strace_available() {
        return;
    }
    let soak = std::env::var("VUSB_SOAK").as_deref() == Ok("1");
    let rounds: usize = if soak {
        std::env::var("VUSB_SOAK_ROUNDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1)
    } else {
        1
    };
    for _ in 0..rounds {
        once(s, if soak { Select::All } else { bounded });
    }
}

fn once(s: &Scenario, select: Select) {
    let Some(sum) = sweep(s, select) else {
        return;
    };
    assert!(sum.boundaries > 0, "{}: no boundary traced", s.name);
    let bad: Vec<String> = sum
        .trials
        .iter()
        .filter(|t| t.bad())
        .map(|t| t.to_string())
        .collect();
    assert!(bad.is_empty(), "{}\n{}", sum.line(s.name), bad.join(""));
}

#[test]
fn kill_pv_attach() {
    run(&fault_sweep::PV_ATTACH, Select::All);
}

#[test]
fn kill_pv_attach_creating_its_controller() {
    run(&fault_sweep::PV_ATTACH_NEW_CTRL, Select::Stride(12));
}

#[test]
fn kill_pv_detach() {
    run(&fault_sweep::PV_DETACH, Select::All);
}

#[test]
fn kill_pv_ctrl_detach() {
    run(&fault_sweep::PV_CTRL_DETACH, Select::Stride(12));
}

#[test]
fn kill_qusb_attach() {
    run(&fault_sweep::QUSB_ATTACH, Select::Stride(12));
}

#[test]
fn kill_qusb_detach() {
    run(&fault_sweep::QUSB_DETACH, Select::Stride(12));
}

#[test]
fn kill_devicemodel_attach() {
    run(&fault_sweep::DM_ATTACH, Select::Stride(12));
}

#[test]
fn kill_devicemodel_detach() {
    run(&fault_sweep::DM_DETACH, Select::Stride(12));
}

/// An attach right after a killed `usbctrl-detach` (no `usb-recover` in
/// between) never claims a port on the controller whose removal was
/// interrupted: it completes the removal first (automatic placement then
/// goes elsewhere; `controller=0` is refused naming it).
fn run_then(then: &fault_sweep::Then, bounded: Select) {
    if !fault_common::strace_available() {
        return;
    }
    let soak = std::env::var("VUSB_SOAK").as_deref() == Ok("1");
    let select = if soak { Select::All } else { bounded };
    let Some((tried, bad)) = fault_sweep::sweep_then(&fault_sweep::PV_CTRL_DETACH, then, select)
    else {
        return;
    };
    assert!(tried > 0, "no kill point tried");
    assert!(
        bad.is_empty(),
        "{} of {tried} bad:\n{}",
        bad.len(),
        bad.join("")
    );
}

#[test]
fn kill_pv_ctrl_detach_then_attach() {
    run_then(&fault_sweep::THEN_ATTACH_AUTO, Select::Stride(7));
}

#[test]
fn kill_pv_ctrl_detach_then_attach_to_it() {
    run_then(&fault_sweep::THEN_ATTACH_EXPLICIT, Select::Stride(7));
}
