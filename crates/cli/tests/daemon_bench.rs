//! Measurements of `vusb daemon` for `docs/benchmarks.md` (not a timed
//! test: `#[ignore]`d, run explicitly):
//!
//! ```sh
//! cargo test --release -p vusb-cli --test daemon_bench -- --ignored --nocapture
//! ```
//!
//! - re-attach latency: from the moment the re-plug's uevents are sent to
//!   the daemon's socket to the moment the port node holds the busid
//!   again (a xenstore watch on the port node, no polling), and to the
//!   moment every interface is on usbback (handover done); on the
//!   simulated host and on the real C xenstored (fake host);
//! - idle resident memory of the daemon (`VmRSS` of `/proc/PID/status`);
//! - idle CPU: CPU time (`utime + stime` of `/proc/PID/stat`, all threads)
//!   and context switches of all its threads over 10 s idle.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod daemon_support;

use std::time::{Duration, Instant};

use daemon_support::{Bed, Daemon, wait_for};
use vusb_xenstore::XenstoreWatch;

const CYCLES: usize = 15;

fn latencies(bed: &Bed) -> (Vec<Duration>, Vec<Duration>) {
    bed.ok(&["usbctrl-attach", "guest1", "type=pv", "ports=4"]);
    bed.ok(&["usb-rule-add", "guest1", "vendor=0781,product=5567"]);
    let d = bed.daemon();
    assert!(wait_for(Duration::from_secs(5), || bed.port(1, 0, 1).is_some()).is_some());
    let watcher = bed.client();
    let node = "/local/domain/0/backend/vusb/1/0/port/1";
    watcher.watch(node, "bench").unwrap();
    let (mut port, mut handover) = (Vec::new(), Vec::new());
    for _ in 0..CYCLES {
        bed.unplug("1-1");
        assert!(wait_for(Duration::from_secs(5), || bed.port(1, 0, 1).is_none()).is_some());
        // Past the flap window: a plain re-plug.
        std::thread::sleep(Duration::from_millis(1100));
        while watcher
            .wait_event(Duration::from_millis(1))
            .unwrap()
            .is_some()
        {}
        let (_, sent) = bed.plug("1-1", None);
        loop {
            let ev = watcher.wait_event(Duration::from_secs(5)).unwrap();
            assert!(ev.is_some(), "no re-attach; log:\n{}", d.log_text());
            if bed.port(1, 0, 1).as_deref() == Some("1-1") {
                port.push(sent.elapsed());
                break;
            }
        }
        let done = wait_for(Duration::from_secs(5), || {
            bed.driver("1-1:1.0").as_deref() == Some("usbback")
        });
        assert!(done.is_some());
        handover.push(sent.elapsed());
    }
    (port, handover)
}

fn summary(v: &mut [Duration]) -> String {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    format!(
        "{:.1} / {:.1} / {:.1}",
        ms(v[v.len() / 2]),
        ms(v[v.len() * 9 / 10]),
        ms(v[v.len() - 1])
    )
}

/// `(utime + stime ticks, voluntary + involuntary switches)` of every
/// thread of `pid`.
fn cpu_and_switches(pid: u32) -> (u64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    let mut switches = 0;
    for t in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let s = std::fs::read_to_string(t.unwrap().path().join("status")).unwrap();
        for l in s.lines() {
            if l.starts_with("voluntary_ctxt_switches")
                || l.starts_with("nonvoluntary_ctxt_switches")
            {
                switches += l.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap();
            }
        }
    }
    (ticks, switches)
}

/// A `kB` field of a `/proc/PID/...` file.
fn kb(file: &str, key: &str) -> u64 {
    let s = std::fs::read_to_string(file).unwrap();
    s.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap()
        .parse()
        .unwrap()
}

/// `VmRSS`, `RssAnon`, `RssFile` and `Pss` in kB.
fn memory(pid: u32) -> String {
    let st = format!("/proc/{pid}/status");
    let sr = format!("/proc/{pid}/smaps_rollup");
    format!(
        "VmRSS {} kB (RssAnon {} kB, RssFile {} kB; Pss {} kB)",
        kb(&st, "VmRSS:"),
        kb(&st, "RssAnon:"),
        kb(&st, "RssFile:"),
        kb(&sr, "Pss:")
    )
}

fn idle(d: &Daemon) -> (String, u64, u64) {
    std::thread::sleep(Duration::from_secs(2));
    let pid = d.child.id();
    let (t0, s0) = cpu_and_switches(pid);
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs(10));
    let (t1, s1) = cpu_and_switches(pid);
    assert!(start.elapsed() >= Duration::from_secs(10));
    (memory(pid), t1 - t0, s1 - s0)
}

#[test]
#[ignore = "a measurement for docs/benchmarks.md; run with --ignored --nocapture"]
fn daemon_reattach_latency() {
    let sim = Bed::sim();
    let (mut p, mut h) = latencies(&sim);
    println!(
        "simulated host, {CYCLES} re-plugs: uevent -> port written {} ms, -> handover done {} ms (median / p90 / max)",
        summary(&mut p),
        summary(&mut h)
    );
    if let Some(real) = Bed::real("daemon_reattach_latency") {
        let (mut p, mut h) = latencies(&real);
        println!(
            "real xenstored, {CYCLES} re-plugs: uevent -> port written {} ms, -> handover done {} ms (median / p90 / max)",
            summary(&mut p),
            summary(&mut h)
        );
    }
}

/// The idle daemon with 2 rules and 1 device attached, as `vusb daemon`
/// (the whole CLI binary) and as `vusbd` (the daemon-only binary that
/// the systemd unit runs).
#[test]
#[ignore = "a measurement for docs/benchmarks.md; run with --ignored --nocapture"]
fn daemon_idle_memory_cpu() {
    for vusbd in [false, true] {
        let bed = Bed::sim();
        bed.ok(&["usbctrl-attach", "guest1", "type=pv", "ports=4"]);
        bed.ok(&["usb-rule-add", "guest1", "vendor=0781,product=5567"]);
        bed.ok(&["usb-rule-add", "guest2", "busid=1-2"]);
        let d = if vusbd { bed.vusbd() } else { bed.daemon() };
        assert!(wait_for(Duration::from_secs(5), || bed.port(1, 0, 1).is_some()).is_some());
        let (rss, ticks, switches) = idle(&d);
        println!(
            "idle {} (2 rules, 1 device attached): {rss}; over 10 s idle: {ticks} CPU ticks, {switches} context switches (all threads)",
            if vusbd { "vusbd" } else { "vusb daemon" }
        );
    }
}
