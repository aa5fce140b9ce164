//! What the `log` facade prints on stderr.
//!
//! - Without `-v`: warnings and errors only, as `vusb: warning: …` /
//!   `vusb: error: …` (no module paths: they are for developers).
//! - The daemon's audit lines (info level, target
//!   [`vusb_core::daemon::AUDIT_TARGET`]): always, as `vusb: audit: …`.
//! - With `-v`/`-vv`/`-vvv`: info/debug/trace as `[LEVEL module] …`.
//! - Progress: the core announces a wait that may be long (target
//!   [`vusb_core::progress::TARGET`]: "waiting for …" then "done"). When
//!   stderr is a terminal and the wait lasts more than a second, one line
//!   `vusb: waiting for … (at most N s)` is printed; a wait that ends
//!   sooner prints nothing. Not a terminal (scripts, tests): nothing.
//!
//! `VUSB_LOG` takes env_logger's filter syntax on top of `-v`.

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use log::{Level, LevelFilter, Log, Metadata, Record};
use vusb_core::daemon::AUDIT_TARGET;
use vusb_core::progress;

/// How long a wait goes unannounced.
const QUIET: Duration = Duration::from_secs(1);

/// Install the logger for `verbosity` (`-v` count). `progress = false`
/// never starts the wait announcer (the daemon: no thread that wakes up
/// while it is idle).
pub fn init(verbosity: u8, progress: bool) {
    let level = match verbosity {
        0 => LevelFilter::Warn,
        1 => LevelFilter::Info,
        2 => LevelFilter::Debug,
        _ => LevelFilter::Trace,
    };
    let inner = env_logger::Builder::new()
        .filter_level(level)
        .parse_env("VUSB_LOG")
        .format(move |buf, rec| {
            if rec.target() == AUDIT_TARGET {
                writeln!(buf, "vusb: audit: {}", rec.args())
            } else if verbosity == 0 && rec.level() <= Level::Warn {
                let what = if rec.level() == Level::Error {
                    "error"
                } else {
                    "warning"
                };
                writeln!(buf, "vusb: {what}: {}", rec.args())
            } else {
                writeln!(buf, "[{:<5} {}] {}", rec.level(), rec.target(), rec.args())
            }
        })
        .build();
    let max = inner.filter().max(LevelFilter::Info);
    let progress =
        (progress && verbosity == 0 && std::io::stderr().is_terminal()).then(Progress::start);
    if log::set_boxed_logger(Box::new(Logger { inner, progress })).is_ok() {
        log::set_max_level(max);
    }
}

struct Logger {
    inner: env_logger::Logger,
    progress: Option<Progress>,
}

impl Log for Logger {
    fn enabled(&self, m: &Metadata<'_>) -> bool {
        m.target() == progress::TARGET || m.target() == AUDIT_TARGET || self.inner.enabled(m)
    }

    fn log(&self, rec: &Record<'_>) {
        if rec.target() == progress::TARGET {
            if let Some(p) = &self.progress {
                p.note(&rec.args().to_string());
            } else if self.inner.enabled(rec.metadata()) {
                self.inner.log(rec);
            }
            return;
        }
        if rec.target() == AUDIT_TARGET && !self.inner.enabled(rec.metadata()) {
            let _ = writeln!(std::io::stderr().lock(), "vusb: audit: {}", rec.args());
            return;
        }
        self.inner.log(rec);
    }

    fn flush(&self) {
        self.inner.flush();
    }
}

/// The wait in progress: its message, since when, whether shown.
#[derive(Default)]
struct Pending {
    what: Option<(String, Instant)>,
    shown: bool,
}

struct Progress {
    state: Arc<Mutex<Pending>>,
}

impl Progress {
    /// A watcher thread that announces waits older than [`QUIET`].
    fn start() -> Progress {
        let state = Arc::new(Mutex::new(Pending::default()));
        let watched = Arc::clone(&state);
        let spawned = std::thread::Builder::new()
            .name("progress".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(Duration::from_millis(100));
                    let Ok(mut p) = watched.lock() else { return };
                    if let Some((what, since)) = &p.what
                        && !p.shown
                        && since.elapsed() >= QUIET
                    {
                        eprintln!("vusb: {what}");
                        p.shown = true;
                    }
                }
            });
        if let Err(e) = spawned {
            log::debug!("no progress display: {e}");
        }
        Progress { state }
    }

    fn note(&self, msg: &str) {
        let Ok(mut p) = self.state.lock() else { return };
        if msg == progress::DONE {
            *p = Pending::default();
        } else {
            p.what = Some((msg.to_owned(), Instant::now()));
            p.shown = false;
        }
    }
}
