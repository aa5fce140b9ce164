//! The real Xen test bed: Xen 4.17 under QEMU (TCG), Debian's 6.1 kernel
//! as dom0 and as PV/HVM guests, with the freshly built `vusb` run inside
//! dom0 against the real hypervisor, dom0's kernel (sysfs, drivers,
//! bind/unbind), the guests' own USB drivers (`xen-hcd`, ehci/uhci/xhci)
//! and QEMU's Xen USB backend and device model.
//!
//! The scripts live in `crates/testsupport/xenbed/` (`build.sh`, `boot.sh`,
//! `dom0-init`, `domu-init`, `lib.sh`); `docs/testing-real-xen.md` says
//! what is real, how to run one scenario by hand and how to debug.
//!
//! One [`Bed`] is one boot: the test gives the host's USB devices (outer
//! QEMU arguments, e.g. [`Bed::stick`]) and a bash script that dom0 runs
//! with `lib.sh`'s helpers; the script reports `RESULT` lines that
//! [`Outcome::assert_passed`] checks. A dom0-only boot (no guest) is just
//! a script that creates none:
//!
//! ```no_run
//! # use vusb_testsupport::xenbed;
//! let Some(img) = xenbed::image_or_skip("my_test") else { return };
//! let mut bed = xenbed::Bed::new("my_test", &img).unwrap();
//! bed.qemu_args(["-device", "usb-kbd,bus=xhci.0,port=3,id=kbd"]);
//! let out = bed.run("check kbd-bound driver_is \"$(busid_of 0627:0001)\" usbhid").unwrap();
//! out.assert_passed(&["kbd-bound"]);
//! ```
//!
//! While dom0 runs, the harness serves its requests for the outer QEMU's
//! QMP (`host_qmp` in `lib.sh`: unplug/re-plug the host's devices), and
//! fails the boot when it stalls (no progress for [`Bed::stall`]) or
//! overruns ([`Bed::timeout`]), naming the last step and the console log.
//!
//! Policy ([`image_or_skip`]): a missing prerequisite (not root, no QEMU,
//! no image and none can be built) fails under `CI=true` and skips with a
//! message elsewhere.

use std::fs;
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::xenstored::require_or_skip;

/// The CPU model that lets Xen run HVM guests under TCG (SVM emulated).
pub const HVM_CPU: &str = "qemu64,+svm,+npt,+sse4.1,+sse4.2,+popcnt,+ssse3";

/// The bed's scripts shipped with this crate.
pub fn scripts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("xenbed")
}

/// Where the image is built and cached: `XENBED_IMG`, else
/// `/var/cache/vusb-xenbed`.
pub fn image_dir() -> PathBuf {
    std::env::var_os("XENBED_IMG")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/vusb-xenbed"))
}

/// A built image: the hypervisor, kernel, initramfs images.
#[derive(Debug, Clone)]
pub struct Image {
    /// The image directory (`build.sh`'s OUT).
    pub dir: PathBuf,
    /// The kernel version booted as dom0 and guests.
    pub kernel_version: String,
}

fn have(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
}

/// Check the prerequisites and build (or reuse) the image.
pub fn prepare() -> Result<Image, String> {
    // The effective uid, from /proc.
    let status = fs::read_to_string("/proc/self/status").map_err(|e| e.to_string())?;
    let root = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(2))
        == Some("0");
    if !root {
        return Err("the bed needs root (apt-get, 9p export of /)".into());
    }
    if !Path::new("/usr/bin/apt-get").exists() && !have("qemu-system-x86_64") {
        return Err("no qemu-system-x86_64 and no apt-get to install it".into());
    }
    let dir = image_dir();
    let log = std::env::temp_dir().join("vusb-xenbed-build.log");
    let out = fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
    let err = out.try_clone().map_err(|e| e.to_string())?;
    let started = Instant::now();
    let status = Command::new(scripts_dir().join("build.sh"))
        .arg(&dir)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .status()
        .map_err(|e| format!("build.sh: {e}"))?;
    if !status.success() {
        let tail = fs::read_to_string(&log).unwrap_or_default();
        let tail: Vec<&str> = tail.lines().rev().take(15).collect();
        return Err(format!(
            "build.sh {} failed ({status}); log {}:\n{}",
            dir.display(),
            log.display(),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        ));
    }
    if started.elapsed() > Duration::from_secs(5) {
        eprintln!(
            "xenbed: image built in {} in {:.0} s",
            dir.display(),
            started.elapsed().as_secs_f64()
        );
    }
    if !have("qemu-system-x86_64") {
        return Err("qemu-system-x86_64 missing after build.sh".into());
    }
    let kernel_version = fs::read_to_string(dir.join("kernel-version"))
        .map_err(|e| format!("{}/kernel-version: {e}", dir.display()))?
        .trim()
        .to_owned();
    Ok(Image {
        dir,
        kernel_version,
    })
}

/// [`prepare`] under the CI policy: fails under `CI=true`, else prints
/// `SKIP: ...` and returns `None`.
pub fn image_or_skip(test: &str) -> Option<Image> {
    require_or_skip(&format!("{test}: real Xen test bed"), prepare())
}

/// One boot of the bed.
#[derive(Debug)]
pub struct Bed {
    name: String,
    dir: PathBuf,
    img: Image,
    qemu_args: Vec<String>,
    cpu: Option<String>,
    timeout: Duration,
    stall: Duration,
}

impl Bed {
    /// A fresh bed directory for test `name` (under the system temporary
    /// directory, `vusb-xenbed/<name>-<pid>`), with `lib.sh`.
    pub fn new(name: &str, img: &Image) -> io::Result<Bed> {
        let dir = std::env::temp_dir()
            .join("vusb-xenbed")
            .join(format!("{name}-{}", std::process::id()));
        if dir.exists() {
            fs::remove_dir_all(&dir)?;
        }
        fs::create_dir_all(&dir)?;
        fs::copy(scripts_dir().join("lib.sh"), dir.join("lib.sh"))?;
        let secs = |var: &str, default: u64| {
            std::env::var(var)
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(default)
        };
        Ok(Bed {
            name: name.to_owned(),
            dir,
            img: img.clone(),
            qemu_args: Vec::new(),
            cpu: None,
            timeout: Duration::from_secs(secs("XENBED_TIMEOUT", 1800)),
            stall: Duration::from_secs(secs("XENBED_STALL", 420)),
        })
    }

    /// The bed directory (dom0's `/xenbed`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Run HVM guests: the outer CPU gets SVM ([`HVM_CPU`], or
    /// `XENBED_HVM_CPU` when set, for experiments; Debian's Xen has no
    /// shadow paging, so `+npt` must stay).
    pub fn hvm(&mut self) -> &mut Self {
        let cpu = std::env::var("XENBED_HVM_CPU").unwrap_or_else(|_| HVM_CPU.to_owned());
        self.cpu = Some(cpu);
        self
    }

    /// The whole boot may take at most `t` (default 1800 s, `XENBED_TIMEOUT`).
    pub fn timeout(&mut self, t: Duration) -> &mut Self {
        self.timeout = t;
        self
    }

    /// Fail when dom0 reports no progress for `t` (default 420 s,
    /// `XENBED_STALL`; longer than any single wait in the scenarios).
    pub fn stall(&mut self, t: Duration) -> &mut Self {
        self.stall = t;
        self
    }

    /// Append outer QEMU arguments (the host's devices).
    pub fn qemu_args<I, S>(&mut self, args: I) -> &mut Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.qemu_args.extend(args.into_iter().map(Into::into));
        self
    }

    /// A disk image `<id>.img` of 16 MiB starting with `marker`, as the
    /// outer QEMU's block node `id` (`-blockdev`, so it outlives an unplug
    /// of its device and can be plugged in again). No device yet: see
    /// [`Bed::stick`], or plug it from dom0 with
    /// [`Bed::stick_device_add`]'s command.
    pub fn disk(&mut self, id: &str, marker: &str) -> io::Result<&mut Self> {
        let img = self.dir.join(format!("{id}.img"));
        let mut f = fs::File::create(&img)?;
        f.write_all(marker.as_bytes())?;
        f.set_len(16 << 20)?;
        let node = format!("driver=file,node-name={id},filename={}", img.display());
        Ok(self.qemu_args(["-blockdev".to_owned(), node]))
    }

    /// A USB stick plugged at boot on outer xHCI port `port`: [`Bed::disk`]
    /// `id` as a `usb-storage` device with QOM id `id` and USB serial
    /// `serial`. dom0 can unplug it (`unplug ID` in `lib.sh`) and plug it
    /// again with [`Bed::stick_device_add`]'s command ([`Bed::plug_request`]).
    pub fn stick(
        &mut self,
        id: &str,
        serial: &str,
        marker: &str,
        port: u32,
    ) -> io::Result<&mut Self> {
        self.disk(id, marker)?;
        let dev = Self::stick_device(id, serial, port);
        Ok(self.qemu_args(["-device".to_owned(), dev]))
    }

    fn stick_device(id: &str, serial: &str, port: u32) -> String {
        format!("usb-storage,bus=xhci.0,port={port},drive={id},id={id},serial={serial}")
    }

    /// Write `<id>.add`: [`Bed::stick_device_add`]'s command for stick
    /// `id`, which dom0 sends to plug the stick (again) with `host_qmp
    /// "$(cat $BED/<id>.add)"`.
    pub fn plug_request(&mut self, id: &str, serial: &str, port: u32) -> io::Result<&mut Self> {
        self.file(
            &format!("{id}.add"),
            &Self::stick_device_add(id, serial, port),
        )
    }

    /// The QMP `device_add` that plugs stick `id` in again after an unplug.
    pub fn stick_device_add(id: &str, serial: &str, port: u32) -> String {
        format!(
            "{{\"execute\":\"device_add\",\"arguments\":{{\"driver\":\"usb-storage\",\"bus\":\"xhci.0\",\"port\":\"{port}\",\"drive\":\"{id}\",\"id\":\"{id}\",\"serial\":\"{serial}\"}}}}"
        )
    }

    /// Put the `vusb` binary at `/xenbed/vusb` (dom0's `$VUSB`).
    pub fn vusb(&mut self, binary: &Path) -> io::Result<&mut Self> {
        fs::copy(binary, self.dir.join("vusb"))?;
        Ok(self)
    }

    /// Write a file into the bed directory.
    pub fn file(&mut self, name: &str, contents: &str) -> io::Result<&mut Self> {
        fs::write(self.dir.join(name), contents)?;
        Ok(self)
    }

    /// Boot, run `script` in dom0 (after `lib.sh`), serve its QMP requests,
    /// and return what it reported once dom0 powered off (or the boot was
    /// stopped: stall or timeout, see [`Outcome::stopped`]).
    pub fn run(self, script: &str) -> io::Result<Outcome> {
        let run = format!(
            "source /xenbed/lib.sh\nstep \"{} starts\"\n{script}\nstep done\n",
            self.name
        );
        fs::write(self.dir.join("run.sh"), run)?;
        // A boot that hangs before dom0 reaches the scenario (seen once
        // under TCG: dom0's console stopped at "Switched to clocksource
        // xen") has run nothing of vusb's: it is booted once more, and the
        // hung console is kept as console-hung.log. A boot whose HVM guest
        // triple-faulted (Xen's "Triple fault" line: the outer QEMU's TCG
        // emulation of SVM, see docs/testing-real-xen.md) is booted once
        // more too, its files kept in attempt-1/. Nothing else is retried.
        let before = names(&self.dir)?;
        let mut attempts = 0;
        loop {
            attempts += 1;
            let started = Instant::now();
            let stopped = self.boot_once()?;
            let reached = fs::metadata(self.dir.join("progress")).is_ok_and(|m| m.len() > 0);
            if stopped.is_some() && !reached && attempts < 2 {
                eprintln!(
                    "xenbed {}: dom0 never reached the scenario ({}); booting once more",
                    self.name,
                    stopped.as_deref().unwrap_or("")
                );
                let _ = fs::rename(
                    self.dir.join("console.log"),
                    self.dir.join("console-hung.log"),
                );
                continue;
            }
            if attempts < 2
                && let Some(fault) = guest_fault(&self.dir)
            {
                eprintln!(
                    "xenbed {}: {fault}; booting once more (this attempt's files in attempt-1/)",
                    self.name
                );
                set_aside(&self.dir, &before, "attempt-1")?;
                continue;
            }
            return Outcome::read(self.name, self.dir, started.elapsed(), stopped);
        }
    }

    /// One boot of the bed: returns why the harness stopped it, if it did.
    fn boot_once(&self) -> io::Result<Option<String>> {
        let log = fs::File::create(self.dir.join("boot.log"))?;
        let mut cmd = Command::new(scripts_dir().join("boot.sh"));
        cmd.arg(&self.img.dir)
            .arg(&self.dir)
            .args(&self.qemu_args)
            .env("XENBED_TIMEOUT", (self.timeout.as_secs() + 30).to_string())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0);
        if let Some(cpu) = &self.cpu {
            cmd.env("XENBED_CPU", cpu);
        }
        let started = Instant::now();
        let child = cmd.spawn()?;
        let mut boot = Boot { child, done: false };
        Ok(self.supervise(&mut boot, started))
    }

    /// Wait for the boot to end, serving QMP requests and watching
    /// progress. Returns why it was stopped, if it was.
    fn supervise(&self, boot: &mut Boot, started: Instant) -> Option<String> {
        let progress = self.dir.join("progress");
        let results = self.dir.join("results");
        let size = |p: &Path| fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        let mut last = (size(&progress), size(&results));
        let mut last_change = Instant::now();
        loop {
            match boot.child.try_wait() {
                Ok(Some(_)) | Err(_) => {
                    boot.done = true;
                    return None;
                }
                Ok(None) => {}
            }
            self.serve_qmp();
            let now = (size(&progress), size(&results));
            if now != last {
                last = now;
                last_change = Instant::now();
            }
            let why = if started.elapsed() > self.timeout {
                Some(format!(
                    "the boot took longer than {} s",
                    self.timeout.as_secs()
                ))
            } else if last_change.elapsed() > self.stall {
                Some(format!("no progress for {} s", self.stall.as_secs()))
            } else {
                None
            };
            if let Some(why) = why {
                boot.kill();
                return Some(why);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Answer dom0's `qmp/<n>.req` files with `qmp/<n>.rep`.
    fn serve_qmp(&self) {
        let dir = self.dir.join("qmp");
        let Ok(entries) = fs::read_dir(&dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.extension().is_none_or(|x| x != "req") {
                continue;
            }
            let rep = p.with_extension("rep");
            if rep.exists() {
                continue;
            }
            let reply = match fs::read_to_string(&p) {
                Ok(cmds) => qmp_batch(&self.dir.join("l0.qmp"), &cmds),
                Err(e) => format!("{{\"error\":{{\"desc\":\"harness: {e}\"}}}}"),
            };
            let tmp = p.with_extension("tmp-rep");
            if fs::write(&tmp, format!("{reply}\n")).is_ok() {
                let _ = fs::rename(&tmp, &rep);
            }
        }
    }
}

/// Xen's report of a guest triple fault in a bed's console, if any.
fn guest_fault(dir: &Path) -> Option<String> {
    let console = fs::read(dir.join("console.log")).ok()?;
    String::from_utf8_lossy(&console)
        .lines()
        .find(|l| l.contains("Triple fault"))
        .map(|l| format!("Xen reports a guest fault: {}", l.trim()))
}

/// The names of the files in `dir`.
fn names(dir: &Path) -> io::Result<std::collections::BTreeSet<std::ffi::OsString>> {
    fs::read_dir(dir)?.map(|e| Ok(e?.file_name())).collect()
}

/// Move what one boot wrote in `dir` (every file not in `before`, what
/// the harness put there: `run.sh`, `lib.sh`, `vusb`, disk images,
/// request files) into `dir/sub`, so that the next boot starts clean.
fn set_aside(
    dir: &Path,
    before: &std::collections::BTreeSet<std::ffi::OsString>,
    sub: &str,
) -> io::Result<()> {
    let to = dir.join(sub);
    fs::create_dir_all(&to)?;
    for e in fs::read_dir(dir)? {
        let e = e?;
        let name = e.file_name();
        if !before.contains(&name) && name != sub {
            fs::rename(e.path(), to.join(&name))?;
        }
    }
    Ok(())
}

/// A request file: one QMP command per line, run in order; a line `sleep
/// MS` pauses, a line `retry CMD` repeats CMD every 20 ms until QEMU
/// accepts it (at most 3 s: a `device_add` right after a `device_del` of
/// the same disk is refused until QEMU has released the disk). Returns
/// the replies, one line each (a failed command's is an `error` object).
fn qmp_batch(socket: &Path, cmds: &str) -> String {
    let run = |cmd: &str| {
        qmp_command(socket, cmd)
            .unwrap_or_else(|e| format!("{{\"error\":{{\"desc\":\"harness: {e}\"}}}}"))
    };
    let mut replies = Vec::new();
    for cmd in cmds.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if let Some(ms) = cmd.strip_prefix("sleep ") {
            std::thread::sleep(Duration::from_millis(ms.trim().parse().unwrap_or(0)));
            continue;
        }
        if let Some(cmd) = cmd.strip_prefix("retry ") {
            let end = Instant::now() + Duration::from_secs(3);
            let mut reply = run(cmd);
            while reply.contains("\"error\"") && Instant::now() < end {
                std::thread::sleep(Duration::from_millis(20));
                reply = run(cmd);
            }
            replies.push(reply);
            continue;
        }
        replies.push(run(cmd));
    }
    replies.join("\n")
}

/// One QMP command on the outer QEMU's socket: its reply line.
fn qmp_command(socket: &Path, cmd: &str) -> io::Result<String> {
    let s = UnixStream::connect(socket)?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    let mut w = s.try_clone()?;
    let mut r = BufReader::new(s);
    let reply = |r: &mut BufReader<UnixStream>| -> io::Result<String> {
        loop {
            let mut line = String::new();
            if r.read_line(&mut line)? == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "QMP closed"));
            }
            if line.contains("\"return\"") || line.contains("\"error\"") {
                return Ok(line.trim().to_owned());
            }
        }
    };
    let mut greeting = String::new();
    r.read_line(&mut greeting)?;
    w.write_all(b"{\"execute\":\"qmp_capabilities\"}\n")?;
    reply(&mut r)?;
    w.write_all(cmd.as_bytes())?;
    w.write_all(b"\n")?;
    reply(&mut r)
}

struct Boot {
    child: Child,
    done: bool,
}

impl Boot {
    fn kill(&mut self) {
        // The whole process group: boot.sh's timeout and QEMU.
        let pgid = self.child.id();
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{pgid}")])
            .status();
        let _ = self.child.wait();
        self.done = true;
    }
}

impl Drop for Boot {
    fn drop(&mut self) {
        if !self.done {
            self.kill();
        }
    }
}

/// One `RESULT` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// Its name.
    pub name: String,
    /// Whether it held.
    pub ok: bool,
    /// What went wrong.
    pub detail: String,
}

/// What one boot left: the results dom0 reported, the logs.
#[derive(Debug)]
pub struct Outcome {
    /// The test's name.
    pub name: String,
    /// The bed directory with every log (kept when a check fails, or
    /// always with `XENBED_KEEP=1`).
    pub dir: PathBuf,
    /// Boot to power-off.
    pub elapsed: Duration,
    /// Why the harness stopped the boot (stall, timeout), if it did.
    pub stopped: Option<String>,
    /// run.sh's exit status, if it ended.
    pub exit: Option<i32>,
    /// The `RESULT` lines, in order.
    pub checks: Vec<Check>,
    /// The `METRIC` lines: name, value.
    pub metrics: Vec<(String, f64)>,
    /// The `NOTE` lines.
    pub notes: Vec<String>,
    keep: bool,
}

impl Outcome {
    fn read(
        name: String,
        dir: PathBuf,
        elapsed: Duration,
        stopped: Option<String>,
    ) -> io::Result<Outcome> {
        let text = fs::read_to_string(dir.join("results")).unwrap_or_default();
        let mut checks = Vec::new();
        let mut metrics = Vec::new();
        let mut notes = Vec::new();
        for line in text.lines() {
            if let Some(n) = line.strip_prefix("RESULT ok ") {
                checks.push(Check {
                    name: n.trim().to_owned(),
                    ok: true,
                    detail: String::new(),
                });
            } else if let Some(rest) = line.strip_prefix("RESULT FAIL ") {
                let (n, d) = rest.split_once(": ").unwrap_or((rest, ""));
                checks.push(Check {
                    name: n.trim().to_owned(),
                    ok: false,
                    detail: d.to_owned(),
                });
            } else if let Some(rest) = line.strip_prefix("METRIC ") {
                let mut it = rest.split_whitespace();
                if let (Some(n), Some(v)) = (it.next(), it.next().and_then(|v| v.parse().ok())) {
                    metrics.push((n.to_owned(), v));
                }
            } else if let Some(n) = line.strip_prefix("NOTE ") {
                notes.push(n.to_owned());
            }
        }
        let exit = fs::read_to_string(dir.join("run-exit"))
            .ok()
            .and_then(|s| s.trim().parse().ok());
        Ok(Outcome {
            name,
            dir,
            elapsed,
            stopped,
            exit,
            checks,
            metrics,
            notes,
            keep: std::env::var("XENBED_KEEP").is_ok_and(|v| v == "1"),
        })
    }

    /// The serial console log (Xen and dom0).
    pub fn console(&self) -> PathBuf {
        self.dir.join("console.log")
    }

    /// A log file dom0 left in the bed directory (e.g. `guest-NAME.log`).
    pub fn log(&self, file: &str) -> String {
        fs::read(self.dir.join(file))
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// A metric's value.
    pub fn metric(&self, name: &str) -> Option<f64> {
        self.metrics
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| *v)
    }

    /// The tail of the scenario's output, for failure messages.
    fn tail(&self, file: &str, lines: usize) -> String {
        let text = self.log(file);
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Panic (with the logs' whereabouts) unless the boot ran to its end,
    /// every check held, and each of `expected` was reported.
    pub fn assert_passed(&self, expected: &[&str]) {
        let mut problems = Vec::new();
        if let Some(why) = &self.stopped {
            problems.push(format!("the harness stopped the boot: {why}"));
        }
        match self.exit {
            Some(0) => {}
            Some(n) => problems.push(format!("run.sh exited {n}")),
            None if self.stopped.is_none() => {
                problems.push("run.sh never finished (dom0 crashed?)".into())
            }
            None => {}
        }
        for c in self.checks.iter().filter(|c| !c.ok) {
            problems.push(format!("FAILED {}: {}", c.name, c.detail));
        }
        let missing: Vec<&str> = expected
            .iter()
            .copied()
            .filter(|e| !self.checks.iter().any(|c| c.name == *e))
            .collect();
        if !missing.is_empty() {
            problems.push(format!("MISSING (never reported): {}", missing.join(", ")));
        }
        // A guest CPU fault Xen reports (an HVM guest's triple fault under
        // nested TCG makes Xen run its reboot action) explains the checks
        // that follow it: name it first.
        if let Some(line) = self
            .log("console.log")
            .lines()
            .find(|l| l.contains("Triple fault"))
        {
            problems.insert(0, format!("Xen reports a guest fault: {}", line.trim()));
        }
        let last_step = self.tail("progress", 1);
        eprintln!(
            "xenbed {}: {} checks, {:.0} s boot to power-off, last step: {last_step}",
            self.name,
            self.checks.len(),
            self.elapsed.as_secs_f64()
        );
        if !problems.is_empty() {
            panic!(
                "xenbed {} failed:\n  {}\nlast step: {last_step}\nlogs kept in {} (console.log: Xen+dom0, run.log: the scenario, guest-*.log: guest consoles)\nrun.log tail:\n{}",
                self.name,
                problems.join("\n  "),
                self.dir.display(),
                self.tail("run.log", 40)
            );
        }
    }

    /// Forget the logs after success (unless `XENBED_KEEP=1`).
    pub fn cleanup(self) {
        if !self.keep {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_guest_triple_fault_is_found_and_a_boots_files_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for f in ["run.sh", "lib.sh", "vusb", "stick1.img", "stick1.add"] {
            fs::write(d.join(f), f).unwrap();
        }
        let before = names(d).unwrap();
        fs::write(d.join("console.log"), "(XEN) boot\n(d1) hello\n").unwrap();
        assert_eq!(guest_fault(d), None);
        fs::write(
            d.join("console.log"),
            "(XEN) boot\n(XEN) [  596.7] d1v0 Triple fault - invoking HVM shutdown action 1\n",
        )
        .unwrap();
        assert_eq!(
            guest_fault(d).as_deref(),
            Some(
                "Xen reports a guest fault: (XEN) [  596.7] d1v0 Triple fault - invoking HVM shutdown action 1"
            )
        );
        for f in ["results", "progress", "run.log", "run-exit", "l0.qmp"] {
            fs::write(d.join(f), f).unwrap();
        }
        fs::create_dir(d.join("qmp")).unwrap();
        fs::write(d.join("qmp/1.rep"), "{}").unwrap();
        set_aside(d, &before, "attempt-1").unwrap();
        let mut left: Vec<String> = fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                "attempt-1",
                "lib.sh",
                "run.sh",
                "stick1.add",
                "stick1.img",
                "vusb"
            ]
        );
        assert!(d.join("attempt-1/qmp/1.rep").is_file());
        assert!(d.join("attempt-1/console.log").is_file());
        assert_eq!(
            guest_fault(d),
            None,
            "the next boot starts without the fault"
        );
    }

    fn outcome(results: &str, exit: Option<&str>) -> Outcome {
        let dir = tempfile::tempdir().unwrap().keep();
        fs::write(dir.join("results"), results).unwrap();
        if let Some(e) = exit {
            fs::write(dir.join("run-exit"), e).unwrap();
        }
        Outcome::read("t".into(), dir, Duration::from_secs(1), None).unwrap()
    }

    #[test]
    fn results_metrics_and_notes_are_parsed() {
        let o = outcome(
            "RESULT ok a\nRESULT FAIL b: it broke: badly\nMETRIC m 12\nNOTE hello\nnoise\n",
            Some("0\n"),
        );
        assert_eq!(o.checks.len(), 2);
        assert!(o.checks[0].ok && o.checks[0].name == "a");
        assert_eq!(
            (o.checks[1].name.as_str(), o.checks[1].detail.as_str()),
            ("b", "it broke: badly")
        );
        assert_eq!(o.metric("m"), Some(12.0));
        assert_eq!(o.notes, vec!["hello".to_owned()]);
        assert_eq!(o.exit, Some(0));
        fs::remove_dir_all(&o.dir).unwrap();
    }

    #[test]
    fn a_failed_missing_or_unfinished_run_does_not_pass() {
        for (results, exit, expected) in [
            ("RESULT ok a\nRESULT FAIL b: x\n", Some("0"), vec!["a"]),
            ("RESULT ok a\n", Some("0"), vec!["a", "c"]),
            ("RESULT ok a\n", None, vec!["a"]),
            ("RESULT ok a\n", Some("3"), vec!["a"]),
        ] {
            let o = outcome(results, exit);
            let r = std::panic::catch_unwind(|| o.assert_passed(&expected));
            assert!(r.is_err(), "{results:?} {exit:?} passed");
            fs::remove_dir_all(&o.dir).unwrap();
        }
        let o = outcome("RESULT ok a\n", Some("0"));
        o.assert_passed(&["a"]);
        o.cleanup();
    }
}
