//! A real QEMU for tests: one `qemu-system-x86_64 -machine pc,accel=tcg
//! -nodefaults -display none -S` per test, QMP on a Unix socket in its own
//! temporary directory, killed when dropped.
//!
//! Policy ([`require_or_skip`]): when QEMU cannot start, a test fails under
//! `CI=true` and is skipped with a printed reason elsewhere.

use std::fs;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How to start the VM.
#[derive(Debug, Clone)]
pub struct QemuOptions {
    /// Machine type (`pc` or `q35`); `accel=tcg` is always added.
    pub machine: String,
    /// Start paused (`-S`, QEMU's "prelaunch"); default true.
    pub paused: bool,
    /// Guest memory in MiB (`-m`); default 64.
    pub memory_mib: u32,
    /// Extra arguments appended to the command line.
    pub extra_args: Vec<String>,
}

impl Default for QemuOptions {
    fn default() -> Self {
        QemuOptions {
            machine: "pc".into(),
            paused: true,
            memory_mib: 64,
            extra_args: Vec::new(),
        }
    }
}

/// A boot sector that plays the guest's part in ACPI PCI hot-unplug on
/// `pc` (no OS needed): forever, select bus 0 (`SEL` 0xae10), read the
/// slots pending removal (`DOWN` 0xae04) and eject them (`EJ` 0xae08).
/// 32-bit port I/O, as PIIX4's hotplug registers require.
pub const EJECTOR_CODE: [u8; 25] = [
    0xBA, 0x10, 0xAE, // mov dx, 0xae10
    0x66, 0x31, 0xC0, // xor eax, eax
    0x66, 0xEF, // out dx, eax      (SEL = 0)
    0xBA, 0x04, 0xAE, // mov dx, 0xae04
    0x66, 0xED, // in eax, dx       (DOWN)
    0x66, 0x85, 0xC0, // test eax, eax
    0x74, 0xEE, // jz start
    0xBA, 0x08, 0xAE, // mov dx, 0xae08
    0x66, 0xEF, // out dx, eax      (EJ = DOWN)
    0xEB, 0xE7, // jmp start
];

/// Write a 1.44 MB floppy image whose boot sector is [`EJECTOR_CODE`].
pub fn write_ejector_image(path: &Path) -> std::io::Result<()> {
    let mut img = vec![0u8; 1_474_560];
    img[..EJECTOR_CODE.len()].copy_from_slice(&EJECTOR_CODE);
    img[510] = 0x55;
    img[511] = 0xAA;
    fs::write(path, img)
}

impl QemuOptions {
    /// A running (not paused) VM that boots the ejector, so controller
    /// unplugs complete as with a cooperating guest OS.
    pub fn with_ejector(dir_hint: &Path) -> std::io::Result<QemuOptions> {
        let img = dir_hint.join("ejector.img");
        write_ejector_image(&img)?;
        Ok(QemuOptions {
            machine: "pc".into(),
            paused: false,
            memory_mib: 64,
            extra_args: vec![
                "-drive".into(),
                format!("file={},format=raw,if=floppy,readonly=on", img.display()),
            ],
        })
    }
}

/// A running QEMU, killed on drop.
#[derive(Debug)]
pub struct QemuVm {
    child: Option<Child>,
    dir: tempfile::TempDir,
    qmp: PathBuf,
}

/// The QEMU binary: `$VUSB_QEMU` or `qemu-system-x86_64` on `PATH`.
pub fn qemu_binary() -> PathBuf {
    std::env::var_os("VUSB_QEMU")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("qemu-system-x86_64"))
}

impl QemuVm {
    /// Start a paused `pc` VM with the default options.
    pub fn launch() -> Result<QemuVm, String> {
        QemuVm::launch_with(&QemuOptions::default())
    }

    /// Start a VM and wait (up to 20 s) until its QMP socket exists.
    pub fn launch_with(opts: &QemuOptions) -> Result<QemuVm, String> {
        let dir = tempfile::Builder::new()
            .prefix("vusb-qemu-")
            .tempdir()
            .map_err(|e| format!("creating a temporary directory: {e}"))?;
        let qmp = dir.path().join("vm.qmp");
        let stderr = fs::File::create(dir.path().join("stderr"))
            .map_err(|e| format!("creating the stderr file: {e}"))?;
        let mut cmd = Command::new(qemu_binary());
        cmd.arg("-machine")
            .arg(format!("{},accel=tcg", opts.machine))
            .args(["-nodefaults", "-display", "none"])
            .arg("-m")
            .arg(opts.memory_mib.to_string())
            .arg("-qmp")
            .arg(format!("unix:{},server=on,wait=off", qmp.display()));
        if opts.paused {
            cmd.arg("-S");
        }
        cmd.args(&opts.extra_args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        let child = cmd
            .spawn()
            .map_err(|e| format!("starting {}: {e}", qemu_binary().display()))?;
        let mut vm = QemuVm {
            child: Some(child),
            dir,
            qmp,
        };
        vm.wait_for_socket(Duration::from_secs(20))?;
        Ok(vm)
    }

    fn wait_for_socket(&mut self, limit: Duration) -> Result<(), String> {
        let start = Instant::now();
        loop {
            if fs::metadata(&self.qmp)
                .map(|m| m.file_type().is_socket())
                .unwrap_or(false)
            {
                return Ok(());
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                return Err(format!(
                    "QEMU exited with {status} before its QMP socket appeared: {}",
                    self.stderr()
                ));
            }
            if start.elapsed() > limit {
                return Err(format!("QEMU's QMP socket did not appear within {limit:?}"));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// The QMP socket.
    pub fn qmp_path(&self) -> &Path {
        &self.qmp
    }

    /// The VM's private temporary directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// QEMU's process id (0 once killed).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    /// What QEMU printed on stderr so far.
    pub fn stderr(&self) -> String {
        fs::read_to_string(self.dir.path().join("stderr")).unwrap_or_default()
    }

    /// Still running?
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// Wait until the guest CPU runs the ejector boot sector (its
    /// instruction pointer inside `0x7c00..0x7c19`, read with HMP `info
    /// registers` over QMP). Opens and closes its own QMP connection.
    pub fn wait_for_ejector(&self, limit: Duration) -> Result<(), String> {
        let start = Instant::now();
        loop {
            // A refused connection (full listen queue) is retried too.
            let regs = match self.hmp("info registers") {
                Ok(r) => r,
                Err(_) if start.elapsed() < limit => {
                    std::thread::sleep(Duration::from_millis(50));
                    continue;
                }
                Err(e) => return Err(e),
            };
            let ip = regs
                .split_whitespace()
                .find_map(|w| w.strip_prefix("RIP=").or_else(|| w.strip_prefix("EIP=")))
                .and_then(|h| u64::from_str_radix(h, 16).ok());
            if let Some(ip) = ip
                && (0x7c00..0x7c00 + EJECTOR_CODE.len() as u64).contains(&ip)
            {
                return Ok(());
            }
            if start.elapsed() > limit {
                return Err(format!(
                    "the ejector did not start within {limit:?} (ip {ip:x?})"
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// One HMP command through a fresh QMP connection (minimal client).
    pub fn hmp(&self, command: &str) -> Result<String, String> {
        use std::io::{BufRead, BufReader, Write};
        let err = |e: std::io::Error| format!("QMP {}: {e}", self.qmp.display());
        let s = std::os::unix::net::UnixStream::connect(&self.qmp).map_err(err)?;
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(err)?;
        let mut w = s.try_clone().map_err(err)?;
        let mut r = BufReader::new(s);
        let mut line = String::new();
        r.read_line(&mut line).map_err(err)?; // greeting
        w.write_all(b"{\"execute\":\"qmp_capabilities\"}\n")
            .map_err(err)?;
        let escaped = command.replace('\\', "\\\\").replace('"', "\\\"");
        let req = format!(
            "{{\"execute\":\"human-monitor-command\",\"arguments\":{{\"command-line\":\"{escaped}\"}},\"id\":2}}\n"
        );
        w.write_all(req.as_bytes()).map_err(err)?;
        loop {
            line.clear();
            if r.read_line(&mut line).map_err(err)? == 0 {
                return Err("QEMU closed the QMP connection".into());
            }
            if line.contains("\"id\": 2") || line.contains("\"id\":2") {
                return Ok(line.replace("\\r\\n", "\n").replace("\\n", "\n"));
            }
        }
    }

    /// SIGKILL QEMU now and reap it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for QemuVm {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Under `CI=true` the component must be there.
pub fn in_ci() -> bool {
    std::env::var("CI").map(|v| v == "true").unwrap_or(false)
}

/// Start a VM for `test`, or: panic under `CI=true`, else print why the
/// test is skipped and return `None`.
pub fn require_or_skip(test: &str) -> Option<QemuVm> {
    require_or_skip_with(test, &QemuOptions::default())
}

/// [`require_or_skip`] with options.
pub fn require_or_skip_with(test: &str, opts: &QemuOptions) -> Option<QemuVm> {
    match QemuVm::launch_with(opts) {
        Ok(vm) => Some(vm),
        Err(e) if in_ci() => {
            panic!("{test}: QEMU is required under CI=true but could not start: {e}")
        }
        Err(e) => {
            eprintln!("SKIPPED {test}: QEMU could not start: {e}");
            None
        }
    }
}
