//! `vusb-bench xenbed [--rounds N] [--vusb PATH]`: on the real Xen test bed
//! (`docs/testing-real-xen.md`), xl and vusb side by side in one boot:
//! time from the start of `usbdev-attach` to the guest kernel enumerating
//! the stick ("New USB device found" on its console, polled by dom0 every
//! 20 ms), and from the start of `usbdev-detach` to dom0's `usb-storage`
//! bound to it again (sysfs polled every 20 ms). A PV guest with a qusb
//! controller that xl created; rounds alternate xl and vusb. Also the
//! command's own duration (start to exit). Prints a table of medians
//! (min–max). The dom0 side is `xenbed.sh` beside this file.

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use vusb_testsupport::xenbed::{self, Bed};

/// Median, min, max of the values of `name`.
fn stats(values: &[(String, f64)], name: &str) -> Option<(f64, f64, f64, usize)> {
    let mut v: Vec<f64> = values
        .iter()
        .filter(|(n, _)| n == name)
        .map(|(_, x)| *x)
        .collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some((v[v.len() / 2], v[0], v[v.len() - 1], v.len()))
}

/// Run the benchmark.
pub fn run(args: &[String]) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("locating vusb-bench")?;
    let mut rounds = 5u32;
    let mut vusb = exe.with_file_name("vusb");
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--rounds" => rounds = it.next().context("--rounds needs a value")?.parse()?,
            "--vusb" => vusb = PathBuf::from(it.next().context("--vusb needs a path")?),
            other => bail!(
                "unknown argument {other:?} (usage: vusb-bench xenbed [--rounds N] [--vusb PATH])"
            ),
        }
    }
    let img = xenbed::prepare().map_err(anyhow::Error::msg)?;
    let mut bed = Bed::new("bench", &img)?;
    bed.vusb(&vusb)?;
    bed.stick("stick1", "VUSB0001", "VUSB-MARKER-1", 1)?;
    let script = format!("ROUNDS={rounds}\n{}", include_str!("xenbed.sh"));
    let out = bed.run(&script)?;
    let failed: Vec<_> = out.checks.iter().filter(|c| !c.ok).collect();
    println!(
        "real Xen test bed, PV guest, qusb controller, {rounds} rounds per tool, boot to power-off {:.0} s",
        out.elapsed.as_secs_f64()
    );
    println!("| step | xl: median (min–max) | vusb: median (min–max) |");
    println!("|---|---|---|");
    for (label, metric) in [
        ("usbdev-attach command", "attach-cmd-ms"),
        ("attach → guest kernel enumerated", "attach-enum-ms"),
        ("usbdev-detach command", "detach-cmd-ms"),
        ("detach → host usb-storage bound", "detach-bound-ms"),
    ] {
        let cell = |tool: &str| match stats(&out.metrics, &format!("{tool}-{metric}")) {
            Some((med, lo, hi, n)) => format!("{med:.0} ms ({lo:.0}–{hi:.0}, n={n})"),
            None => "—".to_owned(),
        };
        println!("| {label} | {} | {} |", cell("xl"), cell("vusb"));
    }
    if !failed.is_empty() || out.stopped.is_some() {
        for c in &failed {
            eprintln!("FAILED {}: {}", c.name, c.detail);
        }
        bail!(
            "the bed run did not complete ({}); logs in {}",
            out.stopped.as_deref().unwrap_or("checks failed"),
            out.dir.display()
        );
    }
    out.cleanup();
    Ok(())
}
