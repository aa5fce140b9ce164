//! Simulated PV USB drivers: dom0's backend (kernel `usbback` for
//! `backend/vusb`, QEMU's qusb backend for `backend/qusb`) and the guest's
//! `xen-hcd` frontend, playing the xenbus state protocol over any xenstore
//! connection.
//!
//! **This is a simulation.** No USB traffic exists; only the xenstore side
//! of the drivers is played, so toolstacks (vusb, or the real `xl`) see
//! what they would see on a Xen host:
//!
//! | step | who | what |
//! |---|---|---|
//! | 1 | backend | state 1 → 2 (InitWait) once `online` = 1 |
//! | 2 | frontend | after [`DriverConfig::frontend_delay`], only while the backend is still 2: writes `urb-ring-ref` (8 + 2·devid), `conn-ring-ref` (9 + 2·devid), `event-channel` (20 + devid), state 3 |
//! | 3 | backend | 4 (Connected) |
//! | 4 | frontend | 4 (Connected) |
//! | 5 | frontend, backend | on backend state 5 (written by the toolstack): frontend 6, then backend 6 (Closed) |
//!
//! The values are those of the golden runs of the real `xl`
//! (`xl-peer/golden/pv/02*/after.txt`). The delay in step 2 matters:
//! libxl waits for backend state `== 2` exactly, so a backend that moved on
//! to 4 before libxl looked would make it time out (a real guest is never
//! that fast either).
//!
//! [`Failure`] makes a driver misbehave, for testing the toolstack's
//! timeouts: a backend that never leaves state 1, a frontend that never
//! connects, a backend that never closes.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use vusb_xenstore::{TxId, Xenstore, XenstoreExt, XenstoreWatch};

/// The backend roots the simulator serves: kernel usbback (`pv`) and
/// QEMU's qusb (`qusb`).
pub const BACKEND_ROOTS: [&str; 2] = [
    "/local/domain/0/backend/vusb",
    "/local/domain/0/backend/qusb",
];

const TOKEN: &str = "vusb-sim-xenbus";
/// How often the driver loop checks its stop flag while idle.
const POLL: Duration = Duration::from_millis(50);

/// A way for the simulated drivers to misbehave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The backend stays in state 1 (a usbback that never probes).
    BackendNeverInitWait,
    /// The frontend never writes its rings nor state 3 (a guest without
    /// `xen-hcd`): the backend stays at 2.
    FrontendNeverConnects,
    /// The backend ignores state 5 and never reaches 6.
    BackendNeverCloses,
}

/// How the simulated drivers behave.
#[derive(Debug, Clone)]
pub struct DriverConfig {
    /// Play the guest's frontend too (otherwise only the backend moves).
    pub frontend: bool,
    /// Delay between the backend reaching 2 and the frontend connecting.
    pub frontend_delay: Duration,
    /// Misbehaviour, if any.
    pub failure: Option<Failure>,
}

impl Default for DriverConfig {
    fn default() -> Self {
        DriverConfig {
            frontend: true,
            frontend_delay: Duration::from_millis(50),
            failure: None,
        }
    }
}

/// A running simulator: stops (and joins its thread) when dropped.
pub struct Drivers {
    stop: Arc<AtomicBool>,
    log: Arc<Mutex<Vec<String>>>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Drivers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Drivers").finish_non_exhaustive()
    }
}

impl Drivers {
    /// Start the drivers on their own connection `xs` (a dom0 connection:
    /// the simulator writes both the backend's and the frontend's nodes).
    /// The watches are registered before this returns, so a toolstack
    /// started afterwards is always served.
    pub fn spawn<X>(xs: X, config: DriverConfig) -> vusb_xenstore::Result<Drivers>
    where
        X: Xenstore + XenstoreWatch + Send + 'static,
    {
        for root in BACKEND_ROOTS {
            xs.watch(root, TOKEN)?;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut sim = Sim {
            xs,
            config,
            log: Arc::clone(&log),
            timers: BinaryHeap::new(),
            seq: 0,
        };
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("vusb-sim-xenbus".into())
            .spawn(move || sim.run(&flag))
            .map_err(|source| vusb_xenstore::Error::Io {
                op: "spawn simulator thread",
                source,
            })?;
        Ok(Drivers {
            stop,
            log,
            thread: Some(thread),
        })
    }

    /// What the drivers did so far, one line per state change
    /// (`<backend path> backend 1 -> 2`, ...).
    pub fn log(&self) -> Vec<String> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Stop the drivers and wait for their thread.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take()
            && t.join().is_err()
        {
            log::warn!("simulated xenbus drivers thread panicked");
        }
    }
}

impl Drop for Drivers {
    fn drop(&mut self) {
        self.shutdown();
    }
}

struct Sim<X> {
    xs: X,
    config: DriverConfig,
    log: Arc<Mutex<Vec<String>>>,
    /// Pending frontend connections: (when, seq, backend path).
    timers: BinaryHeap<Reverse<(Instant, u64, String)>>,
    seq: u64,
}

impl<X: Xenstore + XenstoreWatch> Sim<X> {
    fn run(&mut self, stop: &AtomicBool) {
        while !stop.load(Ordering::SeqCst) {
            let now = Instant::now();
            let wait = match self.timers.peek() {
                Some(Reverse((when, _, _))) => when.saturating_duration_since(now).min(POLL),
                None => POLL,
            };
            let event = match self.xs.wait_event(wait) {
                Ok(ev) => ev,
                Err(e) if e.is_events_overflow() => {
                    // Events were lost: look at every backend again.
                    log::debug!("simulated drivers: {e}");
                    self.rescan();
                    None
                }
                Err(e) => {
                    log::warn!("simulated drivers: waiting for a watch event failed: {e}");
                    return;
                }
            };
            self.fire_timers();
            if let Some(ev) = event
                && let Some(be) = backend_of(&ev.path)
                && let Err(e) = self.handle(&be)
            {
                log::debug!("simulated drivers: {be}: {e}");
            }
        }
    }

    /// Handle every backend (after lost watch events).
    fn rescan(&mut self) {
        for root in BACKEND_ROOTS {
            let domids = self.xs.directory_opt(TxId::NONE, root).unwrap_or_default();
            for d in domids {
                let dir = format!("{root}/{d}");
                for devid in self.xs.directory_opt(TxId::NONE, &dir).unwrap_or_default() {
                    let be = format!("{dir}/{devid}");
                    if let Err(e) = self.handle(&be) {
                        log::debug!("simulated drivers: {be}: {e}");
                    }
                }
            }
        }
    }

    fn note(&self, line: String) {
        log::debug!("sim: {line}");
        if let Ok(mut l) = self.log.lock() {
            l.push(line);
        }
    }

    fn fire_timers(&mut self) {
        let now = Instant::now();
        while let Some(Reverse((when, _, _))) = self.timers.peek() {
            if *when > now {
                break;
            }
            if let Some(Reverse((_, _, be))) = self.timers.pop()
                && let Err(e) = self.frontend_connect(&be)
            {
                log::debug!("simulated frontend of {be}: {e}");
            }
        }
    }

    fn read(&self, path: &str) -> vusb_xenstore::Result<Option<String>> {
        self.xs.read_opt(TxId::NONE, path)
    }

    fn write(&self, path: &str, value: &str) -> vusb_xenstore::Result<()> {
        self.xs.write_str(TxId::NONE, path, value)
    }

    fn handle(&mut self, be: &str) -> vusb_xenstore::Result<()> {
        let Some(state) = self.read(&format!("{be}/state"))? else {
            return Ok(());
        };
        match state.as_str() {
            "1" => {
                if self.config.failure == Some(Failure::BackendNeverInitWait)
                    || self.read(&format!("{be}/online"))?.as_deref() != Some("1")
                {
                    return Ok(());
                }
                self.write(&format!("{be}/state"), "2")?;
                self.note(format!("{be} backend 1 -> 2"));
                if self.config.frontend
                    && self.config.failure != Some(Failure::FrontendNeverConnects)
                {
                    self.seq += 1;
                    let when = Instant::now() + self.config.frontend_delay;
                    self.timers.push(Reverse((when, self.seq, be.to_owned())));
                }
            }
            "5" => {
                if self.config.failure == Some(Failure::BackendNeverCloses) {
                    return Ok(());
                }
                if self.config.frontend
                    && let Some(fe) = self.frontend_of(be)?
                {
                    self.write(&format!("{fe}/state"), "6")?;
                    self.note(format!("{fe} frontend -> 6"));
                }
                self.write(&format!("{be}/state"), "6")?;
                self.note(format!("{be} backend 5 -> 6"));
            }
            _ => {}
        }
        Ok(())
    }

    /// The frontend directory named by the backend, if it exists.
    fn frontend_of(&self, be: &str) -> vusb_xenstore::Result<Option<String>> {
        let Some(fe) = self.read(&format!("{be}/frontend"))? else {
            return Ok(None);
        };
        if fe.is_empty() || self.read(&format!("{fe}/state"))?.is_none() {
            return Ok(None);
        }
        Ok(Some(fe))
    }

    fn frontend_connect(&mut self, be: &str) -> vusb_xenstore::Result<()> {
        if self.read(&format!("{be}/state"))?.as_deref() != Some("2") {
            return Ok(());
        }
        let Some(fe) = self.frontend_of(be)? else {
            return Ok(());
        };
        let devid: u32 = be
            .rsplit('/')
            .next()
            .and_then(|d| d.parse().ok())
            .unwrap_or(0);
        self.write(&format!("{fe}/urb-ring-ref"), &(8 + 2 * devid).to_string())?;
        self.write(&format!("{fe}/conn-ring-ref"), &(9 + 2 * devid).to_string())?;
        self.write(&format!("{fe}/event-channel"), &(20 + devid).to_string())?;
        self.write(&format!("{fe}/state"), "3")?;
        self.note(format!("{fe} frontend -> 3"));
        self.write(&format!("{be}/state"), "4")?;
        self.note(format!("{be} backend 2 -> 4"));
        self.write(&format!("{fe}/state"), "4")?;
        self.note(format!("{fe} frontend -> 4"));
        Ok(())
    }
}

/// The backend directory (`<root>/<domid>/<devid>`) an event path is about,
/// when the event concerns the directory itself, its `state` or `online`.
fn backend_of(path: &str) -> Option<String> {
    for root in BACKEND_ROOTS {
        let Some(rest) = path.strip_prefix(root).and_then(|r| r.strip_prefix('/')) else {
            continue;
        };
        let parts: Vec<&str> = rest.split('/').collect();
        if parts.len() < 2 || parts[..2].iter().any(|p| p.is_empty()) {
            return None;
        }
        let sub = &parts[2..];
        if sub.is_empty() || sub == ["state"] || sub == ["online"] {
            return Some(format!("{root}/{}/{}", parts[0], parts[1]));
        }
        return None;
    }
    None
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use vusb_xenstore::mem::{MemConn, MemStore};

    fn read(xs: &MemConn, p: &str) -> Option<String> {
        xs.read_opt(TxId::NONE, p).unwrap()
    }

    /// Wait (up to 3 s) until `path` reads `value`.
    fn wait(xs: &MemConn, path: &str, value: &str) -> bool {
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(3) {
            if read(xs, path).as_deref() == Some(value) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        false
    }

    /// A controller as a toolstack writes it: frontend at 1, backend at 1
    /// with online = 1, in one transaction.
    fn add_controller(xs: &MemConn, kind: &str, domid: u32, devid: u32) -> (String, String) {
        let fe = format!("/local/domain/{domid}/device/vusb/{devid}");
        let be = format!("/local/domain/0/backend/{kind}/{domid}/{devid}");
        let tx = xs.transaction_start().unwrap();
        for (p, v) in [
            (format!("{fe}/backend"), be.as_str()),
            (format!("{fe}/state"), "1"),
            (format!("{be}/frontend"), fe.as_str()),
            (format!("{be}/online"), "1"),
            (format!("{be}/state"), "1"),
        ] {
            xs.write_str(tx, &p, v).unwrap();
        }
        xs.transaction_end(tx, true).unwrap();
        (fe, be)
    }

    #[test]
    fn connects_then_closes_like_usbback_and_usbfront() {
        for (kind, devid) in [("vusb", 0), ("qusb", 3)] {
            let store = MemStore::new();
            let xs = store.connect(0);
            let drivers = Drivers::spawn(store.connect(0), DriverConfig::default()).unwrap();
            let (fe, be) = add_controller(&xs, kind, 1, devid);
            assert!(
                wait(&xs, &format!("{be}/state"), "4"),
                "{kind}: backend never connected"
            );
            assert!(wait(&xs, &format!("{fe}/state"), "4"));
            assert_eq!(
                read(&xs, &format!("{fe}/urb-ring-ref")),
                Some((8 + 2 * devid).to_string())
            );
            assert_eq!(
                read(&xs, &format!("{fe}/conn-ring-ref")),
                Some((9 + 2 * devid).to_string())
            );
            assert_eq!(
                read(&xs, &format!("{fe}/event-channel")),
                Some((20 + devid).to_string())
            );
            xs.write_str(TxId::NONE, &format!("{be}/state"), "5")
                .unwrap();
            assert!(wait(&xs, &format!("{be}/state"), "6"));
            assert_eq!(read(&xs, &format!("{fe}/state")).as_deref(), Some("6"));
            let log = drivers.log();
            assert_eq!(
                log,
                vec![
                    format!("{be} backend 1 -> 2"),
                    format!("{fe} frontend -> 3"),
                    format!("{be} backend 2 -> 4"),
                    format!("{fe} frontend -> 4"),
                    format!("{fe} frontend -> 6"),
                    format!("{be} backend 5 -> 6"),
                ]
            );
        }
    }

    #[test]
    fn backend_waits_for_online_and_frontend_waits_its_delay() {
        let store = MemStore::new();
        let xs = store.connect(0);
        let config = DriverConfig {
            frontend_delay: Duration::from_millis(300),
            ..DriverConfig::default()
        };
        let _drivers = Drivers::spawn(store.connect(0), config).unwrap();
        let be = "/local/domain/0/backend/vusb/2/0";
        xs.write_str(TxId::NONE, &format!("{be}/state"), "1")
            .unwrap();
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(
            read(&xs, &format!("{be}/state")).as_deref(),
            Some("1"),
            "online is not set"
        );
        let (_, be) = add_controller(&xs, "vusb", 2, 0);
        assert!(wait(&xs, &format!("{be}/state"), "2"));
        // Still 2 well within the delay: libxl can see InitWait.
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(read(&xs, &format!("{be}/state")).as_deref(), Some("2"));
        assert!(wait(&xs, &format!("{be}/state"), "4"));
    }

    #[test]
    fn failure_modes_stop_the_protocol_where_asked() {
        let cases = [
            (Failure::BackendNeverInitWait, "1", None),
            (Failure::FrontendNeverConnects, "2", None),
            (Failure::BackendNeverCloses, "4", Some("5")),
        ];
        for (failure, settled, after_close) in cases {
            let store = MemStore::new();
            let xs = store.connect(0);
            let config = DriverConfig {
                failure: Some(failure),
                ..DriverConfig::default()
            };
            let _drivers = Drivers::spawn(store.connect(0), config).unwrap();
            let (fe, be) = add_controller(&xs, "vusb", 1, 0);
            std::thread::sleep(Duration::from_millis(250));
            assert_eq!(
                read(&xs, &format!("{be}/state")).as_deref(),
                Some(settled),
                "{failure:?}"
            );
            if let Some(stays) = after_close {
                xs.write_str(TxId::NONE, &format!("{be}/state"), "5")
                    .unwrap();
                std::thread::sleep(Duration::from_millis(250));
                assert_eq!(read(&xs, &format!("{be}/state")).as_deref(), Some(stays));
                assert_eq!(read(&xs, &format!("{fe}/state")).as_deref(), Some("4"));
            } else {
                assert_eq!(
                    read(&xs, &format!("{fe}/state")).as_deref(),
                    Some("1"),
                    "{failure:?}"
                );
            }
        }
    }

    #[test]
    fn backend_paths_are_recognised() {
        assert_eq!(
            backend_of("/local/domain/0/backend/vusb/1/0/state").as_deref(),
            Some("/local/domain/0/backend/vusb/1/0")
        );
        assert_eq!(
            backend_of("/local/domain/0/backend/qusb/2/3").as_deref(),
            Some("/local/domain/0/backend/qusb/2/3")
        );
        assert_eq!(backend_of("/local/domain/0/backend/vusb/1/0/port/1"), None);
        assert_eq!(backend_of("/local/domain/0/backend/vusb/1"), None);
        assert_eq!(backend_of("/local/domain/0/backend/vusb"), None);
        assert_eq!(backend_of("/local/domain/0/backend/vif/1/0/state"), None);
    }
}
