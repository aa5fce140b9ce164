//! `vusb sim`: try vusb on a machine without Xen.
//!
//! - `vusb sim` (or `vusb sim run`): start the built-in simulated host
//!   ([`vusb_sim::host`]) in a temporary directory, run a short
//!   attach / list / detach session with this very binary — each command
//!   printed as a user would type it, then its output — with what the
//!   simulated drivers and the sysfs emulation did in between, and stop.
//! - `vusb sim start DIR`: run the simulated host in the background
//!   (`DIR/sim.pid`, log in `DIR/sim.log`) and print the `export` lines
//!   that point other vusb commands at it (also in `DIR/env.sh`).
//! - `vusb sim stop DIR`: stop it.
//! - `vusb sim unplug DIR BUSID`, `vusb sim plug DIR BUSID [--bus N]`:
//!   hot-plug on the simulated host's sysfs (`vusb_sim::hotplug`; a re-plug
//!   gets a new address, `--bus` renumbers), announced with the kernel's
//!   uevents to a daemon listening on `DIR/uevent.sock`
//!   (`vusb daemon --uevents unix:DIR/uevent.sock`). Prints the busid.
//!
//! Exit status: 0 when the simulation ran (even if a vusb command in the
//! session failed: its error is part of what is shown), 1 when the host
//! could not be started or stopped, 2 on a usage error.

use std::ffi::OsString;
use std::fs;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use vusb_sim::host::{SimConfig, SimHost};

use crate::context::Context;
use crate::output::out;

const USAGE: &str = "usage: vusb sim [run] | vusb sim start DIR | vusb sim stop DIR\n       vusb sim unplug DIR BUSID | vusb sim plug DIR BUSID [--bus N]";

/// The session `vusb sim` runs: guest1 is PV (pv controller, driver
/// rebinding to usbback), guest2 is PV with a device model (qusb), guest3
/// is HVM (devicemodel controller through QMP).
pub const SESSION: &[&str] = &[
    "usb-assignable-list",
    "usb-list guest1",
    "usbctrl-attach guest1 type=pv version=2 ports=4",
    "usbdev-attach guest1 hostbus=1 hostaddr=3",
    "usbctrl-attach guest2 type=qusb version=2 ports=2",
    "usbdev-attach guest2 busid=1-1",
    "usbctrl-attach guest3",
    "usbdev-attach guest3 hostbus=1 hostaddr=4",
    "usb-list guest1",
    "usb-list guest2",
    "usb-list guest3",
    "usbdev-attach guest3 hostbus=1 hostaddr=3",
    "usbdev-detach guest1 0 1",
    "usbdev-detach guest2 busid=1-1",
    "usbdev-detach guest3 0 1",
    "usbctrl-detach guest1 0",
    "usbctrl-detach guest2 0",
    "usbctrl-detach guest3 0",
    "usb-list guest1",
];

/// Run the command.
pub fn run(ctx: &Context, args: &[OsString]) -> anyhow::Result<ExitCode> {
    let word = |i: usize| args.get(i).and_then(|a| a.to_str());
    match (args.len(), word(0)) {
        (0, _) | (1, Some("run")) => session(ctx),
        (2, Some("start")) => start(Path::new(&args[1])),
        (2, Some("stop")) => stop(Path::new(&args[1])),
        (2, Some("serve")) => serve(Path::new(&args[1])),
        (3, Some("unplug")) => hotplug(Path::new(&args[1]), word(2), None, false),
        (3, Some("plug")) => hotplug(Path::new(&args[1]), word(2), None, true),
        (5, Some("plug")) if word(3) == Some("--bus") => {
            match word(4).and_then(|n| n.parse::<u32>().ok()) {
                Some(b) if (1..=255).contains(&b) => {
                    hotplug(Path::new(&args[1]), word(2), Some(b), true)
                }
                _ => bail!("--bus needs a bus number from 1 to 255"),
            }
        }
        _ => {
            eprintln!("{USAGE}");
            Ok(ExitCode::from(2))
        }
    }
}

/// `sim unplug` / `sim plug`: change the fixture, then tell a daemon.
fn hotplug(
    dir: &Path,
    busid: Option<&str>,
    bus: Option<u32>,
    plug: bool,
) -> anyhow::Result<ExitCode> {
    let Some(busid) = busid else {
        bail!("the busid must be text, e.g. 1-1");
    };
    let sysfs = vusb_core::HostPaths::under(dir).sysfs_root;
    let (now, action) = if plug {
        let b = vusb_sim::hotplug::plug(&sysfs, busid, bus)
            .with_context(|| format!("plugging {busid} back in"))?;
        (b, "add")
    } else {
        vusb_sim::hotplug::unplug(&sysfs, busid).with_context(|| format!("unplugging {busid}"))?;
        (busid.to_owned(), "remove")
    };
    let sock = dir.join("uevent.sock");
    match vusb_sim::hotplug::announce(&sock, action, &now) {
        Ok(true) => {}
        Ok(false) => log::info!("no daemon listens on {}", sock.display()),
        Err(e) => log::warn!("uevent to {}: {e}", sock.display()),
    }
    out(&format!("{now}\n"));
    Ok(ExitCode::SUCCESS)
}

fn session(ctx: &Context) -> anyhow::Result<ExitCode> {
    let dir = std::env::temp_dir().join(format!("vusb-sim-{}", std::process::id()));
    let result = session_in(ctx, &dir);
    if let Err(e) = fs::remove_dir_all(&dir) {
        log::warn!("removing {}: {e}", dir.display());
    }
    result
}

fn session_in(ctx: &Context, dir: &Path) -> anyhow::Result<ExitCode> {
    let host = SimHost::start(dir, &SimConfig::default()).context("starting the simulated host")?;
    let exe = std::env::current_exe().context("locating the vusb binary")?;
    out(&format!(
        "Simulated Xen host in {} (no hypervisor: xenstore, usbback/usbfront and sysfs are simulated).\n\
         Guests: guest1 (domid 1, PV), guest2 (domid 2, PV with a device model offering qusb),\n\
         guest3 (domid 3, HVM; its device model is a fake QMP server).\n\
         Devices: 1-1 (bus 1 addr 2, USB stick), 1-2 (bus 1 addr 3, wireless receiver, 3 interfaces),\n\
         1-3 and 1-4 (bus 1 addr 4 and 5, generic storage).\n\n",
        host.root().display()
    ));
    let mut seen_drivers = 0;
    let mut seen_sysfs = 0;
    let mut seen_qmp = 0;
    for line in SESSION {
        out(&format!("$ vusb {line}\n"));
        let mut cmd = Command::new(&exe);
        for _ in 0..ctx.verbosity {
            cmd.arg("-v");
        }
        cmd.args(line.split_whitespace())
            .envs(host.env())
            .stdin(Stdio::null());
        let o = cmd
            .output()
            .with_context(|| format!("running vusb {line}"))?;
        out(&String::from_utf8_lossy(&o.stdout));
        out(&String::from_utf8_lossy(&o.stderr));
        if !o.status.success() {
            out(&format!(
                "(exit status {})\n",
                o.status.code().unwrap_or(-1)
            ));
        }
        wait_quiet(&host);
        let drv = host.drivers_log();
        for l in drv.iter().skip(seen_drivers) {
            out(&format!("  [xenbus] {l}\n"));
        }
        seen_drivers = drv.len();
        let sys = host.sysfs_log();
        for l in sys.lines().skip(seen_sysfs) {
            out(&format!("  [sysfs] {l}\n"));
        }
        seen_sysfs = sys.lines().count();
        let qmp = host.qmp_log();
        for l in qmp.lines().skip(seen_qmp) {
            out(&format!("  [qmp] domain {l}\n"));
        }
        seen_qmp = qmp.lines().count();
        out("\n");
    }
    out("Simulation finished; the simulated host is gone.\n");
    Ok(ExitCode::SUCCESS)
}

/// Wait until the simulated drivers and sysfs have been quiet for 150 ms.
fn wait_quiet(host: &SimHost) {
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut last = (host.drivers_log().len(), host.sysfs_log().len());
    let mut since = Instant::now();
    while Instant::now() < deadline && since.elapsed() < Duration::from_millis(150) {
        std::thread::sleep(Duration::from_millis(10));
        let now = (host.drivers_log().len(), host.sysfs_log().len());
        if now != last {
            last = now;
            since = Instant::now();
        }
    }
}

fn pid_file(dir: &Path) -> PathBuf {
    dir.join("sim.pid")
}

fn running_pid(dir: &Path) -> Option<u32> {
    // Bounded: DIR is the user's; its sim.pid must be a small regular file.
    let pid = vusb_core::small_file::read(&pid_file(dir), 64).ok()?;
    let pid: u32 = String::from_utf8_lossy(&pid).trim().parse().ok()?;
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    String::from_utf8_lossy(&cmdline)
        .contains("sim")
        .then_some(pid)
}

fn start(dir: &Path) -> anyhow::Result<ExitCode> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let dir = fs::canonicalize(dir).with_context(|| format!("resolving {}", dir.display()))?;
    if let Some(pid) = running_pid(&dir) {
        bail!(
            "a simulated host already runs in {} (pid {pid})",
            dir.display()
        );
    }
    for f in ["env.sh", "sim.pid", "sim.stop"] {
        let _ = fs::remove_file(dir.join(f));
    }
    let log = fs::File::create(dir.join("sim.log")).context("creating sim.log")?;
    let exe = std::env::current_exe().context("locating the vusb binary")?;
    let mut child = Command::new(exe)
        .args(["sim", "serve"])
        .arg(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .process_group(0)
        .spawn()
        .context("starting the simulator process")?;
    let deadline = Instant::now() + Duration::from_secs(10);
    let env = dir.join("env.sh");
    while !env.exists() {
        if let Some(status) = child.try_wait().context("waiting for the simulator")? {
            let log = fs::read_to_string(dir.join("sim.log")).unwrap_or_default();
            bail!("the simulator exited ({status}): {}", log.trim());
        }
        if Instant::now() > deadline {
            bail!(
                "the simulator did not come up within 10 s (see {}/sim.log)",
                dir.display()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    out(&fs::read_to_string(&env).context("reading env.sh")?);
    Ok(ExitCode::SUCCESS)
}

/// The background process of `sim start`: serve until `DIR/sim.stop`
/// appears.
fn serve(dir: &Path) -> anyhow::Result<ExitCode> {
    let host = SimHost::start(dir, &SimConfig::default()).context("starting the simulated host")?;
    let mut env = String::new();
    for (k, v) in host.env() {
        env.push_str(&format!("export {k}={v}\n"));
    }
    fs::write(pid_file(dir), format!("{}\n", std::process::id())).context("writing sim.pid")?;
    let tmp = dir.join("env.sh.tmp");
    fs::write(&tmp, &env).context("writing env.sh")?;
    fs::rename(&tmp, dir.join("env.sh")).context("writing env.sh")?;
    let stop = dir.join("sim.stop");
    while !stop.exists() {
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(host);
    for f in ["sim.pid", "sim.stop", "env.sh"] {
        let _ = fs::remove_file(dir.join(f));
    }
    Ok(ExitCode::SUCCESS)
}

fn stop(dir: &Path) -> anyhow::Result<ExitCode> {
    let Some(pid) = running_pid(dir) else {
        let _ = fs::remove_file(pid_file(dir));
        bail!("no simulated host runs in {}", dir.display());
    };
    fs::write(dir.join("sim.stop"), "").context("writing sim.stop")?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while running_pid(dir).is_some() {
        if Instant::now() > deadline {
            bail!("the simulator (pid {pid}) did not stop within 10 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    out(&format!(
        "stopped the simulated host in {} (pid {pid})\n",
        dir.display()
    ));
    Ok(ExitCode::SUCCESS)
}
