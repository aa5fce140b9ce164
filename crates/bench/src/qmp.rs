//! `vusb-bench qmp [--iterations N]`: latency of vusb's attach and detach
//! of an emulated USB device on a real QEMU, next to the same QMP exchange
//! done by a minimal client (raw socket, hand-written JSON), in one run.
//!
//! The exchange: `device_add usb-tablet` on `xenusb-0.0` port 1 → reply
//! (attach); `device_del` → reply → `DEVICE_DELETED` (detach). Measured two
//! ways: on a kept connection, and with one connection per command
//! (connect, greeting, `qmp_capabilities`, command), which is how libxl
//! and the `vusb` CLI work. QEMU serves one QMP client at a time, so the
//! two clients alternate in blocks on the same VM. Prints a Markdown table.
//!
//! `--xen-ops` adds the whole Xen devicemodel operation, in process
//! (`ops::usbdev_attach` / `ops::usbdev_detach` of an emulated tablet:
//! domain and controller reads, the controller's lock, the placement
//! transaction writing the journaled record, QMP, the journal set done;
//! detach: journal, QMP, record removed) on a fake host with the real
//! xenstored whose HVM guest 3 has a second real QEMU as its device model,
//! beside the bare exchange with one connection per command on that QEMU.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use vusb_core::devicemodel::{DmConn, DmDevice, EmulatedKind, Removal, resolve_controller};
use vusb_testsupport::qemu::QemuVm;

const TIMEOUT: Duration = Duration::from_secs(10);
const ID: &str = "xenusb-0-1-tablet";
const ADD: &str =
    r#""arguments":{"id":"xenusb-0-1-tablet","driver":"usb-tablet","bus":"xenusb-0.0","port":"1"}"#;
const DEL: &str = r#""arguments":{"id":"xenusb-0-1-tablet"}"#;

/// A minimal QMP client: no parsing beyond substring checks.
struct Raw {
    r: BufReader<UnixStream>,
    w: UnixStream,
    n: u64,
}

impl Raw {
    fn connect(path: &Path) -> anyhow::Result<Raw> {
        let w = UnixStream::connect(path)?;
        let mut raw = Raw {
            r: BufReader::new(w.try_clone()?),
            w,
            n: 0,
        };
        raw.line()?; // greeting
        raw.cmd("\"execute\":\"qmp_capabilities\"")?;
        Ok(raw)
    }
    fn line(&mut self) -> anyhow::Result<String> {
        let mut s = String::new();
        if self.r.read_line(&mut s)? == 0 {
            bail!("QEMU closed the socket");
        }
        Ok(s)
    }
    fn cmd(&mut self, body: &str) -> anyhow::Result<()> {
        self.n += 1;
        writeln!(self.w, "{{{body},\"id\":{}}}", self.n)?;
        loop {
            let l = self.line()?;
            if l.starts_with("{\"return\"") {
                return Ok(());
            }
            if l.starts_with("{\"error\"") {
                bail!("QEMU: {l}");
            }
        }
    }
    fn wait_deleted(&mut self) -> anyhow::Result<()> {
        loop {
            let l = self.line()?;
            if l.contains("DEVICE_DELETED") && l.contains(ID) {
                return Ok(());
            }
        }
    }
    fn attach(&mut self) -> anyhow::Result<()> {
        self.cmd(&format!("\"execute\":\"device_add\",{ADD}"))
    }
    fn detach(&mut self) -> anyhow::Result<()> {
        self.cmd(&format!("\"execute\":\"device_del\",{DEL}"))?;
        self.wait_deleted()
    }
}

fn vusb_attach(c: &mut DmConn) -> anyhow::Result<()> {
    c.add_device(0, 1, &DmDevice::Emulated(EmulatedKind::Tablet))?;
    Ok(())
}

fn vusb_detach(c: &mut DmConn) -> anyhow::Result<()> {
    match c.remove_device(ID, Duration::from_secs(2))? {
        Removal::Removed => Ok(()),
        other => bail!("removal outcome {other:?}"),
    }
}

#[derive(Default)]
struct Samples {
    raw_add: Vec<f64>,
    raw_del: Vec<f64>,
    vusb_add: Vec<f64>,
    vusb_del: Vec<f64>,
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

fn kept_connection(
    path: &Path,
    iterations: usize,
    block: usize,
    s: &mut Samples,
) -> anyhow::Result<()> {
    let mut done = 0;
    while done < iterations {
        let n = block.min(iterations - done);
        {
            let mut raw = Raw::connect(path)?;
            for _ in 0..n {
                let t = Instant::now();
                raw.attach()?;
                s.raw_add.push(ms(t));
                let t = Instant::now();
                raw.detach()?;
                s.raw_del.push(ms(t));
            }
        }
        {
            let mut c = DmConn::connect(path, TIMEOUT)?;
            for _ in 0..n {
                let t = Instant::now();
                vusb_attach(&mut c)?;
                s.vusb_add.push(ms(t));
                let t = Instant::now();
                vusb_detach(&mut c)?;
                s.vusb_del.push(ms(t));
            }
        }
        done += n;
    }
    Ok(())
}

fn per_command(path: &Path, iterations: usize, s: &mut Samples) -> anyhow::Result<()> {
    for _ in 0..iterations {
        let t = Instant::now();
        Raw::connect(path)?.attach()?;
        s.raw_add.push(ms(t));
        let t = Instant::now();
        Raw::connect(path)?.detach()?;
        s.raw_del.push(ms(t));
        let t = Instant::now();
        vusb_attach(&mut DmConn::connect(path, TIMEOUT)?)?;
        s.vusb_add.push(ms(t));
        let t = Instant::now();
        vusb_detach(&mut DmConn::connect(path, TIMEOUT)?)?;
        s.vusb_del.push(ms(t));
    }
    Ok(())
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v.get(i).copied().unwrap_or(f64::NAN)
}

fn row(what: &str, raw: &mut [f64], vusb: &mut [f64]) -> String {
    let (rm, vm) = (pct(raw, 0.5), pct(vusb, 0.5));
    format!(
        "| {what} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:+.3} |",
        rm,
        pct(raw, 0.9),
        vm,
        pct(vusb, 0.9),
        pct(vusb, 0.99),
        vm - rm
    )
}

/// Whole `vusb --qmp` processes (start, connect, QOM inventory, command,
/// exit): comparable with xl's whole-process times.
fn cli_processes(bin: &Path, sock: &Path, n: usize) -> anyhow::Result<()> {
    let run = |args: &[&str]| -> anyhow::Result<f64> {
        let t = Instant::now();
        let out = std::process::Command::new(bin)
            .arg("--qmp")
            .arg(sock)
            .args(args)
            .output()?;
        let took = ms(t);
        if !out.status.success() {
            bail!("vusb {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(took)
    };
    let (mut add, mut del, mut list) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..n {
        add.push(run(&[
            "usbdev-attach",
            "vm",
            "type=tablet",
            "controller=0",
            "port=1",
        ])?);
        list.push(run(&["usb-list", "vm"])?);
        del.push(run(&["usbdev-detach", "vm", "0", "1"])?);
    }
    println!("\nWhole `vusb --qmp` processes, {n} runs each (ms):\n");
    println!("| command | median | p90 | p99 |");
    println!("|---|---|---|---|");
    for (what, v) in [
        ("usbdev-attach vm type=tablet controller=0 port=1", &mut add),
        ("usb-list vm", &mut list),
        ("usbdev-detach vm 0 1 (waits for DEVICE_DELETED)", &mut del),
    ] {
        println!(
            "| {what} | {:.2} | {:.2} | {:.2} |",
            pct(v, 0.5),
            pct(v, 0.9),
            pct(v, 0.99)
        );
    }
    Ok(())
}

/// The real `xl` on the xl-peer fake host (domain 3 HVM, fake QMP server
/// that answers at once and sends no events): whole-process times of
/// `usbdev-attach 3 hostbus=1 hostaddr=3` and `usbdev-detach 3 0 1`, and
/// vusb's attach on the same host. vusb's detach is not timed there: it
/// waits for `DEVICE_DELETED`, which the fake never sends.
fn xl_on_fake_host(vusb: Option<&Path>, n: usize) -> anyhow::Result<()> {
    use vusb_sim::layout::{DomainKind, GuestSpec};
    use vusb_testsupport::fakehost::{FakeHost, FakeHostConfig};
    use vusb_testsupport::xlpeer;

    if !xlpeer::xl_available() {
        bail!("the real xl (xen-utils-4.17) is not installed");
    }
    let mut cfg = FakeHostConfig::default();
    cfg.domains.push(GuestSpec::new(3, DomainKind::Hvm));
    let host = FakeHost::start(&cfg)?;
    let xl = |args: &[&str]| -> anyhow::Result<f64> {
        let o = xlpeer::run(&host, host.xl_command(args)?)?;
        if o.rc != 0 {
            bail!("xl {args:?}: rc {} {}", o.rc, o.stderr);
        }
        Ok(o.wall.as_secs_f64() * 1000.0)
    };
    xl(&["usbctrl-attach", "3"])?;
    let (mut xl_add, mut xl_del, mut v_add) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..n {
        xl_add.push(xl(&["usbdev-attach", "3", "hostbus=1", "hostaddr=3"])?);
        xl_del.push(xl(&["usbdev-detach", "3", "0", "1"])?);
    }
    if let Some(bin) = vusb {
        // A host of its own: xl and vusb are not mixed on one guest here.
        let vhost = FakeHost::start(&cfg)?;
        let v = |args: &[&str]| -> anyhow::Result<f64> {
            let o = xlpeer::run(&vhost, vhost.vusb_command(bin, args)?)?;
            if o.rc != 0 {
                bail!("vusb {args:?}: rc {} {}", o.rc, o.stderr);
            }
            Ok(o.wall.as_secs_f64() * 1000.0)
        };
        v(&["usbctrl-attach", "3"])?;
        // Each detach waits DEVICE_REMOVE_TIMEOUT for an event the fake
        // never sends, so only a few rounds.
        for _ in 0..n.min(10) {
            v_add.push(v(&["usbdev-attach", "3", "hostbus=1", "hostaddr=3"])?);
            v(&["usbdev-detach", "3", "0", "1"])?;
        }
    }
    println!(
        "\nxl-peer fake host (real xl 4.17 and xenstored, fake QMP server), whole processes (ms):\n"
    );
    println!("| command | runs | median | p90 |");
    println!("|---|---:|---:|---:|");
    let mut rows = vec![
        ("xl usbdev-attach 3 hostbus=1 hostaddr=3", xl_add),
        ("xl usbdev-detach 3 0 1", xl_del),
    ];
    if !v_add.is_empty() {
        rows.push(("vusb usbdev-attach 3 hostbus=1 hostaddr=3", v_add));
    }
    for (what, mut v) in rows {
        let runs = v.len();
        println!(
            "| {what} | {runs} | {:.2} | {:.2} |",
            pct(&mut v, 0.5),
            pct(&mut v, 0.9)
        );
    }
    Ok(())
}

/// The Xen devicemodel operation in process against the bare exchange
/// (see the module doc).
fn xen_ops(n: usize) -> anyhow::Result<()> {
    use vusb_core::ops::OpEnv;
    use vusb_core::ops::usbdev_attach::usbdev_attach;
    use vusb_core::ops::usbdev_detach::{DetachTarget, usbdev_detach};
    use vusb_sim::layout::{DomainKind, GuestSpec};
    use vusb_testsupport::fakehost::{FakeHost, FakeHostConfig};

    let vm = QemuVm::launch()
        .map_err(anyhow::Error::msg)
        .context("starting QEMU")?;
    let mut cfg = FakeHostConfig::default();
    cfg.domains.push(GuestSpec::new(3, DomainKind::Hvm));
    let host = FakeHost::start(&cfg)?;
    let paths = host.paths();
    let sock = paths.qmp_dir.join("qmp-libxl-3");
    std::fs::rename(&sock, sock.with_extension("fake"))?;
    std::os::unix::fs::symlink(vm.qmp_path(), &sock)?;
    let xs = host.client()?;
    let env = OpEnv::new(&xs, &paths);
    let dom = vusb_core::domain::resolve(&xs, "3")?;
    vusb_core::ops::usbctrl_attach::usbctrl_attach(&env, &dom, &Default::default())?;
    let spec = vusb_xlcfg::parse_usbdev_args(&["type=tablet", "controller=0", "port=1"])?;
    let target = DetachTarget::Port { ctrl: 0, port: 1 };
    let path = vm.qmp_path();
    let mut s = Samples::default();
    for i in 0..n + 5 {
        let t = Instant::now();
        Raw::connect(path)?.attach()?;
        let raw_add = ms(t);
        let t = Instant::now();
        Raw::connect(path)?.detach()?;
        let raw_del = ms(t);
        let t = Instant::now();
        usbdev_attach(&env, &dom, &spec)?;
        let v_add = ms(t);
        let t = Instant::now();
        usbdev_detach(&env, &dom, &target)?;
        let v_del = ms(t);
        if i >= 5 {
            // The first 5 rounds warm up.
            s.raw_add.push(raw_add);
            s.raw_del.push(raw_del);
            s.vusb_add.push(v_add);
            s.vusb_del.push(v_del);
        }
    }
    // One xenstore round trip on this host, for reading the difference.
    let mut rt = Vec::new();
    for _ in 0..200 {
        let t = Instant::now();
        vusb_xenstore::Xenstore::read(&xs, vusb_xenstore::TxId::NONE, "/local/domain/3/name")?;
        rt.push(ms(t));
    }
    // Put the fake's socket back so the host stops cleanly.
    std::fs::remove_file(&sock)?;
    std::fs::rename(sock.with_extension("fake"), &sock)?;
    println!(
        "\nXen devicemodel operation in process (ops::usbdev_attach/usbdev_detach type=tablet controller=0 port=1: locks, journal, placement transaction on the real xenstored, QMP to QEMU 7.2) against the bare exchange with one connection per command; {n} rounds (ms):\n"
    );
    println!(
        "| exchange | bare median | bare p90 | vusb operation median | vusb p90 | vusb p99 | vusb − bare (median) |"
    );
    println!("|---|---|---|---|---|---|---|");
    println!(
        "{}",
        row(
            "attach (connect, greeting, capabilities, device_add)",
            &mut s.raw_add,
            &mut s.vusb_add
        )
    );
    println!(
        "{}",
        row(
            "detach (… device_del, DEVICE_DELETED)",
            &mut s.raw_del,
            &mut s.vusb_del
        )
    );
    println!(
        "\nOne xenstore request (XS_READ) to that xenstored, 200 runs: median {:.3} ms, p90 {:.3} ms",
        pct(&mut rt, 0.5),
        pct(&mut rt, 0.9)
    );
    Ok(())
}

/// Run the benchmark.
pub fn run(args: &[String]) -> anyhow::Result<()> {
    let mut iterations = 100usize;
    let mut vusb_bin: Option<std::path::PathBuf> = None;
    let mut xl = false;
    let mut ops = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--iterations" | "-n" => {
                iterations = it.next().context("--iterations needs a value")?.parse()?;
            }
            "--vusb" => vusb_bin = Some(it.next().context("--vusb needs a path")?.into()),
            "--xl" => xl = true,
            "--xen-ops" => ops = true,
            other => bail!(
                "unknown argument {other:?} (usage: vusb-bench qmp [--iterations N] [--vusb BIN] [--xl] [--xen-ops])"
            ),
        }
    }
    let vm = QemuVm::launch()
        .map_err(anyhow::Error::msg)
        .context("starting QEMU")?;
    let path = vm.qmp_path();
    DmConn::connect(path, TIMEOUT)?
        .add_controller(0, &resolve_controller(3, 4, Some("qemu-xhci"))?)?;
    // Warm-up, not measured.
    let mut warm = Samples::default();
    kept_connection(path, 10, 5, &mut warm)?;

    let mut kept = Samples::default();
    kept_connection(path, iterations, 10, &mut kept)?;
    let mut fresh = Samples::default();
    per_command(path, iterations.div_ceil(2), &mut fresh)?;

    println!(
        "QEMU 7.2 (`-machine pc,accel=tcg -S`), usb-tablet on qemu-xhci; times in ms; {iterations} iterations (kept connection), {} (per-command connection)\n",
        iterations.div_ceil(2)
    );
    println!(
        "| exchange | minimal client median | minimal p90 | vusb median | vusb p90 | vusb p99 | vusb − minimal (median) |"
    );
    println!("|---|---|---|---|---|---|---|");
    println!(
        "{}",
        row(
            "attach: device_add → reply (kept connection)",
            &mut kept.raw_add,
            &mut kept.vusb_add
        )
    );
    println!(
        "{}",
        row(
            "detach: device_del → reply → DEVICE_DELETED (kept connection)",
            &mut kept.raw_del,
            &mut kept.vusb_del
        )
    );
    println!(
        "{}",
        row(
            "attach, connection per command (connect, greeting, capabilities, device_add)",
            &mut fresh.raw_add,
            &mut fresh.vusb_add
        )
    );
    println!(
        "{}",
        row(
            "detach, connection per command (… device_del, DEVICE_DELETED)",
            &mut fresh.raw_del,
            &mut fresh.vusb_del
        )
    );
    if let Some(bin) = &vusb_bin {
        cli_processes(bin, path, iterations.div_ceil(4))?;
    }
    if xl {
        xl_on_fake_host(vusb_bin.as_deref(), iterations.div_ceil(4))?;
    }
    if ops {
        xen_ops(iterations.div_ceil(2))?;
    }
    Ok(())
}
