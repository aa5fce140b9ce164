//! Concurrency (issue 10, item 6): 16 and 64 `vusb` processes started at
//! once, mixing `usbdev-attach`, `usbdev-detach`, `usbctrl-attach` and
//! `usbctrl-detach` on one guest and on several (the same device and
//! different devices); every process must end (no hang) with exit 0 or 1
//! (no crash), and the invariants (`vusb_testsupport::invariants`) must
//! hold afterwards, without any recovery.
//!
//! Runs on: the real C xenstored (testsupport harness), the simulated
//! usbback/usbfront, a fake QMP device model for the HVM guest, the FUSE
//! sysfs with kernel-like bind/unbind, the built `vusb` binary. Fails
//! under `CI=true` when one is missing, skips otherwise. Each mix is
//! generated from a seed (printed on failure); `VUSB_SOAK=1` runs more
//! rounds (`docs/reliability.md`).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod fault_common;

use std::time::Duration;

use fault_common::procs::{Rng, args, spawn, wait_all};
use fault_common::{Bed, show, three_guests};

/// A guest of the mix: domid and the type its `usbctrl-attach` asks for.
struct Guest(u32, &'static str);

struct Mix {
    name: &'static str,
    guests: &'static [Guest],
    devices: &'static [&'static str],
    processes: usize,
}

fn commands(m: &Mix, seed: u64) -> Vec<Vec<String>> {
    let mut r = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    (0..m.processes)
        .map(|_| {
            let g = r.pick(m.guests);
            let d = g.0.to_string();
            match r.below(8) {
                0..=2 => args(&["usbdev-attach", &d, &format!("busid={}", r.pick(m.devices))]),
                3..=4 => {
                    let c = r.below(2).to_string();
                    let p = (1 + r.below(3)).to_string();
                    args(&["usbdev-detach", &d, &c, &p])
                }
                5..=6 => args(&["usbctrl-attach", &d, &format!("type={}", g.1)]),
                _ => args(&["usbctrl-detach", &d, &r.below(2).to_string()]),
            }
        })
        .collect()
}

/// One round: a fresh host, a controller on each guest, the mix at once.
/// Returns the problems found (empty: the round was clean).
fn round(m: &Mix, seed: u64) -> Option<Vec<String>> {
    let bed = Bed::start(&three_guests())?;
    for g in m.guests {
        bed.ok(&["usbctrl-attach", &g.0.to_string(), &format!("type={}", g.1)]);
    }
    let cmds = commands(m, seed);
    let children: Vec<_> = cmds.iter().map(|a| (a.clone(), spawn(&bed, a))).collect();
    let ended = wait_all(children, Duration::from_secs(90));
    let mut problems: Vec<String> = ended
        .iter()
        .filter(|e| !e.sane())
        .map(|e| {
            format!(
                "{:?} ended with {:?}{}: {}",
                e.args,
                e.code,
                if e.hung { " (hung, killed)" } else { "" },
                e.stderr.trim()
            )
        })
        .collect();
    let v = bed.check();
    if !v.is_empty() {
        problems.push(format!("{} violations:\n{}", v.len(), show(&v)));
    }
    let ok = ended.iter().filter(|e| e.code == Some(0)).count();
    eprintln!(
        "{} seed {seed}: {} processes, {ok} succeeded, {} violations, {} crashed or hung",
        m.name,
        ended.len(),
        v.len(),
        ended.iter().filter(|e| !e.sane()).count()
    );
    Some(problems)
}

fn rounds() -> u64 {
    if std::env::var("VUSB_SOAK").as_deref() == Ok("1") {
        std::env::var("VUSB_SOAK_ROUNDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(20)
    } else {
        2
    }
}

fn run(m: &Mix) {
    let mut bad = Vec::new();
    let n = rounds();
    for seed in 1..=n {
        let Some(p) = round(m, seed) else { return };
        if !p.is_empty() {
            bad.push(format!("seed {seed}:\n{}", p.join("\n")));
        }
    }
    assert!(
        bad.is_empty(),
        "{}: {} of {n} rounds broke the host:\n{}",
        m.name,
        bad.len(),
        bad.join("\n")
    );
}

const PV1: &[Guest] = &[Guest(1, "pv")];
const ALL3: &[Guest] = &[Guest(1, "pv"), Guest(2, "qusb"), Guest(3, "devicemodel")];

#[test]
fn sixteen_processes_one_guest_one_device() {
    run(&Mix {
        name: "16 procs, guest 1 (pv), device 1-2",
        guests: PV1,
        devices: &["1-2"],
        processes: 16,
    });
}

#[test]
fn sixteen_processes_three_guests_six_devices() {
    run(&Mix {
        name: "16 procs, guests 1-3 (pv, qusb, devicemodel), 6 devices",
        guests: ALL3,
        devices: &["1-1", "1-2", "1-3", "1-4", "1-5", "1-6"],
        processes: 16,
    });
}

#[test]
fn sixty_four_processes_three_guests_two_devices() {
    run(&Mix {
        name: "64 procs, guests 1-3, devices 1-2 and 1-3",
        guests: ALL3,
        devices: &["1-2", "1-3"],
        processes: 64,
    });
}

#[test]
fn sixty_four_processes_one_guest_six_devices() {
    run(&Mix {
        name: "64 procs, guest 1 (pv), 6 devices",
        guests: PV1,
        devices: &["1-1", "1-2", "1-3", "1-4", "1-5", "1-6"],
        processes: 64,
    });
}
