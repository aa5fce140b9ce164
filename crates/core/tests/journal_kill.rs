//! Crash safety of the journaled hand-over, in process: an operation is
//! "killed" at its N-th xenstore request (the connection panics; the
//! unwinding drops the operation's locks as a process death closes its
//! files, and nothing after the request runs), for every N. Then either
//! `usb-recover` or the next command on the device runs, and the host must
//! be consistent: the device fully attached (record `done`, port holding
//! it, every interface on usbback, driver memory, libxl JSON entry) or fully
//! free (no record, no port holding it, interfaces on their original
//! drivers, no driver memory, no JSON entry), controllers in libxl's JSON =
//! controllers in xenstore, no controller journal left.
//!
//! Runs on: the in-memory store with the xl golden initial layout, the
//! fixture sysfs with the bind emulation and the simulated usbback/usbfront
//! (`vusb-sim`). The same at every syscall boundary with `kill -9`, the
//! real xenstored and the built binary is `crates/cli/tests/fault_kill.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod ops_support;

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

use ops_support::{SimHost, run_xl};
use vusb_core::journal::Step;
use vusb_core::ops::OpEnv;
use vusb_core::ops::usb_recover::usb_recover;
use vusb_core::ops::usbdev_attach::usbdev_attach;
use vusb_core::ops::usbdev_detach::{DetachTarget, usbdev_detach};
use vusb_core::{assign, driver_memory, journal};
use vusb_sim::xenbus::DriverConfig;
use vusb_xenstore::mem::MemConn;
use vusb_xenstore::{Perm, Result as XsResult, TxId, WatchEvent, Xenstore, XenstoreWatch};
use vusb_xlcfg::UsbDevSpec;

const KILLED: &str = "vusb killed at a request boundary";

/// A connection that "dies" at its `at`-th request.
struct Killer<'a> {
    inner: &'a MemConn,
    n: Cell<u32>,
    at: u32,
}

impl Killer<'_> {
    fn tick(&self) {
        let n = self.n.get() + 1;
        self.n.set(n);
        if n == self.at {
            std::panic::panic_any(KILLED);
        }
    }
}

impl Xenstore for Killer<'_> {
    fn read(&self, tx: TxId, path: &str) -> XsResult<Vec<u8>> {
        self.tick();
        self.inner.read(tx, path)
    }
    fn write(&self, tx: TxId, path: &str, value: &[u8]) -> XsResult<()> {
        self.tick();
        self.inner.write(tx, path, value)
    }
    fn mkdir(&self, tx: TxId, path: &str) -> XsResult<()> {
        self.tick();
        self.inner.mkdir(tx, path)
    }
    fn rm(&self, tx: TxId, path: &str) -> XsResult<()> {
        self.tick();
        self.inner.rm(tx, path)
    }
    fn directory(&self, tx: TxId, path: &str) -> XsResult<Vec<String>> {
        self.tick();
        self.inner.directory(tx, path)
    }
    fn get_perms(&self, tx: TxId, path: &str) -> XsResult<Vec<Perm>> {
        self.tick();
        self.inner.get_perms(tx, path)
    }
    fn set_perms(&self, tx: TxId, path: &str, perms: &[Perm]) -> XsResult<()> {
        self.tick();
        self.inner.set_perms(tx, path, perms)
    }
    fn transaction_start(&self) -> XsResult<TxId> {
        self.tick();
        self.inner.transaction_start()
    }
    fn transaction_end(&self, tx: TxId, commit: bool) -> XsResult<()> {
        self.tick();
        self.inner.transaction_end(tx, commit)
    }
}

impl XenstoreWatch for Killer<'_> {
    fn watch(&self, path: &str, token: &str) -> XsResult<()> {
        self.tick();
        self.inner.watch(path, token)
    }
    fn unwatch(&self, path: &str, token: &str) -> XsResult<()> {
        self.tick();
        self.inner.unwatch(path, token)
    }
    fn wait_event(&self, timeout: Duration) -> XsResult<Option<WatchEvent>> {
        self.inner.wait_event(timeout)
    }
}

/// Silence the panics that stand for kills (others still print).
fn quiet_kills() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if info.payload().downcast_ref::<&str>() != Some(&KILLED) {
            default(info);
        }
    }));
}

fn host() -> SimHost {
    let host = SimHost::from_golden("pv", true, DriverConfig::default());
    // libxl's stored configuration of guest 1, so bookkeeping is checked.
    std::fs::write(
        host.json_path(1),
        "{\n    \"c_info\": {\n        \"type\": \"pv\",\n        \"name\": \"guest1\"\n    }\n}\n\0",
    )
    .unwrap();
    host
}

fn env_of<'a, X: ?Sized>(host: &'a SimHost, xs: &'a X) -> OpEnv<'a, X> {
    let mut env = OpEnv::new(xs, &host.paths);
    env.timeouts.backend_connect = Duration::from_secs(3);
    env.timeouts.backend_close = Duration::from_secs(3);
    env.timeouts.lock_wait = Duration::from_secs(3);
    env
}

fn spec(busid: &str) -> UsbDevSpec {
    UsbDevSpec {
        busid: Some(busid.into()),
        ..UsbDevSpec::default()
    }
}

/// Run `op` on a connection killed at request `at`: whether it was killed.
fn killed_at(host: &SimHost, at: u32, op: &dyn Fn(&OpEnv<'_, Killer<'_>>)) -> bool {
    let k = Killer {
        inner: &host.conn,
        n: Cell::new(0),
        at,
    };
    let env = env_of(host, &k);
    let r = catch_unwind(AssertUnwindSafe(|| op(&env)));
    match r {
        Ok(()) => false,
        Err(p) if p.downcast_ref::<&str>() == Some(&KILLED) => true,
        Err(p) => std::panic::resume_unwind(p),
    }
}

fn json_of(host: &SimHost) -> serde_json::Value {
    let raw = std::fs::read_to_string(host.json_path(1)).unwrap();
    serde_json::from_str(raw.trim_end_matches('\0')).unwrap()
}

fn ids(v: &serde_json::Value, key: &str, field: &str) -> Vec<i64> {
    let mut out: Vec<i64> = v
        .get(key)
        .and_then(|a| a.as_array())
        .map(|a| a.iter().filter_map(|e| e.get(field)?.as_i64()).collect())
        .unwrap_or_default();
    out.sort();
    out
}

/// The consistency rules of the module doc; the problems found.
fn problems(host: &SimHost, busid: &str, original: &[String]) -> Vec<String> {
    let xs = &host.conn;
    let mut p = Vec::new();
    let json = json_of(host);
    let ctrls = vusb_core::layout::read::list_devids(xs, TxId::NONE, 1).unwrap();
    let mut ctrls_i: Vec<i64> = ctrls.iter().map(|c| i64::from(*c)).collect();
    ctrls_i.sort();
    if ids(&json, "usbctrls", "devid") != ctrls_i {
        p.push(format!("JSON controllers {json} vs xenstore {ctrls:?}"));
    }
    if !journal::ctrl_list(xs, TxId::NONE).unwrap().is_empty() {
        p.push("controller journal left".into());
    }
    let holders: Vec<(u32, u32)> = ctrls
        .iter()
        .filter_map(|&c| vusb_core::layout::read::read_controller(xs, TxId::NONE, 1, c).ok()?)
        .flat_map(|c| {
            (1..=c.ports)
                .filter(|&port| {
                    vusb_core::layout::read::read_port(xs, TxId::NONE, &c, port)
                        .unwrap()
                        .as_deref()
                        == Some(busid)
                })
                .map(move |port| (c.devid, port))
                .collect::<Vec<_>>()
        })
        .collect();
    let memory = driver_memory::recall(xs, &vusb_core::BusId::parse(busid).unwrap())
        .unwrap()
        .is_some();
    let on_usbback: Vec<String> = host
        .bindings()
        .into_iter()
        .filter(|b| b.starts_with(&format!("{busid}:")))
        .collect();
    let mine: Vec<String> = original
        .iter()
        .filter(|b| b.starts_with(&format!("{busid}:")))
        .cloned()
        .collect();
    match assign::lookup(xs, TxId::NONE, &vusb_core::BusId::parse(busid).unwrap()).unwrap() {
        Some(rec) => {
            if rec.step != Step::Done {
                p.push(format!("record left in step {}", rec.step));
            }
            if holders != vec![(rec.ctrl, rec.port)] {
                p.push(format!("record {rec:?} but ports holding it {holders:?}"));
            }
            if !on_usbback.iter().all(|b| b.ends_with("-> usbback")) {
                p.push(format!("attached but {on_usbback:?}"));
            }
            if !memory {
                p.push("attached without driver memory".into());
            }
            if ids(&json, "usbdevs", "port") != vec![i64::from(rec.port)] {
                p.push(format!("attached but JSON devices {json}"));
            }
        }
        None => {
            if !holders.is_empty() {
                p.push(format!("no record but ports {holders:?} hold it"));
            }
            if on_usbback != mine {
                p.push(format!("free but {on_usbback:?}, was {mine:?}"));
            }
            if memory {
                p.push("free with driver memory left".into());
            }
            if !ids(&json, "usbdevs", "port").is_empty() {
                p.push(format!("free but JSON devices {json}"));
            }
        }
    }
    p
}

/// Kill `op` at every request; after each kill run `then` (recovery or
/// the next command), and check. Returns the number of kill points.
fn sweep(
    prepare: &dyn Fn(&SimHost),
    op: &dyn Fn(&OpEnv<'_, Killer<'_>>),
    then: &dyn Fn(&SimHost, u32),
    busid: &str,
) -> u32 {
    quiet_kills();
    let mut at = 1;
    let mut failures = Vec::new();
    loop {
        let host = host();
        let original = host.bindings();
        prepare(&host);
        if !killed_at(&host, at, op) {
            break;
        }
        host.settle();
        then(&host, at);
        host.settle();
        let p = problems(&host, busid, &original);
        if !p.is_empty() {
            failures.push(format!("killed at request {at}: {p:?}"));
        }
        at += 1;
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    at - 1
}

fn recover(host: &SimHost, _at: u32) {
    let report = usb_recover(&host.conn, &host.paths).unwrap();
    for r in &report {
        assert!(
            !matches!(
                r.outcome,
                vusb_core::ops::usb_recover::Outcome::Failed(_)
                    | vusb_core::ops::usb_recover::Outcome::Busy { .. }
            ),
            "{report:?}"
        );
    }
}

fn with_controller(host: &SimHost) {
    let (rc, _) = run_xl(&host.env(), "xl usbctrl-attach 1 ports=4");
    assert_eq!(rc, 0);
    host.settle();
}

fn attached(host: &SimHost) {
    with_controller(host);
    usbdev_attach(&env_of(host, &host.conn), &ops_support_dom(), &spec("1-2")).unwrap();
    host.settle();
}

fn ops_support_dom() -> vusb_core::domain::Domain {
    vusb_core::domain::Domain {
        domid: 1,
        arg: "1".into(),
    }
}

#[test]
fn killed_pv_attach_is_recovered_at_every_request() {
    let n = sweep(
        &with_controller,
        &|env| {
            let _ = usbdev_attach(env, &ops_support_dom(), &spec("1-2"));
        },
        &recover,
        "1-2",
    );
    assert!(n >= 10, "only {n} kill points");
}

#[test]
fn killed_pv_attach_does_not_block_the_next_attach() {
    sweep(
        &with_controller,
        &|env| {
            let _ = usbdev_attach(env, &ops_support_dom(), &spec("1-2"));
        },
        &|host, at| {
            let env = env_of(host, &host.conn);
            if let Err(e) = usbdev_attach(&env, &ops_support_dom(), &spec("1-2")) {
                // Only a finished attach may refuse: the device is attached.
                let rec = assign::lookup(
                    &host.conn,
                    TxId::NONE,
                    &vusb_core::BusId::parse("1-2").unwrap(),
                )
                .unwrap();
                assert!(
                    rec.is_some_and(|r| r.step == Step::Done),
                    "attach after a kill at {at} failed: {e}"
                );
            }
        },
        "1-2",
    );
}

#[test]
fn killed_pv_detach_is_completed_at_every_request() {
    let n = sweep(
        &attached,
        &|env| {
            let target = DetachTarget::Port { ctrl: 0, port: 1 };
            let _ = usbdev_detach(env, &ops_support_dom(), &target);
        },
        &|host, at| {
            recover(host, at);
            // A detach the journal completed or one never begun: a second
            // detach leaves the device free either way.
            let env = env_of(host, &host.conn);
            let target = DetachTarget::Port { ctrl: 0, port: 1 };
            let _ = usbdev_detach(&env, &ops_support_dom(), &target);
        },
        "1-2",
    );
    assert!(n >= 8, "only {n} kill points");
}

#[test]
fn killed_attach_creating_its_controller_is_recovered() {
    sweep(
        &|_| {},
        &|env| {
            let _ = usbdev_attach(env, &ops_support_dom(), &spec("1-2"));
        },
        &recover,
        "1-2",
    );
}
