//! A private real C xenstored (Debian `xen-utils-4.17`) per test, run
//! without Xen through the harness in `harness/` (`start.sh` / `stop.sh`,
//! an `LD_PRELOAD` shim loaded into the daemon only).
//!
//! Each [`Xenstored`] lives in a fresh short temporary directory (the
//! socket path must stay under 108 bytes): `DIR/socket` for clients,
//! `DIR/ring-<domid>` and the `DIR/evtchn` FIFO for guest connections (see
//! [`crate::ring`]), `DIR/domains` for which domains "exist", and, with
//! [`XenstoredOptions::trace`], `DIR/trace` listing every request. Dropping
//! it stops the daemon by its pid.
//!
//! Policy for tests ([`require_or_skip`]): when the daemon cannot start, a
//! test fails under `CI=true` and is skipped with a printed reason
//! elsewhere.

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use vusb_xenstore::client::Client;

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// How to start the daemon.
#[derive(Debug, Clone, Default)]
pub struct XenstoredOptions {
    /// Write a request trace to `DIR/trace` (`-T`).
    pub trace: bool,
    /// Initial content of `DIR/domains` (lines `<domid> [dying] [shutdown]
    /// [crashed]`): which domains exist. `None`: every domid exists.
    pub domains: Option<String>,
    /// Further xenstored options (quotas such as `-W 4`, `--entry-nb=10`).
    pub extra_args: Vec<String>,
}

/// A running private xenstored.
#[derive(Debug)]
pub struct Xenstored {
    dir: PathBuf,
    socket: PathBuf,
    pid: u32,
    trace: Option<PathBuf>,
    stopped: bool,
}

/// The harness scripts shipped with this crate.
pub fn harness_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("harness")
}

/// Under `CI=true` the component must be there.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// The value of `r`, or: panic under `CI=true`, else print
/// `SKIP: <what>: <error>` and return `None`.
pub fn require_or_skip<T, E: std::fmt::Display>(what: &str, r: Result<T, E>) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(e) if in_ci() => panic!("{what}: required under CI=true but unavailable: {e}"),
        Err(e) => {
            eprintln!("SKIP: {what}: {e}");
            None
        }
    }
}

/// [`Xenstored::start`] under the [`require_or_skip`] policy.
pub fn start_or_skip(test: &str) -> Option<Xenstored> {
    require_or_skip(&format!("{test}: real xenstored"), Xenstored::start())
}

fn fresh_dir() -> io::Result<PathBuf> {
    let base = std::env::temp_dir();
    let n = SEQ.fetch_add(1, Ordering::SeqCst);
    let dir = base.join(format!("vxs{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

impl Xenstored {
    /// Starts a daemon with default options.
    pub fn start() -> io::Result<Xenstored> {
        Xenstored::start_with(&XenstoredOptions::default())
    }

    /// Starts a daemon with `opts`.
    pub fn start_with(opts: &XenstoredOptions) -> io::Result<Xenstored> {
        let dir = fresh_dir()?;
        if let Some(d) = &opts.domains {
            std::fs::write(dir.join("domains"), d)?;
        }
        let trace = opts.trace.then(|| dir.join("trace"));
        let mut cmd = Command::new(harness_dir().join("start.sh"));
        cmd.arg(&dir);
        if let Some(t) = &trace {
            cmd.arg("-T").arg(t);
        }
        cmd.args(&opts.extra_args);
        // Never let a caller's preload reach the daemon's shim set-up.
        cmd.env_remove("LD_PRELOAD");
        let out = cmd.output()?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let field = |k: &str| {
            stdout
                .lines()
                .find_map(|l| l.strip_prefix(k).map(str::to_owned))
        };
        let (Some(socket), Some(pid)) = (field("XENSTORED_PATH="), field("XENSTORED_PID=")) else {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(io::Error::other(format!(
                "harness start.sh failed ({}): {}{}",
                out.status,
                stdout.trim(),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        };
        let pid = pid
            .trim()
            .parse()
            .map_err(|_| io::Error::other(format!("start.sh printed a bad pid {pid:?}")))?;
        log::debug!("private xenstored pid {pid} on {socket}");
        Ok(Xenstored {
            dir,
            socket: PathBuf::from(socket),
            pid,
            trace,
            stopped: false,
        })
    }

    /// The daemon's socket (what `XENSTORED_PATH` should name).
    pub fn socket_path(&self) -> &Path {
        &self.socket
    }

    /// The instance directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The daemon's pid.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// A new privileged (dom0) client connection.
    pub fn client(&self) -> vusb_xenstore::Result<Client> {
        Client::connect(&self.socket)
    }

    /// The request lines of the trace (`IN` lines, one per request the
    /// daemon received), for counting round trips. Needs
    /// [`XenstoredOptions::trace`].
    pub fn trace_requests(&self) -> io::Result<Vec<String>> {
        let Some(t) = &self.trace else {
            return Err(io::Error::other("xenstored was started without a trace"));
        };
        let text = std::fs::read_to_string(t)?;
        Ok(text
            .lines()
            .filter(|l| l.starts_with("IN "))
            .map(str::to_owned)
            .collect())
    }

    /// Replaces `DIR/domains` (atomically): which domains exist now.
    pub fn set_domains(&self, text: &str) -> io::Result<()> {
        let tmp = self.dir.join("domains.tmp");
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, self.dir.join("domains"))
    }

    /// Fires the fake `VIRQ_DOM_EXC`: the daemon re-scans the domains and
    /// sends `@releaseDomain` for the vanished ones.
    pub fn fire_dom_exc(&self) -> io::Result<()> {
        crate::ring::kick_evtchn(&self.dir.join("evtchn"), 1)
    }

    /// Stops the daemon (also done on drop).
    pub fn stop(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        match Command::new(harness_dir().join("stop.sh"))
            .arg(&self.dir)
            .output()
        {
            Ok(o) if o.status.success() => {}
            Ok(o) => log::warn!(
                "stop.sh {}: {}",
                self.dir.display(),
                String::from_utf8_lossy(&o.stderr).trim()
            ),
            Err(e) => log::warn!("cannot run stop.sh: {e}"),
        }
        if std::env::var_os("VUSB_KEEP_XENSTORED_DIR").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

impl Drop for Xenstored {
    fn drop(&mut self) {
        self.stop();
    }
}
