//! `vusb usb-recover`: a process killed with SIGKILL in the middle of
//! handing a device to usbback (held at the second bind by the FUSE sysfs)
//! leaves the device half-bound; the unmodified binary then restores every
//! interface from the driver memory alone. Also: what recovery must leave
//! alone (devices assigned to a living domain, devices in an xl port table).
//!
//! The child process is this test binary re-run on `crash_helper_child`
//! (it does nothing unless the test sets its environment), so no test hook
//! is compiled into vusb itself.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::process::{Command, Stdio};
use std::time::Duration;

use vusb_core::HostPaths;
use vusb_core::assign::{self, Assignment};
use vusb_core::layout::UsbCtrlType;
use vusb_core::ops::usb_recover::{Outcome, usb_recover};
use vusb_host::BusId;
use vusb_testsupport::fusesys::{self, FuseSys};
use vusb_testsupport::sysfs::{SysfsTree, typical_host};
use vusb_xenstore::mem::MemStore;
use vusb_xenstore::server::Server;
use vusb_xenstore::{TxId, Xenstore, XenstoreExt};

const VUSB: &str = env!("CARGO_BIN_EXE_vusb");
const CHILD_ROOT: &str = "VUSB_TEST_CRASH_CHILD_SYSFS";

/// Not a test of its own: the child of `kill_9_mid_attach_then_usb_recover`.
#[test]
fn crash_helper_child() {
    let Ok(root) = std::env::var(CHILD_ROOT) else {
        return;
    };
    let xs = vusb_xenstore::client::Client::open().unwrap();
    // Blocks at the second bind to usbback until the parent kills us.
    let r = vusb_core::rebind::assign(
        &xs,
        std::path::Path::new(&root),
        &BusId::parse("1-1").unwrap(),
    );
    panic!("the child was meant to be killed, but assign returned {r:?}");
}

fn setup() -> Option<(SysfsTree, FuseSys)> {
    if !fusesys::available() {
        return None;
    }
    let t = typical_host().unwrap();
    t.driver("usbback").unwrap();
    let fs = FuseSys::mount(&t.root()).unwrap();
    Some((t, fs))
}

#[test]
fn kill_9_mid_attach_then_usb_recover() {
    let Some((_t, fs)) = setup() else { return };
    fs.block_bind("usbback", 2);
    let store = MemStore::new();
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("socket");
    let _server = Server::new(store.clone()).spawn(&socket).unwrap();

    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "crash_helper_child",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ROOT, fs.root())
        .env("XENSTORED_PATH", &socket)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let reached = fs.wait_blocked(Duration::from_secs(60));
    child.kill().unwrap(); // SIGKILL
    // A request already handed to the FUSE server is waited out by the
    // kernel even for a killed process: let it finish (it fails, EINTR).
    fs.release();
    child.wait().unwrap();
    assert!(reached, "the child never reached the second bind");

    // Half-way: the first interface on usbback, the second unbound, both
    // remembered.
    let xs = store.connect(0);
    assert_eq!(fs.driver_of("1-1:1.0").as_deref(), Some("usbback"));
    assert_eq!(fs.driver_of("1-1:1.1"), None);
    assert_eq!(
        xs.read_opt(TxId::NONE, "/libxl/usbback/1-1/1-1@1_1/driver_path")
            .unwrap()
            .as_deref(),
        Some("/sys/bus/usb/drivers/usbhid")
    );

    let out = Command::new(VUSB)
        .arg("--sysfs-root")
        .arg(fs.root())
        .arg("usb-recover")
        .env("XENSTORED_PATH", &socket)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout,
        "1-1: restored 1-1:1.0 -> usbhid, 1-1:1.1 -> usbhid\n"
    );
    assert_eq!(fs.driver_of("1-1:1.0").as_deref(), Some("usbhid"));
    assert_eq!(fs.driver_of("1-1:1.1").as_deref(), Some("usbhid"));
    assert_eq!(xs.read_opt(TxId::NONE, "/libxl/usbback/1-1").unwrap(), None);

    let again = Command::new(VUSB)
        .arg("--sysfs-root")
        .arg(fs.root())
        .arg("usb-recover")
        .env("XENSTORED_PATH", &socket)
        .output()
        .unwrap();
    assert!(again.status.success());
    assert_eq!(
        String::from_utf8_lossy(&again.stdout),
        "nothing to recover\n"
    );
}

fn half_assigned(fs: &FuseSys, xs: &vusb_xenstore::mem::MemConn) {
    vusb_core::rebind::assign(xs, &fs.root(), &BusId::parse("1-1").unwrap()).unwrap();
}

#[test]
fn recovery_leaves_assigned_devices_alone() {
    let Some((t, fs)) = setup() else { return };
    let store = MemStore::new();
    let xs = store.connect(0);
    half_assigned(&fs, &xs);
    xs.write_str(TxId::NONE, "/local/domain/3/name", "guest")
        .unwrap();
    let record = Assignment {
        busid: BusId::parse("1-1").unwrap(),
        domid: 3,
        ctrl: 0,
        port: 1,
        ctrl_type: UsbCtrlType::Pv,
        hostbus: 1,
        hostaddr: 2,
        qom_id: None,
        step: vusb_core::journal::Step::Done,
        identity: None,
    };
    assign::update(&xs, TxId::NONE, &record).unwrap();
    let mut paths = HostPaths::under(t.base());
    paths.sysfs_root = fs.root();
    let report = usb_recover(&xs, &paths).unwrap();
    assert_eq!(report.len(), 1);
    assert_eq!(report[0].outcome, Outcome::Assigned { domid: 3 });
    assert_eq!(fs.driver_of("1-1:1.0").as_deref(), Some("usbback"));

    // The domain is gone: the record is stale, the device comes back.
    xs.rm(TxId::NONE, "/local/domain/3").unwrap();
    let report = usb_recover(&xs, &paths).unwrap();
    assert!(
        matches!(report[0].outcome, Outcome::Restored(_)),
        "{report:?}"
    );
    assert_eq!(fs.driver_of("1-1:1.0").as_deref(), Some("usbhid"));
    assert_eq!(
        assign::lookup(&xs, TxId::NONE, &BusId::parse("1-1").unwrap()).unwrap(),
        None,
        "stale record released"
    );
}

#[test]
fn recovery_leaves_devices_in_an_xl_port_table_alone() {
    let Some((t, fs)) = setup() else { return };
    let store = MemStore::new();
    let xs = store.connect(0);
    half_assigned(&fs, &xs);
    xs.write_str(TxId::NONE, "/local/domain/4/name", "xl-guest")
        .unwrap();
    let be = "/local/domain/0/backend/vusb/4/0";
    xs.write_str(TxId::NONE, "/libxl/4/device/vusb/0/backend", be)
        .unwrap();
    xs.write_str(TxId::NONE, &format!("{be}/port/1"), "")
        .unwrap();
    xs.write_str(TxId::NONE, &format!("{be}/port/2"), "1-1")
        .unwrap();
    let mut paths = HostPaths::under(t.base());
    paths.sysfs_root = fs.root();
    let report = usb_recover(&xs, &paths).unwrap();
    assert_eq!(
        report[0].outcome,
        Outcome::InPortTable {
            path: format!("{be}/port/2")
        }
    );
    assert_eq!(fs.driver_of("1-1:1.1").as_deref(), Some("usbback"));
}

#[test]
fn recovery_forgets_devices_that_left_the_host() {
    let Some((t, fs)) = setup() else { return };
    let store = MemStore::new();
    let xs = store.connect(0);
    xs.write_str(
        TxId::NONE,
        "/libxl/usbback/3-7/3-7@1_0/driver_path",
        "/sys/bus/usb/drivers/usbhid",
    )
    .unwrap();
    let mut paths = HostPaths::under(t.base());
    paths.sysfs_root = fs.root();
    let report = usb_recover(&xs, &paths).unwrap();
    assert_eq!(report[0].outcome, Outcome::Restored(Vec::new()));
    assert_eq!(xs.read_opt(TxId::NONE, "/libxl/usbback/3-7").unwrap(), None);
}

#[test]
fn usb_recover_without_xenstore_fails_with_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(VUSB)
        .arg("usb-recover")
        .env("XENSTORED_PATH", dir.path().join("none"))
        .env_remove("XENSTORED_RUNDIR")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("vusb usb-recover: "));
}

/// The real thing: `vusb usbdev-attach` (pv) on the simulated host, killed
/// with SIGKILL while the FUSE sysfs holds its second bind to usbback; then
/// `vusb usb-recover` rolls the attach back.
#[test]
fn kill_9_mid_usbdev_attach_then_usb_recover() {
    use vusb_sim::host::{SimConfig, SimHost};
    if !fusesys::available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let sim = SimHost::start(&dir.path().join("sim"), &SimConfig::default()).unwrap();
    let fs = FuseSys::mount(&sim.paths().sysfs_root).unwrap();
    let vusb = |args: &[&str]| {
        let mut c = Command::new(VUSB);
        c.envs(sim.env())
            .arg("--sysfs-root")
            .arg(fs.root())
            .args(args);
        c
    };
    let out = vusb(&["usbctrl-attach", "1", "type=pv"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let before: Vec<Option<String>> = (0..3)
        .map(|i| fs.driver_of(&format!("1-2:1.{i}")))
        .collect();
    assert_eq!(
        before,
        [
            Some("usbhid".to_owned()),
            Some("usbhid".to_owned()),
            Some("usbhid".to_owned())
        ]
    );

    fs.block_bind("usbback", 2);
    let mut child = vusb(&["usbdev-attach", "1", "hostbus=1", "hostaddr=3"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let reached = fs.wait_blocked(Duration::from_secs(60));
    child.kill().unwrap();
    fs.release();
    child.wait().unwrap();
    assert!(reached, "usbdev-attach never reached the second bind");
    assert_eq!(fs.driver_of("1-2:1.0").as_deref(), Some("usbback"));
    assert_eq!(fs.driver_of("1-2:1.1"), None);

    let xs = vusb_xenstore::client::Client::connect(sim.socket()).unwrap();
    assert!(
        assign::lookup(&xs, TxId::NONE, &BusId::parse("1-2").unwrap())
            .unwrap()
            .is_some(),
        "the attach had claimed the device"
    );

    let out = vusb(&["usb-recover"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.starts_with("1-2: interrupted attach to domain 1 (controller 0 port 1) rolled back"),
        "{stdout}"
    );
    let after: Vec<Option<String>> = (0..3)
        .map(|i| fs.driver_of(&format!("1-2:1.{i}")))
        .collect();
    assert_eq!(after, before);
    assert_eq!(
        assign::lookup(&xs, TxId::NONE, &BusId::parse("1-2").unwrap()).unwrap(),
        None
    );
    assert_eq!(xs.read_opt(TxId::NONE, "/libxl/usbback/1-2").unwrap(), None);
    // The device can be attached again, completely this time.
    let out = vusb(&["usbdev-attach", "1", "hostbus=1", "hostaddr=3"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(fs.driver_of("1-2:1.2").as_deref(), Some("usbback"));
}
