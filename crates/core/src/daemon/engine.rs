//! The daemon's one acting thread: batches events, then reconciles rules,
//! host devices, domains and vusb's assignment records, acting only
//! through the operation functions of the commands.
//!
//! One pass ([`Engine::reconcile`]):
//! 1. **Dead domains**: an assignment record naming a domain that no
//!    longer exists → `ops::usb_release` of that domid (devices back on
//!    their host drivers, records cleared).
//! 2. **Gone or re-plugged devices** of rule-managed assignments: the
//!    record's busid is no longer in sysfs, or is there with another bus
//!    address (a new enumeration, back on host drivers) →
//!    `ops::usbdev_detach` of that port; the placement stays in the
//!    journal.
//! 3. **Rules**, highest priority first, then lowest id (first come): the
//!    rule's domain must run and its selector match exactly one device
//!    (a rule matching two at once is not acted on: no wrong twin). A
//!    device held by another domain stays there (no flapping); a device
//!    wanted by two rules in one pass goes to the first. A free device is
//!    attached (`ops::usbdev_attach`) at the journal's controller and port
//!    when that port is free, else wherever attach puts it. A device that
//!    was removed less than `flap_window` before its last event waits
//!    until it has been quiet for `settle`.
//! 4. `required` rules of a running domain with no device: a warning,
//!    once per domain start.
//!
//! Every decision that changes something, or changes a rule's state, is
//! one audit line (stderr at info level on [`super::AUDIT_TARGET`],
//! printed as `vusb: audit: ...` whatever the verbosity, and the status'
//! `recent` list).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use vusb_host::UsbDevice;
use vusb_xenstore::client::Client;
use vusb_xenstore::{DomId, TxId, XenstoreExt};
use vusb_xlcfg::UsbDevSpec;

use super::journal::{self, Departure, InFlight, Journal, Placement};
use super::{DaemonConfig, DaemonError, Event, RuleState, Status, Tuning};
use crate::assign::{self, Assignment};
use crate::domain::Domain;
use crate::ops::OpEnv;
use crate::ops::usbdev_detach::{DetachTarget, usbdev_detach};
use crate::rules::{self, Mode, Rule, RunningDomain};
use crate::{Error, HostPaths};

/// Recent events of one device (by busid).
#[derive(Debug, Clone, Copy)]
struct DevHistory {
    last_event: Instant,
    last_remove: Option<Instant>,
}

/// Retry state of one rule.
#[derive(Debug, Clone, Default)]
struct Retry {
    count: u32,
    next: Option<Instant>,
    gave_up: bool,
    last_error: Option<String>,
}

/// The engine.
pub struct Engine<'a> {
    xs: &'a Client,
    paths: HostPaths,
    tuning: Tuning,
    status: Arc<Mutex<Status>>,
    journal: Journal,
    rules: Vec<Rule>,
    history: HashMap<String, DevHistory>,
    retries: HashMap<u32, Retry>,
    /// Last state per rule, so only changes are audited.
    last_state: HashMap<u32, String>,
    /// `(rule, domid)` already warned about a missing required device.
    warned: BTreeSet<(u32, DomId)>,
    /// Wake-up time the engine set itself (settling, retry).
    deadline: Option<Instant>,
    /// The domains seen in the last pass.
    known: BTreeSet<DomId>,
    /// Domains libxl is still creating, and since when the daemon waits.
    starting: BTreeMap<DomId, (RunningDomain, Instant)>,
}

/// How long after a device on a QEMU-served port (qusb, devicemodel)
/// vanished its port is cleared (at once when the device is back sooner).
/// On the real Xen bed, clearing a qusb port 1.8 s after the stick was
/// pulled (before QEMU 7.2's xen-usb had told the guest) was followed by
/// that QEMU's death; clearing it after the guest had seen the loss never
/// was (the PV group's unplug scenario).
const QEMU_GONE_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// How long one attach of the daemon waits for udevd's announcement of
/// the device (a command waits 5 s): the engine does nothing else
/// meanwhile, and a failed attach is retried ([`super::Tuning::retry`]).
const DAEMON_UDEV_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// How often the daemon looks whether libxl finished creating a domain.
const START_POLL: std::time::Duration = std::time::Duration::from_millis(250);
/// How long it waits for that at most.
const START_WAIT: std::time::Duration = std::time::Duration::from_secs(300);

fn chain(e: &dyn std::error::Error) -> String {
    vusb_host::discover::error_chain(e)
}

impl<'a> Engine<'a> {
    /// An engine acting over `xs`.
    pub fn new(xs: &'a Client, cfg: &DaemonConfig, status: Arc<Mutex<Status>>) -> Engine<'a> {
        Engine {
            xs,
            paths: cfg.paths.clone(),
            tuning: cfg.tuning,
            status,
            journal: journal::load(&cfg.paths),
            rules: Vec::new(),
            history: HashMap::new(),
            retries: HashMap::new(),
            last_state: HashMap::new(),
            warned: BTreeSet::new(),
            deadline: None,
            known: BTreeSet::new(),
            starting: BTreeMap::new(),
        }
    }

    fn audit(&self, line: String) {
        log::info!(target: super::AUDIT_TARGET, "{line}");
        if let Ok(mut s) = self.status.lock() {
            Status::push(&mut s.recent, line);
        }
    }

    fn error(&self, line: String) {
        log::error!(target: "vusbd", "{line}");
        if let Ok(mut s) = self.status.lock() {
            Status::push(&mut s.errors, line);
        }
    }

    fn count(&self, f: impl FnOnce(&mut super::Counters)) {
        if let Ok(mut s) = self.status.lock() {
            f(&mut s.counters);
        }
    }

    fn save_journal(&self) {
        if let Err(e) = journal::store(&self.paths, &self.journal) {
            self.error(format!("writing the journal: {e}"));
        }
    }

    fn load_rules(&mut self) {
        match rules::load(&self.paths) {
            Ok(set) => {
                let mut r = set.rules;
                r.sort_by(|a, b| b.priority.cmp(&a.priority).then(a.id.cmp(&b.id)));
                self.rules = r;
            }
            Err(e) => self.error(format!("rules not reloaded: {}", chain(&e))),
        }
    }

    /// Recover, load the rules and reconcile once.
    pub fn start(&mut self) {
        if let Some(f) = self.journal.in_flight.take() {
            self.audit(format!(
                "previous daemon stopped during the attach of {} to domid {} (rule {}); recovering",
                f.busid, f.domid, f.rule
            ));
            self.save_journal();
        }
        self.recover("at start");
        self.load_rules();
        self.reconcile();
    }

    /// `usb-recover` (it locks each device, so a command working on one
    /// at the same time is left alone); one audit line per device changed.
    fn recover(&mut self, when: &str) {
        match crate::ops::usb_recover::usb_recover(self.xs, &self.paths) {
            Ok(list) => {
                for r in list {
                    log::info!("recover {}: {:?}", r.busid, r.outcome);
                    if !matches!(
                        r.outcome,
                        crate::ops::usb_recover::Outcome::Assigned { .. }
                            | crate::ops::usb_recover::Outcome::InPortTable { .. }
                    ) {
                        self.audit(format!("recover {} ({when}): {:?}", r.busid, r.outcome));
                    }
                }
            }
            Err(e) => self.error(format!("usb-recover {when}: {}", chain(&e))),
        }
    }

    /// Serve events until a source fails.
    pub fn run(&mut self, rx: &Receiver<Event>) -> Result<(), DaemonError> {
        loop {
            let first = match self.deadline {
                None => match rx.recv() {
                    Ok(ev) => Some(ev),
                    Err(_) => return Err(DaemonError::Source("all event sources ended".into())),
                },
                Some(at) => match rx.recv_timeout(at.saturating_duration_since(Instant::now())) {
                    Ok(ev) => Some(ev),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => {
                        return Err(DaemonError::Source("all event sources ended".into()));
                    }
                },
            };
            let mut batch: Vec<Event> = first.into_iter().collect();
            let opened = Instant::now();
            while !batch.is_empty() && opened.elapsed() < self.tuning.max_batch {
                match rx.recv_timeout(self.tuning.quiet) {
                    Ok(ev) => batch.push(ev),
                    Err(_) => break,
                }
            }
            let mut reload = false;
            for ev in batch {
                match ev {
                    Event::Uevent(u) => self.note_uevent(&u),
                    Event::Domains => self.reset_given_up(),
                    Event::Reload => reload = true,
                    Event::Failed(what) => {
                        self.error(what.clone());
                        return Err(DaemonError::Source(what));
                    }
                }
            }
            if reload {
                self.load_rules();
            }
            self.reconcile();
        }
    }

    fn note_uevent(&mut self, u: &super::Uevent) {
        self.count(|c| c.uevents += 1);
        let now = Instant::now();
        let busid = u.busid().to_owned();
        let h = self.history.entry(busid.clone()).or_insert(DevHistory {
            last_event: now,
            last_remove: None,
        });
        h.last_event = now;
        if u.action == "remove" {
            h.last_remove = Some(now);
        }
        self.reset_given_up();
    }

    /// When `busid` may be attached: `None` now, else the instant. A
    /// device with an event less than `flap_window` after its last removal
    /// waits until it has been quiet for `settle`.
    fn settled_at(&self, busid: &str, now: Instant) -> Option<Instant> {
        let h = self.history.get(busid)?;
        let removed = h.last_remove?;
        if h.last_event.duration_since(removed) > self.tuning.flap_window {
            return None;
        }
        let at = h.last_event + self.tuning.settle;
        (at > now).then_some(at)
    }

    /// A device or domain changed: rules that gave up try again.
    fn reset_given_up(&mut self) {
        self.retries.retain(|_, r| !r.gave_up);
    }

    fn want_wake(&mut self, at: Instant) {
        self.deadline = Some(self.deadline.map_or(at, |d| d.min(at)));
    }

    fn set_state(&mut self, rule: &Rule, st: RuleState) {
        self.set_state_audited(rule, st, true);
    }

    /// As [`Self::set_state`]; `audit = false` when the action that led
    /// here had its own audit line (one line per decision).
    fn set_state_audited(&mut self, rule: &Rule, mut st: RuleState, audit: bool) {
        st.id = rule.id;
        st.domain = rule.domain.clone();
        st.selector = rule.selector.clone();
        st.mode = rule.mode.as_str().to_owned();
        st.priority = rule.priority;
        if let Some(r) = self.retries.get(&rule.id) {
            st.retries = r.count;
            st.last_error = r.last_error.clone();
        }
        let key = format!("{} {:?} {:?}", st.state, st.busid, st.domid);
        if audit && self.last_state.get(&rule.id) != Some(&key) {
            let what = match (&st.busid, st.domid) {
                (Some(b), Some(d)) => format!(" ({b}, domid {d})"),
                (Some(b), None) => format!(" ({b})"),
                (None, Some(d)) => format!(" (domid {d})"),
                (None, None) => String::new(),
            };
            self.audit(format!("rule {}: {}{what}", rule.id, st.state));
        }
        self.last_state.insert(rule.id, key);
        if let Ok(mut s) = self.status.lock() {
            match s.rules.iter_mut().find(|r| r.id == rule.id) {
                Some(r) => *r = st,
                None => s.rules.push(st),
            }
        }
    }

    /// One reconciliation pass.
    pub fn reconcile(&mut self) {
        self.count(|c| c.passes += 1);
        self.deadline = None;
        let domains = match rules::running_domains(self.xs) {
            Ok(d) => d,
            Err(e) => {
                self.error(format!("listing domains: {}", chain(&e)));
                return;
            }
        };
        self.release_dead(&domains);
        let domains = self.ready_domains(domains);
        let now: BTreeSet<DomId> = domains.iter().map(|d| d.domid).collect();
        if self.known.difference(&now).next().is_some() {
            // A domain went away: devices xl gave it (no vusb record, only
            // libxl's driver memory) go back to their host drivers too.
            self.recover("after a domain went away");
        }
        self.known = now;
        let devices = match vusb_host::discover(&self.paths.sysfs_root) {
            Ok(d) => d,
            Err(e) => {
                self.error(format!("listing host USB devices: {}", chain(&e)));
                return;
            }
        };
        self.drop_stale(&domains, &devices);
        let records = assign::list(self.xs, TxId::NONE).unwrap_or_else(|e| {
            self.error(format!("reading assignment records: {}", chain(&e)));
            Vec::new()
        });
        self.warned
            .retain(|(_, d)| domains.iter().any(|x| x.domid == *d));
        if let Ok(mut s) = self.status.lock() {
            let ids: Vec<u32> = self.rules.iter().map(|r| r.id).collect();
            s.rules.retain(|r| ids.contains(&r.id));
        }
        let mut claimed: BTreeMap<String, u32> = BTreeMap::new();
        self.follow_pass(&domains, &devices, &records, &mut claimed);
        for rule in self.rules.clone() {
            self.apply_rule(&rule, &domains, &devices, &records, &mut claimed);
        }
        if let Ok(mut s) = self.status.lock() {
            let order: Vec<u32> = self.rules.iter().map(|r| r.id).collect();
            s.rules
                .sort_by_key(|r| order.iter().position(|i| *i == r.id).unwrap_or(usize::MAX));
        }
    }

    /// The domains the rules may act on: not those libxl is still creating.
    /// libxl stores a domain's configuration (`userdata-d.<domid>.<uuid>.libxl-json`)
    /// at the end of its creation, after the config's controllers and
    /// devices are added; a domain with libxl's `/libxl/<domid>` and no
    /// such file yet is being created, and a controller the daemon made
    /// for it now would make libxl's own controller fail ("device already
    /// exists", seen on the real Xen bed). The daemon re-checks every
    /// [`START_POLL`] while a domain starts (no xenstore event says the
    /// file was written), and acts anyway after [`START_WAIT`].
    fn ready_domains(&mut self, domains: Vec<RunningDomain>) -> Vec<RunningDomain> {
        let now = Instant::now();
        self.starting
            .retain(|id, _| domains.iter().any(|d| d.domid == *id));
        let mut ready = Vec::with_capacity(domains.len());
        for d in domains {
            let libxl = self
                .xs
                .read_opt(TxId::NONE, &format!("/libxl/{}", d.domid))
                .ok()
                .flatten()
                .is_some();
            let stored = crate::libxl_json::config_file(self.xs, &self.paths, d.domid)
                .ok()
                .flatten()
                .is_some_and(|(file, _)| file.exists());
            if !libxl || stored {
                if self.starting.remove(&d.domid).is_some() {
                    log::info!("domid {}: libxl finished creating it", d.domid);
                }
                ready.push(d);
                continue;
            }
            let since = self.starting.get(&d.domid).map_or(now, |(_, t)| *t);
            if now.duration_since(since) >= START_WAIT {
                if self.starting.remove(&d.domid).is_some() {
                    self.audit(format!(
                        "domid {}: no stored libxl configuration after {} s; acting on it anyway",
                        d.domid,
                        START_WAIT.as_secs()
                    ));
                }
                ready.push(d);
                continue;
            }
            self.starting.insert(d.domid, (d, since));
            self.want_wake(now + START_POLL);
        }
        ready
    }

    /// Step 1: records of domains that are gone.
    fn release_dead(&mut self, domains: &[RunningDomain]) {
        let records = match assign::list(self.xs, TxId::NONE) {
            Ok(r) => r,
            Err(e) => {
                self.error(format!("reading assignment records: {}", chain(&e)));
                return;
            }
        };
        let dead: BTreeSet<DomId> = records
            .iter()
            .map(|r| r.domid)
            .filter(|d| !domains.iter().any(|x| x.domid == *d))
            .collect();
        for domid in dead {
            let dom = Domain {
                domid,
                arg: domid.to_string(),
            };
            let busids: Vec<&str> = records
                .iter()
                .filter(|r| r.domid == domid)
                .map(|r| r.busid.as_str())
                .collect();
            let env = OpEnv::new(self.xs, &self.paths);
            match crate::ops::usb_release::usb_release(&env, &dom) {
                Ok(_) => {
                    self.count(|c| c.releases += 1);
                    self.audit(format!(
                        "domid {domid} is gone: released {}, back on their host drivers",
                        busids.join(", ")
                    ));
                }
                Err(e) => self.error(format!(
                    "releasing the devices of dead domid {domid}: {}",
                    chain(&e)
                )),
            }
        }
    }

    /// Whether a record is managed by a rule of its domain.
    fn managed(&self, rec: &Assignment, domains: &[RunningDomain]) -> Option<u32> {
        let dom = domains.iter().find(|d| d.domid == rec.domid)?;
        if let Some(id) = self.journal.subtree.get(rec.busid.as_str())
            && self.rules.iter().any(|r| r.id == *id && dom.is(&r.domain))
        {
            return Some(*id);
        }
        self.journal
            .placements
            .iter()
            .find(|(id, p)| {
                rec.busid == p.busid.as_str()
                    && dom.is(&p.domain)
                    && self.rules.iter().any(|r| r.id == **id)
            })
            .map(|(id, _)| *id)
    }

    /// Step 2: rule-managed records whose device left or came back anew.
    fn drop_stale(&mut self, domains: &[RunningDomain], devices: &[UsbDevice]) {
        let records = assign::list(self.xs, TxId::NONE).unwrap_or_default();
        let now = Instant::now();
        for rec in records {
            let Some(rule) = self.managed(&rec, domains) else {
                continue;
            };
            let why = match devices.iter().find(|d| d.busid == rec.busid) {
                None => "unplugged",
                Some(d) if d.devnum != rec.hostaddr || d.busnum != rec.hostbus => {
                    "re-plugged (new address)"
                }
                Some(_) => continue,
            };
            // A QEMU-served port (qusb, devicemodel) whose device is gone:
            // QEMU's own usb-host notices and tells the guest; the port is
            // cleared QEMU_GONE_GRACE after the removal, not under QEMU's
            // feet. A device back anew is another matter: it is cleared at
            // once, before QEMU's usb-host (which matches the device by bus
            // and port) re-opens it by itself: QEMU 7.2's xen-usb connects
            // a device re-opened that way without resetting it, and its USB
            // core asserts a reset device on the guest's first request
            // (read in QEMU's source; that assertion is what killed the
            // backend on the real Xen bed when a port named a device QEMU
            // had not opened). The attach that follows writes the port
            // anew, and QEMU adds a fresh, reset usb-host.
            if why == "unplugged"
                && rec.ctrl_type != crate::layout::UsbCtrlType::Pv
                && let Some(at) = self
                    .history
                    .get(rec.busid.as_str())
                    .and_then(|h| h.last_remove)
                    .map(|t| t + QEMU_GONE_GRACE)
                    .filter(|at| *at > now)
            {
                self.want_wake(at);
                continue;
            }
            let dom = Domain {
                domid: rec.domid,
                arg: rec.domid.to_string(),
            };
            self.note_departure(rule);
            let env = OpEnv::new(self.xs, &self.paths);
            let target = DetachTarget::Port {
                ctrl: rec.ctrl as i32,
                port: rec.port as i32,
            };
            match usbdev_detach(&env, &dom, &target) {
                Ok(_) => {
                    self.count(|c| c.detaches += 1);
                    self.audit(format!(
                        "rule {rule}: {} {why}: domid {} controller {} port {} cleared",
                        rec.busid, rec.domid, rec.ctrl, rec.port
                    ));
                }
                Err(e) => self.error(format!(
                    "rule {rule}: clearing {} ({why}) from domid {}: {}",
                    rec.busid,
                    rec.domid,
                    chain(&e)
                )),
            }
        }
    }

    /// A rule-managed device left (or re-enumerated): remember its
    /// physical port when the rule follows firmware updates.
    fn note_departure(&mut self, rule: u32) {
        let follows = self
            .rules
            .iter()
            .any(|r| r.id == rule && r.follow.is_some());
        let Some(p) = self.journal.placements.get(&rule) else {
            return;
        };
        if let (true, Some(pp)) = (follows, p.physical_port.clone()) {
            let dep = Departure {
                rule,
                vid_pid: p.vid_pid.clone(),
                at_ms: journal::now_ms(),
            };
            self.journal.departed.insert(pp, dep);
            self.save_journal();
        }
    }

    /// Firmware-update follow: a device on a physical port a following
    /// rule's device left less than `follow` seconds ago, which the rule
    /// does not match (another vendor:product), goes to the rule's domain
    /// and is reserved for it (no other rule gets it) during the window.
    fn follow_pass(
        &mut self,
        domains: &[RunningDomain],
        devices: &[UsbDevice],
        records: &[Assignment],
        claimed: &mut BTreeMap<String, u32>,
    ) {
        let now = Instant::now();
        let now_ms = journal::now_ms();
        let rules = self.rules.clone();
        let open = self.journal.departed.len();
        // The window is in wall-clock time (it survives a restart); a clock
        // set back counts as no time passed.
        self.journal.departed.retain(|_, d| {
            rules.iter().any(|r| {
                r.id == d.rule
                    && r.follow
                        .is_some_and(|s| now_ms.saturating_sub(d.at_ms) < u64::from(s) * 1000)
            })
        });
        let mut changed = open != self.journal.departed.len();
        for (pp, dep) in self.journal.departed.clone() {
            let Some(rule) = rules.iter().find(|r| r.id == dep.rule) else {
                continue;
            };
            let Some(dev) = devices.iter().find(|d| d.physical_port == pp) else {
                continue;
            };
            let Ok(spec) = rule.spec() else {
                continue;
            };
            if rules::matches(&spec, dev) {
                // The rule's own device is back: the normal path takes it.
                self.journal.departed.remove(&pp);
                changed = true;
                continue;
            }
            let busid = dev.busid.to_string();
            claimed.insert(busid.clone(), rule.id);
            let domid = domains.iter().find(|d| d.is(&rule.domain)).map(|d| d.domid);
            let state = |s: &str, b: Option<&str>| RuleState {
                state: s.to_owned(),
                busid: b.map(str::to_owned),
                domid,
                ..RuleState::default()
            };
            if records.iter().any(|r| r.busid == dev.busid) {
                self.set_state(rule, state("attached (firmware follow)", Some(&busid)));
                continue;
            }
            let Some(dom) = domains.iter().find(|d| d.is(&rule.domain)) else {
                continue;
            };
            if let Some(at) = self.settled_at(&busid, now) {
                self.want_wake(at);
                self.set_state(rule, state("settling (firmware follow)", Some(&busid)));
                continue;
            }
            self.audit(format!(
                "rule {}: firmware follow: {busid} ({}) on physical port {pp}, where {} was, goes to {}",
                rule.id,
                dev.vid_pid(),
                dep.vid_pid,
                rule.domain
            ));
            self.attach(rule, dom, dev, &state);
        }
        if changed {
            self.save_journal();
        }
    }

    fn apply_rule(
        &mut self,
        rule: &Rule,
        domains: &[RunningDomain],
        devices: &[UsbDevice],
        records: &[Assignment],
        claimed: &mut BTreeMap<String, u32>,
    ) {
        if claimed.values().any(|r| *r == rule.id) {
            return; // its device is followed through a firmware update
        }
        let spec = match rule.spec() {
            Ok(s) => s,
            Err(e) => {
                self.set_state(
                    rule,
                    RuleState {
                        state: format!("invalid: {}", chain(&e)),
                        ..RuleState::default()
                    },
                );
                return;
            }
        };
        let dom = domains.iter().find(|d| d.is(&rule.domain));
        if dom.is_none()
            && let Some((d, _)) = self.starting.values().find(|(d, _)| d.is(&rule.domain))
        {
            let st = RuleState {
                state: "domain starting (libxl has not finished creating it)".into(),
                domid: Some(d.domid),
                ..RuleState::default()
            };
            self.set_state(rule, st);
            return;
        }
        let hits = rules::matching(&spec, devices);
        let domid = dom.map(|d| d.domid);
        let state = |s: &str, busid: Option<&str>| RuleState {
            state: s.to_owned(),
            busid: busid.map(str::to_owned),
            domid,
            ..RuleState::default()
        };
        if hits.len() > 1 && !rules::is_subtree(&spec) {
            let list: Vec<String> = hits.iter().map(|d| d.busid.to_string()).collect();
            self.set_state(
                rule,
                state(
                    &format!(
                        "ambiguous: matches {} at once; not acting",
                        list.join(" and ")
                    ),
                    None,
                ),
            );
            return;
        }
        let Some(dom) = dom else {
            let busid = hits.first().map(|d| d.busid.to_string());
            self.set_state(rule, state("domain not running", busid.as_deref()));
            return;
        };
        if rules::is_subtree(&spec) && !hits.is_empty() {
            self.apply_subtree(rule, dom, &hits, records, claimed);
            return;
        }
        let Some(dev) = hits.first() else {
            if rule.mode == Mode::Required && self.warned.insert((rule.id, dom.domid)) {
                self.error(format!(
                    "REQUIRED DEVICE MISSING: rule {} wants {} for {} (domid {}), and no such device is plugged in",
                    rule.id, rule.selector, rule.domain, dom.domid
                ));
            }
            self.set_state(rule, state("waiting for device", None));
            return;
        };
        let busid = dev.busid.to_string();
        if let Some(other) = claimed.get(&busid) {
            self.set_state(
                rule,
                state(
                    &format!("wanted by rule {other} (higher priority or older)"),
                    Some(&busid),
                ),
            );
            return;
        }
        claimed.insert(busid.clone(), rule.id);
        if let Some(rec) = records.iter().find(|r| r.busid == dev.busid) {
            if rec.domid == dom.domid {
                self.remember(rule, dev, rec.ctrl, rec.port);
                self.set_state(rule, state("attached", Some(&busid)));
            } else {
                self.set_state(
                    rule,
                    state(&format!("held by domid {}", rec.domid), Some(&busid)),
                );
            }
            return;
        }
        let now = Instant::now();
        if let Some(at) = self.settled_at(&busid, now) {
            self.want_wake(at);
            self.set_state(rule, state("settling (device flapping)", Some(&busid)));
            return;
        }
        let retry = self.retries.get(&rule.id).cloned().unwrap_or_default();
        if retry.gave_up {
            self.set_state(rule, state("gave up", Some(&busid)));
            return;
        }
        if let Some(at) = retry.next
            && at > now
        {
            self.want_wake(at);
            self.set_state(rule, state("retrying", Some(&busid)));
            return;
        }
        self.attach(rule, dom, dev, &state);
    }

    /// A subtree rule (`physport=...*`): every device below the port goes
    /// to the domain, each at the controller port it had last time (by its
    /// own physical port) when free, else wherever `usbdev-attach` puts it. The
    /// rule's state summarises them (`attached 2 of 3 (subtree)`).
    fn apply_subtree(
        &mut self,
        rule: &Rule,
        dom: &RunningDomain,
        hits: &[&UsbDevice],
        records: &[Assignment],
        claimed: &mut BTreeMap<String, u32>,
    ) {
        let now = Instant::now();
        let mut attached = 0;
        for dev in hits {
            let busid = dev.busid.to_string();
            if claimed.contains_key(&busid) {
                continue;
            }
            claimed.insert(busid.clone(), rule.id);
            if let Some(rec) = records.iter().find(|r| r.busid == dev.busid) {
                if rec.domid == dom.domid {
                    attached += 1;
                    if self.journal.subtree.insert(busid, rule.id).is_none() {
                        self.save_journal();
                    }
                }
                continue;
            }
            if let Some(at) = self.settled_at(&busid, now) {
                self.want_wake(at);
                continue;
            }
            let d = Domain {
                domid: dom.domid,
                arg: rule.domain.clone(),
            };
            let key = if dev.physical_port.is_empty() {
                busid.clone()
            } else {
                dev.physical_port.clone()
            };
            let same_place = self
                .journal
                .subtree_placements
                .get(&key)
                .filter(|p| p.domain == rule.domain)
                .map(|p| (p.ctrl, p.port));
            match self.attach_at(rule.id, &d, &busid, same_place) {
                Ok(a) => {
                    attached += 1;
                    self.count(|c| c.attaches += 1);
                    self.journal.subtree.insert(busid.clone(), rule.id);
                    self.journal.subtree_placements.insert(
                        key,
                        Placement {
                            domain: rule.domain.clone(),
                            busid: busid.clone(),
                            vid_pid: dev.vid_pid(),
                            ctrl: a.ctrl,
                            port: a.port,
                            physical_port: Some(dev.physical_port.clone())
                                .filter(|p| !p.is_empty()),
                        },
                    );
                    self.save_journal();
                    self.audit(format!(
                        "rule {}: attach {busid} ({}) below {} to {} (domid {}) controller {} port {}",
                        rule.id,
                        dev.vid_pid(),
                        rule.selector,
                        rule.domain,
                        dom.domid,
                        a.ctrl,
                        a.port
                    ));
                }
                Err(e) => self.error(format!(
                    "rule {}: attaching {busid} to {} (domid {}) failed: {}",
                    rule.id,
                    rule.domain,
                    dom.domid,
                    chain(&e)
                )),
            }
        }
        let st = RuleState {
            state: format!("attached {attached} of {} (subtree)", hits.len()),
            domid: Some(dom.domid),
            ..RuleState::default()
        };
        self.set_state(rule, st);
    }

    /// `usbdev-attach` of `busid` to `d`: at controller and port
    /// `same_place` when given and that port is still there and free,
    /// else wherever attach puts it.
    fn attach_at(
        &self,
        rule: u32,
        d: &Domain,
        busid: &str,
        same_place: Option<(u32, u32)>,
    ) -> crate::Result<crate::ops::usbdev_attach::Attached> {
        let mut spec = UsbDevSpec {
            busid: Some(busid.to_owned()),
            ..UsbDevSpec::default()
        };
        if let Some((c, p)) = same_place {
            spec.controller = Some(c);
            spec.port = Some(p);
        }
        let mut env = OpEnv::new(self.xs, &self.paths);
        // A device udevd has not announced yet: a short wait, then the
        // retry of a failed attach, not a long block of the engine.
        env.timeouts.udev_wait = DAEMON_UDEV_WAIT;
        let result = crate::ops::usbdev_attach::usbdev_attach(&env, d, &spec);
        if same_place.is_some()
            && matches!(
                result,
                Err(Error::PortInUse { .. }
                    | Error::PortOutOfRange { .. }
                    | Error::MissingNode { .. }
                    | Error::NoFreePort { .. })
            )
        {
            log::info!("rule {rule}: last place of {busid} taken or gone; attaching anywhere");
            spec.controller = None;
            spec.port = None;
            return crate::ops::usbdev_attach::usbdev_attach(&env, d, &spec);
        }
        result
    }

    fn remember(&mut self, rule: &Rule, dev: &UsbDevice, ctrl: u32, port: u32) {
        let p = Placement {
            domain: rule.domain.clone(),
            busid: dev.busid.to_string(),
            vid_pid: dev.vid_pid(),
            ctrl,
            port,
            physical_port: Some(dev.physical_port.clone()).filter(|p| !p.is_empty()),
        };
        if self.journal.placements.get(&rule.id) != Some(&p) {
            self.journal.placements.insert(rule.id, p);
            self.save_journal();
        }
    }

    fn attach(
        &mut self,
        rule: &Rule,
        dom: &RunningDomain,
        dev: &UsbDevice,
        state: &dyn Fn(&str, Option<&str>) -> RuleState,
    ) {
        let busid = dev.busid.to_string();
        let d = Domain {
            domid: dom.domid,
            arg: rule.domain.clone(),
        };
        let same_place = self
            .journal
            .placements
            .get(&rule.id)
            .filter(|p| p.domain == rule.domain)
            .map(|p| (p.ctrl, p.port));
        self.journal.in_flight = Some(InFlight {
            rule: rule.id,
            busid: busid.clone(),
            domid: dom.domid,
        });
        self.save_journal();
        let result = self.attach_at(rule.id, &d, &busid, same_place);
        self.journal.in_flight = None;
        match result {
            Ok(a) => {
                self.retries.remove(&rule.id);
                self.count(|c| c.attaches += 1);
                self.audit(format!(
                    "rule {}: attach {busid} ({}) to {} (domid {}) controller {} port {}",
                    rule.id,
                    dev.vid_pid(),
                    rule.domain,
                    dom.domid,
                    a.ctrl,
                    a.port
                ));
                self.remember(rule, dev, a.ctrl, a.port);
                // The attach is no longer in flight, also on disk (a
                // re-attach at the same place leaves the placement as it
                // was, so `remember` wrote nothing).
                self.save_journal();
                self.set_state_audited(rule, state("attached", Some(&busid)), false);
            }
            Err(e) => {
                self.save_journal();
                let msg = chain(&e);
                let r = self.retries.entry(rule.id).or_default();
                r.count += 1;
                r.last_error = Some(msg.clone());
                let gave_up = r.count >= self.tuning.max_retries;
                r.gave_up = gave_up;
                let delay =
                    self.tuning.retry * 2u32.saturating_pow(r.count.saturating_sub(1).min(6));
                r.next = Some(Instant::now() + delay);
                let count = r.count;
                self.error(format!(
                    "rule {}: attaching {busid} to {} (domid {}) failed (attempt {count}): {msg}",
                    rule.id, rule.domain, dom.domid
                ));
                if gave_up {
                    self.set_state_audited(rule, state("gave up", Some(&busid)), false);
                } else {
                    self.want_wake(Instant::now() + delay);
                    self.set_state_audited(rule, state("retrying", Some(&busid)), false);
                }
            }
        }
    }
}
