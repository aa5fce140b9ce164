//! `vusb daemon`: applies the assignment rules ([`crate::rules`]) as
//! devices and domains come and go.
//!
//! One thread decides and acts (the *engine*, [`engine`]); the others only
//! turn the outside world into [`Event`]s on one channel: kernel uevents
//! ([`uevent`]), xenstore's `@introduceDomain` / `@releaseDomain` watches,
//! and the control socket ([`control`]: `daemon-status`, `reload`). Every
//! change goes through the same operation functions as the commands
//! (`ops::usbdev_attach`, `ops::usbdev_detach`, `ops::usb_release`,
//! `ops::usb_recover`): there is no second attach path.
//!
//! The engine blocks on the channel and wakes only for an event or a
//! deadline it set itself (a device settling, a retry): no polling. A
//! burst of events is coalesced (the batch closes after [`Tuning::quiet`]
//! without events), and then the engine reconciles the whole picture — host
//! devices, domains, vusb's assignment records, rules — rather than
//! replaying events one by one, so five unplug/re-plug cycles end in one
//! state, not five.
//!
//! Crash safety: the truth is in xenstore (assignment records, driver
//! memory) and sysfs; the journal ([`journal`]) only remembers placements
//! and the attach in flight. At start the daemon runs `usb-recover` (an
//! attach killed midway is rolled back) and then reconciles.

pub mod control;
pub mod engine;
pub mod journal;
pub mod notify;
pub mod uevent;

use std::collections::VecDeque;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use vusb_xenstore::XenstoreWatch;
use vusb_xenstore::client::Client;

use crate::HostPaths;
pub use uevent::{Uevent, UeventSource};

/// What wakes the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A USB device uevent.
    Uevent(Uevent),
    /// `@introduceDomain` or `@releaseDomain` fired.
    Domains,
    /// The rules changed (control socket `reload`).
    Reload,
    /// An event source broke; the daemon exits (systemd restarts it).
    Failed(String),
}

/// Timing knobs (defaults in [`Tuning::default`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tuning {
    /// A batch of events closes after this long without a new one.
    pub quiet: Duration,
    /// A batch closes after this long whatever happens.
    pub max_batch: Duration,
    /// A device removed less than this before it came back is flapping...
    pub flap_window: Duration,
    /// ...and is attached only after this long without events.
    pub settle: Duration,
    /// First retry delay after a failed attach (doubles each time).
    pub retry: Duration,
    /// Failed attaches of one rule before giving up until the device or
    /// the domain changes.
    pub max_retries: u32,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            quiet: Duration::from_millis(20),
            max_batch: Duration::from_millis(250),
            flap_window: Duration::from_millis(1000),
            settle: Duration::from_millis(500),
            retry: Duration::from_millis(500),
            max_retries: 5,
        }
    }
}

/// How to run the daemon.
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    /// Host locations.
    pub paths: HostPaths,
    /// Where uevents come from.
    pub uevents: UeventSource,
    /// Timing.
    pub tuning: Tuning,
}

/// A rule as the daemon sees it now.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RuleState {
    /// Rule id.
    pub id: u32,
    /// Its domain (name or uuid).
    pub domain: String,
    /// Its selector.
    pub selector: String,
    /// `auto` / `required`.
    pub mode: String,
    /// Priority.
    pub priority: i32,
    /// `attached`, `waiting for device`, `domain not running`,
    /// `ambiguous`, `held by domid N`, `settling`, `retrying`, `gave up`,
    /// `invalid`.
    pub state: String,
    /// The matched device, if any.
    pub busid: Option<String>,
    /// The domain's domid when running.
    pub domid: Option<u32>,
    /// Failed attaches in a row.
    pub retries: u32,
    /// The last failure.
    pub last_error: Option<String>,
}

/// Counters since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    /// USB device uevents received.
    pub uevents: u64,
    /// Reconciliation passes.
    pub passes: u64,
    /// Devices attached.
    pub attaches: u64,
    /// Devices detached (unplugged, re-plugged).
    pub detaches: u64,
    /// Dead domains released.
    pub releases: u64,
}

/// What `daemon-status` shows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Status {
    /// The daemon's pid.
    pub pid: u32,
    /// Ready (recovered and reconciled once).
    pub ready: bool,
    /// Every rule and its state.
    pub rules: Vec<RuleState>,
    /// The last decisions (audit lines), newest last.
    pub recent: VecDeque<String>,
    /// The last errors, newest last.
    pub errors: VecDeque<String>,
    /// Counters.
    pub counters: Counters,
}

/// Stack of the event-source threads: they only read and forward (the
/// engine runs on the main thread), so they need little.
pub(crate) const THREAD_STACK: usize = 256 * 1024;

/// The log target of audit lines (one per decision, at info level): a
/// front end prints them whatever its verbosity (`vusb: audit: ...`).
pub const AUDIT_TARGET: &str = "vusbd::audit";

/// How many audit lines and errors the status keeps.
pub const KEEP: usize = 64;

impl Status {
    fn push(list: &mut VecDeque<String>, line: String) {
        if list.len() == KEEP {
            list.pop_front();
        }
        list.push_back(line);
    }
}

/// Errors that stop the daemon.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DaemonError {
    /// Another daemon runs on this state directory.
    #[error("another vusb daemon already runs on {0}")]
    AlreadyRunning(std::path::PathBuf),
    /// Setting up a socket, thread or file.
    #[error("{what}")]
    Setup {
        /// What was being set up.
        what: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Connecting to xenstore or watching it.
    #[error("xenstore")]
    Xenstore(#[from] vusb_xenstore::Error),
    /// An event source failed.
    #[error("event source failed: {0}")]
    Source(String),
}

fn setup(what: &str) -> impl FnOnce(std::io::Error) -> DaemonError + '_ {
    move |source| DaemonError::Setup {
        what: what.to_owned(),
        source,
    }
}

/// Watch `@introduceDomain` and `@releaseDomain` on a connection of its own.
fn spawn_domain_watch(tx: Sender<Event>) -> Result<(), DaemonError> {
    let xs = Client::open()?;
    xs.watch("@introduceDomain", "vusbd")?;
    xs.watch("@releaseDomain", "vusbd")?;
    std::thread::Builder::new()
        .stack_size(THREAD_STACK)
        .name("vusbd-xswatch".into())
        .spawn(move || {
            loop {
                match xs.wait_event(Duration::from_secs(24 * 3600)) {
                    Ok(Some(ev)) => {
                        log::debug!("xenstore watch {}", ev.path);
                        if tx.send(Event::Domains).is_err() {
                            return;
                        }
                    }
                    Ok(None) => {}
                    // Events were lost: re-read the domains all the same.
                    Err(e) if e.is_events_overflow() => {
                        log::debug!("{e}");
                        if tx.send(Event::Domains).is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Event::Failed(format!("xenstore watch: {e}")));
                        return;
                    }
                }
            }
        })
        .map_err(setup("starting the xenstore watch thread"))?;
    Ok(())
}

/// Run the daemon in the foreground until an event source fails.
pub fn run(cfg: &DaemonConfig) -> Result<(), DaemonError> {
    let Some(_lock) = control::lock_instance(&cfg.paths).map_err(setup("taking daemon.lock"))?
    else {
        return Err(DaemonError::AlreadyRunning(cfg.paths.state_dir.clone()));
    };
    let (tx, rx): (Sender<Event>, Receiver<Event>) = mpsc::channel();
    let status = Arc::new(Mutex::new(Status {
        pid: std::process::id(),
        ..Status::default()
    }));
    // Sources first, so nothing that happens during recovery is missed.
    uevent::spawn(&cfg.uevents, tx.clone()).map_err(setup("opening the uevent source"))?;
    spawn_domain_watch(tx.clone())?;
    let xs = Client::open()?;
    let mut engine = engine::Engine::new(&xs, cfg, Arc::clone(&status));
    engine.start();
    control::serve(&cfg.paths, Arc::clone(&status), tx.clone())
        .map_err(setup("binding the control socket"))?;
    if let Ok(mut s) = status.lock() {
        s.ready = true;
    }
    match notify::notify("READY=1\nSTATUS=watching USB devices and domains") {
        Ok(sent) => log::debug!("readiness notification sent: {sent}"),
        Err(e) => log::warn!("NOTIFY_SOCKET: {e}"),
    }
    drop(tx);
    engine.run(&rx)
}
