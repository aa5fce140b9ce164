//! QEMU's emulated USB devices (`type=tablet|mouse|keyboard`) on a Xen HVM
//! guest's devicemodel controllers, end to end with the built binary on
//! the simulated host (`guest3` is HVM, its device model the fake QMP
//! server; `guest1` is PV): the QMP requests sent, the `/vusb/emulated`
//! records, libxl's port nodes left alone, usb-list, detach, controller
//! detach, usb-release, refusals and the rollback when QEMU fails.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};

use vusb_sim::host::{SimConfig, SimHost};

struct Sim {
    host: SimHost,
    _dir: tempfile::TempDir,
}

fn start() -> Sim {
    let dir = tempfile::Builder::new()
        .prefix("vemu")
        .tempdir_in("/tmp")
        .unwrap();
    let host = SimHost::start(dir.path(), &SimConfig::default()).unwrap();
    Sim { host, _dir: dir }
}

impl Sim {
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_vusb"));
        c.args(args).envs(self.host.env());
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(o.status.success(), "vusb {args:?}: {}", text(&o));
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    fn fails(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert_eq!(o.status.code(), Some(1), "vusb {args:?}: {}", text(&o));
        text(&o)
    }

    /// The whole store, as `xenstore-ls -fp` prints it.
    fn dump(&self) -> String {
        let o = Command::new("xenstore-ls")
            .arg("-fp")
            .env("XENSTORED_PATH", self.host.socket())
            .output()
            .expect("xenstore-ls (xenstore-utils)");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    fn node(&self, path: &str) -> Option<String> {
        let o = Command::new("xenstore-read")
            .arg(path)
            .env("XENSTORED_PATH", self.host.socket())
            .output()
            .expect("xenstore-read (xenstore-utils)");
        o.status
            .success()
            .then(|| String::from_utf8_lossy(&o.stdout).trim_end().to_owned())
    }

    /// Wait until guest1's controller 0 is connected (state 4 both ends).
    fn wait_connected(&self) {
        for _ in 0..200 {
            if self.node("/local/domain/1/device/vusb/0/state").as_deref() == Some("4")
                && self
                    .node("/local/domain/0/backend/vusb/1/0/state")
                    .as_deref()
                    == Some("4")
            {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("guest1's controller did not connect");
    }

    fn qmp(&self) -> Vec<String> {
        self.host.qmp_log().lines().map(str::to_owned).collect()
    }
}

/// The lines that differ between two dumps (empty when equal).
fn diff(before: &str, after: &str) -> Vec<String> {
    let b: Vec<&str> = before.lines().collect();
    let a: Vec<&str> = after.lines().collect();
    let mut out: Vec<String> = b
        .iter()
        .filter(|l| !a.contains(l))
        .map(|l| format!("-{l}"))
        .collect();
    out.extend(a.iter().filter(|l| !b.contains(l)).map(|l| format!("+{l}")));
    out
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn add(driver: &str, id: &str, ctrl: u32, port: u32) -> String {
    format!(
        r#"3 {{"arguments":{{"bus":"xenusb-{ctrl}.0","driver":"{driver}","id":"{id}","port":"{port}"}},"execute":"device_add"}}"#
    )
}

fn del(id: &str) -> String {
    format!(r#"3 {{"arguments":{{"id":"{id}"}},"execute":"device_del"}}"#)
}

#[test]
fn tablet_attach_list_share_and_detach() {
    let sim = start();
    sim.ok(&["usbctrl-attach", "guest3"]);
    sim.ok(&["usbdev-attach", "guest3", "type=tablet"]);
    let q = sim.qmp();
    assert_eq!(
        q.last().unwrap(),
        &add("usb-tablet", "xenusb-0-1-tablet", 0, 1),
        "{q:?}"
    );
    // vusb's record, libxl's port node untouched (bug U1).
    assert_eq!(sim.node("/vusb/emulated/3/0/1").as_deref(), Some("tablet"));
    assert_eq!(
        sim.node("/libxl/3/device/vusb/0/port/1").as_deref(),
        Some("")
    );

    // A host device goes to the next port; an explicit port 1 is taken.
    sim.ok(&["usbdev-attach", "guest3", "hostbus=1", "hostaddr=2"]);
    assert_eq!(
        sim.node("/libxl/3/device/vusb/0/port/2").as_deref(),
        Some("1-1")
    );
    let before = sim.dump();
    let e = sim.fails(&[
        "usbdev-attach",
        "guest3",
        "type=mouse",
        "controller=0",
        "port=1",
    ]);
    assert!(e.contains("The controller port isn't available"), "{e}");
    let e = sim.fails(&[
        "usbdev-attach",
        "guest3",
        "hostbus=1",
        "hostaddr=3",
        "controller=0",
        "port=1",
    ]);
    assert!(e.contains("The controller port isn't available"), "{e}");
    assert_eq!(diff(&before, &sim.dump()), Vec::<String>::new());

    let list = sim.ok(&["usb-list", "guest3"]);
    assert!(
        list.contains("  Port 1: Emulated tablet\n  Port 2: Bus 001 Device 002\n  Port 3:\n"),
        "{list}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&sim.ok(&["usb-list", "--json", "guest3"])).unwrap();
    let ports = &json["controllers"][0]["ports"];
    assert_eq!(ports[0]["emulated"], "tablet", "{json}");
    assert_eq!(ports[0]["busid"], serde_json::Value::Null, "{json}");
    assert_eq!(ports[1]["emulated"], serde_json::Value::Null, "{json}");

    sim.ok(&["usbdev-detach", "guest3", "0", "1"]);
    let q = sim.qmp();
    assert_eq!(q.last().unwrap(), &del("xenusb-0-1-tablet"), "{q:?}");
    assert_eq!(sim.node("/vusb/emulated/3/0/1"), None);
    assert_eq!(sim.node("/vusb/emulated/3"), None);
    // The host device stays; the port is free for the next emulated one.
    assert_eq!(
        sim.node("/libxl/3/device/vusb/0/port/2").as_deref(),
        Some("1-1")
    );
    sim.ok(&["usbdev-attach", "guest3", "type=keyboard", "controller=0"]);
    assert_eq!(
        sim.qmp().last().unwrap(),
        &add("usb-kbd", "xenusb-0-1-keyboard", 0, 1)
    );
    // Nothing left to detach at port 1 after a second detach.
    sim.ok(&["usbdev-detach", "guest3", "0", "1"]);
    let e = sim.fails(&["usbdev-detach", "guest3", "0", "1"]);
    assert!(e.contains("Unknown device"), "{e}");
}

#[test]
fn controller_is_created_and_detach_removes_emulated_devices() {
    let sim = start();
    sim.ok(&["usbdev-attach", "guest3", "type=mouse"]);
    let q = sim.qmp();
    assert_eq!(q.len(), 2, "{q:?}");
    assert!(q[0].contains(r#""id":"xenusb-0""#), "{q:?}");
    assert_eq!(q[1], add("usb-mouse", "xenusb-0-1-mouse", 0, 1));
    assert_eq!(
        sim.node("/libxl/3/device/vusb/0/type").as_deref(),
        Some("devicemodel")
    );
    sim.ok(&["usbctrl-detach", "guest3", "0"]);
    let q = sim.qmp();
    assert_eq!(q[2], del("xenusb-0-1-mouse"), "{q:?}");
    assert_eq!(q[3], del("xenusb-0"), "{q:?}");
    assert_eq!(sim.node("/libxl/3/device/vusb/0"), None);
    assert_eq!(sim.node("/vusb/emulated/3"), None);
}

#[test]
fn usb_release_removes_emulated_devices() {
    let sim = start();
    sim.ok(&["usbctrl-attach", "guest3"]);
    sim.ok(&[
        "usbdev-attach",
        "guest3",
        "type=keyboard",
        "controller=0",
        "port=4",
    ]);
    assert_eq!(
        sim.qmp().last().unwrap(),
        &add("usb-kbd", "xenusb-0-4-keyboard", 0, 4)
    );
    sim.ok(&["usb-release", "guest3"]);
    let q = sim.qmp();
    assert!(q.contains(&del("xenusb-0-4-keyboard")), "{q:?}");
    assert_eq!(sim.node("/vusb/emulated/3"), None);
    assert_eq!(sim.node("/libxl/3/device/vusb/0"), None);
}

#[test]
fn pv_controller_and_pv_guest_are_refused_unchanged() {
    let sim = start();
    sim.ok(&["usbctrl-attach", "guest1"]);
    // The simulated usbfront connects in the background: let it finish.
    sim.wait_connected();
    let before = sim.dump();
    let e = sim.fails(&["usbdev-attach", "guest1", "type=tablet", "controller=0"]);
    assert!(
        e.contains("controller 0 is of type pv: emulated devices need a devicemodel controller"),
        "{e}"
    );
    assert_eq!(diff(&before, &sim.dump()), Vec::<String>::new());
    // Without a controller: a PV guest has no device model to emulate it.
    let e = sim.fails(&["usbdev-attach", "guest1", "type=tablet"]);
    assert!(e.contains("domain 1 is not an HVM guest"), "{e}");
    assert_eq!(diff(&before, &sim.dump()), Vec::<String>::new());
    assert!(sim.qmp().is_empty());
}

#[test]
fn qemu_failure_rolls_the_record_back() {
    let sim = start();
    sim.ok(&["usbctrl-attach", "guest3"]);
    let before = sim.dump();
    // A device model that cannot be reached.
    let nowhere = sim.host.root().join("no-qmp-here");
    std::fs::create_dir_all(&nowhere).unwrap();
    let o = sim
        .cmd(&["usbdev-attach", "guest3", "type=tablet"])
        .env("VUSB_QMP_DIR", &nowhere)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("device model"), "{}", text(&o));
    assert_eq!(diff(&before, &sim.dump()), Vec::<String>::new());
    assert!(!Path::new(&nowhere).join("qmp-libxl-3").exists());
    // QEMU refusing the request (the id is taken by a device vusb has no
    // record of, as if its record were lost): the record goes again.
    sim.ok(&[
        "usbdev-attach",
        "guest3",
        "type=tablet",
        "controller=0",
        "port=2",
    ]);
    let rm = Command::new("xenstore-rm")
        .arg("/vusb/emulated/3")
        .env("XENSTORED_PATH", sim.host.socket())
        .status()
        .unwrap();
    assert!(rm.success());
    let e = sim.fails(&[
        "usbdev-attach",
        "guest3",
        "type=tablet",
        "controller=0",
        "port=2",
    ]);
    assert!(e.contains("device model"), "{e}");
    assert_eq!(
        sim.qmp().last().unwrap(),
        &add("usb-tablet", "xenusb-0-2-tablet", 0, 2)
    );
    assert_eq!(sim.node("/vusb/emulated/3/0/2"), None);
}
